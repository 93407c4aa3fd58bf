// The coordinator's hub and scheduler, as coordinator/assembly.ts wires them, against
// hostile workers, in process: a real server on 127.0.0.1:0, real ws clients. Each
// fault is one entry of a table; for each, the faulty worker must be closed with the protocol's close code, a warn
// line must name it and the reason, any shards it held must go to the honest worker,
// and the step must still come out bit-identical to a local ShardComputer reduction.

import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { epochOrder, planStep, type StepPlan } from '../../coordinator/plan.js';
import { StructuralVerifier, type Claim, type Verdict } from '../../coordinator/step/verifier.js';
import { weightsHash } from '../../coordinator/trainer.js';
import { spirals } from '../../shared/data/synthetic.js';
import type { PartialGradient } from '../../shared/gradient.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { CloseCode, PROTOCOL_VERSION, type RejectReason } from '../../shared/protocol/codes.js';
import type { TaskMessage } from '../../shared/protocol/messages.js';
import { ShardComputer } from '../../worker/compute.js';
import {
  honestResult,
  Level,
  RawWorker,
  startCoordinator,
  startHonestWorker,
  within,
  type Coordinator,
  type HarnessOptions,
  type HonestWorker,
  type LogLine,
} from '../support/coordinator-harness.js';

const SEED = 0x5eed;
const DATASET = spirals(64, SEED);
const SPEC = mlpSpec(2, [6], 2, 'tanh', 'cross_entropy');
const SHARD_SIZE = 5;
/** 33 samples in shards of 5: 7 shards, not a power of two, the last one short. */
const BATCH = 33;
const NUM_SHARDS = 7;
const TOKEN = 'correct-horse';
const W0 = initParams(SPEC, SEED);
const W1 = initParams(SPEC, SEED + 1);
const P = W0.length;
const ORDER = epochOrder(
  Uint32Array.from({ length: DATASET.numSamples }, (_, i) => i),
  SEED,
  0,
);
const COMPUTER = new ShardComputer(SPEC, DATASET, SHARD_SIZE);
/** Plain msgpack, for messages the codec would refuse to build. */
const packr = new Packr({ useRecords: false, moreTypes: false });
/** The ws status code for "message too big" (RFC 6455 §7.4.1). */
const WS_MESSAGE_TOO_BIG = 1009;
/** What ws reports when the connection ended without a close frame. */
const WS_ABNORMAL = 1006;

const DEFAULTS: HarnessOptions = {
  spec: SPEC,
  dataset: DATASET,
  shardSize: SHARD_SIZE,
  numShards: NUM_SHARDS,
  weights: W0,
  token: TOKEN,
  helloTimeoutMs: 5_000,
  heartbeatMs: 60_000,
  taskTimeoutMinMs: 2_000,
  taskTimeoutMaxMs: 60_000,
};

let running: Coordinator[] = [];

async function coordinator(options: Partial<HarnessOptions> = {}): Promise<Coordinator> {
  const c = await startCoordinator({ ...DEFAULTS, ...options });
  running.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(running.map((c) => c.close()));
  running = [];
});

function plan(step: number): StepPlan {
  const p = planStep(ORDER, 0, step, step, BATCH, SHARD_SIZE);
  expect(p.shards).toHaveLength(NUM_SHARDS);
  return p;
}

/** The step as one process computes it: every shard, reduced along the same tree. */
function reference(weights: Float32Array, p: StepPlan): PartialGradient {
  const nodes = COMPUTER.computeNodes(
    weights,
    p.shards.map((indices, id) => ({ id, indices })),
    p.shards.length,
  );
  expect(nodes).toHaveLength(1);
  return nodes[0].partial;
}

/** Bit-identical: same gradient bytes, same loss sum (float64), same counts. */
function expectIdentical(got: PartialGradient, want: PartialGradient): void {
  expect(want.grad.some((v) => v !== 0)).toBe(true); // a vacuous comparison would prove nothing
  expect(got.count).toBe(want.count);
  expect(got.correct).toBe(want.correct);
  expect(got.lossSum).toBe(want.lossSum);
  expect(weightsHash(got.grad)).toBe(weightsHash(want.grad));
}

/** Starts a step; a test that fails before awaiting it leaves no unhandled rejection behind. */
function startStep(c: Coordinator, p: StepPlan, version: number): Promise<PartialGradient> {
  const step = c.scheduler.run(p, version);
  step.catch(() => {});
  return step;
}

/** Steps 0 (already published) and 1 (publishes W1) run with whoever is ready, each checked. */
async function expectStepsComplete(c: Coordinator, steps: readonly number[]): Promise<void> {
  for (const step of steps) {
    const weights = step === 0 ? W0 : W1;
    if (step > 0) c.scheduler.publish(step, weights);
    const p = plan(step);
    expectIdentical(await within(c.scheduler.run(p, step), `step ${step}`), reference(weights, p));
  }
}

function hello(token: string, protocol = PROTOCOL_VERSION) {
  return { type: 'hello', protocol, token, kind: 'node', agent: 'hostile' } as const;
}

interface ExpectedLog {
  readonly level: number;
  readonly msg: string;
  /** A RejectReason on rejections, the departure's description on 'worker left'. */
  readonly reason?: string;
  /** Matched against the line's `detail`, or its `err` for errors ws reports. */
  readonly detail?: RegExp;
}

async function expectLogged(c: Coordinator, workerId: string, want: ExpectedLog): Promise<LogLine> {
  const line = await c.logs.waitFor(
    (l) => l.workerId === workerId && l.msg === want.msg,
    `"${want.msg}" for ${workerId}`,
  );
  expect(line.level).toBe(want.level);
  if (want.reason !== undefined) expect(line.reason).toBe(want.reason);
  if (want.detail !== undefined) expect(String(line.detail ?? line.err)).toMatch(want.detail);
  return line;
}

const rejected = (reason: RejectReason, detail: RegExp): ExpectedLog => ({
  level: Level.warn,
  msg: 'rejected',
  reason,
  detail,
});

describe('hub: rejections before a worker holds any work', () => {
  interface HandshakeFault {
    readonly name: string;
    readonly options?: Partial<HarnessOptions>;
    /** Misbehaves on a freshly opened connection. */
    act(w: RawWorker, c: Coordinator): Promise<void> | void;
    readonly code: number;
    readonly closeReason: RegExp;
    readonly log: ExpectedLog;
    /** Whether the coordinator got as far as sending the welcome (spec and weights). */
    readonly welcomed: boolean;
  }

  const faults: HandshakeFault[] = [
    {
      name: 'wrong token',
      act: (w) => w.send(hello('correct-horse-battery')),
      code: CloseCode.UNAUTHORIZED,
      closeReason: /^wrong or missing token$/,
      log: { level: Level.warn, msg: 'rejected: wrong or missing token' },
      welcomed: false,
    },
    {
      name: 'empty token',
      act: (w) => w.send(hello('')),
      code: CloseCode.UNAUTHORIZED,
      closeReason: /^wrong or missing token$/,
      log: { level: Level.warn, msg: 'rejected: wrong or missing token' },
      welcomed: false,
    },
    {
      name: 'missing token field',
      act: (w) => w.sendRaw(packr.pack({ type: 'hello', protocol: PROTOCOL_VERSION, kind: 'node', agent: 'hostile' })),
      code: CloseCode.PROTOCOL_ERROR,
      closeReason: /^malformed: token: expected a string/,
      log: rejected('malformed', /^token: expected a string/),
      welcomed: false,
    },
    {
      name: 'protocol version mismatch',
      act: (w) => w.send(hello(TOKEN, PROTOCOL_VERSION + 1)),
      code: CloseCode.VERSION_MISMATCH,
      closeReason: new RegExp(`^version: protocol ${PROTOCOL_VERSION + 1} not supported`),
      log: rejected('version', new RegExp(`coordinator speaks ${PROTOCOL_VERSION}`)),
      welcomed: false,
    },
    {
      name: 'no hello within the deadline',
      options: { helloTimeoutMs: 100 },
      act: () => {},
      code: CloseCode.HELLO_TIMEOUT,
      closeReason: /no hello within the handshake deadline/,
      log: rejected('unexpected', /no hello within the handshake deadline/),
      welcomed: false,
    },
    {
      name: 'text frame instead of hello',
      act: (w) => w.sendRaw(JSON.stringify(hello(TOKEN))),
      code: CloseCode.PROTOCOL_ERROR,
      closeReason: /^malformed: text frame/,
      log: rejected('malformed', /text frame/),
      welcomed: false,
    },
    {
      name: 'second hello',
      act: async (w) => {
        w.send(hello(TOKEN));
        await w.next('welcome');
        w.send(hello(TOKEN));
      },
      code: CloseCode.PROTOCOL_ERROR,
      closeReason: /^unexpected: second hello$/,
      log: rejected('unexpected', /^second hello$/),
      welcomed: true,
    },
    {
      name: 'result before ready',
      act: async (w) => {
        w.send(hello(TOKEN));
        await w.next('welcome');
        w.send({
          type: 'result',
          taskId: 1,
          version: 0,
          nodes: [{ lo: 0, size: 1, lossSum: 0, count: 5, correct: 0 }],
          dtype: 'f32',
          diverged: false,
          grads: new Float32Array(P),
          computeMs: 0,
        });
      },
      code: CloseCode.PROTOCOL_ERROR,
      closeReason: /^unexpected: result while loading$/,
      log: rejected('unexpected', /^result while loading$/),
      welcomed: true,
    },
    {
      name: 'ready with a wrong dataset hash',
      act: async (w) => {
        w.send(hello(TOKEN));
        await w.next('welcome');
        w.send({ type: 'ready', datasetHash: '0'.repeat(64) });
      },
      code: CloseCode.PROTOCOL_ERROR,
      closeReason: /^unexpected: worker loaded dataset 000000000000…, expected [0-9a-f]{12}…$/,
      log: rejected('unexpected', /worker loaded dataset 0{12}…/),
      welcomed: true,
    },
  ];

  it.each(faults)('$name', async (fault) => {
    const c = await coordinator(fault.options);
    const t0 = performance.now();
    const bad = await RawWorker.connect(c.url);
    await fault.act(bad, c);
    const closed = await within(bad.closed, 'the faulty worker to be closed');
    expect(closed.code).toBe(fault.code);
    expect(closed.reason).toMatch(fault.closeReason);
    if (fault.code === CloseCode.HELLO_TIMEOUT)
      expect(performance.now() - t0).toBeGreaterThanOrEqual(fault.options!.helloTimeoutMs!);
    // A fresh hub numbers its connections from w1, and the faulty worker came first.
    await expectLogged(c, 'w1', fault.log);
    // Nothing about the run (spec, weights) goes to a connection the hub has not accepted.
    expect(bad.received.some((m) => m.type === 'welcome')).toBe(fault.welcomed);
    expect(bad.received.some((m) => m.type === 'weights' || m.type === 'task')).toBe(false);

    const honest = await startHonestWorker(c.url, TOKEN, DATASET);
    expect(honest.workerId).toBe('w2');
    await expectStepsComplete(c, [0, 1]);
    expect(c.scheduler.stats.reassignedShards).toBe(0);
  });
});

describe('hub + scheduler: faults of a worker holding shards mid-step', () => {
  interface Context {
    readonly task: TaskMessage;
    /** What an honest worker would answer to the task. */
    readonly honest: () => ReturnType<typeof honestResult>;
    readonly maxPayload: number;
  }

  interface MidStepFault {
    readonly name: string;
    /** Misbehaves once the worker has received its task. */
    act(w: RawWorker, ctx: Context): void;
    /** The close code the faulty worker sees. */
    readonly code: number;
    /** The line naming the faulty worker. */
    readonly log: ExpectedLog;
  }

  const withNode0 = (ctx: Context, change: object) => {
    const r = ctx.honest();
    return { ...r, nodes: [{ ...r.nodes[0], ...change }, ...r.nodes.slice(1)] };
  };

  const faults: MidStepFault[] = [
    {
      name: 'text frame',
      act: (w) => w.sendRaw('{"type":"result"}'),
      code: CloseCode.PROTOCOL_ERROR,
      log: rejected('malformed', /text frame/),
    },
    {
      name: 'garbage bytes',
      act: (w) => w.sendRaw(Uint8Array.of(0xde, 0xad, 0xbe, 0xef)),
      code: CloseCode.PROTOCOL_ERROR,
      log: rejected('malformed', /^not a msgpack message \(4 bytes\)$/),
    },
    {
      name: 'msgpack that is not a map',
      act: (w) => w.sendRaw(packr.pack([1, 2, 3])),
      code: CloseCode.PROTOCOL_ERROR,
      log: rejected('malformed', /^expected a map, got an array$/),
    },
    {
      name: 'unknown message type',
      act: (w, ctx) => w.sendRaw(packr.pack({ type: 'gossip', taskId: ctx.task.taskId })),
      code: CloseCode.PROTOCOL_ERROR,
      log: rejected('unknown_type', /^unknown message type "gossip"$/),
    },
    {
      name: 'message larger than maxPayload',
      act: (w, ctx) => w.sendRaw(new Uint8Array(ctx.maxPayload + 1)),
      code: WS_MESSAGE_TOO_BIG,
      log: rejected('too_large', /^Max payload size exceeded$/),
    },
    {
      name: 'result for a task never assigned',
      act: (w, ctx) => w.send({ ...ctx.honest(), taskId: ctx.task.taskId + 1000 }),
      code: CloseCode.BAD_RESULT,
      log: rejected('not_assigned', /which was never assigned/),
    },
    {
      name: 'result with the wrong gradient length',
      act: (w, ctx) => w.send({ ...ctx.honest(), grads: ctx.honest().grads.subarray(1) }),
      code: CloseCode.BAD_RESULT,
      log: rejected(
        'bad_length',
        new RegExp(`^grads: expected ${P} f32 values \\(1 nodes × ${P} parameters\\), got ${P - 1}$`),
      ),
    },
    {
      name: 'result with NaN in the gradient',
      act: (w, ctx) => {
        const r = ctx.honest();
        r.grads[3] = Number.NaN;
        w.send(r);
      },
      code: CloseCode.BAD_RESULT,
      log: rejected('non_finite', /^grads: value 3 is NaN$/),
    },
    {
      name: 'result with an infinite loss',
      act: (w, ctx) => w.send(withNode0(ctx, { lossSum: Number.POSITIVE_INFINITY })),
      code: CloseCode.BAD_RESULT,
      log: rejected('non_finite', /^lossSum: expected a finite number/),
    },
    {
      name: 'a claim of divergence for a gradient that is finite',
      act: (w, ctx) => {
        const r = ctx.honest();
        w.send({ ...r, diverged: true, grads: new Float32Array(0), nodes: r.nodes.map((n) => ({ ...n, lossSum: 0 })) });
      },
      code: CloseCode.BAD_RESULT,
      log: rejected('non_finite', /reported a non-finite gradient, which is finite when recomputed here$/),
    },
    {
      name: 'result with the wrong nodes for its task',
      act: (w, ctx) => w.send(withNode0(ctx, { lo: 0 })),
      code: CloseCode.BAD_RESULT,
      log: rejected('not_assigned', /node 0 should be 4\/4, got 0\/4$/),
    },
    {
      name: 'result with the wrong sample count',
      act: (w, ctx) => w.send(withNode0(ctx, { count: ctx.honest().nodes[0].count + 1 })),
      code: CloseCode.BAD_RESULT,
      log: rejected('not_assigned', /node 0 should count \d+ samples, got \d+$/),
    },
    {
      name: 'result at the wrong weights version',
      act: (w, ctx) => w.send({ ...ctx.honest(), version: ctx.task.version + 1 }),
      code: CloseCode.BAD_RESULT,
      log: rejected('not_assigned', /is at version 0, result says 1$/),
    },
    {
      // Once rejected, a worker is out: what it had already sent behind the bad
      // message must not count, or it would keep its shards despite the rejection.
      name: 'NaN result, then an honest one right behind it',
      act: (w, ctx) => {
        const bad = ctx.honest();
        bad.grads[0] = Number.NaN;
        w.send(bad);
        w.send(ctx.honest());
      },
      code: CloseCode.BAD_RESULT,
      log: rejected('non_finite', /^grads: value 0 is NaN$/),
    },
    {
      name: 'disconnect with a close frame',
      act: (w) => w.socket.close(CloseCode.LEAVING, 'bye'),
      code: CloseCode.LEAVING,
      log: { level: Level.info, msg: 'worker left', reason: `closed (${CloseCode.LEAVING} bye)` },
    },
    {
      name: 'disconnect without a close frame',
      act: (w) => w.socket.terminate(),
      code: WS_ABNORMAL,
      log: { level: Level.info, msg: 'worker left', reason: `closed (${WS_ABNORMAL})` },
    },
  ];

  it.each(faults)('$name', async (fault) => {
    const c = await coordinator();
    // Joined first, the honest worker takes shards 0..3; the faulty one 4..6.
    const honest = await startHonestWorker(c.url, TOKEN, DATASET);
    const bad = await RawWorker.connect(c.url);
    const badId = (await bad.join(TOKEN, c.datasetHash)).workerId;
    const p = plan(0);
    const step = startStep(c, p, 0);
    const task = await bad.next('task');
    expect(task.shards.map((s) => s.id)).toEqual([4, 5, 6]);

    fault.act(bad, { task, honest: () => honestResult(COMPUTER, W0, task), maxPayload: c.maxPayload });
    const closed = await within(bad.closed, 'the faulty worker to be closed');
    expect(closed.code).toBe(fault.code);
    await expectLogged(c, badId, fault.log);
    const reassigned = await c.logs.waitFor(
      (l) => l.msg === 'reassigning shards' && l.workerId === badId,
      `reassignment of ${badId}'s shards`,
    );
    expect(reassigned.shards).toEqual([4, 5, 6]);

    expectIdentical(await within(step, 'step 0'), reference(W0, p));
    expect(c.scheduler.stats.reassignedShards).toBe(3);
    expect(honest.client.stats.tasksDone).toBe(2); // its own shards, then the faulty worker's
    await expectStepsComplete(c, [1]);
  });
});

describe('hub + scheduler: other faults', () => {
  it("rejects a result from one worker for another worker's task, and reassigns the sender's shards", async () => {
    const c = await coordinator();
    const a = await RawWorker.connect(c.url);
    const aId = (await a.join(TOKEN, c.datasetHash, 'a')).workerId;
    const b = await RawWorker.connect(c.url);
    const bId = (await b.join(TOKEN, c.datasetHash, 'b')).workerId;
    const p = plan(0);
    const step = startStep(c, p, 0);
    const [taskA, taskB] = await Promise.all([a.next('task'), b.next('task')]);
    expect(taskB.shards.map((s) => s.id)).toEqual([4, 5, 6]);

    // B answers A's task, correctly even: only the ownership is wrong.
    b.send(honestResult(COMPUTER, W0, taskA));
    expect((await within(b.closed, 'B to be closed')).code).toBe(CloseCode.BAD_RESULT);
    await expectLogged(c, bId, rejected('not_assigned', new RegExp(`^task ${taskA.taskId} belongs to ${aId}$`)));

    // A, the only worker left, now also holds B's shards; it answers both tasks.
    const taskA2 = await a.next('task');
    expect(taskA2.shards).toEqual(taskB.shards);
    a.send(honestResult(COMPUTER, W0, taskA));
    a.send(honestResult(COMPUTER, W0, taskA2));
    expectIdentical(await within(step, 'step 0'), reference(W0, p));
    expect(c.scheduler.stats.reassignedShards).toBe(3);
  });

  it('drops a worker that stops answering pings after about two heartbeat periods', async () => {
    const heartbeatMs = 100;
    const c = await coordinator({ heartbeatMs });
    const honest: HonestWorker = await startHonestWorker(c.url, TOKEN, DATASET);
    // autoPong: false makes ws leave pings unanswered (node_modules/ws/lib/websocket.js).
    const silent = await RawWorker.connect(c.url, { autoPong: false });
    const t0 = performance.now(); // before its last message, so before the hub's lastSeen
    const silentId = (await silent.join(TOKEN, c.datasetHash)).workerId;
    const p = plan(0);
    const step = startStep(c, p, 0);
    await silent.next('task'); // and never answered

    expect((await within(silent.closed, 'the silent worker to be dropped')).code).toBe(WS_ABNORMAL);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(2 * heartbeatMs - 2); // Date.now() in the hub counts whole ms
    expect(elapsed).toBeLessThan(20 * heartbeatMs);
    const line = await expectLogged(c, silentId, { level: Level.warn, msg: 'heartbeat missed; dropping worker' });
    expect(line.silentMs).toBeGreaterThan(2 * heartbeatMs);

    expectIdentical(await within(step, 'step 0'), reference(W0, p));
    expect(c.scheduler.stats.reassignedShards).toBe(3);
    // The honest worker answers pings (ws does so by default) and is never dropped.
    expect(honest.socket.readyState).toBe(honest.socket.OPEN);
    expect(
      c.logs.find((l) => l.msg === 'heartbeat missed; dropping worker' && l.workerId === honest.workerId),
    ).toBeUndefined();
  });
});

describe('the verifier seam', () => {
  /** A coordinator whose verifier holds the results of the worker with agent 'doubted' until the test decides. */
  async function withDoubtedWorker(): Promise<{
    c: Coordinator;
    held: Promise<Claim>;
    decide: (v: Verdict) => void;
  }> {
    let hold!: (claim: Claim) => void;
    const held = new Promise<Claim>((resolve) => {
      hold = resolve;
    });
    let decide!: (v: Verdict) => void;
    const verdict = new Promise<Verdict>((resolve) => {
      decide = resolve;
    });
    const c = await coordinator({
      verifier: (recompute) => {
        const structural = new StructuralVerifier(recompute);
        return {
          verify: (claim) => {
            if (claim.worker.agent !== 'doubted') return structural.verify(claim);
            hold(claim);
            return verdict;
          },
        };
      },
    });
    return { c, held, decide };
  }

  it('holds a result while its verdict is pending; a rejection disconnects the worker, moves its shards', async () => {
    const { c, held, decide } = await withDoubtedWorker();
    const honest = await startHonestWorker(c.url, TOKEN, DATASET);
    const doubted = await RawWorker.connect(c.url);
    const doubtedId = (await doubted.join(TOKEN, c.datasetHash, 'doubted')).workerId;
    const p = plan(0);
    const step = startStep(c, p, 0);
    const task = await doubted.next('task');
    doubted.send(honestResult(COMPUTER, W0, task));
    const claim = await within(held, 'the verifier to be asked');
    expect([claim.taskId, claim.shards, claim.plan]).toEqual([task.taskId, [4, 5, 6], p]);
    expect(c.scheduler.stats.steps).toBe(0);

    decide({ kind: 'reject', reason: 'not_assigned', detail: 'a second opinion disagrees' });
    expect((await within(doubted.closed, 'the doubted worker to be closed')).code).toBe(CloseCode.BAD_RESULT);
    await expectLogged(c, doubtedId, rejected('not_assigned', /^a second opinion disagrees$/));
    expectIdentical(await within(step, 'step 0'), reference(W0, p));
    expect(c.scheduler.stats.reassignedShards).toBe(3);
    expect(honest.client.stats.tasksDone).toBe(2);
  });

  it('a forged verdict bans the worker: close 4010, "worker banned", its address and agent refused after', async () => {
    const { c, held, decide } = await withDoubtedWorker();
    const honest = await startHonestWorker(c.url, TOKEN, DATASET);
    const doubted = await RawWorker.connect(c.url);
    const doubtedId = (await doubted.join(TOKEN, c.datasetHash, 'doubted')).workerId;
    const p = plan(0);
    const step = startStep(c, p, 0);
    doubted.send(honestResult(COMPUTER, W0, await doubted.next('task')));
    await within(held, 'the verifier to be asked');
    decide({ kind: 'forged', detail: 'task 2 node 0: gradient[3] differs', undoFrom: null });
    expect((await within(doubted.closed, 'the banned worker to be closed')).code).toBe(CloseCode.BANNED);
    const banned = await c.logs.waitFor((l) => l.msg === 'worker banned', 'worker banned');
    expect(banned).toMatchObject({ workerId: doubtedId, reason: 'forged', agent: 'doubted' });
    expectIdentical(await within(step, 'step 0'), reference(W0, p));
    expect(honest.client.stats.tasksDone).toBe(2);

    const again = await RawWorker.connect(c.url);
    again.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, kind: 'node', agent: 'doubted' });
    expect((await within(again.closed, 'the banned agent to be refused')).code).toBe(CloseCode.BANNED);
    const other = await RawWorker.connect(c.url);
    expect((await other.join(TOKEN, c.datasetHash, 'another')).workerId).toMatch(/^w\d+$/);
  });

  it('counts a held result once its verdict accepts it', async () => {
    const { c, held, decide } = await withDoubtedWorker();
    const honest = await startHonestWorker(c.url, TOKEN, DATASET);
    const doubted = await RawWorker.connect(c.url);
    await doubted.join(TOKEN, c.datasetHash, 'doubted');
    const p = plan(0);
    const step = startStep(c, p, 0);
    const task = await doubted.next('task');
    doubted.send(honestResult(COMPUTER, W0, task));
    await within(held, 'the verifier to be asked');
    decide({ kind: 'accept', verified: true });
    expectIdentical(await within(step, 'step 0'), reference(W0, p));
    expect(c.scheduler.stats.reassignedShards).toBe(0);
    expect(honest.client.stats.tasksDone).toBe(1);
  });
});
