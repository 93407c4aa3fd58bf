// Serving the browser side: the two HTML pages (worker page at /, dashboard at
// /dashboard) and the esbuild bundles under /assets/. The bundles are built into
// dist/browser/ by scripts/build-browser.ts (part of `npm run build`); they are never
// committed. The pages carry no data, so anyone may fetch them: the token rides in the
// link's fragment, which never reaches the server, and the page's script reads it
// (and takes it out of the address bar); nothing from a request is echoed into HTML.
//
// The worker page and the bundles are served cross-origin isolated (COOP same-origin +
// COEP require-corp, and CORP same-origin on the scripts): that is what gives the page
// and its Web Workers SharedArrayBuffer, which the browser worker's compute threads
// share the dataset, weights and gradients through (worker/browser/web-threads.ts). A
// browser grants it only in a secure context (https, or http://localhost / 127.0.0.1);
// elsewhere the tab computes on one thread. The dashboard needs no isolation and gets
// none, so nothing it embeds has to opt in.

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import type { RouteHandler } from '../server.js';
import { DASHBOARD_HTML } from './dashboard-html.js';
import { WORKER_HTML } from './worker-html.js';

/** Bundle file names, as scripts/build-browser.ts writes them. */
export const BUNDLES = ['worker-page.js', 'compute-worker.js', 'compute-thread.js', 'dashboard.js'] as const;

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // The token is in the page's URL: never send it on as a referrer.
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
};

/** dist/browser of this package, whether running from dist/ or from the sources. */
export function bundleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`flocktrain: cannot find the package root from ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return join(dir, 'dist', 'browser');
}

/** What makes a document (and the workers it starts) crossOriginIsolated. */
const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
} as const;

const SCRIPT_HEADERS = {
  'content-type': 'text/javascript; charset=utf-8',
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  // A worker's script response carries its own COEP; CORP lets an isolated page load it.
  'cross-origin-resource-policy': 'same-origin',
  ...ISOLATION_HEADERS,
};

function html(body: string, headers: Record<string, string> = HTML_HEADERS) {
  return (_req: unknown, res: ServerResponse): void => {
    res.writeHead(200, headers).end(body);
  };
}

/** Routes anyone may fetch: the worker page and the bundles (code, no data). */
export function publicPageRoutes(): [string, RouteHandler][] {
  const dir = bundleDir();
  const bundles = BUNDLES.map((name): [string, RouteHandler] => [
    `/assets/${name}`,
    (_req, res) => {
      readFile(join(dir, name)).then(
        (body) => res.writeHead(200, SCRIPT_HEADERS).end(body),
        () =>
          res
            .writeHead(503, { 'content-type': 'text/plain' })
            .end(`browser bundle ${name} is missing: run npm run build\n`),
      );
    },
  ]);
  return [['/', html(WORKER_HTML, { ...HTML_HEADERS, ...ISOLATION_HEADERS })], ...bundles];
}

/** The dashboard page: code anyone may fetch, like the worker page; its data comes from /events, behind a token. */
export function dashboardPageRoutes(): [string, RouteHandler][] {
  return [['/dashboard', html(DASHBOARD_HTML)]];
}
