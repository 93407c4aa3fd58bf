// Bundles the browser side with esbuild into dist/browser/ (run by `npm run build`,
// after tsc): the worker page's main thread, its Web Worker (which carries the same
// WorkerClient, ShardComputer and kernels a Node worker runs, compiled from the same
// sources), the compute threads that Web Worker starts in a cross-origin isolated tab,
// and the dashboard. The bundles are build output, never committed.
//
// It also holds the platform lines, which Biome checks file by file (biome.json):
//   shared/          runs anywhere: no node:* module, no Node global (Buffer, process),
//                    no Node-only package; it imports only shared/, never shared/node/.
//   shared/node/     the one exception: Node-only code that both the coordinator and
//                    the Node worker use (logger, flags, dataset hash, ws frames).
//   worker/          the worker's platform-neutral core (client, compute, thread pool);
//   worker/browser/  its browser half; worker/node/ its Node half (entry, threads, cache).
//   coordinator/     Node-only, the command line (coordinator/cli/) included.
// The build fails when a bundle, or any file of shared/, reaches a Node module or steps
// out of shared/ (platform-lines.ts), naming the importing file, so a Node import hidden
// behind a re-export is caught too.

import { build, type BuildOptions } from 'esbuild';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformLines } from './platform-lines.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Output name (without .js) → source entry; the names are what coordinator/pages/assets.ts serves. */
const ENTRIES = {
  'worker-page': 'worker/browser/page.ts',
  'compute-worker': 'worker/browser/compute-worker.ts',
  'compute-thread': 'worker/browser/compute-thread.ts',
  dashboard: 'coordinator/pages/dashboard-client.ts',
} as const;

/** Every .ts file under dir (relative to the repository root), but none under `except`. */
function sources(dir: string, except: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !join(e.parentPath, e.name).startsWith(join(root, except)))
    .map((e) => join(e.parentPath, e.name));
}

const common: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  platform: 'browser',
  target: ['es2022'],
  logLevel: 'warning',
  plugins: [platformLines(root)],
};

/** esbuild has printed the errors, each naming its file: a stack trace would add nothing. */
async function bundle(options: BuildOptions) {
  try {
    return await build(options);
  } catch {
    process.exit(1);
  }
}

// All of shared/ but shared/node/, bundled and thrown away: what no bundle reaches yet must be browser-safe too.
await bundle({
  ...common,
  entryPoints: sources('shared', 'shared/node'),
  outdir: join(root, 'dist', 'shared-check'),
  write: false,
});

const result = await bundle({
  ...common,
  entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([out, src]) => [out, join(root, src)])),
  outdir: join(root, 'dist', 'browser'),
  format: 'iife',
  minify: true,
  legalComments: 'none',
  metafile: true,
});
const sizes = Object.entries(result.metafile?.outputs ?? {}).map(
  ([file, o]) => `${file.replace(/^.*dist\//, 'dist/')} ${(o.bytes / 1024).toFixed(0)} KiB`,
);
process.stdout.write(`browser bundles: ${sizes.join(', ')}\n`);
