// `npm run bench:scale`: how the coordinator's cost grows with the number of workers.
// N real workers (WorkerClient over its own WebSocket, real compute) join one
// in-process coordinator; they are packed many to a child process so that N reaches
// hundreds on a small machine. The model is tiny (blobs, 2-16-3), so the workers'
// compute is small and what is measured is the coordinator's own work. Each worker
// gets one shard of 4 samples per step (batch = 4N): the per-step cost should grow
// linearly in N, and the per-worker columns should stay flat.
//
// Measured over epoch 2 (epoch 1 is joining and warm-up), in this process, which holds
// only the coordinator and its trainer: CPU (process.cpuUsage), RSS, step time, bytes
// in and out (the scheduler's counters), and a CPU profile (node:inspector) whose self
// time is summed per source file: the scheduler's share, and the top functions.
//
//   npm run bench:scale                      N = 1, 10, 50, 200
//   npm run bench:scale -- --workers 1,50    other counts
//   npm run bench:scale -- --child URL TOKEN COUNT   (internal: one process of workers)

import { BENCH_TOKEN, benchSetup } from './bench-coordinator.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { startCoordinator } from '../coordinator/assembly.js';
import { resolveConfig } from '../coordinator/config.js';
import { Events } from '../coordinator/events.js';
import { waitForExit } from '../coordinator/run-coordinator.js';
import { prepareRun } from '../coordinator/setup.js';
import { Trainer } from '../coordinator/trainer.js';
import type { Dataset } from '../shared/data/dataset.js';
import { initParams } from '../shared/model/init.js';
import { messageBytes } from '../shared/node/message-bytes.js';
import { CloseCode } from '../shared/protocol/codes.js';
import type { DatasetDescriptor } from '../shared/protocol/messages.js';
import { WorkerClient } from '../worker/client.js';
import { makeDatasetLoader } from '../worker/node/dataset-cache.js';

const SHARD = 4;
/** Steps per epoch, whatever N: the measured window is epoch 2. */
const STEPS = 40;
/** Workers per child process at most; a few processes share the two cores with the coordinator. */
const PER_PROCESS = 100;
const SELF = fileURLToPath(import.meta.url);

// ---- child: COUNT workers in one process ---------------------------------------

async function child(url: string, token: string, count: number): Promise<void> {
  const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
  const loader = makeDatasetLoader(url, token, mkdtempSync(join(tmpdir(), 'flocktrain-scale-')), quiet);
  // One download and one copy of the dataset for every worker of this process.
  let dataset: Promise<Dataset> | null = null;
  const loadDataset = (d: DatasetDescriptor): Promise<Dataset> => (dataset ??= loader(d));
  const closed = Array.from({ length: count }, (_, i) => {
    const socket = new WebSocket(url, { maxPayload: 1 << 30, generateMask: (mask) => mask.fill(0) });
    const client = new WorkerClient(
      {
        send: (bytes) => new Promise<void>((resolve) => socket.send(bytes, { binary: true }, () => resolve())),
        close: (code, reason) => socket.close(code, reason),
      },
      { token, kind: 'node', agent: `scale/${process.pid}/${i}`, loadDataset, log: quiet },
    );
    socket.on('open', () => client.start());
    socket.on('message', (data, isBinary) => {
      if (isBinary) client.receive(messageBytes(data));
    });
    return new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
  });
  await Promise.all(closed);
}

// ---- parent: one coordinator per N ----------------------------------------------

interface Row {
  readonly workers: number;
  readonly steps: number;
  readonly stepMs: number;
  readonly cpuMsPerStep: number;
  readonly rssMB: number;
  readonly heapMB: number;
  readonly bytesInPerStep: number;
  readonly bytesOutPerStep: number;
  /** Estimated CPU ms per step by group (cpuByGroup). */
  readonly groups: Map<string, number>;
  readonly waitMs: number;
  readonly reduceMs: number;
  readonly tasksPerStep: number;
  readonly reassigned: number;
  /** Self time per source file over the window, ms, largest first. */
  readonly files: readonly (readonly [string, number])[];
  readonly functions: readonly (readonly [string, number])[];
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

/** Self time (ms) per source file and per function, from a CPU profile's samples. */
function selfTimes(profile: {
  nodes: readonly ProfileNode[];
  samples?: readonly number[];
  timeDeltas?: readonly number[];
}): { files: Map<string, number>; functions: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const files = new Map<string, number>();
  const functions = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]);
    if (node === undefined) continue;
    const ms = (deltas[i] ?? 0) / 1000;
    const url = node.callFrame.url;
    const file = url === '' ? `(${node.callFrame.functionName || 'native'})` : shortPath(url);
    files.set(file, (files.get(file) ?? 0) + ms);
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${file}:${node.callFrame.lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
  }
  return { files, functions };
}

function shortPath(url: string): string {
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length);
  const modules = url.indexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + 1);
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
}

/** Where the coordinator's CPU goes, by the source file a sample's innermost frame is in. */
const GROUPS: readonly (readonly [string, (file: string) => boolean])[] = [
  ['scheduler + step/', (f) => f.startsWith('coordinator/scheduler.js') || f.startsWith('coordinator/step/')],
  ['shared/tree.js', (f) => f.startsWith('shared/tree.js')],
  ['hub', (f) => f.startsWith('coordinator/hub.js')],
  ['codec + msgpackr', (f) => f.startsWith('shared/protocol/') || f.includes('msgpackr')],
  ['ws + sockets', (f) => f.includes('node_modules/ws/') || f === '(writev)' || f.startsWith('node:internal/stream')],
  ['optimizer', (f) => f.startsWith('shared/optim/')],
  ['GC', (f) => f === '((garbage collector))'],
];
/** The scheduler's CPU ms per step: its own files and the tree bookkeeping it calls. */
const schedulerMs = (r: { groups: Map<string, number> }): number =>
  (r.groups.get('scheduler + step/') ?? 0) + (r.groups.get('shared/tree.js') ?? 0);
const IDLE = new Set(['((idle))', '((program))']);

/**
 * The CPU profile is sampled on a loaded machine, where a thread that the OS has
 * descheduled still collects samples: its self times are shares, scaled here onto
 * the CPU time process.cpuUsage counted. ms per step per group, plus 'other'.
 */
function cpuByGroup(files: Map<string, number>, cpuMsPerStep: number): Map<string, number> {
  const busy = [...files].filter(([f]) => !IDLE.has(f));
  const total = busy.reduce((s, [, ms]) => s + ms, 0);
  const out = new Map<string, number>();
  let grouped = 0;
  for (const [name, match] of GROUPS) {
    const ms = busy.filter(([f]) => match(f)).reduce((s, [, v]) => s + v, 0);
    out.set(name, total > 0 ? (ms / total) * cpuMsPerStep : 0);
    grouped += ms;
  }
  out.set('other', total > 0 ? ((total - grouped) / total) * cpuMsPerStep : 0);
  return out;
}

async function measure(n: number): Promise<Row> {
  const batchSize = n * SHARD;
  const trainSamples = batchSize * STEPS;
  const run = prepareRun(
    resolveConfig({
      data: { kind: 'synthetic', name: 'blobs', samples: Math.ceil(trainSamples / 0.9) + 1 },
      valFraction: 0.1,
      hidden: [16],
      epochs: 2,
      batchSize,
      shardSize: SHARD,
      momentum: 0,
      lr: 0.1,
      kernels: 'js',
    }),
  );
  const log = pino({ level: 'warn' });
  const events = new Events(log);
  let tasks = 0;
  events.on('taskAssigned', () => {
    tasks++;
  });
  const token = BENCH_TOKEN;
  const coordinator = await startCoordinator(
    benchSetup(run, n, {
      // Deadlines far beyond any step here: a loaded machine must not turn slowness into reassignment.
      scheduler: { minWorkers: n, taskTimeoutMinMs: 60_000, taskTimeoutMaxMs: 120_000 },
      helloTimeoutMs: 60_000,
      // Every worker connects from 127.0.0.1: the per-address cap would refuse all but the first few dozen.
      limits: { maxConnections: n + 16, maxConnectionsPerIp: n + 16 },
    }),
    log,
    events,
  );
  const children: ChildProcess[] = [];
  for (let left = n; left > 0; left -= PER_PROCESS) {
    const count = Math.min(PER_PROCESS, left);
    children.push(
      spawn(process.execPath, [SELF, '--child', coordinator.url, token, String(count)], { stdio: 'inherit' }),
    );
  }
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  let start: { at: number; cpu: NodeJS.CpuUsage; steps: number; tasks: number; stats: typeof stats } | null = null;
  const stats = coordinator.scheduler.stats;
  const snapshot = () => ({
    at: performance.now(),
    cpu: process.cpuUsage(),
    steps: stats.steps,
    tasks,
    stats: { ...stats },
  });
  let end: ReturnType<typeof snapshot> | null = null;
  let memory: NodeJS.MemoryUsage | null = null;
  let profile: Parameters<typeof selfTimes>[0] | null = null;
  // Epoch boundaries come through the trainer's log: the window is epoch 2.
  const onEpoch = (epoch: number): void => {
    if (epoch === 1) {
      start = snapshot();
      void session.post('Profiler.start');
    } else if (epoch === 2) {
      end = snapshot();
      memory = process.memoryUsage();
    }
  };
  const epochLog = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        const entry = JSON.parse(line) as { msg?: string; epoch?: number };
        if (entry.msg === 'epoch' && typeof entry.epoch === 'number') onEpoch(entry.epoch);
      },
    },
  );
  await new Trainer(run, coordinator.scheduler, epochLog, {
    logEvery: 1_000_000,
    initialParams: initParams(run.spec, run.config.seed),
    checkpoint: null,
    resume: null,
  }).train();
  profile = ((await session.post('Profiler.stop')) as { profile: Parameters<typeof selfTimes>[0] }).profile;
  session.disconnect();
  await coordinator.close(CloseCode.DONE, 'benchmark finished');
  await waitForExit(children, 10_000);
  if (start === null || end === null || memory === null) throw new Error('bench-scale: epoch 2 was not observed');
  const a: ReturnType<typeof snapshot> = start;
  const b: ReturnType<typeof snapshot> = end;
  const mem: NodeJS.MemoryUsage = memory;
  const steps = b.steps - a.steps;
  const { files, functions } = selfTimes(profile);
  const sorted = (m: Map<string, number>) => [...m].sort((x, y) => y[1] - x[1]);
  const cpuMsPerStep = (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system) / 1000 / steps;
  return {
    workers: n,
    steps,
    stepMs: (b.at - a.at) / steps,
    cpuMsPerStep,
    rssMB: mem.rss / 2 ** 20,
    heapMB: mem.heapUsed / 2 ** 20,
    bytesInPerStep: (b.stats.bytesIn - a.stats.bytesIn) / steps,
    bytesOutPerStep: (b.stats.bytesOut - a.stats.bytesOut) / steps,
    groups: cpuByGroup(files, cpuMsPerStep),
    waitMs: (b.stats.waitMs - a.stats.waitMs) / steps,
    reduceMs: (b.stats.reduceMs - a.stats.reduceMs) / steps,
    tasksPerStep: (b.tasks - a.tasks) / steps,
    reassigned: b.stats.reassignedShards - a.stats.reassignedShards + b.stats.timedOutShards - a.stats.timedOutShards,
    files: sorted(files)
      .filter(([f]) => !IDLE.has(f))
      .slice(0, 10),
    functions: sorted(functions)
      .filter(([fn]) => !fn.startsWith('(idle)') && !fn.startsWith('(program)'))
      .slice(0, 12),
  };
}

async function main(): Promise<void> {
  const flag = process.argv.indexOf('--workers');
  const counts = (flag >= 0 ? process.argv[flag + 1] : '1,10,50,200').split(',').map(Number);
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  say(
    `flocktrain scale benchmark — ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GB ` +
      `(load average ${loadavg()[0].toFixed(1)} at start)`,
  );
  say(
    `blobs 2-16-3 (js kernels), shards of ${SHARD}, batch 4N, ${STEPS} steps measured (epoch 2), ` +
      `workers packed ${PER_PROCESS} to a process`,
  );
  say('');
  const rows: Row[] = [];
  for (const n of counts) rows.push(await measure(n));
  const f = (v: number, d = 0): string =>
    v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  say(
    '| workers N | step ms | coordinator CPU ms/step | CPU µs/step per worker ' +
      '| scheduler CPU ms/step (scheduler, step/, tree) | RSS MB | heap MB | bytes in/step | bytes out/step ' +
      '| out per worker | tasks/step | reassigned |',
  );
  say('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    say(
      `| ${r.workers} | ${f(r.stepMs, 1)} | ${f(r.cpuMsPerStep, 2)} | ${f((1000 * r.cpuMsPerStep) / r.workers)} | ` +
        `${f(schedulerMs(r), 2)} | ${f(r.rssMB)} | ${f(r.heapMB)} | ${f(r.bytesInPerStep)} | ${f(r.bytesOutPerStep)} ` +
        `| ${f(r.bytesOutPerStep / r.workers)} | ${f(r.tasksPerStep, 1)} | ${r.reassigned} |`,
    );
  }
  say('');
  const names = [...GROUPS.map(([name]) => name), 'other'];
  say(`| coordinator CPU µs per step per worker, by where it goes (profile shares × CPU) | ${names.join(' | ')} |`);
  say(`|---|${names.map(() => '---').join('|')}|`);
  for (const r of rows)
    say(`| N = ${r.workers} | ${names.map((name) => f((1000 * (r.groups.get(name) ?? 0)) / r.workers)).join(' | ')} |`);
  say('');
  const last = rows[rows.length - 1];
  say(`Profile at N = ${last.workers}, self time per step (wall-clock samples on a loaded machine: compare shares):`);
  say('');
  for (const [file, ms] of last.files) say(`- ${file}: ${f(ms / last.steps, 2)} ms`);
  say('');
  for (const [fn, ms] of last.functions) say(`- ${fn}: ${f(ms / last.steps, 2)} ms`);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], Number(process.argv[5]));
} else {
  await main();
}
