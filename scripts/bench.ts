// `npm run bench`: how fast flocktrain is on the embedded default (MNIST MLP
// 784-128-10, batch 64, plain SGD lr 0.1 — the anchors' task), next to the anchors
// measured in the same run. Prints a Markdown table; numbers are medians. A
// benchmark, not a test: nothing here fails on a slow machine.
//
//   npm run bench                  (after scripts/bench-kernels.ts) single process,
//                                  1 and 2 local workers, elastic scenarios, and the
//                                  fixed cost of a step (scripts/bench-step-cost.ts)
//   npm run bench -- --anchors     also TensorFlow.js wasm and a plain JS trainer, and the CNN's
//                                  time to 98% against PyTorch (bench-time-to.ts)
//                                  (copies ../shared/anchors, npm installs it once)
//   npm run bench -- --links-only  only the links section (scripts/link/bench-links.ts):
//                                  train against 1 and 2 workers over simulated links,
//                                  for the default MLP and a CNN; --layers SPEC sets
//                                  the second model (rows skipped if flocktrain refuses it);
//                                  --repeats N interleaved rounds (default 3), --links
//                                  loopback,lan,wan (default all) picks the links

import { BENCH_TOKEN, benchSetup } from './bench-coordinator.js';
import { DEFAULTS } from '../shared/defaults.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { resolveConfig } from '../coordinator/config.js';
import { LocalExecutor } from '../coordinator/local-executor.js';
import { startCoordinator } from '../coordinator/assembly.js';
import type { AuditOptions } from '../coordinator/step/auditor.js';
import { waitForExit } from '../coordinator/run-coordinator.js';
import type { SchedulerStats } from '../coordinator/scheduler.js';
import { prepareRun, type PreparedRun } from '../coordinator/setup.js';
import { Trainer, type StepExecutor } from '../coordinator/trainer.js';
import { initParams } from '../shared/model/init.js';
import { wireBytesPer, type WireDtype } from '../shared/wire-dtype.js';
import { CloseCode } from '../shared/protocol/codes.js';
import { benchJoinBytes } from './bench-join.js';
import { benchStepCost, stepCostTable } from './bench-step-cost.js';
import { benchTimeTo } from './bench-time-to.js';
import { benchLinks, CNN_LAYERS, parseBenchLinksArgs, type BenchLinksOptions } from './link/bench-links.js';

const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 4);
const withAnchors = process.argv.includes('--anchors');
const linksOnly = process.argv.includes('--links-only');
const layersFlag = process.argv.indexOf('--layers');
const secondModel = layersFlag >= 0 ? process.argv[layersFlag + 1] : CNN_LAYERS;
let linkOptions: BenchLinksOptions;
try {
  linkOptions = parseBenchLinksArgs(process.argv);
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(2);
}
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The built command line, as users run it. */
const CLI = join(root, 'dist', 'coordinator', 'cli', 'bin.js');

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function fmt(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

// ---- training ---------------------------------------------------------------

interface EpochTimes {
  seconds: number[];
  /** Called when an epoch line is logged, with its epoch number (from 1). */
  onEpoch?: (epoch: number) => void;
}

/** A logger that records epoch durations and drops everything else. */
function capturingLogger(times: EpochTimes): Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue;
        const entry = JSON.parse(line) as { msg?: string; seconds?: number };
        if (entry.msg === 'epoch' && typeof entry.seconds === 'number') {
          times.seconds.push(entry.seconds);
          times.onEpoch?.(times.seconds.length);
        }
      }
      done();
    },
  });
  return pino({ level: 'info' }, stream);
}

function benchRun(batchSize = 64, wireDtype: WireDtype = 'f32'): PreparedRun {
  return prepareRun(resolveConfig({ epochs: EPOCHS, momentum: 0, lr: 0.1, batchSize, shardSize: 16, wireDtype }));
}

async function trainWith(run: PreparedRun, executor: StepExecutor, log: Logger, snapshots = 0): Promise<number> {
  const trainer = new Trainer(run, executor, log, {
    logEvery: 1_000_000,
    initialParams: initParams(run.spec, run.config.seed),
    checkpoint: null,
    resume: null,
    snapshots,
  });
  await trainer.train();
  return trainer.params.length;
}

async function benchSingle(run: PreparedRun): Promise<number> {
  const times: EpochTimes = { seconds: [] };
  await trainWith(run, new LocalExecutor(run), capturingLogger(times));
  return run.split.train.length / median(times.seconds.slice(1));
}

interface DistributedResult {
  samplesPerSec: number;
  stepMs: number;
  computeMs: number;
  waitMs: number;
  reduceMs: number;
  otherMs: number;
  bytesPerStep: number;
  /** Bytes per step beyond the tensors themselves (msgpack heads, tasks). */
  framingBytesPerStep: number;
  /** Tensors moved per worker per step, in units of the parameter vector (ideal: 2, one each way). */
  tensorsPerWorkerStep: number;
  weightsBytes: number;
  /** ms from SIGKILL of a worker to its shards being sent to another (null: not measured). */
  crashToReassignMs: number | null;
  /** The largest peak RSS any worker reported, MB. */
  workerPeakRssMB: number | null;
}

interface FleetOptions {
  /** Extra flags per worker process; its length is the number of workers. */
  readonly workerArgs: readonly (readonly string[])[];
  /** SIGKILL the first worker once this many steps are done, and time the reassignment. */
  readonly killAtStep?: number;
  /** Verify as `flocktrain coordinator` does (probation, audits, rollback snapshots); absent: shape checks only. */
  readonly audit?: AuditOptions;
}

async function benchDistributed(run: PreparedRun, fleet: FleetOptions | number): Promise<DistributedResult> {
  // A number of workers: single-threaded ones, so the counts compare processes, not threads.
  const { workerArgs, killAtStep, audit } =
    typeof fleet === 'number'
      ? { workerArgs: Array.from({ length: fleet }, () => ['--threads', '1']), killAtStep: undefined, audit: undefined }
      : fleet;
  const snapshots = audit === undefined ? 0 : DEFAULTS.coordinator.rollbackSnapshots;
  const workers = workerArgs.length;
  // Per-step figures count epochs 2.. only, like the throughput: a snapshot at the end of epoch 1.
  let baseline: { stats: SchedulerStats; computeMs: number } | null = null;
  const connectionsComputeMs = (): number => [...coordinator.hub.connections].reduce((a, w) => a + w.computeMs, 0);
  const times: EpochTimes = {
    seconds: [],
    onEpoch: (epoch) => {
      if (epoch === 1) baseline = { stats: { ...coordinator.scheduler.stats }, computeMs: connectionsComputeMs() };
    },
  };
  const log = capturingLogger(times);
  const token = BENCH_TOKEN;
  const setup = benchSetup(run, workers, { audit });
  const { params } = setup;
  const coordinator = await startCoordinator(setup, log);
  const cache = mkdtempSync(join(tmpdir(), 'flocktrain-bench-'));
  const children: ChildProcess[] = [];
  /** Peak RSS (MB) each worker reports as it exits. */
  const workerRssMB: number[] = [];
  const watchRss = (child: ChildProcess): void => {
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const m = /"maxRssMB":(\d+)/.exec(buffered);
      if (m !== null) workerRssMB.push(Number(m[1]));
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    });
  };
  for (let i = 0; i < workers; i++) {
    children.push(
      spawn(
        process.execPath,
        [
          CLI,
          'worker',
          '--url',
          coordinator.url,
          '--token',
          token,
          '--log-level',
          'info',
          '--log-format',
          'json',
          ...workerArgs[i],
        ],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, XDG_CACHE_HOME: cache },
        },
      ),
    );
    watchRss(children[children.length - 1]);
  }
  let killedAt: number | null = null;
  if (killAtStep !== undefined) {
    const watch = setInterval(() => {
      if (killedAt === null && coordinator.scheduler.stats.steps >= killAtStep) {
        killedAt = performance.now();
        children[0].kill('SIGKILL');
      }
    }, 1);
    await trainWith(run, coordinator.scheduler, log, snapshots);
    clearInterval(watch);
  } else {
    await trainWith(run, coordinator.scheduler, log, snapshots);
  }
  const end = coordinator.scheduler.stats;
  const base: { stats: SchedulerStats; computeMs: number } = baseline ?? {
    stats: { ...end, steps: 0, waitMs: 0, reduceMs: 0, bytesIn: 0, bytesOut: 0, tensorBytes: 0 },
    computeMs: 0,
  };
  const computeMs = connectionsComputeMs() - base.computeMs;
  const stats = {
    steps: end.steps - base.stats.steps,
    waitMs: end.waitMs - base.stats.waitMs,
    reduceMs: end.reduceMs - base.stats.reduceMs,
    bytesIn: end.bytesIn - base.stats.bytesIn,
    tensorBytes: end.tensorBytes - base.stats.tensorBytes,
    bytesOut: end.bytesOut - base.stats.bytesOut,
    lastReassignAt: end.lastReassignAt,
  };
  const steps = stats.steps;
  const weightsBytes = params.length * wireBytesPer(run.config.wireDtype);
  await coordinator.close(CloseCode.DONE, 'benchmark finished');
  await waitForExit(children, 3000);
  // The split is of the mean step over epochs 2.. (joining and warm-up do not count),
  // the same steps as the wait and reduce sums: a median epoch against mean parts
  // would not add up. Epoch times include the end-of-epoch validation pass.
  const stepMs = (times.seconds.slice(1).reduce((a, b) => a + b, 0) * 1000) / steps;
  const waitMs = stats.waitMs / steps;
  const reduceMs = stats.reduceMs / steps;
  return {
    samplesPerSec: run.split.train.length / median(times.seconds.slice(1)),
    stepMs,
    computeMs: computeMs / steps / workers,
    waitMs,
    reduceMs,
    otherMs: stepMs - waitMs - reduceMs,
    bytesPerStep: (stats.bytesIn + stats.bytesOut) / steps,
    framingBytesPerStep: (stats.bytesIn + stats.bytesOut - stats.tensorBytes) / steps,
    tensorsPerWorkerStep: stats.tensorBytes / steps / workers / (wireBytesPer(run.config.wireDtype) * params.length),
    weightsBytes,
    crashToReassignMs: killedAt !== null && stats.lastReassignAt !== null ? stats.lastReassignAt - killedAt : null,
    workerPeakRssMB: workerRssMB.length > 0 ? Math.max(...workerRssMB) : null,
  };
}

// ---- anchors ----------------------------------------------------------------

function anchorsDir(): string | null {
  const source = join(root, '..', 'shared', 'anchors');
  if (!existsSync(source)) return null;
  const dir = join(homedir(), '.cache', 'flocktrain-bench', 'anchors');
  if (!existsSync(join(dir, 'node_modules'))) {
    mkdirSync(dir, { recursive: true });
    cpSync(source, dir, { recursive: true });
    process.stderr.write('installing the anchors (once)…\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (!existsSync(join(dir, 'data', 'train_x.f32')))
    execFileSync(process.execPath, ['export_data.js'], { cwd: dir, stdio: 'ignore' });
  return dir;
}

function anchorSamplesPerSec(
  dir: string,
  args: string[],
  command = process.execPath,
  env: NodeJS.ProcessEnv = process.env,
): number | null {
  try {
    const out = execFileSync(command, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env });
    const m = /RESULT.*median=(\d+)/.exec(out);
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

// ---- verification -----------------------------------------------------------

/**
 * What exact verification at the defaults costs with honest workers past probation:
 * 2 local workers with and without it, run back to back (the median epoch is of
 * epochs 2.., after every worker's probation). The recomputation of audited results
 * shares the coordinator's thread; a step never waits for it.
 */
async function benchVerification(say: (line: string) => void, run: PreparedRun): Promise<void> {
  const { probation, auditRate } = DEFAULTS.coordinator;
  const workerArgs = [
    ['--threads', '1'],
    ['--threads', '1'],
  ];
  const off = await benchDistributed(run, { workerArgs });
  const on = await benchDistributed(run, { workerArgs, audit: { probation, auditRate } });
  say('');
  say(`| verification (2 local workers, batch 64) | samples/s |`);
  say('|---|---|');
  say(`| shape checks only | ${fmt(off.samplesPerSec)} |`);
  say(
    `| --probation ${probation} --audit-rate ${auditRate} (the defaults), ` +
      `${DEFAULTS.coordinator.rollbackSnapshots} rollback snapshots | ${fmt(on.samplesPerSec)} |`,
  );
  say(`| **cost of verification** | **${fmt(100 * (1 - on.samplesPerSec / off.samplesPerSec), 1)}%** |`);
}

// ---- main -------------------------------------------------------------------

async function main(): Promise<void> {
  const lines: string[] = [];
  const say = (s: string): void => {
    lines.push(s);
    process.stdout.write(`${s}\n`);
  };
  say(
    `flocktrain benchmark — ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (load average ${loadavg()[0].toFixed(1)} at start), ` +
      `${EPOCHS} epochs (median of epochs 2..${EPOCHS})`,
  );
  say('');
  if (!linksOnly) await benchProcesses(say);
  if (!linksOnly) await benchJoinBytes(CLI, say);
  await benchLinks(
    CLI,
    [
      { name: 'MLP 784-128-10 (SGD lr 0.1)', layers: null, args: ['--lr', '0.1', '--momentum', '0'] },
      { name: `--layers ${secondModel} (SGD lr 0.01)`, layers: secondModel, args: ['--lr', '0.01', '--momentum', '0'] },
    ],
    EPOCHS,
    say,
    linkOptions,
  );
  if (withAnchors) {
    say('');
    await benchTimeTo(CLI, anchorsDir(), say);
  }
}

/** The in-process sections: single process, local workers over loopback, scaling, wire dtype, elastic runs. */
async function benchProcesses(say: (line: string) => void): Promise<void> {
  const run = benchRun();
  const single = await benchSingle(run);
  const d1 = await benchDistributed(run, 1);
  const d2 = await benchDistributed(run, 2);
  say('| trainer (MNIST 784-128-10, batch 64, SGD lr 0.1) | samples/s |');
  say('|---|---|');
  say(`| flocktrain train (1 process) | ${fmt(single)} |`);
  say(`| flocktrain coordinator + 1 local worker | ${fmt(d1.samplesPerSec)} |`);
  say(`| flocktrain coordinator + 2 local workers | ${fmt(d2.samplesPerSec)} |`);
  if (withAnchors) {
    const dir = anchorsDir();
    if (dir === null) say('| anchors | ../shared/anchors not found |');
    else {
      const tfjs = anchorSamplesPerSec(dir, ['tfjs_train.js', 'wasm', 'fit', String(EPOCHS)]);
      const plain = anchorSamplesPerSec(dir, ['mlp_js.js', String(EPOCHS)]);
      say(`| TensorFlow.js wasm backend (anchor) | ${tfjs === null ? 'failed' : fmt(tfjs)} |`);
      say(`| hand-written Float32Array MLP (anchor) | ${plain === null ? 'failed' : fmt(plain)} |`);
      // PyTorch from Debian (apt-get install python3-torch), one thread, OpenBLAS left to pick its kernels.
      const torchEnv: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
      delete torchEnv.OPENBLAS_CORETYPE;
      delete torchEnv.OPENBLAS_L2_SIZE;
      const torch = existsSync('/usr/bin/python3')
        ? anchorSamplesPerSec(dir, ['torch_train.py', '1', String(Math.max(EPOCHS, 5))], '/usr/bin/python3', torchEnv)
        : null;
      say(
        '| PyTorch 1.13, 1 thread (anchor; Debian python3-torch with libopenblas-dev) ' +
          `| ${torch === null ? 'not installed' : fmt(torch)} |`,
      );
      if (tfjs !== null) say(`| **flocktrain train / TensorFlow.js wasm** | **${fmt(single / tfjs, 2)}×** |`);
      if (torch !== null) say(`| **flocktrain train / PyTorch 1 thread** | **${fmt(single / torch, 2)}×** |`);
    }
  }
  say('');
  say('| per step (ms) | 1 worker | 2 workers |');
  say('|---|---|---|');
  say(`| whole step | ${fmt(d1.stepMs, 2)} | ${fmt(d2.stepMs, 2)} |`);
  say(`| worker compute (mean per worker) | ${fmt(d1.computeMs, 2)} | ${fmt(d2.computeMs, 2)} |`);
  say(`| wait for results (compute + transfer + decode) | ${fmt(d1.waitMs, 2)} | ${fmt(d2.waitMs, 2)} |`);
  say(`| reduce | ${fmt(d1.reduceMs, 2)} | ${fmt(d2.reduceMs, 2)} |`);
  say(`| optimizer + encode + broadcast + bookkeeping | ${fmt(d1.otherMs, 2)} | ${fmt(d2.otherMs, 2)} |`);
  say(
    `| overhead (1 − compute / step) | ${fmt(100 * (1 - d1.computeMs / d1.stepMs), 1)}% | ` +
      `${fmt(100 * (1 - d2.computeMs / d2.stepMs), 1)}% |`,
  );
  say(`| bytes on the wire per step (all workers, both ways) | ${fmt(d1.bytesPerStep)} | ${fmt(d2.bytesPerStep)} |`);
  say(
    '| parameter vectors moved per worker per step (ideal 2: one gradient up, one weights down) ' +
      `| ${fmt(d1.tensorsPerWorkerStep, 3)} | ${fmt(d2.tensorsPerWorkerStep, 3)} |`,
  );
  say(
    '| framing (msgpack heads, tasks) as a share of the bytes | ' +
      `${fmt((100 * d1.framingBytesPerStep) / d1.bytesPerStep, 3)}% | ` +
      `${fmt((100 * d2.framingBytesPerStep) / d2.bytesPerStep, 3)}% |`,
  );
  say(`| the weights on the wire (bytes) | ${fmt(d1.weightsBytes)} | ${fmt(d2.weightsBytes)} |`);
  say(`| peak RSS of a worker process (MB) | ${d1.workerPeakRssMB ?? '?'} | ${d2.workerPeakRssMB ?? '?'} |`);
  say(
    '| peak RSS of this process (coordinator + single-process runs, MB) ' +
      `| ${Math.round(process.resourceUsage().maxRSS / 1024)} | |`,
  );
  say('');
  const big = benchRun(256);
  const scale = [];
  for (const workers of [1, 2, 4]) scale.push({ workers, result: await benchDistributed(big, workers) });
  say(
    '| scaling, global batch 256 (16 shards) | samples/s | vs 1 worker | coordinator reduce + optimizer + broadcast, ' +
      'share of the step |',
  );
  say('|---|---|---|---|');
  const threaded = await benchDistributed(big, { workerArgs: [['--threads', String(cpus().length)]] });
  const rows = [
    ...scale.map(({ workers, result }) => ({
      label: `coordinator + ${workers} local worker${workers > 1 ? 's' : ''} (--threads 1)`,
      result,
    })),
    { label: `coordinator + 1 local worker --threads ${cpus().length}`, result: threaded },
  ];
  for (const { label, result } of rows) {
    const coordinatorMs = result.reduceMs + result.otherMs;
    say(
      `| ${label} | ${fmt(result.samplesPerSec)} | ${fmt(result.samplesPerSec / scale[0].result.samplesPerSec, 2)}× ` +
        `| ${fmt((100 * coordinatorMs) / result.stepMs, 1)}% |`,
    );
  }
  say('');
  const bf16 = benchRun(64, 'bf16');
  const b1 = await benchDistributed(bf16, 1);
  const b2 = await benchDistributed(bf16, 2);
  say('| --wire-dtype (batch 64) | f32, 1 worker | bf16, 1 worker | f32, 2 workers | bf16, 2 workers |');
  say('|---|---|---|---|---|');
  say(
    `| samples/s | ${fmt(d1.samplesPerSec)} | ${fmt(b1.samplesPerSec)} | ${fmt(d2.samplesPerSec)} | ` +
      `${fmt(b2.samplesPerSec)} |`,
  );
  say(
    `| bytes per step | ${fmt(d1.bytesPerStep)} | ${fmt(b1.bytesPerStep)} | ${fmt(d2.bytesPerStep)} | ` +
      `${fmt(b2.bytesPerStep)} |`,
  );
  say('');
  const slow = await benchDistributed(run, {
    workerArgs: [
      ['--threads', '1'],
      ['--threads', '1', '--fault-slowdown', '10'],
    ],
  });
  const crash = await benchDistributed(run, {
    workerArgs: [
      ['--threads', '1'],
      ['--threads', '1'],
    ],
    killAtStep: 150,
  });
  say('| elastic training (2 local workers) | samples/s |');
  say('|---|---|');
  say(`| both at full speed | ${fmt(d2.samplesPerSec)} |`);
  say(`| one of them 10× slower (--fault-slowdown 10) | ${fmt(slow.samplesPerSec)} |`);
  say(`| one SIGKILLed at step 150, the other finishes | ${fmt(crash.samplesPerSec)} |`);
  const reassignedAfter =
    crash.crashToReassignMs === null ? 'it held no shards at that instant' : `${fmt(crash.crashToReassignMs, 2)} ms`;
  say(`| time from the SIGKILL to its shards being reassigned | ${reassignedAfter} |`);
  await benchVerification(say, run);
  say('');
  for (const line of stepCostTable(await benchStepCost())) say(line);
}

await main();
