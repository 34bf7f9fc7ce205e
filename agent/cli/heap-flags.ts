// The V8 heap flags the daemon runs with: without them V8 lets garbage pile up far
// past the live set before collecting, and a large capture backlog takes the
// process past its memory budget (`npm run bench -- capture` measures both ways).
// The old generation is bounded, and the young generation too, because the old
// bound alone leaves the semi-spaces large. deploy/spokesync.service sets them
// through NODE_OPTIONS; `spokesync run` warns when they are missing.

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
