// train() of the library: a whole run from code, in this process or serving workers,
// on data in memory, a CSV file or a built-in dataset. Its steps and epochs arrive as
// callbacks, as an async iterator, or both; it resolves with the trained Model. The
// same pieces as the commands (prepareRun, Trainer, LocalExecutor or the coordinator
// assembly), so a run from code has the bits of the same run from the command line.

import { checkedPrimeUrl } from '../weights-prime.js';
import { DEFAULTS } from '../../shared/defaults.js';
import type { LogFormat } from '../../shared/node/logger.js';
import { createLogger } from '../../shared/node/logger.js';
import { resolveConfig, RUN_DEFAULTS, type DataSource, type RunConfig } from '../config.js';
import type { CoordinatorOptions } from '../commands/options.js';
import type { JoinInfo } from '../events.js';
import { Events, type EpochDone, type StepDone } from '../events.js';
import { LocalExecutor } from '../local-executor.js';
import { announceRun, trainAndWrite, trainerOptions } from '../run-train.js';
import { prepareLoaded, prepareRun, type PreparedRun } from '../setup.js';
import { Trainer, type TrainSummary } from '../trainer.js';
import { memoryDataset, type MemoryData } from './memory-data.js';
import { Model } from './model.js';

/** Serve the run to workers (Node processes, browser tabs) instead of computing here. */
export interface ServeOptions {
  /** Default 127.0.0.1; 0.0.0.0 accepts other machines. */
  readonly host?: string;
  /** Default 0: any free port (the url is in `joined`). */
  readonly port?: number;
  /** Default: a random token. */
  readonly token?: string;
  /** Local worker processes to spawn. Default 0. */
  readonly workers?: number;
  /** Workers to wait for before the first step. Default 1. */
  readonly minWorkers?: number;
  /** Workers fetch each weights version over HTTP, for a cache in front to fan out (docs/scaling.md). Default false. */
  readonly weightsOverHttp?: boolean;
  /** With weightsOverHttp, the cache's own origin: each version is fetched through it before tasks name it. */
  readonly weightsPrimeUrl?: string;
  /** Told where workers join once the coordinator listens (url, token, the worker command, the browser link). */
  readonly onJoin?: (join: JoinInfo) => void;
}

export interface TrainOptions extends Partial<Omit<RunConfig, 'data'>> {
  /** Samples in memory; or give csv, or dataset. */
  readonly data?: MemoryData;
  /** A CSV file with a header row; labelColumn defaults to "label". */
  readonly csv?: { readonly path: string; readonly labelColumn?: string };
  /** A built-in dataset (default mnist when neither data nor csv is given). */
  readonly dataset?: 'mnist' | 'spirals' | 'blobs' | 'regression';
  /** Samples of a synthetic dataset. */
  readonly samples?: number;
  /** Write the model file here at the end. */
  readonly out?: string;
  /** Start from this model file's weights. */
  readonly init?: string;
  /** Write checkpoints here; resume from the newest in `resume`. */
  readonly checkpointDir?: string;
  readonly checkpointEvery?: number;
  readonly resume?: string;
  /** Append a CSV row per logged step and per epoch to this file. */
  readonly metricsCsv?: string;
  /** Write the weights of the best validation loss so far to this model file. */
  readonly outBest?: string;
  /** Stop after this many epochs without a better validation loss. Default 0: never. */
  readonly earlyStop?: number;
  /** Compute threads in this process (ignored with serve). Default 1. */
  readonly threads?: number;
  /** Report a step every this many steps. Default 10. */
  readonly logEvery?: number;
  /** Log lines on stdout: default 'silent'. */
  readonly logLevel?: string;
  readonly logFormat?: LogFormat;
  readonly serve?: ServeOptions;
  readonly onStep?: (step: StepDone) => void;
  readonly onEpoch?: (epoch: EpochDone) => void;
}

export type TrainingEvent = ({ readonly type: 'step' } & StepDone) | ({ readonly type: 'epoch' } & EpochDone);

export interface Trained {
  readonly model: Model;
  readonly summary: TrainSummary;
}

/**
 * A run in progress: await it for the trained model, iterate it for its events, stop()
 * it to end after the current step (the model is then the weights so far).
 */
export class TrainingRun implements AsyncIterable<TrainingEvent>, PromiseLike<Trained> {
  readonly #done: Promise<Trained>;
  readonly #queue: TrainingEvent[] = [];
  #wake: (() => void) | null = null;
  #finished = false;
  #trainer: Trainer | null = null;
  #stopRequested = false;
  /** Where workers join, once serving (serve option only). */
  joined: { readonly url: string; readonly token: string } | null = null;

  constructor(options: TrainOptions) {
    this.#done = this.#run(options).finally(() => {
      this.#finished = true;
      this.#wake?.();
    });
    // The caller may only iterate; a failure still reaches it there, not as an unhandled rejection.
    this.#done.catch(() => {});
  }

  // A run is awaited for its result, as a fetch is; iterating it gives the events.
  // biome-ignore lint/suspicious/noThenProperty: a run is a thenable on purpose
  then<A = Trained, B = never>(
    onDone?: ((t: Trained) => A | PromiseLike<A>) | null,
    onError?: ((err: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#done.then(onDone, onError);
  }

  /**
   * Ends the run after the step in progress: exactly after the step an onStep callback
   * is told of; an iterator may trail the trainer by the steps already queued.
   */
  stop(): void {
    this.#stopRequested = true;
    this.#trainer?.requestStop();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TrainingEvent> {
    for (;;) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#finished) {
        await this.#done; // rethrows a failure
        return;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  #push(event: TrainingEvent): void {
    this.#queue.push(event);
    this.#wake?.();
  }

  async #run(o: TrainOptions): Promise<Trained> {
    await Promise.resolve(); // the caller gets the run (and can listen) before anything happens
    const log = createLogger(o.logFormat ?? 'json', o.logLevel ?? 'silent', 'flocktrain');
    const events = new Events(log);
    events.on('step', (e) => {
      o.onStep?.(e);
      this.#push({ type: 'step', ...e });
    });
    events.on('epoch', (e) => {
      o.onEpoch?.(e);
      this.#push({ type: 'epoch', ...e });
    });
    const config = resolveConfig({ ...configFields(o), data: dataSource(o) });
    const run: PreparedRun = o.data !== undefined ? prepareLoaded(config, memoryDataset(o.data)) : prepareRun(config);
    const options: CoordinatorOptions = {
      config,
      init: o.init ?? null,
      out: o.out ?? null,
      logEvery: o.logEvery ?? DEFAULTS.output.logEvery,
      checkpointDir: o.checkpointDir ?? o.resume ?? null,
      checkpointEvery: o.checkpointEvery ?? DEFAULTS.output.checkpointEvery,
      keepCheckpoints: DEFAULTS.output.keepCheckpoints,
      resume: o.resume ?? null,
      metricsCsv: o.metricsCsv ?? null,
      outBest: o.outBest ?? null,
      earlyStop: o.earlyStop ?? 0,
      logFormat: o.logFormat ?? 'json',
      logLevel: o.logLevel ?? 'silent',
      host: o.serve?.host ?? DEFAULTS.coordinator.host,
      port: o.serve?.port ?? 0,
      token: o.serve?.token ?? null,
      workers: o.serve?.workers ?? 0,
      minWorkers: o.serve?.minWorkers ?? DEFAULTS.coordinator.minWorkers,
      taskTimeoutMinMs: DEFAULTS.coordinator.taskTimeoutMinMs,
      taskTimeoutMaxMs: DEFAULTS.coordinator.taskTimeoutMaxMs,
      ejectAfterMisses: DEFAULTS.coordinator.ejectAfterMisses,
      weightsOverHttp: o.serve?.weightsOverHttp ?? DEFAULTS.coordinator.weightsOverHttp,
      ...(o.serve?.weightsPrimeUrl !== undefined
        ? { weightsPrimeUrl: checkedPrimeUrl(o.serve.weightsPrimeUrl, 'serve.weightsPrimeUrl') }
        : {}),
      probation: DEFAULTS.coordinator.probation,
      auditRate: DEFAULTS.coordinator.auditRate,
      rollbackSnapshots: DEFAULTS.coordinator.rollbackSnapshots,
      dashboardToken: null,
      tokensFile: null,
      allowedOrigins: [],
      tls: null,
      limits: {
        maxConnections: DEFAULTS.coordinator.maxConnections,
        maxConnectionsPerIp: DEFAULTS.coordinator.maxConnectionsPerIp,
        idleTimeoutMs: DEFAULTS.coordinator.idleTimeoutMs,
        headersTimeoutMs: DEFAULTS.coordinator.headersTimeoutMs,
      },
    };
    let summary: TrainSummary;
    let trainer: Trainer;
    if (o.serve !== undefined) {
      const { serveAndTrain } = await import('../run-coordinator.js');
      ({ summary, trainer } = await serveAndTrain(run, options, log, events, {
        signals: false,
        onTrainer: (t, join) => {
          this.#adopt(t);
          this.joined = join;
        },
        ...(o.serve.onJoin ? { onJoin: o.serve.onJoin } : {}),
      }));
    } else {
      announceRun(events, run);
      const executor = new LocalExecutor(run, { threads: o.threads ?? DEFAULTS.train.threads });
      trainer = new Trainer(run, executor, log, { ...trainerOptions(run, options, log, events), rescueDir: null });
      this.#adopt(trainer);
      try {
        summary = await trainAndWrite(trainer, run, options.out, events);
      } finally {
        await executor.close();
      }
    }
    const params = Float32Array.from(trainer.params); // the trainer's may live in wasm memory
    return { model: new Model({ spec: run.spec, params, input: run.input, kernels: config.kernels }), summary };
  }

  #adopt(trainer: Trainer): void {
    this.#trainer = trainer;
    if (this.#stopRequested) trainer.requestStop();
  }
}

/** Starts a run; `await train(...)` gives { model, summary }, `for await (const e of train(...))` its events. */
export function train(options: TrainOptions = {}): TrainingRun {
  return new TrainingRun(options);
}

function configFields(o: TrainOptions): Partial<RunConfig> {
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(RUN_DEFAULTS))
    if (key !== 'data' && key in o) fields[key] = (o as Record<string, unknown>)[key];
  return fields as Partial<RunConfig>;
}

function dataSource(o: TrainOptions): DataSource {
  if (o.data !== undefined) return { kind: 'memory', name: o.data.name ?? 'memory' };
  if (o.csv !== undefined)
    return { kind: 'csv', path: o.csv.path, labelColumn: o.csv.labelColumn ?? DEFAULTS.data.labelColumn };
  const name = o.dataset ?? 'mnist';
  return name === 'mnist'
    ? { kind: 'mnist' }
    : { kind: 'synthetic', name, samples: o.samples ?? DEFAULTS.data.samples };
}
