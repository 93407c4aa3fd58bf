// Command-line flags as data. A command declares its flags in named groups, each flag
// with its type, default, help text and the one check of its value; the dispatcher
// (coordinator/cli/main.ts) builds the yargs parser and --help from them, coordinator/cli/doc.ts builds
// docs/cli.md, and `parseGroups` turns what yargs read into typed values. A flag that
// feeds the run configuration has its range checked by coordinator/config.ts, so here
// it is only read as a number: every value is checked in exactly one place.
// In shared/node/ because the commands of both sides declare their flags with it (coordinator/
// commands/, worker/node/command.ts), below cli/, which dispatches to them.

import { ConfigError } from '../errors.js';

/** A flag's value as yargs reads it (numbers parse as numbers, other words stay strings). */
export type Raw = string | number | boolean;

export interface Flag<T> {
  readonly type: 'number' | 'string' | 'boolean';
  /** One line of help, no final period. */
  readonly describe: string;
  /** The value an absent flag stands for, as a user would type it. */
  readonly default?: Raw;
  /** Shown instead of `default` when the default depends on the machine (then `read` gets undefined). */
  readonly defaultText?: string;
  /** The values it takes, for docs/cli.md (e.g. "integer ≥ 1"); without it, its type. */
  readonly takes?: string;
  /** The accepted words, listed in --help and docs/cli.md. */
  readonly choices?: readonly string[];
  readonly required?: boolean;
  /** Left out of --help and docs/cli.md: testing aids, not for users. */
  readonly hidden?: boolean;
  /** The typed value, or a ConfigError naming the flag, what it expects and what it got. */
  read(raw: Raw | undefined, flag: string): T;
}

export type Flags = Readonly<Record<string, Flag<unknown>>>;

/** A titled set of flags, shared by the commands that take it. Keys are camelCase; flags are --kebab-case. */
export interface FlagGroup<F extends Flags = Flags> {
  readonly title: string;
  readonly flags: F;
}

export type Groups = Readonly<Record<string, FlagGroup>>;

type ValueOf<F> = F extends Flag<infer T> ? T : never;
export type GroupValues<G extends Groups> = {
  readonly [K in keyof G]: { readonly [N in keyof G[K]['flags']]: ValueOf<G[K]['flags'][N]> };
};

export interface Command<G extends Groups> {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  readonly groups: G;
  /** Runs the command; resolves to the process exit code. */
  run(values: GroupValues<G>): Promise<number>;
}

/** A command with its group types erased, as the dispatcher holds a list of them. */
export interface AnyCommand {
  readonly name: string;
  readonly summary: string;
  readonly groups: Groups;
  run(values: Readonly<Record<string, Readonly<Record<string, unknown>>>>): Promise<number>;
}

/** Checks the types of a command's declaration and erases them (its values come from parseGroups). */
export function defineCommand<G extends Groups>(command: Command<G>): AnyCommand {
  return command as unknown as AnyCommand;
}

/** `batchSize` → `batch-size`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function flagError(flag: string, expected: string, got: Raw | undefined): ConfigError {
  return new ConfigError(`--${flag} must be ${expected}, got ${typeof got === 'string' ? `"${got}"` : got}`);
}

/** The typed values of every group, from yargs' parse of argv (keyed by flag name). */
export function parseGroups(
  groups: Groups,
  argv: Readonly<Record<string, unknown>>,
): Record<string, Record<string, unknown>> {
  const values: Record<string, Record<string, unknown>> = {};
  for (const [groupKey, group] of Object.entries(groups)) {
    const out: Record<string, unknown> = {};
    for (const [key, flag] of Object.entries(group.flags)) {
      const name = flagName(key);
      const given = argv[name];
      if (given !== undefined && typeof given !== 'string' && typeof given !== 'number' && typeof given !== 'boolean')
        throw flagError(name, 'given once, as one value', String(given));
      out[key] = flag.read(given ?? flag.default, name);
    }
    values[groupKey] = out;
  }
  return values;
}

interface Common {
  readonly describe: string;
  readonly hidden?: boolean;
}

/**
 * A number. `min`/`max` bound it inclusively, `above` exclusively; `integer` refuses
 * fractions; `expected` replaces the generated "an integer ≥ 1" in the error. Without
 * bounds only the type is checked here: the range is the run configuration's to check.
 * `fallback` gives the default of an absent flag when it depends on the machine.
 */
export function number(
  o: Common & {
    default?: number;
    defaultText?: string;
    fallback?: () => number;
    integer?: boolean;
    min?: number;
    max?: number;
    above?: number;
    expected?: string;
  },
): Flag<number> {
  const bounds =
    o.min !== undefined && o.max !== undefined
      ? [`in [${o.min}, ${o.max}]`]
      : [o.min !== undefined ? `≥ ${o.min}` : '', o.max !== undefined ? `≤ ${o.max}` : ''];
  const takes = [o.integer === true ? 'integer' : 'number', ...bounds, o.above !== undefined ? `> ${o.above}` : '']
    .filter((s) => s !== '')
    .join(' ');
  const expected = o.expected ?? `${o.integer === true ? 'an' : 'a'} ${takes}`;
  const inRange = (v: number): boolean =>
    (o.integer !== true || Number.isInteger(v)) &&
    (o.min === undefined || v >= o.min) &&
    (o.above === undefined || v > o.above) &&
    (o.max === undefined || v <= o.max);
  return {
    type: 'number',
    takes,
    describe: o.describe,
    ...(o.hidden !== undefined ? { hidden: o.hidden } : {}),
    ...(o.default !== undefined ? { default: o.default } : {}),
    ...(o.defaultText !== undefined ? { defaultText: o.defaultText } : {}),
    read: (raw, flag) => {
      if (raw === undefined && o.fallback !== undefined) return o.fallback();
      if (typeof raw !== 'number' || !Number.isFinite(raw) || !inRange(raw)) throw flagError(flag, expected, raw);
      return raw;
    },
  };
}

/** A word or path; absent without a default: null. */
export function text(o: Common & { default: string }): Flag<string>;
export function text(o: Common & { required?: boolean }): Flag<string | null>;
export function text(o: Common & { default?: string; required?: boolean }): Flag<string | null> {
  return {
    ...o,
    type: 'string',
    read: (raw, flag) => {
      if (raw === undefined) return null;
      if (typeof raw !== 'string' && typeof raw !== 'number') throw flagError(flag, 'a value', raw);
      return String(raw);
    },
  };
}

/** A text that must be given. */
export function requiredText(o: Common): Flag<string> {
  const flag = text({ ...o, required: true });
  return {
    ...flag,
    read: (raw, name) => {
      const value = flag.read(raw, name);
      if (value === null) throw flagError(name, 'given', raw);
      return value;
    },
  };
}

/** On or off; --no-<flag> turns off one that defaults to on. */
export function boolean(o: Common & { default: boolean }): Flag<boolean> {
  return {
    ...o,
    type: 'boolean',
    read: (raw, flag) => {
      if (typeof raw !== 'boolean') throw flagError(flag, 'true or false', raw);
      return raw;
    },
  };
}

/** One of `choices`. */
export function choice<const C extends string>(choices: readonly C[], o: Common & { default: NoInfer<C> }): Flag<C> {
  return {
    ...o,
    type: 'string',
    choices,
    read: (raw, flag) => {
      const word = String(raw);
      if (!(choices as readonly string[]).includes(word)) throw flagError(flag, `one of ${choices.join(', ')}`, raw);
      return word as C;
    },
  };
}

/** `flag`, its value passed through `map` (e.g. a word into the config value it stands for). */
export function mapped<A, B>(flag: Flag<A>, map: (value: A, name: string) => B): Flag<B> {
  return { ...flag, read: (raw, name) => map(flag.read(raw, name), name) };
}

/** The text of a flag's default for --help and docs/cli.md, or null when it has none. */
export function defaultText(flag: Flag<unknown>): string | null {
  if (flag.defaultText !== undefined) return flag.defaultText;
  if (flag.default === undefined) return null;
  return typeof flag.default === 'string' ? `"${flag.default}"` : String(flag.default);
}
