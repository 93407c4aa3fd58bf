// What a simulated link is: a one-way propagation latency and a serialisation rate,
// per direction, and the parsing of the human spellings of both ("20", "20ms", "1.5s";
// "100mbit", "1gbit", "800kbit", as `tc` spells rates: SI prefixes, bits per second).

import { ConfigError } from '../../shared/errors.js';

/** One direction of a link. */
export interface LinkShape {
  /** One-way propagation delay, ms (≥ 0). */
  readonly latencyMs: number;
  /** Serialisation rate, bits per second (> 0; Infinity: no serialisation delay). */
  readonly bandwidthBitsPerSec: number;
}

export const UNSHAPED: LinkShape = { latencyMs: 0, bandwidthBitsPerSec: Number.POSITIVE_INFINITY };

const RATE_UNITS: Readonly<Record<string, number>> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12 };
const TIME_UNITS: Readonly<Record<string, number>> = { us: 1e-3, ms: 1, s: 1e3 };

/** "100mbit" → 1e8 bits/s; a bare number is bits/s; "unlimited" is Infinity. */
export function parseBandwidth(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'unlimited') return Number.POSITIVE_INFINITY;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  const unit = m === null ? undefined : m[2] === '' ? 1 : RATE_UNITS[m[2]];
  const value = m === null || unit === undefined ? Number.NaN : Number(m[1]) * unit;
  if (!(value > 0 && Number.isFinite(value)))
    throw new ConfigError(
      `bandwidth must be a positive rate like 100mbit, 1gbit, 800kbit (bits/s) or "unlimited", got "${text}"`,
    );
  return value;
}

/** "20" and "20ms" → 20; "1.5s" → 1500; "500us" → 0.5. */
export function parseLatency(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(text.trim().toLowerCase());
  const unit = m === null ? undefined : m[2] === '' ? 1 : TIME_UNITS[m[2]];
  const value = m === null || unit === undefined ? Number.NaN : Number(m[1]) * unit;
  if (!(value >= 0 && Number.isFinite(value)))
    throw new ConfigError(`latency must be a duration ≥ 0 like 20, 20ms, 1.5s or 500us, got "${text}"`);
  return value;
}

/** Refuses shapes no link has, with the value in the message. */
export function checkShape(shape: LinkShape, direction: string): LinkShape {
  if (!(shape.latencyMs >= 0 && Number.isFinite(shape.latencyMs)))
    throw new ConfigError(`${direction} latency must be a finite number of ms ≥ 0, got ${shape.latencyMs}`);
  if (!(shape.bandwidthBitsPerSec > 0))
    throw new ConfigError(
      `${direction} bandwidth must be > 0 bits/s (Infinity: unlimited), got ${shape.bandwidthBitsPerSec}`,
    );
  return shape;
}

/** "20 ms / 100 Mbit/s", for logs and tables. */
export function describeShape(shape: LinkShape): string {
  const bw = shape.bandwidthBitsPerSec;
  const rate =
    bw === Number.POSITIVE_INFINITY
      ? 'unlimited'
      : bw >= 1e9
        ? `${bw / 1e9} Gbit/s`
        : bw >= 1e6
          ? `${bw / 1e6} Mbit/s`
          : bw >= 1e3
            ? `${bw / 1e3} kbit/s`
            : `${bw} bit/s`;
  return `${shape.latencyMs} ms / ${rate}`;
}
