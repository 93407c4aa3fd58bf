// Bundles the browser side with esbuild into dist/browser/ (run by `npm run build`,
// after tsc): the worker page's main thread, its Web Worker (which carries the same
// WorkerClient, ShardComputer and kernels a Node worker runs, compiled from the same
// sources), the compute threads that Web Worker starts in a cross-origin isolated tab,
// and the dashboard. The bundles are build output, never committed.

import { build } from 'esbuild';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Output name (without .js) → source entry; the names are what coordinator/pages/assets.ts serves. */
const ENTRIES = {
  'worker-page': 'worker/browser/page.ts',
  'compute-worker': 'worker/browser/compute-worker.ts',
  'compute-thread': 'worker/browser/compute-thread.ts',
  dashboard: 'coordinator/pages/dashboard-client.ts',
} as const;

const result = await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([out, src]) => [out, join(root, src)])),
  outdir: join(root, 'dist', 'browser'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
const sizes = Object.entries(result.metafile.outputs).map(
  ([file, o]) => `${file.replace(/^.*dist\//, 'dist/')} ${(o.bytes / 1024).toFixed(0)} KiB`,
);
process.stdout.write(`browser bundles: ${sizes.join(', ')}\n`);
