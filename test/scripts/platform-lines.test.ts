// scripts/platform-lines.ts: a browser bundle that reaches a Node module, or shared/ code
// that imports from outside shared/, fails to build with an error naming the importing
// file; platform-neutral code builds.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { platformLines } from '../../scripts/platform-lines.js';

const root = mkdtempSync(join(tmpdir(), 'flocktrain-lines-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

/** The error texts of bundling `entry` (relative to root) for a browser; [] when it builds. */
async function errorsOf(entry: string): Promise<string[]> {
  try {
    await build({
      absWorkingDir: root,
      entryPoints: [join(root, entry)],
      bundle: true,
      write: false,
      platform: 'browser',
      logLevel: 'silent',
      plugins: [platformLines(root)],
    });
    return [];
  } catch (err) {
    return (err as { errors: { text: string }[] }).errors.map((e) => e.text);
  }
}

write({
  'shared/math.ts': 'export const two = 2;\n',
  'shared/neutral.ts': "export { two } from './math.js';\n",
  'shared/reads-file.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
  'shared/bare-builtin.ts': "import { createHash } from 'crypto';\nexport const h = createHash;\n",
  'shared/uses-ws.ts': "import { WebSocket } from 'ws';\nexport const W = WebSocket;\n",
  'shared/steps-out.ts': "export { log } from '../coordinator/log.js';\n",
  'coordinator/log.ts': 'export const log = 1;\n',
  'shared/node-corner.ts': "export { log } from './node/log.js';\n",
  'shared/node/log.ts': 'export const log = 1;\n',
  'worker/browser/page.ts': "import { read } from '../../shared/reads-file.js';\nexport const r = read;\n",
  'worker/browser/fine.ts': "import { two } from '../../shared/neutral.js';\nexport const t = two;\n",
});

describe('platformLines', () => {
  it('lets platform-neutral code build', async () => {
    expect(await errorsOf('shared/neutral.ts')).toEqual([]);
    expect(await errorsOf('worker/browser/fine.ts')).toEqual([]);
  });

  it.each([
    ['shared/reads-file.ts', 'shared/reads-file.ts imports the Node module "node:fs", which no browser has'],
    ['shared/bare-builtin.ts', 'shared/bare-builtin.ts imports the Node module "crypto", which no browser has'],
    ['shared/uses-ws.ts', 'shared/uses-ws.ts imports the Node module "ws", which no browser has'],
    [
      'shared/steps-out.ts',
      'shared/steps-out.ts imports coordinator/log.js: shared/ imports only shared/, never shared/node/',
    ],
    [
      'shared/node-corner.ts',
      'shared/node-corner.ts imports shared/node/log.js: shared/ imports only shared/, never shared/node/',
    ],
    ['worker/browser/page.ts', 'shared/reads-file.ts imports the Node module "node:fs", which no browser has'],
  ])('refuses %s', async (entry, error) => {
    expect(await errorsOf(entry)).toEqual([error]);
  });
});
