// `flocktrain worker`: its flags and how they become main.ts's options.

import { availableParallelism } from 'node:os';
import {
  boolean,
  defineCommand,
  flagError,
  mapped,
  number,
  requiredText,
  text,
  type FlagGroup,
} from '../../shared/node/flags.js';
import { LOG_GROUP } from '../../shared/node/log-flags.js';
import { DEFAULTS } from '../../shared/defaults.js';

const HEARTBEAT_S = DEFAULTS.coordinator.heartbeatMs / 1000;

export const CONNECTION_GROUP = {
  title: 'Connection',
  flags: {
    url: mapped(requiredText({ describe: 'coordinator WebSocket URL, e.g. ws://host:8787' }), (value, flag) => {
      const url = URL.canParse(value) ? new URL(value) : null;
      if (url === null || (url.protocol !== 'ws:' && url.protocol !== 'wss:'))
        throw flagError(flag, 'a ws:// or wss:// URL', value);
      return url;
    }),
    token: requiredText({ describe: 'token printed by the coordinator' }),
    ca: text({
      describe: "trust this PEM certificate for wss:// and https:// (e.g. the coordinator's self-signed one)",
    }),
    name: text({ describe: 'name shown in the coordinator log (default: hostname and pid)' }),
    cacheDir: text({ describe: 'where fetched datasets are cached by hash (default ~/.cache/flocktrain)' }),
    maxDatasetMb: number({
      default: DEFAULTS.worker.maxDatasetMb,
      above: 0,
      expected: 'a number of MB > 0',
      describe: 'refuse a coordinator that announces a larger dataset (MB)',
    }),
    cacheMaxMb: number({
      default: DEFAULTS.worker.cacheMaxMb,
      above: 0,
      expected: 'a number of MB > 0',
      describe: 'keep the dataset cache under this size, evicting the least recently used (MB)',
    }),
    reconnectFor: number({
      default: DEFAULTS.worker.reconnectForS,
      min: 0,
      describe: 'seconds to keep reconnecting (with backoff) after losing the coordinator',
    }),
    silenceTimeout: number({
      default: DEFAULTS.worker.silenceTimeoutS,
      above: HEARTBEAT_S,
      expected: `more than the coordinator's ${HEARTBEAT_S} s ping period`,
      describe:
        `seconds without a ping or message from the coordinator (it pings every ${HEARTBEAT_S}) ` +
        'before dropping the connection and reconnecting',
    }),
  },
} satisfies FlagGroup;

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'compute gradients for a coordinator',
  groups: {
    connection: CONNECTION_GROUP,
    compute: {
      title: 'Compute',
      flags: {
        threads: number({
          fallback: availableParallelism,
          defaultText: "this machine's cores",
          integer: true,
          min: 1,
          describe: 'compute threads (1: no worker threads); same bits whatever the number',
        }),
      },
    },
    faults: {
      title: 'Fault injection (testing only)',
      flags: {
        faultSlowdown: number({ default: 1, min: 1, hidden: true, describe: 'run this many times slower' }),
        faultDelayMs: number({ default: 0, min: 0, hidden: true, describe: 'hold each result back this many ms' }),
        faultDigest: boolean({
          default: false,
          hidden: true,
          describe: "answer every check with a digest that is not the recomputation's",
        }),
      },
    },
    log: LOG_GROUP,
  },
  run: async (v) => {
    // Loaded here, not at the top: --help need not load the worker.
    const { runWorker } = await import('./main.js');
    return runWorker({
      ...v.connection,
      ...v.log,
      threads: v.compute.threads,
      faults: { slowdown: v.faults.faultSlowdown, delayMs: v.faults.faultDelayMs, digest: v.faults.faultDigest },
    });
  },
});
