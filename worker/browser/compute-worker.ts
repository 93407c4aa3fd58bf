// The worker page's Web Worker: the whole worker lives here, off the page's main
// thread. It opens the WebSocket to the coordinator (same host and port as the page),
// runs the platform-neutral WorkerClient and ShardComputer over it — the very code a
// Node worker runs — and posts a status snapshot to the page on every change. In a
// cross-origin isolated tab it computes big tasks on several compute threads of its
// own (web-threads.ts), as a Node worker does with --threads.
// Bundled by esbuild into dist/browser/compute-worker.js.

import { WorkerClient, type ClientLog } from '../client.js';
import type { ComputerSetup, GradientComputer } from '../compute.js';
import { BrowserDatasetStore } from './dataset-store.js';
import { parsePageMessage, type Phase, type WorkerStatus } from './messages.js';
import { canShareMemory, planThreads, webThreadPool, type ThreadPlan } from './web-threads.js';

/** The slice of DedicatedWorkerGlobalScope used here (the project's lib is DOM, not WebWorker). */
interface WorkerScope {
  postMessage(message: WorkerStatus): void;
  onmessage: ((event: MessageEvent<unknown>) => void) | null;
  readonly location: { readonly protocol: string; readonly host: string; readonly origin: string };
}

const scope = globalThis as unknown as WorkerScope;
const store = new BrowserDatasetStore(scope.location.origin);

/** The compute threads: planned with the first join (the tab's ?threads= cannot change), kept across Resumes. */
const threads = {
  plan: null as ThreadPlan | null,
  create: null as ((setup: ComputerSetup) => Promise<GradientComputer>) | null,
  started: false,
  crash: '',
};

function planOnce(requested: number | null): void {
  if (threads.plan !== null) return;
  const plan = planThreads(requested, navigator.hardwareConcurrency, canShareMemory());
  threads.plan = plan;
  if (plan.threads <= 1) return;
  threads.create = webThreadPool({
    threads: plan.threads,
    url: new URL('/assets/compute-thread.js', scope.location.origin).href,
    // The failed call closes this connection (WorkerClient); Resume starts a new pool.
    onCrash: (detail) => {
      threads.crash = detail;
      threads.started = false;
    },
    onStarted: () => {
      threads.started = true;
      threads.crash = '';
      session?.post();
    },
  });
}

/**
 * Least ms between two progress snapshots. Each snapshot re-renders the page (style,
 * layout, paint, raster, composite: 2 to 4 ms of CPU a time in headless chromium,
 * more than a small task's compute) on the cores the training needs; four a second
 * is as often as anyone reads the page. Changes of phase, dataset or threads go at once.
 */
const PROGRESS_MS = 250;

/** One connection to the coordinator; Resume makes a new one. */
class Session {
  readonly #socket: WebSocket;
  readonly #client: WorkerClient;
  #phase: Phase = 'connecting';
  #dataset = 'not loaded yet';
  #everOpened = false;
  #closedByUser = false;
  /** The client closed the socket itself (a protocol error, a dead compute thread, Leave). */
  #closedHere = false;
  #close: { code: number; reason: string } | null = null;
  /** The pending progress snapshot, if one is due. */
  #progressTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(token: string, agent: string) {
    const ws = new WebSocket(`${scope.location.protocol === 'https:' ? 'wss' : 'ws'}://${scope.location.host}/`);
    ws.binaryType = 'arraybuffer';
    this.#socket = ws;
    const log: ClientLog = { info: () => {}, debug: () => {}, warn: (obj, msg) => console.warn(msg, obj) };
    // A browser socket copies what it is given at once, so send returns nothing. The
    // client encodes into plain ArrayBuffers, never SharedArrayBuffers: the cast is sound.
    this.#client = new WorkerClient(
      {
        send: (bytes) => ws.send(bytes as Uint8Array<ArrayBuffer>),
        close: (code, reason) => {
          this.#closedHere = true;
          ws.close(code, reason);
        },
      },
      {
        token,
        kind: 'browser',
        agent,
        log,
        loadDataset: async (d) => {
          this.#phase = 'loading';
          this.#setDataset(`loading ${d.name}`);
          const loaded = await store.load(
            d,
            token,
            (text) => this.#setDataset(text),
            (message) => console.warn(message),
          );
          const mb =
            loaded.bytes >= 1e6 ? `${(loaded.bytes / 1e6).toFixed(1)} MB` : `${(loaded.bytes / 1e3).toFixed(1)} kB`;
          this.#dataset =
            loaded.source === 'download'
              ? `${d.name}: downloaded ${mb}, hash checked, stored in this browser`
              : loaded.source === 'cache'
                ? `${d.name}: ${mb} from this browser's cache (IndexedDB), hash checked`
                : `${d.name}: ${mb}, already in memory`;
          this.#phase = 'training';
          queueMicrotask(() => this.post());
          return loaded.dataset;
        },
        fetchWeights,
        onProgress: () => this.#progressed(),
        ...(threads.create !== null ? { createComputer: threads.create } : {}),
      },
    );
    ws.onopen = () => {
      this.#everOpened = true;
      this.#client.start();
      this.post();
    };
    ws.onmessage = (event: MessageEvent<unknown>) => {
      if (event.data instanceof ArrayBuffer) this.#client.receive(new Uint8Array(event.data));
    };
    ws.onclose = (event) => {
      this.#phase = 'closed';
      this.#close = { code: event.code, reason: event.reason };
      this.post();
    };
  }

  get closed(): boolean {
    return this.#phase === 'closed';
  }

  leave(): void {
    this.#closedByUser = true;
    if (this.#socket.readyState === WebSocket.OPEN) this.#client.leave();
    else this.#socket.close();
  }

  /** Sends the status now (it carries the latest progress too). */
  post(): void {
    if (this.#progressTimer !== null) clearTimeout(this.#progressTimer);
    this.#progressTimer = null;
    const s = this.#client.stats;
    scope.postMessage({
      type: 'status',
      phase: this.#phase,
      workerId: s.workerId,
      tasksDone: s.tasksDone,
      samplesDone: s.samplesDone,
      samplesPerSec: s.samplesPerSec,
      lastLoss: s.lastLoss !== null && Number.isFinite(s.lastLoss) ? s.lastLoss : null,
      dataset: this.#dataset,
      closeCode: this.#close?.code ?? null,
      closeReason: this.#close?.reason ?? '',
      closedByUser: this.#closedByUser,
      closedHere: this.#closedHere,
      everOpened: this.#everOpened,
      threads: threads.plan?.threads ?? 1,
      threadsNote: threads.crash !== '' ? threads.crash : (threads.plan?.note ?? ''),
      threadsStarted: threads.started,
      standby: s.standby,
    });
  }

  #progressed(): void {
    this.#progressTimer ??= setTimeout(() => this.post(), PROGRESS_MS);
  }

  #setDataset(text: string): void {
    this.#dataset = text;
    this.post();
  }
}

/**
 * GETs weights a task names from this page's own origin (the coordinator's), through the
 * browser's HTTP cache and any cache in front; no token goes with it (the path is the
 * capability). `fresh`: past every cache, after a body that did not match its hash.
 */
async function fetchWeights(path: string, bytes: number, fresh: boolean): Promise<Uint8Array> {
  const url = new URL(path, scope.location.origin);
  if (url.origin !== scope.location.origin || !url.pathname.startsWith('/weights/'))
    throw new Error(`weights path ${JSON.stringify(path.slice(0, 100))} leaves ${scope.location.origin}`);
  const res = await fetch(url, { cache: fresh ? 'reload' : 'default', credentials: 'omit' });
  if (!res.ok) throw new Error(`GET ${url.pathname.slice(0, 30)}… answered ${res.status} ${res.statusText}`.trimEnd());
  const announced = res.headers.get('content-length');
  if (announced !== null && Number(announced) !== bytes)
    throw new Error(`GET ${url.pathname.slice(0, 30)}… announces ${announced} bytes, the model's weights are ${bytes}`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.byteLength !== bytes)
    throw new Error(
      `GET ${url.pathname.slice(0, 30)}… sent ${body.byteLength} bytes, the model's weights are ${bytes}`,
    );
  return body;
}

let session: Session | null = null;

scope.onmessage = (event) => {
  const message = parsePageMessage(event.data);
  if (message === null) return;
  switch (message.type) {
    case 'join':
      if (session !== null && !session.closed) return;
      planOnce(message.threads);
      session = new Session(message.token, message.agent);
      session.post();
      return;
    case 'leave':
      session?.leave();
      return;
    default: {
      const never: never = message;
      throw new Error(`unhandled page message ${JSON.stringify(never)}`);
    }
  }
};
