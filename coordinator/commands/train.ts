// `flocktrain train`: its flags and how they become run-train.ts's options.

import { defineCommand, number } from '../../shared/node/flags.js';
import { DEFAULTS } from '../../shared/defaults.js';
import { RUN_GROUPS, trainOptions } from './run-flags.js';

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'train in this process, no network: the reference distributed runs must equal',
  groups: {
    ...RUN_GROUPS,
    compute: {
      title: 'Compute',
      flags: {
        threads: number({
          default: DEFAULTS.train.threads,
          integer: true,
          min: 1,
          describe:
            "compute threads for steps big enough to split (as a worker's --threads); same bits whatever the number",
        }),
      },
    },
  },
  run: async (v) => {
    const options = trainOptions(v);
    // Loaded here, not at the top: --help need not load the training code.
    const { runTrain } = await import('../run-train.js');
    return runTrain(options, v.compute.threads);
  },
});
