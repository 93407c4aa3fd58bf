// `npm run bench` (first part) or `node dist/scripts/bench-kernels.js`: the two kernel
// sets side by side on the default MNIST MLP 784-128-10. Prints Markdown tables:
//   1. GFLOP/s of every matmul of forward and backward, at the shard shape (16 rows,
//      what a worker computes) and at the batch shape (64 rows, the anchors' shape);
//   2. where one shard's gradient spends its time (matmuls vs the rest);
//   3. single-process training samples/s (batch 64, plain SGD lr 0.1, momentum 0);
//   4. the coordinator's optimizer step (batch mean, divergence check, SGD update) on
//      the MLP's parameters: the JS Sgd against WasmSgd, which gives the same bits.
//   5. first, the CNN's kernels (scripts/bench-cnn.ts): a training step's profile, the conv
//      layers' GFLOP/s, and with --anchors PyTorch's same step; --cnn-only stops there.
// Medians; a benchmark, not a test. BENCH_EPOCHS (default 4) sets the training length.

import { Writable } from 'node:stream';
import { cpus } from 'node:os';
import { pino } from 'pino';
import { resolveConfig } from '../coordinator/config.js';
import { LocalExecutor } from '../coordinator/local-executor.js';
import { prepareRun } from '../coordinator/setup.js';
import { Trainer } from '../coordinator/trainer.js';
import { createKernelSet, KERNEL_SET_NAMES, type KernelSet, type KernelSetName } from '../shared/kernels/kernel-set.js';
import { initParams } from '../shared/model/init.js';
import { Network } from '../shared/model/network.js';
import { mlpSpec, paramLayout } from '../shared/model/spec.js';
import type { Optimizer } from '../shared/optim/optimizer.js';
import { Sgd, type SgdOptions } from '../shared/optim/sgd.js';
import { WasmSgd } from '../shared/optim/wasm-sgd.js';
import { deriveRng } from '../shared/rng.js';
import { ShardComputer } from '../worker/compute.js';
import { cnnTables } from './bench-cnn.js';

const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 4);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function fmt(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Median ms of one call, over at least `minMs` of repeated calls after a warm-up. */
function timeIt(fn: () => void, minMs = 300): number {
  for (let i = 0; i < 20; i++) fn();
  const samples: number[] = [];
  const end = performance.now() + minMs;
  while (performance.now() < end || samples.length < 15) {
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) fn();
    samples.push((performance.now() - t0) / 5);
  }
  return median(samples);
}

function filled(k: KernelSet, n: number, seed: number): Float32Array {
  const rng = deriveRng(seed, 'bench-kernels');
  const a = k.alloc(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextFloat() - 0.5;
  return a;
}

interface MatmulTimes {
  forward: number;
  weightGrad: number;
  inputGrad: number;
}

/** ms per call of forward, dW (+ dbias) and dinp for one shape. */
function matmulTimes(name: KernelSetName, B: number, C: number, OC: number): MatmulTimes {
  const k = createKernelSet(name, 3 * (B * C + OC * C) + 3 * B * OC + 1024);
  const inp = filled(k, B * C, 1),
    w = filled(k, OC * C, 2),
    bias = filled(k, OC, 3),
    dout = filled(k, B * OC, 4);
  const out = k.alloc(B * OC),
    dw = k.alloc(OC * C),
    db = k.alloc(OC),
    dinp = k.alloc(B * C);
  const forward = timeIt(() => k.matmulForward(out, inp, w, bias, B, C, OC));
  const weightGrad = timeIt(() => k.matmulBackward(null, dw, db, dout, inp, w, B, C, OC));
  const both = timeIt(() => k.matmulBackward(dinp, dw, db, dout, inp, w, B, C, OC));
  return { forward, weightGrad, inputGrad: Math.max(both - weightGrad, 1e-6) };
}

const SHAPES: readonly [number, number, number][] = [
  [16, 784, 128],
  [16, 128, 10],
  [64, 784, 128],
  [64, 128, 10],
];

function matmulTable(say: (s: string) => void): void {
  say('| matmul (B×C · (OC×C)ᵀ) | kernels | forward GFLOP/s | backward dW GFLOP/s | backward dinp GFLOP/s |');
  say('|---|---|---|---|---|');
  for (const [B, C, OC] of SHAPES) {
    const flops = 2 * B * C * OC;
    for (const name of KERNEL_SET_NAMES) {
      const t = matmulTimes(name, B, C, OC);
      const g = (ms: number): string => fmt(flops / ms / 1e6, 1);
      say(`| ${B}×${C} · (${OC}×${C})ᵀ | ${name} | ${g(t.forward)} | ${g(t.weightGrad)} | ${g(t.inputGrad)} |`);
    }
  }
}

/** One shard of 16 MNIST-shaped samples: whole gradient vs its matmuls alone, µs. */
function shardSplit(name: KernelSetName): { totalUs: number; matmulUs: number } {
  const run = prepareRun(resolveConfig({ kernels: name }));
  // One gradient slot in kernel memory, as ShardComputer computes its leaves: no staging copies.
  const net = new Network(run.spec, 16, name, 1);
  const params = net.stageParams(initParams(run.spec, 42));
  const x = net.inputBuffer;
  x.set(run.dataset.features.subarray(0, x.length));
  const y = run.dataset.labels.slice(0, 16);
  const grads = net.gradientSlots[0];
  const totalUs = 1000 * timeIt(() => net.computeGradient(params, grads, x, y, 16));
  const big = matmulTimes(name, 16, 784, 128);
  const small = matmulTimes(name, 16, 128, 10);
  // The first layer needs no input gradient.
  const matmulUs = 1000 * (big.forward + big.weightGrad + small.forward + small.weightGrad + small.inputGrad);
  return { totalUs, matmulUs };
}

/** A worker's compute alone: ShardComputer.computeNodes on one step's 4 shards of 16 (gather, gradients, tree). */
function computeSamplesPerSec(name: KernelSetName): number {
  const run = prepareRun(resolveConfig({ kernels: name }));
  const computer = new ShardComputer(run.spec, run.dataset, 16, name);
  const params = initParams(run.spec, 42);
  const shards = Array.from({ length: 4 }, (_, id) => ({
    id,
    indices: run.split.train.subarray(16 * id, 16 * id + 16),
  }));
  return (64 * 1000) / timeIt(() => computer.computeNodes(params, shards, 4), 1000);
}

async function trainSamplesPerSec(name: KernelSetName): Promise<number> {
  const run = prepareRun(
    resolveConfig({ epochs: EPOCHS, momentum: 0, lr: 0.1, batchSize: 64, shardSize: 16, kernels: name }),
  );
  const seconds: number[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue;
        const entry = JSON.parse(line) as { msg?: string; seconds?: number };
        if (entry.msg === 'epoch' && typeof entry.seconds === 'number') seconds.push(entry.seconds);
      }
      done();
    },
  });
  const trainer = new Trainer(run, new LocalExecutor(run), pino({ level: 'info' }, stream), {
    logEvery: 1_000_000,
    initialParams: initParams(run.spec, run.config.seed),
    checkpoint: null,
    resume: null,
  });
  await trainer.train();
  return run.split.train.length / median(seconds.slice(1));
}

/** ms of one optimizer.stepBatch on the MNIST MLP's parameters (a gradient sum over 64 samples). */
function optimizerStepMs(make: (size: number) => Optimizer): number {
  const P = paramLayout(mlpSpec(784, [128], 10, 'relu', 'cross_entropy')).totalSize;
  const opt = make(P);
  const rng = deriveRng(5, 'bench-optimizer');
  for (let i = 0; i < P; i++) opt.params[i] = rng.nextFloat() - 0.5;
  const sum = new Float32Array(P);
  for (let i = 0; i < P; i++) sum[i] = (rng.nextFloat() - 0.5) * 0.1;
  return timeIt(() => opt.stepBatch(opt.params, sum, 64), 500);
}

const OPTIMIZER_CASES: [string, Partial<SgdOptions>][] = [
  ['lr 0.1, momentum 0', { lr: 0.1 }],
  ['lr 0.1, momentum 0.9 (the default)', { lr: 0.1, momentum: 0.9 }],
  ['lr 0.1, Nesterov 0.9, weight decay 1e-4', { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }],
];

function optimizerTable(say: (s: string) => void): void {
  const P = paramLayout(mlpSpec(784, [128], 10, 'relu', 'cross_entropy')).totalSize;
  say(
    `| optimizer step on ${fmt(P)} parameters (mean of a 64-sample sum, finiteness check, SGD update) ` +
      '| JS Sgd ms | WasmSgd ms | speedup |',
  );
  say('|---|---|---|---|');
  for (const [name, options] of OPTIMIZER_CASES) {
    const js = optimizerStepMs((size) => new Sgd(size, options));
    const wasm = optimizerStepMs((size) => new WasmSgd(size, options));
    say(`| ${name} | ${fmt(js, 3)} | ${fmt(wasm, 3)} | ${fmt(js / wasm, 1)}× |`);
  }
}

async function main(): Promise<void> {
  const say = (s: string): void => {
    process.stdout.write(`${s}\n`);
  };
  say(`flocktrain kernel sets — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`);
  say('');
  cnnTables(say, process.argv.includes('--anchors'));
  say('');
  if (process.argv.includes('--cnn-only')) return;
  matmulTable(say);
  say('');
  say(
    '| one shard (16 samples) of MNIST 784-128-10 | kernels | whole gradient µs | of which matmuls µs ' +
      '| the rest (activations, loss; js also zeroes the gradient) |',
  );
  say('|---|---|---|---|---|');
  for (const name of KERNEL_SET_NAMES) {
    const { totalUs, matmulUs } = shardSplit(name);
    say(
      `| forward + backward | ${name} | ${fmt(totalUs, 1)} | ${fmt(matmulUs, 1)} | ` +
        `${fmt(Math.max(0, 100 * (1 - matmulUs / totalUs)), 1)}% |`,
    );
  }
  say('');
  say(`| MNIST 784-128-10, batch 64 (4 shards of 16) | kernels | samples/s |`);
  say('|---|---|---|');
  for (const name of KERNEL_SET_NAMES)
    say(`| worker compute (ShardComputer.computeNodes, one step) | ${name} | ${fmt(computeSamplesPerSec(name))} |`);
  say('');
  say(
    `| flocktrain train, MNIST 784-128-10, batch 64, SGD lr 0.1, momentum 0 (median of epochs 2..${EPOCHS}) ` +
      '| samples/s |',
  );
  say('|---|---|');
  const rates = new Map<KernelSetName, number>();
  for (const name of KERNEL_SET_NAMES) {
    rates.set(name, await trainSamplesPerSec(name));
    say(`| --kernels ${name} | ${fmt(rates.get(name)!)} |`);
  }
  say(`| wasm / js | ${fmt(rates.get('wasm')! / rates.get('js')!, 2)}× |`);
  say('');
  optimizerTable(say);
  say('');
}

await main();
