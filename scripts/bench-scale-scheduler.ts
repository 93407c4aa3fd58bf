// The scheduler alone, as the number of workers N grows: the coordinator's own step
// bookkeeping (dispatch, shares, deadlines, results, the reduction) without sockets,
// child processes or compute, so that it can be timed on a loaded machine and taken
// to thousands of workers. N in-memory workers each answer their tasks at once, in a
// seeded random order, with empty gradients of a tiny parameter vector; each step has
// N shards (batch 4N, shards of 4), as in `npm run bench:scale`. Only the time inside
// the scheduler's entry points is counted (starting a step, and each result with the
// dispatch it triggers, tasks encoded included); decoding tasks and building results
// for the stand-in workers is not. Per-step cost should grow linearly in N: the "µs
// per worker" column should stay flat.
//
// With --audit-rate r, results are audited as in a run with verification (no probation;
// each worker's rate starts at 1/2 and halves with each audit passed, down to r), and
// every audit is offered to the idle workers as a check first. The audits run inside
// the timed entry points (right after the result that queued them), the stand-ins
// answer their checks with the honest digest in the next round, and an audit left to
// the coordinator recomputes zeros: what is timed is the coordinator's bookkeeping of
// audits and checks, the checker's pick included, not a real recomputation.
//
//   node dist/scripts/bench-scale-scheduler.js                      N = 50, 200, 500, 2000, 5000
//   node dist/scripts/bench-scale-scheduler.js --workers 50,500     other counts
//   node dist/scripts/bench-scale-scheduler.js --audit-rate 0.05    with audits delegated to checkers

import { cpus, loadavg } from 'node:os';
import { pino } from 'pino';
import { Events } from '../coordinator/events.js';
import { planStep, type StepPlan } from '../coordinator/plan.js';
import { Scheduler } from '../coordinator/scheduler.js';
import { AuditingVerifier, resultDigest } from '../coordinator/step/auditor.js';
import { StructuralVerifier, type Verifier } from '../coordinator/step/verifier.js';
import type { StepWorker } from '../coordinator/step/worker.js';
import { decodeCoordinatorMessage } from '../shared/protocol/codec.js';
import type { CheckMessage, ResultMessage, TaskMessage } from '../shared/protocol/messages.js';
import { Rng } from '../shared/rng.js';
import { coverNodes } from '../shared/tree.js';

const SHARD = 4;
/** Parameters: small, so that the reduction (O(N × P) per step, linear) does not hide the bookkeeping. */
const PARAMS = 16;
/** Steps before the measured ones: at least 5, and enough for 20,000 results, so the JIT has settled. */
const warmupSteps = (n: number): number => Math.max(5, Math.ceil(20_000 / n));
const STEPS = 20;
const silent = pino({ level: 'silent' });

/** A sent message, held until the driver reads it; its buffer is released then, as a socket would after the send. */
interface Sent {
  readonly worker: StepWorker;
  readonly bytes: Uint8Array;
  readonly onSent?: () => void;
}

function standIn(id: string, outbox: Sent[]): StepWorker {
  const worker: StepWorker = {
    id,
    kind: 'node',
    agent: 'bench',
    remote: 'memory',
    log: silent,
    tasksDone: 0,
    samplesDone: 0,
    computeMs: 0,
    standby: null,
    send: (bytes, onSent) => void outbox.push({ worker, bytes, onSent }),
    reject: (reason, detail) => {
      throw new Error(`bench-scale-scheduler: worker ${id} rejected (${reason}): ${detail}`);
    },
    ban: (detail) => {
      throw new Error(`bench-scale-scheduler: worker ${id} banned: ${detail}`);
    },
  };
  return worker;
}

/** What an honest worker returns for `task` (or computes for a check), with zero gradients. */
function answer(task: TaskMessage | CheckMessage): ResultMessage {
  const nodes = coverNodes(
    task.shards.map((s) => s.id),
    task.numShards,
  );
  const byId = new Map(task.shards.map((s) => [s.id, s.indices.length]));
  return {
    type: 'result',
    taskId: task.type === 'task' ? task.taskId : task.checkId,
    version: task.version,
    nodes: nodes.map((n) => {
      let count = 0;
      for (let s = n.lo; s < n.lo + n.size; s++) count += byId.get(s) ?? 0;
      return { lo: n.lo, size: n.size, lossSum: 0, count, correct: 0 };
    }),
    dtype: 'f32',
    diverged: false,
    grads: new Float32Array(nodes.length * PARAMS),
    computeMs: 1,
  };
}

interface Row {
  readonly workers: number;
  /** ms inside the scheduler per step. */
  readonly ms: number;
  /** The same for the run's first step, when no worker has been measured yet. */
  readonly firstMs: number;
  readonly tasksPerStep: number;
  /** Audits per step, and the share of them checked by a worker rather than recomputed here. */
  readonly auditsPerStep: number;
  readonly checkedShare: number;
}

/** An audit's recomputation on the coordinator: zero gradients over the shards' nodes, as every stand-in sends. */
function recomputeZeros(shards: readonly { id: number; indices: Uint32Array }[], numShards: number) {
  const byId = new Map(shards.map((s) => [s.id, s.indices.length]));
  return coverNodes(
    shards.map((s) => s.id),
    numShards,
  ).map((node) => {
    let count = 0;
    for (let s = node.lo; s < node.lo + node.size; s++) count += byId.get(s) ?? 0;
    return { node, partial: { grad: new Float32Array(PARAMS), lossSum: 0, count, correct: 0 } };
  });
}

/** `auditRate`: null for the structural verifier alone (no audits). */
async function measure(n: number, auditRate: number | null): Promise<Row> {
  const outbox: Sent[] = [];
  const events = new Events(silent);
  let tasks = 0;
  events.on('taskAssigned', () => {
    tasks++;
  });
  // Audits queued by a result run right after it, inside its timed call: `deferred` holds them till then.
  const deferred: (() => void)[] = [];
  const runDeferred = (): void => {
    while (deferred.length > 0) deferred.shift()!();
  };
  const auditRng = new Rng(n + 1);
  const verifier: Verifier =
    auditRate === null
      ? new StructuralVerifier(null)
      : new AuditingVerifier(
          recomputeZeros,
          { probation: 0, auditRate },
          () => auditRng.nextFloat(),
          (job) => void deferred.push(job),
        );
  const scheduler = new Scheduler(events, PARAMS, {
    minWorkers: n,
    taskTimeoutMinMs: 60_000,
    taskTimeoutMaxMs: 120_000,
    wireDtype: 'f32',
    verifier,
  });
  const weights = new Float32Array(PARAMS);
  scheduler.publish(0, weights);
  for (let k = 0; k < n; k++) scheduler.onReady(standIn(`w${k}`, outbox));
  const order = Uint32Array.from({ length: n * SHARD }, (_, i) => i);
  const rng = new Rng(n);
  let ms = 0;
  let firstMs = 0;
  let measuredTasks = 0;
  let checks = 0;
  let measuredChecks = 0;
  let measuredAudits = 0;
  const warmup = warmupSteps(n);
  for (let step = 0; step < warmup + STEPS; step++) {
    const counted = step >= warmup;
    // The same samples every step (the slice at step 0); globalStep counts on.
    const plan: StepPlan = planStep(order, 0, 0, step, n * SHARD, SHARD);
    const before = { tasks, checks, audits: verifier.tally?.().audited ?? 0 };
    const t0 = performance.now();
    const done = scheduler.run(plan, step);
    let spent = performance.now() - t0;
    // Answer in a random order until no task or check is left; a result may bring more of both.
    for (;;) {
      const pending: { worker: StepWorker; message: TaskMessage | CheckMessage }[] = [];
      for (const sent of outbox.splice(0)) {
        const message = decodeCoordinatorMessage(sent.bytes);
        sent.onSent?.();
        if (message.type === 'task' || message.type === 'check') pending.push({ worker: sent.worker, message });
      }
      if (pending.length === 0) break;
      for (let i = pending.length - 1; i > 0; i--) {
        const j = rng.nextInt(i + 1);
        [pending[i], pending[j]] = [pending[j], pending[i]];
      }
      for (const { worker, message } of pending) {
        const result = answer(message);
        if (message.type === 'check') {
          checks++;
          const digest = resultDigest(result.nodes, result.grads);
          const t1 = performance.now();
          scheduler.onDigest(worker, { type: 'digest', checkId: message.checkId, digest });
          spent += performance.now() - t1;
          continue;
        }
        const t1 = performance.now();
        scheduler.onResult(worker, result);
        runDeferred();
        spent += performance.now() - t1;
      }
    }
    await done;
    scheduler.publish(step + 1, weights);
    if (step === 0) firstMs = spent;
    if (counted) {
      ms += spent;
      measuredTasks += tasks - before.tasks;
      measuredChecks += checks - before.checks;
      measuredAudits += (verifier.tally?.().audited ?? 0) - before.audits;
    }
  }
  scheduler.cancel('benchmark finished');
  return {
    workers: n,
    ms: ms / STEPS,
    firstMs,
    tasksPerStep: measuredTasks / STEPS,
    auditsPerStep: measuredAudits / STEPS,
    checkedShare: measuredAudits === 0 ? 0 : measuredChecks / measuredAudits,
  };
}

async function main(): Promise<void> {
  const option = (name: string): string | undefined => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? process.argv[at + 1] : undefined;
  };
  const counts = (option('--workers') ?? '50,200,500,2000,5000').split(',').map(Number);
  const rateText = option('--audit-rate');
  const auditRate = rateText === undefined ? null : Number(rateText);
  if (auditRate !== null && !(auditRate >= 0 && auditRate <= 1))
    throw new RangeError(`--audit-rate must be a number in [0, 1], got ${rateText}`);
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  say(
    `flocktrain scheduler scale benchmark — ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (load average ${loadavg()[0].toFixed(1)} at start)`,
  );
  say(
    `in-memory workers, shards of ${SHARD}, batch 4N, ${PARAMS} parameters, ` +
      `${STEPS} steps measured after max(5, 20,000 / N)` +
      (auditRate === null ? '' : `, audit rate ${auditRate} with checks on idle workers`),
  );
  say('');
  const audits = auditRate === null ? '' : ' audits/step | checked by a worker |';
  say(
    `| workers N | scheduler ms/step | µs per worker per step | tasks/step |${audits} first step ms (none measured) |`,
  );
  say(`|---|---|---|---|${auditRate === null ? '' : '---|---|'}---|`);
  const f = (v: number, d = 0): string =>
    v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  for (const n of counts) {
    const r = await measure(n, auditRate);
    const perWorker = f((1000 * r.ms) / r.workers, 1);
    const audited = auditRate === null ? '' : ` ${f(r.auditsPerStep, 1)} | ${f(100 * r.checkedShare)}% |`;
    say(`| ${r.workers} | ${f(r.ms, 2)} | ${perWorker} | ${f(r.tasksPerStep, 1)} |${audited} ${f(r.firstMs, 1)} |`);
  }
}

await main();
