// The V8 heap flags the daemon runs with. Without them V8 lets garbage pile up
// far past the live set before it collects: on a 1,000,000-row capture backlog
// the process peaks near 180 MB with Node's defaults (npm run bench measures
// both). The old generation is bounded at 96 MB, and the young generation's
// semi-spaces at 4 MB (Node's default is 16 MB, the bound on the old
// generation leaves it so): with the bound alone the process peaked near
// 125 MB, with both near 105 MB (npm run bench), and in two ad-hoc runs, the
// flag sets in turns, captured that backlog with 7–11% less CPU. Smaller still
// (2 MB, tried) promotes short-lived rows and costs capture a quarter of its
// speed.
// deploy/spokesync.service sets them through NODE_OPTIONS; `spokesync run`
// warns when they are missing.

export const DAEMON_HEAP_FLAGS: readonly string[] = ['--max-old-space-size=96', '--max-semi-space-size=4'];

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
