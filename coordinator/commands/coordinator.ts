// `flocktrain coordinator`: its flags and how they become run-coordinator.ts's options.

import { defineCommand, number, text, type FlagGroup } from '../../shared/node/flags.js';
import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError } from '../../shared/errors.js';
import { RUN_GROUPS, trainOptions } from './run-flags.js';

const { coordinator } = DEFAULTS;

export const SERVE_GROUP = {
  title: 'Serving',
  flags: {
    host: text({
      default: coordinator.host,
      describe: 'address to listen on (0.0.0.0 accepts other machines)',
    }),
    port: number({
      default: coordinator.port,
      integer: true,
      min: 0,
      max: 65535,
      describe: 'port for WebSocket and HTTP (0 picks a free one)',
    }),
    token: text({ describe: 'token workers must present (default: a random one, printed at startup)' }),
    workers: number({
      default: coordinator.workers,
      integer: true,
      min: 0,
      max: 65535,
      describe: 'local worker processes to spawn',
    }),
    minWorkers: number({
      default: coordinator.minWorkers,
      integer: true,
      min: 1,
      max: 65535,
      describe: 'workers to wait for before the first step',
    }),
    taskTimeoutMin: number({
      default: coordinator.taskTimeoutMinMs,
      above: 0,
      describe: 'ms: shortest deadline of a task before its shards go to another worker',
    }),
    taskTimeoutMax: number({
      default: coordinator.taskTimeoutMaxMs,
      above: 0,
      describe: "ms: longest deadline (used before a worker's speed is known)",
    }),
  },
} satisfies FlagGroup;

export const VERIFY_GROUP = {
  title: 'Verification',
  flags: {
    probation: number({
      default: coordinator.probation,
      integer: true,
      min: 0,
      describe:
        "a new or reconnected worker's first results, each recomputed here and compared bit for bit before it counts",
    }),
    auditRate: number({
      default: coordinator.auditRate,
      min: 0,
      max: 1,
      describe:
        'past probation, the lowest fraction of results recomputed and compared after they count; ' +
        'a mismatch bans the worker and undoes its steps',
    }),
    rollbackSnapshots: number({
      default: coordinator.rollbackSnapshots,
      integer: true,
      min: 2,
      describe: 'states before recent steps kept to roll back to when a forger is found (older ones thinned out)',
    }),
  },
} satisfies FlagGroup;

export const coordinatorCommand = defineCommand({
  name: 'coordinator',
  summary: 'serve workers over WebSocket and train with them',
  groups: { ...RUN_GROUPS, serve: SERVE_GROUP, verify: VERIFY_GROUP },
  run: async (v) => {
    const { taskTimeoutMin, taskTimeoutMax, ...serve } = v.serve;
    if (taskTimeoutMax < taskTimeoutMin)
      throw new ConfigError(
        `--task-timeout-max must be ≥ --task-timeout-min (${taskTimeoutMin}), got ${taskTimeoutMax}`,
      );
    const options = {
      ...trainOptions(v),
      ...serve,
      ...v.verify,
      taskTimeoutMinMs: taskTimeoutMin,
      taskTimeoutMaxMs: taskTimeoutMax,
    };
    // Loaded here, not at the top: --help need not load the server.
    const { runCoordinator } = await import('../run-coordinator.js');
    return runCoordinator(options);
  },
});
