// What the worker page tells the person at the tab when its connection ends, and
// whether it offers to reconnect. Pure, so it is tested without a browser.

import { CloseCode } from '../../shared/protocol/codes.js';
import type { WorkerStatus } from './messages.js';

export interface Verdict {
  /** One sentence for the page. */
  readonly text: string;
  /** 'error' is shown in red; 'info' is neutral. */
  readonly tone: 'info' | 'error';
  /** Whether Resume (reconnect) makes sense. */
  readonly canResume: boolean;
}

export function closeVerdict(
  s: Pick<WorkerStatus, 'closeCode' | 'closeReason' | 'closedByUser' | 'closedHere' | 'everOpened'>,
  host: string,
): Verdict {
  const reason = s.closeReason !== '' ? ` (${s.closeReason})` : '';
  if (s.closedByUser)
    return {
      text:
        'Paused: this tab left the run, and the other workers took over its shards. ' +
        'Resume rejoins as a new worker.',
      tone: 'info',
      canResume: true,
    };
  switch (s.closeCode) {
    case CloseCode.DONE:
      return { text: 'Training finished. Thank you for lending this tab!', tone: 'info', canResume: false };
    case CloseCode.UNAUTHORIZED:
      return {
        text: `The coordinator refused this link's token${reason}. Ask for a fresh join link.`,
        tone: 'error',
        canResume: false,
      };
    case CloseCode.VERSION_MISMATCH:
      return {
        text: `This page speaks another protocol version than the coordinator${reason}. Reload the page.`,
        tone: 'error',
        canResume: false,
      };
    case CloseCode.UNSUPPORTED_KERNELS:
      return {
        text:
          `This browser cannot run this run's kernels${reason}. Use a browser with WebAssembly SIMD, ` +
          'or ask for a run with --kernels js.',
        tone: 'error',
        canResume: false,
      };
    case CloseCode.BANNED:
      return {
        text: `The coordinator banned this tab: a result differed from its own recomputation${reason}.`,
        tone: 'error',
        canResume: false,
      };
    case CloseCode.SHUTDOWN:
      return { text: `The coordinator shut down${reason}. Resume once it is back.`, tone: 'error', canResume: true };
    case CloseCode.PROTOCOL_ERROR:
    case CloseCode.BAD_RESULT:
    case CloseCode.HELLO_TIMEOUT:
      // The tab's own worker closes with these codes too, on an error on its side.
      if (s.closedHere)
        return {
          text: `This tab stopped on an error${reason}. Resume rejoins as a new worker.`,
          tone: 'error',
          canResume: true,
        };
      return { text: `The coordinator disconnected this tab${reason}.`, tone: 'error', canResume: true };
    default:
      if (!s.everOpened)
        return { text: `Cannot reach the coordinator at ${host}. Is it running?`, tone: 'error', canResume: true };
      return { text: `Connection lost (code ${s.closeCode ?? '?'}${reason}).`, tone: 'error', canResume: true };
  }
}
