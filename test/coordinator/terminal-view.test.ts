// The terminal view of a run, drawn from its events into a fake terminal: the run line,
// a live line redrawn in place, an aligned summary per epoch, worker arrivals and
// departures on the coordinator's view only, and the outcome.

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RUN_DEFAULTS } from '../../coordinator/config.js';
import { Events } from '../../coordinator/events.js';
import { TerminalView } from '../../coordinator/terminal-view.js';
import { mlpSpec } from '../../shared/model/spec.js';

function drawn(serving: boolean): { events: Events; text: () => string } {
  let out = '';
  const events = new Events(pino({ level: 'silent' }));
  new TerminalView({ write: (t: string) => (out += t), columns: 120 }, events, serving);
  // The line clear (carriage return, erase line) shown as ⟲.
  return { events, text: () => out.replaceAll('\r\x1b[2K', '⟲') };
}

function play(events: Events): void {
  const config = { ...RUN_DEFAULTS, epochs: 2, batchSize: 10 };
  events.emit('run', {
    dataset: 'blobs',
    datasetHash: 'h',
    train: 100,
    val: 20,
    spec: mlpSpec(2, [8], 3, 'relu', 'cross_entropy'),
    config,
  });
  events.emit('join', {
    url: 'ws://h:1',
    token: 't',
    command: 'npx flocktrain worker --url ws://h:1 --token t',
    link: 'http://h:1/?token=t',
    dashboard: 'http://h:1/dashboard?token=t',
  });
  events.emit('workerJoined', { workerId: 'w1', workers: 1, kind: 'node', agent: 'box/1', remote: '::1' });
  events.emit('step', { epoch: 1, step: 5, loss: 0.5, lr: 0.1, workers: 1, samplesPerSec: 12345 });
  events.emit('step', { epoch: 1, step: 10, loss: 0.25, lr: 0.1, workers: 1, samplesPerSec: 12345 });
  const epoch = { samples: 100, trainLoss: 0.3, trainAccuracy: 0.9, valLoss: 0.2, valAccuracy: 0.95, seconds: 1.25 };
  events.emit('epoch', { epoch: 1, ...epoch });
  events.emit('workerLeft', { workerId: 'w1', workers: 0, reason: 'closed (1006 )', tasksDone: 3 });
  events.emit('epoch', { epoch: 2, ...epoch, valAccuracy: 0.975 });
  events.emit('done', {
    epochs: 2,
    steps: 20,
    valLoss: 0.2,
    valAccuracy: 0.975,
    weightsHash: 'abcdef0123456789',
    interrupted: false,
    out: 'm.safetensors',
  });
}

describe('terminal view', () => {
  it('draws a live line in place, then aligned epoch lines and the outcome', () => {
    const { events, text } = drawn(false);
    play(events);
    const lines = text().split('\n');
    expect(lines[0]).toBe('blobs: 100 training / 20 validation samples; model 2-8-3, sgd lr 0.1, 2 epochs of 10 steps');
    // The join commands come first (a coordinator listens before its run line); lines[1..3] here.
    expect(lines.splice(1, 3)).toEqual([
      'workers join with:  npx flocktrain worker --url ws://h:1 --token t',
      '  or open http://h:1/?token=t',
      '  dashboard: http://h:1/dashboard?token=t',
    ]);
    // The live line: redrawn after a line clear, never ended by a newline of its own.
    expect(lines[1]).toMatch(
      new RegExp(
        String.raw`^⟲epoch 1\/2 █{10}░{10} 5\/10 {2}ETA \d+:\d\d {2}12,345 samples\/s {2}loss 0\.5000` +
          String.raw`⟲epoch 1\/2 █{20} 10\/10 .* loss 0\.2500` +
          String.raw`⟲epoch 1\/2 {2}train loss 0\.3000 {2}acc 0\.9000 {2}val loss 0\.2000 {2}acc 0\.9500 {5}1\.3 s$`,
      ),
    );
    expect(lines[2]).toBe('epoch 2/2  train loss 0.3000  acc 0.9000  val loss 0.2000  acc 0.9750     1.3 s');
    expect(lines[3]).toBe('done: 20 steps, val accuracy 0.9750, weights abcdef012345…, written to m.safetensors');
    expect(text()).not.toMatch(/joined|left|\d workers?/);
  });

  it('does not log what it draws; other lines still go to the log', () => {
    const logged: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line).msg) });
    const events = new Events(log, undefined, TerminalView.DRAWN);
    new TerminalView({ write: () => true }, events, true);
    play(events);
    events.emit('taskExpired', { workerId: 'w1', taskId: 1, shards: [0], waitedMs: 5 });
    expect(logged).toEqual(['task deadline missed; handing its shards to others']);
  });

  it('on the coordinator, adds the workers to the live line and says who joined or left', () => {
    const { events, text } = drawn(true);
    play(events);
    const t = text();
    expect(t).toMatch(/\n\+ w1 joined \(node, box\/1\): 1 worker\n/);
    expect(t).toMatch(/loss 0\.5000 {2}1 worker⟲/);
    expect(t).toMatch(/\n- w1 left \(closed \(1006 \)\): 0 workers\n/);
  });
});
