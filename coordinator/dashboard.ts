// The dashboard's live feed: it listens to the coordinator's typed events (the same
// values the log lines are written from) and samples the worker connections once a
// second, keeps the run's history, and pushes every change to the dashboard pages as
// server-sent events on GET /events (token required). It shows nothing the log does
// not also say, except the per-worker counters. The workers go out summarised
// (dashboard-workers.ts), so a tick's size stays bounded with thousands of them;
// GET /workers?q= (same token) finds any one of them.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { configRows, modelSummary } from './dashboard-config.js';
import type { Events, RunStarted } from './events.js';
import { stepsPerEpoch } from './plan.js';
import type { RouteHandler } from './server.js';
import type {
  DoneInfo,
  EpochPoint,
  FeedEvent,
  FeedState,
  LogEvent,
  Progress,
  RunInfo,
  StepPoint,
  WorkerSummary,
} from './dashboard-schema.js';
import { type ConnectionView, summariseWorkers, WorkerTable } from './dashboard-workers.js';

export type { ConnectionView } from './dashboard-workers.js';

export interface FeedSource {
  connections(): Iterable<ConnectionView>;
  /** Global steps done so far, as the trainer counts them (a rollback takes them back; see StepCounter). */
  globalStep(): number;
}

const TICK_MS = 1000;
const MAX_STEPS = 20_000;
const MAX_EVENTS = 50;
/** The ETA's rate is measured over this window. */
const RATE_WINDOW_MS = 30_000;

export class DashboardFeed {
  #run: RunInfo | null = null;
  #epochs = 0;
  #stepsPerEpoch = 0;
  readonly #steps: StepPoint[] = [];
  readonly #epochPoints: EpochPoint[] = [];
  readonly #events: LogEvent[] = [];
  #done: DoneInfo | null = null;
  readonly #table = new WorkerTable();
  #workers: WorkerSummary = summariseWorkers([], 0);
  #progress: Progress | null = null;
  readonly #rate: { t: number; step: number }[] = [];
  readonly #clients = new Set<ServerResponse>();
  readonly #source: FeedSource;
  readonly #unsubscribe: (() => void)[];
  #timer: NodeJS.Timeout | null;

  /** Listens to `events` and samples `source` from now until close(). */
  constructor(events: Events, source: FeedSource) {
    this.#source = source;
    this.#unsubscribe = [
      events.on('run', (e) => this.#onRun(e)),
      events.on('step', (e) => {
        const point: StepPoint = {
          step: e.step,
          epoch: e.epoch,
          loss: e.loss,
          samplesPerSec: e.samplesPerSec,
          workers: e.workers,
        };
        this.#steps.push(point);
        if (this.#steps.length > MAX_STEPS) this.#steps.splice(0, this.#steps.length - MAX_STEPS);
        this.#push({ type: 'step', point });
      }),
      events.on('epoch', (e) => {
        const point: EpochPoint = {
          epoch: e.epoch,
          trainLoss: e.trainLoss,
          trainAccuracy: e.trainAccuracy,
          valLoss: e.valLoss,
          valAccuracy: e.valAccuracy,
          seconds: e.seconds,
        };
        this.#epochPoints.push(point);
        this.#push({ type: 'epoch', point });
      }),
      events.on('workerJoined', (e) => {
        // Sample now, not at the next tick: a short run may be over before it.
        queueMicrotask(() => this.#tick());
        this.#event(`${e.workerId} joined: ${e.kind ?? '?'} ${e.agent} (${e.workers} connected)`);
      }),
      events.on('workerLeft', (e) => {
        queueMicrotask(() => this.#tick());
        this.#event(`${e.workerId} left after ${e.tasksDone} tasks: ${e.reason} (${e.workers} connected)`);
      }),
      events.on('workerStandingBy', (e) => this.#event(`${e.workerId} ${e.reason}`)),
      events.on('communicationBound', (e) =>
        this.#event(`communication-bound: workers compute ${e.computePercent}% of each ${e.stepMs} ms step; ${e.hint}`),
      ),
      events.on('shardsReassigned', (e) => this.#event(`shards ${e.shards.join(',')} of ${e.workerId} reassigned`)),
      events.on('workerRejected', (e) => this.#event(`${e.workerId} rejected (${e.reason}): ${e.detail}`)),
      events.on('workerBanned', (e) => {
        this.#table.banned(e.workerId);
        this.#event(`${e.workerId} banned (${e.reason}): ${e.detail}`);
      }),
      events.on('relayBanReported', (e) =>
        this.#event(`relay ${e.relayId} banned its worker ${e.workerId} (${e.agent}): ${e.detail}`),
      ),
      events.on('rolledBack', (e) => this.#event(`rolled back from step ${e.fromStep} to ${e.toStep}`)),
      events.on('done', (e) => {
        this.#done = {
          steps: e.steps,
          valAccuracy: e.valAccuracy,
          weightsHash: e.weightsHash,
          interrupted: e.interrupted,
        };
        this.#tick();
        this.#push({ type: 'done', done: this.#done });
      }),
    ];
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  /** The protected routes the feed serves. */
  routes(): [string, RouteHandler][] {
    return [
      ['/events', (req, res) => this.#subscribe(req, res)],
      ['/workers', (req, res) => this.#search(req, res)],
    ];
  }

  get state(): FeedState {
    return {
      run: this.#run,
      steps: this.#steps,
      epochs: this.#epochPoints,
      workers: this.#workers,
      progress: this.#progress,
      events: this.#events,
      done: this.#done,
    };
  }

  /** Stops listening, sends the last sample and ends every event stream. */
  close(): void {
    for (const stop of this.#unsubscribe.splice(0)) stop();
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.#tick();
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #subscribe(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(frame({ type: 'state', ...this.state }));
    this.#clients.add(res);
    req.on('close', () => this.#clients.delete(res));
  }

  /** GET /workers?q=TEXT: the workers whose id, agent or address contain TEXT, as JSON. */
  #search(req: IncomingMessage, res: ServerResponse): void {
    const query = new URL(req.url ?? '/', 'http://x').searchParams.get('q') ?? '';
    const body = JSON.stringify(this.#table.search(query.slice(0, 200)));
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
  }

  #push(event: FeedEvent): void {
    const bytes = frame(event);
    for (const res of this.#clients) res.write(bytes);
  }

  #onRun(e: RunStarted): void {
    this.#epochs = e.config.epochs;
    this.#stepsPerEpoch = stepsPerEpoch(e.train, e.config.batchSize);
    this.#run = {
      dataset: e.dataset,
      train: e.train,
      val: e.val,
      model: modelSummary(e.spec),
      config: configRows(e),
    };
    this.#push({ type: 'run', run: this.#run });
  }

  #event(text: string): void {
    const event = { time: new Date().toISOString(), text };
    this.#events.push(event);
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
    this.#push({ type: 'event', event });
  }

  #tick(): void {
    const now = Date.now();
    this.#table.sample(this.#source.connections(), now);
    this.#workers = this.#table.summary();
    this.#progress = this.#measureProgress(this.#source.globalStep(), now);
    this.#push({ type: 'workers', workers: this.#workers, progress: this.#progress });
  }

  #measureProgress(step: number, now: number): Progress | null {
    if (this.#run === null) return null;
    this.#rate.push({ t: now, step });
    while (this.#rate.length > 2 && now - this.#rate[0].t > RATE_WINDOW_MS) this.#rate.shift();
    const totalSteps = this.#epochs * this.#stepsPerEpoch;
    const { stepsPerSec, etaSeconds } = estimateEta(this.#rate, totalSteps);
    return {
      step,
      totalSteps,
      stepsPerEpoch: this.#stepsPerEpoch,
      epochs: this.#epochs,
      stepsPerSec,
      etaSeconds: this.#done !== null ? 0 : etaSeconds,
    };
  }
}

/** Steps per second between the first and last sample, and the seconds left at that rate. */
export function estimateEta(
  samples: readonly { t: number; step: number }[],
  totalSteps: number,
): { stepsPerSec: number | null; etaSeconds: number | null } {
  if (samples.length < 2) return { stepsPerSec: null, etaSeconds: null };
  const first = samples[0];
  const last = samples[samples.length - 1];
  const dt = (last.t - first.t) / 1000;
  const ds = last.step - first.step;
  if (dt <= 0 || ds <= 0) return { stepsPerSec: null, etaSeconds: null };
  const stepsPerSec = ds / dt;
  return { stepsPerSec, etaSeconds: Math.max(0, totalSteps - last.step) / stepsPerSec };
}

function frame(event: FeedEvent): string {
  return `data: ${JSON.stringify(event)}\n\n`;
}

/**
 * The trainer's global step, as a served run's feed can read it: the trainer publishes
 * one weights version per step done and one per rollback, and names its step in each
 * `step`, `rolledBack` and `done` event, emitted right after the version it published.
 * Each of those events anchors the count, and every version published since is one step
 * done. (The version alone runs ahead of the step after a rollback: the undone steps'
 * versions are not used again, and the rollback publishes one more.)
 */
export class StepCounter {
  readonly #version: () => number;
  #anchor: { readonly step: number; readonly version: number };
  readonly #unsubscribe: (() => void)[];

  /** `version`: the version published last; `step`: the global step of the weights published so far. */
  constructor(events: Events, version: () => number, step: number) {
    this.#version = version;
    this.#anchor = { step, version: version() };
    const at = (step: number): void => {
      this.#anchor = { step, version: this.#version() };
    };
    this.#unsubscribe = [
      events.on('step', (e) => at(e.step)),
      events.on('rolledBack', (e) => at(e.toStep)),
      events.on('done', (e) => at(e.steps)),
    ];
  }

  get step(): number {
    return this.#anchor.step + Math.max(0, this.#version() - this.#anchor.version);
  }

  close(): void {
    for (const stop of this.#unsubscribe.splice(0)) stop();
  }
}
