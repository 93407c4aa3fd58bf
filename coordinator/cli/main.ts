// The flocktrain command line: a dispatcher over COMMANDS (cli/commands.ts). It builds
// the yargs parser and --help from each command's flag groups, turns what yargs read
// into typed values (parseGroups, the one check of each flag), and runs the command.
// `flocktrain help [command]` is --help for those who cannot pass it (npx swallows a
// bare --help). Errors meant for users print as one line, never a stack trace.

import yargs, { type Argv } from 'yargs';
import { FlocktrainError } from '../../shared/errors.js';
import { COMMANDS } from './commands.js';
import { defaultText, flagName, parseGroups, type AnyCommand } from '../../shared/node/flags.js';

/** A mistake in the command line's shape (unknown flag or command, missing value): exit code 2. */
class UsageError extends Error {}

const USAGE =
  '$0 <command> [options]\n\nDistributed data-parallel training over WebSocket workers, bit-identical to one process.';

/** Runs the command `argv` names; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const args = helpArgs(argv);
    refuseRepeatedFlags(args);
    const parsed = await parser(args).parseAsync();
    const command = COMMANDS.find((c) => c.name === parsed._[0]);
    if (command === undefined) throw new UsageError(`unknown command "${String(parsed._[0])}"`);
    return await command.run(parseGroups(command.groups, parsed));
  } catch (err) {
    if (err instanceof UsageError) return fail(`${err.message} (see flocktrain help)`, 2);
    if (err instanceof FlocktrainError) return fail(err.message, 1);
    throw err;
  }
}

function fail(message: string, code: number): number {
  process.stderr.write(`flocktrain: ${message}\n`);
  return code;
}

/** `help` → `--help`; `help <command>` → `<command> --help`. */
function helpArgs(argv: readonly string[]): readonly string[] {
  if (argv[0] !== 'help') return argv;
  if (argv.length > 2) throw new UsageError('help takes at most one command');
  if (argv.length === 1) return ['--help'];
  if (!COMMANDS.some((c) => c.name === argv[1]))
    throw new UsageError(`help: no command "${argv[1]}"; the commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
  return [argv[1], '--help'];
}

/** yargs would turn a repeated numeric flag into a sum; refuse the ambiguity instead. */
function refuseRepeatedFlags(argv: readonly string[]): void {
  const seen = new Set<string>();
  for (const arg of argv) {
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0].replace(/^no-/, '');
    if (seen.has(name)) throw new UsageError(`--${name} is given more than once`);
    seen.add(name);
  }
}

function parser(argv: readonly string[]): Argv {
  let y = yargs([...argv])
    .scriptName('flocktrain')
    .usage(USAGE);
  for (const command of COMMANDS) y = y.command(command.name, command.summary, (c) => declareFlags(c, command));
  return (
    y
      .command('help [command]', 'show the help of flocktrain or of one command (as --help)')
      .demandCommand(1, `name a command: ${COMMANDS.map((c) => c.name).join(', ')} or help`)
      .strict()
      .help()
      .version()
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      // Only yargs' own findings arrive here (unknown flags, missing values): no command runs inside yargs.
      .fail((msg: string | null, err: Error | null) => {
        throw new UsageError((msg ?? err?.message ?? 'bad command line').replace(/\s*\n\s*/g, ' '));
      })
  );
}

/**
 * The command's flags as yargs options, for parsing and --help only: yargs checks no
 * values (no choices, no number types), so every check is the flag's own `read`.
 */
function declareFlags(y: Argv, command: AnyCommand): Argv {
  for (const group of Object.values(command.groups)) {
    const names: string[] = [];
    for (const [key, flag] of Object.entries(group.flags)) {
      const name = flagName(key);
      const shown = defaultText(flag);
      const choices = flag.choices !== undefined ? ` [choices: ${flag.choices.join(', ')}]` : '';
      y = y.option(name, {
        describe: flag.describe + choices,
        // Numbers and choices stay untyped so that a wrong value reaches `read` as typed.
        ...(flag.type === 'number' || choices !== '' ? { requiresArg: true } : { type: flag.type }),
        ...(shown !== null ? { defaultDescription: shown } : {}),
        ...(flag.required === true ? { demandOption: true } : {}),
        ...(flag.hidden === true ? { hidden: true } : {}),
      });
      if (flag.hidden !== true) names.push(name);
    }
    if (names.length > 0) y = y.group(names, `${group.title}:`);
  }
  return y;
}
