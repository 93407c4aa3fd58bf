// The in-process coordinator the benchmarks start: the production assembly on a free
// loopback port, with the run's initial weights and DEFAULTS' timeouts unless a bench
// needs others. One place, so every bench measures the same coordinator.

import { DEFAULTS } from '../shared/defaults.js';
import { initParams } from '../shared/model/init.js';
import type { CoordinatorSetup } from '../coordinator/assembly.js';
import type { PreparedRun } from '../coordinator/setup.js';

/** A token as the command line would accept it (16 characters or more). */
export const BENCH_TOKEN = 'bench-0123456789abcdef';

export function benchSetup(
  run: PreparedRun,
  minWorkers: number,
  overrides: Partial<Omit<CoordinatorSetup, 'run'>> = {},
): CoordinatorSetup {
  const c = DEFAULTS.coordinator;
  return {
    run,
    params: initParams(run.spec, run.config.seed),
    version: 0,
    host: '127.0.0.1',
    port: 0,
    token: BENCH_TOKEN,
    scheduler: { minWorkers, taskTimeoutMinMs: c.taskTimeoutMinMs, taskTimeoutMaxMs: c.taskTimeoutMaxMs },
    helloTimeoutMs: c.helloTimeoutMs,
    heartbeatMs: c.heartbeatMs,
    closeGraceMs: c.closeGraceMs,
    ...overrides,
  };
}
