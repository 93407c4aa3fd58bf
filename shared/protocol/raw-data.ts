// The bytes of a message as the Node `ws` package delivers it (a Buffer, a list of
// fragments, or an ArrayBuffer, depending on binaryType), for decode. Node only:
// browser sockets deliver ArrayBuffers and never import this.

import type { RawData } from 'ws';

export function messageBytes(data: RawData): Uint8Array {
  return Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
