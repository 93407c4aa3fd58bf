// One compute thread of a Node worker started with --threads N (worker/node/threaded-compute.ts
// starts N of them): worker/thread-serve.ts's handler on a worker_threads thread, its
// ThreadInit in workerData. Not a library module: importing it starts the thread's
// message loop.

import { parentPort, workerData } from 'node:worker_threads';
import { threadServer, type ThreadInit, type ThreadReply, type ThreadRequest } from '../thread-serve.js';

export type { ThreadInit, ThreadReply, ThreadRequest } from '../thread-serve.js';

if (parentPort !== null) {
  const port = parentPort;
  const handle = threadServer(workerData as ThreadInit);
  port.on('message', (m: ThreadRequest) => port.postMessage(handle(m)));
  port.postMessage({ type: 'ready' } satisfies ThreadReply);
}
