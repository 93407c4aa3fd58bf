// Writes docs/cli.md from the commands' flag declarations (npm run docs:cli).

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../coordinator/cli/commands.js';
import { cliDoc } from '../coordinator/cli/doc.js';

const path = fileURLToPath(new URL('../../docs/cli.md', import.meta.url));
writeFileSync(path, cliDoc(COMMANDS));
process.stdout.write(`wrote ${path}\n`);
