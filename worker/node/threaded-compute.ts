// The Node worker's GradientComputer for --threads N > 1: worker/thread-pool.ts's pool
// on N worker_threads, each running compute-thread.ts (its own ShardComputer and wasm
// instance). This file is only the transport: starting a thread with its ThreadInit as
// workerData and turning the thread's events into the pool's. The browser's Web Worker
// transport is worker/browser/web-threads.ts; `train` keeps ShardComputer.

import { Worker } from 'node:worker_threads';
import type { ComputerSetup } from '../compute.js';
import { PooledComputer, type PoolOptions, type SpawnThread } from '../thread-pool.js';
import type { ThreadReply } from '../thread-serve.js';

export { MIN_RUN_WORK } from '../thread-pool.js';

export interface ThreadedComputerOptions extends PoolOptions {
  /** The threads' entry module; default compute-thread.js beside this one (tests pass the built file). */
  readonly entry?: URL;
}

export class ThreadedComputer extends PooledComputer {
  constructor(setup: ComputerSetup, options: ThreadedComputerOptions) {
    super(setup, options, nodeThreads(options.entry ?? new URL('./compute-thread.js', import.meta.url)));
  }
}

/** Starts compute threads as worker_threads running `entry`. */
function nodeThreads(entry: URL): SpawnThread {
  return (init, _name, events) => {
    const worker = new Worker(entry, { workerData: init });
    worker.on('message', (reply: ThreadReply) => events.reply(reply));
    worker.on('error', (err) => events.die(`crashed: ${err.message.split('\n')[0]}`));
    worker.on('messageerror', (err) => events.die(`could not read a message: ${err.message}`));
    worker.on('exit', (code) => events.die(`exited with code ${code}`));
    return worker;
  };
}
