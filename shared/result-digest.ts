// The bytes a result is hashed over, the same on the coordinator (an audit's digest of
// a result and of its recomputation) and on a worker answering a `check`: per node, in
// order, its statistics as three float64 (all their bits) and then its gradient's
// float32 bytes. Two digests are equal exactly when the results are bit-identical.

/** One node of a result: its statistics and its gradient (paramCount floats). */
export interface DigestNode {
  readonly lossSum: number;
  readonly count: number;
  readonly correct: number;
  readonly grad: Float32Array;
}

/** The parts to hash, in order; views, no copy of the gradients. */
export function resultDigestParts(nodes: readonly DigestNode[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (const n of nodes) {
    const view = new DataView(new ArrayBuffer(24));
    view.setFloat64(0, n.lossSum);
    view.setFloat64(8, n.count);
    view.setFloat64(16, n.correct);
    parts.push(new Uint8Array(view.buffer));
    parts.push(new Uint8Array(n.grad.buffer, n.grad.byteOffset, n.grad.byteLength));
  }
  return parts;
}

/** Hex SHA-256 of the parts with WebCrypto, which Node and browsers both have (a worker's side). */
export async function sha256Hex(parts: readonly Uint8Array[]): Promise<string> {
  let length = 0;
  for (const p of parts) length += p.byteLength;
  const all = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  const hash = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
}
