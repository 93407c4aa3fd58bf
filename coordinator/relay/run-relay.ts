// `flocktrain relay`: one worker of a coordinator that computes with workers of its
// own. Upstream it is a Node worker (worker/node/main.ts: the handshake, reconnects and
// exit codes are the worker's) whose computer is a RelayComputer; downstream it is a
// coordinator's serving half (assembly.ts: hub, scheduler, verifier, dataset route,
// worker page and dashboard), started once the upstream welcome says what the run is.
// Its workers meet it as they would a coordinator: http and ws, or https and wss with
// --tls-cert/--tls-key (its --ca is for its coordinator's certificate, not its own), and
// named tokens of --tokens FILE besides --worker-token, revocable while it runs.
//
// It says ready upstream only once --min-workers of its own workers are ready; should
// they all leave later, it computes its coordinator's tasks itself until one joins.
//
// The relay downloads the dataset once from its coordinator (checking its hash) and
// serves the same bytes under the same hash, so its workers never reach the
// coordinator. Weights arrive once per version with the upstream task and go to each of
// its workers under the same version. When its coordinator finishes, the relay tells its
// workers so (close 4000) and exits 0.

import type { CoordinatorOptions } from '../commands/options.js';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { DEFAULTS } from '../../shared/defaults.js';
import { ConfigError, FlocktrainError } from '../../shared/errors.js';
import { createLogger, type LogOptions } from '../../shared/node/logger.js';
import { CloseCode } from '../../shared/protocol/codes.js';
import { ShardComputer, type ComputerSetup } from '../../worker/compute.js';
import { runWorker, type WorkerOptions } from '../../worker/node/main.js';
import { startCoordinator, type RunningCoordinator } from '../assembly.js';
import { generateToken } from '../auth.js';
import { Events } from '../events.js';
import { readTls } from '../run-coordinator.js';
import { ServedTokens, type TokenFlags } from '../served-tokens.js';
import type { TlsPem } from '../server.js';
import { RelayComputer } from './relay-computer.js';
import { servedDataset } from './relay-dataset.js';

export interface RelayOptions
  extends LogOptions,
    TokenFlags,
    Pick<
      WorkerOptions,
      'url' | 'token' | 'ca' | 'cacheDir' | 'maxDatasetMb' | 'cacheMaxMb' | 'reconnectFor' | 'silenceTimeout'
    > {
  /** null: "relay <hostname>/<pid>". */
  readonly name: string | null;
  /** Where the relay's own workers join. */
  readonly host: string;
  readonly port: number;
  /** The token its own workers present; null: a random one, printed at startup. */
  readonly workerToken: string | null;
  /** Its own ready workers to wait for before saying ready upstream. */
  readonly minWorkers: number;
  readonly taskTimeoutMinMs: number;
  readonly taskTimeoutMaxMs: number;
  readonly ejectAfterMisses: number;
  /** Verification of its own workers (as the coordinator's). */
  readonly probation: number;
  readonly auditRate: number;
  /** Origins, besides the relay's own, whose pages may open a worker WebSocket to it. */
  readonly allowedOrigins: readonly string[];
  /** PEM files to serve https and wss with, to its workers (`ca` is for its coordinator's); null: http and ws. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /** What peers may make its server hold, as a coordinator's (a room of tabs behind one NAT is one address). */
  readonly limits: CoordinatorOptions['limits'];
}

interface Fleet {
  /** What the run is, but for the dataset (its hash stands for it). */
  readonly key: string;
  readonly coordinator: RunningCoordinator;
  readonly computer: RelayComputer;
}

export async function runRelay(options: RelayOptions): Promise<number> {
  // Said before joining upstream rather than once the welcome comes (the port is taken again then).
  await checkPortFree(options.host, options.port);
  // Read now for the same reason: a bad path is one line before anything joins.
  const tls = options.tls === null ? null : readTls(options.tls);
  const tokens = new ServedTokens(options);
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain-relay');
  const token = options.workerToken ?? generateToken();
  const events = new Events(log);
  /** The fleet of the current run, and its start while under way. */
  const current: { fleet: Fleet | null; starting: Promise<Fleet> | null } = { fleet: null, starting: null };

  /** Called on every upstream welcome: the fleet is kept across reconnects to the same run. */
  const createComputer = async (setup: ComputerSetup): Promise<RelayComputer> => {
    const { dataset: _, report, ...run } = setup;
    const key = JSON.stringify(run);
    let fleet = current.fleet;
    if (fleet?.key !== key) {
      current.fleet = null;
      await fleet?.coordinator.close(CloseCode.SHUTDOWN, 'the coordinator started another run');
      current.starting = startFleet(setup, key, { token, tls, tokens }, options, log, events);
      fleet = await current.starting;
      current.fleet = fleet;
      tokens.catchUp(fleet.coordinator);
    }
    fleet.computer.reportTo(report);
    await enoughWorkers(fleet.coordinator, options.minWorkers, events);
    return fleet.computer;
  };

  // A Ctrl-C makes the upstream client leave (runWorker's handler); the relay's workers are then told it stopped.
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Followed across runs: a fleet started later has the file's tokens as they are then.
  const stopFollowing = tokens.follow(() => current.fleet?.coordinator ?? null, log);
  const code = await runWorker({
    ...options,
    name: options.name ?? `relay ${hostname()}/${process.pid}`,
    threads: 1,
    faults: { slowdown: 1, delayMs: 0 },
    createComputer,
    log,
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  stopFollowing();
  // A fleet still starting when the upstream ended is closed all the same.
  const last = (await current.starting?.catch(() => null)) ?? null;
  if (last !== null) {
    const { bytesIn, bytesOut } = last.coordinator.scheduler.stats;
    log.info({ ...last.computer.tally, fleetBytesIn: bytesIn, fleetBytesOut: bytesOut }, 'relay done');
    if (interrupted) await last.coordinator.close(CloseCode.SHUTDOWN, 'relay interrupted');
    else if (code === 0) await last.coordinator.close(CloseCode.DONE, 'training finished');
    else await last.coordinator.close(CloseCode.SHUTDOWN, 'relay lost its coordinator');
  }
  return code;
}

/** startCoordinator, with a failure to listen said in one line (the upstream client reports it and exits). */
async function serve(...args: Parameters<typeof startCoordinator>): Promise<RunningCoordinator> {
  try {
    return await startCoordinator(...args);
  } catch (err) {
    const why = err instanceof FlocktrainError ? err.message : ((err as NodeJS.ErrnoException).code ?? String(err));
    throw new Error(`the relay cannot serve its workers: ${why}`);
  }
}

/** Throws a one-line ConfigError when `port` on `host` cannot be listened on now. */
async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, host, resolve);
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'EADDRINUSE' ? 'is in use: pick another with --port (0 = any free port)' : `(${code})`;
    throw new ConfigError(`port ${port} on ${host} ${why}`);
  }
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** Resolves once `min` workers of the fleet are ready. */
function enoughWorkers(coordinator: RunningCoordinator, min: number, events: Events): Promise<void> {
  const { scheduler } = coordinator;
  if (scheduler.workerCount >= min) return Promise.resolve();
  events.emit('waitingForWorkers', { workers: scheduler.workerCount, minWorkers: min });
  return new Promise((resolve) => {
    const stop = events.on('workerJoined', () => {
      if (scheduler.workerCount < min) return;
      stop();
      resolve();
    });
  });
}

/** Starts serving the run `setup` describes to the relay's own workers, and says how they join. */
async function startFleet(
  setup: ComputerSetup,
  key: string,
  access: { readonly token: string; readonly tls: TlsPem | null; readonly tokens: ServedTokens },
  options: RelayOptions,
  log: Logger,
  events: Events,
): Promise<Fleet> {
  const { spec, datasetHash, shardSize, kernels, wireDtype } = setup;
  const { token, tls, tokens } = access;
  const dataset = servedDataset(setup.dataset, datasetHash);
  const local = new ShardComputer(spec, dataset, shardSize, kernels, wireDtype);
  const paramCount = local.paramCount;
  // The coordinator's batch size is not in the welcome; no step holds more shards than the dataset fills.
  const batchSize = dataset.numSamples;
  const coordinator = await serve(
    {
      run: { config: { batchSize, shardSize, kernels, wireDtype }, spec, dataset, datasetHash },
      // The weights come with the first task.
      params: new Float32Array(paramCount),
      version: null,
      host: options.host,
      port: options.port,
      token,
      ...tokens.setup,
      tls,
      allowedOrigins: options.allowedOrigins,
      limits: options.limits,
      scheduler: {
        minWorkers: 1,
        taskTimeoutMinMs: options.taskTimeoutMinMs,
        taskTimeoutMaxMs: options.taskTimeoutMaxMs,
        ejectAfterMisses: options.ejectAfterMisses,
      },
      audit: { probation: options.probation, auditRate: options.auditRate },
      helloTimeoutMs: DEFAULTS.coordinator.helloTimeoutMs,
      heartbeatMs: DEFAULTS.coordinator.heartbeatMs,
      closeGraceMs: DEFAULTS.coordinator.closeGraceMs,
    },
    log,
    events,
  );
  const computer = new RelayComputer({ scheduler: coordinator.scheduler, local, events }, paramCount, log);
  events.on('workerBanned', (e) =>
    computer.reportBan({ workerId: e.workerId, agent: e.agent, remote: e.remote, detail: e.detail }),
  );
  const { url, pageUrl } = coordinator;
  events.emit('join', {
    url,
    token,
    command: `npx flocktrain worker --url ${url} --token ${token}`,
    link: `${pageUrl}#token=${token}`,
    dashboard: `${pageUrl}dashboard#token=${coordinator.dashboardToken}`,
  });
  return { key, coordinator, computer };
}
