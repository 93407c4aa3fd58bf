// WebSocket close codes and rejection reasons of the flocktrain protocol, one line
// each on what the sender means. 4000–4999 is the range RFC 6455 leaves to applications.

import { FlocktrainError } from '../errors.js';

// 2: the welcome names the kernel set; a version-1 worker would silently compute with the JS set.
// 3: the welcome names the wire dtype, tensors say theirs; a version-2 worker could not read bf16.
// 4: the welcome carries no weights; they come as a `weights` message once the worker is ready,
//    so a peer that has not loaded the dataset is never sent the model.
// 4: also, the dataset descriptor names the features' dtype; a version-3 worker would read byte features as f32.
// 5: a task carries the weights of its version when the worker lacks them (a version-4
//    worker would compute a step with the previous step's weights); standby messages.
// 6: a task names its step's global index, which seeds dropout; a version-5 worker would draw masks from the version.
// 7: `check` and `digest`: an idle worker may recompute an audited task; a version-6 worker would close on a check.
// 8: a task or check may carry a `weightsRef` (an HTTP path and hash) instead of the weights;
//    a version-7 worker would compute with the weights it held before.
//    And `banReport`: a relay tells its coordinator it banned one of its own workers; a version-7 coordinator
//    would close the relay on it.
export const PROTOCOL_VERSION = 8;

export const CloseCode = {
  /** Training finished; the worker should exit (not reconnect). */
  DONE: 4000,
  /** The hello carried a missing or wrong token, or the worker's named token was revoked. */
  UNAUTHORIZED: 4001,
  /** A message could not be decoded or failed validation. */
  PROTOCOL_ERROR: 4002,
  /** The peer speaks another protocol version. */
  VERSION_MISMATCH: 4003,
  /** No hello arrived within the handshake deadline. */
  HELLO_TIMEOUT: 4004,
  /** A result was well-formed but wrong: unassigned shards, bad length, non-finite values. */
  BAD_RESULT: 4005,
  /** The coordinator is shutting down (interrupted); the worker may reconnect later. */
  SHUTDOWN: 4006,
  /** The worker left on its own (user pressed Leave, or the process is exiting). */
  LEAVING: 4007,
  /** The worker cannot run the run's kernel set (e.g. no WebAssembly SIMD); it must not compute with another. */
  UNSUPPORTED_KERNELS: 4008,
  /** The worker missed its task deadline several times in a row and was ejected; it may reconnect. */
  TOO_SLOW: 4009,
  /**
   * A result's bits differ from the coordinator's recomputation of the same task: the
   * worker is refused for the rest of the run and must not reconnect.
   */
  BANNED: 4010,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Why a message was rejected; stable strings for logs and tests. */
export type RejectReason =
  | 'malformed' // not msgpack, not a map, or a field of the wrong type
  | 'unknown_type' // a type this side does not understand
  | 'version' // hello with another protocol version
  | 'too_large' // a length beyond what the model or dataset allows
  | 'bad_length' // a gradient whose length is not what the nodes imply
  | 'non_finite' // NaN or ±Infinity in a gradient or statistic
  | 'not_assigned' // a result for a task or shards not assigned to this worker
  | 'unexpected' // a valid message at the wrong point of the conversation
  | 'too_slow' // missed its task deadline several times in a row (not a message: the lack of one)
  | 'forged' // a result whose bits differ from the coordinator's recomputation of the same task
  | 'not_reading'; // does not read what it is sent: its unsent bytes grew past the bound

/** A message that violates the protocol; `reason` says how, for the close reason and the logs. */
export class ProtocolError extends FlocktrainError {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string) {
    super('PROTOCOL', message);
    this.reason = reason;
  }
}
