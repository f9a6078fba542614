// Timing and summary statistics. Every figure in the suite is a ratio to a baseline timed in the same
// repetition (paired), so slow phases of a noisy machine hit both sides of the ratio alike.

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Wall time of fn in milliseconds. */
export function timeMs(fn: () => void): number {
  const t = nowMs();
  fn();
  return nowMs() - t;
}

export async function timeMsAsync(fn: () => Promise<void>): Promise<number> {
  const t = nowMs();
  await fn();
  return nowMs() - t;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Relative half-range of the middle half ((p75 − p25) / 2 / median): the noise figure. */
  iqrRel: number;
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, iqrRel: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const med = median(s);
  return { median: med, min: s[0]!, max: s[s.length - 1]!, iqrRel: (quantile(s, 0.75) - quantile(s, 0.25)) / 2 / med };
}

/** Paired ratios a[i] / b[i] for the repetitions both sides have. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (b[i]! > 0) out.push(a[i]! / b[i]!);
  return out;
}

/** A deterministic PRNG (mulberry32), so random-read offsets are the same for every peer. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 0.01) return `${(ms * 1000).toFixed(2)} µs`;
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '—';
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}
