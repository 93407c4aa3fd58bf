// shared/errors.ts: every error a user or peer can cause is one FlocktrainError
// subclass with a stable code and a one-line message.

import { describe, expect, it } from 'vitest';
import { FeedError } from '../../coordinator/dashboard-schema.js';
import {
  CheckpointError,
  ComputeError,
  ConfigError,
  DataError,
  DivergedError,
  FlocktrainError,
  ModelFileError,
  StepCancelled,
} from '../../shared/errors.js';
import { ProtocolError } from '../../shared/protocol/codes.js';

describe('the error hierarchy', () => {
  it('gives each kind of failure its class, its stable code and its name', () => {
    const cases: [FlocktrainError, string, string][] = [
      [new ConfigError('x'), 'CONFIG', 'ConfigError'],
      [new DataError('x'), 'DATA', 'DataError'],
      [new ModelFileError('x'), 'MODEL_FILE', 'ModelFileError'],
      [new CheckpointError('x'), 'CHECKPOINT', 'CheckpointError'],
      [new ComputeError('x'), 'COMPUTE', 'ComputeError'],
      [new DivergedError(2, 7), 'DIVERGED', 'DivergedError'],
      [new StepCancelled('interrupted'), 'CANCELLED', 'StepCancelled'],
      [new ProtocolError('malformed', 'x'), 'PROTOCOL', 'ProtocolError'],
      [new FeedError('x'), 'FEED', 'FeedError'],
    ];
    for (const [err, code, name] of cases) {
      expect(err).toBeInstanceOf(FlocktrainError);
      expect(err).toBeInstanceOf(Error);
      expect([err.code, err.name]).toEqual([code, name]);
    }
    expect(new ProtocolError('non_finite', 'grads: value 3 is NaN').reason).toBe('non_finite');
    expect(new DivergedError(2, 7).message).toMatch(/^the gradient at epoch 2 step 7 is not finite/);
  });

  it('keeps a message built from several lines on one', () => {
    expect(new DataError('cannot parse a.csv:\n  line 3: too few columns\r\n').message).toBe(
      'cannot parse a.csv: line 3: too few columns',
    );
  });
});
