// The logging flags every command takes, as node/logger.ts's LogOptions.

import { DEFAULTS } from '../defaults.js';
import { choice, type FlagGroup } from './flags.js';

export const LOG_GROUP = {
  title: 'Logging',
  flags: {
    logFormat: choice(['auto', 'json', 'pretty'], {
      default: DEFAULTS.log.format,
      describe: 'log lines as JSON, pretty, or pretty only when stdout is a terminal',
    }),
    logLevel: choice(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
      default: DEFAULTS.log.level,
      describe: 'least severe log level printed',
    }),
  },
} satisfies FlagGroup;
