// What the step machinery needs of a worker: its identity for the logs, counters for
// the logs and the dashboard, a way to send it bytes and a way to reject it. The hub's
// WorkerConnection is one; nothing here knows about sockets or the handshake.

import type { Logger } from 'pino';
import type { RejectReason } from '../../shared/protocol/codes.js';
import type { WorkerKind } from '../../shared/protocol/messages.js';

export interface StepWorker {
  readonly id: string;
  readonly kind: WorkerKind | null;
  readonly agent: string;
  readonly remote: string;
  /** Bound to the worker's id. */
  readonly log: Logger;
  /** Tasks accepted, samples they covered, and the compute ms the worker reported for them. */
  tasksDone: number;
  samplesDone: number;
  computeMs: number;
  /** Why it gets no shards ("standing by: …"), set by the scheduler until its next task; null while it takes work. */
  standby: string | null;
  /** Already-encoded bytes; `onSent` runs once they are handed to the OS (or the send failed). */
  send(bytes: Uint8Array, onSent?: () => void): void;
  /** Disconnects the worker for a bad result; it is then reported gone, and its work reassigned. */
  reject(reason: RejectReason, detail: string): void;
  /**
   * Disconnects the worker for a forged result (close code BANNED) and refuses it for
   * the rest of the run; it is then reported gone (if it was not already), and its work reassigned.
   */
  ban(detail: string): void;
}
