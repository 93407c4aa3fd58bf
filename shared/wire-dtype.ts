// The number format of weights and gradients on the wire (--wire-dtype). f32 moves
// them as they are. bf16 halves the bytes, and stays deterministic and independent of
// the worker count by rounding at fixed points of the computation, not at whichever
// hop a value happens to cross: the weights a step computes with are the master
// weights rounded to bf16, every shard's gradient sum is rounded to bf16, and every
// node of the reduction tree is its children's f32 sum rounded to bf16. A worker's
// upload is then a bf16 value already, and any party that reduces a node gets the
// same bits. The result equals neither an f32 run nor any other rounding scheme; it is
// a function of the config (which names the dtype) and the seed, like every run.

import { roundBf16 } from './kernels/bf16.js';
import { combineInto, type PartialGradient } from './gradient.js';

export type WireDtype = 'f32' | 'bf16';
export const WIRE_DTYPES: readonly WireDtype[] = ['f32', 'bf16'];

/** Bytes per value on the wire. */
export function wireBytesPer(dtype: WireDtype): number {
  return dtype === 'f32' ? 4 : 2;
}

/** The reduction tree's combine for a dtype: left + right in f32, then rounded to the dtype (into left's buffer). */
export function wireCombine(dtype: WireDtype): (left: PartialGradient, right: PartialGradient) => PartialGradient {
  if (dtype === 'f32') return combineInto;
  return (left, right) => {
    const sum = combineInto(left, right);
    roundBf16(sum.grad);
    return sum;
  };
}

/** `a` rounded to the dtype in place (f32: unchanged). */
export function roundToWire(a: Float32Array, dtype: WireDtype): void {
  if (dtype === 'bf16') roundBf16(a);
}
