// 2-D convolution in both kernel sets: the js kernels bit-equal to the straight loops of
// naive.ts (same double sums), the wasm kernels within the float32 summation bound of
// them (they accumulate in float32 lanes), the wasm bits the same on every call
// whatever the scratch held, accumulate=false equal to zeroing first, a null dinp
// leaving the weight gradient unchanged, and central differences for every gradient,
// with stride and padding.

import { describe, expect, it } from 'vitest';
import { convOutSize } from '../../../shared/kernels/conv.js';
import { createKernelSet, KERNEL_SET_NAMES, type KernelSet } from '../../../shared/kernels/kernel-set.js';
import { conv2dBackwardNaive, conv2dForwardNaive } from '../../../shared/kernels/naive.js';
import { WasmKernels } from '../../../shared/kernels/wasm/kernels.js';
import { deriveRng } from '../../../shared/rng.js';
import { abs, bitDiff, dotLoss, gridArray, numericGradient, put, randomArray, within } from './support.js';

const SEED = 0xc0de;

interface Shape {
  B: number;
  C: number;
  H: number;
  W: number;
  OC: number;
  KH: number;
  KW: number;
  stride: number;
  pad: number;
}

const shape = (
  B: number,
  C: number,
  H: number,
  W: number,
  OC: number,
  KH: number,
  KW: number,
  stride: number,
  pad: number,
): Shape => ({ B, C, H, W, OC, KH, KW, stride, pad });

/**
 * Small shapes around the edges (stride, padding, non-square, kernel as large as the padded image)
 * and the CNN's two layers.
 */
const SHAPES: Shape[] = [
  shape(1, 1, 1, 1, 1, 1, 1, 1, 0),
  shape(2, 3, 7, 6, 4, 3, 3, 2, 1),
  shape(1, 2, 5, 5, 3, 3, 2, 1, 0),
  shape(3, 2, 9, 8, 5, 4, 4, 3, 2),
  shape(2, 1, 4, 4, 2, 5, 5, 1, 1),
  shape(2, 5, 6, 7, 9, 1, 1, 1, 0),
  shape(1, 3, 10, 10, 6, 3, 3, 1, 1),
  shape(2, 4, 11, 9, 7, 2, 3, 2, 0),
  shape(3, 1, 28, 28, 16, 5, 5, 1, 0),
  shape(1, 16, 12, 12, 32, 5, 5, 1, 0),
];

function sizes(s: Shape) {
  const OH = convOutSize(s.H, s.KH, s.stride, s.pad);
  const OW = convOutSize(s.W, s.KW, s.stride, s.pad);
  return {
    inp: s.B * s.C * s.H * s.W,
    weight: s.OC * s.C * s.KH * s.KW,
    out: s.B * s.OC * OH * OW,
    OH,
    OW,
  };
}

function kernelsFor(name: (typeof KERNEL_SET_NAMES)[number], s: Shape): { k: KernelSet; scratch: Float32Array } {
  const n = sizes(s);
  const need = createKernelSet(name, 16).conv2dScratchFloats(s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad);
  const k = createKernelSet(name, 4 * (n.inp + 2 * n.weight + 2 * n.out + 2 * s.OC) + need + 4096);
  return { k, scratch: k.alloc(need) };
}

function label(s: Shape): string {
  return `B${s.B} C${s.C} ${s.H}×${s.W} OC${s.OC} k${s.KH}×${s.KW} s${s.stride} p${s.pad}`;
}

interface Run {
  out: Float32Array;
  dinp: Float32Array;
  dweight: Float32Array;
  dbias: Float32Array;
}

/** Forward and backward (accumulating onto dweight0/dbias0) with the kernel set, copied out. */
function runSet(
  name: (typeof KERNEL_SET_NAMES)[number],
  s: Shape,
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  dout: Float32Array,
  dweight0: Float32Array,
  dbias0: Float32Array,
): Run {
  const n = sizes(s);
  const { k, scratch } = kernelsFor(name, s);
  const pi = put(k, inp),
    pw = put(k, weight),
    pb = put(k, bias),
    pd = put(k, dout);
  const out = k.alloc(n.out).fill(Number.NaN);
  k.conv2dForward(out, pi, pw, pb, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad, scratch);
  const dinp = k.alloc(n.inp).fill(Number.NaN);
  const dweight = put(k, dweight0),
    dbias = put(k, dbias0);
  k.conv2dBackward(dinp, dweight, dbias, pd, pi, pw, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad, scratch);
  return { out: out.slice(), dinp: dinp.slice(), dweight: dweight.slice(), dbias: dbias.slice() };
}

function problem(s: Shape, tag: string) {
  const n = sizes(s);
  const rng = deriveRng(SEED, tag, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad);
  return {
    inp: randomArray(rng, n.inp, 2),
    weight: randomArray(rng, n.weight, 0.5),
    bias: randomArray(rng, s.OC, 0.5),
    dout: randomArray(rng, n.out, 1),
    dweight0: randomArray(rng, n.weight, 0.25),
    dbias0: randomArray(rng, s.OC, 0.25),
  };
}

function naiveRun(s: Shape, p: ReturnType<typeof problem>): Run {
  const n = sizes(s);
  const out = new Float32Array(n.out);
  conv2dForwardNaive(out, p.inp, p.weight, p.bias, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad);
  const dinp = new Float32Array(n.inp);
  const dweight = p.dweight0.slice(),
    dbias = p.dbias0.slice();
  conv2dBackwardNaive(
    dinp,
    dweight,
    dbias,
    p.dout,
    p.inp,
    p.weight,
    s.B,
    s.C,
    s.H,
    s.W,
    s.OC,
    s.KH,
    s.KW,
    s.stride,
    s.pad,
  );
  return { out, dinp, dweight, dbias };
}

describe('conv2d kernels', () => {
  it('the js set is bit-equal to the naive twin (forward, dinp, dweight +=, dbias +=)', () => {
    for (const s of SHAPES) {
      const p = problem(s, 'js');
      const fast = runSet('js', s, p.inp, p.weight, p.bias, p.dout, p.dweight0, p.dbias0);
      const naive = naiveRun(s, p);
      for (const key of ['out', 'dinp', 'dweight', 'dbias'] as const)
        expect(bitDiff(fast[key], naive[key]), `${label(s)} ${key}`).toBeNull();
    }
  });

  it('the wasm set is within the float32 summation bound of the naive twin (dense and mostly-zero dout)', () => {
    let differs = 0;
    for (const [index, s] of SHAPES.entries()) {
      const n = sizes(s);
      const p = problem(s, 'wasm');
      // Every other shape: 3 of 4 gradients exactly zero, as after 2×2 max pooling (the input
      // gradient skips them).
      if (index % 2 === 1) for (let i = 0; i < p.dout.length; i++) if (i % 4 !== 1) p.dout[i] = i % 8 === 0 ? -0 : 0;
      const fast = runSet('wasm', s, p.inp, p.weight, p.bias, p.dout, p.dweight0, p.dbias0);
      const naive = naiveRun(s, p);
      // Σ|terms| of every element: the same convolutions on absolute values.
      const absRun = naiveRun(s, {
        inp: abs(p.inp),
        weight: abs(p.weight),
        bias: abs(p.bias),
        dout: abs(p.dout),
        dweight0: abs(p.dweight0),
        dbias0: abs(p.dbias0),
      });
      const terms = {
        out: s.C * s.KH * s.KW + 1,
        dinp: s.OC * s.KH * s.KW,
        dweight: s.B * n.OH * n.OW + s.B + 1,
        dbias: s.B * n.OH * n.OW + s.B + 1,
      };
      for (const key of ['out', 'dinp', 'dweight', 'dbias'] as const) {
        for (let i = 0; i < naive[key].length; i++) {
          const ok = within(fast[key][i], naive[key][i], terms[key], absRun[key][i]);
          if (!ok) expect.fail(`${label(s)} ${key}[${i}]: wasm ${fast[key][i]} vs naive ${naive[key][i]}`);
          if (fast[key][i] !== naive[key][i]) differs++;
        }
      }
    }
    // Float32 lanes against double sums: the bound must not be vacuous (they do differ).
    expect(differs).toBeGreaterThan(0);
  });

  it('the wasm set gives the same bits on every call, whatever the scratch and outputs held', () => {
    for (const s of [SHAPES[1], SHAPES[3], SHAPES[9]]) {
      const n = sizes(s);
      const p = problem(s, 'repeat');
      const { k, scratch } = kernelsFor('wasm', s);
      const pi = put(k, p.inp),
        pw = put(k, p.weight),
        pb = put(k, p.bias),
        pd = put(k, p.dout);
      const outs: Float32Array[] = [];
      for (let r = 0; r < 2; r++) {
        scratch.fill(r === 0 ? 0 : Number.NaN);
        const out = k.alloc(n.out).fill(r === 0 ? 0 : 1e30);
        const dinp = k.alloc(n.inp).fill(r === 0 ? 0 : Number.NaN);
        const dweight = k.alloc(n.weight).fill(r === 0 ? 0 : Number.NaN);
        const dbias = k.alloc(s.OC).fill(r === 0 ? 0 : Number.NaN);
        k.conv2dForward(out, pi, pw, pb, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad, scratch);
        k.conv2dBackward(
          dinp,
          dweight,
          dbias,
          pd,
          pi,
          pw,
          s.B,
          s.C,
          s.H,
          s.W,
          s.OC,
          s.KH,
          s.KW,
          s.stride,
          s.pad,
          scratch,
          false,
        );
        outs.push(out, dinp, dweight, dbias);
      }
      for (let i = 0; i < 4; i++) expect(bitDiff(outs[i], outs[i + 4]), `${label(s)} output ${i}`).toBeNull();
    }
  });

  it('wasm direct convolution (forward, weight gradient) gives the bits of im2col + GEMM', () => {
    // Shapes where the direct paths apply (stride 1, no padding, OW % 8 = 0 and OC % 4 = 0
    // forward, OC % 8 = 0 backward), K = C·KH·KW both a multiple of 4 and not.
    for (const s of [
      shape(2, 1, 28, 28, 16, 5, 5, 1, 0),
      shape(2, 16, 12, 12, 32, 5, 5, 1, 0),
      shape(3, 3, 10, 10, 8, 3, 3, 1, 0),
    ]) {
      const n = sizes(s);
      const p = problem(s, 'direct');
      const k = new WasmKernels(4 * (n.inp + 4 * n.weight + 4 * n.out) + 65536);
      const scratch = k.alloc(WasmKernels.conv2dScratchFloats(s.C, s.H, s.W, s.OC, s.KH, s.KW, 1, 0));
      const pi = put(k, p.inp),
        pw = put(k, p.weight),
        pb = put(k, p.bias),
        pd = put(k, p.dout);
      expect(WasmKernels.directConvApplies(s.W, s.OC, s.KW, 1, 0), label(s)).toBe(true);
      const direct = k.alloc(n.out),
        viaCol = k.alloc(n.out);
      k.conv2dForwardDirect(direct, pi, pw, pb, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, scratch);
      k.conv2dForwardIm2col(viaCol, pi, pw, pb, s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, 1, 0, scratch);
      expect(bitDiff(direct, viaCol), `${label(s)} forward`).toBeNull();
      const dwDirect = put(k, p.dweight0),
        dwCol = put(k, p.dweight0),
        dbDirect = put(k, p.dbias0),
        dbCol = put(k, p.dbias0);
      const args = [s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, 1, 0] as const;
      k.conv2dBackward(null, dwDirect, dbDirect, pd, pi, pw, ...args, scratch, true, 'auto');
      k.conv2dBackward(null, dwCol, dbCol, pd, pi, pw, ...args, scratch, true, 'im2col');
      expect(bitDiff(dwDirect, dwCol), `${label(s)} dweight`).toBeNull();
      expect(bitDiff(dbDirect, dbCol), `${label(s)} dbias`).toBeNull();
    }
  });

  it("the wasm weight gradient from dout’s nonzeros has the dense sums' bits (stride, padding, zeros)", () => {
    // K = C·KH·KW ≥ 32 takes the sparse path under 'auto'; 'im2col' always sums densely.
    for (const s of [
      shape(2, 16, 12, 12, 32, 5, 5, 1, 0),
      shape(2, 4, 9, 9, 6, 3, 3, 2, 1),
      shape(1, 5, 7, 8, 3, 3, 3, 1, 2),
    ]) {
      const n = sizes(s);
      const p = problem(s, 'sparse');
      for (let i = 0; i < p.dout.length; i++) if (i % 4 !== 2) p.dout[i] = i % 3 === 0 ? -0 : 0;
      const k = new WasmKernels(4 * (n.inp + 4 * n.weight + 4 * n.out) + 65536);
      const scratch = k.alloc(WasmKernels.conv2dScratchFloats(s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad));
      const pi = put(k, p.inp),
        pw = put(k, p.weight),
        pd = put(k, p.dout);
      const args = [s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad] as const;
      for (const accumulate of [true, false]) {
        const dwSparse = put(k, p.dweight0),
          dwDense = put(k, p.dweight0),
          dbSparse = put(k, p.dbias0),
          dbDense = put(k, p.dbias0);
        k.conv2dBackward(null, dwSparse, dbSparse, pd, pi, pw, ...args, scratch, accumulate, 'auto');
        k.conv2dBackward(null, dwDense, dbDense, pd, pi, pw, ...args, scratch, accumulate, 'im2col');
        expect(bitDiff(dwSparse, dwDense), `${label(s)} dweight, accumulate ${accumulate}`).toBeNull();
        expect(bitDiff(dbSparse, dbDense), `${label(s)} dbias, accumulate ${accumulate}`).toBeNull();
      }
    }
  });

  it('a sample’s forward output does not depend on the other samples of its batch (both sets)', () => {
    const s = SHAPES[3];
    const n = sizes(s);
    const p = problem(s, 'alone');
    for (const name of KERNEL_SET_NAMES) {
      const { k, scratch } = kernelsFor(name, s);
      const all = k.alloc(n.out);
      k.conv2dForward(
        all,
        put(k, p.inp),
        put(k, p.weight),
        put(k, p.bias),
        s.B,
        s.C,
        s.H,
        s.W,
        s.OC,
        s.KH,
        s.KW,
        s.stride,
        s.pad,
        scratch,
      );
      const per = n.out / s.B;
      const last = put(k, p.inp.subarray((s.B - 1) * (n.inp / s.B)));
      const one = k.alloc(per);
      k.conv2dForward(
        one,
        last,
        put(k, p.weight),
        put(k, p.bias),
        1,
        s.C,
        s.H,
        s.W,
        s.OC,
        s.KH,
        s.KW,
        s.stride,
        s.pad,
        scratch,
      );
      expect(bitDiff(one, all.subarray((s.B - 1) * per)), name).toBeNull();
    }
  });

  it('accumulate=false gives the bits of zeroing first; dinp=null leaves parameter gradients be (both sets)', () => {
    for (const s of [SHAPES[1], SHAPES[3], SHAPES[8]]) {
      const n = sizes(s);
      const p = problem(s, 'overwrite');
      for (let i = 0; i < p.dout.length; i += 5) p.dout[i] = -0;
      for (const name of KERNEL_SET_NAMES) {
        const { k, scratch } = kernelsFor(name, s);
        const pi = put(k, p.inp),
          pw = put(k, p.weight),
          pd = put(k, p.dout);
        const zw = k.alloc(n.weight),
          zb = k.alloc(s.OC);
        const args = [s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad] as const;
        k.conv2dBackward(k.alloc(n.inp), zw, zb, pd, pi, pw, ...args, scratch, true);
        const jw = put(k, randomArray(deriveRng(SEED, 'junk'), n.weight, 1e6)),
          jb = k.alloc(s.OC).fill(Number.NaN);
        k.conv2dBackward(null, jw, jb, pd, pi, pw, ...args, scratch, false);
        expect(bitDiff(jw, zw), `${name} ${label(s)} dweight`).toBeNull();
        expect(bitDiff(jb, zb), `${name} ${label(s)} dbias`).toBeNull();
      }
    }
  });

  it('every gradient matches central differences of the forward pass (stride and padding, both sets)', () => {
    // Inputs and weights on a 2^-10 grid and h = 2^-6: the perturbed values are exact in
    // float32 and the loss is linear in each, so the difference quotient errs only by the
    // forward's float32 roundings (~1e-6 of the loss's size, divided by 2h).
    const H_STEP = 2 ** -6;
    for (const s of [SHAPES[1], SHAPES[3], SHAPES[4], SHAPES[7]]) {
      const n = sizes(s);
      for (const name of KERNEL_SET_NAMES) {
        const rng = deriveRng(SEED, 'fd', name, s.C, s.H);
        const { k, scratch } = kernelsFor(name, s);
        const inp = put(k, gridArray(rng, n.inp)),
          weight = put(k, gridArray(rng, n.weight)),
          bias = put(k, gridArray(rng, s.OC)),
          r = gridArray(rng, n.out),
          out = k.alloc(n.out);
        const args = [s.B, s.C, s.H, s.W, s.OC, s.KH, s.KW, s.stride, s.pad] as const;
        const loss = (): number => {
          k.conv2dForward(out, inp, weight, bias, ...args, scratch);
          return dotLoss(r, out);
        };
        const dinp = k.alloc(n.inp),
          dweight = k.alloc(n.weight),
          dbias = k.alloc(s.OC);
        k.conv2dBackward(dinp, dweight, dbias, put(k, r), inp, weight, ...args, scratch, false);
        const check = (x: Float32Array, g: Float32Array, what: string): void => {
          for (let i = 0; i < x.length; i++) {
            const num = numericGradient(x, i, H_STEP, loss);
            if (Math.abs(num - g[i]) > 1e-3 + 1e-3 * Math.abs(num))
              expect.fail(`${name} ${label(s)} ${what}[${i}]: analytic ${g[i]} vs numeric ${num}`);
          }
        };
        check(inp, dinp, 'dinp');
        check(weight, dweight, 'dweight');
        check(bias, dbias, 'dbias');
      }
    }
  });
});
