// `flocktrain coordinator`: serves workers over WebSocket, trains with them, and
// (with --workers N) spawns N local worker processes. Prints the command with which
// more workers can join from other machines.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { DEFAULTS } from '../shared/defaults.js';
import { ConfigError } from '../shared/errors.js';
import { CloseCode } from '../shared/protocol/codes.js';
import { startCoordinator } from './assembly.js';
import { generateToken } from './auth.js';
import type { CoordinatorOptions } from './commands/options.js';
import { Events, type JoinInfo } from './events.js';
import { createLogger } from '../shared/node/logger.js';
import { announceRun, trainAndWrite, trainerOptions } from './run-train.js';
import type { TlsPem } from './server.js';
import { prepareRun, type PreparedRun } from './setup.js';
import { ServedTokens } from './served-tokens.js';
import { Trainer, type TrainSummary } from './trainer.js';
import { TerminalView, wantsView } from './terminal-view.js';
import { DivergedError } from '../shared/errors.js';

export async function runCoordinator(options: CoordinatorOptions): Promise<number> {
  const view = wantsView(options);
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain');
  const events = view ? new Events(log, undefined, TerminalView.DRAWN) : new Events(log);
  if (view) new TerminalView(process.stdout, events, true);
  try {
    await serveAndTrain(prepareRun(options.config), options, log, events, { signals: true });
    return 0;
  } catch (err) {
    if (!(err instanceof DivergedError)) throw err;
    log.error({ err: err.message }, 'diverged');
    return 1;
  }
}

/**
 * Serves `run` to workers and trains with them to the end, writing options.out; throws
 * DivergedError when training diverges. `signals`: Ctrl-C stops after the current step
 * (a library caller stops through the trainer `onTrainer` gets, with where workers join).
 */
export async function serveAndTrain(
  run: PreparedRun,
  options: CoordinatorOptions,
  log: Logger,
  events: Events,
  hooks: {
    readonly signals: boolean;
    readonly onTrainer?: (trainer: Trainer, join: { url: string; token: string }) => void;
    /** Told how workers join, once the coordinator listens. */
    readonly onJoin?: (join: JoinInfo) => void;
  },
): Promise<{ readonly summary: TrainSummary; readonly trainer: Trainer }> {
  const trainerOpts = trainerOptions(run, options, log, events);
  const token = options.token ?? generateToken();
  const tls = options.tls === null ? null : readTls(options.tls);
  const tokens = new ServedTokens(options);
  const coordinator = await startCoordinator(
    {
      run,
      params: trainerOpts.initialParams,
      version: trainerOpts.resume?.state.version ?? 0,
      globalStep: trainerOpts.resume?.state.globalStep ?? 0,
      host: options.host,
      port: options.port,
      token,
      ...tokens.setup,
      tls,
      allowedOrigins: options.allowedOrigins,
      limits: options.limits,
      scheduler: {
        minWorkers: options.minWorkers,
        taskTimeoutMinMs: options.taskTimeoutMinMs,
        taskTimeoutMaxMs: options.taskTimeoutMaxMs,
        ejectAfterMisses: options.ejectAfterMisses,
      },
      audit: { probation: options.probation, auditRate: options.auditRate },
      weightsOverHttp: options.weightsOverHttp,
      weightsPrimeUrl: options.weightsPrimeUrl ?? null,
      helloTimeoutMs: DEFAULTS.coordinator.helloTimeoutMs,
      heartbeatMs: DEFAULTS.coordinator.heartbeatMs,
      closeGraceMs: DEFAULTS.coordinator.closeGraceMs,
    },
    log,
    events,
  );
  const { url, pageUrl, scheduler } = coordinator;
  // The join link opens the worker page (a browser tab becomes a worker); the dashboard
  // sits beside it. Tokens ride in the fragment, which a browser never sends: not to
  // this server's or a proxy's log, nor in a Referer.
  const join: JoinInfo = {
    url,
    token,
    command: `npx flocktrain worker --url ${url} --token ${token}`,
    link: `${pageUrl}#token=${token}`,
    dashboard: `${pageUrl}dashboard#token=${coordinator.dashboardToken}`,
  };
  events.emit('join', join);
  hooks.onJoin?.(join);
  announceRun(events, run);
  const stopWatching = tokens.follow(() => coordinator, log);

  // Steps compute on the workers: the coordinator validates an epoch while they compute the next.
  const trainer = new Trainer(run, scheduler, log, {
    ...trainerOpts,
    snapshots: options.rollbackSnapshots,
    overlapEvaluation: true,
  });
  hooks.onTrainer?.(trainer, { url, token });
  // A self-signed certificate is the local workers' CA (a CA-signed one verifies either way).
  const children = spawnLocalWorkers(options.workers, url, token, log, options.tls?.certFile ?? null);
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    log.warn('interrupted: stopping after the current step');
    trainer.requestStop();
    if (interrupts > 1) scheduler.cancel('interrupted');
    else scheduler.cancelWhenStarved('interrupted');
  };
  if (hooks.signals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  let summary: TrainSummary | null = null;
  try {
    summary = await trainAndWrite(trainer, run, options.out, events, () => scheduler.verification());
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stopWatching();
    // Interrupted: remote workers keep trying to reconnect, for a resumed coordinator.
    if (summary?.interrupted === true) await coordinator.close(CloseCode.SHUTDOWN, 'coordinator interrupted');
    else await coordinator.close(CloseCode.DONE, 'training finished');
    // Connected workers got the stop message and exit by themselves; any still starting
    // up (never connected) are told by signal.
    await waitForExit(children, 1500, 'SIGTERM');
    await waitForExit(children, 3000, 'SIGKILL');
  }
  return { summary, trainer };
}

/** The PEM files of --tls-cert and --tls-key, read now so a bad path is one line before anything listens. */
export function readTls(files: { readonly certFile: string; readonly keyFile: string }): TlsPem {
  const read = (file: string, flag: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const pem = { cert: read(files.certFile, '--tls-cert'), key: read(files.keyFile, '--tls-key') };
  if (!pem.cert.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`--tls-cert ${files.certFile}: not a PEM certificate`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.key))
    throw new ConfigError(`--tls-key ${files.keyFile}: not a PEM private key`);
  return pem;
}

export function spawnLocalWorkers(
  count: number,
  url: string,
  token: string,
  log: Logger,
  caFile: string | null = null,
): ChildProcess[] {
  const cli = fileURLToPath(new URL('./cli/bin.js', import.meta.url));
  // The workers share this machine's cores: more compute threads than cores only
  // adds switching and messages (same bits either way).
  const threads = String(Math.max(1, Math.floor(availableParallelism() / Math.max(1, count))));
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(
      process.execPath,
      [
        cli,
        'worker',
        '--url',
        url,
        '--token',
        token,
        '--name',
        `local-${i + 1}`,
        '--threads',
        threads,
        '--log-format',
        'json',
        '--log-level',
        'warn',
        ...(caFile === null ? [] : ['--ca', caFile]),
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        // Own process group: a Ctrl-C in the terminal reaches the coordinator, which
        // finishes the step and then stops its workers itself.
        detached: true,
      },
    );
    child.on('exit', (code, signal) => {
      if (code !== 0) log.warn({ worker: `local-${i + 1}`, code, signal }, 'local worker exited');
    });
    children.push(child);
  }
  if (count > 0) log.info({ count, threads: Number(threads) }, 'spawned local workers');
  return children;
}

/** Waits for the children to exit; those still running after timeoutMs get `signal`. */
export async function waitForExit(
  children: ChildProcess[],
  timeoutMs: number,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            child.kill(signal);
            resolve();
          }, timeoutMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
}
