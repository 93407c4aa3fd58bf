// --metrics-csv: the run's step and epoch lines as CSV rows, for spreadsheets and plots.
// One row per logged step and one per epoch, with the fields of those log lines; a
// field a row's kind lacks is empty. A resumed run appends to the same file.

import { appendFileSync, existsSync, statSync } from 'node:fs';
import { DataError } from '../shared/errors.js';
import type { EpochDone, Events, StepDone } from './events.js';

const COLUMNS = [
  'kind',
  'epoch',
  'step',
  'loss',
  'lr',
  'workers',
  'samplesPerSec',
  'samples',
  'trainLoss',
  'trainAccuracy',
  'valLoss',
  'valAccuracy',
  'seconds',
] as const;

function append(path: string, line: string): void {
  try {
    appendFileSync(path, `${line}\n`);
  } catch (err) {
    throw new DataError(`--metrics-csv ${path}: cannot write (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function row(kind: 'step' | 'epoch', event: StepDone | EpochDone): string {
  const fields = event as unknown as Record<string, unknown>;
  return [
    kind,
    ...COLUMNS.slice(1).map((c) => (fields[c] === undefined || fields[c] === null ? '' : String(fields[c]))),
  ].join(',');
}

/** Writes the header now (unless the file already has rows) and a row for every later step and epoch event. */
export function recordMetrics(events: Events, path: string): void {
  if (!existsSync(path) || statSync(path).size === 0) append(path, COLUMNS.join(','));
  events.on('step', (e) => append(path, row('step', e)));
  events.on('epoch', (e) => append(path, row('epoch', e)));
}
