// Durations and byte sizes as written in the config. Pure.
//
// A duration always carries its unit ('500ms', '30s', '5m', '1h', '2d', '1.5h'):
// a bare number is refused, because 300 could mean seconds or milliseconds and
// guessing wrong makes a node sync every 0.3 s or every 5 minutes.
// A size is a plain number of bytes or a number with a unit: KiB/MiB/GiB and
// K/M/G (1024-based, as in my.cnf), KB/MB/GB (1000-based), B.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024, kib: 1024, kb: 1000,
  m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2,
  g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
};

/** Milliseconds, or undefined when the text is not a duration with a unit. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * DURATION_UNITS[m[2]!]!;
  return Number.isSafeInteger(Math.round(ms)) ? Math.round(ms) : undefined;
}

/** Bytes, or undefined when the value is not a whole, non-negative size. */
export function parseBytes(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const factor = unit === '' ? 1 : BYTE_UNITS[unit];
  if (factor === undefined) return undefined;
  const n = Number(m[1]) * factor;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** '5m', '60s', '1.5h', '250ms': the shortest exact form. */
export function formatDuration(ms: number): string {
  for (const [unit, f] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= f && ms % (f / 10) === 0) return `${ms / f}${unit}`;
  }
  return `${ms}ms`;
}

/** '64KiB', '8MiB', '1000B': binary units when exact. */
export function formatBytes(n: number): string {
  for (const [unit, f] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= f && n % f === 0) return `${n / f}${unit}`;
  }
  return `${n}B`;
}
