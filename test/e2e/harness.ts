// End-to-end harness: runs the built CLI (dist/coordinator/cli/bin.js) as real child
// processes, parses their JSON log lines as they arrive, and lets a test wait for a
// line, signal a process, or wait for its exit. Every process and temp dir made here
// is tracked and torn down by `useE2eCleanup` after each test, pass or fail,
// together with any processes they spawned (the coordinator's --workers children run
// in their own process groups, so they are found through /proc, not a group kill).
//
// Not a test file; it assumes dist/ is built (`npx tsc -p tsconfig.json`).
// FLOCKTRAIN_E2E_CLI=/path/to/cli.js runs another build instead (e.g. a private
// snapshot while others rebuild dist/ in the same checkout).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect, vi } from 'vitest';

export const CLI =
  process.env.FLOCKTRAIN_E2E_CLI ?? fileURLToPath(new URL('../../dist/coordinator/cli/bin.js', import.meta.url));

/** ms a wait gives up after unless told otherwise; generous for a loaded 2-core box. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** One pino JSON line; `msg` and `level` are always there, the rest depends on the line. */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly name?: string;
  readonly [field: string]: unknown;
}

export const WARN = 40;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  /** Index into `lines` to start matching from (default 0: earlier lines count too). */
  readonly from?: number;
}

interface Waiter {
  readonly match: (line: LogLine) => boolean;
  readonly from: number;
  readonly resolve: (line: LogLine) => void;
  readonly reject: (err: Error) => void;
}

/** A running CLI process and everything it printed so far. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly args: readonly string[];
  /** Parsed JSON lines of stdout, in arrival order. */
  readonly lines: LogLine[] = [];
  /** stdout lines that are not JSON (pretty output, stray prints). */
  readonly otherLines: string[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  #exit: Exit | null = null;
  #partial = '';
  readonly #waiters = new Set<Waiter>();

  constructor(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string) {
    this.args = args;
    this.child = spawn(process.execPath, [CLI, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.#onStdout(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // 'close' (not 'exit'): all output has been read by then.
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('close', (code, signal) => {
        if (this.#partial !== '') this.#onLine(this.#partial);
        this.#partial = '';
        this.#exit = { code, signal };
        for (const w of [...this.#waiters]) w.reject(this.#failure(`exited (${code ?? signal}) before a line matched`));
        this.#waiters.clear();
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exit(): Exit | null {
    return this.#exit;
  }

  /** The first line from `from` on with this msg (and matching `where`, if given). */
  waitForMsg(msg: string, where: (line: LogLine) => boolean = () => true, options: WaitOptions = {}): Promise<LogLine> {
    return this.waitFor((l) => l.msg === msg && where(l), { ...options, what: `msg "${msg}"` });
  }

  /** The first line from `from` on that matches; rejects on timeout or exit, with the output tail. */
  waitFor(match: (line: LogLine) => boolean, options: WaitOptions & { what?: string } = {}): Promise<LogLine> {
    const from = options.from ?? 0;
    const seen = this.lines.slice(from).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.#exit !== null)
      return Promise.reject(
        this.#failure(
          `exited (${this.#exit.code ?? this.#exit.signal}) without a line matching ${options.what ?? 'the predicate'}`,
        ),
      );
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(this.#failure(`no line matching ${options.what ?? 'the predicate'} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        from,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  /** Lines with this msg (and matching `where`, if given) seen so far. */
  linesWithMsg(msg: string, where: (line: LogLine) => boolean = () => true): LogLine[] {
    return this.lines.filter((l) => l.msg === msg && where(l));
  }

  /** Resolves with the exit; rejects (after SIGKILL) if it does not come in time. */
  async waitForExit(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        reject(this.#failure(`did not exit within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to this process only (not its children); a no-op once it exited. */
  signal(sig: NodeJS.Signals): void {
    if (this.#exit === null) this.child.kill(sig);
  }

  #onStdout(chunk: string): void {
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop()!;
    for (const text of parts) this.#onLine(text);
  }

  #onLine(text: string): void {
    if (text.trim() === '') return;
    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as LogLine).msg !== 'string')
        throw new Error('not a log line');
      line = parsed as LogLine;
    } catch {
      this.otherLines.push(text);
      return;
    }
    const index = this.lines.push(line) - 1;
    for (const w of [...this.#waiters]) {
      if (index >= w.from && w.match(line)) {
        this.#waiters.delete(w);
        w.resolve(line);
      }
    }
  }

  #failure(what: string): Error {
    const tail = this.lines.slice(-8).map((l) => JSON.stringify(l).slice(0, 300));
    return new Error(
      `flocktrain ${this.args.join(' ')}: ${what}\n` +
        `--- last stdout lines:\n${[...tail, ...this.otherLines.slice(-4)].join('\n')}\n` +
        `--- stderr:\n${this.stderr.slice(-2000)}`,
    );
  }
}

/** A finished CLI run. */
export interface Finished extends Exit {
  readonly lines: readonly LogLine[];
  readonly stderr: string;
  readonly process: CliProcess;
}

const liveProcesses = new Set<CliProcess>();
const tempDirs: string[] = [];

/**
 * A per-test working area: a temp dir, with its own XDG_CACHE_HOME so workers never
 * share a dataset cache across tests. Removed by the cleanup hook.
 */
export class Sandbox {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'flocktrain-e2e-'));
    tempDirs.push(this.dir);
    const cache = join(this.dir, 'cache');
    mkdirSync(cache);
    this.env = { ...process.env, XDG_CACHE_HOME: cache, NO_COLOR: '1' };
  }

  /** An absolute path inside the sandbox. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Starts `flocktrain <args>`; tracked for cleanup. */
  start(args: readonly string[]): CliProcess {
    const p = new CliProcess(args, this.env, this.dir);
    liveProcesses.add(p);
    void p.exited.then(() => liveProcesses.delete(p));
    return p;
  }

  /** Runs `flocktrain <args>` to completion. */
  async run(args: readonly string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Finished> {
    const p = this.start(args);
    const exit = await p.waitForExit(timeoutMs);
    return { ...exit, lines: p.lines, stderr: p.stderr, process: p };
  }

  /** `train` with JSON logs; returns its done line after checking it exited 0. */
  async train(args: readonly string[], timeoutMs?: number): Promise<LogLine> {
    const r = await this.run(['train', '--log-format', 'json', ...args], timeoutMs);
    const done = r.lines.find((l) => l.msg === 'done');
    expect(r.code, `train ${args.join(' ')} failed: ${r.stderr}`).toBe(0);
    expect(done, 'train logged no done line').toBeDefined();
    return done!;
  }

  /** Starts a coordinator on a free port and waits for its join line. */
  async coordinator(args: readonly string[]): Promise<Coordinator> {
    const proc = this.start(['coordinator', '--port', '0', '--log-format', 'json', ...args]);
    const join = await proc.waitForMsg('join');
    return { proc, url: String(join.url), token: String(join.token), join };
  }

  /** Starts a worker for a coordinator; `name` shows up as `agent` in the coordinator's log. */
  worker(c: { url: string; token: string }, name: string, extra: readonly string[] = []): CliProcess {
    return this.start(['worker', '--url', c.url, '--token', c.token, '--name', name, '--log-format', 'json', ...extra]);
  }
}

export interface Coordinator {
  readonly proc: CliProcess;
  readonly url: string;
  readonly token: string;
  readonly join: LogLine;
}

/** Where a relay joins: a coordinator, or another relay. */
export type Upstream = Pick<Coordinator, 'url' | 'token'>;

/** A relay and how its own workers join it (`url`, `token`, from its `join` line). */
export interface Relay {
  readonly proc: CliProcess;
  readonly url: string;
  readonly token: string;
  readonly join: LogLine;
}

/** Starts a relay of `c` named `name` that waits for `minWorkers` of its own, once it prints its join line. */
export async function startRelay(
  sb: Sandbox,
  c: Upstream,
  name: string,
  minWorkers: number,
  extra: readonly string[] = [],
): Promise<Relay> {
  const proc = sb.start([
    'relay',
    '--url',
    c.url,
    '--token',
    c.token,
    '--name',
    name,
    '--port',
    '0',
    '--min-workers',
    String(minWorkers),
    '--log-format',
    'json',
    ...extra,
  ]);
  const join = await proc.waitForMsg('join', () => true, { timeoutMs: 60_000 });
  return { proc, url: String(join.url), token: String(join.token), join };
}

/** Waits for a coordinator to finish; checks exit 0 and returns its done line. */
export async function coordinatorDone(c: Coordinator, timeoutMs = 60_000): Promise<LogLine> {
  const exit = await c.proc.waitForExit(timeoutMs);
  expect(exit, `coordinator failed: ${c.proc.stderr}`).toEqual({ code: 0, signal: null });
  const done = c.proc.lines.find((l) => l.msg === 'done');
  expect(done, 'coordinator logged no done line').toBeDefined();
  return done!;
}

/** The workerId the coordinator gave the worker started with `--name agent`. */
export async function workerIdOf(c: Coordinator, agent: string): Promise<string> {
  const joined = await c.proc.waitForMsg('worker joined', (l) => l.agent === agent);
  return String(joined.workerId);
}

/**
 * Checks stderr is one user-facing line (`flocktrain: ...`) with no stack trace and
 * returns it.
 */
export function oneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, `expected exactly one stderr line, got:\n${stderr}`).toHaveLength(1);
  expect(lines[0]).toMatch(/^flocktrain: /);
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toMatch(/Error:|node:internal/);
  return lines[0];
}

/** A TCP port that was free a moment ago and has nothing listening on it now. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Pid → parent pid of every process, read from /proc (empty where there is no /proc). */
function parentPids(): Map<number, number> {
  const parents = new Map<number, number>();
  if (!existsSync('/proc')) return parents;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parens, so split after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // The process ended while we looked.
    }
  }
  return parents;
}

/** Every live process below `pid` (children, grandchildren, ...). */
export function descendants(pid: number): number[] {
  const parents = parentPids();
  const found: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const p = frontier.pop()!;
    for (const [child, parent] of parents) {
      if (parent === p) {
        found.push(child);
        frontier.push(child);
      }
    }
  }
  return found;
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return !existsSync('/proc');
  }
}

/**
 * Waits until every pid is gone; false if some are still alive after timeoutMs. They are not our children, so no
 * exit event reaches us: the condition is checked again until it holds.
 */
export async function allExit(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  try {
    await vi.waitFor(
      () => {
        if (pids.some(isAlive)) throw new Error('still alive');
      },
      { timeout: timeoutMs, interval: 50 },
    );
    return true;
  } catch {
    return false;
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Kills every tracked process still running (and what it spawned), then removes temp dirs. */
export async function cleanup(): Promise<void> {
  const running = [...liveProcesses];
  for (const p of running) {
    for (const pid of descendants(p.pid)) killPid(pid);
    p.child.kill('SIGKILL');
  }
  await Promise.all(running.map((p) => p.exited));
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Registers the cleanup after each test and after the file; call once at the top of a test file. */
export function useE2eCleanup(): void {
  afterEach(cleanup);
  afterAll(cleanup);
}
