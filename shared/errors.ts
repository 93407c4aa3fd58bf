// Error classes for failures a user or a peer can cause. Each has a stable code so
// logs and tests can match on it; the message is one line saying what was expected
// and what arrived. Anything else thrown is a bug and keeps its stack trace.

export type ErrorCode =
  | 'CONFIG' // a flag or option value is invalid or contradicts another
  | 'DATA' // a dataset file or source could not be read or parsed
  | 'MODEL_FILE' // a safetensors file is corrupt or does not match the model
  | 'CHECKPOINT' // a checkpoint is corrupt or belongs to another run
  | 'PROTOCOL' // a peer sent a message that violates the wire protocol
  | 'AUTH' // a peer presented a wrong or missing token
  | 'COMPUTE'; // a compute thread died

export class FlocktrainError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
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
