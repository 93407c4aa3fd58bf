// The dashboard feed's messages, defined once: coordinator/dashboard.ts sends them as
// server-sent events (one JSON object per `data:` line), the dashboard page receives
// them and checks each one with parseFeedEvent before using it.
//
//   state    (first, on connect) everything so far
//   run      the run's dataset, model and config
//   step     one logged step (loss is the mean since the previous step line)
//   epoch    one finished epoch with its validation metrics
//   workers  every second: the workers summarised (counts by state, throughput, the
//            fastest and slowest, every row only while the fleet is small) and the
//            progress, with an ETA. Its size is bounded whatever the fleet's size;
//            GET /workers?q= finds any other worker by id, agent or address.
//   event    a worker joined, left, was rejected, stood by, or had its shards
//            reassigned; the run turned out communication-bound
//   done     training ended

import { FlocktrainError } from '../shared/errors.js';

export interface RunInfo {
  readonly dataset: string;
  readonly train: number;
  readonly val: number;
  /** e.g. "784-128-10 relu, cross_entropy". */
  readonly model: string;
  /** The run's config as [flag, value] rows, in config order. */
  readonly config: readonly (readonly [string, string])[];
}

export interface StepPoint {
  readonly step: number;
  readonly epoch: number;
  readonly loss: number;
  readonly samplesPerSec: number;
  readonly workers: number;
}

export interface EpochPoint {
  readonly epoch: number;
  readonly trainLoss: number | null;
  readonly trainAccuracy: number | null;
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly seconds: number;
}

/**
 * Where a worker is: loading the dataset; computing (it finished a task within the
 * last few seconds); idle (ready, but no task finished lately); standby (ready, and
 * the scheduler gives it no shards, see `standby`); left (gone, listed for a while);
 * banned (gone for a forged result).
 */
export type WorkerStatus = 'loading' | 'computing' | 'idle' | 'standby' | 'left' | 'banned';
export const WORKER_STATUSES: readonly WorkerStatus[] = ['computing', 'idle', 'standby', 'loading', 'left', 'banned'];

export interface WorkerRow {
  readonly id: string;
  readonly kind: string;
  readonly agent: string;
  readonly remote: string;
  readonly status: WorkerStatus;
  readonly tasksDone: number;
  readonly samplesDone: number;
  /** Compute throughput: samples per second of the worker's own compute time (0 until measured). */
  readonly samplesPerSec: number;
  /** ms since the coordinator last heard from it. */
  readonly lastSeenMs: number;
  /** Why a ready worker gets no shards ("standing by: …"), or null while it takes work. */
  readonly standby: string | null;
}

/** The workers in a bounded number of rows, however many there are. */
export interface WorkerSummary {
  /** Workers listed: connected ones and those gone in the last minutes. */
  readonly total: number;
  /** Workers by status (every status present, 0 when none). */
  readonly counts: Readonly<Record<WorkerStatus, number>>;
  /** Samples computed per second by the whole fleet, over the last few seconds. */
  readonly samplesPerSec: number;
  /** Connected workers with a measured speed, fastest first / slowest first (a few each). */
  readonly fastest: readonly WorkerRow[];
  readonly slowest: readonly WorkerRow[];
  /** Every worker while there are few enough to list (FULL_TABLE_MAX), else null. */
  readonly all: readonly WorkerRow[] | null;
}

/** The answer of GET /workers?q=: the first matches, and how many matched in all. */
export interface WorkerSearch {
  readonly query: string;
  readonly matches: readonly WorkerRow[];
  readonly total: number;
}

export interface Progress {
  /** Global steps done (= the weights version). */
  readonly step: number;
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
  readonly epochs: number;
  /** Steps per second over the last half minute; null until two samples differ. */
  readonly stepsPerSec: number | null;
  readonly etaSeconds: number | null;
}

export interface DoneInfo {
  readonly steps: number;
  readonly valAccuracy: number | null;
  readonly weightsHash: string;
  readonly interrupted: boolean;
}

export interface LogEvent {
  /** ISO time. */
  readonly time: string;
  readonly text: string;
}

export interface FeedState {
  readonly run: RunInfo | null;
  readonly steps: readonly StepPoint[];
  readonly epochs: readonly EpochPoint[];
  readonly workers: WorkerSummary;
  readonly progress: Progress | null;
  readonly events: readonly LogEvent[];
  readonly done: DoneInfo | null;
}

export type FeedEvent =
  | ({ readonly type: 'state' } & FeedState)
  | { readonly type: 'run'; readonly run: RunInfo }
  | { readonly type: 'step'; readonly point: StepPoint }
  | { readonly type: 'epoch'; readonly point: EpochPoint }
  | { readonly type: 'workers'; readonly workers: WorkerSummary; readonly progress: Progress | null }
  | { readonly type: 'event'; readonly event: LogEvent }
  | { readonly type: 'done'; readonly done: DoneInfo };

// ---- validation of what arrives in the browser ----

/** A feed message the page cannot use; the message names the first bad field. */
export class FeedError extends FlocktrainError {
  constructor(message: string) {
    super('FEED', message);
  }
}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FeedError(`${what}: expected an object`);
  return v as Obj;
}
function num(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new FeedError(`${k}: expected a finite number, got ${typeof v}`);
  return v;
}
function numOrNull(o: Obj, k: string): number | null {
  return o[k] === null ? null : num(o, k);
}
function str(o: Obj, k: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > 10_000) throw new FeedError(`${k}: expected a string, got ${typeof v}`);
  return v;
}
function list<T>(o: Obj, k: string, item: (v: unknown) => T): T[] {
  const v = o[k];
  if (!Array.isArray(v)) throw new FeedError(`${k}: expected an array`);
  return v.map(item);
}

function runInfo(v: unknown): RunInfo {
  const o = obj(v, 'run');
  const config = list(o, 'config', (row) => {
    if (!Array.isArray(row) || row.length !== 2 || typeof row[0] !== 'string' || typeof row[1] !== 'string')
      throw new FeedError('config: expected [name, value] rows');
    return [row[0], row[1]] as const;
  });
  return { dataset: str(o, 'dataset'), train: num(o, 'train'), val: num(o, 'val'), model: str(o, 'model'), config };
}
function stepPoint(v: unknown): StepPoint {
  const o = obj(v, 'step');
  return {
    step: num(o, 'step'),
    epoch: num(o, 'epoch'),
    loss: num(o, 'loss'),
    samplesPerSec: num(o, 'samplesPerSec'),
    workers: num(o, 'workers'),
  };
}
function epochPoint(v: unknown): EpochPoint {
  const o = obj(v, 'epoch');
  return {
    epoch: num(o, 'epoch'),
    trainLoss: numOrNull(o, 'trainLoss'),
    trainAccuracy: numOrNull(o, 'trainAccuracy'),
    valLoss: numOrNull(o, 'valLoss'),
    valAccuracy: numOrNull(o, 'valAccuracy'),
    seconds: num(o, 'seconds'),
  };
}
function workerRow(v: unknown): WorkerRow {
  const o = obj(v, 'worker');
  const status = str(o, 'status');
  if (!(WORKER_STATUSES as readonly string[]).includes(status))
    throw new FeedError(`status: unknown "${status.slice(0, 20)}"`);
  return {
    id: str(o, 'id'),
    kind: str(o, 'kind'),
    agent: str(o, 'agent'),
    remote: str(o, 'remote'),
    status: status as WorkerStatus,
    tasksDone: num(o, 'tasksDone'),
    samplesDone: num(o, 'samplesDone'),
    samplesPerSec: num(o, 'samplesPerSec'),
    lastSeenMs: num(o, 'lastSeenMs'),
    standby: o.standby === null ? null : str(o, 'standby'),
  };
}
function workerSummary(v: unknown): WorkerSummary {
  const o = obj(v, 'workers');
  const c = obj(o.counts, 'counts');
  const counts = Object.fromEntries(WORKER_STATUSES.map((s) => [s, num(c, s)])) as Record<WorkerStatus, number>;
  return {
    total: num(o, 'total'),
    counts,
    samplesPerSec: num(o, 'samplesPerSec'),
    fastest: list(o, 'fastest', workerRow),
    slowest: list(o, 'slowest', workerRow),
    all: o.all === null ? null : list(o, 'all', workerRow),
  };
}
/** Checks the answer of GET /workers?q=. */
export function parseWorkerSearch(v: unknown): WorkerSearch {
  const o = obj(v, 'search');
  return { query: str(o, 'query'), matches: list(o, 'matches', workerRow), total: num(o, 'total') };
}
function progress(v: unknown): Progress | null {
  if (v === null) return null;
  const o = obj(v, 'progress');
  return {
    step: num(o, 'step'),
    totalSteps: num(o, 'totalSteps'),
    stepsPerEpoch: num(o, 'stepsPerEpoch'),
    epochs: num(o, 'epochs'),
    stepsPerSec: numOrNull(o, 'stepsPerSec'),
    etaSeconds: numOrNull(o, 'etaSeconds'),
  };
}
function logEvent(v: unknown): LogEvent {
  const o = obj(v, 'event');
  return { time: str(o, 'time'), text: str(o, 'text') };
}
function doneInfo(v: unknown): DoneInfo | null {
  if (v === null) return null;
  const o = obj(v, 'done');
  if (typeof o.interrupted !== 'boolean') throw new FeedError('interrupted: expected a boolean');
  return {
    steps: num(o, 'steps'),
    valAccuracy: numOrNull(o, 'valAccuracy'),
    weightsHash: str(o, 'weightsHash'),
    interrupted: o.interrupted,
  };
}

/** Checks one decoded feed message; throws FeedError naming the first bad field. */
export function parseFeedEvent(v: unknown): FeedEvent {
  const o = obj(v, 'feed event');
  switch (o.type) {
    case 'state':
      return {
        type: 'state',
        run: o.run === null ? null : runInfo(o.run),
        steps: list(o, 'steps', stepPoint),
        epochs: list(o, 'epochs', epochPoint),
        workers: workerSummary(o.workers),
        progress: progress(o.progress),
        events: list(o, 'events', logEvent),
        done: doneInfo(o.done),
      };
    case 'run':
      return { type: 'run', run: runInfo(o.run) };
    case 'step':
      return { type: 'step', point: stepPoint(o.point) };
    case 'epoch':
      return { type: 'epoch', point: epochPoint(o.point) };
    case 'workers':
      return { type: 'workers', workers: workerSummary(o.workers), progress: progress(o.progress) };
    case 'event':
      return { type: 'event', event: logEvent(o.event) };
    case 'done': {
      const done = doneInfo(o.done);
      if (done === null) throw new FeedError('done: expected an object');
      return { type: 'done', done };
    }
    default:
      throw new FeedError(`unknown feed event type ${JSON.stringify(o.type).slice(0, 40)}`);
  }
}
