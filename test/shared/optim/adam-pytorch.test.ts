// Adam and AdamW against torch.optim.Adam / torch.optim.AdamW in Debian's PyTorch:
// the same float32 initial weights and gradients, N steps (with a learning rate that
// changes every step in one case, as a schedule sets param_groups' lr), and the
// weights after every step agree to 1e-5 relative. They cannot agree to the bit: torch
// rounds every intermediate to float32, flocktrain keeps doubles until the store.
// Needs python3-torch (.ci/run installs it); without it the suite is skipped loudly,
// except under CI=true, where that is a failure.

import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { Adam, type AdamOptions } from '../../../shared/optim/adam.js';
import { WasmAdam } from '../../../shared/optim/wasm-adam.js';
import { deriveRng } from '../../../shared/rng.js';
import { describeNeeding } from '../../support/describe-needing.js';
import { uniform } from './random.js';

const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const torch = {
  present: hasTorch,
  missing: `${PYTHON} cannot import torch`,
  install: 'apt-get update && apt-get install -y python3-torch',
};

// Reads {decoupled, betas, eps, weight_decay, lrs, init, grads} as JSON on stdin and
// prints the weights after each step as JSON lists of float32 values.
const SCRIPT = `
import json, sys, torch
job = json.load(sys.stdin)
p = torch.nn.Parameter(torch.tensor(job["init"], dtype=torch.float32))
Opt = torch.optim.AdamW if job["decoupled"] else torch.optim.Adam
opt = Opt([p], lr=job["lrs"][0], betas=tuple(job["betas"]), eps=job["eps"], weight_decay=job["weight_decay"])
out = []
for lr, g in zip(job["lrs"], job["grads"]):
    for group in opt.param_groups:
        group["lr"] = lr
    p.grad = torch.tensor(g, dtype=torch.float32)
    opt.step()
    out.append(p.detach().tolist())
print(json.dumps(out))
`;

const N = 64;
const STEPS = 25;

const CASES: [string, AdamOptions, (s: number) => number][] = [
  [
    'Adam, PyTorch defaults',
    { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
    () => 0.001,
  ],
  [
    'Adam with L2 weight decay, warmup then decay',
    { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05, decoupled: false },
    (s) => (s < 5 ? (0.01 * (s + 1)) / 5 : 0.01 * 0.9 ** (s - 5)),
  ],
  [
    'AdamW, weight decay 0.01',
    { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true },
    () => 0.01,
  ],
  [
    'AdamW, strong decay, eps 1e-3, beta1 0',
    { lr: 0.05, beta1: 0, beta2: 0.9, eps: 1e-3, weightDecay: 0.5, decoupled: true },
    (s) => 0.05 / (1 + s),
  ],
];

describeNeeding(torch, 'Adam and AdamW against torch.optim', () => {
  for (const [name, options, lrAt] of CASES) {
    it(`${name}: ${STEPS} steps from the same init agree to 1e-5 relative, in both twins`, () => {
      const rng = deriveRng(0x70c4, name);
      const init = uniform(rng, N);
      // Gradients of several magnitudes, some exactly 0 (where only eps keeps v from 0/0).
      const grads = Array.from({ length: STEPS }, (_, s) => {
        const g = uniform(rng, N);
        for (let i = 0; i < N; i++) g[i] *= i % 7 === 0 ? 0 : 10 ** ((i % 5) - 3);
        return s === 3 ? g.map((v) => -v) : g;
      });
      const lrs = Array.from({ length: STEPS }, (_, s) => lrAt(s));
      const job = {
        decoupled: options.decoupled,
        betas: [options.beta1, options.beta2],
        eps: options.eps,
        weight_decay: options.weightDecay,
        lrs,
        init: Array.from(init),
        grads: grads.map((g) => Array.from(g)),
      };
      const run = spawnSync(PYTHON, ['-c', SCRIPT], { input: JSON.stringify(job), encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      const theirs = JSON.parse(run.stdout) as number[][];
      expect(theirs.length).toBe(STEPS);

      for (const opt of [new Adam(N, options), new WasmAdam(N, options)]) {
        const p = init.slice();
        let worst = 0;
        for (let s = 0; s < STEPS; s++) {
          opt.step(p, grads[s], lrs[s]);
          for (let i = 0; i < N; i++) {
            const t = theirs[s][i];
            worst = Math.max(worst, Math.abs(p[i] - t) / Math.max(Math.abs(t), 1e-2));
          }
        }
        expect(worst, opt.constructor.name).toBeLessThan(1e-5);
        // And the weights did move: the comparison is not of two copies of init.
        expect(Math.abs(p[1] - init[1])).toBeGreaterThan(1e-4);
      }
    });
  }
});
