// Shared by scripts/bench-browser.ts and scripts/screenshots.ts: the built CLI as
// child processes with their JSON log lines, headless Debian chromium (never a
// downloaded browser), driven by Playwright or opened plainly on a link, and a reader
// of the dashboard's event stream.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { parseFeedEvent, type FeedEvent } from '../coordinator/dashboard-schema.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'coordinator', 'cli', 'bin.js');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function needChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
}

/** "Chromium 156.0.8078.114", as the binary reports itself. */
export function chromiumVersion(): string {
  needChromium();
  // Debian's launcher script may complain on stderr while sizing its cache; not ours to show.
  const text = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return text.split(' ').slice(0, 2).join(' ');
}

/**
 * Chromium under Playwright, for pages a script must read or photograph. Not for
 * timing a tab: Playwright enables the DevTools Network domain on every page and
 * Web Worker, so each WebSocket frame is copied, base64-encoded and sent to this
 * process (about 1.1 MB of events a step on the default MLP, some 25 ms of CPU).
 */
export function launchChromium(): Promise<Browser> {
  needChromium();
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/**
 * A headless chromium opened on one link as a person opens it: a plain process with
 * its own fresh profile and no DevTools session, so what the tab does costs what it
 * costs a user. Nothing in the page can be read from here; the coordinator's logs say
 * what the tab did.
 */
export class PlainTab {
  readonly #child: ChildProcess;
  readonly #profile = mkdtempSync(join(tmpdir(), 'flocktrain-tab-'));
  readonly #exited: Promise<void>;

  constructor(link: string) {
    needChromium();
    // Its own process group: close() ends the browser with its renderer and helpers at once.
    this.#child = spawn(CHROMIUM, [...CHROMIUM_ARGS, `--user-data-dir=${this.#profile}`, link], {
      stdio: 'ignore',
      detached: true,
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#child.once('error', () => resolve());
    });
  }

  async close(): Promise<void> {
    const pid = this.#child.pid;
    if (pid !== undefined && this.#child.exitCode === null && this.#child.signalCode === null)
      process.kill(-pid, 'SIGKILL');
    await this.#exited;
    rmSync(this.#profile, { recursive: true, force: true });
  }
}

export type LogLine = Readonly<Record<string, unknown>> & { readonly msg: string };

export interface CliRunOptions {
  /** XDG_CACHE_HOME of the process (default: a fresh temp dir, so nothing is cached yet). */
  readonly cacheDir?: string;
  /**
   * Start it in a session of its own, as a worker started from another terminal is.
   * Linux shares the CPU fairly between sessions before processes (autogroups): on a
   * busy machine a process in this script's session gets a smaller share than a
   * browser, which is always started in its own (PlainTab, Playwright).
   */
  readonly ownSession?: boolean;
}

export class CliRun {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  #waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];

  constructor(args: readonly string[], options: CliRunOptions = {}) {
    // A cache dir made here holds a copy of the dataset: it goes when the process does.
    const ownCache = options.cacheDir === undefined;
    const cacheDir = options.cacheDir ?? mkdtempSync(join(tmpdir(), 'flocktrain-lab-'));
    this.child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, XDG_CACHE_HOME: cacheDir },
      detached: options.ownSession ?? false,
    });
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const text of parts) {
        try {
          const line = JSON.parse(text) as LogLine;
          this.lines.push(line);
          this.#waiters = this.#waiters.filter((w) => {
            if (!(w.msg === line.msg)) return true;
            w.resolve(line);
            return false;
          });
        } catch {
          /* not a log line */
        }
      }
    });
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code) => {
        if (ownCache) rmSync(cacheDir, { recursive: true, force: true });
        resolve(code);
      }),
    );
  }

  waitFor(msg: string): Promise<LogLine> {
    const seen = this.lines.find((l) => l.msg === msg);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ msg, resolve });
      void this.exited.then((code) => reject(new Error(`flocktrain exited (${code}) before a "${msg}" line`)));
    });
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** A coordinator on a free port with JSON logs; its join line's link, url and token. */
export async function coordinator(
  args: readonly string[],
): Promise<{ run: CliRun; link: string; url: string; token: string; dashboard: string }> {
  const run = new CliRun(['coordinator', '--port', '0', '--log-format', 'json', ...args]);
  const join = await run.waitFor('join');
  return {
    run,
    link: String(join.link),
    url: String(join.url),
    token: String(join.token),
    dashboard: String(join.dashboard),
  };
}

/** Calls `onEvent` with every dashboard feed event until the stream ends. */
export async function followFeed(dashboardLink: string, onEvent: (e: FeedEvent) => void): Promise<void> {
  const url = new URL(dashboardLink);
  // The dashboard link carries its token in the fragment; GET /events takes it as a bearer token.
  const token = new URLSearchParams(url.hash.slice(1)).get('token') ?? '';
  url.pathname = '/events';
  url.hash = '';
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok || res.body === null) throw new Error(`GET /events answered ${res.status}`);
  const decoder = new TextDecoder();
  let text = '';
  try {
    for await (const chunk of res.body) {
      text += decoder.decode(chunk, { stream: true });
      for (let cut = text.indexOf('\n\n'); cut >= 0; cut = text.indexOf('\n\n')) {
        onEvent(parseFeedEvent(JSON.parse(text.slice('data: '.length, cut))));
        text = text.slice(cut + 2);
      }
    }
  } catch {
    /* the coordinator closed the stream */
  }
}
