// Table shapes on the wire: for every table a batch touches, the sender's
// synced columns (name, full type, charset, nullability, default), so that
// the receiver can tell whether its own table holds every value exactly
// (apply/replay/shape-check.ts). Written as <s t="…"><f …/>…</s> right after
// <batch>, before the first <e>.
import type { TableInfo } from '../core/catalog.js';
import { escapeAttr, isXmlSafe, xmlError } from './xml-text.js';
import { badAttr, own, short, unknownAttr, type Attrs } from './cs-builder.js';

export interface ColumnShape {
  readonly name: string;
  /** lower-case COLUMN_TYPE, e.g. 'decimal(9,4) unsigned', "enum('a','b')" */
  readonly type: string;
  readonly charset: string | null;
  readonly nullable: boolean;
  /** information_schema COLUMN_DEFAULT as the server gives it ("'x'", '0', 'NULL', 'current_timestamp()'), null when none */
  readonly default: string | null;
}

export interface TableShape {
  readonly table: string;
  readonly columns: readonly ColumnShape[];
}

/** Most tables and columns one batch may describe (a hostile sender cannot grow memory without bound). */
export const MAX_SHAPE_TABLES = 1000;
export const MAX_SHAPE_COLUMNS = 4096;

/** The synced shape of a table: the columns that travel (not local ids, not generated), by name. */
export function shapeOf(t: TableInfo): TableShape {
  const columns = t.columns
    .filter((c) => !c.generated && !t.localColumns.has(c.name))
    .map((c) => ({ name: c.name, type: c.columnType.toLowerCase(), charset: c.charset, nullable: c.nullable, default: c.default ?? null }));
  columns.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { table: t.name, columns };
}

/** The <s> elements of the shapes; a table or column whose name XML cannot carry is left out (it is then not checked). */
export function encodeShapes(shapes: readonly TableShape[]): string {
  let out = '';
  for (const s of shapes) {
    if (!isXmlSafe(s.table)) continue;
    out += `<s t="${escapeAttr(s.table)}">`;
    for (const c of s.columns) {
      if (!isXmlSafe(c.name) || !isXmlSafe(c.type)) continue;
      out += `<f n="${escapeAttr(c.name)}" y="${escapeAttr(c.type)}"`;
      if (c.charset !== null) out += ` c="${escapeAttr(c.charset)}"`;
      if (c.nullable) out += ' z="1"';
      if (c.default !== null && isXmlSafe(c.default)) out += ` d="${escapeAttr(c.default)}"`;
      out += '/>';
    }
    out += '</s>';
  }
  return out;
}

/** Reads <s> and <f> elements (batch-reader.ts hands them over). */
export class ShapeBuilder {
  private table: string | undefined;
  private columns: ColumnShape[] = [];
  private total = 0;
  tables = 0;

  openTable(a: Attrs): void {
    let t: string | undefined;
    for (const k in a) {
      if (k === 't') t = a[k];
      else if (k !== 'xmlns') throw unknownAttr(k, 's');
    }
    if (t === undefined || t === '' || t.length > 64) throw badAttr('t', 's', 'a table name');
    if (++this.tables > MAX_SHAPE_TABLES) throw xmlError(`a batch describes more than ${MAX_SHAPE_TABLES} tables`);
    this.table = own(t);
    this.columns = [];
  }

  openColumn(name: string, a: Attrs): void {
    if (name !== 'f') throw xmlError(`unknown element <${short(name)}> in <s>`);
    if (++this.total > MAX_SHAPE_COLUMNS) throw xmlError(`a batch describes more than ${MAX_SHAPE_COLUMNS} columns`);
    let n: string | undefined, y: string | undefined, c: string | null = null, d: string | null = null, z = false;
    for (const k in a) {
      const v = a[k]!;
      switch (k) {
        case 'n': n = v; break;
        case 'y': y = v; break;
        case 'c': c = own(v); break;
        case 'd': d = own(v); break;
        case 'z': if (v !== '1') throw badAttr('z', 'f', '1'); z = true; break;
        case 'xmlns': break;
        default: throw unknownAttr(k, 'f');
      }
    }
    if (n === undefined || n === '' || n.length > 64) throw badAttr('n', 'f', 'a column name');
    if (y === undefined || y === '' || y.length > 4000) throw badAttr('y', 'f', 'a column type');
    this.columns.push({ name: own(n), type: own(y), charset: c, nullable: z, default: d });
  }

  closeTable(): TableShape {
    const s = { table: this.table!, columns: this.columns };
    this.table = undefined;
    this.columns = [];
    return s;
  }
}

const OP_TABLE = /<[iud] (?:[a-zA-Z]+="[^"]*" )*?(t|T)="([^"]*)"/g;

/** The tables a stored <cs> body writes, read from its text without decoding it. */
export function tablesOfBody(body: string | Buffer, into: Set<string>): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  for (const m of text.matchAll(OP_TABLE)) {
    const v = m[2]!;
    into.add(m[1] === 'T' ? Buffer.from(v, 'base64').toString('utf8') : unescapeAttr(v));
  }
}

function unescapeAttr(v: string): string {
  if (!v.includes('&')) return v;
  return v.replace(/&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
      default: return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}
