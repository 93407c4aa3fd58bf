// The typed options of the coordinator-side commands, as their runners take them
// (run-train.ts, run-coordinator.ts). The commands in this folder build them from flags.

import type { TokenFlags } from '../served-tokens.js';
import type { LogOptions } from '../../shared/node/logger.js';
import type { RunConfig } from '../config.js';

export interface TrainOptions extends LogOptions {
  readonly config: RunConfig;
  /** Start from the weights in this safetensors file. */
  readonly init: string | null;
  /** Write the final weights to this safetensors file. */
  readonly out: string | null;
  readonly logEvery: number;
  /** Write checkpoints here (at epoch ends, every checkpointEvery steps, and on interruption). */
  readonly checkpointDir: string | null;
  readonly checkpointEvery: number;
  readonly keepCheckpoints: number;
  /** Continue from the newest checkpoint in this directory. */
  readonly resume: string | null;
  /** Append a row per logged step and per epoch to this CSV file. */
  readonly metricsCsv?: string | null;
  /** Write the weights of the best validation loss so far to this model file, at each epoch end that improves it. */
  readonly outBest?: string | null;
  /** Stop after this many epochs without a better validation loss (0: never). */
  readonly earlyStop?: number;
}

export interface CoordinatorOptions extends TrainOptions, TokenFlags {
  readonly host: string;
  readonly port: number;
  /** null: a random token, printed at startup. */
  readonly token: string | null;
  /** Local worker processes to spawn. */
  readonly workers: number;
  readonly minWorkers: number;
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
  readonly ejectAfterMisses: number;
  /** Workers fetch each weights version over HTTP (cacheable) instead of receiving it on their socket. */
  readonly weightsOverHttp: boolean;
  /** With weightsOverHttp: the cache in front, as this process reaches it, filled with each version first. */
  readonly weightsPrimeUrl?: string | null;
  /** Origins besides the coordinator's own whose pages may open worker WebSockets. */
  readonly allowedOrigins: readonly string[];
  /** PEM files to serve https and wss with; null: http and ws. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  readonly limits: {
    readonly maxConnections: number;
    readonly maxConnectionsPerIp: number;
    readonly idleTimeoutMs: number;
    readonly headersTimeoutMs: number;
  };
  /** Results of a new connection recomputed before they count. */
  readonly probation: number;
  /** Past probation, the lowest probability that a result is audited. */
  readonly auditRate: number;
  /** States kept to roll back to. */
  readonly rollbackSnapshots: number;
}
