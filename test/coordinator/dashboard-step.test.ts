// The dashboard's step counter through the production assembly (coordinator/assembly.ts):
// a rollback publishes the restored weights under a new version and takes the trainer's
// step back, and the feed's progress must follow the trainer's step, not the version.
// The trainer drives the assembly's scheduler (publish) and computes in-process; the
// feed's one-second sampling timer is faked, so each step reads what the dashboard
// shows at that moment.

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type RunningCoordinator, startCoordinator } from '../../coordinator/assembly.js';
import { resolveConfig } from '../../coordinator/config.js';
import { StepCounter } from '../../coordinator/dashboard.js';
import { Events } from '../../coordinator/events.js';
import { LocalExecutor } from '../../coordinator/local-executor.js';
import type { StepPlan } from '../../coordinator/plan.js';
import { RollbackRequired } from '../../coordinator/rollback.js';
import { announceRun } from '../../coordinator/run-train.js';
import { prepareRun } from '../../coordinator/setup.js';
import { type StepExecutor, Trainer } from '../../coordinator/trainer.js';
import type { PartialGradient } from '../../shared/gradient.js';
import { initParams } from '../../shared/model/init.js';
import { CloseCode } from '../../shared/protocol/codes.js';

const silent = pino({ level: 'silent' });

/** Serves each version through the coordinator's scheduler, computes here, and undoes steps once. */
class RollingBackExecutor implements StepExecutor {
  readonly workerCount = 1;
  /** At each step's start: the trainer's step (the plan's), the dashboard's, and the weights version. */
  readonly seen: { trainer: number; dashboard: number | null; version: number }[] = [];
  #runs = 0;
  #undoFrom = -1;
  constructor(
    private readonly inner: LocalExecutor,
    private readonly coordinator: RunningCoordinator,
  ) {}
  publish(version: number, weights: Float32Array): void {
    this.coordinator.scheduler.publish(version, weights);
    this.inner.publish(version, weights);
  }
  async run(plan: StepPlan, version: number): Promise<PartialGradient> {
    vi.advanceTimersByTime(1000);
    const dashboard = this.coordinator.dashboard.state.progress?.step ?? null;
    this.seen.push({ trainer: plan.globalStep, dashboard, version });
    const n = ++this.#runs;
    if (n === 4) this.#undoFrom = version;
    if (n === 9) throw new RollbackRequired(this.#undoFrom);
    return this.inner.run(plan, version);
  }
}

describe('the dashboard after a rollback', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("shows the trainer's global step, not the weights version", async () => {
    const run = prepareRun(
      resolveConfig({
        data: { kind: 'synthetic', name: 'spirals', samples: 300 },
        hidden: [13],
        epochs: 2,
        batchSize: 30,
        shardSize: 10,
        kernels: 'js',
      }),
    );
    const params = initParams(run.spec, run.config.seed);
    const events = new Events(silent);
    const coordinator = await startCoordinator(
      {
        run,
        params,
        version: 0,
        host: '127.0.0.1',
        port: 0,
        token: 'a'.repeat(32),
        scheduler: { minWorkers: 1, taskTimeoutMinMs: 1000, taskTimeoutMaxMs: 5000 },
        helloTimeoutMs: 5000,
        heartbeatMs: 5000,
        closeGraceMs: 100,
      },
      silent,
      events,
    );
    try {
      announceRun(events, run);
      const executor = new RollingBackExecutor(new LocalExecutor(run), coordinator);
      const trainer = new Trainer(run, executor, silent, {
        logEvery: 1000,
        initialParams: params,
        checkpoint: null,
        resume: null,
        events,
        snapshots: 32,
      });
      const rolledBack: number[] = [];
      events.on('rolledBack', (e) => rolledBack.push(e.toStep));
      const summary = await trainer.train();

      expect(rolledBack).toEqual([3]);
      // Sampled at every step's start: the dashboard's step is the trainer's throughout...
      for (const s of executor.seen) expect(s.dashboard).toBe(s.trainer);
      // ...including after the rollback from step 8 to 3, when the version runs 6 ahead
      // (versions 4 to 8 of the undone steps are not used again, and the rollback takes one).
      const after = executor.seen.slice(9);
      expect(after.length).toBeGreaterThan(0);
      for (const s of after) expect(s.version).toBe(s.trainer + 6);
      expect(trainer.state.version).toBe(summary.steps + 6);
      // And once the last step is done (the next sample of the feed).
      vi.advanceTimersByTime(1000);
      expect(coordinator.dashboard.state.progress?.step).toBe(summary.steps);
      expect(coordinator.dashboard.state.progress?.step).toBe(trainer.state.globalStep);
    } finally {
      await coordinator.close(CloseCode.DONE, 'test over');
    }
  });

  it("starts from a resumed run's step, which a rollback before the checkpoint left behind its version", () => {
    const events = new Events(silent);
    let version = 46;
    const counter = new StepCounter(events, () => version, 40);
    expect(counter.step).toBe(40);
    version++;
    expect(counter.step).toBe(41);
    version++;
    events.emit('rolledBack', { fromStep: 41, toStep: 38, askedVersion: 44, restoredVersion: 44 });
    expect(counter.step).toBe(38);
    version += 2;
    expect(counter.step).toBe(40);
    counter.close();
  });
});
