// The dashboard's live feed: it listens to the coordinator's typed events (the same
// values the log lines are written from) and samples the worker connections once a
// second, keeps the run's history, and pushes every change to the dashboard pages as
// server-sent events on GET /events (token required). It shows nothing the log does
// not also say, except the per-worker counters.

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
  WorkerRow,
} from './dashboard-schema.js';
/** What the feed samples from the hub: WorkerConnection has all of these. */
export interface ConnectionView {
  readonly id: string;
  readonly state: string;
  readonly kind: string | null;
  readonly agent: string;
  readonly remote: string;
  readonly tasksDone: number;
  readonly samplesDone: number;
  readonly computeMs: number;
  readonly lastSeen: number;
  /** Why a ready worker gets no shards, or null. */
  readonly standby: string | null;
}

export interface FeedSource {
  connections(): Iterable<ConnectionView>;
  /** Global steps done so far (the weights version). */
  globalStep(): number;
}

const TICK_MS = 1000;
/** Departed workers stay listed (as "left") this long. */
const KEEP_LEFT_MS = 10 * 60_000;
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
  #workers: WorkerRow[] = [];
  #progress: Progress | null = null;
  readonly #left = new Map<string, { row: WorkerRow; at: number }>();
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
      events.on('workerBanned', (e) => this.#event(`${e.workerId} banned (${e.reason}): ${e.detail}`)),
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
    return [['/events', (req, res) => this.#subscribe(req, res)]];
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
    const source = this.#source;
    const now = Date.now();
    const rows: WorkerRow[] = [];
    const present = new Set<string>();
    for (const c of source.connections()) {
      if (c.state !== 'loading' && c.state !== 'ready') continue;
      present.add(c.id);
      rows.push({
        id: c.id,
        kind: c.kind ?? '?',
        agent: c.agent,
        remote: c.remote,
        status: c.state,
        tasksDone: c.tasksDone,
        samplesDone: c.samplesDone,
        samplesPerSec: c.computeMs > 0 ? Math.round((c.samplesDone * 1000) / c.computeMs) : 0,
        lastSeenMs: Math.max(0, now - c.lastSeen),
        standby: c.state === 'ready' ? c.standby : null,
      });
    }
    for (const row of this.#workers)
      if (!present.has(row.id) && row.status !== 'left')
        this.#left.set(row.id, { row: { ...row, status: 'left', standby: null }, at: now });
    for (const [id, l] of this.#left) if (present.has(id) || now - l.at > KEEP_LEFT_MS) this.#left.delete(id);
    this.#workers = [
      ...rows,
      ...[...this.#left.values()].map((l) => ({ ...l.row, lastSeenMs: l.row.lastSeenMs + (now - l.at) })),
    ];
    this.#progress = this.#measureProgress(source.globalStep(), now);
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
