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
//
// Primed (--weights-prime-url naming nginx), the coordinator fetches each version through
// nginx before any task names it: nginx's log then shows the coordinator's MISS of each
// version ending before any worker's request of it begins, and every worker's request a HIT,
// so none waited on the cache lock. A prime URL that answers 502 costs one log line, not the run.

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
  log_format flocktrain_cache '$msec $request_method $uri $status $upstream_cache_status $body_bytes_sent '
    '$request_time "$http_user_agent"';

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

interface FrontPorts {
  /** nginx as docs/scaling.md configures it. */
  readonly port: number;
  /** A front whose /weights/ always answers 502. */
  readonly brokenPort: number;
}

/** Two distinct free ports for nginx: chosen before the coordinator starts when it is to prime them. */
async function frontPorts(): Promise<FrontPorts> {
  const port = await closedPort();
  let brokenPort = await closedPort();
  while (brokenPort === port) brokenPort = await closedPort();
  return { port, brokenPort };
}

/** Starts nginx in front of the coordinator on `upstream`; stopped by the returned function. */
async function startNginx(
  sb: Sandbox,
  upstream: number,
  ports?: FrontPorts,
): Promise<FrontPorts & { prefix: string; stop: () => Promise<void> }> {
  const prefix = sb.path('nginx');
  mkdirSync(`${prefix}/tmp`, { recursive: true });
  const { port, brokenPort } = ports ?? (await frontPorts());
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

/** One line of nginx's weights log (the flocktrain_cache format). */
interface CacheLogLine {
  /** When nginx finished the request, and how long it took, in ms (nginx's clock, ms resolution). */
  readonly endMs: number;
  readonly startMs: number;
  readonly method: string;
  readonly uri: string;
  readonly status: number;
  /** MISS, HIT, … ($upstream_cache_status) */
  readonly cache: string;
  readonly bytes: number;
  readonly agent: string;
}

function cacheLog(prefix: string): CacheLogLine[] {
  return readFileSync(`${prefix}/weights.log`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^(\d+\.\d{3}) (\S+) (\S+) (\d+) (\S+) (\d+) (\d+\.\d{3}) "(.*)"$/.exec(l);
      if (m === null) throw new Error(`unexpected nginx log line: ${l}`);
      const endMs = Math.round(Number(m[1]) * 1000);
      return {
        endMs,
        startMs: endMs - Math.round(Number(m[7]) * 1000),
        method: m[2],
        uri: m[3],
        status: Number(m[4]),
        cache: m[5],
        bytes: Number(m[6]),
        agent: m[8],
      };
    });
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
      const log = cacheLog(proxy.prefix).filter((l) => l.method === 'GET' && l.uri.startsWith('/weights/'));
      expect(log).toHaveLength(fetches);
      const bytes = Number(c.proc.linesWithMsg('weights served')[0].bytes);
      expect(log.filter((l) => l.status === 200 && l.cache === 'MISS' && l.bytes === bytes)).toHaveLength(steps);
      expect(log.filter((l) => l.status === 200 && l.cache === 'HIT' && l.bytes === bytes)).toHaveLength(
        fetches - steps,
      );
    } finally {
      await proxy.stop();
    }
  }, 180_000);

  it(`${WORKERS} workers behind nginx, primed: every worker request a HIT, none waiting on the lock`, async () => {
    const sb = new Sandbox();
    const reference = sb.train(RUN);
    const ports = await frontPorts();
    const c = await sb.coordinator([
      ...RUN,
      '--weights-over-http',
      '--weights-prime-url',
      `http://127.0.0.1:${ports.port}`,
      '--min-workers',
      String(WORKERS),
      '--probation',
      '0',
      '--audit-rate',
      '0',
      '--log-level',
      'debug',
    ]);
    const proxy = await startNginx(sb, Number(new URL(c.url).port), ports);
    try {
      const url = `ws://127.0.0.1:${proxy.port}`;
      const workers = Array.from({ length: WORKERS }, (_, i) =>
        sb.worker({ url, token: c.token }, `primed-${i + 1}`, ['--log-level', 'debug', '--threads', '1']),
      );
      const done = await coordinatorDone(c, 120_000);
      for (const w of workers) expect((await w.waitForExit()).code, `worker stderr: ${w.stderr}`).toBe(0);
      expect(done.weightsHash).toBe((await reference).weightsHash);
      const steps = Number(done.steps);
      expect(steps).toBe(20);

      // Each version left the coordinator exactly once, to its prime (the final one, which no task names, may be
      // primed too, or abandoned as the run closes).
      const served = c.proc.linesWithMsg('weights served').map((l) => Number(l.version));
      expect(new Set(served).size).toBe(served.length);
      for (let v = 0; v < steps; v++) expect(served).toContain(v);
      expect(served.every((v) => v <= steps)).toBe(true);
      expect(c.proc.linesWithMsg('weights served over HTTP')[0]).toMatchObject({ maxBodiesPerVersion: 1 });
      const primed = c.proc.linesWithMsg('weights primed').map((l) => Number(l.version));
      for (let v = 0; v < steps; v++) expect(primed).toContain(v);
      expect(c.proc.lines.filter((l) => Number(l.level) >= 40)).toEqual([]);

      // In nginx's log: per version, the coordinator's request a MISS, and every worker's a HIT that began after the
      // prime had ended: none of them waited on the lock for another request's fetch.
      const log = cacheLog(proxy.prefix).filter((l) => l.method === 'GET' && l.uri.startsWith('/weights/'));
      const bytes = Number(c.proc.linesWithMsg('weights served')[0].bytes);
      const fetches = workers.reduce((sum, w) => sum + fetched(w).length, 0);
      expect(log.filter((l) => l.agent !== 'flocktrain-prime')).toHaveLength(fetches);
      for (let v = 0; v < steps; v++) {
        const lines = log.filter((l) => l.uri.startsWith(`/weights/${v}-`));
        const primes = lines.filter((l) => l.agent === 'flocktrain-prime');
        expect(primes, `version ${v}`).toHaveLength(1);
        expect(primes[0], `version ${v}`).toMatchObject({ status: 200, cache: 'MISS', bytes });
        for (const l of lines.filter((x) => x.agent !== 'flocktrain-prime')) {
          expect(l, `version ${v}`).toMatchObject({ status: 200, cache: 'HIT', bytes });
          expect(l.startMs, `version ${v}: a worker's request began before the prime ended`).toBeGreaterThanOrEqual(
            primes[0].endMs,
          );
        }
      }
      // Every worker computed with the first version, fetched from the cache.
      for (const w of workers) expect(fetched(w, 'task')[0]).toBe(0);
    } finally {
      await proxy.stop();
    }
  }, 180_000);

  it('weights that never arrive cost deadlines, an unprimable cache one log line; the run ends as train', async () => {
    const sb = new Sandbox();
    const reference = sb.train(RUN);
    // Short deadlines: every task of the worker that cannot fetch is handed on when its deadline passes. The prime
    // goes to the broken front too: a cache that cannot be primed costs one log line.
    const ports = await frontPorts();
    const c = await sb.coordinator([
      ...RUN,
      '--weights-over-http',
      '--weights-prime-url',
      `http://127.0.0.1:${ports.brokenPort}`,
      '--min-workers',
      '2',
      '--task-timeout-min',
      '300',
      '--task-timeout-max',
      '1000',
    ]);
    const proxy = await startNginx(sb, Number(new URL(c.url).port), ports);
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
      // Every prime failed, and the coordinator said so once.
      const unprimed = c.proc.linesWithMsg(
        'cannot prime the cache with the weights; tasks go out anyway, and workers may wait on its lock',
      );
      expect(unprimed).toHaveLength(1);
      expect(unprimed[0]).toMatchObject({ version: 0, url: `http://127.0.0.1:${ports.brokenPort}` });
      expect(String(unprimed[0].err)).toMatch(/^GET \/weights\/0-[0-9a-f]+… answered 502 Bad Gateway$/);
      expect(c.proc.linesWithMsg('weights prime works again')).toEqual([]);
    } finally {
      await proxy.stop();
    }
  }, 180_000);
});
