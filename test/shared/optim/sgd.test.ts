// shared/optim/sgd.ts: the optimizer step is torch.optim.SGD's rule, bit for bit
// with float32 stores, for plain, momentum and Nesterov updates with and without
// weight decay, so a run's bits are a function of its config and seed and a restored
// state continues exactly where it stopped. Bad hyperparameters are refused up front
// with the value in the message.

import { describe, it, expect } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { Sgd, type SgdOptions } from '../../../shared/optim/sgd.js';
import { deriveRng } from '../../../shared/rng.js';
import { bits, SEED } from '../../support/determinism.js';

/**
 * torch.optim.SGD's documented update (dampening 0), written from the PyTorch docs:
 *   g ← grad + λ·p;  b ← t = 1 ? g : μ·b + g;  g ← nesterov ? g + μ·b : b;  p ← p − γ·g
 * Intermediates in double; the values the optimizer keeps (p and b) rounded to float32.
 */
class ReferenceSgd {
  readonly #o: SgdOptions;
  #b: number[] | null = null;
  constructor(o: SgdOptions) {
    this.#o = o;
  }
  step(p: number[], grad: ArrayLike<number>): void {
    const { lr, momentum: mu, nesterov, weightDecay: wd } = this.#o;
    const first = this.#b === null;
    this.#b ??= new Array<number>(p.length).fill(0);
    const b = this.#b;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i] + wd * p[i];
      if (mu !== 0) {
        b[i] = Math.fround(first ? g : mu * b[i] + g);
        g = nesterov ? g + mu * b[i] : b[i];
      }
      p[i] = Math.fround(p[i] - lr * g);
    }
  }
}

describe('Sgd', () => {
  const N = 64;
  const rng = deriveRng(SEED, 'sgd');
  const p0 = Float32Array.from({ length: N }, () => (2 * rng.nextFloat() - 1) * 3);
  const gradSteps = [0, 1, 2].map(() => Float32Array.from({ length: N }, () => 2 * rng.nextFloat() - 1));

  const cases: [string, Partial<SgdOptions>][] = [
    ['plain', { lr: 0.1 }],
    ['weight decay', { lr: 0.05, weightDecay: 0.01 }],
    ['momentum', { lr: 0.1, momentum: 0.9 }],
    ['momentum + weight decay', { lr: 0.03, momentum: 0.5, weightDecay: 1e-3 }],
    ['nesterov', { lr: 0.1, momentum: 0.9, nesterov: true }],
    ['nesterov + weight decay', { lr: 0.2, momentum: 0.7, nesterov: true, weightDecay: 0.05 }],
  ];

  for (const [name, options] of cases) {
    it(`${name}: 3 steps bit-equal to torch.optim.SGD's rule with float32 stores`, () => {
      const sgd = new Sgd(N, options);
      const ref = new ReferenceSgd(sgd.options);
      const params = p0.slice();
      const expected = Array.from(p0);
      const before = p0.slice();
      for (const grads of gradSteps) {
        sgd.step(params, grads);
        ref.step(expected, grads);
        expect(bits(params)).toEqual(bits(Float32Array.from(expected)));
      }
      // Not a no-op: the parameters moved.
      expect(params).not.toEqual(before);
    });
  }

  it('momentum differs from plain SGD from the second step on, and nesterov from momentum', () => {
    const run = (o: Partial<SgdOptions>): Float32Array[] => {
      const sgd = new Sgd(N, o);
      const p = p0.slice();
      return gradSteps.map((g) => {
        sgd.step(p, g);
        return p.slice();
      });
    };
    const plain = run({ lr: 0.1, momentum: 0 });
    const mom = run({ lr: 0.1, momentum: 0.9 });
    const nest = run({ lr: 0.1, momentum: 0.9, nesterov: true });
    expect(bits(mom[0])).toEqual(bits(plain[0])); // first step: buf = g
    expect(mom[1]).not.toEqual(plain[1]);
    expect(nest[0]).not.toEqual(mom[0]); // nesterov looks ahead even on step 1
  });

  it('a restored state continues bit-identically', () => {
    const o = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 };
    const a = new Sgd(N, o);
    const pa = p0.slice();
    a.step(pa, gradSteps[0]);
    a.step(pa, gradSteps[1]);
    const b = new Sgd(N, o);
    b.loadState(a.state());
    const pb = pa.slice();
    a.step(pa, gradSteps[2]);
    b.step(pb, gradSteps[2]);
    expect(bits(pb)).toEqual(bits(pa));
    expect(() => b.loadState({ momentum: new Float32Array(N - 1) })).toThrow(RangeError);
  });

  it('rejects bad hyperparameters with a ConfigError naming the value', () => {
    const bad: [Partial<SgdOptions>, string][] = [
      [{ lr: 0 }, '0'],
      [{ lr: -0.1 }, '-0.1'],
      [{ lr: NaN }, 'NaN'],
      [{ lr: Infinity }, 'Infinity'],
      [{ momentum: -0.5 }, '-0.5'],
      [{ momentum: 1 }, '1'],
      [{ momentum: 1.5 }, '1.5'],
      [{ momentum: NaN }, 'NaN'],
      [{ weightDecay: -1e-4 }, '-0.0001'],
      [{ weightDecay: NaN }, 'NaN'],
      [{ weightDecay: Infinity }, 'Infinity'],
    ];
    for (const [options, named] of bad) {
      let caught: unknown;
      try {
        new Sgd(4, options);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(options)).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).code).toBe('CONFIG');
      expect((caught as Error).message, JSON.stringify(options)).toContain(`got ${named}`);
    }
    // Nesterov without momentum is a contradiction, not a bad value: the message names the flags.
    expect(() => new Sgd(4, { nesterov: true, momentum: 0 })).toThrow(ConfigError);
    expect(() => new Sgd(4, { nesterov: true, momentum: 0 })).toThrow(/nesterov.*momentum/);
    expect(() => new Sgd(4, { lr: 1e-6, momentum: 0.999, nesterov: true, weightDecay: 0 })).not.toThrow();
    expect(() => new Sgd(4).step(new Float32Array(5), new Float32Array(5))).toThrow(RangeError);
  });
});
