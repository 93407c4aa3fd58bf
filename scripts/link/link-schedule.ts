// The timing model of one direction of a simulated link, as a pure function of the
// arrival times and sizes of the chunks that enter it (no clock, no sockets: tests
// feed it times). A chunk waits for the line to be free, occupies it for
// bytes × 8 / bandwidth (serialisation), then needs the one-way latency to reach the
// far end (propagation). The line is a single FIFO, so delivery times never decrease
// and delivering in due order keeps the bytes in order.
//
// No cumulative drift: while the line stays busy, every due time is computed from the
// start of the busy period and the bytes admitted since, never by adding per-chunk
// durations (whose rounding would add up over millions of chunks), and never from the
// time a timer actually fired.

import type { LinkShape } from './link-shape.js';

export class LinkSchedule {
  readonly #latencyMs: number;
  /** ms of line time per byte (0: unlimited bandwidth). */
  readonly #msPerByte: number;
  /** When the current busy period of the line began, ms on the caller's clock. */
  #busySince = Number.NEGATIVE_INFINITY;
  /** Bytes admitted since #busySince. */
  #busyBytes = 0;

  constructor(shape: LinkShape) {
    this.#latencyMs = shape.latencyMs;
    this.#msPerByte = 8000 / shape.bandwidthBitsPerSec;
  }

  /** When the line finishes sending what it holds (≤ now: idle). */
  lineFreeAt(): number {
    return this.#busyBytes === 0 ? this.#busySince : this.#busySince + this.#busyBytes * this.#msPerByte;
  }

  /**
   * Admits `bytes` arriving at `now` (ms, never less than an earlier call's) and
   * returns when their last byte reaches the far end. Zero bytes (a FIN) arrive right
   * behind everything admitted before them.
   */
  admit(bytes: number, now: number): number {
    if (now >= this.lineFreeAt()) {
      this.#busySince = now;
      this.#busyBytes = 0;
    }
    this.#busyBytes += bytes;
    return this.#busySince + this.#busyBytes * this.#msPerByte + this.#latencyMs;
  }
}
