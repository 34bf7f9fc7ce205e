// One finding of `spokesync check`.

export interface Problem {
  /** stable id of the check, e.g. 'binlog_format', 'grants.replication', 'table.identity' */
  readonly check: string;
  /** errors make `check` exit 1 and `run` refuse to start; warnings are risks to know about */
  readonly severity: 'error' | 'warning';
  /** what is wrong and why it matters to spokesync */
  readonly message: string;
  /** what to do about it */
  readonly fix: string;
  /** the table, variable or file concerned, when there is one */
  readonly subject?: string;
}

export const error = (check: string, message: string, fix: string, subject?: string): Problem =>
  ({ check, severity: 'error', message, fix, ...(subject === undefined ? {} : { subject }) });

export const warning = (check: string, message: string, fix: string, subject?: string): Problem =>
  ({ check, severity: 'warning', message, fix, ...(subject === undefined ? {} : { subject }) });
