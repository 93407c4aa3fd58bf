// The dashboard feed: it turns the coordinator's typed events and connection samples
// into feed events, serves them as server-sent events behind the token, and every
// event it sends passes the browser's validator; hostile feed input is refused.

import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resolveConfig } from '../../coordinator/config.js';
import { DashboardFeed, estimateEta, type ConnectionView, type FeedSource } from '../../coordinator/dashboard.js';
import { FeedError, parseFeedEvent, parseWorkerSearch, type FeedEvent } from '../../coordinator/dashboard-schema.js';
import { Events, type RunStarted } from '../../coordinator/events.js';
import { dashboardPageRoutes, publicPageRoutes } from '../../coordinator/pages/assets.js';
import type { RunningServer } from '../../coordinator/server.js';
import { startTestServer } from '../support/test-server.js';
import { parseLayers } from '../../shared/model/layers-flag.js';
import { mlpSpec } from '../../shared/model/spec.js';

type Line = Record<string, unknown> & { msg: string };

/** A feed listening to fresh events, whose log lines are kept in `lines`. */
function feedWithEvents(source: FeedSource): { feed: DashboardFeed; events: Events; lines: Line[] } {
  const lines: Line[] = [];
  const log = pino({ level: 'info', base: undefined }, { write: (l: string) => lines.push(JSON.parse(l) as Line) });
  const events = new Events(log);
  return { feed: new DashboardFeed(events, source), events, lines };
}

const CONFIG = resolveConfig({
  data: { kind: 'synthetic', name: 'blobs', samples: 600 },
  hidden: [16],
  epochs: 2,
  batchSize: 40,
  lr: 0.1,
});

const RUN: RunStarted = {
  dataset: 'blobs',
  datasetHash: 'ab'.repeat(32),
  train: 480,
  val: 120,
  spec: mlpSpec(2, [16], 3, 'relu', 'cross_entropy'),
  config: CONFIG,
};

function connection(id: string, patch: Partial<ConnectionView> = {}): ConnectionView {
  return {
    id,
    state: 'ready',
    kind: 'browser',
    agent: 'Chrome 1 on Linux',
    remote: '127.0.0.1:5',
    tasksDone: 3,
    samplesDone: 48,
    computeMs: 12,
    lastSeen: Date.now(),
    standby: null,
    ...patch,
  };
}

describe('DashboardFeed', () => {
  it('keeps the run, steps, epochs, workers and progress from events and samples', async () => {
    let connections = [
      connection('w1'),
      connection('w2', { kind: 'node', state: 'loading' }),
      connection('w3', { state: 'awaiting_hello' }),
    ];
    let step = 0;
    const { feed, events } = feedWithEvents({ connections: () => connections, globalStep: () => step });
    events.emit('run', RUN);
    events.emit('workerJoined', {
      workerId: 'w1',
      workers: 1,
      kind: 'browser',
      agent: 'Chrome 1 on Linux',
      remote: '127.0.0.1:5',
    });
    events.emit('step', { epoch: 1, step: 10, loss: 0.5, lr: 0.1, workers: 2, samplesPerSec: 900 });
    events.emit('epoch', {
      epoch: 1,
      samples: 480,
      trainLoss: 0.4,
      trainAccuracy: 0.9,
      valLoss: 0.3,
      valAccuracy: 0.95,
      seconds: 1.5,
    });
    // The join's immediate sample runs in a microtask: wait for its worker rows.
    await vi.waitFor(() => expect(feed.state.workers.total).not.toBe(0));
    step = 12;
    const s = feed.state;
    expect(s.run).toMatchObject({ dataset: 'blobs', train: 480, val: 120, model: '2-16-3 relu, cross_entropy' });
    // What the run uses, in words: the loss the data chose, the model built, no raw JSON or null.
    expect(s.run?.config).toEqual([
      ['data', 'synthetic blobs (600 samples)'],
      ['model', '2-16-3 relu, cross_entropy'],
      ['loss', 'cross_entropy (for classification data)'],
      ['epochs', '2'],
      ['batch size', '40 samples, in 3 shards of 16'],
      ['optimizer', 'sgd, momentum 0.9'],
      ['learning rate', '0.1'],
      ['weight decay', 'none'],
      ['gradient clipping', 'none'],
      ['seed', '42'],
      ['validation', '480 train / 120 validation (20% held out)'],
      ['kernels', 'wasm (WebAssembly SIMD)'],
      ['wire dtype', 'f32'],
    ]);
    expect(s.steps).toEqual([{ step: 10, epoch: 1, loss: 0.5, samplesPerSec: 900, workers: 2 }]);
    expect(s.epochs).toEqual([
      { epoch: 1, trainLoss: 0.4, trainAccuracy: 0.9, valLoss: 0.3, valAccuracy: 0.95, seconds: 1.5 },
    ]);
    // A worker that has just finished tasks is computing; a small fleet is listed whole.
    expect(s.workers.all?.map((w) => [w.id, w.status, w.samplesPerSec])).toEqual([
      ['w1', 'computing', 4000],
      ['w2', 'loading', 4000],
    ]);
    expect(s.workers).toMatchObject({ total: 2, counts: { computing: 1, loading: 1, idle: 0, left: 0 } });
    expect(s.events.map((e) => e.text)).toEqual(['w1 joined: browser Chrome 1 on Linux (1 connected)']);
    expect(s.progress).toMatchObject({ step: 0, totalSteps: 24, stepsPerEpoch: 12, epochs: 2 });

    connections = [connection('w2', { kind: 'node' })];
    events.emit('workerLeft', { workerId: 'w1', workers: 1, reason: 'closed (1001)', tasksDone: 3 });
    await vi.waitFor(() =>
      expect(feed.state.workers.all?.map((w) => [w.id, w.status])).toEqual([
        ['w2', 'computing'],
        ['w1', 'left'],
      ]),
    );
    events.emit('done', {
      epochs: 2,
      steps: 24,
      valLoss: 0.2,
      valAccuracy: 0.97,
      weightsHash: 'cd'.repeat(32),
      interrupted: false,
      out: null,
    });
    expect(feed.state.done).toEqual({ steps: 24, valAccuracy: 0.97, weightsHash: 'cd'.repeat(32), interrupted: false });
    expect(feed.state.progress).toMatchObject({ step: 12, etaSeconds: 0 });
    feed.close();
  });

  it('describes a conv model by its layers, and an adam run by its optimizer and schedule', () => {
    const { feed, events } = feedWithEvents({ connections: () => [], globalStep: () => 0 });
    const spec = parseLayers('conv2d:8:5,relu,maxpool2d:2,conv2d:4:3:1:1,relu,flatten,dropout:0.25,dense:10', {
      inputShape: [1, 28, 28],
      outputs: 10,
      loss: 'cross_entropy',
      seed: 1,
    });
    const config = resolveConfig({
      optimizer: 'adam',
      lr: 0.001,
      lrSchedule: 'cosine',
      minLr: 0.0001,
      warmupSteps: 20,
      loss: 'cross_entropy',
    });
    events.emit('run', { ...RUN, dataset: 'mnist', train: 8000, val: 2000, spec, config });
    const rows = new Map(feed.state.run?.config);
    expect(rows.get('model')).toBe(
      '1x28x28: conv2d:8:5, relu, maxpool2d:2, conv2d:4:3:1:1, relu, flatten, dropout:0.25, dense:10, cross_entropy',
    );
    expect(rows.get('data')).toBe('MNIST, embedded (10,000 images)');
    expect(rows.get('loss')).toBe('cross_entropy');
    expect(rows.get('optimizer')).toBe(`adam, beta1 ${config.beta1}, beta2 ${config.beta2}, eps ${config.eps}`);
    expect(rows.get('learning rate')).toBe('0.001, cosine decay to 0.0001, after 20 warmup steps');
    expect(rows.get('validation')).toBe("8,000 train / 2,000 validation (MNIST's fixed hold-out)");
    for (const [, v] of rows) expect(v).not.toMatch(/null|[{}"]/);
    feed.close();
  });

  it("shows why a ready worker stands by, and a communication-bound run's warning", async () => {
    const reason = 'standing by: the other workers finish a step before this one could finish a shard';
    let connections = [connection('w1'), connection('w2', { standby: reason })];
    const { feed, events } = feedWithEvents({ connections: () => connections, globalStep: () => 0 });
    events.emit('run', RUN);
    events.emit('workerStandingBy', { workerId: 'w2', reason });
    events.emit('communicationBound', {
      workers: 2,
      stepMs: 1.5,
      computeMsPerWorker: 0.2,
      computePercent: 13,
      hint: 'a larger --batch-size would pay better',
    });
    events.emit('workerJoined', { workerId: 'w1', workers: 2, kind: 'node', agent: 'a', remote: 'r' });
    await vi.waitFor(() =>
      expect(feed.state.workers.all?.map((w) => [w.id, w.standby])).toEqual([
        ['w1', null],
        ['w2', reason],
      ]),
    );
    expect(feed.state.events.map((e) => e.text).slice(0, 2)).toEqual([
      `w2 ${reason}`,
      'communication-bound: workers compute 13% of each 1.5 ms step; a larger --batch-size would pay better',
    ]);
    expect(feed.state.workers.counts).toMatchObject({ computing: 1, standby: 1 });
    expect(parseFeedEvent({ type: 'workers', workers: feed.state.workers, progress: null })).toEqual({
      type: 'workers',
      workers: feed.state.workers,
      progress: null,
    });
    // It takes work again; a worker that left shows no standby.
    connections = [connection('w1', { standby: reason }), connection('w2')];
    events.emit('workerLeft', { workerId: 'w3', workers: 2, reason: 'closed (1001)', tasksDone: 0 });
    await vi.waitFor(() => expect(feed.state.workers.all?.map((w) => w.standby)).toEqual([reason, null]));
    feed.close();
  });

  it('writes each event as its log line, fields as given', () => {
    const { feed, events, lines } = feedWithEvents({ connections: () => [], globalStep: () => 0 });
    events.emit('workerLeft', { workerId: 'w1', workers: 0, reason: 'closed (1001)', tasksDone: 3 });
    events.emit('shardsReassigned', { workerId: 'w1', epoch: 1, shards: [4, 5] });
    events.emit('workerRejected', {
      workerId: 'w2',
      reason: 'non_finite',
      detail: 'grads: value 3 is NaN',
      remote: 'r',
    });
    expect(lines).toEqual([
      {
        level: 30,
        time: expect.any(Number),
        msg: 'worker left',
        workerId: 'w1',
        workers: 0,
        reason: 'closed (1001)',
        tasksDone: 3,
      },
      { level: 30, time: expect.any(Number), msg: 'reassigning shards', workerId: 'w1', epoch: 1, shards: [4, 5] },
      {
        level: 40,
        time: expect.any(Number),
        msg: 'rejected',
        workerId: 'w2',
        reason: 'non_finite',
        detail: 'grads: value 3 is NaN',
        remote: 'r',
      },
    ]);
    expect(feed.state.events.map((e) => e.text)).toEqual([
      'w1 left after 3 tasks: closed (1001) (0 connected)',
      'shards 4,5 of w1 reassigned',
      'w2 rejected (non_finite): grads: value 3 is NaN',
    ]);
    feed.close();
  });

  it('estimates the ETA from the recent step rate', () => {
    expect(estimateEta([{ t: 0, step: 0 }], 100)).toEqual({ stepsPerSec: null, etaSeconds: null });
    expect(
      estimateEta(
        [
          { t: 0, step: 0 },
          { t: 10_000, step: 0 },
        ],
        100,
      ),
    ).toEqual({ stepsPerSec: null, etaSeconds: null });
    expect(
      estimateEta(
        [
          { t: 0, step: 10 },
          { t: 5_000, step: 20 },
          { t: 10_000, step: 30 },
        ],
        100,
      ),
    ).toEqual({ stepsPerSec: 2, etaSeconds: 35 });
  });
});

describe('the dashboard over HTTP', () => {
  let server: RunningServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  async function serve(feed: DashboardFeed): Promise<string> {
    server = await startTestServer(
      {
        protectedRoutes: new Map([['/data', (_req, res) => res.end('data')]]),
        dashboardRoutes: new Map(feed.routes()),
        publicRoutes: new Map([...publicPageRoutes(), ...dashboardPageRoutes()]),
      },
      { worker: 'sesame', dashboard: 'peek' },
    );
    return `http://127.0.0.1:${server.port}`;
  }

  /** Reads server-sent events until `count` arrived; each one through the browser's validator. */
  /** The stream's feed events one at a time, as they arrive; ending the iteration cancels the stream. */
  async function* feedEvents(res: Response): AsyncGenerator<FeedEvent> {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
        for (let cut = text.indexOf('\n\n'); cut >= 0; cut = text.indexOf('\n\n')) {
          const frame = text.slice(0, cut);
          text = text.slice(cut + 2);
          expect(frame.startsWith('data: ')).toBe(true);
          yield parseFeedEvent(JSON.parse(frame.slice('data: '.length)));
        }
      }
    } finally {
      await reader.cancel();
    }
  }

  /** The next feed event, or a failure if the stream ends first. */
  async function next(stream: AsyncGenerator<FeedEvent>): Promise<FeedEvent> {
    const { value, done } = await stream.next();
    if (done) throw new Error('the event stream ended');
    return value;
  }

  it('streams the state, then changes, to a client with the token; refuses one without', async () => {
    const { feed, events } = feedWithEvents({ connections: () => [connection('w1')], globalStep: () => 0 });
    events.emit('run', RUN);
    const base = await serve(feed);
    expect((await fetch(`${base}/events`)).status).toBe(401);
    expect((await fetch(`${base}/events?token=wrong`)).status).toBe(401);
    // The page is code (its token stays in the fragment); only its data is behind a token.
    const page = await fetch(`${base}/dashboard`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<canvas id="loss-chart"');
    // The dashboard's token reads the feed, and nothing else.
    expect((await fetch(`${base}/data`, { headers: { authorization: 'Bearer peek' } })).status).toBe(401);
    expect((await fetch(`${base}/data`, { headers: { authorization: 'Bearer sesame' } })).status).toBe(200);
    const peek = await fetch(`${base}/events`, { headers: { authorization: 'Bearer peek' } });
    expect(peek.status).toBe(200);
    await peek.body?.cancel();
    const res = await fetch(`${base}/events`, { headers: { authorization: 'Bearer sesame' } });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const stream = feedEvents(res);
    // The state arrives first, once the client is subscribed: changes from then on reach it.
    const state = await next(stream);
    events.emit('step', { epoch: 1, step: 10, loss: 0.5, lr: 0.1, workers: 1, samplesPerSec: 900 });
    events.emit('workerLeft', { workerId: 'w1', workers: 0, reason: 'closed (1001)', tasksDone: 3 });
    const step = await next(stream);
    const left = await next(stream);
    await stream.return(undefined);
    expect(state).toMatchObject({ type: 'state', run: { dataset: 'blobs' }, steps: [] });
    expect(step).toEqual({ type: 'step', point: { step: 10, epoch: 1, loss: 0.5, samplesPerSec: 900, workers: 1 } });
    expect(left).toMatchObject({
      type: 'event',
      event: { text: 'w1 left after 3 tasks: closed (1001) (0 connected)' },
    });
    // The search reaches any worker, behind the same tokens.
    await vi.waitFor(() => expect(feed.state.workers.total).toBe(1));
    expect((await fetch(`${base}/workers?q=w1`)).status).toBe(401);
    const found = await fetch(`${base}/workers?q=W1`, { headers: { authorization: 'Bearer peek' } });
    expect(found.headers.get('content-type')).toBe('application/json');
    expect(parseWorkerSearch(await found.json())).toMatchObject({ query: 'W1', total: 1, matches: [{ id: 'w1' }] });
    feed.close();
  });

  it('serves the worker page and its bundles to anyone; the page carries no token', async () => {
    const { feed } = feedWithEvents({ connections: () => [], globalStep: () => 0 });
    const base = await serve(feed);
    const page = await fetch(`${base}/?token=sesame`);
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toContain('<script src="/assets/worker-page.js"></script>');
    expect(html).not.toContain('sesame');
    for (const bundle of ['worker-page.js', 'compute-worker.js', 'dashboard.js']) {
      const res = await fetch(`${base}/assets/${bundle}`);
      expect(res.status, `${bundle} (built by npm run build)`).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    }
    expect((await fetch(`${base}/assets/nope.js`)).status).toBe(404);
    feed.close();
  });
});

describe('parseFeedEvent', () => {
  it('refuses what the dashboard cannot use, naming the field', () => {
    expect(() => parseFeedEvent(null)).toThrow(FeedError);
    expect(() => parseFeedEvent({ type: 'nope' })).toThrow(/unknown feed event type/);
    expect(() =>
      parseFeedEvent({ type: 'step', point: { step: '1', epoch: 1, loss: 0, samplesPerSec: 0, workers: 1 } }),
    ).toThrow(/step: expected a finite number/);
    expect(() =>
      parseFeedEvent({ type: 'step', point: { step: 1, epoch: 1, loss: Infinity, samplesPerSec: 0, workers: 1 } }),
    ).toThrow(/loss/);
    const row = {
      id: 'w1',
      kind: 'node',
      agent: 'a',
      remote: 'r',
      status: 'exploded',
      tasksDone: 0,
      samplesDone: 0,
      samplesPerSec: 0,
      lastSeenMs: 0,
    };
    const workers = {
      total: 1,
      counts: { computing: 0, idle: 0, standby: 0, loading: 0, left: 0, banned: 0 },
      samplesPerSec: 0,
      fastest: [],
      slowest: [],
      all: [row],
    };
    expect(() => parseFeedEvent({ type: 'workers', workers, progress: null })).toThrow(/status: unknown/);
    expect(() =>
      parseFeedEvent({ type: 'workers', workers: { ...workers, all: [], counts: { computing: 1 } }, progress: null }),
    ).toThrow(/idle: expected a finite number/);
    expect(() =>
      parseFeedEvent({ type: 'run', run: { dataset: 'd', train: 1, val: 0, model: 'm', config: [['a', 1]] } }),
    ).toThrow(/config/);
    expect(() => parseFeedEvent({ type: 'done', done: null })).toThrow(/done/);
  });
});
