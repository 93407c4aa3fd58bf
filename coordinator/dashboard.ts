// The dashboard's live feed: it reads the coordinator's own log lines (a second pino
// destination, see logger.ts) and samples the worker connections once a second, keeps
// the run's history, and pushes every change to the dashboard pages as server-sent
// events on GET /events (token required). The log is the single source of truth: the
// dashboard shows nothing the log does not also say, except the per-worker counters.

import type { IncomingMessage, ServerResponse } from 'node:http';
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

type Json = Record<string, unknown>;

export class DashboardFeed {
  /** A pino destination: one JSON log line per write. */
  readonly stream = { write: (line: string): void => this.#onLine(line) };
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
  #source: FeedSource | null = null;
  #timer: NodeJS.Timeout | null = null;

  /** Starts sampling the connections; call once the hub exists. */
  attach(source: FeedSource): void {
    this.#source = source;
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

  /** Sends the last sample and ends every event stream. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
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

  #onLine(line: string): void {
    let entry: Json;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null) return;
      entry = parsed as Json;
    } catch {
      return; // not JSON (cannot happen with pino's JSON output): nothing to show
    }
    const time = typeof entry.time === 'string' ? entry.time : new Date().toISOString();
    switch (entry.msg) {
      case 'run':
        return this.#onRun(entry);
      case 'step': {
        const point: StepPoint = {
          step: n(entry.step),
          epoch: n(entry.epoch),
          loss: n(entry.loss),
          samplesPerSec: n(entry.samplesPerSec),
          workers: n(entry.workers),
        };
        this.#steps.push(point);
        if (this.#steps.length > MAX_STEPS) this.#steps.splice(0, this.#steps.length - MAX_STEPS);
        return this.#push({ type: 'step', point });
      }
      case 'epoch': {
        const point: EpochPoint = {
          epoch: n(entry.epoch),
          trainLoss: nn(entry.trainLoss),
          trainAccuracy: nn(entry.trainAccuracy),
          valLoss: nn(entry.valLoss),
          valAccuracy: nn(entry.valAccuracy),
          seconds: n(entry.seconds),
        };
        this.#epochPoints.push(point);
        return this.#push({ type: 'epoch', point });
      }
      case 'worker joined':
        // Sample now, not at the next tick: a short run may be over before it.
        queueMicrotask(() => this.#tick());
        return this.#event(
          time,
          `${s(entry.workerId)} joined: ${s(entry.kind)} ${s(entry.agent)} (${n(entry.workers)} connected)`,
        );
      case 'worker left':
        queueMicrotask(() => this.#tick());
        return this.#event(
          time,
          `${s(entry.workerId)} left after ${n(entry.tasksDone)} tasks: ${s(entry.reason)} (${n(entry.workers)} connected)`,
        );
      case 'reassigning shards':
        return this.#event(
          time,
          `shards ${Array.isArray(entry.shards) ? entry.shards.join(',') : '?'} of ${s(entry.workerId)} reassigned`,
        );
      case 'rejected':
        return this.#event(time, `${s(entry.workerId)} rejected (${s(entry.reason)}): ${s(entry.detail)}`);
      case 'done': {
        this.#done = {
          steps: n(entry.steps),
          valAccuracy: nn(entry.valAccuracy),
          weightsHash: s(entry.weightsHash),
          interrupted: entry.interrupted === true,
        };
        this.#tick();
        return this.#push({ type: 'done', done: this.#done });
      }
      default:
        return;
    }
  }

  #onRun(entry: Json): void {
    const config = typeof entry.config === 'object' && entry.config !== null ? (entry.config as Json) : {};
    const spec = typeof entry.spec === 'object' && entry.spec !== null ? (entry.spec as Json) : {};
    this.#epochs = n(config.epochs);
    this.#stepsPerEpoch = stepsPerEpoch(n(entry.train), Math.max(1, n(config.batchSize)));
    this.#run = {
      dataset: s(entry.dataset),
      train: n(entry.train),
      val: n(entry.val),
      model: modelSummary(spec),
      config: Object.entries(config).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as const),
    };
    this.#push({ type: 'run', run: this.#run });
  }

  #event(time: string, text: string): void {
    const event = { time, text };
    this.#events.push(event);
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
    this.#push({ type: 'event', event });
  }

  #tick(): void {
    const source = this.#source;
    if (source === null) return;
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
      });
    }
    for (const row of this.#workers)
      if (!present.has(row.id) && row.status !== 'left')
        this.#left.set(row.id, { row: { ...row, status: 'left' }, at: now });
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

/** "784-128-10 relu, cross_entropy" from the logged spec (dense widths, first activation, loss). */
function modelSummary(spec: Json): string {
  const layers = (Array.isArray(spec.layers) ? spec.layers : []).filter(
    (l): l is Json => typeof l === 'object' && l !== null,
  );
  const widths = layers.filter((l) => l.type === 'dense').map((l) => s(l.units));
  const activation = layers.find((l) => l.type !== 'dense')?.type;
  return `${[s(spec.inputSize), ...widths].join('-')}${activation !== undefined ? ` ${s(activation)}` : ''}, ${s(spec.loss)}`;
}

function frame(event: FeedEvent): string {
  return `data: ${JSON.stringify(event)}\n\n`;
}

function n(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
function nn(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
function s(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '?' : String(v);
}
