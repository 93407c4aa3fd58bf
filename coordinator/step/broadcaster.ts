// The weights workers compute with: each version encoded once, in a pooled buffer,
// for every worker, and sent lazily (a worker receives a version just before its
// first task at it, so an idle worker or a slow link is not flooded with weights it
// has no use for). Also lends the buffers bf16 results are widened into, so a run
// does not allocate a gradient per result.

import { roundToWire, wireBytesPer, type WireDtype } from '../../shared/wire-dtype.js';
import { MessagePool, type PooledMessage } from '../../shared/protocol/message-pool.js';
import type { StepWorker } from './worker.js';

/** Counters the broadcaster adds its sends to (the scheduler's stats). */
export interface SendCounters {
  /** Message bytes sent (WebSocket and TCP headers not included). */
  bytesOut: number;
  /** Of those and of the bytes received, the tensors themselves. */
  tensorBytes: number;
}

export interface CurrentWeights {
  readonly version: number;
  /** Owned by the broadcaster: copy it to keep it past the next publish. */
  readonly weights: Float32Array;
  /** The encoded weights message. */
  readonly bytes: Uint8Array;
}

export class WeightsBroadcaster {
  readonly #wireDtype: WireDtype;
  readonly #counters: SendCounters;
  readonly #pool = new MessagePool();
  /** The weights version each worker was last sent. */
  readonly #sentVersion = new Map<StepWorker, number>();
  /** The current weights message, encoded once for every worker, in a reused buffer. */
  #message: PooledMessage | null = null;
  /** The weights workers compute with: a view into that message (f32), or a rounded copy (bf16). */
  #weights: Float32Array | null = null;
  #version = -1;
  /** bf16 results are widened into these (tensorBuffer). */
  readonly #lentTensors: Float32Array[] = [];
  readonly #spareTensors: Float32Array[] = [];

  constructor(wireDtype: WireDtype, counters: SendCounters) {
    this.#wireDtype = wireDtype;
    this.#counters = counters;
  }

  /** The current version; -1 before the first publish. */
  get version(): number {
    return this.#version;
  }

  get published(): boolean {
    return this.#message !== null;
  }

  current(): CurrentWeights {
    if (this.#weights === null || this.#message === null) throw new Error('no weights published yet');
    return { version: this.#version, weights: this.#weights, bytes: this.#message.bytes };
  }

  /** Makes `weights` the current version (encoded now, sent on demand). */
  publish(version: number, weights: Float32Array): void {
    this.#message?.release();
    const dtype = this.#wireDtype;
    const message = this.#pool.encode({ type: 'weights', version, dtype, weights });
    this.#version = version;
    this.#message = message;
    if (dtype === 'f32') {
      // The tensor is the message's tail (codec.ts), 4-byte aligned.
      this.#weights = new Float32Array(
        message.bytes.buffer,
        message.bytes.byteOffset + message.bytes.byteLength - weights.byteLength,
        weights.length,
      );
    } else {
      // Rounded as the encoding rounded them (the welcome re-encodes these, unchanged).
      if (this.#weights === null || this.#weights.length !== weights.length)
        this.#weights = new Float32Array(weights.length);
      this.#weights.set(weights);
      roundToWire(this.#weights, dtype);
    }
  }

  /** Sends the current weights to a worker; their buffer is not reused until the OS has the bytes. */
  send(worker: StepWorker): void {
    const message = this.#message;
    if (message === null || this.#weights === null) throw new Error('no weights published yet');
    message.retain();
    this.#sentVersion.set(worker, this.#version);
    this.#counters.bytesOut += message.bytes.byteLength;
    this.#counters.tensorBytes += this.#weights.length * wireBytesPer(this.#wireDtype);
    worker.send(message.bytes, () => message.release());
  }

  /** Sends the current weights unless the worker was already sent this version. */
  sendIfStale(worker: StepWorker): void {
    if (this.#sentVersion.get(worker) !== this.#version) this.send(worker);
  }

  forget(worker: StepWorker): void {
    this.#sentVersion.delete(worker);
  }

  /**
   * A buffer to widen a bf16 result into. Buffers lent during one step are reused from
   * the start of the next (reclaimTensors): by then the step's reduced sum (one of
   * them) has been consumed by the trainer, and nothing else keeps results of a
   * finished step.
   */
  tensorBuffer(length: number): Float32Array {
    const k = this.#spareTensors.findIndex((b) => b.length === length);
    const buffer = k >= 0 ? this.#spareTensors.splice(k, 1)[0] : new Float32Array(length);
    this.#lentTensors.push(buffer);
    return buffer;
  }

  /** At the start of a step: every buffer lent so far may be lent again. */
  reclaimTensors(): void {
    this.#spareTensors.push(...this.#lentTensors.splice(0));
  }
}
