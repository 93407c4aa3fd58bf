// docs/cli.md is made from the commands' flag declarations: it must be what
// `npm run docs:cli` writes today, so a flag added or changed without it fails here.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../coordinator/cli/commands.js';
import { cliDoc } from '../../../coordinator/cli/doc.js';
import { flagName } from '../../../shared/node/flags.js';

const DOC = fileURLToPath(new URL('../../../docs/cli.md', import.meta.url));

describe('docs/cli.md', () => {
  it('is up to date with the flag declarations (npm run docs:cli writes it)', () => {
    expect(readFileSync(DOC, 'utf8'), 'docs/cli.md is out of date: run npm run docs:cli').toBe(cliDoc(COMMANDS));
  });

  it('names every command and every flag users may pass, and no hidden one', () => {
    const doc = cliDoc(COMMANDS);
    for (const command of COMMANDS) {
      expect(doc).toContain(`## flocktrain ${command.name}`);
      for (const group of Object.values(command.groups))
        for (const [key, flag] of Object.entries(group.flags))
          expect(doc.includes(`\`--${flagName(key)}\``), `--${flagName(key)}`).toBe(flag.hidden !== true);
    }
  });
});
