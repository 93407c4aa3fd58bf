// The default of every setting, in one object. The run configuration
// (coordinator/config.ts), the optimizer (optim/sgd.ts), the command-line flags, their
// --help and docs/cli.md all read their defaults here, so none is stated twice.
// Values are what a user would pass on the command line ('auto' where the choice is
// made at run time); units are in the names. Platform-neutral, like all of shared/.

export const DEFAULTS = {
  /** Where the samples come from and how they are split. */
  data: {
    dataset: 'mnist',
    /** Samples generated for a synthetic dataset. */
    samples: 1000,
    labelColumn: 'label',
    standardize: true,
    valFraction: 0.2,
  },
  /** The network's shape. */
  model: {
    hidden: [128],
    activation: 'relu',
    /** cross_entropy for class labels, mse for numeric targets. */
    loss: 'auto',
  },
  /** The optimization: every value the final weights are a function of, besides data and model. */
  training: {
    epochs: 3,
    batchSize: 64,
    shardSize: 16,
    lr: 0.1,
    momentum: 0.9,
    nesterov: false,
    weightDecay: 0,
    seed: 42,
    /** wasm where the engine has WebAssembly SIMD-128, else js. */
    kernels: 'auto',
    wireDtype: 'f32',
  },
  /** What a run writes besides its weights. */
  output: {
    logEvery: 10,
    /** 0: checkpoints only at epoch ends and on interruption. */
    checkpointEvery: 0,
    keepCheckpoints: 3,
  },
  log: {
    /** Pretty when stdout is a terminal, JSON lines otherwise. */
    format: 'auto',
    level: 'info',
  },
  coordinator: {
    host: '127.0.0.1',
    port: 8787,
    /** Local worker processes spawned beside the coordinator. */
    workers: 0,
    minWorkers: 1,
    taskTimeoutMinMs: 2_000,
    taskTimeoutMaxMs: 60_000,
    /** A connection that has not said hello by then is closed. */
    helloTimeoutMs: 10_000,
    /** The coordinator pings every worker this often; workers judge its silence against it. */
    heartbeatMs: 5_000,
    /**
     * After the last step, how long workers get to read their close frame before sockets
     * are cut: browser tabs on a busy link can take seconds to read their last frames.
     */
    closeGraceMs: 5_000,
    /** A new or reconnected worker's first results, each recomputed and compared before it counts. */
    probation: 8,
    /** Past probation, the lowest probability that a result is recomputed and compared (after it counts). */
    auditRate: 0.05,
    /** States before recent steps kept to roll back to when a forger is found (besides the run's start). */
    rollbackSnapshots: 32,
  },
  worker: {
    reconnectForS: 300,
    /** Seconds without a ping or message before a worker drops the connection; above heartbeatMs. */
    silenceTimeoutS: 20,
    /** Largest dataset a coordinator may announce, in MB (1e6 bytes). */
    maxDatasetMb: 1024,
    /** The dataset cache is kept under this many MB, least recently used first out. */
    cacheMaxMb: 4096,
  },
  train: {
    /** `train` computes on this thread only unless told otherwise; a worker defaults to the machine's cores. */
    threads: 1,
  },
} as const;
