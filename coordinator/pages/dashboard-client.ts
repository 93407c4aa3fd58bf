// The dashboard page's script (browser only; bundled into dist/browser/dashboard.js):
// subscribes to /events with the page's token, checks every message with
// parseFeedEvent, keeps the run's state and redraws. No reloading, no polling. The
// workers arrive summarised (counts, the fastest and slowest, every row only while
// the fleet is small); the search box asks GET /workers?q= for the rest.

import {
  type FeedEvent,
  type FeedState,
  type Progress,
  parseFeedEvent,
  parseWorkerSearch,
  type WorkerRow,
  type WorkerSearch,
  type WorkerStatus,
  type WorkerSummary,
} from '../dashboard-schema.js';
import { drawLineChart } from './chart.js';

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`dashboard: no #${id}`);
  return e;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const state: Mutable<FeedState> = {
  run: null,
  steps: [],
  epochs: [],
  workers: {
    total: 0,
    counts: { computing: 0, idle: 0, standby: 0, loading: 0, left: 0, banned: 0 },
    samplesPerSec: 0,
    fastest: [],
    slowest: [],
    all: [],
  },
  progress: null,
  events: [],
  done: null,
};

function setStatus(text: string, cls: 'live' | 'done' | 'off'): void {
  el('status').textContent = text;
  el('status').className = cls;
  document.body.dataset.state = cls;
}

function apply(e: FeedEvent): void {
  switch (e.type) {
    case 'state':
      Object.assign(state, { ...e, steps: [...e.steps], epochs: [...e.epochs], events: [...e.events] });
      return;
    case 'run':
      state.run = e.run;
      return;
    case 'step':
      state.steps = [...state.steps, e.point];
      return;
    case 'epoch':
      state.epochs = [...state.epochs, e.point];
      return;
    case 'workers':
      state.workers = e.workers;
      state.progress = e.progress;
      return;
    case 'event':
      state.events = [...state.events.slice(-49), e.event];
      return;
    case 'done':
      state.done = e.done;
      return;
    default: {
      const never: never = e;
      throw new Error(`unhandled feed event ${JSON.stringify(never)}`);
    }
  }
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function renderProgress(p: Progress | null): void {
  if (p === null || p.totalSteps === 0) return;
  const epoch = Math.min(p.epochs, Math.floor(p.step / p.stepsPerEpoch) + 1);
  const inEpoch = p.step - (epoch - 1) * p.stepsPerEpoch;
  el('progress-text').textContent =
    `epoch ${epoch} of ${p.epochs}: step ${inEpoch} of ${p.stepsPerEpoch} (overall ${p.step} of ${p.totalSteps})`;
  el('progress-bar').style.width = `${((100 * p.step) / p.totalSteps).toFixed(1)}%`;
  el('eta').textContent =
    state.done !== null
      ? 'finished'
      : p.etaSeconds === null
        ? 'ETA: measuring…'
        : `ETA: ${duration(p.etaSeconds)} (${p.stepsPerSec?.toFixed(1)} steps/s)`;
}

function cell(row: HTMLTableRowElement, text: string): void {
  row.insertCell().textContent = text;
}

/** Words for each status in the counts line, in the order shown. */
const STATUS_WORDS: readonly (readonly [WorkerStatus, string])[] = [
  ['computing', 'computing'],
  ['idle', 'idle'],
  ['standby', 'standing by'],
  ['loading', 'loading'],
  ['left', 'gone'],
  ['banned', 'banned'],
];

function fillRows(body: HTMLTableSectionElement, workers: readonly WorkerRow[]): void {
  body.replaceChildren();
  for (const w of workers) {
    const row = body.insertRow();
    row.className = w.status;
    row.dataset.kind = w.kind;
    row.dataset.id = w.id;
    for (const text of [
      w.id,
      w.kind,
      `${w.agent} (${w.remote})`,
      w.standby ?? w.status,
      String(w.samplesPerSec),
      String(w.tasksDone),
      w.status === 'left' || w.status === 'banned' ? 'gone' : `${(w.lastSeenMs / 1000).toFixed(1)} s ago`,
    ])
      cell(row, text);
  }
}

function renderWorkers(summary: WorkerSummary): void {
  const counts = el('worker-counts');
  counts.replaceChildren(`${summary.total} worker${summary.total === 1 ? '' : 's'}`);
  for (const [status, words] of STATUS_WORDS) {
    const n = document.createElement('span');
    n.dataset.count = status;
    n.textContent = String(summary.counts[status]);
    counts.append(' · ', n, ` ${words}`);
  }
  counts.append(` · ${Math.round(summary.samplesPerSec).toLocaleString('en')} samples/s in all`);
  const small = summary.all !== null;
  el('all-workers').hidden = !small;
  el('extremes').hidden = small;
  fillRows(el('workers') as HTMLTableSectionElement, summary.all ?? []);
  fillRows(el('fastest') as HTMLTableSectionElement, small ? [] : summary.fastest);
  fillRows(el('slowest') as HTMLTableSectionElement, small ? [] : summary.slowest);
}

function renderSearch(found: WorkerSearch | null): void {
  el('search-table').hidden = found === null || found.matches.length === 0;
  el('search-note').textContent =
    found === null
      ? ''
      : found.total === 0
        ? `no worker matches "${found.query}"`
        : found.total > found.matches.length
          ? `${found.total} workers match; the first ${found.matches.length}:`
          : `${found.total} worker${found.total === 1 ? '' : 's'} match${found.total === 1 ? 'es' : ''}:`;
  fillRows(el('search-results') as HTMLTableSectionElement, found?.matches ?? []);
}

/** The search box: asks the coordinator, at most one request at a time, always for the latest text. */
function searcher(token: string): { refresh(): void } {
  const input = el('worker-search') as HTMLInputElement;
  let busy = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    const query = input.value.trim();
    if (query === '') return renderSearch(null);
    busy = true;
    try {
      const res = await fetch(`/workers?q=${encodeURIComponent(query)}`, {
        headers: { authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
      if (!res.ok) throw new Error(`GET /workers answered ${res.status}`);
      const found = parseWorkerSearch(await res.json());
      if (found.query.trim() === input.value.trim()) renderSearch(found);
    } catch (err) {
      el('search-note').textContent = `cannot search: ${(err as Error).message}`;
    } finally {
      busy = false;
      if (again) {
        again = false;
        void run();
      }
    }
  };
  input.addEventListener('input', () => void run());
  return { refresh: () => void run() };
}

function render(): void {
  const { run, steps, epochs, done } = state;
  if (run !== null) {
    el('summary').textContent = `${run.dataset} · ${run.model} · ${run.train} train / ${run.val} val`;
    const config = el('config') as HTMLTableSectionElement;
    if (config.rows.length !== run.config.length) {
      config.replaceChildren();
      for (const [k, v] of run.config) {
        const row = config.insertRow();
        cell(row, k);
        cell(row, v);
      }
    }
  }
  drawLineChart(
    el('loss-chart') as HTMLCanvasElement,
    steps.map((p) => p.step),
    steps.map((p) => p.loss),
    { color: '#3b7ddd', xLabel: 'step' },
  );
  const acc = epochs.filter((p) => p.valAccuracy !== null);
  drawLineChart(
    el('acc-chart') as HTMLCanvasElement,
    acc.map((p) => p.epoch),
    acc.map((p) => p.valAccuracy ?? 0),
    { color: '#17803d', xLabel: 'epoch', yRange: [0, 1], dots: true },
  );
  renderWorkers(state.workers);
  renderProgress(state.progress);
  const events = el('events');
  events.replaceChildren(
    ...[...state.events].reverse().map((e) => {
      const li = document.createElement('li');
      const time = document.createElement('time');
      time.textContent = e.time.slice(11, 19);
      li.append(time, e.text);
      return li;
    }),
  );
  if (done !== null) {
    const acc = done.valAccuracy === null ? '' : `, val accuracy ${(100 * done.valAccuracy).toFixed(1)}%`;
    setStatus(
      `${done.interrupted ? 'interrupted' : 'finished'} after ${done.steps} steps${acc}; ` +
        `weights ${done.weightsHash.slice(0, 12)}…`,
      'done',
    );
  }
}

/**
 * The token from the link's fragment (#token=…, never sent to a server or in a
 * Referer; ?token= still works), then out of the address bar and history; the tab
 * keeps it in sessionStorage for a reload.
 */
function takeToken(): string {
  const KEY = 'flocktrain-dashboard-token';
  const given =
    new URLSearchParams(location.hash.slice(1)).get('token') ?? new URLSearchParams(location.search).get('token');
  if (given === null) return sessionStorage.getItem(KEY) ?? '';
  sessionStorage.setItem(KEY, given);
  history.replaceState(null, '', location.pathname);
  return given;
}

function main(): void {
  const token = takeToken();
  const source = new EventSource(`/events?token=${encodeURIComponent(token)}`);
  const search = searcher(token);
  let pending = false;
  source.onopen = () => {
    if (state.done === null) setStatus('live', 'live');
  };
  source.onmessage = (message: MessageEvent<unknown>) => {
    let event: FeedEvent;
    try {
      event = parseFeedEvent(JSON.parse(String(message.data)));
    } catch (err) {
      console.warn('dashboard: ignoring a bad feed message', err);
      return;
    }
    apply(event);
    if (event.type === 'workers') search.refresh();
    if (event.type === 'done') source.close();
    if (!pending) {
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        render();
      });
    }
  };
  source.onerror = () => {
    if (state.done !== null) return;
    // Never connected: most likely a wrong token (the stream answered 401).
    if (source.readyState === EventSource.CLOSED)
      setStatus('cannot subscribe to /events: wrong or missing token?', 'off');
    else setStatus('disconnected from the coordinator; retrying…', 'off');
  };
  window.addEventListener('resize', render);
  render();
}

main();
