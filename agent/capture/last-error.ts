// The last failure capture met, with its code, while it stands: shown in status
// and given to whoever waits on capture.

export class LastError {
  message: string | undefined;
  /** a SpokesyncError's code, or the driver's (ECONNRESET, ER_…) */
  code: string | undefined;

  note(e: unknown): void {
    this.message = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown } | null)?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }

  clear(): void {
    this.message = undefined;
    this.code = undefined;
  }

  /** The status fields: none while nothing failed. */
  fields(): { error?: string; errorCode?: string } {
    return { ...(this.message === undefined ? {} : { error: this.message }), ...(this.code === undefined ? {} : { errorCode: this.code }) };
  }
}
