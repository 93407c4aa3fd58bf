// `flocktrain coordinator`: serves workers over WebSocket, trains with them, and
// (with --workers N) spawns N local worker processes. Prints the command with which
// more workers can join from other machines.

import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { DEFAULTS } from '../shared/defaults.js';
import { CloseCode } from '../shared/protocol/codes.js';
import { startCoordinator } from './assembly.js';
import { generateToken } from './auth.js';
import type { CoordinatorOptions } from './commands/options.js';
import { Events } from './events.js';
import { createLogger } from '../shared/node/logger.js';
import { announceRun, trainerOptions, trainToEnd } from './run-train.js';
import { prepareRun } from './setup.js';
import { Trainer } from './trainer.js';

export async function runCoordinator(options: CoordinatorOptions): Promise<number> {
  const log = createLogger(options.logFormat, options.logLevel, 'flocktrain');
  const events = new Events(log);
  const run = prepareRun(options.config);
  const trainerOpts = trainerOptions(run, options, log, events);
  const token = options.token ?? generateToken();
  const coordinator = await startCoordinator(
    {
      run,
      params: trainerOpts.initialParams,
      version: trainerOpts.resume?.state.version ?? 0,
      host: options.host,
      port: options.port,
      token,
      scheduler: {
        minWorkers: options.minWorkers,
        taskTimeoutMinMs: options.taskTimeoutMinMs,
        taskTimeoutMaxMs: options.taskTimeoutMaxMs,
      },
      audit: { probation: options.probation, auditRate: options.auditRate },
      helloTimeoutMs: DEFAULTS.coordinator.helloTimeoutMs,
      heartbeatMs: DEFAULTS.coordinator.heartbeatMs,
      closeGraceMs: DEFAULTS.coordinator.closeGraceMs,
    },
    log,
    events,
  );
  const { url, scheduler } = coordinator;
  // The join link opens the worker page (a browser tab becomes a worker); the dashboard sits beside it.
  const page = `${url.replace(/^ws/, 'http')}/`;
  log.info(
    {
      url,
      token,
      command: `npx flocktrain worker --url ${url} --token ${token}`,
      link: `${page}?token=${token}`,
      dashboard: `${page}dashboard?token=${token}`,
    },
    'join',
  );
  announceRun(events, run);

  const trainer = new Trainer(run, scheduler, log, { ...trainerOpts, snapshots: options.rollbackSnapshots });
  const children = spawnLocalWorkers(options.workers, url, token, log);
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    log.warn('interrupted: stopping after the current step');
    trainer.requestStop();
    if (interrupts > 1) scheduler.cancel('interrupted');
    else scheduler.cancelWhenStarved('interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: { readonly code: number; readonly interrupted: boolean } = { code: 0, interrupted: false };
  try {
    outcome = await trainToEnd(trainer, run, options.out, events, log, () => scheduler.verification());
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Interrupted: remote workers keep trying to reconnect, for a resumed coordinator.
    if (outcome.interrupted) await coordinator.close(CloseCode.SHUTDOWN, 'coordinator interrupted');
    else await coordinator.close(CloseCode.DONE, 'training finished');
    // Connected workers got the stop message and exit by themselves; any still starting
    // up (never connected) are told by signal.
    await waitForExit(children, 1500, 'SIGTERM');
    await waitForExit(children, 3000, 'SIGKILL');
  }
  return outcome.code;
}

export function spawnLocalWorkers(count: number, url: string, token: string, log: Logger): ChildProcess[] {
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
