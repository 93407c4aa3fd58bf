// A StepWorker with no connection behind it, for tests of the scheduler's parts: it
// sends nowhere and rejects or bans silently unless a test gives it its own handlers.

import { pino } from 'pino';
import type { StepWorker } from '../../coordinator/step/worker.js';

const silent = pino({ level: 'silent' });

export function memoryWorker(id: string, overrides: Partial<StepWorker> = {}): StepWorker {
  return {
    id,
    kind: 'node',
    agent: 'test',
    remote: 'memory',
    log: silent,
    tasksDone: 0,
    samplesDone: 0,
    computeMs: 0,
    standby: null,
    send: () => {},
    reject: () => {},
    ban: () => {},
    ...overrides,
  };
}
