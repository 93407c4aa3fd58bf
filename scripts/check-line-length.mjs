// Fails with file:line for every tracked .ts, .mjs or .json line longer than MAX characters. Biome wraps code at
// the same width but cannot break string literals, template literals or comments; this catches those.
// Plain Node with no dependency, so `npm run lint` can run it right after biome.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const MAX = 120;
const EXCLUDED = [/(^|\/)package-lock\.json$/, /^test\/fixtures\//];

const files = execFileSync('git', ['ls-files', '-z', '--', '*.ts', '*.mjs', '*.json'], { encoding: 'utf8' })
  .split('\0')
  .filter((file) => file !== '' && !EXCLUDED.some((pattern) => pattern.test(file)));

let long = 0;
for (const file of files) {
  const lines = readFileSync(file, 'utf8').split('\n');
  for (const [i, line] of lines.entries()) {
    // Characters as an editor counts them (code points), not UTF-16 units: '…' and '×' are one column each.
    const length = [...line].length;
    if (length > MAX) {
      console.error(`${file}:${i + 1}: ${length} characters (at most ${MAX})`);
      long++;
    }
  }
}
if (long > 0) {
  console.error(
    `${long} line${long === 1 ? '' : 's'} over ${MAX} characters: break strings into parts, rewrap comments`,
  );
  process.exit(1);
}
