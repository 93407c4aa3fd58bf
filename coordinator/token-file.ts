// The --tokens file: one named token per line (auth.ts parses it). Read at start, so
// a bad file is one line before anything listens; read again on SIGHUP and whenever
// the file changes, so removing a line revokes that token while the run goes on. A
// file that turns unreadable or invalid later leaves the tokens as they were, with a
// warning: a half-saved edit must not lock every volunteer out.

import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../shared/errors.js';
import { parseTokenFile } from './auth.js';

/** How often the file's metadata is checked for a change, in ms. */
const POLL_MS = 1000;

export function readTokenFile(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--tokens ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseTokenFile(text, file);
}

/**
 * Calls `apply` with the file's tokens on SIGHUP and on every change; `apply` returns
 * the names it revoked. Returns what stops watching.
 */
export function watchTokenFile(
  file: string,
  apply: (named: ReadonlyMap<string, string>) => readonly string[],
  log: Logger,
): () => void {
  const reload = (why: string): void => {
    let named: Map<string, string>;
    try {
      named = readTokenFile(file);
    } catch (err) {
      log.warn({ file, why, err: (err as Error).message }, 'tokens file not reloaded; the tokens stay as they were');
      return;
    }
    const revoked = apply(named);
    log.info({ file, why, tokens: named.size, revoked }, 'tokens reloaded');
  };
  const onHangup = (): void => reload('SIGHUP');
  process.on('SIGHUP', onHangup);
  // Polling, not fs.watch: editors that save by renaming a new file into place would
  // leave an inotify watch on the old one.
  watchFile(file, { interval: POLL_MS, persistent: false }, (now, before) => {
    if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino) reload('changed');
  });
  return () => {
    process.off('SIGHUP', onHangup);
    unwatchFile(file);
  };
}
