// Writing a file so that its path holds either the whole new file or what was there
// before, never a prefix: the bytes go to a temp file beside it, every byte is written
// (a full disk makes write(2) return short before it fails), the file is fsynced, read
// back and checked against the size and SHA-256 of what was meant, and only then
// renamed into place; the directory is fsynced so the rename survives a crash. On any
// failure the temp file is removed, so a failed write does not keep the space it took.
//
// Not for large streaming writes: the caller holds the whole file in memory.

import { createHash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * errno codes of exhausted resources: space, quota or descriptors. Freeing them (an old
 * file deleted, a socket closed) lets a later write succeed, so a caller that writes
 * periodically may skip one write instead of giving up.
 */
const EXHAUSTED: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE']);

/** A write that did not put a verified file in place; the path is unchanged. */
export class DurableWriteError extends Error {
  /** The errno code (ENOSPC, EMFILE, EACCES, …), or VERIFY when the bytes read back differ. */
  readonly reason: string;

  constructor(path: string, reason: string, detail?: string) {
    super(`cannot write ${path}: ${reason}${detail === undefined ? '' : ` (${detail})`}`);
    this.name = 'DurableWriteError';
    this.reason = reason;
  }

  /** Whether a later attempt may succeed once space or descriptors are freed. */
  get exhausted(): boolean {
    return EXHAUSTED.has(this.reason) || this.reason === 'VERIFY';
  }
}

/** Read-back chunk size: bounded memory whatever the file size. */
const CHUNK = 1 << 20;

/** Writes `bytes` to `path` durably (see the file header); throws DurableWriteError. */
export function writeFileDurably(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const digest = sha256(bytes);
  try {
    writeAll(tmp, bytes);
    verify(tmp, bytes.byteLength, digest);
    renameSync(tmp, path);
  } catch (err) {
    removeQuietly(tmp);
    throw asWriteError(path, err);
  }
  try {
    syncDirectory(dirname(path));
  } catch (err) {
    throw asWriteError(path, err);
  }
}

/**
 * Throws DurableWriteError unless a file can be created in `path`'s directory: it
 * exists, is a directory and is writable (root passes permission bits, not a read-only
 * mount, so this creates and removes a probe file rather than asking access(2)).
 */
export function checkWritableDirectory(path: string): void {
  const dir = dirname(resolve(path));
  try {
    if (!statSync(dir).isDirectory()) throw new DurableWriteError(path, 'ENOTDIR', `${dir} is not a directory`);
    const probe = `${resolve(path)}.probe-${process.pid}`;
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (err) {
    if (err instanceof DurableWriteError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new DurableWriteError(path, code ?? 'EIO', code === 'ENOENT' ? `${dir} does not exist` : dir);
  }
  try {
    if (statSync(path).isDirectory()) throw new DurableWriteError(path, 'EISDIR', 'it is a directory');
  } catch (err) {
    if (err instanceof DurableWriteError) throw err;
    /* no file there yet: fine */
  }
}

function writeAll(tmp: string, bytes: Uint8Array): void {
  const fd = openSync(tmp, 'w');
  try {
    let at = 0;
    while (at < bytes.byteLength) {
      const n = writeSync(fd, bytes, at, bytes.byteLength - at);
      // write(2) returning 0 for a non-empty buffer means no room: the kernel's ENOSPC in all but name.
      if (n <= 0) throw Object.assign(new Error('write returned 0'), { code: 'ENOSPC' });
      at += n;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads `tmp` back: its size and SHA-256 must be what was written. */
function verify(tmp: string, size: number, digest: string): void {
  const fd = openSync(tmp, 'r');
  try {
    const got = fstatSync(fd).size;
    if (got !== size) throw new VerifyFailure(`${got} of ${size} bytes on disk`);
    const hash = createHash('sha256');
    const chunk = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
    let at = 0;
    while (at < size) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.byteLength, size - at), at);
      if (n === 0) throw new VerifyFailure(`read back ${at} of ${size} bytes`);
      hash.update(chunk.subarray(0, n));
      at += n;
    }
    if (hash.digest('hex') !== digest) throw new VerifyFailure('the bytes read back differ from those written');
  } finally {
    closeSync(fd);
  }
}

class VerifyFailure extends Error {}

function asWriteError(path: string, err: unknown): DurableWriteError {
  if (err instanceof DurableWriteError) return err;
  if (err instanceof VerifyFailure) return new DurableWriteError(path, 'VERIFY', err.message);
  const code = (err as NodeJS.ErrnoException).code;
  return new DurableWriteError(path, code ?? 'EIO', code === undefined ? (err as Error).message : undefined);
}

/** Makes a rename in `dir` durable. Platforms that cannot open or fsync a directory are let off. */
function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (isUnsupported(err)) return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!isUnsupported(err)) throw err;
  } finally {
    closeSync(fd);
  }
}

function isUnsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EINVAL' || code === 'ENOTSUP' || code === 'EPERM';
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* never created, or already gone */
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
