// The weights workers compute with, and the messages that carry them: each version
// is put in the wire dtype once, at publish, and copied into every message that
// carries it. A worker receives a version with its first task at it (so a step costs
// one message each way, and an idle worker or a slow link is not flooded with weights
// it has no use for), or alone when it joins. With a WeightsPublisher (weights over
// HTTP), each version is handed to it once instead, and a task names where to fetch it:
// then a joining worker is sent nothing until its first task. Also lends the buffers
// bf16 results are widened into, so a run does not allocate a gradient per result.

import { packBf16 } from '../../shared/kernels/bf16.js';
import { encode } from '../../shared/protocol/codec.js';
import { MessagePool, type PooledMessage } from '../../shared/protocol/message-pool.js';
import type { TaskMessage, WeightsRef } from '../../shared/protocol/messages.js';
import { roundToWire, type WireDtype, wireBytesPer } from '../../shared/wire-dtype.js';
import type { CheckWork } from './verifier.js';
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
  /**
   * As workers receive them (rounded to the wire dtype); owned by the broadcaster: copy to keep past the next publish.
   */
  readonly weights: Float32Array;
}

/** A task as the scheduler builds it; the broadcaster adds the weights when the worker needs them. */
export type TaskFields = Omit<TaskMessage, 'type' | 'dtype' | 'weights' | 'weightsRef'>;

/** Where versions are published for workers to fetch (coordinator/weights-route.ts's WeightsStore). */
export interface WeightsPublisher {
  /** Publishes `wire` (the weights in the wire dtype; copy them) as `version`, and says where. */
  publish(version: number, wire: Uint8Array): WeightsRef;
  /** Where `version` is, or null when it is not (or no longer) published. */
  ref(version: number): WeightsRef | null;
  /**
   * With a cache to fill first (weights-prime.ts): settles once `version` is in it, or filling it failed (it never
   * rejects); tasks at `version` wait for it. Absent, or null: they need not wait.
   */
  ready?(version: number): Promise<void> | null;
}

/** Makes a publisher that adds what it sends to `counters` (the scheduler's, which the broadcaster is given). */
export type PublisherFactory = (counters: SendCounters) => WeightsPublisher;

export class WeightsBroadcaster {
  readonly #wireDtype: WireDtype;
  readonly #counters: SendCounters;
  /** Buffers of messages that carry weights: a few per step (one per worker that computes). */
  readonly #pool = new MessagePool(8);
  /** The weights version each worker was last sent. */
  readonly #sentVersion = new Map<StepWorker, number>();
  /** (paramCount): the current weights, rounded to the wire dtype; reused from one publish to the next. */
  #weights: Float32Array | null = null;
  /** The same in the wire dtype's bytes: a view of #weights (f32) or their packed upper halves (bf16). */
  #wire: Uint8Array | null = null;
  #version = -1;
  /** bf16 results are widened into these (tensorBuffer). */
  readonly #lentTensors: Float32Array[] = [];
  readonly #spareTensors: Float32Array[] = [];
  /** Weights over HTTP: where each version goes, and where the current one is; null: weights ride in messages. */
  readonly #http: WeightsPublisher | null;
  #ref: WeightsRef | null = null;

  constructor(wireDtype: WireDtype, counters: SendCounters, http: PublisherFactory | null = null) {
    this.#wireDtype = wireDtype;
    this.#counters = counters;
    this.#http = http?.(counters) ?? null;
  }

  /** The current version; -1 before the first publish. */
  get version(): number {
    return this.#version;
  }

  get published(): boolean {
    return this.#weights !== null;
  }

  current(): CurrentWeights {
    if (this.#weights === null) throw new Error('no weights published yet');
    return { version: this.#version, weights: this.#weights };
  }

  /**
   * Makes `weights` the current version (sent on demand). Every message is a copy, so
   * the buffers are rewritten in place: a send in flight holds its own bytes.
   */
  publish(version: number, weights: Float32Array): void {
    if (this.#weights === null || this.#weights.length !== weights.length) {
      this.#weights = new Float32Array(weights.length);
      this.#wire =
        this.#wireDtype === 'f32'
          ? new Uint8Array(this.#weights.buffer)
          : new Uint8Array(new Uint16Array(weights.length).buffer);
    }
    this.#weights.set(weights);
    roundToWire(this.#weights, this.#wireDtype);
    if (this.#wireDtype === 'bf16') packBf16(new Uint16Array(this.#wire!.buffer), this.#weights);
    this.#version = version;
    this.#ref = this.#http?.publish(version, this.#wire!) ?? null;
  }

  /** What tasks at `version` wait for before they go out (WeightsPublisher.ready), or null: nothing. */
  ready(version: number): Promise<void> | null {
    return this.#http?.ready?.(version) ?? null;
  }

  /**
   * Sends the current weights alone (to a worker that joins); the next task at this version does not repeat them.
   * Over HTTP, nothing: the worker fetches them when its first task names them.
   */
  send(worker: StepWorker): void {
    const weights = this.#weights;
    if (weights === null) throw new Error('no weights published yet');
    if (this.#http !== null) return;
    this.#sendPooled(
      worker,
      this.#pool.encode({ type: 'weights', version: this.#version, dtype: this.#wireDtype, weights }, this.#wire!),
    );
  }

  /**
   * Sends a task at the current version, with the weights when the worker was not sent them yet. Over HTTP every task
   * names them instead (a few dozen bytes): a worker whose fetch failed then fetches again with its next task.
   */
  sendTask(worker: StepWorker, task: TaskFields): void {
    if (task.version !== this.#version || this.#weights === null)
      throw new Error(`task at version ${task.version}, but version ${this.#version} is published`);
    if (this.#ref !== null || this.#sentVersion.get(worker) === this.#version) {
      const bytes = encode({
        ...task,
        type: 'task',
        dtype: this.#wireDtype,
        weights: null,
        ...(this.#ref === null ? {} : { weightsRef: this.#ref }),
      });
      this.#sentVersion.set(worker, this.#version);
      this.#counters.bytesOut += bytes.byteLength;
      worker.send(bytes);
      return;
    }
    this.#sendPooled(
      worker,
      this.#pool.encode({ ...task, type: 'task', dtype: this.#wireDtype, weights: this.#weights }, this.#wire!),
    );
  }

  /**
   * Sends a check: its weights go along unless the worker holds exactly that version; over HTTP, their path instead
   * while that version is still served. The worker does not adopt them (they are usually older than its tasks'), so
   * what it was last sent stays as is.
   */
  sendCheck(worker: StepWorker, checkId: number, work: CheckWork): void {
    const ref = this.#http?.ref(work.version) ?? null;
    const holds = ref === null && this.#sentVersion.get(worker) === work.version;
    const bytes = encode({
      type: 'check',
      checkId,
      version: work.version,
      step: work.step,
      numShards: work.numShards,
      shards: work.shards.map((s) => ({ id: s.id, indices: s.indices })),
      dtype: this.#wireDtype,
      weights: holds || ref !== null ? null : work.weights,
      ...(ref === null ? {} : { weightsRef: ref }),
    });
    this.#counters.bytesOut += bytes.byteLength;
    if (!holds && ref === null) this.#counters.tensorBytes += work.weights.length * wireBytesPer(this.#wireDtype);
    worker.send(bytes);
  }

  /** Tells a worker it stands by, and why (rare, small: not pooled). */
  sendStandby(worker: StepWorker, reason: string): void {
    const bytes = encode({ type: 'standby', reason });
    this.#counters.bytesOut += bytes.byteLength;
    worker.send(bytes);
  }

  /** Sends a message that carries the current weights; its buffer is not reused until the OS has the bytes. */
  #sendPooled(worker: StepWorker, message: PooledMessage): void {
    this.#sentVersion.set(worker, this.#version);
    this.#counters.bytesOut += message.bytes.byteLength;
    this.#counters.tensorBytes += this.#wire!.byteLength;
    worker.send(message.bytes, () => message.release());
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
