// The one hierarchy of errors a user or a peer can cause: every such error is a
// FlocktrainError subclass with a stable code, so logs and tests can match on it,
// and a one-line message saying what was expected and what arrived, which is all a
// user sees of it (the CLI prints it, never a stack trace). Anything else thrown is
// a bug and keeps its stack trace. Throw a subclass, one per kind of failure; the
// ProtocolError (shared/protocol/codes.ts) and FeedError (coordinator/dashboard-schema.ts)
// live beside the validators that throw them.

export type ErrorCode =
  | 'CONFIG' // a flag or option value is invalid or contradicts another
  | 'DATA' // a dataset file or source could not be read or parsed
  | 'MODEL_FILE' // a safetensors file is corrupt or does not match the model
  | 'CHECKPOINT' // a checkpoint is corrupt or belongs to another run
  | 'PROTOCOL' // a peer sent a message that violates the wire protocol
  | 'AUTH' // a peer presented a wrong or missing token
  | 'COMPUTE' // a compute thread died
  | 'DIVERGED' // the step's gradient is not finite: training diverged
  | 'CANCELLED' // a step was abandoned before it completed (shutdown)
  | 'FEED'; // a dashboard feed message failed validation in the page

export class FlocktrainError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    // One line, whatever the message was built from (a file name, a peer's text).
    super(message.replace(/\s*[\r\n]+\s*/g, ' ').trim());
    this.code = code;
    this.name = new.target.name;
  }
}

export class ConfigError extends FlocktrainError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}

export class DataError extends FlocktrainError {
  constructor(message: string) {
    super('DATA', message);
  }
}

export class ModelFileError extends FlocktrainError {
  constructor(message: string) {
    super('MODEL_FILE', message);
  }
}

export class CheckpointError extends FlocktrainError {
  constructor(message: string) {
    super('CHECKPOINT', message);
  }
}

export class ComputeError extends FlocktrainError {
  constructor(message: string) {
    super('COMPUTE', message);
  }
}

/** A step's reduced gradient (or a worker's, confirmed by recomputation) is not finite. */
export class DivergedError extends FlocktrainError {
  /** 1-based epoch and 0-based step within it, as the step log counts them. */
  readonly epoch: number;
  readonly step: number;
  constructor(epoch: number, step: number) {
    super(
      'DIVERGED',
      `the gradient at epoch ${epoch} step ${step} is not finite: training diverged (try a lower --lr)`,
    );
    this.epoch = epoch;
    this.step = step;
  }
}

/** Thrown by an executor's run() when the step was abandoned (shutdown while it waited). */
export class StepCancelled extends FlocktrainError {
  constructor(reason: string) {
    super('CANCELLED', reason);
  }
}
