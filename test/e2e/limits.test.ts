// The probes of an exposed coordinator as regression tests, against the built CLI in
// real processes: peers without a token sending huge unfinished frames, idle TCP
// sockets, short tokens, and token holders that join first and then never answer.
// Each asserts what a user relies on (memory stays bounded, sockets are closed,
// training completes with `train`'s weights hash), never a duration.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { PROTOCOL_VERSION } from '../../shared/protocol/codes.js';
import { decodeCoordinatorMessage, encode } from '../../shared/protocol/codec.js';
import { messageBytes } from '../../shared/node/message-bytes.js';
import { CLI, coordinatorDone, oneLineError, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

const MB = 1 << 20;

/** VmRSS or VmHWM (peak RSS) of a process, in bytes, from /proc. */
function memory(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * A WebSocket upgrade by hand, then one binary frame announcing `frameBytes` and as
 * much of its payload as the server takes (never finished). Resolves when the server
 * has closed the connection, with the payload bytes it accepted from us.
 */
function unfinishedFrame(port: number, frameBytes: number): Promise<number> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let sent = 0;
    let upgraded = false;
    socket.on('error', () => {});
    socket.on('close', () => resolve(sent));
    socket.on('connect', () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      if (upgraded || !chunk.toString('latin1').startsWith('HTTP/1.1 101')) return;
      upgraded = true;
      // FIN + binary; masked, 64-bit length; a zero mask key.
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(frameBytes), 2);
      socket.write(header);
      const chunkOf = Buffer.alloc(MB);
      const pump = (): void => {
        while (!socket.destroyed && sent < frameBytes - MB) {
          sent += MB;
          if (!socket.write(chunkOf)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

describe('peers without a token', () => {
  it('10 sockets each sending an unfinished 68 MB frame (784-512-512-10, batch 512) add < 100 MB', async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator(['--hidden', '512,512', '--batch-size', '512', '--epochs', '1']);
    const pid = c.proc.pid;
    const before = memory(pid, 'VmRSS');
    // Peak RSS from now on (Linux: writing 5 to clear_refs resets VmHWM).
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const port = Number(new URL(c.url).port);
    const accepted = await Promise.all(Array.from({ length: 10 }, () => unfinishedFrame(port, 68_000_000)));
    const peak = memory(pid, 'VmHWM');
    expect(peak - before, `peak RSS ${peak / MB} MB, before ${before / MB} MB`).toBeLessThan(100 * MB);
    // The frame was refused from its header: nowhere near 68 MB of it went in.
    for (const bytes of accepted) expect(bytes).toBeLessThan(68_000_000 - MB);
    expect(c.proc.exit).toBeNull();
  });

  it('200 token holders that say hello and never read cost < 50 MB: the model waits for ready', async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator([
      ...['--hidden', '512,512', '--batch-size', '512', '--epochs', '1', '--log-level', 'debug'],
      ...['--min-workers', '1000', '--max-connections-per-ip', '256'],
    ]);
    const pid = c.proc.pid;
    const before = memory(pid, 'VmRSS');
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const agents = Array.from({ length: 200 }, (_, i) => `mute-${i}`);
    const sockets = agents.map((agent) => {
      const socket = new WebSocket(c.url);
      socket.on('error', () => {});
      socket.once('open', () => {
        socket.pause(); // reads nothing, ever
        socket.send(encode({ type: 'hello', protocol: PROTOCOL_VERSION, token: c.token, kind: 'node', agent }));
      });
      return socket;
    });
    // The coordinator's debug line for each welcome it sent.
    await Promise.all(agents.map((agent) => c.proc.waitForMsg('welcomed', (l) => l.agent === agent)));
    const peak = memory(pid, 'VmHWM');
    for (const s of sockets) s.terminate();
    expect(peak - before, `peak RSS ${peak / MB} MB, before ${before / MB} MB`).toBeLessThan(50 * MB);
  });

  it('20 idle TCP sockets are closed within --idle-timeout', async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator(['--dataset', 'blobs', '--idle-timeout', '1000']);
    const port = Number(new URL(c.url).port);
    const sockets = Array.from({ length: 20 }, () => connect(port, '127.0.0.1').on('error', () => {}));
    const allClosed = Promise.all(sockets.map((s) => new Promise((resolve) => s.once('close', resolve))));
    // Within the timeout plus the server's once-a-second check, with room for a loaded machine.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('idle sockets still open 12 s after a 1 s --idle-timeout')), 12_000);
    });
    try {
      await Promise.race([allClosed, late]);
    } finally {
      clearTimeout(timer);
    }
  });

  it('a low open-files limit lowers the connection cap, keeping descriptors for checkpoints', async () => {
    const sb = new Sandbox();
    const child = spawn(
      'prlimit',
      [
        '--nofile=300:300',
        '--',
        process.execPath,
        CLI,
        'coordinator',
        '--port',
        '0',
        '--dataset',
        'blobs',
        '--log-format',
        'json',
      ],
      { cwd: sb.dir, env: sb.env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let text = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
          for (const l of text.split('\n')) {
            if (!l.startsWith('{')) continue;
            const parsed = JSON.parse(l) as Record<string, unknown>;
            if (parsed.msg === 'join') reject(new Error('joined without lowering the connection cap'));
            if (String(parsed.msg).startsWith('fewer connections than asked')) resolve(parsed);
          }
        });
        child.once('exit', () => reject(new Error('the coordinator exited')));
      });
      expect(line).toMatchObject({ maxConnections: 172, asked: 512, openFilesLimit: 300 });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.each([
    ['a', 1],
    ['', 0],
  ])('--token %j is refused with one line', async (token, length) => {
    const r = await new Sandbox().run(['coordinator', '--token', token, '--port', '0']);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r.stderr)).toBe(
      `flocktrain: --token must be at least 16 characters (got ${length}); leave it out for a random one`,
    );
  });
});

/** A token holder that completes the handshake and then never answers a task (it reads, and pongs). */
async function stallingWorker(url: string, token: string, name: string): Promise<{ closed: Promise<number> }> {
  const socket = new WebSocket(url, { maxPayload: 1 << 30 });
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('open', () =>
      socket.send(encode({ type: 'hello', protocol: PROTOCOL_VERSION, token, kind: 'node', agent: name })),
    );
    socket.on('message', (data) => {
      const m = decodeCoordinatorMessage(messageBytes(data));
      if (m.type === 'welcome') socket.send(encode({ type: 'ready', datasetHash: m.dataset.hash }));
      if (m.type === 'weights') resolve();
    });
  });
  await ready;
  return { closed };
}

describe('token holders that never answer', () => {
  it("three stalling workers joining first do not stop training: each ejected or idle; train's hash", async () => {
    const run = ['--dataset', 'blobs', '--samples', '600', '--hidden', '32', '--batch-size', '64', '--shard-size', '8'];
    const sb = new Sandbox();
    const reference = sb.train([...run, '--epochs', '2']);
    // Default task deadlines: the point is that they do not hold the run.
    const c = await sb.coordinator([...run, '--epochs', '2', '--log-every', '1']);
    const stallers = [];
    for (const name of ['stall-1', 'stall-2', 'stall-3']) stallers.push(await stallingWorker(c.url, c.token, name));
    await c.proc.waitForMsg('worker joined', (l) => l.agent === 'stall-3');
    sb.worker(c, 'honest', ['--threads', '1']);
    const done = await coordinatorDone(c, 120_000);
    expect(done.weightsHash).toBe((await reference).weightsHash);
    // Each staller was ejected (4009) after missing deadlines in a row, unless its share
    // had shrunk to nothing first; then it idled harmlessly until the run's end (4000).
    const ejected = c.proc.linesWithMsg('rejected', (l) => l.reason === 'too_slow');
    expect(ejected.length).toBeGreaterThanOrEqual(1);
    const codes = await Promise.all(stallers.map((s) => s.closed));
    expect(codes.filter((code) => code === 4009)).toHaveLength(ejected.length);
    expect(codes.every((code) => code === 4009 || code === 4000)).toBe(true);
    expect(c.proc.linesWithMsg('epoch').map((l) => l.samples)).toEqual([480, 480]);
  });
});

describe('--allow-origin', () => {
  it('refuses what is not an origin with one line', async () => {
    const r = await new Sandbox().run(['coordinator', '--allow-origin', 'https://ok.example,train.example.org']);
    expect(oneLineError(r.stderr)).toBe(
      'flocktrain: --allow-origin: expected an origin like https://example.org, got "train.example.org"',
    );
  });
});

describe('--tokens FILE', () => {
  const ALICE = 'alice-token-0123456789';
  const BOB = 'bob-token-0123456789ab';

  it('a named token joins under its name; SIGHUP rereads the file; removing its line disconnects it', async () => {
    const sb = new Sandbox();
    const file = sb.path('tokens.txt');
    writeFileSync(file, `alice ${ALICE}\nbob ${BOB}\n`);
    // --min-workers 2: nothing trains, the run waits while the tokens change.
    const c = await sb.coordinator(['--dataset', 'blobs', '--tokens', file, '--min-workers', '2']);
    const alice = sb.worker({ url: c.url, token: ALICE }, 'alice-laptop', ['--threads', '1']);
    await c.proc.waitForMsg('worker joined', (l) => l.agent === 'alice-laptop [alice]');
    c.proc.signal('SIGHUP');
    await c.proc.waitForMsg('tokens reloaded', (l) => l.why === 'SIGHUP' && JSON.stringify(l.revoked) === '[]');
    writeFileSync(file, `bob ${BOB}\n`);
    await c.proc.waitForMsg('tokens reloaded', (l) => l.why === 'changed' && JSON.stringify(l.revoked) === '["alice"]');
    expect((await alice.waitForExit()).code).toBe(1);
    expect(oneLineError(alice.stderr)).toBe(
      `flocktrain: the coordinator at ${new URL(c.url).host} refused the token (token revoked)`,
    );
    expect(c.proc.exit).toBeNull();
  });

  it('a tokens file with a short token is one line, before anything listens', async () => {
    const sb = new Sandbox();
    const file = sb.path('tokens.txt');
    writeFileSync(file, `alice ${ALICE}\nbob tiny\n`);
    const r = await sb.run(['coordinator', '--dataset', 'blobs', '--tokens', file, '--port', '0']);
    expect(oneLineError(r.stderr)).toBe(`flocktrain: ${file}:2: the token of bob must be at least 16 characters`);
  });
});
