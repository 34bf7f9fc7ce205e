// Builds ChangeSets from parser events (open tag, text, close tag), checking the
// structure strictly as it goes: this is the defence against a hostile peer.
// Shared by decodeChangeSet (one journal fragment) and readBatch (inside <e>).
// No DOM: memory is one change set under construction.

import type { ChangeSet, Op, Ref, Value } from '../core/model.js';
import { WIRE_NAMESPACE } from '../core/model.js';
import { MAX_COLUMNS, checkName, tooMany } from './decode-limits.js';
import {
  COMMIT_TIME,
  DIGEST,
  LIST_NAME,
  NAME_LIST,
  NODE_ID,
  decodeBase64,
  decodeUtf16,
  decodeUtf8,
  isUint64,
  xmlError,
} from './xml-text.js';

export type Attrs = Record<string, string>;

/**
 * A copy of a string cut from the parser's input. V8 keeps a substring of 13
 * characters or more as a view of the whole input text, so one hlc kept in a
 * cache would keep a whole batch alive; joining and cutting again copies it.
 */
export function own(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}

interface OpState {
  kind: 'insert' | 'update' | 'delete';
  table: string;
  id: string;
  row: Record<string, Value>;
  old: Record<string, Value>;
  digest: string;
  sawOld: boolean;
  /** insert only: columns listed in z (null), and the column named by u (= identity) */
  nulls: Set<string>;
  same: string | undefined;
  /** columns given so far: new values (nulls and same included), old values */
  cols: number;
  olds: number;
}

interface ColState {
  old: boolean;
  name: string;
  /** '' plain text, 'u' base64 UTF-8, 'w' base64 UTF-16LE, 'b' base64 bytes, 'z' null */
  enc: '' | 'u' | 'w' | 'b' | 'z';
  ref: string | undefined;
}

const WS = /^[ \t\n\r]*$/;

export class ChangeSetBuilder {
  /** 0 outside, 1 in <cs>, 2 in an op, 3 in a column */
  private level = 0;
  private id: string | undefined;
  private origin = '';
  private hlc = '';
  private time = '';
  private ops: Op[] = [];
  private op: OpState | undefined;
  private col: ColState | undefined;
  private buf = '';

  get depth(): number {
    return this.level;
  }

  open(name: string, attrs: Attrs): void {
    switch (this.level) {
      case 0:
        if (name !== 'cs') throw xmlError(`expected <cs>, found <${short(name)}>`);
        this.openCs(attrs);
        break;
      case 1:
        if (name === 'i') this.openOp('insert', attrs);
        else if (name === 'u') this.openOp('update', attrs);
        else if (name === 'd') this.openOp('delete', attrs);
        else throw xmlError(`unknown element <${short(name)}> in <cs>`);
        break;
      case 2: {
        const op = this.op!;
        if (op.kind === 'delete') throw xmlError('<d> has no child elements');
        if (name === 'c' && !op.sawOld) this.openCol(false, attrs);
        else if (name === 'o' && op.kind === 'update') this.openCol(true, attrs);
        else throw xmlError(`unexpected element <${short(name)}> in <${op.kind[0]}>`);
        break;
      }
      default:
        throw xmlError(`unexpected element <${short(name)}> in a column`);
    }
    this.level++;
  }

  text(t: string): void {
    if (this.level === 3) this.buf += t;
    else if (!WS.test(t)) throw xmlError('unexpected text outside a column');
  }

  /** Returns the change set when its </cs> closes. */
  close(): ChangeSet | undefined {
    switch (this.level--) {
      case 3:
        this.closeCol();
        return undefined;
      case 2:
        this.closeOp();
        return undefined;
      case 1: {
        const cs: ChangeSet = {
          id: this.id ?? `${this.origin}:${this.hlc}`,
          origin: this.origin,
          hlc: this.hlc,
          time: this.time,
          ops: this.ops,
        };
        this.ops = [];
        this.id = undefined;
        return cs;
      }
      default:
        throw xmlError('unexpected close tag');
    }
  }

  private openCs(a: Attrs): void {
    let id: string | undefined;
    let origin: string | undefined;
    let hlc: string | undefined;
    let time: string | undefined;
    for (const k in a) {
      const v = a[k]!;
      switch (k) {
        case 'id': id = once(id, v, k, 'cs'); break;
        case 'I': id = once(id, b64text(v, 'change set id'), k, 'cs'); break;
        case 'o': origin = v; break;
        case 'h': hlc = v; break;
        case 't': time = v; break;
        case 'xmlns': checkNamespace(v); break;
        default: throw unknownAttr(k, 'cs');
      }
    }
    if (origin === undefined || !NODE_ID.test(origin)) throw badAttr('o', 'cs', 'a node id');
    if (hlc === undefined || !isUint64(hlc)) throw badAttr('h', 'cs', 'a decimal uint64');
    if (time === undefined || !COMMIT_TIME.test(time)) throw badAttr('t', 'cs', 'YYYY-MM-DDTHH:MM:SSZ');
    this.id = id === undefined ? id : own(id);
    this.origin = own(origin);
    this.hlc = own(hlc);
    this.time = own(time);
  }

  private openOp(kind: OpState['kind'], a: Attrs): void {
    const el = kind[0]!;
    let table: string | undefined;
    let id: string | undefined;
    let digest: string | undefined;
    let nulls: string | undefined;
    let same: string | undefined;
    for (const k in a) {
      const v = a[k]!;
      switch (k) {
        case 't': table = once(table, v, k, el); break;
        case 'T': table = once(table, b64text(v, 'table name'), k, el); break;
        case 'k': id = once(id, v, k, el); break;
        case 'K': id = once(id, b64text(v, 'identity'), k, el); break;
        case 'g':
          if (kind !== 'delete') throw unknownAttr(k, el);
          digest = v;
          break;
        case 'z':
          if (kind !== 'insert') throw unknownAttr(k, el);
          nulls = v;
          break;
        case 'u':
          if (kind !== 'insert') throw unknownAttr(k, el);
          same = v;
          break;
        case 'xmlns': checkNamespace(v); break;
        default: throw unknownAttr(k, el);
      }
    }
    if (table === undefined || table === '') throw badAttr('t', el, 'a table name');
    if (id === undefined) throw badAttr('k', el, 'an identity');
    if (kind === 'delete' && (digest === undefined || !DIGEST.test(digest))) throw badAttr('g', el, 'a base64url digest');
    this.op = {
      kind, table: own(checkName(table, 'table name')), id: own(id), row: {}, old: {}, digest: own(digest ?? ''), sawOld: false,
      nulls: nullList(nulls), same: sameColumn(same), cols: 0, olds: 0,
    };
    this.op.cols = this.op.nulls.size + (same === undefined ? 0 : 1);
    if (same !== undefined && this.op.nulls.has(same)) throw xmlError('column given twice in one <i>');
  }

  private openCol(old: boolean, a: Attrs): void {
    const el = old ? 'o' : 'c';
    let name: string | undefined;
    let enc: ColState['enc'] = '';
    let ref: string | undefined;
    for (const k in a) {
      const v = a[k]!;
      switch (k) {
        case 'n': name = once(name, v, k, el); break;
        case 'N': name = once(name, b64text(v, 'column name'), k, el); break;
        case 'e':
          if (v !== 'u' && v !== 'w' && v !== 'b') throw badAttr('e', el, 'u, w or b');
          if (enc !== '') throw badAttr('e', el, 'not combined with z');
          enc = v;
          break;
        case 'z':
          if (v !== '1') throw badAttr('z', el, '1');
          if (enc !== '') throw badAttr('z', el, 'not combined with e');
          enc = 'z';
          break;
        case 'r': ref = once(ref, v, k, el); break;
        case 'R': ref = once(ref, b64text(v, 'referenced table name'), k, el); break;
        case 'xmlns': checkNamespace(v); break;
        default: throw unknownAttr(k, el);
      }
    }
    if (name === undefined || name === '') throw badAttr('n', el, 'a column name');
    checkName(name, 'column name');
    if (ref !== undefined && (ref === '' || enc === 'z' || enc === 'b')) {
      throw badAttr('r', el, 'a table name, not combined with z or e="b"');
    }
    if (ref !== undefined) checkName(ref, 'table name');
    const op = this.op!;
    if ((old ? ++op.olds : ++op.cols) > MAX_COLUMNS) throw tooMany(`columns in one row`, MAX_COLUMNS);
    if (old) op.sawOld = true;
    if (Object.hasOwn(old ? op.old : op.row, name) || (!old && (op.nulls.has(name) || op.same === name))) throw xmlError(`column given twice in one <${el === 'o' ? 'u' : op.kind[0]}>`);
    this.col = { old, name: own(name), enc, ref: ref === undefined ? ref : own(ref) };
    this.buf = '';
  }

  private closeCol(): void {
    const c = this.col!;
    const t = this.buf;
    this.buf = '';
    let v: Value;
    switch (c.enc) {
      case '': v = own(t); break;
      case 'z':
        if (t !== '') throw xmlError('a null column (z="1") must be empty');
        v = null;
        break;
      case 'b': v = decodeBase64(t, 'binary column'); break;
      case 'u': v = decodeUtf8(decodeBase64(t, 'column text'), 'column text'); break;
      case 'w': v = decodeUtf16(decodeBase64(t, 'column text'), 'column text'); break;
    }
    if (c.ref !== undefined) v = { ref: c.ref, id: v as string } satisfies Ref;
    setColumn(c.old ? this.op!.old : this.op!.row, c.name, v);
    this.col = undefined;
  }

  private closeOp(): void {
    const o = this.op!;
    let op: Op;
    if (o.kind === 'insert') {
      // the short forms come back after the element columns: re-encoding gives the same bytes
      for (const name of o.nulls) setColumn(o.row, name, null);
      if (o.same !== undefined) setColumn(o.row, o.same, o.id);
      op = { kind: 'insert', table: o.table, id: o.id, row: o.row };
    }
    else if (o.kind === 'update') op = { kind: 'update', table: o.table, id: o.id, set: o.row, old: o.old };
    else op = { kind: 'delete', table: o.table, id: o.id, digest: o.digest };
    this.ops.push(op);
    this.op = undefined;
  }
}

function setColumn(row: Record<string, Value>, name: string, v: Value): void {
  if (name === '__proto__') {
    Object.defineProperty(row, name, { value: v, enumerable: true, writable: true, configurable: true });
  } else {
    row[name] = v;
  }
}

/** z on <i>: column names separated by single spaces, each at most once. */
function nullList(v: string | undefined): Set<string> {
  const out = new Set<string>();
  if (v === undefined) return out;
  if (!NAME_LIST.test(v)) throw badAttr('z', 'i', 'column names separated by single spaces');
  for (const name of v.split(' ')) {
    if (out.has(name)) throw xmlError('column given twice in one <i>');
    out.add(own(checkName(name, 'column name')));
    if (out.size > MAX_COLUMNS) throw tooMany('columns in one row', MAX_COLUMNS);
  }
  return out;
}

/** u on <i>: the column whose value is the row's identity. */
function sameColumn(v: string | undefined): string | undefined {
  if (v !== undefined && !LIST_NAME.test(v)) throw badAttr('u', 'i', 'a column name');
  return v === undefined ? v : own(checkName(v, 'column name'));
}

export function checkNamespace(v: string): void {
  if (v !== WIRE_NAMESPACE) throw xmlError(`wrong namespace: expected ${WIRE_NAMESPACE}`);
}

export function unknownAttr(name: string, el: string): Error {
  return xmlError(`unknown attribute ${short(name)} on <${el}>`);
}

export function badAttr(name: string, el: string, expected: string): Error {
  return xmlError(`attribute ${name} on <${el}> is missing or not ${expected}`);
}

function once(prev: string | undefined, v: string, k: string, el: string): string {
  if (prev !== undefined) throw xmlError(`<${el}> has both ${k.toLowerCase()} and ${k.toUpperCase()}`);
  return v;
}

function b64text(v: string, what: string): string {
  return decodeUtf8(decodeBase64(v, what), what);
}

/** An element or attribute name from the input, cut short for an error message. */
export function short(name: string): string {
  return name.length <= 32 ? name : `${name.slice(0, 32)}…`;
}
