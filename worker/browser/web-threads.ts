// A browser tab's compute threads: worker/thread-pool.ts's pool over Web Workers, each
// running compute-thread.ts, the browser's counterpart of the Node worker's --threads.
// The tab's compute worker (the one holding the WebSocket) starts them itself: nested
// Web Workers, rather than workers made by the page and wired to it through
// MessagePorts, so the pool lives beside the WorkerClient that calls it, as in a Node
// worker, and the page stays a status display. The pool needs SharedArrayBuffer, so
// a page that is not cross-origin isolated (see coordinator/pages/assets.ts) computes
// on one thread, as does a tab asked for `?threads=1`.

import type { ComputerSetup } from '../compute.js';
import { PooledComputer, type SpawnThread } from '../thread-pool.js';
import type { ThreadReply } from '../thread-serve.js';

/** No tab starts more compute threads than this, whatever it is asked for. */
export const MAX_THREADS = 64;

export interface ThreadPlan {
  /** Compute threads, ≥ 1. */
  readonly threads: number;
  /** Why fewer threads than asked for or than cores, for the page ('' when none). */
  readonly note: string;
}

/**
 * How many compute threads a tab runs: `requested` (the page's ?threads=, null when
 * absent) or else one per core, and one when SharedArrayBuffer is out of reach.
 */
export function planThreads(requested: number | null, cores: number, isolated: boolean): ThreadPlan {
  const wanted = requested ?? Math.max(1, Math.floor(cores) || 1);
  if (wanted > 1 && !isolated) return { threads: 1, note: 'page not cross-origin isolated' };
  if (wanted > MAX_THREADS) return { threads: MAX_THREADS, note: `at most ${MAX_THREADS}` };
  return { threads: wanted, note: '' };
}

/** Whether this scope may share memory with its workers (SharedArrayBuffer and a cross-origin isolated page). */
export function canShareMemory(): boolean {
  return (
    typeof SharedArrayBuffer === 'function' &&
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true
  );
}

/** Starts compute threads as Web Workers running the bundle at `url`. */
function webThreads(url: string): SpawnThread {
  return (init, name, events) => {
    const worker = new Worker(url, { name });
    worker.onmessage = (event: MessageEvent<unknown>) => events.reply(event.data as ThreadReply);
    worker.onerror = (event) => {
      event.preventDefault();
      events.die(`crashed: ${event.message || 'script error'}`);
    };
    worker.onmessageerror = () => events.die('sent a message that could not be read');
    worker.postMessage(init);
    return worker;
  };
}

export interface WebThreadsOptions {
  readonly threads: number;
  /** The compute threads' bundle. */
  readonly url: string;
  readonly onCrash: (detail: string) => void;
  readonly onStarted?: (threads: number) => void;
}

/**
 * The computer factory of a tab with more than one thread: one pool, kept across
 * Resumes while the model, dataset, shard size and kernel set stay the same, rebuilt
 * when they change or a thread has died.
 */
export function webThreadPool(options: WebThreadsOptions): (setup: ComputerSetup) => Promise<PooledComputer> {
  let pool: { key: string; computer: PooledComputer } | null = null;
  return async (setup) => {
    // Everything but the dataset itself, which its hash stands for.
    const { dataset: _, ...same } = setup;
    const key = JSON.stringify(same);
    if (pool !== null && pool.key === key && !pool.computer.crashed) return pool.computer;
    const old = pool;
    pool = null;
    await old?.computer.close();
    const { threads, onCrash, onStarted } = options;
    // Its threads start with the first task big enough to be worth cutting.
    const computer = new PooledComputer(
      setup,
      { threads, onCrash, ...(onStarted !== undefined ? { onStarted } : {}) },
      webThreads(options.url),
    );
    pool = { key, computer };
    return computer;
  };
}
