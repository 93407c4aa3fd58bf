// What happens in a run, as typed values. Each event is written as one log line (its
// msg and level in LINES, its fields as the line's fields, so the log stays the
// contract users and tools read) and handed to every listener, such as the
// dashboard feed, which therefore never parses log text.

import type { Logger } from 'pino';
import type { ModelSpec } from '../shared/model/spec.js';
import type { RejectReason } from '../shared/protocol/codes.js';
import type { WorkerKind } from '../shared/protocol/messages.js';
import type { RunConfig } from './config.js';

export interface RunStarted {
  readonly dataset: string;
  readonly datasetHash: string;
  /** Samples in the training and validation splits. */
  readonly train: number;
  readonly val: number;
  readonly spec: ModelSpec;
  readonly config: RunConfig;
}

/** How workers join a serving coordinator. */
export interface JoinInfo {
  readonly url: string;
  readonly token: string;
  /** The worker command for other machines. */
  readonly command: string;
  /** The worker page for a browser tab. */
  readonly link: string;
  readonly dashboard: string;
}

export interface WorkerJoined {
  readonly workerId: string;
  /** Ready workers, this one included. */
  readonly workers: number;
  readonly kind: WorkerKind | null;
  readonly agent: string;
  readonly remote: string;
}

export interface WorkerLeft {
  readonly workerId: string;
  /** Ready workers left. */
  readonly workers: number;
  /** How it went: "closed (code reason)" or "rejected (reason)". */
  readonly reason: string;
  readonly tasksDone: number;
}

export interface WorkerRejected {
  readonly workerId: string;
  readonly reason: RejectReason;
  readonly detail: string;
  readonly remote: string;
}

export interface WorkerBanned {
  readonly workerId: string;
  readonly reason: RejectReason;
  /** The first difference from the recomputation. */
  readonly detail: string;
  readonly agent: string;
  readonly remote: string;
  /** Every step from this weights version on is undone (null: none of its unchecked results still counts). */
  readonly undoFromVersion: number | null;
}

/** A relay banned one of its own workers for a forgery, and says so (its word: the coordinator cannot check it). */
export interface RelayBanReported {
  /** The relay, as this coordinator knows it. */
  readonly relayId: string;
  readonly relayAgent: string;
  /** The banned worker, as the relay knows it. */
  readonly workerId: string;
  readonly agent: string;
  readonly remote: string;
  readonly detail: string;
}

export interface RolledBack {
  /** Global steps done before, and after the rollback (the steps in between run again). */
  readonly fromStep: number;
  readonly toStep: number;
  /**
   * The weights version the undone steps started from,
   * as asked and as restored (an older snapshot if that one was let go).
   */
  readonly askedVersion: number;
  readonly restoredVersion: number;
}

export interface StepRechecked {
  readonly epoch: number;
  readonly step: number;
  /** Workers whose unchecked results were in the step; they are on probation again. */
  readonly workerIds: readonly string[];
}

export interface ReplayChecked {
  /** The step whose gradient is not finite at weights that unchecked results helped make. */
  readonly epoch: number;
  readonly step: number;
  /** Steps from this weights version on run again, every result checked, up to that step. */
  readonly fromVersion: number;
}

export interface ShardsReassigned {
  /** The worker that left holding them. */
  readonly workerId: string;
  readonly epoch: number;
  readonly shards: readonly number[];
}

export interface TaskAssigned {
  readonly workerId: string;
  readonly taskId: number;
  readonly version: number;
  readonly shards: readonly number[];
}

export interface TaskExpired {
  readonly workerId: string;
  readonly taskId: number;
  /** Its shards not yet covered, now open to others. */
  readonly shards: readonly number[];
  readonly waitedMs: number;
}

export interface WaitingForWorkers {
  readonly workers: number;
  readonly minWorkers: number;
}

export interface NoWorkers {
  readonly pendingShards: number;
}

export interface StepDiverged {
  readonly workerId: string;
  readonly taskId: number;
  readonly epoch: number;
}

export interface WorkerStandingBy {
  readonly workerId: string;
  /** Said to the worker too, for its page. */
  readonly reason: string;
}

export interface CommunicationBound {
  readonly workers: number;
  /** Mean ms per step, dispatch to dispatch, over the measured window. */
  readonly stepMs: number;
  /** Mean ms a worker computed per step. */
  readonly computeMsPerWorker: number;
  /** Percent of the workers' time spent computing. */
  readonly computePercent: number;
  /** What would help. */
  readonly hint: string;
}

export interface StepDone {
  readonly epoch: number;
  /** Global steps done. */
  readonly step: number;
  /** Mean training loss of the steps since the previous step line. */
  readonly loss: number;
  readonly lr: number;
  readonly workers: number;
  readonly samplesPerSec: number;
  /** Measured samples/s of each worker, when the executor measures them. */
  readonly perWorker?: Readonly<Record<string, number>>;
  /** Mean bytes on the wire per step since the previous step line, when the executor counts them. */
  readonly bytesPerStep?: number;
}

export interface EpochDone {
  readonly epoch: number;
  readonly samples: number;
  readonly trainLoss: number;
  /** null for regression data. */
  readonly trainAccuracy: number | null;
  /** null without a validation split. */
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly seconds: number;
}

export interface RunDone {
  /** Epochs trained in this process (a resumed run counts from where it resumed). */
  readonly epochs: number;
  readonly steps: number;
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly weightsHash: string;
  /** True when training stopped early on request (Ctrl-C). */
  readonly interrupted: boolean;
  /** True when --early-stop ended the run. */
  readonly stoppedEarly?: boolean;
  /** Where the final weights were written, if anywhere. */
  readonly out: string | null;
  /** Results compared with a recomputation, and workers banned for a forgery (a served run only). */
  readonly audited?: number;
  readonly banned?: number;
}

export interface CoordinatorEvents {
  run: RunStarted;
  join: JoinInfo;
  workerJoined: WorkerJoined;
  workerLeft: WorkerLeft;
  workerRejected: WorkerRejected;
  workerBanned: WorkerBanned;
  relayBanReported: RelayBanReported;
  rolledBack: RolledBack;
  stepRechecked: StepRechecked;
  replayChecked: ReplayChecked;
  shardsReassigned: ShardsReassigned;
  taskAssigned: TaskAssigned;
  taskExpired: TaskExpired;
  waitingForWorkers: WaitingForWorkers;
  noWorkers: NoWorkers;
  stepDiverged: StepDiverged;
  workerStandingBy: WorkerStandingBy;
  communicationBound: CommunicationBound;
  step: StepDone;
  epoch: EpochDone;
  done: RunDone;
}

export type EventKind = keyof CoordinatorEvents;

/** Each event's log line. */
const LINES: {
  readonly [K in EventKind]: { readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly msg: string };
} = {
  run: { level: 'info', msg: 'run' },
  join: { level: 'info', msg: 'join' },
  workerJoined: { level: 'info', msg: 'worker joined' },
  workerLeft: { level: 'info', msg: 'worker left' },
  workerRejected: { level: 'warn', msg: 'rejected' },
  workerBanned: { level: 'warn', msg: 'worker banned' },
  relayBanReported: { level: 'warn', msg: 'a relay banned one of its workers' },
  rolledBack: { level: 'warn', msg: 'rolled back: steps with unchecked results of a banned worker run again' },
  stepRechecked: {
    level: 'warn',
    msg: 'step not finite with unchecked results in it: running it again with every result checked',
  },
  replayChecked: {
    level: 'warn',
    msg: 'gradient not finite at weights made with unchecked results: replaying those steps with every result checked',
  },
  shardsReassigned: { level: 'info', msg: 'reassigning shards' },
  taskAssigned: { level: 'debug', msg: 'task assigned' },
  taskExpired: { level: 'warn', msg: 'task deadline missed; handing its shards to others' },
  waitingForWorkers: { level: 'info', msg: 'waiting for workers' },
  noWorkers: { level: 'warn', msg: 'no workers: waiting for one to join' },
  stepDiverged: {
    level: 'error',
    msg: "a worker's gradient is not finite, and so is the coordinator's recomputation: training diverged",
  },
  workerStandingBy: { level: 'info', msg: 'worker standing by' },
  communicationBound: {
    level: 'warn',
    msg:
      'communication-bound: the workers spend more time waiting for bytes than computing, ' +
      'so more workers will not train faster',
  },
  step: { level: 'info', msg: 'step' },
  epoch: { level: 'info', msg: 'epoch' },
  done: { level: 'info', msg: 'done' },
};

type Listener<K extends EventKind> = (event: CoordinatorEvents[K]) => void;

/** The listeners of a run, shared by every Events made from one root. */
type ListenerTable = { [K in EventKind]?: Set<Listener<K>> };

export class Events {
  readonly #log: Logger;
  readonly #listeners: ListenerTable;
  /** Events not written as log lines (a terminal view draws them instead). */
  readonly #quiet: ReadonlySet<EventKind>;

  /** `log`: where each event is written as its line; `shared`: whose listeners to share; `quiet`: kinds not logged. */
  constructor(log: Logger, shared?: Events, quiet?: ReadonlySet<EventKind>) {
    this.#log = log;
    this.#listeners = shared === undefined ? {} : shared.#listeners;
    this.#quiet = quiet ?? (shared === undefined ? new Set() : shared.#quiet);
  }

  /** The same listeners, writing through `log.child(bindings)` (e.g. a component's). */
  child(bindings: Record<string, string>): Events {
    return new Events(this.#log.child(bindings), this);
  }

  /** Calls `listener` with every later event of this kind; returns what stops it. */
  on<K extends EventKind>(kind: K, listener: Listener<K>): () => void {
    const table = this.#listeners as { [J in K]?: Set<Listener<J>> };
    const set = table[kind] ?? new Set<Listener<K>>();
    table[kind] = set;
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Logs the event as its line, then hands it to the listeners. */
  emit<K extends EventKind>(kind: K, event: CoordinatorEvents[K]): void {
    const { level, msg } = LINES[kind];
    if (!this.#quiet.has(kind)) this.#log[level](event as object, msg);
    const set = (this.#listeners as { [J in K]?: Set<Listener<J>> })[kind];
    if (set !== undefined) for (const listener of set) listener(event);
  }
}
