// The dataset's HTTP route: GET /data/<hash> answers the transfer body
// (shared/data/transfer.ts) as the dataset is stored, compressed when the client
// accepts it, and cacheable for good: the URL names the content, so a response never
// goes stale. A client that already holds it (If-None-Match with its ETag) gets 304
// and no body. Compressed bodies are made once, on first demand, and kept: a room of
// tabs joining at once costs one compression, not one each.
//
// Every answer is logged at debug level ("dataset served", with its status and running
// counts of bodies and 304s sent), so a log shows how many downloads a room of tabs
// cost; at info a terminal would get a line per joining worker.
//
// Cache-Control is private: the route sits behind the run's token, and a shared cache
// would hand the data to anyone who asks. Browsers and workers keep it themselves.

import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Dataset } from '../../shared/data/dataset.js';
import { transferParts } from '../../shared/data/transfer.js';
import type { RouteHandler } from '../server.js';

/** Content codings offered, in order of preference. */
export const CODINGS = ['br', 'gzip'] as const;
export type Coding = (typeof CODINGS)[number];

/**
 * Bodies above this size are sent as they are: compressing one would hold a second
 * copy of a dataset that large in the coordinator's memory.
 */
const MAX_COMPRESSED_SOURCE = 256 * 1024 * 1024;

/** A year, the longest max-age caches are asked to honour. */
export const DATASET_CACHE_CONTROL = 'private, max-age=31536000, immutable';

/** The route serving `ds` (whose hash is `hash`) at /data/<hash>. */
export function datasetRoute(ds: Dataset, hash: string, log: Logger): RouteHandler {
  // Views of the dataset's own arrays: the body as it is is never copied.
  const identity = transferParts(ds);
  const compressed = new Map<Coding, Promise<Uint8Array[] | null>>();
  const body = (coding: Coding): Promise<Uint8Array[] | null> => {
    let pending = compressed.get(coding);
    if (pending === undefined) {
      pending = compress(identity, coding, log);
      compressed.set(coding, pending);
    }
    return pending;
  };
  const counts = { bodies: 0, notModified: 0 };
  const answer = (req: IncomingMessage, res: ServerResponse, coding: Coding | null, parts: readonly Uint8Array[]) => {
    const status = send(req, res, hash, coding, parts);
    if (status === 200) counts.bodies++;
    else counts.notModified++;
    log.debug({ status, coding, bytes: status === 200 ? byteLength(parts) : 0, ...counts }, 'dataset served');
  };
  return (req, res) => {
    const coding = byteLength(identity) <= MAX_COMPRESSED_SOURCE ? preferredCoding(req) : null;
    if (coding === null) return answer(req, res, null, identity);
    body(coding).then(
      (encoded) => (encoded === null ? answer(req, res, null, identity) : answer(req, res, coding, encoded)),
      () => answer(req, res, null, identity),
    );
  };
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  hash: string,
  coding: Coding | null,
  body: readonly Uint8Array[],
): 200 | 304 {
  // One ETag per representation: a cache holding the gzip body must not match the br one.
  const etag = `"${hash}${coding === null ? '' : `-${coding}`}"`;
  const headers: Record<string, string | number> = {
    etag,
    'cache-control': DATASET_CACHE_CONTROL,
    vary: 'Accept-Encoding',
  };
  if (etagMatches(req.headers['if-none-match'], etag)) {
    res.writeHead(304, headers).end();
    return 304;
  }
  if (coding !== null) headers['content-encoding'] = coding;
  res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': byteLength(body) });
  for (const part of body) res.write(part);
  res.end();
  return 200;
}

function byteLength(parts: readonly Uint8Array[]): number {
  return parts.reduce((sum, p) => sum + p.byteLength, 0);
}

/** Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks for it) or is `*`. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === etag;
  });
}

/** The best coding the request accepts (a q of 0 refuses one), or null for the body as it is. */
export function preferredCoding(req: Pick<IncomingMessage, 'headers'>): Coding | null {
  const header = req.headers['accept-encoding'];
  if (header === undefined) return null;
  const accepted = new Map<string, number>();
  for (const item of header.split(',')) {
    const [name, ...params] = item.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    accepted.set(name, q === undefined ? 1 : Number(q.slice(2)));
  }
  const star = accepted.get('*');
  return CODINGS.find((c) => (accepted.get(c) ?? star ?? 0) > 0) ?? null;
}

async function compress(identity: readonly Uint8Array[], coding: Coding, log: Logger): Promise<Uint8Array[] | null> {
  const started = performance.now();
  const size = byteLength(identity);
  try {
    const zip =
      coding === 'br'
        ? createBrotliCompress({
            params: {
              // Quality 5 of 11: MNIST's bytes shrink within 5% of quality 9's size in a fraction of its time.
              [constants.BROTLI_PARAM_QUALITY]: 5,
              [constants.BROTLI_PARAM_SIZE_HINT]: size,
            },
          })
        : createGzip();
    const [out] = await Promise.all([collect(zip), pipeline(Readable.from(identity, { objectMode: false }), zip)]);
    log.info(
      { coding, bytes: size, compressedBytes: out.byteLength, ms: Math.round(performance.now() - started) },
      'dataset compressed for serving',
    );
    // A body that does not shrink is not worth the client's decompression.
    return out.byteLength < size ? [out] : null;
  } catch (err) {
    log.warn({ coding, err: (err as Error).message }, 'cannot compress the dataset; serving it uncompressed');
    return null;
  }
}
