// Reusable buffers for the messages sent every step (weights down, a gradient up).
// Encoding a 400 kB message into fresh memory costs ~0.4 ms here, most of it the page
// faults of memory never touched before; copying it into a buffer used last step
// costs ~0.01 ms. A buffer is reused only once nothing holds it: sockets keep a
// reference to what they send until the OS has the bytes, so every send retains the
// message and releases it from its completion callback.

import { encodedLength, encodeLayout, writeMessage } from './codec.js';
import type { CoordinatorMessage, WorkerMessage } from './messages.js';

export interface PooledMessage {
  /** The encoded message; do not keep it past the last release. */
  readonly bytes: Uint8Array;
  /** One more holder (a send in flight). */
  retain(): void;
  /** One holder less; at zero the buffer goes back to the pool. */
  release(): void;
}

interface Slot {
  readonly buffer: ArrayBuffer;
  holders: number;
  /** Bumped at every reuse, so a stale release cannot free the next message. */
  generation: number;
}

export class MessagePool {
  readonly #slots: Slot[] = [];
  readonly #maxSlots: number;

  /** Keeps at most `maxSlots` buffers; beyond that, busy ones are forgotten (the GC takes them). */
  constructor(maxSlots = 4) {
    this.#maxSlots = maxSlots;
  }

  /**
   * Encodes into a free buffer; the caller holds the result once (release it when done).
   * `encoded`: the message's tensor already in its wire dtype, copied instead of converted.
   */
  encode(message: WorkerMessage | CoordinatorMessage, encoded?: Uint8Array): PooledMessage {
    const layout = encodeLayout(message);
    const length = encodedLength(layout);
    const slot = this.#take(length);
    const bytes = new Uint8Array(slot.buffer, 0, length);
    writeMessage(layout, bytes, encoded);
    slot.holders = 1;
    const generation = ++slot.generation;
    return {
      bytes,
      retain: () => {
        if (slot.generation !== generation || slot.holders === 0) throw new Error('retain of a released message');
        slot.holders++;
      },
      release: () => {
        if (slot.generation === generation && slot.holders > 0) slot.holders--;
      },
    };
  }

  #take(length: number): Slot {
    const free = this.#slots.find((s) => s.holders === 0 && s.buffer.byteLength >= length);
    if (free !== undefined) return free;
    // Room for a slightly longer head next time (a larger version number, more nodes).
    const slot: Slot = { buffer: new ArrayBuffer(length + 256), holders: 0, generation: 0 };
    this.#slots.push(slot);
    if (this.#slots.length > this.#maxSlots) {
      const idle = this.#slots.findIndex((s) => s.holders === 0 && s !== slot);
      this.#slots.splice(Math.max(idle, 0), 1);
    }
    return slot;
  }
}
