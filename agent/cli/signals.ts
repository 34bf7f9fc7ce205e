// SIGTERM/SIGINT: the first one aborts the command's signal so it stops cleanly;
// a second one exits at once (128 + signal number: 130 for SIGINT, 143 for SIGTERM).

export interface SignalTarget {
  on(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  off(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

export interface StopReason extends Error {
  readonly signal: 'SIGTERM' | 'SIGINT';
}

export function isStopReason(e: unknown): e is StopReason {
  return e instanceof Error && e.name === 'AbortError' && 'signal' in e;
}

/**
 * Aborts `controller` on the first signal (after telling `notice`), calls `exit`
 * on the second. Returns the function that removes the handlers.
 */
export function handleSignals(
  controller: AbortController,
  opts: { target: SignalTarget; exit: (code: number) => void; notice: (text: string) => void },
): () => void {
  const handlers = (['SIGTERM', 'SIGINT'] as const).map((sig) => {
    const h = (): void => {
      if (controller.signal.aborted) {
        opts.exit(SIGNAL_EXIT[sig]);
        return;
      }
      opts.notice(`spokesync: ${sig} received, stopping; send it again to exit at once`);
      const reason = Object.assign(new Error(`stopped by ${sig}`), { name: 'AbortError', signal: sig });
      controller.abort(reason);
    };
    opts.target.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) opts.target.off(sig, h);
  };
}
