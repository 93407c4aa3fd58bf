// The Node worker's fetch of weights a task names by path (the coordinator's
// --weights-over-http): a plain GET on the origin this worker joined, through any HTTP
// cache in front of it. No token goes with it: the route is public so that a shared
// cache can answer it, and the path is its own capability. The body must be exactly
// the size the model implies; the caller (WorkerClient) checks its SHA-256.

import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { DEFAULTS } from '../../shared/defaults.js';
import type { FetchWeights } from '../client.js';
import { httpBase } from './dataset-cache.js';

/**
 * A fetch that stalls this long is given up: by then the coordinator has handed the task to
 * another worker (its longest deadline), and a later task asks again.
 */
const FETCH_TIMEOUT_MS = DEFAULTS.coordinator.taskTimeoutMaxMs;

/** Fetches weights from the coordinator at `wsUrl` (ws:// or wss://); `ca`: a PEM certificate to trust for https. */
export function makeWeightsFetcher(wsUrl: string, ca?: string, timeoutMs = FETCH_TIMEOUT_MS): FetchWeights {
  const base = httpBase(wsUrl);
  const origin = new URL(base).origin;
  return (path, bytes, fresh) => {
    const url = new URL(path, base);
    // The codec admits only /weights/<version>-<hash>; this is the last word on where a request goes.
    if (url.origin !== origin || !url.pathname.startsWith('/weights/'))
      return Promise.reject(new Error(`weights path ${JSON.stringify(path.slice(0, 100))} leaves ${origin}`));
    return download(url, bytes, fresh, ca, timeoutMs);
  };
}

function download(
  url: URL,
  size: number,
  fresh: boolean,
  ca: string | undefined,
  timeoutMs: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (detail: string): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(new Error(`GET ${url.pathname.slice(0, 30)}… ${detail}`));
    };
    // No accept-encoding: weights hardly compress, and one representation keeps one cache entry.
    const headers: Record<string, string> = fresh ? { 'cache-control': 'no-cache', pragma: 'no-cache' } : {};
    const onResponse = (res: IncomingMessage): void => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(`answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd());
      }
      const coding = res.headers['content-encoding'];
      if (coding !== undefined && coding !== 'identity')
        return fail(`sent content-encoding ${JSON.stringify(coding.slice(0, 40))}, which was not asked for`);
      const announced = res.headers['content-length'];
      if (announced !== undefined && Number(announced) !== size)
        return fail(`announces ${announced.slice(0, 20)} bytes, the model's weights are ${size}`);
      // A fresh buffer of its own: 4-byte aligned, so f32 weights are a view of it, not a copy.
      const out = new Uint8Array(size);
      let at = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (at + chunk.byteLength > size) return fail(`sent more than the ${size} bytes of the model's weights`);
        out.set(chunk, at);
        at += chunk.byteLength;
      });
      res.on('end', () => {
        if (settled) return;
        if (at !== size) return fail(`ended after ${at} of ${size} bytes`);
        settled = true;
        resolve(out);
      });
      res.on('error', (err) => fail(`failed: ${err.message}`));
    };
    const req =
      url.protocol === 'https:'
        ? httpsGet(url, { headers, ...(ca === undefined ? {} : { ca }) }, onResponse)
        : httpGet(url, { headers }, onResponse);
    req.setTimeout(timeoutMs, () => fail(`stalled for ${timeoutMs} ms`));
    req.on('error', (err) => fail(`failed: ${err.message}`));
  });
}
