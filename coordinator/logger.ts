// The root logger, made once in main. JSON lines on stdout with stable field names;
// human-pretty when stdout is a terminal (or --pretty), so people can read it and
// tools can parse it. Components take child loggers bound to what they are.

import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'auto' | 'json' | 'pretty';

export function createLogger(format: LogFormat, level: string, name: string): Logger {
  const usePretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const options = { name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (!usePretty) return pino(options, pino.destination({ fd: 1, sync: true }));
  return pino(options, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'name' }));
}
