// startWorker() of the library: a Node worker from code, as `flocktrain worker` runs
// one, with the command's defaults. It resolves with the worker's exit code when the
// coordinator is done with it. It handles SIGINT/SIGTERM as the command does (leaving
// the run politely, then exiting the process).

import { availableParallelism } from 'node:os';
import { DEFAULTS } from '../../shared/defaults.js';
import type { LogFormat } from '../../shared/node/logger.js';

export interface WorkerStartOptions {
  /** The coordinator's ws:// address, as its join line prints it. */
  readonly url: string;
  readonly token: string;
  /** Compute threads; default: this machine's cores. */
  readonly threads?: number;
  /** How the coordinator's log names this worker; default host/pid. */
  readonly name?: string;
  /** Log lines on stdout: default 'silent'. */
  readonly logLevel?: string;
  readonly logFormat?: LogFormat;
}

export async function startWorker(o: WorkerStartOptions): Promise<number> {
  const { runWorker } = await import('../../worker/node/main.js');
  const w = DEFAULTS.worker;
  return runWorker({
    url: new URL(o.url),
    token: o.token,
    cacheDir: null,
    ca: null,
    maxDatasetMb: w.maxDatasetMb,
    cacheMaxMb: w.cacheMaxMb,
    name: o.name ?? null,
    reconnectFor: w.reconnectForS,
    silenceTimeout: w.silenceTimeoutS,
    threads: o.threads ?? availableParallelism(),
    faults: { slowdown: 1, delayMs: 0 },
    logLevel: o.logLevel ?? 'silent',
    logFormat: o.logFormat ?? 'json',
  });
}
