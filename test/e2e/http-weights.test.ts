// Weights through an ordinary HTTP cache, end to end: Debian's nginx runs as a caching
// reverse proxy (its own prefix dir, an unprivileged port, proxy_cache with
// proxy_cache_lock, WebSocket upgrades passed through) in front of a coordinator
// started with --weights-over-http, and three worker processes join through it. The
// coordinator must have sent each weights version at most once while the workers
// between them fetched every version, some from nginx's cache, and the run must end
// with `flocktrain train`'s weights hash. (Not every worker needs every version: the
// scheduler may leave a worker it measures as slower without a task for a step, and then
// it fetches nothing. nginx's cache lock makes the workers that wait on the first one's
// fetch look slower; docs/scaling.md says what that costs.) The nginx configuration is the one
// docs/scaling.md gives, with this test's ports and paths filled in.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { expect, it, vi } from 'vitest';
import { describeNeeding } from '../support/describe-needing.js';
import { type CliProcess, closedPort, coordinatorDone, Sandbox, useE2eCleanup } from './harness.js';

useE2eCleanup();

const NGINX = '/usr/sbin/nginx';

const nginx = {
  present: existsSync(NGINX),
  missing: `${NGINX} is missing`,
  install: 'apt-get install -y nginx',
};

// 6 shards per step, so each of the 3 workers has a task (and needs the weights) every step.
const RUN = [
  '--dataset',
  'blobs',
  '--samples',
  '600',
  '--hidden',
  '32',
  '--epochs',
  '2',
  '--batch-size',
  '48',
  '--shard-size',
  '8',
];
const WORKERS = 3;

/** nginx's proxying of everything but the weights, as docs/scaling.md gives it. */
const PASS_THROUGH = `
      proxy_pass http://flocktrain;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;`;

/**
 * docs/scaling.md's nginx configuration, for a coordinator on `upstream` and nginx on `listen`, under `prefix`; and on
 * `broken`, a second front whose every weights request fails (a cache that is down), for the fault test.
 */
function nginxConf(prefix: string, listen: number, upstream: number, broken: number): string {
  return `
daemon off;
# One process: as root too, it then never switches to a user who could not read this temp dir.
master_process off;
pid ${prefix}/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;

  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=flocktrain_weights:10m
    max_size=1g inactive=1h use_temp_path=off;
  log_format flocktrain_cache '$request_method $uri $status $upstream_cache_status $body_bytes_sent';

  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }

  upstream flocktrain {
    server 127.0.0.1:${upstream};
    keepalive 16;
  }

  server {
    listen 127.0.0.1:${listen};

    location /weights/ {
      proxy_pass http://flocktrain;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache flocktrain_weights;
      proxy_cache_valid 200 1y;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_lock_age 10s;
      add_header X-Cache-Status $upstream_cache_status always;
      access_log ${prefix}/weights.log flocktrain_cache;
    }

    location / {${PASS_THROUGH}
    }
  }

  server {
    listen 127.0.0.1:${broken};
    location /weights/ {
      return 502;
    }
    location / {${PASS_THROUGH}
    }
  }
}
`;
}

/** Resolves once something accepts TCP connections on the port (nginx has no readiness line of its own). */
async function listening(port: number, nginxProc: ChildProcess): Promise<void> {
  await vi.waitFor(
    () =>
      new Promise<void>((resolve, reject) => {
        if (nginxProc.exitCode !== null) throw new Error(`nginx exited (${nginxProc.exitCode})`);
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      }),
    { timeout: 15_000, interval: 50 },
  );
}

/** Starts nginx in front of the coordinator on `upstream`; stopped by the returned function. */
async function startNginx(
  sb: Sandbox,
  upstream: number,
): Promise<{ port: number; brokenPort: number; prefix: string; stop: () => Promise<void> }> {
  const prefix = sb.path('nginx');
  mkdirSync(`${prefix}/tmp`, { recursive: true });
  const port = await closedPort();
  let brokenPort = await closedPort();
  while (brokenPort === port) brokenPort = await closedPort();
  writeFileSync(`${prefix}/nginx.conf`, nginxConf(prefix, port, upstream, brokenPort));
  const proc = spawn(NGINX, ['-p', prefix, '-e', `${prefix}/error.log`, '-c', `${prefix}/nginx.conf`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  try {
    await listening(port, proc);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`nginx did not start: ${(err as Error).message}\n${stderr}`);
  }
  return {
    port,
    brokenPort,
    prefix,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** Versions a worker's debug log says it fetched (and checked against their hash), for tasks, or for anything. */
function fetched(w: CliProcess, only?: 'task'): number[] {
  return w.linesWithMsg('weights fetched', (l) => only === undefined || l.for === only).map((l) => Number(l.version));
}

describeNeeding(nginx, 'weights through an nginx cache', () => {
  it(`${WORKERS} workers behind nginx: each version leaves the coordinator once; train's hash`, async () => {
    const sb = new Sandbox();
    const reference = sb.train(RUN);
    const c = await sb.coordinator([
      ...RUN,
      '--weights-over-http',
      '--min-workers',
      String(WORKERS),
      // Few audits (each worker's first results past probation only): a check is one more fetch, from the cache.
      '--probation',
      '0',
      '--audit-rate',
      '0',
      '--log-level',
      'debug',
    ]);
    const upstream = Number(new URL(c.url).port);
    const proxy = await startNginx(sb, upstream);
    try {
      const url = `ws://127.0.0.1:${proxy.port}`;
      const workers = Array.from({ length: WORKERS }, (_, i) =>
        sb.worker({ url, token: c.token }, `cached-${i + 1}`, ['--log-level', 'debug', '--threads', '1']),
      );
      const done = await coordinatorDone(c, 120_000);
      for (const w of workers) expect((await w.waitForExit()).code, `worker stderr: ${w.stderr}`).toBe(0);

      // (b) The same weights as one process computes.
      expect(done.weightsHash).toMatch(/^[0-9a-f]{64}$/);
      expect(done.weightsHash).toBe((await reference).weightsHash);

      // (a) The coordinator sent each version the run computed with (one per step) exactly once ...
      const servedLines = c.proc.linesWithMsg('weights served').map((l) => Number(l.version));
      const steps = Number(done.steps);
      expect(steps).toBe(20);
      expect([...servedLines].sort((a, b) => a - b)).toEqual(Array.from({ length: steps }, (_, v) => v));
      const summary = c.proc.linesWithMsg('weights served over HTTP');
      expect(summary).toHaveLength(1);
      expect(summary[0]).toMatchObject({ bodies: steps, maxBodiesPerVersion: 1 });
      // ... while the workers received it as often as they needed it: every worker the first
      // version (each has a task in the first step), and each later one the workers the
      // scheduler gave a task at it (a worker it judges slower may stand by for a step).
      const got = workers.map((w) => fetched(w, 'task'));
      for (const [i, versions] of got.entries()) {
        expect(new Set(versions).size, `worker ${i + 1} fetched a version twice: ${versions}`).toBe(versions.length);
        expect(versions[0], `worker ${i + 1}`).toBe(0);
        for (const v of versions) expect(servedLines).toContain(v);
      }
      expect(got.reduce((sum, versions) => sum + versions.length, 0)).toBeGreaterThanOrEqual(steps + WORKERS - 1);
      const fetches = workers.reduce((sum, w) => sum + fetched(w).length, 0);
      // nginx fetched each version once (MISS) and answered every other request from its cache.
      const log = readFileSync(`${proxy.prefix}/weights.log`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('GET /weights/'));
      expect(log).toHaveLength(fetches);
      const bytes = ` ${Number(c.proc.linesWithMsg('weights served')[0].bytes)}`;
      expect(log.filter((l) => l.endsWith(` 200 MISS${bytes}`))).toHaveLength(steps);
      expect(log.filter((l) => l.endsWith(` 200 HIT${bytes}`))).toHaveLength(fetches - steps);
    } finally {
      await proxy.stop();
    }
  }, 180_000);

  it('a worker whose weights never arrive costs deadlines, not the run, which ends as train ends', async () => {
    const sb = new Sandbox();
    const reference = sb.train(RUN);
    // Short deadlines: every task of the worker that cannot fetch is handed on when its deadline passes.
    const c = await sb.coordinator([
      ...RUN,
      '--weights-over-http',
      '--min-workers',
      '2',
      '--task-timeout-min',
      '300',
      '--task-timeout-max',
      '1000',
    ]);
    const proxy = await startNginx(sb, Number(new URL(c.url).port));
    try {
      const good = sb.worker({ url: `ws://127.0.0.1:${proxy.port}`, token: c.token }, 'good', ['--threads', '1']);
      const cut = sb.worker({ url: `ws://127.0.0.1:${proxy.brokenPort}`, token: c.token }, 'cut', ['--threads', '1']);
      const done = await coordinatorDone(c, 120_000);
      expect(done.weightsHash).toBe((await reference).weightsHash);
      expect((await good.waitForExit()).code, `worker stderr: ${good.stderr}`).toBe(0);
      // The cut worker said why, and stayed a worker: no close of its own, no protocol error.
      const failed = cut.linesWithMsg(
        'cannot fetch the weights; this task is left to its deadline, when the coordinator hands it on',
      );
      expect(failed.length).toBeGreaterThan(0);
      expect(String(failed[0].err)).toMatch(/^GET \/weights\/0-[0-9a-f]+… answered 502 Bad Gateway$/);
      expect(cut.stderr).not.toMatch(/dropped the coordinator/);
      // Its shards went to the other worker when their deadlines passed.
      expect(c.proc.linesWithMsg('task deadline missed; handing its shards to others').length).toBeGreaterThan(0);
    } finally {
      await proxy.stop();
    }
  }, 180_000);
});
