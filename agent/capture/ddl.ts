// DDL seen in the binlog: which tables of the application schema a statement
// changes, and a fingerprint of a table's columns after the change.
import { createHash } from 'node:crypto';
import type { Queryable } from '../../apply/core/db.js';

const IDENT = String.raw`(?:\x60(?:[^\x60]|\x60\x60)+\x60|[A-Za-z0-9_$\u0080-\uffff]+)`;
const NAME = String.raw`${IDENT}(?:\s*\.\s*${IDENT})?`;
const NAME_G = new RegExp(NAME, 'g');

function unquote(id: string): string {
  return id.startsWith('`') ? id.slice(1, -1).replace(/``/g, '`') : id;
}

/** 'db.t' / '`db`.`t`' / 't' → [schema | null, table] */
function splitName(name: string): [string | null, string] {
  const parts = name.match(new RegExp(IDENT, 'g')) ?? [];
  if (parts.length >= 2) return [unquote(parts[0]!), unquote(parts[1]!)];
  return [null, unquote(parts[0] ?? '')];
}

/** Strips comments so the statement's first words can be read. */
function stripComments(sql: string): string {
  return sql.replace(/\/\*(?!!)[\s\S]*?\*\//g, ' ').replace(/\/\*![0-9]*|\*\//g, ' ').replace(/(--\s|#)[^\n]*/g, ' ').trim();
}

/**
 * The tables of `schema` a DDL statement changes (ALTER, DROP, RENAME,
 * TRUNCATE, CREATE TABLE/INDEX), or [] when it is not such a statement.
 * `defaultSchema` is the session's current database, for unqualified names.
 */
export function ddlTables(sql: string, defaultSchema: string, schema: string): string[] {
  const s = stripComments(sql);
  let names: string[];
  let m: RegExpExecArray | null;
  if ((m = new RegExp(String.raw`^ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+(?:IF\s+EXISTS\s+)?(${NAME})`, 'i').exec(s))) {
    names = [m[1]!];
    const rename = new RegExp(String.raw`\bRENAME\s+(?:TO\s+|AS\s+)?(${NAME})`, 'i').exec(s.slice(m[0].length));
    if (rename && !/^(COLUMN|INDEX|KEY)$/i.test(rename[1]!)) names.push(rename[1]!);
  } else if ((m = /^DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?([\s\S]*)$/i.exec(s))) {
    if (/^DROP\s+TEMPORARY/i.test(s)) return [];
    names = m[1]!.replace(/\s+(RESTRICT|CASCADE)\s*$/i, '').match(NAME_G) ?? [];
    names = names.filter((n) => !/^(WAIT|NOWAIT)$/i.test(n) && !/^\d+$/.test(n));
  } else if ((m = /^RENAME\s+TABLES?\s+([\s\S]*)$/i.exec(s))) {
    names = m[1]!.split(',').flatMap((pair) => pair.split(/\s+TO\s+/i)).map((n) => n.trim()).filter((n) => n !== '');
  } else if ((m = new RegExp(String.raw`^TRUNCATE\s+(?:TABLE\s+)?(${NAME})`, 'i').exec(s))) {
    names = [m[1]!];
  } else if ((m = new RegExp(String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${NAME})`, 'i').exec(s))) {
    if (/^CREATE\s+(OR\s+REPLACE\s+)?TEMPORARY/i.test(s)) return [];
    names = [m[1]!];
  } else if ((m = new RegExp(String.raw`^(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?${IDENT}\s+ON\s+(${NAME})`, 'i').exec(s))) {
    names = [m[1]!];
  } else {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const [db, table] = splitName(n.trim());
    if ((db ?? defaultSchema) === schema && table !== '' && !out.includes(table)) out.push(table);
  }
  return out;
}

/** sha256 of the table's columns as information_schema describes them now ('' columns when it is gone). */
export async function tableFingerprint(db: Queryable, schema: string, table: string): Promise<string> {
  const cols = await db.query<Record<string, unknown>>(
    `SELECT COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, COLLATION_NAME
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [schema, table],
  );
  const text = cols.map((c) => JSON.stringify([
    c.COLUMN_NAME, String(c.ORDINAL_POSITION), c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, c.EXTRA, c.CHARACTER_SET_NAME, c.COLLATION_NAME,
  ])).join('\n');
  return createHash('sha256').update(text).digest('hex');
}
