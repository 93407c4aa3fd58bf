// Elementwise activations, forward and backward, over flat Float32Arrays of N values.
// Backward functions take the forward *output* (the derivatives of relu, sigmoid and
// tanh are cheap in terms of it; leaky ReLU's takes the input, whose sign is not
// ambiguous at 0), write dinp and allocate nothing. sigmoid and tanh use the project's
// own transcendentals so every engine produces the same bits.

import { sigmoid, tanh } from './transcendental.js';

export function reluForward(out: Float32Array, inp: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    // biome-ignore lint/complexity/useMathMinMax: Math.max keeps NaN and -0, the wasm kernel (x > 0 ? x : 0) does not
    out[i] = x > 0 ? x : 0;
  }
}

export function reluBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) dinp[i] = out[i] > 0 ? dout[i] : 0;
}

export function sigmoidForward(out: Float32Array, inp: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) out[i] = sigmoid(inp[i]);
}

export function sigmoidBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const y = out[i];
    dinp[i] = dout[i] * y * (1 - y);
  }
}

export function tanhForward(out: Float32Array, inp: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) out[i] = tanh(inp[i]);
}

export function tanhBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const y = out[i];
    dinp[i] = dout[i] * (1 - y * y);
  }
}

/**
 * out = x > 0 ? x : x·slope, the product in float32 with slope rounded to float32 (PyTorch's
 * LeakyReLU casts its negative_slope to the tensor's type; default 0.01). NaN stays NaN.
 */
export function leakyReluForward(out: Float32Array, inp: Float32Array, N: number, slope: number): void {
  const a = Math.fround(slope);
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    out[i] = x > 0 ? x : x * a;
  }
}

/**
 * dinp = x > 0 ? dout : dout·slope (float32). Takes the forward *input*: at x = 0 the output
 * is 0 whatever the side, and the gradient there is PyTorch's, dout·slope.
 */
export function leakyReluBackward(
  dinp: Float32Array,
  dout: Float32Array,
  inp: Float32Array,
  N: number,
  slope: number,
): void {
  const a = Math.fround(slope);
  for (let i = 0; i < N; i++) dinp[i] = inp[i] > 0 ? dout[i] : dout[i] * a;
}
