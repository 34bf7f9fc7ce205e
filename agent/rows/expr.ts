// Row filter expressions (children[].rows.<table>): a SQL boolean expression
// over one row of the table, written by the operator and evaluated by this
// node's own server, always inside `WHERE (...)` of a statement spokesync
// writes. The check here is lexical: one expression that cannot leave its
// parentheses (no `;`, no comment, balanced parentheses, no clause keyword
// outside a subquery); whether it parses and runs is asked of the server at
// start (probeSql). Pure.
import { qid } from '../../apply/core/db.js';

/** Keywords that begin a clause of the statement around the expression: never outside parentheses. */
const CLAUSES = new Set([
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'UNION', 'INTERSECT', 'EXCEPT',
  'INTO', 'PROCEDURE', 'FOR', 'LOCK', 'WINDOW', 'RETURNING', 'OFFSET', 'FETCH',
]);

const MAX_LENGTH = 10_000;

/** What is wrong with a row filter expression, or null when it is one expression. */
export function expressionProblem(text: string): string | null {
  if (text.trim() === '') return 'is empty: write a SQL boolean expression over the row';
  if (text.length > MAX_LENGTH) return `is longer than ${MAX_LENGTH} characters`;
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      const end = closing(text, i);
      if (end < 0) return `has an unterminated ${c === '`' ? 'quoted name' : 'string'} (opened at character ${i + 1})`;
      i = end + 1;
      continue;
    }
    if (c === ';') return 'holds ";": write one expression, not statements';
    if (c === '#' || (c === '-' && text[i + 1] === '-') || (c === '/' && text[i + 1] === '*')) {
      return 'holds a comment (--, # or /* */): leave comments out of the expression';
    }
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) return `closes a parenthesis it did not open (character ${i + 1})`;
    if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < text.length && /[A-Za-z0-9_$]/.test(text[j]!)) j++;
      const word = text.slice(i, j).toUpperCase();
      // a name right after a dot is a column, whatever it is called
      if (depth === 0 && CLAUSES.has(word) && text[i - 1] !== '.') {
        return `uses ${word} outside parentheses: the expression is one condition (a subquery goes inside EXISTS (...) or (...))`;
      }
      i = j;
      continue;
    }
    i++;
  }
  if (depth !== 0) return `leaves ${depth} parenthes${depth === 1 ? 'is' : 'es'} open`;
  return null;
}

/** Index of the quote closing the one at `start` (doubled quotes and, in strings, backslashes escape), or -1. */
function closing(text: string, start: number): number {
  const q = text[start]!;
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && q !== '`') {
      i++;
      continue;
    }
    if (c === q) {
      if (text[i + 1] === q) {
        i++;
        continue;
      }
      return i;
    }
  }
  return -1;
}

/**
 * The statement that proves an expression parses and runs against the table,
 * reading no row: run on a connection whose default schema is the application
 * schema (the expression names other tables without their schema).
 */
export function probeSql(schema: string, table: string, expression: string): string {
  return `SELECT 1 FROM ${qid(schema)}.${qid(table)} AS ${qid(table)} WHERE (${expression}) LIMIT 0`;
}
