// Row images read straight from the binlog's bytes into canonical values
// (row-plan.ts), for the tables with a plan; any other table, and any image
// that is not whole, is decoded by zongji and converted by binlog-values.ts.
// Why: zongji builds each value through a general decoder and capture then
// converts it again; decoding once into the final form saves most of that.
// zongji still reads the stream and every other event; this decoder is the
// hook its rows go through (zongji-seam.ts). Inserts are kept undecoded
// (RawInsert) until their group is mapped. test/db/capture-types checks both
// paths against the server's own SELECT, byte for byte.
import type { Value } from '../../apply/core/model.js';
import type { RowChange } from './events.js';
import { RawInsert } from './raw-insert.js';
import { planOf, readValues, skipValues, whole, type RowPlan } from './row-plan.js';
import { RowReader } from './row-reader.js';
import type { EventRows, RowsEventInfo, RowsHook } from './zongji-seam.js';

/** The hook one capture's binlog streams read their rows through. */
export class RowDecoder implements RowsHook {
  readonly reader = new RowReader();
  /** row images taken by this decoder, decoded or kept as RawInsert */
  private count = 0;
  /** whether it was reported that zongji decodes every row (the seam does not fit) */
  warned = false;

  get decoded(): number {
    return this.count;
  }

  rowsOf(ev: RowsEventInfo): EventRows | null {
    const plan = planOf(ev.entry);
    if (!plan) return null;
    const n = plan.names.length;
    if (ev.columns !== n || !whole(ev.present, n) || (ev.kind === 'update' && !whole(ev.present2, n))) return null;
    if (ev.kind === 'write') return new InsertRows(plan, this);
    if (ev.kind === 'update') return new UpdatedRows(plan, this);
    return new DeletedRows(plan, this);
  }

  /** Counts `n` images taken. */
  took(n: number): void {
    this.count += n;
  }
}

/** An insert event's images, left undecoded: RawInserts into one copy of the event's rows. */
class InsertRows implements EventRows {
  readonly form = 'raw-insert';
  private bytes: Buffer | null = null;
  private base = 0;

  constructor(private readonly plan: RowPlan, private readonly decoder: RowDecoder) {}

  row(r: RowReader): RawInsert {
    if (!this.bytes) {
      this.bytes = Buffer.from(r.buf.subarray(r.pos, r.end));
      this.base = r.pos;
    }
    const start = r.pos - this.base;
    skipValues(r, this.plan);
    this.decoder.took(1);
    return new RawInsert(this.bytes, start, this.plan);
  }
}

class DeletedRows implements EventRows {
  readonly form = 'canonical';

  constructor(private readonly plan: RowPlan, private readonly decoder: RowDecoder) {}

  row(r: RowReader): Record<string, Value> {
    this.decoder.took(1);
    return readValues(r, this.plan);
  }
}

class UpdatedRows implements EventRows {
  readonly form = 'canonical';

  constructor(private readonly plan: RowPlan, private readonly decoder: RowDecoder) {}

  row(r: RowReader): { before: Record<string, Value>; after: Record<string, Value> } {
    this.decoder.took(2);
    const before = readValues(r, this.plan);
    return { before, after: readValues(r, this.plan) };
  }
}

/** Decodes the inserts left undecoded (RawInsert) among `changes`, in place. */
export function decodeImages(changes: RowChange[]): void {
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    if (c.op === 'insert' && c.raw) changes[i] = decodedInsert(c.raw, c.schema, c.table);
  }
}

/** The change with its image decoded, when it is not yet (a new change: the one given stays as it is). */
export function decoded(c: RowChange): RowChange {
  return c.op === 'insert' && c.raw ? decodedInsert(c.raw, c.schema, c.table) : c;
}

function decodedInsert(raw: RawInsert, schema: string, table: string): RowChange {
  return { op: 'insert', schema, table, after: raw.decode(), canon: true };
}
