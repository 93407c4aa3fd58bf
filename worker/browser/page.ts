// The worker page's main thread: starts the Web Worker that does the training, shows
// its status, and turns Pause/Resume/Leave into messages for it. It computes nothing
// itself, so the page stays responsive. Bundled into dist/browser/worker-page.js; the
// HTML around it is coordinator/pages/worker-html.ts.

import { closeVerdict } from './close-message.js';
import { parseWorkerStatus, type PageToWorker, type WorkerStatus } from './messages.js';

function el(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`worker page: no #${id}`);
  return e;
}

function button(id: string): HTMLButtonElement {
  return el(id) as HTMLButtonElement;
}

/** "Chrome 131 on Linux x86_64"-style, for the coordinator's log and dashboard. */
function agentName(): string {
  const ua = navigator.userAgent;
  const m = /(Firefox|Edg|OPR|Chrome|Version)\/(\d+)/.exec(ua);
  const name =
    m === null
      ? 'browser'
      : m[1] === 'Edg'
        ? `Edge ${m[2]}`
        : m[1] === 'Version'
          ? `Safari ${m[2]}`
          : `${m[1]} ${m[2]}`;
  return `${name} on ${navigator.platform || 'unknown'}`.slice(0, 100);
}

const query = new URLSearchParams(location.search);
const token = takeToken();
/** ?threads=N (N ≥ 1) asks for N compute threads; absent or unreadable: one per core. */
const threadsAsked = ((v) => (Number.isInteger(v) && v >= 1 ? v : null))(Number(query.get('threads') ?? ''));
const state = { left: false };
let worker: Worker | null = null;

function send(message: PageToWorker): void {
  worker?.postMessage(message);
}

function show(text: string, tone: 'info' | 'error'): void {
  const m = el('message');
  m.textContent = text;
  m.className = tone;
}

function render(s: WorkerStatus): void {
  const connected = s.phase !== 'closed';
  document.body.dataset.phase = s.phase;
  el('connection').textContent =
    s.phase === 'connecting'
      ? 'connecting…'
      : s.phase === 'loading'
        ? 'connected, loading the dataset'
        : s.phase === 'training'
          ? (s.standby ?? 'connected, taking work')
          : 'not connected';
  el('connection').className = connected ? 'ok' : 'off';
  el('worker-id').textContent = s.workerId ?? '–';
  el('tasks').textContent = String(s.tasksDone);
  el('samples').textContent = String(s.samplesDone);
  el('speed').textContent = s.samplesPerSec > 0 ? s.samplesPerSec.toFixed(0) : '–';
  el('loss').textContent = s.lastLoss === null ? '–' : s.lastLoss.toFixed(4);
  el('dataset').textContent = s.dataset;
  el('threads').textContent = threadsText(s);
  const pause = button('pause');
  if (connected) {
    show(
      s.phase === 'training'
        ? 'This tab is computing gradients for the run. Keep it open; closing it loses nothing.'
        : 'Joining the run…',
      'info',
    );
    pause.textContent = 'Pause';
    pause.disabled = false;
    button('leave').disabled = false;
    return;
  }
  if (state.left) {
    show('You left the run. Reload the page to join again.', 'info');
    pause.disabled = true;
    button('leave').disabled = true;
    worker?.terminate();
    worker = null;
    return;
  }
  const verdict = closeVerdict(s, location.host);
  show(verdict.text, verdict.tone);
  pause.textContent = 'Resume';
  pause.disabled = !verdict.canResume;
  button('leave').disabled = true;
  document.body.dataset.closeCode = String(s.closeCode ?? '');
}

/** "2 threads", "1 thread (page not cross-origin isolated)", … */
function threadsText(s: WorkerStatus): string {
  const note = s.threadsNote !== '' ? ` (${s.threadsNote})` : '';
  if (s.threads === 1) return `1 thread${note}`;
  if (s.threadsStarted) return `${s.threads} threads${note}`;
  return `up to ${s.threads} threads${note || ' (no task big enough to split yet)'}`;
}

/**
 * The token from the link's fragment (#token=…, which a browser never sends to a server
 * or in a Referer; ?token= still works), then out of the address bar and history. The
 * tab keeps it in sessionStorage, so a reload still joins.
 */
function takeToken(): string {
  const KEY = 'flocktrain-token';
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get('token') ?? query.get('token');
  if (given === null) return sessionStorage.getItem(KEY) ?? '';
  sessionStorage.setItem(KEY, given);
  fragment.delete('token');
  const rest = new URLSearchParams(location.search);
  rest.delete('token');
  const search = rest.toString();
  const hash = fragment.toString();
  history.replaceState(
    null,
    '',
    `${location.pathname}${search === '' ? '' : `?${search}`}${hash === '' ? '' : `#${hash}`}`,
  );
  return given;
}

function start(): void {
  if (token === '') {
    show('This link has no token. Open the join link the coordinator printed (http://HOST:PORT/#token=…).', 'error');
    document.body.dataset.phase = 'closed';
    return;
  }
  (el('dashboard-link') as HTMLAnchorElement).href = `/dashboard#token=${encodeURIComponent(token)}`;
  worker = new Worker('/assets/compute-worker.js');
  worker.onmessage = (event: MessageEvent<unknown>) => {
    const status = parseWorkerStatus(event.data);
    if (status !== null) render(status);
  };
  worker.onerror = (event) => show(`The training worker crashed: ${event.message}`, 'error');
  send({ type: 'join', token, agent: agentName(), threads: threadsAsked });
  button('pause').onclick = () => {
    const resuming = button('pause').textContent === 'Resume';
    button('pause').disabled = true;
    send(resuming ? { type: 'join', token, agent: agentName(), threads: threadsAsked } : { type: 'leave' });
  };
  button('leave').onclick = () => {
    state.left = true;
    button('leave').disabled = true;
    send({ type: 'leave' });
  };
}

start();
