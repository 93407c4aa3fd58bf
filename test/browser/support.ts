// Helpers of the browser suite: headless Debian chromium through playwright-core (no
// browser download, ever), and the built CLI as real child processes whose JSON log
// lines a test can wait for. Not a test file; it assumes dist/ is built (pretest).
//
// Without /usr/bin/chromium the suite is skipped with a loud message, except under
// CI=true, where that is a failure (.ci/run installs chromium).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { describeNeeding } from '../support/describe-needing.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'coordinator', 'cli', 'bin.js');
/** Screenshots and other artifacts of the browser tests (gitignored). */
export const OUTPUT_DIR = join(ROOT, 'test-output');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** `describe` when chromium is there; otherwise a loud skip, or under CI=true a failing test. */
export function describeInBrowser(name: string, body: () => void): void {
  describeNeeding(
    {
      present: existsSync(CHROMIUM),
      missing: `${CHROMIUM} is missing`,
      install: 'apt-get update && apt-get install -y chromium',
    },
    name,
    body,
  );
}

export type LogLine = Readonly<Record<string, unknown>> & { readonly msg: string };

/** A running `flocktrain …` process with its parsed stdout lines. */
export class Cli {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  #partial = '';
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(args: readonly string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop()!;
      for (const text of parts) this.#line(text);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  #line(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The first line (seen or coming) with this msg that matches; fails after `ms` with the output tail. */
  waitFor(msg: string, where: (l: LogLine) => boolean = () => true, ms = 30_000): Promise<LogLine> {
    const match = (l: LogLine): boolean => l.msg === msg && where(l);
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${msg}" line within ${ms} ms\n${this.tail()}`)), ms);
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        const late = this.lines.find(match);
        if (late !== undefined) resolve(late);
        else reject(new Error(`exited (${code}) without a "${msg}" line\n${this.tail()}`));
      });
    });
  }

  linesWith(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg === msg);
  }

  tail(): string {
    return `--- stdout:\n${this.lines
      .slice(-10)
      .map((l) => JSON.stringify(l).slice(0, 300))
      .join('\n')}\n--- stderr:\n${this.stderr.slice(-1500)}`;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Processes and temp dirs of one test file; `cleanup` in afterEach/afterAll. */
export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'flocktrain-browser-'));
  readonly #procs: Cli[] = [];

  get env(): NodeJS.ProcessEnv {
    const cache = join(this.dir, 'cache');
    mkdirSync(cache, { recursive: true });
    return { ...process.env, XDG_CACHE_HOME: cache, NO_COLOR: '1' };
  }

  start(args: readonly string[]): Cli {
    const p = new Cli(args, this.env);
    this.#procs.push(p);
    return p;
  }

  /** `flocktrain train` to completion; its done line. */
  async train(args: readonly string[]): Promise<LogLine> {
    const p = this.start(['train', '--log-format', 'json', ...args]);
    const done = await p.waitFor('done', () => true, 60_000);
    await p.exited;
    return done;
  }

  /** A coordinator on a free port; resolves with it and its join line. */
  async coordinator(
    args: readonly string[],
  ): Promise<{ proc: Cli; join: LogLine; link: string; url: string; token: string }> {
    const proc = this.start(['coordinator', '--port', '0', '--log-format', 'json', ...args]);
    const join = await proc.waitFor('join');
    return { proc, join, link: String(join.link), url: String(join.url), token: String(join.token) };
  }

  worker(url: string, token: string, name: string): Cli {
    return this.start(['worker', '--url', url, '--token', token, '--name', name, '--log-format', 'json']);
  }

  async cleanup(): Promise<void> {
    for (const p of this.#procs) p.kill();
    await Promise.all(this.#procs.map((p) => p.exited));
    this.#procs.length = 0;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The worker page's status fields, read from the DOM. */
export async function pageStatus(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() => {
    const text = (id: string): string => document.getElementById(id)?.textContent ?? '';
    return {
      phase: document.body.dataset.phase ?? '',
      connection: text('connection'),
      workerId: text('worker-id'),
      tasks: text('tasks'),
      speed: text('speed'),
      loss: text('loss'),
      dataset: text('dataset'),
      message: text('message'),
      threads: text('threads'),
    };
  });
}

export function outputPath(name: string): string {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  return join(OUTPUT_DIR, name);
}

/**
 * For a describeInBrowser body: one chromium for the block, and a Lab whose processes
 * end after each test. `newPage` opens a tab in its own browser context, like a tab
 * on another laptop.
 */
export function useChromium(): { readonly lab: Lab; newPage(options?: BrowserContextOptions): Promise<Page> } {
  let browser: Browser | undefined;
  const lab = new Lab();
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterEach(() => lab.cleanup());
  afterAll(async () => {
    await browser?.close();
    lab.remove();
  });
  return {
    lab,
    newPage: async (options) => {
      if (browser === undefined) throw new Error('useChromium: no browser yet (call newPage inside a test)');
      return (await browser.newContext(options)).newPage();
    },
  };
}
