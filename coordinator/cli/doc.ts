// docs/cli.md, made from the commands' flag declarations: every command and every
// flag (but the hidden testing aids) with its value, default and help. A group that
// several commands take is written once. scripts/gen-cli-doc.ts writes the file
// (`npm run docs:cli`); test/cli/doc.test.ts fails when it is out of date.

import { defaultText, flagName, type AnyCommand, type Flag, type FlagGroup } from '../../shared/node/flags.js';

const HEADER = `# Command-line reference

<!-- Made by \`npm run docs:cli\` from the commands' flag declarations: edit those, not this file. -->

\`flocktrain <command> [options]\`. Every command takes \`--help\`; \`flocktrain help [command]\` prints the same
(npx keeps a bare \`--help\` to itself). Flags turned on by default turn off with \`--no-<flag>\`. A flag given
twice is refused, and so is any value out of range, with one line naming the flag, what it expects and what it
got.`;

/** GitHub's anchor for a heading. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function valueText(flag: Flag<unknown>): string {
  if (flag.choices !== undefined) return flag.choices.map((c) => `\`${c}\``).join(', ');
  return flag.takes ?? { number: 'number', string: 'text', boolean: 'on/off' }[flag.type];
}

function table(group: FlagGroup): string[] {
  const rows = Object.entries(group.flags)
    .filter(([, flag]) => flag.hidden !== true)
    .map(([key, flag]) => {
      const shown = defaultText(flag);
      const byDefault =
        flag.required === true ? 'required' : shown === null ? '' : `\`${shown.replace(/^"|"$/g, '')}\``;
      return `| \`--${flagName(key)}\` | ${valueText(flag)} | ${cell(byDefault)} | ${cell(flag.describe)} |`;
    });
  if (rows.length === 0) return [];
  return ['| Flag | Value | Default | Meaning |', '| --- | --- | --- | --- |', ...rows];
}

/** The whole of docs/cli.md. */
export function cliDoc(commands: readonly AnyCommand[]): string {
  const users = new Map<FlagGroup, string[]>();
  for (const command of commands)
    for (const group of Object.values(command.groups)) users.set(group, [...(users.get(group) ?? []), command.name]);
  const shared = [...users].filter(([group, names]) => names.length > 1 && table(group).length > 0);
  const heading = (group: FlagGroup): string => `${group.title} flags`;

  const out = [HEADER, ''];
  out.push(`Commands: ${commands.map((c) => `[${c.name}](#${anchor(`flocktrain ${c.name}`)})`).join(', ')}.`, '');
  for (const command of commands) {
    out.push(
      `## flocktrain ${command.name}`,
      '',
      `${command.summary[0].toUpperCase()}${command.summary.slice(1)}.`,
      '',
    );
    const own = Object.values(command.groups).filter((g) => (users.get(g)?.length ?? 0) === 1 && table(g).length > 0);
    const common = Object.values(command.groups).filter((g) => shared.some(([s]) => s === g));
    if (common.length > 0)
      out.push(`Also: ${common.map((g) => `[${g.title.toLowerCase()}](#${anchor(heading(g))})`).join(', ')}.`, '');
    for (const group of own) out.push(`### ${group.title}`, '', ...table(group), '');
  }
  if (shared.length > 0) out.push('## Flags of several commands', '');
  for (const [group, names] of shared)
    out.push(`### ${heading(group)}`, '', `Taken by ${names.join(', ')}.`, '', ...table(group), '');
  return `${out.join('\n').trimEnd()}\n`;
}
