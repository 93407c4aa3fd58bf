// `flocktrain train`: the whole run in this process, no network. Same data order,
// same shard cut, same reduction tree and optimizer as a distributed run, so its
// final weights hash is the one distributed runs are checked against.

import { initParams } from '../shared/model/init.js';
import type { TrainOptions } from './cli.js';
import { LocalExecutor } from './local-executor.js';
import { createLogger } from './logger.js';
import { checkOutPath, readModelFile, writeModelFileOrRescue } from './model-file.js';
import { prepareRun, type PreparedRun } from './setup.js';
import type { Logger } from 'pino';
import { loadLatestCheckpoint } from './checkpoint.js';
import { DivergedError, Trainer, type TrainerOptions } from './trainer.js';

export function initialParams(run: PreparedRun, init: string | null): Float32Array {
  return init === null ? initParams(run.spec, run.config.seed) : readModelFile(init, run.spec);
}

/** Where an interrupted or diverged run without --checkpoint-dir saves its state (relative to the cwd). */
export const RESCUE_DIR = 'flocktrain-checkpoints';

/** The trainer's start and checkpoint options from the command line (shared with the coordinator). */
export function trainerOptions(run: PreparedRun, options: TrainOptions, log: Logger): TrainerOptions {
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
  return {
    logEvery: options.logEvery,
    initialParams: resume?.params ?? initialParams(run, options.init),
    checkpoint:
      options.checkpointDir === null
        ? null
        : { dir: options.checkpointDir, every: options.checkpointEvery, keep: options.keepCheckpoints },
    resume,
    rescueDir: RESCUE_DIR,
  };
}

/** `threads`: compute threads (--threads; 1: this thread only). */
export async function runTrain(options: TrainOptions, threads = 1): Promise<number> {
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain');
  const run = prepareRun(options.config);
  log.info(
    {
      dataset: run.dataset.name,
      datasetHash: run.datasetHash,
      train: run.split.train.length,
      val: run.split.val.length,
      spec: run.spec,
    },
    'run',
  );
  const executor = new LocalExecutor(run, {
    threads,
    onThreadsStarted: (n) => log.info({ threads: n }, 'compute threads started'),
  });
  const trainer = new Trainer(run, executor, log, trainerOptions(run, options, log));
  const onSignal = (): void => {
    log.warn('interrupted: stopping after the current step');
    trainer.requestStop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await trainer.train();
    if (options.out !== null)
      writeModelFileOrRescue(options.out, run.spec, trainer.params, run.config, summary.weightsHash, () =>
        trainer.rescue(),
      );
    log.info({ ...summary, out: options.out }, 'done');
    return 0;
  } catch (err) {
    if (!(err instanceof DivergedError)) throw err;
    log.error({ err: err.message }, 'diverged');
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await executor.close();
  }
}
