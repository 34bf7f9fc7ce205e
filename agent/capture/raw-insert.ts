// An inserted row's image not decoded yet: where it starts in a copy of its
// event's rows. Inserts wait in capture's queue like this (a small object
// each, not an object of values and their strings) and are decoded, or
// written from their bytes (raw-insert-form.ts), when their group is mapped.
import type { Value } from '../../apply/core/model.js';
import { locateValues, readValues, type RowPlan } from './row-plan.js';
import { RowReader } from './row-reader.js';

export class RawInsert {
  /** `bytes`: the copy of the event's rows; `at`: where this image starts in it (its null bitmap). */
  constructor(readonly bytes: Buffer, readonly at: number, readonly plan: RowPlan) {}

  /** Column name → canonical value. */
  decode(r: RowReader = new RowReader()): Record<string, Value> {
    return readValues(r.reset(this.bytes, this.at, this.bytes.length), this.plan);
  }

  /**
   * Where each column's value lies, without decoding any: `where[2i]` the
   * start of column i's value (its length prefix included), -1 when NULL;
   * `where[2i + 1]` its end.
   */
  locate(where: Int32Array, r: RowReader): void {
    locateValues(r.reset(this.bytes, this.at, this.bytes.length), this.plan, where);
  }

  /** Column i's canonical value, from where locate() found it to start. */
  read(i: number, start: number, r: RowReader): Value {
    return this.plan.readers[i]!(r.reset(this.bytes, start, this.bytes.length));
  }
}
