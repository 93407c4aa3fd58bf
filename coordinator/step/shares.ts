// How a step's open shards are divided among workers: in proportion to their
// measured speeds, cut where possible on tree nodes so each worker uploads few
// gradients. Pure functions of the counts and speeds; which worker gets which cut
// changes only speed, never the result (the reduction order is fixed by the tree).

/**
 * Splits `n` items among workers in proportion to their speeds (largest remainder).
 * Workers not yet measured count as the mean of the measured ones (1 when none is).
 */
export function proportionalShares(n: number, speeds: readonly (number | undefined)[]): number[] {
  const weights = effectiveSpeeds(speeds);
  const total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (n * w) / total);
  const shares = exact.map(Math.floor);
  let left = n - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left === 0) break;
    shares[i]++;
    left--;
  }
  return shares;
}

/** How much slower than a perfect proportional split a tree-aligned split may be. */
const ALIGNMENT_SLACK = 0.25;

/**
 * Like proportionalShares, but cuts at multiples of the largest power of two that
 * keeps the slowest worker within ALIGNMENT_SLACK of the proportional ideal. A share
 * that starts and ends on such a multiple is one tree node (or a few), so its worker
 * pre-reduces it to one gradient and uploads that, instead of one per node a ragged
 * cut leaves it: on 16 shards, shares 9 + 7 upload 5 gradients, 8 + 8 upload 2.
 */
export function alignedShares(n: number, speeds: readonly (number | undefined)[]): number[] {
  const exact = proportionalShares(n, speeds);
  const weights = effectiveSpeeds(speeds);
  const total = weights.reduce((a, b) => a + b, 0);
  const ideal = n / total;
  const makespan = (shares: readonly number[]): number => Math.max(...shares.map((s, i) => s / weights[i]));
  let granule = 1;
  while (granule * 2 <= n) granule *= 2;
  for (; granule > 1; granule /= 2) {
    const shares: number[] = [];
    let cut = 0;
    let before = 0;
    for (let i = 0; i < weights.length; i++) {
      before += weights[i];
      const next =
        i === weights.length - 1 ? n : Math.min(n, Math.max(cut, Math.round((n * before) / total / granule) * granule));
      shares.push(next - cut);
      cut = next;
    }
    if (makespan(shares) <= ideal * (1 + ALIGNMENT_SLACK)) return shares;
  }
  return exact;
}

/**
 * Each worker's speed for sharing; workers not yet measured count as the mean of the measured ones (1 when none is).
 */
function effectiveSpeeds(speeds: readonly (number | undefined)[]): number[] {
  const known = speeds.filter((s): s is number => s !== undefined && s > 0);
  const fallback = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  return speeds.map((s) => (s !== undefined && s > 0 ? s : fallback));
}
