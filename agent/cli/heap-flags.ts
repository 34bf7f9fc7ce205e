// The V8 heap flags the daemon runs with. Without them V8 lets garbage pile up
// far past the live set before it collects: on a 1,000,000-row capture backlog
// the process peaks near 180 MB with Node's defaults and near 120 MB with these
// (npm run bench measures both). Only the old generation is bounded: a smaller
// young generation (--max-semi-space-size=2, tried) saved about 15 MB more and
// cost capture a quarter of its speed, every short-lived row promoted.
// deploy/spokesync.service sets them through NODE_OPTIONS; `spokesync run`
// warns when they are missing.

export const DAEMON_HEAP_FLAGS: readonly string[] = ['--max-old-space-size=96'];

/** The flag's name: `--max-old-space-size=96` → `--max-old-space-size` (V8 takes `_` for `-` too). */
function flagName(arg: string): string {
  return arg.split('=')[0]!.replace(/_/g, '-');
}

/**
 * The daemon's heap flags that neither the node command line (`execArgv`) nor
 * NODE_OPTIONS sets, whatever value they give (a value chosen on purpose is kept).
 */
export function missingHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  return DAEMON_HEAP_FLAGS.filter((f) => !given.has(flagName(f)));
}
