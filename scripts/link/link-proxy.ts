// A TCP proxy that behaves like a slower, longer link between its clients and one
// target: each accepted connection gets its own link (one LinkSchedule per direction),
// so two workers through one proxy are two workers on their own lines, not on a
// shared one. User space, no root, no `tc`: bytes read from one side wait in a
// timestamped FIFO until their due time, then are written to the other side.
//
// What it models: serialisation (bytes / bandwidth, back to back on a busy line),
// propagation (the one-way latency), byte order, half-close (a FIN travels behind the
// data like any byte), and backpressure (a direction holding more than maxQueuedBytes,
// counting what the far side has not taken yet, stops reading from its source, so the
// sender's own socket fills up as on a real network). What it does not: packet loss,
// jitter, TCP's slow start, and the handshake's round trip (a connection is open as
// soon as the proxy accepts it; the first exchange over it pays the latency).
//
// Timers have millisecond granularity, so a chunk is released at its due time or up
// to about a millisecond later, never earlier; stats() reports how late on average.

import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { ConfigError } from '../../shared/errors.js';
import { checkShape, UNSHAPED, type LinkShape } from './link-shape.js';
import { LinkSchedule } from './link-schedule.js';

export interface LinkProxyOptions {
  /** Port to listen on (0: a free one, see LinkProxy.port). */
  readonly listenPort: number;
  /** Address to listen on. */
  readonly listenHost?: string;
  readonly target: { readonly host: string; readonly port: number };
  /** One-way latency of both directions, ms. */
  readonly latencyMs?: number;
  /** Rate of both directions, bits/s (Infinity: unlimited). */
  readonly bandwidthBitsPerSec?: number;
  /** Client → target, overriding the two above. */
  readonly up?: Partial<LinkShape>;
  /** Target → client, overriding the two above. */
  readonly down?: Partial<LinkShape>;
  /**
   * Bytes one direction may hold (queued plus not yet taken by the far side) before
   * it stops reading; default: twice the bandwidth-delay product, at least 1 MiB.
   */
  readonly maxQueuedBytes?: number;
  readonly log?: Logger;
}

export const LINK_PROXY_DEFAULTS = {
  listenHost: '127.0.0.1',
  latencyMs: UNSHAPED.latencyMs,
  bandwidthBitsPerSec: UNSHAPED.bandwidthBitsPerSec,
  minQueuedBytes: 1 << 20,
  /** Chunks are cut to this size so the far side sees data arrive as it would, in a stream, not in 64 kB lumps. */
  segmentBytes: 16 * 1024,
} as const;

export interface DirectionStats {
  /** Bytes delivered to the far side. */
  bytes: number;
  /** The most bytes this direction held at once, over all connections (a bound is a test of backpressure). */
  peakHeldBytes: number;
}

export interface LinkProxyStats {
  /** Connections accepted so far. */
  accepted: number;
  /** Connections still open. */
  open: number;
  up: DirectionStats;
  down: DirectionStats;
  /** Mean and largest delay between a chunk's due time and its release, ms (timer granularity). */
  meanLateMs: number;
  maxLateMs: number;
}

export interface LinkProxy {
  readonly port: number;
  readonly up: LinkShape;
  readonly down: LinkShape;
  stats(): LinkProxyStats;
  /** Stops listening and cuts every open connection; resolves once the server is closed. */
  close(): Promise<void>;
}

interface Lateness {
  sum: number;
  count: number;
  max: number;
}

/** A chunk in flight, or the FIN (null) behind the last one. */
interface InFlight {
  readonly due: number;
  readonly chunk: Buffer | null;
}

/** One direction of one connection: reads `from`, delays, writes `to`. */
class Direction {
  readonly #from: Socket;
  readonly #to: Socket;
  readonly #schedule: LinkSchedule;
  readonly #maxHeld: number;
  readonly #stats: DirectionStats;
  readonly #late: Lateness;
  /** FIFO in due order; #head indexes its first live entry (shifting a long array is O(n)). */
  #queue: InFlight[] = [];
  #head = 0;
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #paused = false;

  constructor(from: Socket, to: Socket, shape: LinkShape, maxHeld: number, stats: DirectionStats, late: Lateness) {
    this.#from = from;
    this.#to = to;
    this.#schedule = new LinkSchedule(shape);
    this.#maxHeld = maxHeld;
    this.#stats = stats;
    this.#late = late;
    from.on('data', (chunk: Buffer) => this.#admit(chunk));
    from.on('end', () => this.#push(null, this.#schedule.admit(0, performance.now())));
    to.on('drain', () => this.#throttle());
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
    this.#head = 0;
  }

  #admit(chunk: Buffer): void {
    const now = performance.now();
    const step = LINK_PROXY_DEFAULTS.segmentBytes;
    for (let at = 0; at < chunk.length; at += step) {
      const part = chunk.subarray(at, Math.min(at + step, chunk.length));
      this.#queuedBytes += part.length;
      this.#push(part, this.#schedule.admit(part.length, now));
    }
    this.#throttle();
  }

  #push(chunk: Buffer | null, due: number): void {
    this.#queue.push({ due, chunk });
    if (this.#timer === null) this.#release();
  }

  /** Writes out everything due, then waits for the next due time. */
  #release(): void {
    this.#timer = null;
    const now = performance.now();
    while (this.#head < this.#queue.length && this.#queue[this.#head].due <= now) {
      const { due, chunk } = this.#queue[this.#head++];
      const late = now - due;
      this.#late.sum += late;
      this.#late.count++;
      if (late > this.#late.max) this.#late.max = late;
      if (chunk === null) {
        this.#to.end();
        continue;
      }
      this.#queuedBytes -= chunk.length;
      this.#stats.bytes += chunk.length;
      this.#to.write(chunk);
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#throttle();
    if (this.#queue.length === 0) return;
    // Whole ms rounded up; a timer that still fires early (its start is the loop's
    // cached time) finds nothing due and waits again. Polling the last fraction of a
    // ms instead would keep a core busy for as long as a fast line is.
    const wait = this.#queue[this.#head].due - performance.now();
    this.#timer = setTimeout(() => this.#release(), Math.max(1, Math.ceil(wait)));
  }

  /** Reads from the source only while this direction holds fewer than maxHeld bytes. */
  #throttle(): void {
    const held = this.#queuedBytes + this.#to.writableLength;
    if (held > this.#stats.peakHeldBytes) this.#stats.peakHeldBytes = held;
    const full = held >= this.#maxHeld;
    if (full && !this.#paused) this.#from.pause();
    else if (!full && this.#paused) this.#from.resume();
    this.#paused = full;
  }
}

function closeOf(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

function directionShape(options: LinkProxyOptions, override: Partial<LinkShape> | undefined, name: string): LinkShape {
  return checkShape(
    {
      latencyMs: override?.latencyMs ?? options.latencyMs ?? LINK_PROXY_DEFAULTS.latencyMs,
      bandwidthBitsPerSec:
        override?.bandwidthBitsPerSec ?? options.bandwidthBitsPerSec ?? LINK_PROXY_DEFAULTS.bandwidthBitsPerSec,
    },
    name,
  );
}

function defaultMaxHeld(shape: LinkShape): number {
  const bdp =
    shape.bandwidthBitsPerSec === Number.POSITIVE_INFINITY
      ? 0
      : (shape.bandwidthBitsPerSec / 8) * (shape.latencyMs / 1000);
  return Math.max(LINK_PROXY_DEFAULTS.minQueuedBytes, Math.ceil(2 * bdp));
}

/** Starts listening; every connection accepted is forwarded to the target over its own simulated link. */
export async function startLinkProxy(options: LinkProxyOptions): Promise<LinkProxy> {
  const up = directionShape(options, options.up, 'up (client → target)');
  const down = directionShape(options, options.down, 'down (target → client)');
  const max = options.maxQueuedBytes;
  if (max !== undefined && !(Number.isInteger(max) && max > 0))
    throw new ConfigError(`maxQueuedBytes must be a positive integer, got ${max}`);
  const maxUp = max ?? defaultMaxHeld(up);
  const maxDown = max ?? defaultMaxHeld(down);
  const log = options.log;
  const stats: LinkProxyStats = {
    accepted: 0,
    open: 0,
    up: { bytes: 0, peakHeldBytes: 0 },
    down: { bytes: 0, peakHeldBytes: 0 },
    meanLateMs: 0,
    maxLateMs: 0,
  };
  const late: Lateness = { sum: 0, count: 0, max: 0 };
  /** Each open connection: cuts it, and resolves once both of its sockets have closed. */
  const open = new Map<number, { cut: () => void; closed: Promise<void> }>();

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    stats.accepted++;
    const id = stats.accepted;
    const target = connect({
      host: options.target.host,
      port: options.target.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    const directions = [
      new Direction(client, target, up, maxUp, stats.up, late),
      new Direction(target, client, down, maxDown, stats.down, late),
    ];
    const stop = (): void => {
      for (const d of directions) d.stop();
    };
    // An error on either side resets the other at once: what was still in flight is lost, as with a RST.
    const reset = (side: string) => (err: Error) => {
      log?.debug({ connection: id, side, err: err.message }, 'connection reset');
      stop();
      client.resetAndDestroy();
      target.resetAndDestroy();
    };
    client.on('error', reset('client'));
    target.on('error', reset('target'));
    const closed = Promise.all([closeOf(client), closeOf(target)]).then(() => {
      stop();
      open.delete(id);
      stats.open--;
    });
    const cut = (): void => {
      stop();
      client.destroy();
      target.destroy();
    };
    open.set(id, { cut, closed });
    stats.open++;
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort, options.listenHost ?? LINK_PROXY_DEFAULTS.listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('link proxy: no TCP address after listen');
  return {
    port: address.port,
    up,
    down,
    stats: () => ({
      ...stats,
      up: { ...stats.up },
      down: { ...stats.down },
      meanLateMs: late.count === 0 ? 0 : late.sum / late.count,
      maxLateMs: late.max,
    }),
    close: async () => {
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const connections = [...open.values()];
      for (const c of connections) c.cut();
      await Promise.all([serverClosed, ...connections.map((c) => c.closed)]);
    },
  };
}
