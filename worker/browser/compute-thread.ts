// One compute thread of a browser tab: a Web Worker started by the tab's compute
// worker (web-threads.ts), running worker/thread-serve.ts's handler, the same one a
// Node worker's compute threads run. Its first message is its ThreadInit (it answers
// 'ready'), every later one a request. Bundled into dist/browser/compute-thread.js.
// Messages come only from the worker that started it, and are read as the pool wrote them.

import { threadServer, type ThreadInit, type ThreadReply, type ThreadRequest } from '../thread-serve.js';

/** The slice of DedicatedWorkerGlobalScope used here (the project's lib is DOM, not WebWorker). */
interface ThreadScope {
  postMessage(message: ThreadReply): void;
  onmessage: ((event: MessageEvent<unknown>) => void) | null;
}

const scope = globalThis as unknown as ThreadScope;
let handle: ((request: ThreadRequest) => ThreadReply) | null = null;

scope.onmessage = (event) => {
  if (handle === null) {
    // Throws (and so reaches the pool as a crash) when this engine cannot build it.
    handle = threadServer(event.data as ThreadInit);
    scope.postMessage({ type: 'ready' });
    return;
  }
  scope.postMessage(handle(event.data as ThreadRequest));
};
