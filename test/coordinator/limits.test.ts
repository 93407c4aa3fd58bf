// What a peer without a token (or one that stops cooperating) can make the coordinator
// do, in process: the production assembly on 127.0.0.1:0 with real sockets. Before its
// hello is accepted a connection may send only a few kB and is sent nothing but a
// small welcome; idle and slow-header connections are closed; connections are capped
// per address; a page from a foreign origin cannot open a WebSocket; a worker that does
// not read is cut; a worker that keeps missing deadlines is ejected. The failed-token
// throttle and the roster's miss counting are checked directly with a fake clock.

import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import {
  addressKey,
  checkedToken,
  FailedTokenThrottle,
  normalizedOrigin,
  parseTokenFile,
  singleToken,
  TokenBook,
} from '../../coordinator/auth.js';
import { Events } from '../../coordinator/events.js';
import { Hub } from '../../coordinator/hub.js';
import { epochOrder, planStep } from '../../coordinator/plan.js';
import { Roster } from '../../coordinator/step/roster.js';
import type { StepWorker } from '../../coordinator/step/worker.js';
import { weightsHash } from '../../coordinator/trainer.js';
import { DEFAULTS as SETTINGS } from '../../shared/defaults.js';
import { spirals } from '../../shared/data/synthetic.js';
import { ConfigError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/init.js';
import { mlpSpec } from '../../shared/model/spec.js';
import { CloseCode, PROTOCOL_VERSION } from '../../shared/protocol/codes.js';
import { encode } from '../../shared/protocol/codec.js';
import { ShardComputer } from '../../worker/compute.js';
import {
  RawWorker,
  startCoordinator,
  startHonestWorker,
  within,
  type Coordinator,
  type HarnessOptions,
} from '../support/coordinator-harness.js';

const SEED = 7;
const DATASET = spirals(64, SEED);
/** 2,338 parameters: one gradient is 9 kB, over the 4 kB allowed before hello. */
const SPEC = mlpSpec(2, [64, 32], 2, 'tanh', 'cross_entropy');
const W0 = initParams(SPEC, SEED);
const SHARD_SIZE = 8;
const NUM_SHARDS = 4;
const TOKEN = 'a-token-of-some-length';
const ORDER = epochOrder(
  Uint32Array.from({ length: DATASET.numSamples }, (_, i) => i),
  SEED,
  0,
);
const WS_MESSAGE_TOO_BIG = 1009;

const OPTIONS: HarnessOptions = {
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
let sockets: Socket[] = [];

async function coordinator(options: Partial<HarnessOptions> = {}): Promise<Coordinator> {
  const c = await startCoordinator({ ...OPTIONS, ...options });
  running.push(c);
  return c;
}

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets = [];
  await Promise.all(running.map((c) => c.close()));
  running = [];
});

/** A raw TCP connection to the coordinator; resolves once connected. */
async function tcp(c: Coordinator): Promise<Socket> {
  const { port } = new URL(c.url);
  const socket = connect(Number(port), '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {}); // the server cutting it is the point
  await within(new Promise((resolve) => socket.once('connect', resolve)), 'a TCP connection');
  return socket;
}

function closed(socket: Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

describe('before the hello is accepted', () => {
  it('a message over 4 kB is refused with 1009; after hello, 9 kB results carry a step bit-identically', async () => {
    const c = await coordinator();
    const raw = await RawWorker.connect(c.url);
    raw.sendRaw(new Uint8Array(SETTINGS.coordinator.preHelloMaxBytes + 1));
    expect((await within(raw.closed, 'the oversized pre-hello message to be refused')).code).toBe(WS_MESSAGE_TOO_BIG);

    await startHonestWorker(c.url, TOKEN, DATASET);
    const plan = planStep(ORDER, 0, 0, 0, NUM_SHARDS * SHARD_SIZE, SHARD_SIZE);
    const got = await within(c.scheduler.run(plan, 0), 'a step with one honest worker');
    const [want] = new ShardComputer(SPEC, DATASET, SHARD_SIZE).computeNodes(
      W0,
      plan.shards.map((indices, id) => ({ id, indices })),
      NUM_SHARDS,
    );
    expect(W0.byteLength).toBeGreaterThan(2 * SETTINGS.coordinator.preHelloMaxBytes);
    expect(weightsHash(got.grad)).toBe(weightsHash(want.partial.grad));
  });

  it('the welcome carries no weights; the weights come only after ready', async () => {
    const c = await coordinator();
    const raw = await RawWorker.connect(c.url);
    raw.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, kind: 'node', agent: 'raw' });
    const welcome = await raw.next('welcome');
    expect(welcome).not.toHaveProperty('weights');
    expect(encode(welcome).byteLength).toBeLessThan(2048);
    expect(raw.received.map((m) => m.type)).toEqual(['welcome']);
    raw.send({ type: 'ready', datasetHash: c.datasetHash });
    const weights = await raw.next('weights');
    expect(weightsHash(weights.weights)).toBe(weightsHash(W0));
  });

  it('a wrong token is refused with 4001; the right one from that address, after its wait, is welcomed', async () => {
    const c = await coordinator();
    const guess = await RawWorker.connect(c.url);
    guess.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      token: 'a-wrong-guess-of-some-length',
      kind: 'node',
      agent: 'g',
    });
    expect((await within(guess.closed, 'the wrong token to be refused')).code).toBe(CloseCode.UNAUTHORIZED);
    const right = await RawWorker.connect(c.url);
    right.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, kind: 'node', agent: 'r' });
    await right.next('welcome');
  });
});

describe('guessing tokens', () => {
  it('each wrong token from one address waits at least twice as long after the previous as the last did', async () => {
    const c = await coordinator();
    const { failedTokenDelayMs: base } = SETTINGS.coordinator;
    const answeredAt: number[] = [];
    for (let guess = 0; guess < 4; guess++) {
      const w = await RawWorker.connect(c.url);
      w.send({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        token: `guess-number-${guess}-of-many`,
        kind: 'node',
        agent: 'g',
      });
      expect((await within(w.closed, `guess ${guess} to be refused`)).code).toBe(CloseCode.UNAUTHORIZED);
      answeredAt.push(performance.now());
    }
    // Lower bounds only: a slow machine makes the gaps longer, never shorter. The wait
    // runs from the server's refusal, which the client sees a little later each time:
    // hence the 20% allowance.
    const gaps = answeredAt.slice(1).map((t, i) => t - answeredAt[i]);
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(0.8 * base * 2 ** i));
  });
});

describe('idle and slow connections', () => {
  const limits = { idleTimeoutMs: 300, headersTimeoutMs: 300 };

  it('closes 20 TCP connections that never send a byte within the idle timeout', async () => {
    const c = await coordinator({ limits });
    const idle = await Promise.all(Array.from({ length: 20 }, () => tcp(c)));
    await within(Promise.all(idle.map(closed)), '20 idle connections to be closed', limits.idleTimeoutMs + 10_000);
  });

  it('closes a connection that trickles its headers, one byte at a time, past the headers timeout', async () => {
    const c = await coordinator({ limits });
    const socket = await tcp(c);
    const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(10_000)}`;
    let at = 0;
    // Each byte resets the idle timer: only the headers timeout can end this.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(request[at++ % request.length]);
    }, 20);
    try {
      await within(closed(socket), 'the trickling connection to be closed', limits.headersTimeoutMs + 10_000);
    } finally {
      clearInterval(trickle);
    }
  });
});

describe('named tokens', () => {
  const ALICE = 'alice-token-0123456789';
  const BOB = 'bob-token-0123456789ab';

  it('a worker joins with a named token, shown in its agent; removing it disconnects and refuses it', async () => {
    const c = await coordinator({
      namedTokens: new Map([
        ['alice', ALICE],
        ['bob', BOB],
      ]),
    });
    const alice = await RawWorker.connect(c.url);
    await alice.join(ALICE, c.datasetHash, 'laptop');
    const joined = await c.logs.waitFor((l) => l.msg === 'worker joined', 'alice joining');
    expect(joined.agent).toBe('laptop [alice]');
    const bob = await RawWorker.connect(c.url);
    await bob.join(BOB, c.datasetHash, 'desk');

    expect(c.replaceTokens(new Map([['bob', BOB]]))).toEqual(['alice']);
    expect(await within(alice.closed, 'alice to be disconnected')).toEqual({
      code: CloseCode.UNAUTHORIZED,
      reason: 'token revoked',
    });
    const again = await RawWorker.connect(c.url);
    again.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: ALICE, kind: 'node', agent: 'again' });
    expect((await within(again.closed, 'the revoked token to be refused')).code).toBe(CloseCode.UNAUTHORIZED);
    expect(bob.socket.readyState).toBe(bob.socket.OPEN);
    expect(c.scheduler.workerCount).toBe(1);
  });

  it('parses "name token" lines, naming the line of a mistake', () => {
    const named = parseTokenFile(`# volunteers\nalice ${ALICE}\n\n  bob\t${BOB}  \n`, 'tokens.txt');
    expect([...named]).toEqual([
      ['alice', ALICE],
      ['bob', BOB],
    ]);
    expect(() => parseTokenFile(`alice ${ALICE}\nbob short-token`, 'tokens.txt')).toThrow(
      /^tokens\.txt:2: the token of bob must be at least 16 characters$/,
    );
    expect(() => parseTokenFile(`alice ${ALICE} extra`, 't')).toThrow(/^t:1: expected "name token", got 3 words$/);
    expect(() => parseTokenFile(`alice ${ALICE}\nalice ${BOB}`, 't')).toThrow(/^t:2: alice is named twice$/);
    expect(() => parseTokenFile(`alice ${ALICE}\nbob ${ALICE}`, 't')).toThrow(/^t:2: the token of bob is another/);
    expect(() => parseTokenFile(`main ${ALICE}`, 't')).toThrow(ConfigError);
  });

  it('TokenBook names the token presented, and replacing it reports removed and changed names as revoked', () => {
    const book = new TokenBook(TOKEN, new Map([['alice', ALICE]]));
    expect(book.match(TOKEN)).toBe('main');
    expect(book.match(ALICE)).toBe('alice');
    expect(book.match(BOB)).toBeNull();
    expect(book.replace(new Map([['alice', BOB]]))).toEqual(['alice']);
    expect(book.match(ALICE)).toBeNull();
    expect(
      book.replace(
        new Map([
          ['alice', BOB],
          ['carol', ALICE],
        ]),
      ),
    ).toEqual([]);
  });
});

describe('connection caps', () => {
  it('cuts a connection over the per-address cap at once, and takes new ones once others close', async () => {
    const c = await coordinator({ limits: { maxConnectionsPerIp: 3 } });
    const held = await Promise.all([tcp(c), tcp(c), tcp(c)]);
    const extra = await tcp(c);
    await within(closed(extra), 'the fourth connection to be cut');
    expect(held.every((s) => !s.destroyed)).toBe(true);
    held[0].destroy();
    await closed(held[0]);
    // The server counts the close asynchronously: a new worker may need a second try.
    let worker: RawWorker | null = null;
    for (let attempt = 0; worker === null; attempt++) {
      worker = await RawWorker.connect(c.url).catch((err: unknown) => {
        if (attempt > 50) throw err;
        return null;
      });
    }
    worker.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, kind: 'node', agent: 'after' });
    await worker.next('welcome');
  });
});

describe('the Origin of a WebSocket upgrade', () => {
  it("takes none (Node workers), the coordinator's own and --allow-origin's; a foreign page gets 403", async () => {
    const c = await coordinator({ allowedOrigins: ['https://train.example.org'] });
    const own = new URL(c.url.replace('ws:', 'http:')).origin;
    for (const origin of [undefined, own, 'https://train.example.org']) {
      const w = await RawWorker.connect(c.url, origin === undefined ? {} : { origin });
      w.send({ type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, kind: 'browser', agent: String(origin) });
      await w.next('welcome');
    }
    await expect(RawWorker.connect(c.url, { origin: 'http://evil.example' })).rejects.toThrow(/403/);
    await expect(RawWorker.connect(c.url, { origin: 'http://localhost:1' })).rejects.toThrow(/403/);
  });
});

/** Just enough of a ws WebSocket for the hub: sends pile up unread. */
class UnreadSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CONNECTING = 0;
  readyState = 1;
  bufferedAmount = 0;
  terminated = false;
  /** Where the hub raises the post-hello limit (server.ts). */
  readonly _receiver = { _maxPayload: 4096 };
  send(bytes: Uint8Array): void {
    this.bufferedAmount += bytes.byteLength;
  }
  close(): void {}
  ping(): void {}
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close', 1006, Buffer.alloc(0));
  }
}

describe('a worker that does not read', () => {
  it('is cut once what it was sent and has not read passes the bound, and reported gone with not_reading', async () => {
    const log = pino({ level: 'silent' });
    const rejected: string[] = [];
    const gone: string[] = [];
    const events = new Events(log);
    events.on('workerRejected', (e) => rejected.push(e.reason));
    const hub = new Hub(
      {
        tokens: singleToken(TOKEN),
        throttle: new FailedTokenThrottle({ baseMs: 1, maxMs: 1, forgetMs: 1, maxAddresses: 1 }),
        maxPayload: 1 << 20,
        maxBufferedBytes: 10_000,
        datasetHash: 'h',
        limits: { paramCount: 1, maxNodes: 1, wireDtype: 'f32' },
        helloTimeoutMs: 60_000,
        heartbeatMs: 60_000,
      },
      log,
      events,
      {
        welcome: () => ({
          spec: SPEC,
          dataset: {
            name: 'x',
            dtype: 'f32',
            kind: 'classification',
            numSamples: 1,
            numFeatures: 2,
            labelWidth: 1,
            numClasses: 2,
            classNames: [],
            hash: 'h',
            path: '/data/h',
          },
          shardSize: 1,
          kernels: 'js',
          wireDtype: 'f32',
        }),
        onReady: () => {},
        onResult: () => {},
        onGone: (w, why) => gone.push(`${w.id} ${why}`),
      },
    );
    try {
      const socket = new UnreadSocket();
      const req = { socket: { remoteAddress: '192.0.2.1', remotePort: 1 } } as unknown as IncomingMessage;
      hub.accept(socket as unknown as WebSocket, req);
      const say = (m: Parameters<typeof encode>[0]): boolean => socket.emit('message', Buffer.from(encode(m)), true);
      say({ type: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, kind: 'node', agent: 'deaf' });
      expect(socket._receiver._maxPayload).toBe(1 << 20);
      say({ type: 'ready', datasetHash: 'h' });
      const worker = [...hub.connections][0];
      worker.send(new Uint8Array(5_000));
      await Promise.resolve();
      expect(socket.terminated).toBe(false);
      worker.send(new Uint8Array(6_000));
      await within(new Promise<void>((resolve) => queueMicrotask(resolve)), 'the microtask that drops the worker');
      expect(socket.terminated).toBe(true);
      expect(rejected).toEqual(['not_reading']);
      expect(gone).toEqual(['w1 rejected (not_reading)']);
    } finally {
      hub.close();
    }
  });
});

describe('FailedTokenThrottle', () => {
  it('doubles the wait per failure up to the ceiling, forgets a quiet address, and a success clears it', () => {
    let now = 1_000_000;
    const t = new FailedTokenThrottle({ baseMs: 250, maxMs: 2_000, forgetMs: 60_000, maxAddresses: 2 }, () => now);
    expect(t.delayMs('a')).toBe(0);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      t.failed('a');
      waits.push(t.delayMs('a'));
    }
    expect(waits).toEqual([250, 500, 1000, 2000, 2000, 2000]);
    now += 1_500;
    expect(t.delayMs('a')).toBe(500);
    expect(t.delayMs('b')).toBe(0);
    now += 60_001;
    expect(t.delayMs('a')).toBe(0);
    t.failed('a');
    t.succeeded('a');
    expect(t.delayMs('a')).toBe(0);
  });

  it('remembers a bounded number of addresses, forgetting the longest quiet first', () => {
    const t = new FailedTokenThrottle({ baseMs: 100, maxMs: 100, forgetMs: 60_000, maxAddresses: 2 }, () => 0);
    t.failed('a');
    t.failed('b');
    t.failed('c');
    expect([t.delayMs('a'), t.delayMs('b'), t.delayMs('c')]).toEqual([0, 100, 100]);
  });
});

describe('addresses, tokens and origins', () => {
  it('counts an IPv4 address (also mapped) as itself and an IPv6 address by its /64', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:0db8:0001:0002::/64');
    expect(addressKey('2001:db8:1:2::ffff')).toBe('2001:0db8:0001:0002::/64');
    expect(addressKey('::1')).toBe('0000:0000:0000:0000::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0000:0000:0000::/64');
  });

  it('refuses a chosen token under 16 characters with one line', () => {
    expect(checkedToken('sixteen-chars-ok', '--token')).toBe('sixteen-chars-ok');
    expect(() => checkedToken('', '--token')).toThrow(ConfigError);
    expect(() => checkedToken('a', '--token')).toThrow(/^--token must be at least 16 characters \(got 1\)/);
  });

  it('normalizes --allow-origin values as browsers send them, and refuses what is not an origin', () => {
    expect(normalizedOrigin('HTTPS://Train.Example.org:443/')).toBe('https://train.example.org');
    expect(normalizedOrigin('http://10.0.0.2:8787')).toBe('http://10.0.0.2:8787');
    expect(() => normalizedOrigin('train.example.org')).toThrow(ConfigError);
    expect(() => normalizedOrigin('file:///x')).toThrow(ConfigError);
  });
});

describe('Roster: missed deadlines', () => {
  const worker = (id: string): StepWorker =>
    ({ id, kind: 'node', agent: id, remote: '', tasksDone: 0, samplesDone: 0, computeMs: 0 }) as unknown as StepWorker;

  it("halves a worker's share per miss, ejects at the third in a row; a result in between starts afresh", () => {
    const roster = new Roster({ taskTimeoutMinMs: 1, taskTimeoutMaxMs: 60_000, ejectAfterMisses: 3 });
    const fast = worker('fast');
    const stall = worker('stall');
    roster.add(fast);
    roster.add(stall);
    roster.measure(fast, 100, 10);
    roster.measure(stall, 100, 10);
    const shareOf = (w: StepWorker): number =>
      roster
        .share(
          Array.from({ length: 64 }, (_, i) => i),
          new Set(),
        )
        .find((a) => a.worker === w)?.shards.length ?? 0;
    expect(shareOf(stall)).toBe(32);
    expect(roster.missed(stall)).toBe(false);
    expect(shareOf(stall)).toBeLessThan(32);
    expect(roster.missed(stall)).toBe(false);
    roster.measure(stall, 100, 10);
    expect(roster.missed(stall)).toBe(false);
    expect(roster.missed(stall)).toBe(false);
    expect(roster.missed(stall)).toBe(true);
  });

  it('gives a task 10 s (within the bounds) while no worker is measured, and the fleet mean after', () => {
    const roster = new Roster({ taskTimeoutMinMs: 1_000, taskTimeoutMaxMs: 60_000 });
    const a = worker('a');
    const b = worker('b');
    roster.add(a);
    roster.add(b);
    expect(roster.deadline(b, 100)).toBe(10_000);
    expect(new Roster({ taskTimeoutMinMs: 1_000, taskTimeoutMaxMs: 5_000 }).deadline(b, 100)).toBe(5_000);
    roster.measure(a, 100, 100);
    expect(roster.deadline(b, 100)).toBe(1_000);
    expect(roster.ejectAfterMisses).toBe(SETTINGS.coordinator.ejectAfterMisses);
  });
});
