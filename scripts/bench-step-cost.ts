// The fixed cost of a distributed step: a 784-4-10 MLP (12 kB of weights, almost no
// compute) on the embedded MNIST, batch 64 in 4 shards, trained by `train` and by a
// coordinator with 1 and 2 local worker processes (--threads 1). What a step costs
// beyond `train`'s is the price of distributing it: messages, wake-ups, encoding.
// The figure is the median of the intervals between consecutive steps (epoch ends,
// with their validation pass, left out), so one slow step on a shared machine does
// not move it. A benchmark, not a test.
//
//   node dist/scripts/bench-step-cost.js     (also the last table of `npm run bench`)
//   BENCH_STEP_EPOCHS=10                     more steps (default 3; the first is left out)
//   BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof"   profile the worker processes

import { BENCH_TOKEN, benchSetup } from './bench-coordinator.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startCoordinator } from '../coordinator/assembly.js';
import { resolveConfig } from '../coordinator/config.js';
import { LocalExecutor } from '../coordinator/local-executor.js';
import type { StepPlan } from '../coordinator/plan.js';
import { waitForExit } from '../coordinator/run-coordinator.js';
import { prepareRun, type PreparedRun } from '../coordinator/setup.js';
import { Trainer, type StepExecutor } from '../coordinator/trainer.js';
import type { PartialGradient } from '../shared/gradient.js';
import { initParams } from '../shared/model/init.js';
import { CloseCode } from '../shared/protocol/codes.js';

const EPOCHS = Number(process.env.BENCH_STEP_EPOCHS ?? 3);
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const silent = pino({ level: 'silent' });

/** Records when each step starts; the executor's own behaviour is unchanged. */
class StepClock implements StepExecutor {
  readonly starts: { epoch: number; at: number }[] = [];
  readonly #inner: StepExecutor;
  constructor(inner: StepExecutor) {
    this.#inner = inner;
  }
  get workerCount(): number {
    return this.#inner.workerCount;
  }
  publish(version: number, weights: Float32Array): void {
    this.#inner.publish(version, weights);
  }
  run(plan: StepPlan, version: number): Promise<PartialGradient> {
    this.starts.push({ epoch: plan.epoch, at: performance.now() });
    return this.#inner.run(plan, version);
  }
  /** Median ms between consecutive steps of one epoch, the first epoch (joining, warm-up) left out. */
  medianStepMs(): number {
    const gaps: number[] = [];
    for (let i = 1; i < this.starts.length; i++) {
      const [a, b] = [this.starts[i - 1], this.starts[i]];
      if (a.epoch === b.epoch && a.epoch > 0) gaps.push(b.at - a.at);
    }
    gaps.sort((x, y) => x - y);
    return gaps[gaps.length >> 1];
  }
}

function tinyRun(): PreparedRun {
  return prepareRun(
    resolveConfig({ hidden: [4], epochs: EPOCHS, batchSize: 64, shardSize: 16, lr: 0.05, momentum: 0.9 }),
  );
}

async function train(run: PreparedRun, executor: StepClock): Promise<number> {
  const trainer = new Trainer(run, executor, silent, {
    logEvery: 1_000_000,
    initialParams: initParams(run.spec, run.config.seed),
    checkpoint: null,
    resume: null,
  });
  await trainer.train();
  return executor.medianStepMs();
}

async function distributed(run: PreparedRun, workers: number): Promise<number> {
  const token = BENCH_TOKEN;
  const coordinator = await startCoordinator(benchSetup(run, workers), silent);
  const cli = join(root, 'dist', 'coordinator', 'cli', 'bin.js');
  const cache = mkdtempSync(join(tmpdir(), 'flocktrain-bench-step-'));
  const children: ChildProcess[] = [];
  for (let i = 0; i < workers; i++) {
    const args = [cli, 'worker', '--url', coordinator.url, '--token', token, '--threads', '1', '--log-level', 'warn'];
    children.push(
      spawn(process.execPath, [...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ') ?? []), ...args], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, XDG_CACHE_HOME: cache },
      }),
    );
  }
  const clock = new StepClock(coordinator.scheduler);
  try {
    return await train(run, clock);
  } finally {
    await coordinator.close(CloseCode.DONE, 'benchmark finished');
    await waitForExit(children, 3000);
  }
}

export interface StepCost {
  readonly trainMs: number;
  readonly oneWorkerMs: number;
  readonly twoWorkersMs: number;
}

/** ms per step of the 784-4-10 MLP: train, coordinator + 1 worker, coordinator + 2 workers. */
export async function benchStepCost(): Promise<StepCost> {
  const run = tinyRun();
  const trainMs = await train(run, new StepClock(new LocalExecutor(run)));
  const oneWorkerMs = await distributed(run, 1);
  const twoWorkersMs = await distributed(run, 2);
  return { trainMs, oneWorkerMs, twoWorkersMs };
}

/** The Markdown table `npm run bench` prints. */
export function stepCostTable(c: StepCost): string[] {
  const f = (v: number): string => v.toFixed(3);
  return [
    '| fixed cost per step (784-4-10 MLP, batch 64 in 4 shards) ' +
      '| train | coordinator + 1 worker | coordinator + 2 workers |',
    '|---|---|---|---|',
    `| ms per step (median) | ${f(c.trainMs)} | ${f(c.oneWorkerMs)} | ${f(c.twoWorkersMs)} |`,
  ];
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${stepCostTable(await benchStepCost()).join('\n')}\n`);
}
