// The bytes of a message as the Node `ws` package delivers it (a Buffer, a list of
// fragments, or an ArrayBuffer, depending on binaryType), for decode. Browser sockets
// deliver ArrayBuffers and never need this.
// shared/node/ holds Node-only code that both the coordinator and the Node worker use; shared/ stays
// platform-neutral (scripts/build-browser.ts states and enforces the rule).

import type { RawData } from 'ws';

export function messageBytes(data: RawData): Uint8Array {
  return Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
