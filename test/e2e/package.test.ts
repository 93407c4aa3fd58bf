// The package as a user installs it: `npm pack` of this checkout (dist/ as built),
// installed from the tarball into an empty folder, runs the README's "Use as a library"
// example unchanged; its types check; importing it runs no command line, and its bin runs.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The first ```js block of the README's "Use as a library" section. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use as a library'));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  if (block === null) throw new Error('README.md has no ```js block under "Use as a library"');
  return block[1];
}

function npm(args: readonly string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('the packed package', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flocktrain-pack-'));
    // dist/ is built before the tests, so packing skips the prepare script's rebuild.
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--loglevel=error'], { cwd: ROOT });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new Error('npm pack wrote no tarball');
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'uses-flocktrain', private: true, type: 'module' }),
    );
    // Offline from npm's cache when it holds the dependencies, else from the registry.
    let install = npm(['install', '--offline', `./${tarball}`], dir);
    if (install.status !== 0) install = npm(['install', '--prefer-offline', `./${tarball}`], dir);
    if (install.status !== 0) throw new Error(`npm install of the tarball failed:\n${install.output}`);
  }, 240_000);

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the README example unchanged: it trains on data in memory and predicts', () => {
    writeFileSync(join(dir, 'example.mjs'), readmeExample());
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => /^epoch \d+: loss /.test(l))).toHaveLength(5);
    expect(lines[lines.length - 1]).toBe("[ 'red', 'blue' ]");
    expect(existsSync(join(dir, 'dots.safetensors'))).toBe(true);
  });

  it('its types check the README example under strict TypeScript', () => {
    writeFileSync(join(dir, 'example.mts'), readmeExample());
    const tsc = join(ROOT, 'node_modules/.bin/tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
    ];
    const r = spawnSync(tsc, [...flags, 'example.mts'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('ships types, no private flag, and importing it prints nothing', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules/flocktrain/package.json'), 'utf8')) as {
      private?: boolean;
      types: string;
    };
    expect(pkg.private).toBeUndefined();
    const types = readFileSync(join(dir, 'node_modules/flocktrain', pkg.types), 'utf8');
    expect(types).toMatch(/export \{ train/);
    expect(types).toMatch(/loadModel/);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('flocktrain')"], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
    // The command line still comes with it.
    const help = spawnSync(join(dir, 'node_modules/.bin/flocktrain'), ['predict', '--help'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/--model/);
  });
});
