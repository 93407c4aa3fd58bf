// The convolution kernels on the CNN of the MNIST recipe, Conv2d(1,16,5)-ReLU-MaxPool(2)-
// Conv2d(16,32,5)-ReLU-MaxPool(2)-Flatten-Linear(512,10), batch 64, one thread: part of
// `npm run bench:kernels`. A training step wired straight onto a kernel set (no Network,
// no data pipeline: what the kernels alone allow), with its profile by kernel, and the
// conv layers' GFLOP/s. With --anchors, PyTorch's same step on one thread in the same run.
//
// FLOPs are counted as 2 per multiply-add of the layers' GEMMs: forward, weight gradient
// and input gradient (none for the first layer, which neither we nor PyTorch compute):
// conv1 2·(16·25·576)·2, conv2 2·(32·400·64)·3, dense 2·(10·512)·3 = 5.87 MFLOP a sample.
// Activations, pooling, loss and the update are not counted (they are in the time). The
// count is the dense one: where the wasm gradients skip dout's zeros (3 in 4 after 2×2 max
// pooling) the multiply-adds they skip still count, as they do for PyTorch, which does them.
// BENCH_CLOCK=cpu measures both sides in CPU time instead of wall time.

import { spawnSync } from 'node:child_process';
import { createKernelSet, type KernelSet, type KernelSetName } from '../shared/kernels/kernel-set.js';
import { WasmKernels } from '../shared/kernels/wasm/kernels.js';
import { deriveRng } from '../shared/rng.js';

const B = 64;
/** Multiply-adds of one sample: conv1 fwd + dW, conv2 fwd + dW + dinp, dense fwd + dW + dinp. */
const MACS_PER_SAMPLE = 2 * 16 * 25 * 576 + 3 * 32 * 400 * 64 + 3 * 10 * 512;
export const CNN_FLOPS_PER_SAMPLE = 2 * MACS_PER_SAMPLE;

interface Timed {
  readonly name: string;
  readonly run: () => void;
}

/**
 * The clock: wall time, or with BENCH_CLOCK=cpu this process's CPU time, a steadier
 * measure on a machine shared with other work (the kernels run on this one thread).
 */
const now =
  process.env.BENCH_CLOCK === 'cpu'
    ? (): number => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      }
    : (): number => performance.now();

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** The CNN's buffers on one kernel set and its training step as a list of named kernel calls. */
function cnnStep(k: KernelSet): Timed[] {
  const rng = deriveRng(17, 'bench-cnn');
  const filled = (n: number, scale: number): Float32Array => {
    const a = k.alloc(n);
    for (let i = 0; i < n; i++) a[i] = (2 * rng.nextFloat() - 1) * scale;
    return a;
  };
  const scratchFloats = Math.max(
    k.conv2dScratchFloats(B, 1, 28, 28, 16, 5, 5, 1, 0),
    k.conv2dScratchFloats(B, 16, 12, 12, 32, 5, 5, 1, 0),
  );
  const scratch = k.alloc(scratchFloats);
  const x = filled(B * 784, 1);
  const labels = k.alloc(B).map((_, i) => i % 10);
  const w1 = filled(16 * 25, 0.2),
    b1 = filled(16, 0.1),
    w2 = filled(32 * 400, 0.05),
    b2 = filled(32, 0.1),
    w3 = filled(10 * 512, 0.04),
    b3 = filled(10, 0.1);
  const dw1 = k.alloc(16 * 25),
    db1 = k.alloc(16),
    dw2 = k.alloc(32 * 400),
    db2 = k.alloc(32),
    dw3 = k.alloc(10 * 512),
    db3 = k.alloc(10);
  const a1 = k.alloc(B * 16 * 576),
    r1 = k.alloc(B * 16 * 576),
    p1 = k.alloc(B * 16 * 144),
    a2 = k.alloc(B * 32 * 64),
    r2 = k.alloc(B * 32 * 64),
    p2 = k.alloc(B * 512),
    logits = k.alloc(B * 10);
  const dlogits = k.alloc(B * 10),
    dp2 = k.alloc(B * 512),
    dr2 = k.alloc(B * 32 * 64),
    da2 = k.alloc(B * 32 * 64),
    dp1 = k.alloc(B * 16 * 144),
    dr1 = k.alloc(B * 16 * 576),
    da1 = k.alloc(B * 16 * 576);
  const params = [w1, b1, w2, b2, w3, b3];
  const grads = [dw1, db1, dw2, db2, dw3, db3];
  return [
    { name: 'conv1 forward', run: () => k.conv2dForward(a1, x, w1, b1, B, 1, 28, 28, 16, 5, 5, 1, 0, scratch) },
    { name: 'relu1 forward', run: () => k.reluForward(r1, a1, B * 16 * 576) },
    { name: 'maxpool1 forward', run: () => k.maxpool2dForward(p1, r1, B, 16, 24, 24, 2, 2) },
    { name: 'conv2 forward', run: () => k.conv2dForward(a2, p1, w2, b2, B, 16, 12, 12, 32, 5, 5, 1, 0, scratch) },
    { name: 'relu2 forward', run: () => k.reluForward(r2, a2, B * 32 * 64) },
    { name: 'maxpool2 forward', run: () => k.maxpool2dForward(p2, r2, B, 32, 8, 8, 2, 2) },
    { name: 'dense forward', run: () => k.matmulForward(logits, p2, w3, b3, B, 512, 10) },
    { name: 'loss', run: () => k.softmaxCrossEntropy(dlogits, logits, labels, B, 10) },
    { name: 'dense backward', run: () => k.matmulBackward(dp2, dw3, db3, dlogits, p2, w3, B, 512, 10, false) },
    { name: 'maxpool2 backward', run: () => k.maxpool2dBackward(dr2, dp2, r2, B, 32, 8, 8, 2, 2) },
    { name: 'relu2 backward', run: () => k.reluBackward(da2, dr2, r2, B * 32 * 64) },
    {
      name: 'conv2 backward (dW, dinp)',
      run: () => k.conv2dBackward(dp1, dw2, db2, da2, p1, w2, B, 16, 12, 12, 32, 5, 5, 1, 0, scratch, false),
    },
    { name: 'maxpool1 backward', run: () => k.maxpool2dBackward(dr1, dp1, r1, B, 16, 24, 24, 2, 2) },
    { name: 'relu1 backward', run: () => k.reluBackward(da1, dr1, r1, B * 16 * 576) },
    {
      name: 'conv1 backward (dW only)',
      run: () => k.conv2dBackward(null, dw1, db1, da1, x, w1, B, 1, 28, 28, 16, 5, 5, 1, 0, scratch, false),
    },
    {
      name: 'SGD update (plain, JS)',
      run: () => {
        for (let t = 0; t < params.length; t++) {
          const p = params[t],
            g = grads[t];
          for (let i = 0; i < p.length; i++) p[i] -= (0.01 / B) * g[i];
        }
      },
    },
  ];
}

interface StepProfile {
  /** ms of the whole step (median). */
  readonly stepMs: number;
  /** ms per kernel call (median over steps). */
  readonly parts: { name: string; ms: number }[];
}

function profileStep(name: KernelSetName, minMs: number, minSteps: number): StepProfile {
  const k = createKernelSet(name, 4_000_000);
  const calls = cnnStep(k);
  const step = (): void => {
    for (const c of calls) c.run();
  };
  for (let i = 0; i < Math.min(5, minSteps); i++) step();
  const steps: number[] = [];
  const per = calls.map(() => [] as number[]);
  const end = performance.now() + minMs;
  while (performance.now() < end || steps.length < minSteps) {
    const t0 = now();
    let t = t0;
    calls.forEach((c, i) => {
      c.run();
      const t1 = now();
      per[i].push(t1 - t);
      t = t1;
    });
    steps.push(t - t0);
  }
  return { stepMs: median(steps), parts: calls.map((c, i) => ({ name: c.name, ms: median(per[i]) })) };
}

/** PyTorch's same CNN step (SGD momentum 0.9, batch 64, one thread) on random data, samples/s; null if unavailable. */
function torchSamplesPerSec(): number | null {
  const code = `
import time, torch
torch.set_num_threads(1); torch.manual_seed(0)
x=torch.randn(64,1,28,28); y=torch.randint(0,10,(64,))
net=torch.nn.Sequential(
    torch.nn.Conv2d(1,16,5),torch.nn.ReLU(),torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(16,32,5),torch.nn.ReLU(),torch.nn.MaxPool2d(2),
    torch.nn.Flatten(),torch.nn.Linear(512,10))
opt=torch.optim.SGD(net.parameters(),lr=0.01,momentum=0.9)
def step():
    opt.zero_grad(); torch.nn.functional.cross_entropy(net(x),y).backward(); opt.step()
for _ in range(20): step()
r=[]
clock=${process.env.BENCH_CLOCK === 'cpu' ? 'time.process_time' : 'time.perf_counter'}
for _ in range(15):
    t=clock()
    for _ in range(10): step()
    r.append(640/(clock()-t))
r.sort(); print(r[len(r)//2])
`;
  for (const python of ['/usr/bin/python3', 'python3']) {
    const res = spawnSync(python, ['-c', code], {
      env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    const v = Number(res.stdout?.trim());
    if (res.status === 0 && Number.isFinite(v)) return v;
  }
  return null;
}

/** Median ms of one call, over at least minMs of calls after a warm-up, on the bench's clock. */
function timeCall(fn: () => void, minMs = 500): number {
  for (let i = 0; i < 5; i++) fn();
  const samples: number[] = [];
  const end = performance.now() + minMs;
  while (performance.now() < end || samples.length < 9) {
    const t0 = now();
    fn();
    samples.push(now() - t0);
  }
  return median(samples);
}

/**
 * The wasm set's ways to a convolution on the CNN's layers at batch 64, GFLOP/s: forward by
 * im2col + GEMM or direct (the col operand read from the image); the gradients dense
 * (im2col + GEMM, col2im) or as the set runs them ('auto': from dout's nonzeros where that
 * applies, else direct). dout has 3 zeros in 4, as after 2×2 max pooling.
 */
function convMethods(say: (s: string) => void): void {
  say(
    '| wasm conv, GFLOP/s (dout 3/4 zeros) | forward im2col + GEMM | forward direct | dW dense | dW as run ' +
      '| dW + dinp dense | dW + dinp as run |',
  );
  say('|---|---|---|---|---|---|---|');
  for (const [label, C, H, OC] of [
    ['conv1 1→16 k5 on 28×28', 1, 28, 16],
    ['conv2 16→32 k5 on 12×12', 16, 12, 32],
  ] as const) {
    const k = new WasmKernels(1_500_000);
    const rng = deriveRng(3, 'bench-direct', C);
    const filled = (n: number): Float32Array => {
      const a = k.alloc(n);
      for (let i = 0; i < n; i++) a[i] = rng.nextFloat() - 0.5;
      return a;
    };
    const P = (H - 4) * (H - 4);
    const scratch = k.alloc(WasmKernels.conv2dScratchFloats(C, H, H, OC, 5, 5, 1, 0));
    const x = filled(B * C * H * H),
      w = filled(OC * C * 25),
      bias = filled(OC),
      out = k.alloc(B * OC * P),
      dout = filled(B * OC * P),
      dw = k.alloc(OC * C * 25),
      db = k.alloc(OC),
      dx = k.alloc(B * C * H * H);
    for (let i = 0; i < dout.length; i++) if (rng.nextFloat() < 0.75) dout[i] = 0;
    const g = (ms: number): string => fmt((2 * B * OC * C * 25 * P) / ms / 1e6, 1);
    const fwdCol = timeCall(() => k.conv2dForwardIm2col(out, x, w, bias, B, C, H, H, OC, 5, 5, 1, 0, scratch));
    const fwdDirect = timeCall(() => k.conv2dForwardDirect(out, x, w, bias, B, C, H, H, OC, 5, 5, scratch));
    const backward = (withDinp: boolean, method: 'auto' | 'im2col'): number =>
      timeCall(() =>
        k.conv2dBackward(withDinp ? dx : null, dw, db, dout, x, w, B, C, H, H, OC, 5, 5, 1, 0, scratch, false, method),
      );
    const dwDense = backward(false, 'im2col');
    const dwRun = backward(false, 'auto');
    // Both gradients: two GEMMs' worth of FLOPs.
    const bothDense = backward(true, 'im2col') / 2;
    const bothRun = backward(true, 'auto') / 2;
    say(
      `| ${label} | ${g(fwdCol)} | ${g(fwdDirect)} | ${g(dwDense)} | ${g(dwRun)} | ${g(bothDense)} | ${g(bothRun)} |`,
    );
  }
}

function fmt(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function cnnTables(say: (s: string) => void, anchors: boolean): void {
  say(
    'CNN 1×28×28 → conv 16k5 → relu → maxpool 2 → conv 32k5 → relu → maxpool 2 → dense 10, ' +
      `batch ${B}, one thread; ` +
      `${fmt(CNN_FLOPS_PER_SAMPLE / 1e6, 2)} MFLOP counted a sample (2 per multiply-add: forward, ` +
      'weight and input gradients, no input gradient for the first layer)',
  );
  say('');
  const profiles = new Map<KernelSetName, StepProfile>();
  profiles.set('wasm', profileStep('wasm', 3000, 15));
  // The js set takes seconds a step: three steps after one warm-up.
  profiles.set('js', profileStep('js', 0, 3));
  const wasm = profiles.get('wasm')!;
  say('| kernel call (batch 64) | wasm ms | wasm % of step | js ms |');
  say('|---|---|---|---|');
  const js = profiles.get('js')!;
  wasm.parts.forEach((p, i) => {
    say(`| ${p.name} | ${fmt(p.ms, 3)} | ${fmt((100 * p.ms) / wasm.stepMs, 1)}% | ${fmt(js.parts[i].ms, 2)} |`);
  });
  say(`| whole step | ${fmt(wasm.stepMs, 3)} | 100% | ${fmt(js.stepMs, 2)} |`);
  say('');
  const gflops = (ms: number, macs: number): string => fmt((2 * macs * B) / ms / 1e6, 1);
  const part = (p: StepProfile, n: string): number => p.parts.find((q) => q.name === n)!.ms;
  say('| conv layer, GFLOP/s | wasm forward | wasm backward | js forward | js backward |');
  say('|---|---|---|---|---|');
  for (const [label, fwd, bwd, macs, bwdGemms] of [
    ['conv1 1→16 k5 on 28×28 (backward: dW only)', 'conv1 forward', 'conv1 backward (dW only)', 16 * 25 * 576, 1],
    ['conv2 16→32 k5 on 12×12 (backward: dW + dinp)', 'conv2 forward', 'conv2 backward (dW, dinp)', 32 * 400 * 64, 2],
  ] as const) {
    say(
      `| ${label} | ${gflops(part(wasm, fwd), macs)} | ${gflops(part(wasm, bwd), bwdGemms * macs)} | ` +
        `${gflops(part(js, fwd), macs)} | ${gflops(part(js, bwd), bwdGemms * macs)} |`,
    );
  }
  say('');
  convMethods(say);
  say('');
  say('| CNN training step, batch 64, one thread | samples/s | GFLOP/s counted |');
  say('|---|---|---|');
  for (const name of ['wasm', 'js'] as const) {
    const sps = (B * 1000) / profiles.get(name)!.stepMs;
    say(
      `| flocktrain kernels, --kernels ${name} (kernel calls only) ` +
        `| ${fmt(sps)} | ${fmt((sps * CNN_FLOPS_PER_SAMPLE) / 1e9, 1)} |`,
    );
  }
  if (anchors) {
    const torch = torchSamplesPerSec();
    if (torch === null) say('| PyTorch, 1 thread | unavailable (no python3 with torch) | |');
    else {
      say(
        `| PyTorch, 1 thread (same step, SGD momentum) | ${fmt(torch)} | ` +
          `${fmt((torch * CNN_FLOPS_PER_SAMPLE) / 1e9, 1)} |`,
      );
      const ratio = (B * 1000) / wasm.stepMs / torch;
      say(`| wasm / PyTorch | ${fmt(ratio, 2)}× (target ≥ 1.5×) | |`);
    }
  }
}
