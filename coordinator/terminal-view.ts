// What a person at a terminal sees of a run: a live progress line per epoch (steps,
// ETA, samples/s, loss; the coordinator adds its workers), one aligned summary line per
// epoch, a line when a worker joins or leaves, and the outcome. It draws from the run's
// Events, as the dashboard does, and those events are then not logged (DRAWN); every other
// line (checkpoints, warnings) is still logged, pretty. Only used when stdout is a
// terminal and the log format is left to choose: piped output and --log-format json stay
// the JSON lines, untouched.

import type { EventKind, Events, RunStarted } from './events.js';
import { stepsPerEpoch } from './plan.js';

/** Where the view draws: a terminal stream (its width, if known, bounds the live line). */
export interface ViewStream {
  write(text: string): unknown;
  readonly columns?: number;
}

const CLEAR = '\r\x1b[2K';
const BAR = 20;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
    : `${m}:${String(s % 60).padStart(2, '0')}`;
}

function workers(n: number): string {
  return `${n} worker${n === 1 ? '' : 's'}`;
}

function num(v: number | null, digits = 4): string {
  return v === null ? '–'.padStart(digits + 2) : v.toFixed(digits);
}

export class TerminalView {
  /** The events this view draws, which the log then leaves out. */
  static readonly DRAWN: ReadonlySet<EventKind> = new Set<EventKind>([
    'run',
    'join',
    'step',
    'epoch',
    'workerJoined',
    'workerLeft',
    'done',
  ]);
  readonly #out: ViewStream;
  readonly #serving: boolean;
  #run: RunStarted | null = null;
  #steps = 0;
  /** When and at which global step the previous live line was drawn (null: none yet this epoch). */
  #last: { readonly at: number; readonly step: number } | null = null;
  #epochStarted = 0;
  #live = false;
  #workers = 0;

  /** `serving`: the coordinator's view (workers in the live line, joins and departures). */
  constructor(out: ViewStream, events: Events, serving: boolean) {
    this.#out = out;
    this.#serving = serving;
    events.on('run', (e) => this.#onRun(e));
    // How other machines and browser tabs take part.
    events.on('join', (e) =>
      this.#line(`workers join with:  ${e.command}\n  or open ${e.link}\n  dashboard: ${e.dashboard}`),
    );
    events.on('step', (e) => {
      this.#workers = e.workers;
      this.#drawLive(e.epoch, e.step, e.samplesPerSec, e.loss);
    });
    events.on('epoch', (e) => {
      const epochs = String(this.#run?.config.epochs ?? '?');
      const classification = e.trainAccuracy !== null;
      const acc = (v: number | null): string => (classification ? `  acc ${num(v)}` : '');
      this.#line(
        `epoch ${String(e.epoch).padStart(epochs.length)}/${epochs}  ` +
          `train loss ${num(e.trainLoss)}${acc(e.trainAccuracy)}` +
          `  val loss ${num(e.valLoss)}${acc(e.valAccuracy)}  ${e.seconds.toFixed(1).padStart(6)} s`,
      );
      this.#epochStarted = performance.now();
      this.#last = null;
    });
    events.on('workerJoined', (e) => {
      this.#workers = e.workers;
      if (this.#serving)
        this.#line(`+ ${e.workerId} joined (${e.kind ?? 'worker'}, ${e.agent}): ${workers(e.workers)}`);
    });
    events.on('workerLeft', (e) => {
      this.#workers = e.workers;
      if (this.#serving) this.#line(`- ${e.workerId} left (${e.reason}): ${workers(e.workers)}`);
    });
    events.on('done', (e) => {
      const how = e.interrupted ? 'stopped' : e.stoppedEarly ? 'stopped early' : 'done';
      const acc = e.valAccuracy === null ? '' : `, val accuracy ${e.valAccuracy.toFixed(4)}`;
      this.#line(
        `${how}: ${e.steps} steps${acc}, weights ${e.weightsHash.slice(0, 12)}…` +
          `${e.out ? `, written to ${e.out}` : ''}`,
      );
    });
  }

  #onRun(e: RunStarted): void {
    this.#run = e;
    this.#steps = stepsPerEpoch(e.train, e.config.batchSize);
    this.#epochStarted = performance.now();
    const widths = [e.spec.inputSize, ...e.spec.layers.flatMap((l) => (l.type === 'dense' ? [l.units] : []))];
    this.#line(
      `${e.dataset}: ${e.train} training / ${e.val} validation samples; model ${widths.join('-')}, ` +
        `${e.config.optimizer} lr ${e.config.lr}, ${e.config.epochs} epochs of ${this.#steps} steps`,
    );
  }

  #drawLive(epoch: number, globalStep: number, samplesPerSec: number, loss: number): void {
    const epochs = this.#run?.config.epochs ?? 0;
    const done = Math.min(this.#steps, globalStep - (epoch - 1) * this.#steps);
    const fill = this.#steps > 0 ? Math.round((BAR * done) / this.#steps) : 0;
    // Seconds per step since the previous line (or since the epoch began, for its first line).
    const now = performance.now();
    const perStep =
      this.#last === null
        ? (now - this.#epochStarted) / 1000 / Math.max(done, 1)
        : (now - this.#last.at) / 1000 / Math.max(globalStep - this.#last.step, 1);
    this.#last = { at: now, step: globalStep };
    const eta = perStep * (this.#steps - done);
    const serving = this.#serving ? `  ${workers(this.#workers)}` : '';
    const text =
      `epoch ${epoch}/${epochs} ${'█'.repeat(fill)}${'░'.repeat(BAR - fill)} ${done}/${this.#steps}` +
      `  ETA ${duration(eta)}  ${samplesPerSec.toLocaleString('en-US')} samples/s  loss ${loss.toFixed(4)}${serving}`;
    const width = this.#out.columns ?? 0; // 0: unknown (no size from the terminal)
    this.#out.write(`${CLEAR}${width > 20 ? text.slice(0, width - 1) : text}`);
    this.#live = true;
  }

  /** A permanent line, above the live one (which the next step redraws). */
  #line(text: string): void {
    this.#out.write(`${this.#live ? CLEAR : ''}${text}\n`);
    this.#live = false;
  }
}

/** Whether a command shows this view: stdout is a terminal and the log format and level are left at their defaults. */
export function wantsView(options: { readonly logFormat: string; readonly logLevel: string }): boolean {
  return options.logFormat === 'auto' && options.logLevel === 'info' && process.stdout.isTTY === true;
}
