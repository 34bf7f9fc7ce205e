// Reading ahead in the binlog for rows that are gone. A change can refer to a
// row that existed when the change committed but was deleted before capture
// read the change (capture was behind), and that neither the idmap nor the
// batch being mapped knows: a row older than capture, or one the resolver's
// memory let go of. The binlog still holds it: the first later event that
// touches the row (its delete, or an update) carries its full before-image.
// scanAhead() reads the binlog from a position to where it ends now, on the
// tables asked about, and returns those before-images; the resolver takes them
// as row images of the batch. It runs only when mapping found a reference no
// other way could answer, with capture's own stream stopped (the same binlog
// client id serves both).
import type { Catalog } from '../../apply/core/catalog.js';
import type { DbSettings, Queryable } from '../../apply/core/db.js';
import { keyText, lookupKey, type Lookup } from '../../apply/core/row-identity.js';
import { canonicalize } from './mapper.js';
import { comparePositions, type BinlogPosition } from './position.js';
import type { HintRow } from './ref-resolver.js';
import { binlogEnd } from './binlog-server.js';
import { BinlogSource } from './binlog-source.js';

export interface LookaheadOptions {
  readonly settings: DbSettings;
  readonly serverId: number;
  readonly db: Queryable;
  readonly catalog: Catalog;
  /** where to start reading (capture's checkpoint) */
  readonly from: BinlogPosition;
  /** the longest the scan may take (default ten minutes) */
  readonly timeoutMs?: number;
  /** ends the scan early (capture stops): it then fails */
  readonly signal?: AbortSignal;
}

/**
 * The before-image of the first event after `from` that touches each wanted
 * row (table, column, key value), as far as the binlog goes now. Rows not
 * found are simply absent.
 */
export async function scanAhead(wanted: readonly Lookup[], o: LookaheadOptions): Promise<HintRow[]> {
  const want = new Map<string, Map<string, Set<string>>>();
  for (const l of wanted) {
    if (!o.catalog.tables.has(l.table)) continue;
    let cols = want.get(l.table);
    if (!cols) want.set(l.table, (cols = new Map()));
    let values = cols.get(l.column);
    if (!values) cols.set(l.column, (values = new Set()));
    values.add(l.value);
  }
  if (want.size === 0) return [];
  let left = [...want.values()].reduce((n, cols) => n + [...cols.values()].reduce((m, v) => m + v.size, 0), 0);
  const to = (await binlogEnd(o.db)).position;
  if (comparePositions(o.from, to) >= 0) return [];
  const found: HintRow[] = [];
  const seen = new Set<string>();
  const source = new BinlogSource({ settings: o.settings, serverId: o.serverId, include: { [o.catalog.schema]: [...want.keys()] } }, o.from);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('reading ahead in the binlog took too long')), o.timeoutMs ?? 600_000);
      const stopped = (): void => done(new Error('reading ahead in the binlog was stopped'));
      const done = (e?: Error): void => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', stopped);
        if (e) reject(e);
        else resolve();
      };
      if (o.signal?.aborted) return stopped();
      o.signal?.addEventListener('abort', stopped, { once: true });
      const reached = (end: BinlogPosition): void => {
        if (comparePositions(end, to) >= 0) done();
      };
      source.start({
        event(ev) {
          if (ev.kind === 'rows') {
            for (const change of ev.changes) {
              if (change.op === 'insert') continue;
              const cols = want.get(change.table);
              if (!cols) continue;
              const before = canonicalize(change, o.catalog).before!;
              for (const [column, values] of cols) {
                const v = keyText(before[column]);
                if (v === undefined || !values.has(v)) continue;
                const k = lookupKey(change.table, column, v);
                if (seen.has(k)) continue;
                seen.add(k);
                found.push({ table: o.catalog.table(change.table), row: before });
                left--;
              }
            }
            if (left <= 0) done();
          } else if (ev.kind === 'commit' || ev.kind === 'rollback' || ev.kind === 'statement' || ev.kind === 'position') {
            reached(ev.end);
          }
        },
        error: (err) => done(err),
        warn: () => undefined,
      }).catch((e: unknown) => done(e instanceof Error ? e : new Error(String(e))));
    });
  } finally {
    await source.stop();
  }
  return found;
}
