// The root logger, made once in main. JSON lines on stdout with stable field names;
// human-pretty when stdout is a terminal (or --pretty), so people can read it and
// tools can parse it. Components take child loggers bound to what they are.
// shared/node/ holds Node-only code that both the coordinator and the Node worker use; shared/ stays
// platform-neutral (scripts/build-browser.ts states and enforces the rule).

import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'auto' | 'json' | 'pretty';

/** The logging flags every command takes (cli/log-flags.ts). */
export interface LogOptions {
  readonly logFormat: LogFormat;
  readonly logLevel: string;
}

/**
 * `also`: a second destination that receives every line at info or above as JSON,
 * whatever the format and level of stdout (the dashboard feed reads the run from it).
 */
export function createLogger(format: LogFormat, level: string, name: string, also?: DestinationStream): Logger {
  const usePretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const options = { name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  const stdout = usePretty
    ? pretty({ sync: true, colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'name' })
    : pino.destination({ fd: 1, sync: true });
  if (also === undefined) return pino(options, stdout);
  const streams: pino.StreamEntry[] = [{ stream: also, level: 'info' }];
  if (level !== 'silent') streams.push({ stream: stdout, level: level as pino.Level });
  // The logger lets through the lower of the two levels; each stream filters its own.
  const lowest = level === 'silent' || pino.levels.values[level] > pino.levels.values.info ? 'info' : level;
  return pino({ ...options, level: lowest }, pino.multistream(streams));
}
