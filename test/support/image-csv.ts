// A small image dataset as a CSV file, for tests of convolutional models through the
// CLI (--csv with --input-shape): each row is a C×H×W image, channel by channel, row
// by row, and its class is which vertical band of the image is bright, plus a little
// deterministic texture so that no two rows are equal.

import { writeFileSync } from 'node:fs';

/** Writes `n` rows of C×H×W features and a `label` column with `classes` classes (0, 1, …). */
export function writeImageCsv(
  path: string,
  n: number,
  [C, H, W]: readonly [number, number, number],
  classes = 3,
): void {
  const F = C * H * W;
  const rows = [[...Array.from({ length: F }, (_, i) => `p${i}`), 'label'].join(',')];
  for (let r = 0; r < n; r++) {
    const label = r % classes;
    const row: string[] = [];
    for (let i = 0; i < F; i++) {
      const x = i % W;
      const bright = Math.floor((x * classes) / W) === label ? 1 : 0;
      row.push((bright + 0.5 * Math.sin(r * 13 + i * 7)).toFixed(4));
    }
    rows.push(`${row.join(',')},${label}`);
  }
  writeFileSync(path, `${rows.join('\n')}\n`);
}
