// Reads a snapshot stream (gzip bytes from a file or an HTTP response) as
// events, checking structure as it goes. The final 'end' event comes only after
// the trailer's sha256 and row counts match everything read: a consumer commits
// nothing as complete before it sees 'end'.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { SpokesyncError, isSpokesyncError } from '../../apply/core/errors.js';
import { decodeLine, decodeRow, type SnapshotHeader, type SnapshotTable, type SnapshotTrailer, type SnapshotValue } from './snapshot-format.js';
import { splitLines } from './lines.js';

export type SnapshotEvent =
  | { readonly kind: 'header'; readonly header: SnapshotHeader }
  | { readonly kind: 'table'; readonly table: SnapshotTable }
  | { readonly kind: 'row'; readonly table: SnapshotTable; readonly values: SnapshotValue[]; readonly bytes: number }
  | { readonly kind: 'end'; readonly trailer: SnapshotTrailer };

function bad(message: string, cause?: unknown): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_SNAPSHOT', message, cause === undefined ? undefined : { cause });
}

/** Events of the snapshot in `compressed`; throws SPOKESYNC_E_SNAPSHOT when it is damaged or truncated. */
export async function* readSnapshot(compressed: Readable): AsyncGenerator<SnapshotEvent> {
  const gunzip = createGunzip();
  compressed.on('error', (e) => gunzip.destroy(e));
  compressed.pipe(gunzip);
  const hash = createHash('sha256');
  let header: SnapshotHeader | undefined;
  let tables = new Map<string, SnapshotTable>();
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  let current: SnapshotTable | undefined;
  let trailer: SnapshotTrailer | undefined;
  let lineNo = 0;
  try {
    for await (const buf of splitLines(gunzip)) {
      lineNo++;
      if (trailer) throw bad('the snapshot has data after its trailer');
      const line = decodeLine(buf.toString('utf8'), lineNo);
      if (line.kind !== 'trailer') {
        hash.update(buf);
        hash.update('\n');
      }
      if (!header && line.kind !== 'header') throw bad('the snapshot does not start with a header');
      switch (line.kind) {
        case 'header':
          if (header) throw bad('the snapshot has two headers');
          header = line.header;
          tables = new Map(header.tables.map((t) => [t.name, t]));
          yield { kind: 'header', header };
          break;
        case 'table': {
          const t = tables.get(line.table);
          if (!t || seen.has(t.name)) throw bad(`the snapshot holds unexpected rows for table ${JSON.stringify(line.table)}`);
          seen.add(t.name);
          counts.set(t.name, 0);
          current = t;
          yield { kind: 'table', table: t };
          break;
        }
        case 'row':
          if (!current) throw bad('the snapshot holds a row outside any table');
          counts.set(current.name, (counts.get(current.name) ?? 0) + 1);
          yield { kind: 'row', table: current, values: decodeRow(line.values, current.columns, current.name), bytes: buf.length + 1 };
          break;
        case 'trailer':
          trailer = line.trailer;
          break;
        case 'keepalive':
          break;
      }
    }
  } catch (e) {
    if (isSpokesyncError(e)) throw e;
    throw bad('the snapshot is damaged or truncated', e);
  } finally {
    compressed.unpipe(gunzip);
    gunzip.destroy();
    compressed.destroy();
  }
  if (!header) throw bad('the snapshot is empty');
  if (!trailer) throw bad('the snapshot is truncated: it has no trailer');
  if (hash.digest('hex') !== trailer.sha256) throw bad('the snapshot checksum does not match its content');
  for (const t of header.tables) {
    if ((counts.get(t.name) ?? 0) !== (trailer.rows[t.name] ?? 0)) throw bad(`the snapshot holds a wrong number of rows for ${t.name}`);
  }
  if (Object.keys(trailer.rows).some((name) => !tables.has(name))) throw bad('the snapshot trailer names an unknown table');
  yield { kind: 'end', trailer };
}
