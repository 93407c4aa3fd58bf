// Inverted dropout whose mask is a pure function of (seed, step, sample index, feature
// index): a counter-based hash, no generator state. Whichever worker, thread or shard
// computes a sample, at whatever position in its batch, the sample gets the same mask,
// which is what keeps training bit-identical for any number of workers. Backward
// recomputes the mask instead of storing it.
//
// The hash is integer-only (32-bit multiply, xor, shift), so its bits are the same on
// every engine; both kernel sets run these JS functions (one hash per activation, a
// small cost beside the layers around it), so dropout gives the same bits in both.
//
// Kept values are scaled as PyTorch does in training: x·(1 / (1 − p)) with the scale
// computed in float32 (1 / float32(1 − p)) and one float32 product; dropped values are
// x·0, so a dropped NaN or ±Inf still gives NaN, as in PyTorch.

/** A bijective 32-bit mixer (xor-shift / multiply rounds); the input's every bit reaches every output bit. */
function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The seed a model's dropout layer uses: the run's seed mixed with the layer's index,
 * so two dropout layers of one model draw independent masks.
 */
export function dropoutLayerSeed(seed: number, layer: number): number {
  return mix32(mix32(seed ^ 0x5bd1e995) ^ mix32(layer + 0x27d4eb2f));
}

/** The key of one sample's row of the mask: the hash of (seed, step, sample). */
function rowKey(seed: number, step: number, sample: number): number {
  return mix32(mix32(mix32(seed) ^ step) ^ sample);
}

/** Whether feature i of the row keyed `key` is dropped: its hash's top 24 bits fall below `threshold`. */
function dropped(key: number, i: number, threshold: number): boolean {
  return mix32(mix32(key ^ i) + 0x9e3779b9) >>> 8 < threshold;
}

/** The drop threshold on 24-bit uniforms: p·2^24 rounded (p = 0 drops nothing, p = 1 all). */
function threshold(p: number): number {
  return Math.round(p * 2 ** 24);
}

/** The float32 scale of kept values, 1 / float32(1 − p) rounded to float32 (p = 1: unused). */
function keepScale(p: number): number {
  return p >= 1 ? 0 : Math.fround(1 / Math.fround(1 - p));
}

/**
 * The dropout mask value of (seed, step, sample, feature): 0 (dropped) or the keep scale.
 * For tests and for callers that want to see the mask; the kernels inline the same rule.
 */
export function dropoutMaskValue(p: number, seed: number, step: number, sample: number, feature: number): number {
  return dropped(rowKey(seed, step, sample), feature, threshold(p)) ? 0 : keepScale(p);
}

/**
 * out (B, N) = inp (B, N) · mask; row b's mask is keyed by sampleIndices[b] (its index in
 * the dataset), step (the optimizer step) and seed (dropoutLayerSeed of the layer).
 * p in [0, 1]: the probability of dropping each value.
 */
export function dropoutForward(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  N: number,
  p: number,
  seed: number,
  step: number,
  sampleIndices: ArrayLike<number>,
): void {
  applyMask(out, inp, B, N, p, seed, step, sampleIndices);
}

/** dinp (B, N) = dout (B, N) · the same mask as dropoutForward with the same arguments. */
export function dropoutBackward(
  dinp: Float32Array,
  dout: Float32Array,
  B: number,
  N: number,
  p: number,
  seed: number,
  step: number,
  sampleIndices: ArrayLike<number>,
): void {
  applyMask(dinp, dout, B, N, p, seed, step, sampleIndices);
}

function applyMask(
  out: Float32Array,
  inp: Float32Array,
  B: number,
  N: number,
  p: number,
  seed: number,
  step: number,
  sampleIndices: ArrayLike<number>,
): void {
  const t = threshold(p);
  const scale = keepScale(p);
  for (let b = 0; b < B; b++) {
    const key = rowKey(seed, step, sampleIndices[b]);
    const r = b * N;
    for (let i = 0; i < N; i++) out[r + i] = inp[r + i] * (dropped(key, i, t) ? 0 : scale);
  }
}
