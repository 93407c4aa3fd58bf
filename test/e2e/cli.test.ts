// The command line as a user meets it: MNIST accuracy out of the box, the join
// command, one-line errors (never a stack trace) for bad data, flags, tokens and
// ports, complete --help, the --out/--init round trip, and Ctrl-C on a coordinator.

import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../coordinator/cli/commands.js';
import { flagName } from '../../shared/node/flags.js';
import {
  allExit,
  closedPort,
  coordinatorDone,
  descendants,
  oneLineError,
  Sandbox,
  useE2eCleanup,
  WARN,
  workerIdOf,
  type LogLine,
} from './harness.js';

useE2eCleanup();

/** A small synthetic run: `samples` blobs (80% for training), 40 per step in shards of 8. */
function blobs(samples = 600, hidden = 16): string[] {
  return [
    '--dataset',
    'blobs',
    '--samples',
    String(samples),
    '--hidden',
    String(hidden),
    '--batch-size',
    '40',
    '--shard-size',
    '8',
  ];
}

/** The JSON header of a safetensors file: u64 LE length, then that many bytes of JSON. */
function safetensorsHeader(path: string): Record<string, unknown> {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, unknown>;
}

describe('MNIST with default flags', () => {
  it('train: 1 epoch reaches validation accuracy ≥ 0.90', async () => {
    const sb = new Sandbox();
    const r = await sb.run(['train', '--epochs', '1', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const epoch = r.lines.find((l) => l.msg === 'epoch');
    const done = r.lines.find((l) => l.msg === 'done');
    expect(epoch?.valAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(done?.valAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(done?.steps).toBe(125); // 8,000 training digits / 64
  });

  it('coordinator --workers 2: logs the join command, 1 epoch reaches ≥ 0.90, its workers exit cleanly', async () => {
    const sb = new Sandbox();
    const c = await sb.coordinator(['--workers', '2', '--epochs', '1']);
    expect(c.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(c.url).not.toMatch(/:0$/);
    expect(c.token).toMatch(/^[0-9a-f]{32}$/);
    expect(c.join.command).toBe(`npx flocktrain worker --url ${c.url} --token ${c.token}`);
    const done = await coordinatorDone(c);
    expect(done.valAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(c.proc.linesWithMsg('epoch')[0]?.valAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(c.proc.linesWithMsg('worker joined')).toHaveLength(2);
    expect(c.proc.linesWithMsg('local worker exited'), 'a local worker did not exit cleanly').toHaveLength(0);
  });
});

describe('one-line errors, no stack traces', () => {
  it.each(['train', 'coordinator'])(
    '%s: a CSV with a non-numeric feature names the file, line and column',
    async (command) => {
      const sb = new Sandbox();
      const csv = sb.path('bad.csv');
      writeFileSync(csv, 'x1,x2,label\n1,2,a\n3,4,b\n5,oops,a\n7,8,b\n');
      const r = await sb.run(
        command === 'coordinator' ? ['coordinator', '--port', '0', '--csv', csv] : ['train', '--csv', csv],
      );
      expect(r.code).toBe(1);
      const line = oneLineError(r.stderr);
      expect(line).toContain(`${csv}:4:x2`);
      expect(line).toContain('"oops"');
    },
  );

  it('a missing CSV file', async () => {
    const sb = new Sandbox();
    const csv = sb.path('nope.csv');
    const r = await sb.run(['train', '--csv', csv]);
    expect(r.code).toBe(1);
    const line = oneLineError(r.stderr);
    expect(line).toContain(csv);
    expect(line).toContain('ENOENT');
  });

  it.each([
    [['train', '--bogus', '1'], /bogus/],
    [['coordinator', '--wrokers', '2'], /wrokers/],
    [['train', '--lr', '-1'], /--lr .*-1/],
    [['train', '--batch-size', '0'], /--batch-size .*0/],
    [['train', '--hidden', '12,x'], /--hidden .*12,x/],
    [['train', '--batch-size', '8', '--shard-size', '16'], /--shard-size/],
    [['train', '--momentum', '0', '--nesterov'], /--nesterov/],
    [['train', '--activation', 'gelu'], /activation/],
    [['coordinator', '--min-workers', '0'], /--min-workers/],
    [['train', '--hidden', '16', '--hidden', '8'], /--hidden/],
    [['worker', '--token', 'x'], /url/],
    [['worker', '--url', 'http://127.0.0.1:1', '--token', 'x'], /--url/],
    [
      ['worker', '--url', 'ws://127.0.0.1:1', '--token', 'x', '--threads', '0'],
      /--threads must be an integer ≥ 1, got 0/,
    ],
    [['worker', '--url', 'ws://127.0.0.1:1', '--token', 'x', '--threads', '1.5'], /--threads .*1\.5/],
    [['train', '--lr', 'abc'], /^flocktrain: --lr must be a number, got "abc"$/],
    [['train', '--log-level', 'loud'], /--log-level must be one of trace, .*, got "loud"/],
    [['train', '--keep-checkpoints', '0'], /--keep-checkpoints must be an integer ≥ 1, got 0/],
    [['coordinator', '--port', '70000'], /--port must be an integer in \[0, 65535\], got 70000/],
    [['coordinator', '--task-timeout-min', '500', '--task-timeout-max', '100'], /--task-timeout-max .*500.*100/],
    [
      ['worker', '--url', 'ws://127.0.0.1:1', '--token', 'x', '--silence-timeout', '5'],
      /--silence-timeout must be more than the coordinator's 5 s ping period, got 5/,
    ],
    [['train', '--epochs'], /epochs/],
  ])('flocktrain %j', async (args, mention) => {
    const r = await new Sandbox().run(args);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(oneLineError(r.stderr)).toMatch(mention);
  });
});

describe('--help', () => {
  const COMMON = ['log-format', 'log-level'];
  const RUN = [
    ...COMMON,
    'dataset',
    'samples',
    'csv',
    'label-column',
    'standardize',
    'val-fraction',
    'hidden',
    'activation',
    'loss',
    'epochs',
    'batch-size',
    'shard-size',
    'lr',
    'momentum',
    'nesterov',
    'weight-decay',
    'seed',
    'init',
    'out',
    'log-every',
  ];
  /** At least these per command; every other flag the commands declare is checked against COMMANDS below. */
  const FLAGS: Record<string, string[]> = {
    train: RUN,
    coordinator: [...RUN, 'host', 'port', 'token', 'workers', 'min-workers'],
    worker: [...COMMON, 'url', 'token', 'cache-dir', 'name', 'threads'],
    predict: ['model', 'csv', 'idx-images', 'npy-x', 'out'],
    evaluate: ['model', 'csv', 'idx-images', 'idx-labels', 'npy-x', 'npy-y', 'dataset', 'json'],
    relay: [
      ...COMMON,
      'url',
      'token',
      'ca',
      'host',
      'port',
      'min-workers',
      'worker-token',
      'tokens',
      'dashboard-token',
      'tls-cert',
      'tls-key',
      'max-connections',
      'max-connections-per-ip',
      'idle-timeout',
    ],
  };

  /** The flags a --help text lists, each with the start of its description. */
  function listed(help: string): Map<string, string> {
    return new Map([...help.matchAll(/^ {2}--([a-z][a-z0-9-]*)[ \t]+(.*)$/gm)].map((m) => [m[1], m[2].trim()]));
  }

  it('each command lists its flags with a description, and every flag a command declares is listed', async () => {
    const sb = new Sandbox();
    const helps = await Promise.all(
      Object.keys(FLAGS).map(async (command) => {
        const r = await sb.run([command, '--help']);
        expect(r.code, r.stderr).toBe(0);
        return [command, listed(r.process.otherLines.join('\n'))] as const;
      }),
    );
    const everywhere = new Set<string>();
    for (const [command, flags] of helps) {
      for (const flag of [...FLAGS[command], 'help'])
        expect(flags.has(flag), `${command} --help lacks --${flag}`).toBe(true);
      for (const [flag, text] of flags) {
        expect(text, `${command} --help: --${flag} has no description`).toMatch(/[a-z]{3}/i);
        everywhere.add(flag);
      }
    }
    // Flags declared `hidden: true` (testing-only fault injection) stay out of --help on purpose.
    const declared = COMMANDS.flatMap((c) =>
      Object.values(c.groups).flatMap((g) =>
        Object.entries(g.flags)
          .filter(([, flag]) => flag.hidden !== true)
          .map(([key]) => flagName(key)),
      ),
    );
    expect(declared.length).toBeGreaterThan(20);
    for (const flag of declared)
      expect(everywhere.has(flag), `--${flag} is declared by a command but no --help lists it`).toBe(true);
  });

  it.each([['--help'], ['help']])('the top-level %s names the commands', async (arg) => {
    const r = await new Sandbox().run([arg]);
    expect(r.code).toBe(0);
    const text = r.process.otherLines.join('\n');
    for (const command of ['train', 'coordinator', 'worker', 'relay', 'help'])
      expect(text).toMatch(new RegExp(`flocktrain ${command}\\s`));
  });

  it('help <command> prints what <command> --help prints (npx keeps a bare --help to itself)', async () => {
    const sb = new Sandbox();
    for (const command of ['train', 'coordinator', 'worker']) {
      const [viaHelp, viaFlag] = await Promise.all([sb.run(['help', command]), sb.run([command, '--help'])]);
      expect(viaHelp.code, viaHelp.stderr).toBe(0);
      expect(viaHelp.process.otherLines.join('\n')).toBe(viaFlag.process.otherLines.join('\n'));
      expect(listed(viaHelp.process.otherLines.join('\n')).size).toBeGreaterThan(3);
    }
  });

  it.each([
    [['help', 'bogus'], /help: no command "bogus"; the commands are train, coordinator, worker/],
    [['help', 'train', 'worker'], /help takes at most one command/],
  ])('flocktrain %j: one line, exit code 2', async (args, mention) => {
    const r = await new Sandbox().run(args);
    expect(r.code).toBe(2);
    expect(oneLineError(r.stderr)).toMatch(mention);
  });
});

describe('workers that cannot take part', () => {
  it('a wrong token: the worker exits 1 with one line; the coordinator warns, trains on with the other', async () => {
    const sb = new Sandbox();
    const args = [...blobs(2000), '--epochs', '2', '--log-every', '1'];
    const c = await sb.coordinator(args);
    const good = sb.worker(c, 'good');
    await workerIdOf(c, 'good');
    await c.proc.waitForMsg('step');
    // Hold the good worker still so the run is certainly in progress when the intruder knocks.
    good.signal('SIGSTOP');
    const bad = sb.worker({ url: c.url, token: 'not-the-token' }, 'bad');
    const exit = await bad.waitForExit();
    good.signal('SIGCONT');
    expect(exit.code).toBe(1);
    const line = oneLineError(bad.stderr);
    expect(line).toMatch(/token/);
    expect(line).not.toContain('not-the-token');
    const rejected = await c.proc.waitForMsg('rejected: wrong or missing token');
    expect(rejected.level).toBe(WARN);
    const rejectedAt = c.proc.lines.indexOf(rejected);

    const done = await coordinatorDone(c);
    expect(done.steps).toBe(80);
    expect(c.proc.lines.slice(rejectedAt).some((l) => l.msg === 'step')).toBe(true);
    expect(c.proc.linesWithMsg('worker joined', (l: LogLine) => l.agent === 'bad')).toHaveLength(0);
    expect((await good.waitForExit()).code, good.stderr).toBe(0);
  });

  it('a closed port: the worker exits 1 with one "cannot connect" line', async () => {
    const port = await closedPort();
    const r = await new Sandbox().run([
      'worker',
      '--url',
      `ws://127.0.0.1:${port}`,
      '--token',
      't',
      '--log-format',
      'json',
    ]);
    expect(r.code).toBe(1);
    const line = oneLineError(r.stderr);
    expect(line).toMatch(/cannot connect/);
    expect(line).toContain(String(port));
  });
});

describe('--out and --init', () => {
  it('round trip: weights written by --out train on with --init, in train and coordinator alike', async () => {
    const sb = new Sandbox();
    const a = sb.path('a.safetensors');
    const first = await sb.train([...blobs(), '--epochs', '1', '--out', a]);
    expect(first.out).toBe(a);
    const header = safetensorsHeader(a);
    expect((header.__metadata__ as Record<string, string>)['flocktrain.weightsHash']).toBe(first.weightsHash);
    expect(Object.keys(header).filter((k) => k !== '__metadata__')).toEqual([
      '0.weight',
      '0.bias',
      '2.weight',
      '2.bias',
    ]);

    const resumed = await sb.train([...blobs(), '--epochs', '1', '--init', a]);
    expect(resumed.weightsHash).toMatch(/^[0-9a-f]{64}$/);
    expect(resumed.weightsHash).not.toBe(first.weightsHash);

    const c = await sb.coordinator([...blobs(), '--epochs', '1', '--init', a]);
    const w = sb.worker(c, 'w');
    expect((await coordinatorDone(c)).weightsHash).toBe(resumed.weightsHash);
    expect((await w.waitForExit()).code).toBe(0);
  });

  it('--init with weights for another --hidden: one line naming the tensor and both shapes', async () => {
    const sb = new Sandbox();
    const a = sb.path('a.safetensors');
    await sb.train([...blobs(), '--epochs', '1', '--out', a]);
    const r = await sb.run(['train', ...blobs(600, 8), '--epochs', '1', '--init', a, '--log-format', 'json']);
    expect(r.code).toBe(1);
    const line = oneLineError(r.stderr);
    expect(line).toContain(a);
    expect(line).toContain('"0.weight"');
    expect(line).toContain('[8,2]');
    expect(line).toContain('[16,2]');
    expect(r.lines.some((l) => l.msg === 'done')).toBe(false);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT mid-training: coordinator logs done, interrupted: true, writes --out, exits 0; workers exit', async () => {
    const sb = new Sandbox();
    const out = sb.path('interrupted.safetensors');
    // Far more steps than the test waits for.
    const c = await sb.coordinator([...blobs(4000), '--epochs', '200', '--workers', '2', '--out', out]);
    await c.proc.waitForMsg('worker joined', (l) => l.workers === 2);
    const step = await c.proc.waitForMsg('step', (l) => typeof l.step === 'number' && l.step >= 20);
    const workers = descendants(c.proc.pid);
    expect(workers).toHaveLength(2);

    c.proc.signal('SIGINT');
    const done = await coordinatorDone(c, 15_000);
    expect(done.interrupted).toBe(true);
    expect(done.steps).toBeGreaterThanOrEqual(step.step as number);
    expect(done.steps).toBeLessThan(200 * 80);
    expect(done.out).toBe(out);
    const warned = c.proc.lines.find((l) => l.level === WARN && String(l.msg).startsWith('interrupted'));
    expect(warned).toBeDefined();
    const meta = safetensorsHeader(out).__metadata__ as Record<string, string>;
    expect(meta['flocktrain.weightsHash']).toBe(done.weightsHash);
    expect(await allExit(workers, 5_000), 'local workers still running after the coordinator exited').toBe(true);
  });
});
