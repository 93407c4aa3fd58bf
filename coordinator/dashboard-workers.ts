// The dashboard's worker table: rows sampled from the hub's connections once a tick,
// each worker's status (computing, idle, standby, loading, left, banned), the fleet's
// throughput, and what the feed sends of them — a summary whose size does not grow
// with the fleet (counts, the fastest and slowest few, every row only while the fleet
// is small) and a search over all rows. It keeps no more than the rows themselves.

import type { WorkerRow, WorkerSearch, WorkerStatus, WorkerSummary } from './dashboard-schema.js';
import { WORKER_STATUSES } from './dashboard-schema.js';

/** What the table samples from the hub: WorkerConnection has all of these. */
export interface ConnectionView {
  readonly id: string;
  readonly state: string;
  readonly kind: string | null;
  readonly agent: string;
  readonly remote: string;
  readonly tasksDone: number;
  readonly samplesDone: number;
  readonly computeMs: number;
  readonly lastSeen: number;
  /** Why a ready worker gets no shards, or null. */
  readonly standby: string | null;
}

/** Every row goes to the page while there are at most this many workers. */
export const FULL_TABLE_MAX = 50;
/** Fastest and slowest workers sent each tick. */
export const EXTREMES = 5;
/** Matches a search answers with at most. */
export const SEARCH_MAX = 50;
/** A ready worker that finished a task within this many ms is computing; otherwise idle. */
export const COMPUTING_MS = 3000;
/** Departed workers stay listed (as left or banned) this long, and this many at most. */
const KEEP_LEFT_MS = 10 * 60_000;
const MAX_LEFT = 1000;
/** The fleet's throughput is measured over this window. */
const THROUGHPUT_WINDOW_MS = 5000;

export class WorkerTable {
  #rows: WorkerRow[] = [];
  /** Departed workers in order of departure (a Map keeps insertion order), with when they left. */
  readonly #left = new Map<string, { row: WorkerRow; at: number }>();
  /** Per connected worker: its tasks and samples at the last sample, and when its tasks last grew. */
  readonly #seen = new Map<string, { tasksDone: number; samplesDone: number; taskAt: number }>();
  readonly #banned = new Set<string>();
  /** Samples computed by the fleet since the table began, at each recent sample. */
  readonly #computed: { t: number; samples: number }[] = [];
  #samples = 0;

  /** A worker banned for a forged result: it is listed as banned once gone. */
  banned(id: string): void {
    this.#banned.add(id);
  }

  get rows(): readonly WorkerRow[] {
    return this.#rows;
  }

  /** Takes a new sample of the connections (at `now`, ms since the epoch). */
  sample(connections: Iterable<ConnectionView>, now: number): void {
    const rows: WorkerRow[] = [];
    const present = new Set<string>();
    for (const c of connections) {
      if (c.state !== 'loading' && c.state !== 'ready') continue;
      present.add(c.id);
      const before = this.#seen.get(c.id);
      this.#samples += Math.max(0, c.samplesDone - (before?.samplesDone ?? 0));
      const taskAt = before === undefined || c.tasksDone > before.tasksDone ? now : before.taskAt;
      this.#seen.set(c.id, { tasksDone: c.tasksDone, samplesDone: c.samplesDone, taskAt });
      const grew = c.tasksDone > 0 && now - taskAt < COMPUTING_MS;
      rows.push({
        id: c.id,
        kind: c.kind ?? '?',
        agent: c.agent,
        remote: c.remote,
        status: c.state === 'loading' ? 'loading' : c.standby !== null ? 'standby' : grew ? 'computing' : 'idle',
        tasksDone: c.tasksDone,
        samplesDone: c.samplesDone,
        samplesPerSec: c.computeMs > 0 ? Math.round((c.samplesDone * 1000) / c.computeMs) : 0,
        lastSeenMs: Math.max(0, now - c.lastSeen),
        standby: c.state === 'ready' ? c.standby : null,
      });
    }
    for (const row of this.#rows) {
      if (present.has(row.id) || row.status === 'left' || row.status === 'banned') continue;
      const status = this.#banned.has(row.id) ? 'banned' : 'left';
      this.#left.set(row.id, { row: { ...row, status, standby: null }, at: now });
    }
    for (const id of this.#seen.keys()) if (!present.has(id)) this.#seen.delete(id);
    for (const [id, l] of this.#left)
      if (present.has(id) || now - l.at > KEEP_LEFT_MS || this.#left.size > MAX_LEFT) this.#left.delete(id);
    this.#rows = rows;
    for (const l of this.#left.values()) rows.push({ ...l.row, lastSeenMs: l.row.lastSeenMs + (now - l.at) });
    this.#computed.push({ t: now, samples: this.#samples });
    while (this.#computed.length > 2 && now - this.#computed[1].t >= THROUGHPUT_WINDOW_MS) this.#computed.shift();
  }

  /** What the feed sends each tick: bounded by FULL_TABLE_MAX + 2 EXTREMES rows. */
  summary(): WorkerSummary {
    return summariseWorkers(this.#rows, this.#throughput());
  }

  search(query: string): WorkerSearch {
    return searchWorkers(this.#rows, query);
  }

  #throughput(): number {
    const first = this.#computed[0];
    const last = this.#computed[this.#computed.length - 1];
    if (first === undefined || last.t <= first.t) return 0;
    return Math.round(((last.samples - first.samples) * 1000) / (last.t - first.t));
  }
}

/** Faster first; equal speeds by id, so the order does not depend on the hub's. */
function byFastest(a: WorkerRow, b: WorkerRow): number {
  return b.samplesPerSec - a.samplesPerSec || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The summary of `rows`, with the fleet's measured throughput `samplesPerSec`: one pass, however many rows. */
export function summariseWorkers(rows: readonly WorkerRow[], samplesPerSec: number): WorkerSummary {
  const counts = Object.fromEntries(WORKER_STATUSES.map((s) => [s, 0])) as Record<WorkerStatus, number>;
  const fastest: WorkerRow[] = [];
  const slowest: WorkerRow[] = [];
  for (const r of rows) {
    counts[r.status]++;
    if (r.status === 'left' || r.status === 'banned' || r.samplesPerSec <= 0) continue;
    keepFirst(fastest, r, byFastest);
    keepFirst(slowest, r, (a, b) => byFastest(b, a));
  }
  return {
    total: rows.length,
    counts,
    samplesPerSec,
    fastest,
    slowest,
    all: rows.length <= FULL_TABLE_MAX ? rows : null,
  };
}

/** Inserts `row` into `top` (sorted by `order`) if it is among the first EXTREMES. */
function keepFirst(top: WorkerRow[], row: WorkerRow, order: (a: WorkerRow, b: WorkerRow) => number): void {
  if (top.length === EXTREMES && order(row, top[EXTREMES - 1]) >= 0) return;
  let at = top.length;
  while (at > 0 && order(row, top[at - 1]) < 0) at--;
  top.splice(at, 0, row);
  if (top.length > EXTREMES) top.pop();
}

/**
 * The workers whose id, agent or address contains `query` (case-insensitive), the
 * first SEARCH_MAX of them in table order, and how many matched.
 */
export function searchWorkers(rows: readonly WorkerRow[], query: string): WorkerSearch {
  const q = query.trim().toLowerCase();
  if (q === '') return { query, matches: [], total: 0 };
  const matches = rows.filter(
    (r) => r.id.toLowerCase().includes(q) || r.agent.toLowerCase().includes(q) || r.remote.toLowerCase().includes(q),
  );
  return { query, matches: matches.slice(0, SEARCH_MAX), total: matches.length };
}
