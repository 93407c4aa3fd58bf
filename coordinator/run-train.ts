// `flocktrain train`: the whole run in this process, no network. Same data order,
// same shard cut, same reduction tree and optimizer as a distributed run, so its
// final weights hash is the one distributed runs are checked against.

import type { Logger } from 'pino';
import { DivergedError } from '../shared/errors.js';
import { initParams } from '../shared/model/init.js';
import { loadLatestCheckpoint } from './checkpoint.js';
import type { TrainOptions } from './commands/options.js';
import { Events } from './events.js';
import { LocalExecutor } from './local-executor.js';
import { createLogger } from '../shared/node/logger.js';
import { recordMetrics } from './metrics-csv.js';
import { checkOutPath, readModelFile, writeModelFile, writeModelFileOrRescue } from './model-file.js';
import { prepareRun, type PreparedRun } from './setup.js';
import { TerminalView, wantsView } from './terminal-view.js';
import { Trainer, weightsHash, type TrainerOptions, type TrainSummary } from './trainer.js';
import type { VerificationTally } from './step/verifier.js';

export function initialParams(run: PreparedRun, init: string | null): Float32Array {
  return init === null ? initParams(run.spec, run.config.seed) : readModelFile(init, run.spec);
}

/** Where an interrupted or diverged run without --checkpoint-dir saves its state (relative to the cwd). */
export const RESCUE_DIR = 'flocktrain-checkpoints';

/**
 * The trainer's start, checkpoint and output options from the command line (shared with
 * the coordinator); starts --metrics-csv's recording on `events`.
 */
export function trainerOptions(run: PreparedRun, options: TrainOptions, log: Logger, events: Events): TrainerOptions {
  if (options.out !== null) checkOutPath(options.out); // a bad --out fails now, not after training
  let resume = null;
  if (options.resume !== null) {
    const { path, checkpoint } = loadLatestCheckpoint(options.resume, {
      spec: run.spec,
      config: run.config,
      datasetHash: run.datasetHash,
    });
    log.info({ path, epoch: checkpoint.state.epoch + 1, step: checkpoint.state.globalStep }, 'resuming');
    resume = checkpoint;
  }
  if (options.metricsCsv) recordMetrics(events, options.metricsCsv);
  const outBest = options.outBest ?? null;
  if (outBest !== null) checkOutPath(outBest);
  return {
    earlyStop: options.earlyStop ?? 0,
    ...(outBest === null
      ? {}
      : {
          onBest: (params: Float32Array, epoch: number, valLoss: number) => {
            writeModelFile(outBest, run.spec, params, run.config, weightsHash(params), run.input);
            log.info({ path: outBest, epoch, valLoss }, 'best weights so far');
          },
        }),
    logEvery: options.logEvery,
    initialParams: resume?.params ?? initialParams(run, options.init),
    checkpoint:
      options.checkpointDir === null
        ? null
        : { dir: options.checkpointDir, every: options.checkpointEvery, keep: options.keepCheckpoints },
    resume,
    rescueDir: RESCUE_DIR,
    events,
  };
}

/** Says what is trained, on what data, with which config. */
export function announceRun(events: Events, run: PreparedRun): void {
  events.emit('run', {
    dataset: run.dataset.name,
    datasetHash: run.datasetHash,
    train: run.split.train.length,
    val: run.split.val.length,
    spec: run.spec,
    config: run.config,
  });
}

/**
 * Trains to the end or to a requested stop, writes the weights to `out`, and says
 * 'done' (with `verification`'s counts, for a served run). Throws DivergedError when
 * training diverges (its last good state is saved by the trainer). The library's train()
 * ends here; the commands end in trainToEnd.
 */
export async function trainAndWrite(
  trainer: Trainer,
  run: PreparedRun,
  out: string | null,
  events: Events,
  verification?: () => VerificationTally,
): Promise<TrainSummary> {
  const summary = await trainer.train();
  if (out !== null)
    writeModelFileOrRescue(
      out,
      run.spec,
      trainer.params,
      run.config,
      summary.weightsHash,
      () => trainer.rescue(),
      run.input,
    );
  events.emit('done', { ...summary, out, ...verification?.() });
  return summary;
}

/**
 * trainAndWrite for a command: a diverged run is exit code 1,
 * said in one log line. Shared by `train` and `coordinator`.
 */
export async function trainToEnd(
  trainer: Trainer,
  run: PreparedRun,
  out: string | null,
  events: Events,
  log: Logger,
  verification?: () => VerificationTally,
): Promise<{ readonly code: number; readonly interrupted: boolean }> {
  try {
    const summary = await trainAndWrite(trainer, run, out, events, verification);
    return { code: 0, interrupted: summary.interrupted };
  } catch (err) {
    if (!(err instanceof DivergedError)) throw err;
    log.error({ err: err.message }, 'diverged');
    return { code: 1, interrupted: false };
  }
}

/** `threads`: compute threads (--threads; 1: this thread only). */
export async function runTrain(options: TrainOptions, threads = 1): Promise<number> {
  const view = wantsView(options);
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain');
  const events = view ? new Events(log, undefined, TerminalView.DRAWN) : new Events(log);
  if (view) new TerminalView(process.stdout, events, false);
  const run = prepareRun(options.config);
  announceRun(events, run);
  const executor = new LocalExecutor(run, {
    threads,
    onThreadsStarted: (n) => log.info({ threads: n }, 'compute threads started'),
  });
  const trainer = new Trainer(run, executor, log, trainerOptions(run, options, log, events));
  const onSignal = (): void => {
    log.warn('interrupted: stopping after the current step');
    trainer.requestStop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return (await trainToEnd(trainer, run, options.out, events, log)).code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await executor.close();
  }
}
