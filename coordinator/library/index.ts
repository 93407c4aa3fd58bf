// The flocktrain library (package.json "exports"): train in this process or with
// workers, from memory or files; load a model file and predict; run a worker; or wire
// a coordinator yourself. Importing it runs nothing: the command line is
// coordinator/cli/bin.ts, the one module with a side effect.

export { train, TrainingRun } from './train.js';
export type { TrainOptions, ServeOptions, TrainingEvent, Trained } from './train.js';
export { Model } from './model.js';
export type { Rows } from './model.js';
export type { MemoryData } from './memory-data.js';
export { startWorker } from './worker.js';
export type { WorkerStartOptions } from './worker.js';

import { Model } from './model.js';

/** Reads a model file written by `flocktrain train --out` or train({ out }). */
export function loadModel(path: string): Model {
  return Model.load(path);
}

export type { StepDone, EpochDone, RunDone } from '../events.js';
export type { TrainSummary } from '../trainer.js';
export type { RunConfig, DataSource } from '../config.js';
export { resolveConfig, RUN_DEFAULTS } from '../config.js';
export type { InputSource } from '../inference.js';
export type { JoinInfo } from '../events.js';
export type { Metrics, ClassificationMetrics, RegressionMetrics, ClassMetrics } from '../../shared/metrics.js';
export type { ModelInput } from '../../shared/data/preprocess.js';
export type { ModelSpec } from '../../shared/model/spec.js';

// The coordinator's parts, for callers who assemble their own: prepareRun sizes a run
// from its config, startCoordinator serves it, a Trainer drives the scheduler it returns.
export { startCoordinator } from '../assembly.js';
export type { CoordinatorSetup, RunningCoordinator } from '../assembly.js';
export { prepareRun, prepareLoaded } from '../setup.js';
export type { PreparedRun } from '../setup.js';
export { Trainer } from '../trainer.js';
export { Events } from '../events.js';
export { main as runCli } from '../cli/main.js';

export {
  FlocktrainError,
  ConfigError,
  DataError,
  ModelFileError,
  CheckpointError,
  DivergedError,
} from '../../shared/errors.js';
