// What the worker page's main thread and its Web Worker say to each other over
// postMessage, and the validators each side runs on what it receives: structured
// clones cross this boundary as `unknown`, and nothing past parse* sees them unchecked.
//
//   page → worker: join (token, agent, threads asked for) | leave
//   worker → page: status (a full snapshot, sent on every change)

export type PageToWorker =
  /** `threads`: the page's ?threads= (a count ≥ 1), null for one per core. */
  | { readonly type: 'join'; readonly token: string; readonly agent: string; readonly threads: number | null }
  | { readonly type: 'leave' };

/** Where this tab's connection is. */
export type Phase = 'connecting' | 'loading' | 'training' | 'closed';

export interface WorkerStatus {
  readonly type: 'status';
  readonly phase: Phase;
  readonly workerId: string | null;
  readonly tasksDone: number;
  readonly samplesDone: number;
  /** Samples per second of compute (time spent in the kernels only). */
  readonly samplesPerSec: number;
  /** Mean loss over the samples of the last task. */
  readonly lastLoss: number | null;
  /** Where the dataset came from, or what is happening to it. */
  readonly dataset: string;
  /** Set once the phase is closed: the WebSocket close code and reason. */
  readonly closeCode: number | null;
  readonly closeReason: string;
  /** True when the close was this tab's own doing (Pause or Leave). */
  readonly closedByUser: boolean;
  /** True when this tab's worker closed the connection itself (an error on its side), not the coordinator. */
  readonly closedHere: boolean;
  /** True when the socket ever opened; tells "refused/unreachable" from "lost". */
  readonly everOpened: boolean;
  /** Compute threads this tab runs (1: the compute worker alone). */
  readonly threads: number;
  /** Why fewer threads than asked for or than cores ('' when none), or what stopped them. */
  readonly threadsNote: string;
  /** Whether the threads have started (with the first task big enough to cut). */
  readonly threadsStarted: boolean;
  /** Why the coordinator gives this tab no work at the moment, or null. */
  readonly standby: string | null;
}

type Fields = Record<string, unknown>;

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isStr = (v: unknown, max = 1000): v is string => typeof v === 'string' && v.length <= max;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const PHASES: readonly string[] = ['connecting', 'loading', 'training', 'closed'] satisfies Phase[];

export function parsePageMessage(v: unknown): PageToWorker | null {
  if (!isFields(v)) return null;
  if (v.type === 'leave') return { type: 'leave' };
  if (
    v.type === 'join' &&
    isStr(v.token) &&
    isStr(v.agent, 200) &&
    (v.threads === null || (isCount(v.threads) && v.threads >= 1))
  ) {
    return { type: 'join', token: v.token, agent: v.agent, threads: v.threads };
  }
  return null;
}

export function parseWorkerStatus(v: unknown): WorkerStatus | null {
  if (!isFields(v) || v.type !== 'status') return null;
  const {
    phase,
    workerId,
    tasksDone,
    samplesDone,
    samplesPerSec,
    lastLoss,
    dataset,
    closeCode,
    closeReason,
    closedByUser,
    closedHere,
    everOpened,
    threads,
    threadsNote,
    threadsStarted,
    standby,
  } = v;
  if (!(isStr(phase) && PHASES.includes(phase))) return null;
  if (!(workerId === null || isStr(workerId, 64))) return null;
  if (!isCount(tasksDone) || !isCount(samplesDone) || !isNum(samplesPerSec) || !(lastLoss === null || isNum(lastLoss)))
    return null;
  if (!isStr(dataset) || !(closeCode === null || isCount(closeCode)) || !isStr(closeReason)) return null;
  if (typeof closedByUser !== 'boolean' || typeof closedHere !== 'boolean' || typeof everOpened !== 'boolean')
    return null;
  if (!(isCount(threads) && threads >= 1) || !isStr(threadsNote) || typeof threadsStarted !== 'boolean') return null;
  if (!(standby === null || isStr(standby))) return null;
  return {
    type: 'status',
    phase: phase as Phase,
    workerId,
    tasksDone,
    samplesDone,
    samplesPerSec,
    lastLoss,
    dataset,
    closeCode,
    closeReason,
    closedByUser,
    closedHere,
    everOpened,
    threads,
    threadsNote,
    threadsStarted,
    standby,
  };
}
