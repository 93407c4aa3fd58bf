// Files that survive a full disk, on real small tmpfs mounts: a truncated checkpoint
// is never renamed into place, a full disk mid-run skips checkpoints with a warning
// and keeps the last good one (and --resume from it ends with the uninterrupted run's
// hash), a final --out that fails leaves a rescue checkpoint and says where, and --out
// into a read-only or missing directory fails before training with one line. Running
// out of descriptors (a child process under `ulimit -n`) skips a checkpoint too.
//
// Mounting needs root: without it the tmpfs suite is skipped loudly (a failure under CI=true).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckpointWriteError,
  CheckpointWriter,
  listCheckpoints,
  loadLatestCheckpoint,
  writeCheckpoint,
  type Checkpoint,
} from '../../coordinator/checkpoint.js';
import { resolveConfig } from '../../coordinator/config.js';
import { DurableWriteError, writeFileDurably } from '../../coordinator/durable-file.js';
import { prepareRun, type PreparedRun } from '../../coordinator/setup.js';
import { CheckpointError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/init.js';
import { CLI, oneLineError, Sandbox, useE2eCleanup, WARN } from '../e2e/harness.js';
import { describeNeeding } from '../support/describe-needing.js';

useE2eCleanup();

const PAGE = 4096;

/** Whether this process can mount a tmpfs (root, and mount(2) allowed here). */
function tmpfsRequirement() {
  const root = process.getuid?.() === 0;
  let detail = 'not root: mounting a tmpfs needs root';
  if (root) {
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-tmpfs-probe-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
      execFileSync('umount', [dir]);
      detail = '';
    } catch (err) {
      detail = `cannot mount a tmpfs: ${String((err as Error).message).split('\n')[0]}`;
    } finally {
      rmdirSync(dir);
    }
  }
  return { present: detail === '', missing: detail, install: 'run the tests as root (sudo, or CI)' };
}

const mounts: string[] = [];
afterEach(() => {
  for (const dir of mounts.splice(0)) {
    execFileSync('umount', [dir]);
    rmdirSync(dir);
  }
});

/** A fresh tmpfs of `bytes` (rounded up to pages by the kernel), unmounted after the test. */
function tmpfs(bytes: number, options = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'flocktrain-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}${options}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Fills the file system holding `dir` to the last byte. */
function fill(dir: string): void {
  const chunk = new Uint8Array(PAGE);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), chunk);
    } catch {
      return;
    }
  }
}

function pages(bytes: number): number {
  return Math.ceil(bytes / PAGE) * PAGE;
}

function smallRun(): PreparedRun {
  return prepareRun(
    resolveConfig({ data: { kind: 'synthetic', name: 'blobs', samples: 200 }, hidden: [256], batchSize: 20 }),
  );
}

function identity(r: PreparedRun) {
  return { spec: r.spec, config: r.config, datasetHash: r.datasetHash };
}

function sample(r: PreparedRun, step: number): Checkpoint {
  const params = initParams(r.spec, r.config.seed);
  const state = { epoch: 0, stepInEpoch: step, globalStep: step, version: step };
  return {
    state: { ...state, epochLossSum: 1, epochCorrect: 2, epochSamples: 20, epochSeconds: 0.5 },
    params,
    optimizer: { momentum: params.map((v) => v / 2) },
  };
}

/** A pino logger whose lines land in an array. */
function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

/** The byte size of `sample(r, step)` as a checkpoint file. */
function checkpointBytes(r: PreparedRun): number {
  const dir = mkdtempSync(join(tmpdir(), 'flocktrain-size-'));
  return statSync(writeCheckpoint(dir, identity(r), sample(r, 1), 1)).size;
}

describeNeeding(tmpfsRequirement(), 'durable files on a full disk (tmpfs)', () => {
  it('a write that does not fit leaves nothing at the path and no temp file behind', () => {
    const dir = tmpfs(2 * PAGE);
    const path = join(dir, 'big.bin');
    let error: unknown = null;
    try {
      writeFileDurably(path, new Uint8Array(5 * PAGE).fill(7));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DurableWriteError);
    expect((error as DurableWriteError).reason).toBe('ENOSPC');
    expect((error as DurableWriteError).exhausted).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a checkpoint on a full disk is never renamed into place truncated, and the good one stays', () => {
    const r = smallRun();
    const size = checkpointBytes(r);
    // Room for one checkpoint and half of the next: the second write runs out mid-file.
    const dir = tmpfs(pages(size) + pages(size / 2));
    writeCheckpoint(dir, identity(r), sample(r, 1), 1);
    expect(() => writeCheckpoint(dir, identity(r), sample(r, 2), 1)).toThrow(CheckpointWriteError);
    expect(readdirSync(dir)).toEqual(['ckpt-000000001.safetensors']);
    expect(loadLatestCheckpoint(dir, identity(r)).checkpoint.state.globalStep).toBe(1);
  });

  it('CheckpointWriter skips a checkpoint with a warn while a good one remains, and fails without one', () => {
    const r = smallRun();
    const dir = tmpfs(pages(checkpointBytes(r)) * 3);
    const { log, lines } = capture();
    const writer = new CheckpointWriter(identity(r), log);
    expect(writer.save(dir, sample(r, 1), 1)).toBe(join(dir, 'ckpt-000000001.safetensors'));
    fill(dir);
    expect(writer.save(dir, sample(r, 2), 1)).toBeNull();
    const warn = lines.find((l) => l.msg === 'checkpoint skipped');
    expect(warn?.level).toBe(WARN);
    expect(warn?.kept).toBe(join(dir, 'ckpt-000000001.safetensors'));
    expect(String(warn?.err)).toMatch(/ENOSPC/);
    expect(listCheckpoints(dir)).toEqual(['ckpt-000000001.safetensors']);

    // A new writer (a resumed run) falls back on the checkpoint it finds in the directory.
    expect(new CheckpointWriter(identity(r), log).save(dir, sample(r, 3), 1)).toBeNull();

    // With no good checkpoint at all, a full disk ends the run with one line.
    const empty = tmpfs(PAGE);
    fill(empty);
    let message = '';
    try {
      new CheckpointWriter(identity(r), log).save(empty, sample(r, 1), 1);
    } catch (err) {
      expect(err).toBeInstanceOf(CheckpointError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/ENOSPC.*no good checkpoint/);
    expect(message).not.toContain('\n');
  });

  it('frees the space a killed write left in a temp file before writing the next checkpoint', () => {
    const r = smallRun();
    const dir = tmpfs(pages(checkpointBytes(r)) * 2);
    const dead = spawnSync('true').pid;
    const stale = join(dir, `ckpt-000000004.safetensors.tmp-${dead}`);
    writeFileSync(stale, new Uint8Array(pages(checkpointBytes(r)) * 2 - PAGE));
    const { log } = capture();
    expect(new CheckpointWriter(identity(r), log).save(dir, sample(r, 5), 1)).toBe(
      join(dir, 'ckpt-000000005.safetensors'),
    );
    expect(readdirSync(dir)).toEqual(['ckpt-000000005.safetensors']);
  });

  describe('flocktrain train', () => {
    const flags = ['--dataset', 'blobs', '--samples', '200', '--hidden', '256', '--batch-size', '20', '--epochs', '2'];

    it('a full disk mid-run skips checkpoints with a warning, keeps the good one; --resume from it works', async () => {
      const sb = new Sandbox();
      const reference = await sb.train(flags);
      const size = checkpointBytes(smallRun());
      const dir = tmpfs(pages(size) + pages(size / 2));
      const ckpt = ['--checkpoint-dir', dir, '--checkpoint-every', '1', '--keep-checkpoints', '1'];
      const full = await sb.train([...flags, ...ckpt]);
      expect(full.weightsHash).toBe(reference.weightsHash);
      expect(listCheckpoints(dir)).toEqual(['ckpt-000000001.safetensors']);
      expect(readdirSync(dir)).toEqual(['ckpt-000000001.safetensors']);

      const resumed = await sb.run(['train', '--log-format', 'json', ...flags, '--resume', dir]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.lines.find((l) => l.msg === 'resuming')?.step).toBe(1);
      expect(resumed.lines.some((l) => l.msg === 'checkpoint skipped' && l.level === WARN)).toBe(true);
      expect(resumed.lines.find((l) => l.msg === 'done')?.weightsHash).toBe(reference.weightsHash);
    });

    it('--out into a read-only or missing directory fails with one line before any training', async () => {
      const sb = new Sandbox();
      const readOnly = tmpfs(16 * PAGE, ',ro');
      for (const out of [join(readOnly, 'model.safetensors'), sb.path('missing/model.safetensors')]) {
        const r = await sb.run(['train', '--log-format', 'json', ...flags, '--out', out]);
        expect(r.code).toBe(1);
        expect(oneLineError(r.stderr)).toContain(out);
        expect(r.lines.filter((l) => l.msg === 'step')).toEqual([]);
      }
      expect(oneLineError((await sb.run(['train', ...flags, '--out', join(readOnly, 'm')])).stderr)).toMatch(/EROFS/);
      // The coordinator checks before it listens.
      const c = await sb.run([
        'coordinator',
        '--port',
        '0',
        '--log-format',
        'json',
        ...flags,
        '--out',
        join(readOnly, 'm'),
      ]);
      expect(c.code).toBe(1);
      expect(oneLineError(c.stderr)).toMatch(/EROFS/);
      expect(c.lines.filter((l) => l.msg === 'join')).toEqual([]);
    });

    it('a final --out that fails leaves a rescue checkpoint, says where, and it gives the model file', async () => {
      const sb = new Sandbox();
      const reference = await sb.train(flags);
      const outDir = tmpfs(PAGE); // the directory is writable, the model file does not fit
      const out = join(outDir, 'model.safetensors');
      const r = await sb.run(['train', '--log-format', 'json', ...flags, '--out', out]);
      expect(r.code).toBe(1);
      const line = oneLineError(r.stderr);
      expect(line).toMatch(/ENOSPC/);
      const rescue = /saved in (\S+);/.exec(line)?.[1];
      expect(rescue, line).toBeDefined();
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(outDir)).toEqual([]);

      const again = await sb.train([...flags, '--resume', join(rescue!, '..'), '--out', sb.path('model.safetensors')]);
      expect(again.weightsHash).toBe(reference.weightsHash);
      expect(statSync(sb.path('model.safetensors')).size).toBeGreaterThan(0);
    });
  });
});

describe('running out of descriptors', () => {
  it('skips one checkpoint with a warn (EMFILE) and writes the next once descriptors are free', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flocktrain-emfile-'));
    mkdirSync(join(dir, 'ckpt'));
    const checkpointModule = new URL('../checkpoint.js', pathToFileURL(CLI)).href;
    // In a child under `ulimit -n`: write one checkpoint, use up every descriptor, try
    // another, free them, try a third. Prints the three results and the log lines.
    const script = `
      import { openSync, closeSync } from 'node:fs';
      import { pino } from 'pino';
      import { CheckpointWriter } from ${JSON.stringify(checkpointModule)};
      const { id, ckpt, dir } = JSON.parse(process.env.CKPT);
      const lines = [];
      const log = pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) });
      const writer = new CheckpointWriter(id, log);
      const state = (step) => ({ ...ckpt.state, globalStep: step, version: step });
      const params = Float32Array.from(ckpt.params);
      const save = (step) => writer.save(dir, { state: state(step), params, optimizer: {} }, 3);
      const first = save(1);
      const held = [];
      try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (err) { if (err.code !== 'EMFILE') throw err; }
      const second = save(2);
      for (const fd of held) closeSync(fd);
      const third = save(3);
      process.stdout.write(JSON.stringify({ first, second, third, held: held.length, lines }));
    `;
    const r = smallRun();
    const s = sample(r, 1);
    const env = {
      ...process.env,
      CKPT: JSON.stringify({
        id: identity(r),
        ckpt: { state: s.state, params: [...s.params] },
        dir: join(dir, 'ckpt'),
      }),
    };
    const child = spawnSync(
      'bash',
      ['-c', `ulimit -n 64 && exec "${process.execPath}" --input-type=module -e "$0"`, script],
      { env, cwd: join(CLI, '../../../..'), encoding: 'utf8' },
    );
    expect(child.status, child.stderr).toBe(0);
    const out = JSON.parse(child.stdout) as {
      first: string;
      second: string | null;
      third: string;
      held: number;
      lines: { level: number; msg: string; err?: string }[];
    };
    expect(out.held).toBeGreaterThan(0);
    expect(out.first).toMatch(/ckpt-000000001/);
    expect(out.second).toBeNull();
    expect(out.third).toMatch(/ckpt-000000003/);
    const skipped = out.lines.find((l) => l.msg === 'checkpoint skipped');
    expect(skipped?.level).toBe(WARN);
    expect(skipped?.err).toMatch(/EMFILE/);
    expect(readdirSync(join(dir, 'ckpt')).sort()).toEqual(['ckpt-000000001.safetensors', 'ckpt-000000003.safetensors']);
  });
});
