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
    /** A --layers spec replaces hidden and activation; null: the MLP they describe. */
    layers: null,
    /** CSV features as an image [C, H, W]; null: flat (the embedded MNIST is 1x28x28 by itself). */
    inputShape: null,
    /** cross_entropy for class labels, mse for numeric targets. */
    loss: 'auto',
  },
  /** The optimization: every value the final weights are a function of, besides data and model. */
  training: {
    epochs: 3,
    batchSize: 64,
    shardSize: 16,
    /** sgd, adam or adamw (shared/optim/create.ts). */
    optimizer: 'sgd',
    /** SGD's; Adam's default learning rate is ADAM_DEFAULTS.lr (shared/optim/adam.ts), as are its betas and eps. */
    lr: 0.1,
    momentum: 0.9,
    nesterov: false,
    weightDecay: 0,
    /** After warmup (shared/optim/schedule.ts; its step size, decay and floor are LR_SCHEDULE_DEFAULTS'). */
    lrSchedule: 'constant',
    warmupSteps: 0,
    /** Clip the batch-mean gradient to this global L2 norm; 0: no clipping. */
    clipNorm: 0,
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
    /** Epochs without a better validation loss before stopping; 0: never stop early. */
    earlyStop: 0,
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
    /** Largest WebSocket message before a hello is accepted (a hello is under 1 kB). */
    preHelloMaxBytes: 4096,
    /** ms a client has to send an HTTP request's headers. */
    headersTimeoutMs: 10_000,
    /** ms a connection may stay idle before its WebSocket upgrade or an authorized request. */
    idleTimeoutMs: 10_000,
    /** ms an idle keep-alive HTTP connection is kept between requests. */
    keepAliveTimeoutMs: 5_000,
    /** Open connections at most, in total and from one address (an IPv4 address or an IPv6 /64). */
    maxConnections: 512,
    maxConnectionsPerIp: 64,
    /** After a failed token, the next one from that address waits this long, doubling per failure up to the max. */
    failedTokenDelayMs: 250,
    failedTokenMaxDelayMs: 30_000,
    /** A worker that misses this many task deadlines in a row is disconnected. */
    ejectAfterMisses: 3,
    /** A new or reconnected worker's first results, each recomputed and compared before it counts. */
    probation: 8,
    /** Past probation, the lowest probability that a result is recomputed and compared (after it counts). */
    auditRate: 0.05,
    /** States before recent steps kept to roll back to when a forger is found (besides the run's start). */
    rollbackSnapshots: 32,
    /** Publish each weights version at an immutable, cacheable URL for workers to fetch (behind an HTTP cache). */
    weightsOverHttp: false,
    /** With weightsOverHttp, the newest versions served at once; an audit of an older one carries its weights. */
    weightsVersionsKept: 4,
    /**
     * With --weights-prime-url, a prime (one version fetched through the cache) not done by then is given up and the
     * tasks go out: workers then wait for the cache's own fetch, as without priming.
     */
    weightsPrimeTimeoutMs: 10_000,
  },
  relay: {
    /** Where a relay's own workers join: beside a coordinator's default port on the same machine. */
    port: 8788,
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
