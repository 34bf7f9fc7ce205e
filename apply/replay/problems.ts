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

/** Where a statement that failed on its data was: its table, the columns it wrote, its ops' positions in the change set. */
export interface ProblemPlace {
  readonly table: string;
  /** the columns the statement writes (named when the server's message names none) */
  readonly columns: readonly string[];
  /** 1-based position in the change set of the statement's first op */
  readonly firstOp: number;
  /** how many ops the statement carries (rows of a multi-row insert) */
  readonly ops: number;
  /** ops in the change set */
  readonly opCount: number;
}

/**
 * The reason to quarantine for, or null when the error is not about the data.
 * With `place`, it names the table, the column (from the server's message, else
 * the statement's columns) and the op's position; never the value, which some
 * server messages quote and which is therefore never copied from them.
 */
export function dataProblem(e: unknown, place?: ProblemPlace): ApplyProblem | null {
  if (e instanceof ApplyProblem) return e;
  const n = errno(e);
  const reason = n === undefined ? undefined : DATA_ERRORS.get(n);
  if (reason === undefined) return null;
  if (!place) return new ApplyProblem(`${reason} (server error ${n})`);
  const message = withoutValues((e as Error).message ?? '');
  const named = columnsNamed(message);
  const columns = named.length > 0 ? named : place.columns;
  const what = columns.length === 0 ? '' : columns.length === 1 ? `, column ${columns[0]}` : `, columns ${columns.join(', ')}`;
  const row = /\bat row (\d+)\b/.exec(message);
  const first = row && place.ops > 1 ? place.firstOp + Math.min(Number(row[1]), place.ops) - 1 : place.firstOp;
  const last = row || place.ops === 1 ? first : place.firstOp + place.ops - 1;
  const at = first === last ? `op ${first}` : `ops ${first}-${last}`;
  return new ApplyProblem(`${reason}: table ${place.table}${what}, ${at} of ${place.opCount} (server error ${n})`);
}

/** A server message with the values it quotes cut out, so nothing is read from them. */
function withoutValues(message: string): string {
  return message
    .replace(/value: '.*' for column/s, 'value for column')
    .replace(/entry '.*' for key/s, 'entry for key')
    .replace(/out of range in '.*'/s, 'out of range');
}

/** The column names a server message gives (never anything quoted as a value). */
function columnsNamed(message: string): string[] {
  const patterns = [
    /\bcolumn '([^']{1,64})'/i, // 1048, 1054, 1264, 1265, 1406
    /\bfor column `[^`]*`\.`[^`]*`\.`([^`]{1,64})`/i, // 1366, 1292
    /\bField '([^']{1,64})'/, // 1364
  ];
  for (const p of patterns) {
    const m = p.exec(message);
    if (m) return [m[1]!];
  }
  const fk = /FOREIGN KEY \(([^)]{1,700})\)/.exec(message); // 1451, 1452
  if (fk) return [...fk[1]!.matchAll(/`([^`]{1,64})`/g)].map((x) => x[1]!);
  return [];
}

export function isTransient(e: unknown): boolean {
  const n = errno(e);
  return n !== undefined && TRANSIENT_ERRORS.has(n);
}

export function isDuplicateKey(e: unknown): boolean {
  return errno(e) === 1062;
}
