// Fault injection: coordinator and workers as real processes, with faults fired at
// moments drawn from a seeded PRNG (the step number at which each fault strikes).
// Every scenario asserts what a user relies on: training completes, every epoch
// counted exactly its training samples (nothing lost, nothing counted twice), and
// the final weights hash equals `flocktrain train`'s for the same config.

import { describe, expect, it } from 'vitest';
import { deriveRng } from '../../shared/rng.js';
import { coordinatorDone, Sandbox, type CliProcess, type Coordinator, type LogLine } from './harness.js';

/** The faults the harness can inject. */
enum Fault {
  /** SIGKILL a running worker. */
  KillWorker = 'kill-worker',
  /** Start a fresh worker. */
  StartWorker = 'start-worker',
  /** Start a worker ten times slower than the others. */
  SlowWorker = 'slow-worker',
  /** Freeze a running worker (SIGSTOP) past its task deadline, then let it go on. */
  StallWorker = 'stall-worker',
  /** SIGTERM the coordinator and start it again from its checkpoint. */
  RestartCoordinator = 'restart-coordinator',
}

// 2,400 training samples / 40 = 60 steps per epoch, 5 micro-shards per step. Wide
// enough layers that a step takes milliseconds, so faults land mid-run.
const TRAIN_SAMPLES = 2400;
const CONFIG = [
  '--dataset',
  'blobs',
  '--samples',
  '3000',
  '--hidden',
  '256',
  '--batch-size',
  '40',
  '--shard-size',
  '8',
  '--log-every',
  '1',
];
const STEPS_PER_EPOCH = 60;
/** Longer than the longest task deadline below, so a stall always outlasts one. */
const STALL_MS = 2500;
/** Short deadlines so a stalled worker's shards move on quickly. */
const DEADLINES = ['--task-timeout-min', '300', '--task-timeout-max', '1000'];

const references = new Map<string, Promise<string>>();
function trainHash(args: readonly string[]): Promise<string> {
  const key = args.join(' ');
  if (!references.has(key))
    references.set(
      key,
      new Sandbox().train(args).then((d) => String(d.weightsHash)),
    );
  return references.get(key)!;
}

/** Seeded, increasing step numbers in [lo, hi) at which faults strike. */
function faultSteps(seed: number, count: number, lo: number, hi: number): number[] {
  const rng = deriveRng(seed, 'faults');
  const steps = new Set<number>();
  while (steps.size < count) steps.add(lo + rng.nextInt(hi - lo));
  return [...steps].sort((a, b) => a - b);
}

const atStep = (n: number) => (l: LogLine) => l.msg === 'step' && typeof l.step === 'number' && l.step >= n;

/** Every epoch line, across all coordinator incarnations, counted exactly the training set. */
function expectEverySampleOnce(coordinators: readonly CliProcess[], epochs: number): void {
  const perEpoch = new Map<number, number>();
  for (const c of coordinators)
    for (const l of c.linesWithMsg('epoch')) perEpoch.set(Number(l.epoch), Number(l.samples));
  expect([...perEpoch.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: epochs }, (_, i) => i + 1));
  for (const [epoch, samples] of perEpoch) expect(samples, `epoch ${epoch}`).toBe(TRAIN_SAMPLES);
}

class Fleet {
  readonly sb = new Sandbox();
  readonly workers: CliProcess[] = [];
  #n = 0;
  constructor(public c: Coordinator) {}

  start(extra: readonly string[] = []): CliProcess {
    const w = this.sb.worker(this.c, `w${++this.#n}`, ['--reconnect-for', '60', ...extra]);
    this.workers.push(w);
    return w;
  }

  live(): CliProcess[] {
    return this.workers.filter((w) => w.exit === null);
  }

  /** Live workers the coordinator has welcomed (their --name shows up as an agent that joined). */
  joined(coordinator: CliProcess = this.c.proc): CliProcess[] {
    const agents = new Set(coordinator.linesWithMsg('worker joined').map((l) => String(l.agent)));
    return this.live().filter((w) => agents.has(w.args[w.args.indexOf('--name') + 1]));
  }
}

async function inject(fleet: Fleet, fault: Fault, pick: number): Promise<void> {
  switch (fault) {
    case Fault.KillWorker: {
      const live = fleet.live();
      if (live.length > 1) live[pick % live.length].signal('SIGKILL');
      return;
    }
    case Fault.StartWorker:
      fleet.start();
      return;
    case Fault.SlowWorker:
      fleet.start(['--fault-slowdown', '10']);
      return;
    case Fault.StallWorker: {
      const live = fleet.live();
      const victim = live[pick % live.length];
      victim.signal('SIGSTOP');
      // The stall's length is the fault itself (longer than a task deadline), not a wait for something to happen.
      setTimeout(() => victim.signal('SIGCONT'), STALL_MS);
      return;
    }
    case Fault.RestartCoordinator:
      throw new Error('restarts are driven by the scenario itself');
    default: {
      const never: never = fault;
      throw new Error(`unknown fault ${String(never)}`);
    }
  }
}

/**
 * A coordinator for `args` (plus `coordinatorExtra`) with two workers started, one of
 * them with `secondWorkerFlags`; and the hash `train` reaches on the same args.
 */
async function scenario(
  args: readonly string[],
  coordinatorExtra: readonly string[],
  secondWorkerFlags: readonly string[] = [],
) {
  const reference = trainHash(args);
  const c = await new Sandbox().coordinator([...args, ...coordinatorExtra, '--min-workers', '2']);
  const fleet = new Fleet(c);
  fleet.start();
  fleet.start(secondWorkerFlags);
  return { reference, c, fleet };
}

describe('fault injection', () => {
  it('kills, new workers, a 10x slower and a stalled worker at seeded moments: same weights as train', async () => {
    const epochs = 3;
    const args = [...CONFIG, '--epochs', String(epochs)];
    const { reference, c, fleet } = await scenario(args, DEADLINES);
    const plan: Fault[] = [
      Fault.SlowWorker,
      Fault.KillWorker,
      Fault.StartWorker,
      Fault.StallWorker,
      Fault.KillWorker,
      Fault.StartWorker,
    ];
    const steps = faultSteps(7, plan.length, 3, epochs * STEPS_PER_EPOCH - 20);
    const rng = deriveRng(7, 'victims');
    for (const [i, fault] of plan.entries()) {
      await c.proc.waitFor(atStep(steps[i]), { what: `step ${steps[i]}` });
      await inject(fleet, fault, rng.nextInt(1000));
    }
    const done = await coordinatorDone(c, 90_000);
    expect(done.weightsHash).toBe(await reference);
    expect(done.steps).toBe(epochs * STEPS_PER_EPOCH);
    expectEverySampleOnce([c.proc], epochs);
    // The kills were noticed, the late worker missed deadlines, and the slow worker's
    // throughput shows in the step log.
    expect(c.proc.linesWithMsg('worker left').length).toBeGreaterThanOrEqual(2);
    const perWorker = c.proc
      .linesWithMsg('step')
      .map((l) => l.perWorker)
      .filter((p) => p !== undefined && Object.keys(p as object).length >= 2);
    expect(perWorker.length).toBeGreaterThan(0);
  }, 120_000);

  it('a worker 10x slower than the other does not set the pace, and its results still count', async () => {
    const epochs = 2;
    const args = [...CONFIG, '--epochs', String(epochs)];
    const { reference, c } = await scenario(args, [], ['--fault-slowdown', '10']);
    const done = await coordinatorDone(c, 90_000);
    expect(done.weightsHash).toBe(await reference);
    expectEverySampleOnce([c.proc], epochs);
    // Throughput-proportional shares: the slow worker ends up with a small share.
    const left = c.proc.linesWithMsg('worker left');
    expect(left).toHaveLength(2);
    const last = c.proc.linesWithMsg('step').at(-1)!.perWorker as Record<string, number>;
    const [a, b] = Object.values(last).sort((x, y) => x - y);
    expect(b / a).toBeGreaterThan(3);
  }, 120_000);

  it('a worker stalled past its task deadline: its shards are re-executed elsewhere, first result wins', async () => {
    const epochs = 1;
    const args = [...CONFIG, '--epochs', String(epochs)];
    const { reference, c, fleet } = await scenario(args, DEADLINES);
    const [at] = faultSteps(5, 1, 5, STEPS_PER_EPOCH - 10);
    await c.proc.waitFor(atStep(at), { what: `step ${at}` });
    await inject(fleet, Fault.StallWorker, 1);
    const done = await coordinatorDone(c, 90_000);
    expect(done.weightsHash).toBe(await reference);
    expectEverySampleOnce([c.proc], epochs);
    expect(c.proc.linesWithMsg('task deadline missed; handing its shards to others').length).toBeGreaterThan(0);
  }, 120_000);

  it('coordinator SIGTERMed, restarted from its checkpoint; workers reconnect alone; weights as train', async () => {
    const epochs = 3;
    const args = [...CONFIG, '--epochs', String(epochs)];
    const reference = trainHash(args);
    const sb = new Sandbox();
    const checkpoints = sb.path('ckpt');
    const first = await sb.coordinator([
      ...args,
      '--min-workers',
      '2',
      '--checkpoint-dir',
      checkpoints,
      '--checkpoint-every',
      '25',
    ]);
    const fleet = new Fleet(first);
    fleet.start();
    fleet.start();
    const [stopAt] = faultSteps(11, 1, 10, 2 * STEPS_PER_EPOCH);
    await first.proc.waitFor(atStep(stopAt), { what: `step ${stopAt}` });
    first.proc.signal('SIGTERM');
    const stopped = await first.proc.waitForExit();
    expect(stopped.code, first.proc.stderr).toBe(0);
    const interrupted = first.proc.linesWithMsg('done')[0];
    expect(interrupted.interrupted).toBe(true);
    expect(first.proc.linesWithMsg('checkpoint').length).toBeGreaterThan(0);

    const port = new URL(first.url).port;
    // --min-workers 2: both workers must find their way back (else a fast run may end while one is still in backoff).
    const second = sb.start([
      'coordinator',
      '--port',
      port,
      '--token',
      first.token,
      '--log-format',
      'json',
      ...args,
      '--resume',
      checkpoints,
      '--min-workers',
      '2',
    ]);
    await second.waitForMsg('resuming');
    await second.waitForMsg('worker joined');
    const done = await coordinatorDone({ ...first, proc: second }, 90_000);
    expect(done.weightsHash).toBe(await reference);
    expect(done.steps).toBe(epochs * STEPS_PER_EPOCH);
    expectEverySampleOnce([first.proc, second], epochs);
    for (const w of fleet.workers) expect((await w.waitForExit()).code, w.stderr).toBe(0);
  }, 120_000);

  it('soak: 200 steps with a worker killed and replaced every few steps', async () => {
    // 1,600 samples / 8 = 200 steps in one epoch, 1 micro-shard each.
    const args = [
      '--dataset',
      'blobs',
      '--samples',
      '2000',
      '--hidden',
      '64',
      '--batch-size',
      '8',
      '--shard-size',
      '4',
      '--log-every',
      '1',
      '--epochs',
      '1',
    ];
    const { reference, c, fleet } = await scenario(args, []);
    const rng = deriveRng(3, 'soak');
    let kills = 0;
    // A worker killed a few ms ago may not have reported its exit yet: never count it twice.
    const killed = new Set<CliProcess>();
    for (let step = 8; step < 190; step += 8 + rng.nextInt(8)) {
      await c.proc.waitFor(atStep(step), { what: `step ${step}` });
      const joined = fleet.joined().filter((w) => !killed.has(w));
      if (joined.length > 0) {
        const victim = joined[rng.nextInt(joined.length)];
        victim.signal('SIGKILL');
        killed.add(victim);
        kills++;
      }
      fleet.start();
    }
    const done = await coordinatorDone(c, 90_000);
    expect(done.weightsHash).toBe(await reference);
    expect(done.steps).toBe(200);
    expect(Number(c.proc.linesWithMsg('epoch')[0].samples)).toBe(1600);
    expect(kills).toBeGreaterThanOrEqual(10);
    // Every kill of a welcomed worker is noticed (the last may race the end of the run).
    expect(
      c.proc.linesWithMsg('worker left', (l) => !String(l.reason).includes('training finished')).length,
    ).toBeGreaterThanOrEqual(kills - 1);
  }, 120_000);
});
