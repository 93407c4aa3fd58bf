// Task deadlines as the scheduler sets and brings them forward (coordinator/scheduler.ts
// with step/roster.ts): a worker not yet measured gets the fixed allowance while no
// worker is measured, and the fleet's mean speed once one is. On fake timers: the test
// moves the clock, nothing waits.

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Events } from '../../../coordinator/events.js';
import { planStep } from '../../../coordinator/plan.js';
import { Scheduler } from '../../../coordinator/scheduler.js';
import { StructuralVerifier } from '../../../coordinator/step/verifier.js';
import type { StepWorker } from '../../../coordinator/step/worker.js';
import { decodeCoordinatorMessage } from '../../../shared/protocol/codec.js';
import type { ResultMessage, TaskMessage } from '../../../shared/protocol/messages.js';
import { StepCancelled } from '../../../shared/errors.js';
import { coverNodes } from '../../../shared/tree.js';
import { memoryWorker } from '../../support/step-worker.js';

const silent = pino({ level: 'silent' });
const PARAMS = 3;

interface Stub extends StepWorker {
  readonly tasks: TaskMessage[];
}

function stub(id: string): Stub {
  const tasks: TaskMessage[] = [];
  const send = (bytes: Uint8Array, onSent?: () => void): void => {
    const m = decodeCoordinatorMessage(bytes.slice());
    if (m.type === 'task') tasks.push(m);
    onSent?.();
  };
  return { ...memoryWorker(id, { send }), tasks };
}

/** An honest-looking result of `task` (zero gradients: the verifier checks only its structure). */
function answer(task: TaskMessage): ResultMessage {
  const nodes = coverNodes(
    task.shards.map((s) => s.id),
    task.numShards,
  );
  return {
    type: 'result',
    taskId: task.taskId,
    version: task.version,
    nodes: nodes.map((n) => ({ lo: n.lo, size: n.size, lossSum: 0, count: 4 * n.size, correct: 0 })),
    dtype: 'f32',
    diverged: false,
    grads: new Float32Array(nodes.length * PARAMS),
    computeMs: 1,
  };
}

describe('Scheduler deadlines', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('brings an unmeasured worker’s deadline forward to the fleet’s mean speed once a result shows it', async () => {
    const events = new Events(silent);
    const expired: string[] = [];
    events.on('taskExpired', (e) => expired.push(e.workerId));
    const s = new Scheduler(events, PARAMS, {
      minWorkers: 2,
      taskTimeoutMinMs: 100,
      taskTimeoutMaxMs: 60_000,
      wireDtype: 'f32',
      verifier: new StructuralVerifier(null),
    });
    s.publish(0, new Float32Array(PARAMS));
    const [a, b] = [stub('a'), stub('b')];
    s.onReady(a);
    s.onReady(b);
    // Two shards of 4 samples: one each.
    const ran = s.run(
      planStep(
        Uint32Array.from({ length: 8 }, (_, i) => i),
        0,
        0,
        0,
        8,
        4,
      ),
      0,
    );
    expect([a.tasks.length, b.tasks.length]).toEqual([1, 1]);
    vi.advanceTimersByTime(200);
    // a: 4 samples in 200 ms, 0.02 samples/ms; b's deadline becomes 4 × 4 / 0.02 + 250 = 1,050 ms after sending.
    s.onResult(a, answer(a.tasks[0]));
    vi.advanceTimersByTime(1_049 - 200);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(2);
    expect(expired).toEqual(['b']);
    // Its shard is open again, and goes to a, idle since its result.
    expect(a.tasks.length).toBe(2);
    s.cancel('test over');
    await expect(ran).rejects.toThrow(StepCancelled);
  });

  it('keeps the fixed allowance while no worker is measured', async () => {
    const events = new Events(silent);
    const expired: number[] = [];
    events.on('taskExpired', () => expired.push(performance.now()));
    const s = new Scheduler(events, PARAMS, {
      minWorkers: 1,
      taskTimeoutMinMs: 100,
      taskTimeoutMaxMs: 60_000,
      wireDtype: 'f32',
      verifier: new StructuralVerifier(null),
    });
    s.publish(0, new Float32Array(PARAMS));
    s.onReady(stub('a'));
    const ran = s.run(
      planStep(
        Uint32Array.from({ length: 4 }, (_, i) => i),
        0,
        0,
        0,
        4,
        4,
      ),
      0,
    );
    vi.advanceTimersByTime(9_999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toHaveLength(1);
    s.cancel('test over');
    await expect(ran).rejects.toThrow(StepCancelled);
  });
});
