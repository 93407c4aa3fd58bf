// Shared by scripts/bench-browser.ts and scripts/screenshots.ts: the built CLI as
// child processes with their JSON log lines, headless Debian chromium (never a
// downloaded browser), and a reader of the dashboard's event stream.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
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

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

export type LogLine = Readonly<Record<string, unknown>> & { readonly msg: string };

export class CliRun {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  #waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];

  constructor(args: readonly string[], cacheDir = mkdtempSync(join(tmpdir(), 'flocktrain-lab-'))) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, XDG_CACHE_HOME: cacheDir },
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
    this.exited = new Promise((resolve) => this.child.once('close', resolve));
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
  url.pathname = '/events';
  const res = await fetch(url);
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
