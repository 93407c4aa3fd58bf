// `node dist/scripts/link-proxy.js --listen 9001 --target 127.0.0.1:8787 --latency 20 --bandwidth 100mbit`:
// the link simulator of scripts/link/link-proxy.ts as a command, for trying a
// coordinator and its workers over a slow link by hand. Runs until Ctrl-C, then logs
// what it carried. Errors in the flags print as one line.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createLogger } from '../shared/node/logger.js';
import { ConfigError, FlocktrainError } from '../shared/errors.js';
import { describeShape, parseBandwidth, parseLatency, type LinkShape } from './link/link-shape.js';
import { startLinkProxy } from './link/link-proxy.js';

function parseTarget(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text.trim());
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || !(Number.isInteger(port) && port > 0 && port <= 65535))
    throw new ConfigError(`--target must be HOST:PORT like 127.0.0.1:8787 or [::1]:8787, got "${text}"`);
  return { host: m[1] ?? m[2], port };
}

function parsePort(flag: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 0 && v <= 65535))
    throw new ConfigError(`--${flag} must be a port in [0, 65535] (0: a free one), got ${v}`);
  return v;
}

/** The override of one direction, from its optional flags. */
function override(latency: string | undefined, bandwidth: string | undefined): Partial<LinkShape> {
  return {
    ...(latency === undefined ? {} : { latencyMs: parseLatency(latency) }),
    ...(bandwidth === undefined ? {} : { bandwidthBitsPerSec: parseBandwidth(bandwidth) }),
  };
}

function fail(message: string, code: number): never {
  process.stderr.write(`link-proxy: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const a = await yargs(argv)
    .scriptName('link-proxy')
    .usage(
      '$0 --listen PORT --target HOST:PORT [--latency MS] [--bandwidth RATE]\n\n' +
        'A TCP proxy that acts as a slower link.',
    )
    .option('listen', { type: 'number', default: 0, describe: 'port to listen on (0: a free one, logged)' })
    .option('listen-host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
    .option('target', { type: 'string', demandOption: true, describe: 'where to forward, HOST:PORT' })
    .option('latency', { type: 'string', default: '0', describe: 'one-way latency of each direction: 20, 20ms, 1.5s' })
    .option('bandwidth', {
      type: 'string',
      default: 'unlimited',
      describe: 'rate of each direction: 100mbit, 1gbit, 800kbit (SI, bits/s), unlimited',
    })
    .option('up-latency', { type: 'string', describe: 'client → target latency (overrides --latency)' })
    .option('up-bandwidth', { type: 'string', describe: 'client → target rate (overrides --bandwidth)' })
    .option('down-latency', { type: 'string', describe: 'target → client latency (overrides --latency)' })
    .option('down-bandwidth', { type: 'string', describe: 'target → client rate (overrides --bandwidth)' })
    .option('max-queued', {
      type: 'number',
      describe: 'bytes a direction holds before it stops reading (default: 2 × bandwidth-delay product, ≥ 1 MiB)',
    })
    .option('log-format', { choices: ['auto', 'json', 'pretty'] as const, default: 'auto' as const })
    .option('log-level', {
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const,
      default: 'info',
    })
    .strict()
    .help()
    .fail((msg, err) => {
      if (err) throw err;
      fail(`${msg.replace(/\s*\n\s*/g, ' ')} (see --help)`, 2);
    })
    .parseAsync();
  const log = createLogger(a['log-format'], a['log-level'], 'link-proxy');
  const proxy = await startLinkProxy({
    listenPort: parsePort('listen', a.listen),
    listenHost: a['listen-host'],
    target: parseTarget(a.target),
    latencyMs: parseLatency(a.latency),
    bandwidthBitsPerSec: parseBandwidth(a.bandwidth),
    up: override(a['up-latency'], a['up-bandwidth']),
    down: override(a['down-latency'], a['down-bandwidth']),
    ...(a['max-queued'] === undefined ? {} : { maxQueuedBytes: a['max-queued'] }),
    log,
  });
  log.info(
    { port: proxy.port, target: a.target, up: describeShape(proxy.up), down: describeShape(proxy.down) },
    'listening',
  );
  const stop = (): void => {
    void proxy.close().then(() => {
      log.info(proxy.stats(), 'closed');
      process.exitCode = 0;
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

try {
  await main(hideBin(process.argv));
} catch (err) {
  if (err instanceof FlocktrainError) fail(err.message, 2);
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('E'))
    fail(err.message, 1);
  throw err;
}
