// The dashboard's worker table: each worker's status from successive samples, the
// fleet's throughput, a summary whose size does not grow with the fleet, and the
// search that reaches every worker.

import { describe, expect, it } from 'vitest';
import { parseFeedEvent, type WorkerRow } from '../../coordinator/dashboard-schema.js';
import {
  COMPUTING_MS,
  type ConnectionView,
  EXTREMES,
  FULL_TABLE_MAX,
  SEARCH_MAX,
  searchWorkers,
  summariseWorkers,
  WorkerTable,
} from '../../coordinator/dashboard-workers.js';

const T0 = 1_800_000_000_000;

function connection(id: string, patch: Partial<ConnectionView> = {}): ConnectionView {
  return {
    id,
    state: 'ready',
    kind: 'browser',
    agent: 'Chrome 131 on Linux x86_64',
    remote: '10.0.0.1:40000',
    tasksDone: 0,
    samplesDone: 0,
    computeMs: 0,
    lastSeen: T0,
    standby: null,
    ...patch,
  };
}

/** `n` ready workers; worker i computed at (i + 1) * 10 samples per second of compute. */
function fleet(n: number, tasksDone = 1): ConnectionView[] {
  return Array.from({ length: n }, (_, i) =>
    connection(`w${i + 1}`, {
      tasksDone,
      samplesDone: 100 * tasksDone,
      computeMs: (100_000 * tasksDone) / ((i + 1) * 10),
      remote: `10.0.${Math.floor(i / 250)}.${i % 250}:4${String(i).padStart(4, '0')}`,
    }),
  );
}

function statuses(table: WorkerTable): [string, string][] {
  return table.rows.map((r) => [r.id, r.status]);
}

describe('WorkerTable', () => {
  it('tells computing from idle by whether a task finished lately, and keeps standby and loading', () => {
    const table = new WorkerTable();
    table.sample(
      [
        connection('w1', { tasksDone: 2, samplesDone: 32, computeMs: 8 }),
        connection('w2'),
        connection('w3', { standby: 'standing by: a step has 2 shards for 3 workers' }),
        connection('w4', { state: 'loading' }),
        connection('w5', { state: 'awaiting_hello' }),
      ],
      T0,
    );
    expect(statuses(table)).toEqual([
      ['w1', 'computing'],
      ['w2', 'idle'],
      ['w3', 'standby'],
      ['w4', 'loading'],
    ]);
    // w1 finishes nothing more for longer than COMPUTING_MS: idle; w2 finishes a task: computing.
    table.sample(
      [
        connection('w1', { tasksDone: 2, samplesDone: 32, computeMs: 8 }),
        connection('w2', { tasksDone: 1, samplesDone: 16, computeMs: 4 }),
      ],
      T0 + COMPUTING_MS,
    );
    expect(statuses(table)).toEqual([
      ['w1', 'idle'],
      ['w2', 'computing'],
      ['w3', 'left'],
      ['w4', 'left'],
    ]);
  });

  it('lists a worker banned for a forgery as banned once gone, others as left', () => {
    const table = new WorkerTable();
    table.sample([connection('w1'), connection('w2')], T0);
    table.banned('w2');
    table.sample([], T0 + 1000);
    expect(statuses(table)).toEqual([
      ['w1', 'left'],
      ['w2', 'banned'],
    ]);
    expect(table.summary().counts).toMatchObject({ left: 1, banned: 1, computing: 0, idle: 0 });
    // Time since they were last seen goes on counting while they stay listed.
    table.sample([], T0 + 3000);
    expect(table.rows.map((r) => r.lastSeenMs)).toEqual([2000, 2000]);
  });

  it("measures the fleet's throughput from the samples computed between samples, departures included", () => {
    const table = new WorkerTable();
    table.sample([connection('w1', { samplesDone: 500 }), connection('w2', { samplesDone: 100 })], T0);
    table.sample([connection('w1', { samplesDone: 1500 }), connection('w2', { samplesDone: 600 })], T0 + 1000);
    expect(table.summary().samplesPerSec).toBe(1500);
    // w2 leaves: what it computed stays counted; a newcomer's samples count from zero.
    table.sample([connection('w1', { samplesDone: 2500 }), connection('w3', { samplesDone: 500 })], T0 + 2000);
    expect(table.summary().samplesPerSec).toBe(1500);
  });

  it('sends a summary whose size does not grow with the fleet, and finds any worker by search', () => {
    const sizes: number[] = [];
    for (const n of [200, 2000]) {
      const table = new WorkerTable();
      table.sample(fleet(n), T0);
      const summary = table.summary();
      expect(summary.total).toBe(n);
      expect(summary.counts.computing).toBe(n);
      expect(summary.all).toBeNull();
      expect(summary.fastest.map((r) => r.id)).toEqual(Array.from({ length: EXTREMES }, (_, i) => `w${n - i}`));
      expect(summary.slowest.map((r) => r.id)).toEqual(Array.from({ length: EXTREMES }, (_, i) => `w${i + 1}`));
      expect(summary.fastest[0].samplesPerSec).toBe(n * 10);
      const frame = JSON.stringify({ type: 'workers', workers: summary, progress: null });
      expect(parseFeedEvent(JSON.parse(frame))).toEqual({ type: 'workers', workers: summary, progress: null });
      sizes.push(frame.length);

      const exact = table.search('W1234');
      expect(exact.matches.map((r) => r.id)).toEqual(n >= 1234 ? ['w1234'] : []);
      const many = table.search('w1');
      expect(many.matches).toHaveLength(SEARCH_MAX);
      expect(many.total).toBe(table.rows.filter((r) => r.id.includes('w1')).length);
    }
    // Both summaries hold the same rows: only the digits of the counts differ.
    expect(Math.abs(sizes[1] - sizes[0])).toBeLessThan(100);
    expect(sizes[1]).toBeLessThan(8 * 1024);
  });
});

describe('summariseWorkers', () => {
  const row = (id: string, patch: Partial<WorkerRow> = {}): WorkerRow => ({
    id,
    kind: 'node',
    agent: 'node 20',
    remote: '127.0.0.1:1',
    status: 'computing',
    tasksDone: 1,
    samplesDone: 8,
    samplesPerSec: 100,
    lastSeenMs: 0,
    standby: null,
    ...patch,
  });

  it('lists every worker of a small fleet; ranks only connected, measured ones, ties by id', () => {
    const rows = [
      row('w3', { samplesPerSec: 50 }),
      row('w1', { samplesPerSec: 50 }),
      row('w2', { samplesPerSec: 0, status: 'loading' }),
      row('w4', { samplesPerSec: 900, status: 'left' }),
      row('w5', { samplesPerSec: 70, status: 'standby' }),
    ];
    const s = summariseWorkers(rows, 170);
    expect(s.all).toEqual(rows);
    expect(s.fastest.map((r) => r.id)).toEqual(['w5', 'w1', 'w3']);
    expect(s.slowest.map((r) => r.id)).toEqual(['w3', 'w1', 'w5']);
    expect(s.counts).toEqual({ computing: 2, idle: 0, standby: 1, loading: 1, left: 1, banned: 0 });
    expect(s.samplesPerSec).toBe(170);
    const full = Array.from({ length: FULL_TABLE_MAX }, (_, i) => row(`w${i}`));
    expect(summariseWorkers(full, 0).all).toHaveLength(FULL_TABLE_MAX);
    expect(summariseWorkers([...full, row('one more')], 0).all).toBeNull();
  });

  it('searches ids, agents and addresses without regard to case; an empty query finds nothing', () => {
    const rows = [
      row('w1', { agent: 'Firefox 130 on Linux', remote: '192.168.1.7:5000' }),
      row('w2', { agent: 'Chrome 131 on MacIntel', remote: '192.168.1.8:5000' }),
      row('w12', { agent: 'node 20.1 on linux', remote: '10.1.1.1:7' }),
    ];
    const ids = (q: string): string[] => searchWorkers(rows, q).matches.map((r) => r.id);
    expect(ids('w1')).toEqual(['w1', 'w12']);
    expect(ids('LINUX')).toEqual(['w1', 'w12']);
    expect(ids('192.168.1.8')).toEqual(['w2']);
    expect(ids('  ')).toEqual([]);
    expect(searchWorkers(rows, 'nothing like it')).toEqual({ query: 'nothing like it', matches: [], total: 0 });
  });
});
