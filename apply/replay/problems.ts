// What can go wrong while a change set applies, sorted into three kinds:
// - the change set cannot apply here yet (a referenced row has not arrived, a
//   constraint fails, a value does not fit): quarantined, the rest goes on;
// - the transaction hit a passing lock problem (deadlock, lock wait timeout):
//   the whole group is run again;
// - anything else (connection lost, server gone): the batch stops, nothing of
//   the open group is kept, and the sender delivers it again later.

/** A change set that cannot apply now; `waitsFor` names what it needs (table/identity). */
export class ApplyProblem extends Error {
  constructor(readonly reason: string, readonly waitsFor: string | null = null) {
    super(reason);
    this.name = 'ApplyProblem';
  }
}

/** Server errors caused by the data of one statement: the statement alone was rolled back. */
const DATA_ERRORS = new Map<number, string>([
  [1048, 'a NOT NULL column got NULL'],
  [1054, 'a column is missing on this server'],
  [1062, 'a unique key would be duplicated'],
  [1146, 'a table is missing on this server'],
  [1216, 'a foreign key constraint failed'],
  [1217, 'a foreign key constraint failed'],
  [1264, 'a value is out of range for its column'],
  [1265, 'a value was truncated'],
  [1292, 'a value is not valid for its column type'],
  [1364, 'a column without default got no value'],
  [1366, 'a value is not valid for its column'],
  [1367, 'a value is not valid for its column'],
  [1406, 'a value is too long for its column'],
  [1416, 'a value is not a valid geometry'],
  [1451, 'the row is still referenced by other rows'],
  [1452, 'a referenced row does not exist'],
  [1690, 'a value is out of range'],
  [3140, 'a value is not valid JSON'],
  [4025, 'a check constraint failed'],
]);

/** Lock errors after which the same work, run again, usually succeeds. */
const TRANSIENT_ERRORS = new Set([1205, 1213, 1020]);

interface SqlError {
  readonly errno?: number;
  readonly code?: string;
  readonly fatal?: boolean;
}

function errno(e: unknown): number | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const s = e as SqlError;
  return s.fatal ? undefined : s.errno;
}

/** The reason to quarantine for, or null when the error is not about the data. */
export function dataProblem(e: unknown): ApplyProblem | null {
  if (e instanceof ApplyProblem) return e;
  const n = errno(e);
  const reason = n === undefined ? undefined : DATA_ERRORS.get(n);
  return reason === undefined ? null : new ApplyProblem(`${reason} (server error ${n})`);
}

export function isTransient(e: unknown): boolean {
  const n = errno(e);
  return n !== undefined && TRANSIENT_ERRORS.has(n);
}

export function isDuplicateKey(e: unknown): boolean {
  return errno(e) === 1062;
}
