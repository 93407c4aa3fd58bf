// node/flags.ts and the commands' declarations: each flag reads its value once into a
// typed value or one line naming the flag, what it expects and what it got; every
// default passes its own flag's check; flag names are unique within a command.

import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../coordinator/cli/commands.js';
import { ConfigError } from '../../../shared/errors.js';
import {
  boolean,
  choice,
  flagName,
  mapped,
  number,
  parseGroups,
  requiredText,
  text,
} from '../../../shared/node/flags.js';

/** The message of the ConfigError `read` throws. */
function refusal(read: () => unknown): string {
  try {
    read();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('flag readers', () => {
  it('number: type, integer and bounds, with the given value in the message', () => {
    const threads = number({ describe: 'x', integer: true, min: 1 });
    expect(threads.read(4, 'threads')).toBe(4);
    expect(refusal(() => threads.read(0, 'threads'))).toBe('--threads must be an integer ≥ 1, got 0');
    expect(refusal(() => threads.read(1.5, 'threads'))).toBe('--threads must be an integer ≥ 1, got 1.5');
    expect(refusal(() => threads.read('many', 'threads'))).toBe('--threads must be an integer ≥ 1, got "many"');
    const port = number({ describe: 'x', integer: true, min: 0, max: 65535 });
    expect(refusal(() => port.read(65536, 'port'))).toBe('--port must be an integer in [0, 65535], got 65536');
    const ms = number({ describe: 'x', above: 0 });
    expect(refusal(() => ms.read(0, 'ms'))).toBe('--ms must be a number > 0, got 0');
    expect(refusal(() => number({ describe: 'x' }).read(Number.NaN, 'lr'))).toBe('--lr must be a number, got NaN');
    expect(number({ describe: 'x', fallback: () => 7 }).read(undefined, 'n')).toBe(7);
  });

  it('text, required text, boolean and choice', () => {
    expect(text({ describe: 'x' }).read(undefined, 'csv')).toBeNull();
    expect(text({ describe: 'x' }).read(123, 'token')).toBe('123');
    expect(refusal(() => requiredText({ describe: 'x' }).read(undefined, 'url'))).toMatch(/^--url must be given/);
    expect(boolean({ describe: 'x', default: true }).read(false, 'standardize')).toBe(false);
    const level = choice(['info', 'warn'], { describe: 'x', default: 'info' });
    expect(level.read('warn', 'log-level')).toBe('warn');
    expect(refusal(() => level.read('loud', 'log-level'))).toBe('--log-level must be one of info, warn, got "loud"');
    const loss = mapped(choice(['auto', 'mse'], { describe: 'x', default: 'auto' }), (w) => (w === 'auto' ? null : w));
    expect(loss.read('auto', 'loss')).toBeNull();
  });

  it('parseGroups: absent flags take their default, values are keyed by group and camelCase name', () => {
    const groups = {
      a: { title: 'A', flags: { batchSize: number({ describe: 'x', default: 64 }) } },
      b: { title: 'B', flags: { csv: text({ describe: 'x' }) } },
    };
    expect(parseGroups(groups, { 'batch-size': 8 })).toEqual({ a: { batchSize: 8 }, b: { csv: null } });
    expect(parseGroups(groups, {})).toEqual({ a: { batchSize: 64 }, b: { csv: null } });
  });
});

describe('the commands', () => {
  it.each(COMMANDS.map((c) => [c.name, c] as const))('%s: every flag name once, every default valid', (_, command) => {
    const names = Object.values(command.groups).flatMap((g) => Object.keys(g.flags).map(flagName));
    expect(new Set(names).size, names.join(' ')).toBe(names.length);
    for (const group of Object.values(command.groups))
      for (const [key, flag] of Object.entries(group.flags)) {
        expect(flag.describe, `--${flagName(key)} has no help`).toMatch(/\w{3}/);
        if (flag.required !== true) expect(() => flag.read(flag.default, flagName(key))).not.toThrow();
      }
  });
});
