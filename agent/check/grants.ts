// SHOW GRANTS lines → what the user may do. Pure.
// Handles global (*.*) and schema-level (`db`.*) grants, ALL PRIVILEGES, the
// MariaDB/MySQL aliases (REPLICATION REPLICA = REPLICATION SLAVE, BINLOG MONITOR =
// REPLICATION CLIENT) and the LIKE wildcards of schema-level grants (`open\_mrs`).
// Table-, column- and routine-level grants and privileges held through roles are
// not counted: spokesync needs its privileges on whole schemas.

export interface Grant {
  /** upper-case privilege names; ALL PRIVILEGES is 'ALL' */
  readonly privileges: ReadonlySet<string>;
  /** '*' for every schema, or a schema-name pattern with LIKE wildcards (as in the grant) */
  readonly schema: string;
  /** true for `ON *.*` */
  readonly global: boolean;
}

export interface ParsedGrants {
  readonly grants: readonly Grant[];
  /** role names granted to the user (their privileges are not counted) */
  readonly roles: readonly string[];
}

const ALIASES: Record<string, string> = {
  'ALL PRIVILEGES': 'ALL',
  'REPLICATION REPLICA': 'REPLICATION SLAVE',
  'BINLOG MONITOR': 'REPLICATION CLIENT',
};

export function parseGrants(lines: readonly string[]): ParsedGrants {
  const grants: Grant[] = [];
  const roles: string[] = [];
  for (const line of lines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+(.+?)\s+TO\s+/is.exec(line);
    if (!m) {
      const role = /^GRANT\s+(`[^`]+`|'[^']+'|\S+)\s+TO\s+/i.exec(line);
      if (role) roles.push(unquote(role[1]!));
      continue;
    }
    const target = parseTarget(m[2]!);
    if (!target || target.table !== '*') continue;
    const privileges = new Set(
      splitPrivileges(m[1]!)
        .filter((p) => !p.includes('('))
        .map((p) => p.trim().toUpperCase().replace(/\s+/g, ' '))
        .map((p) => ALIASES[p] ?? p),
    );
    grants.push({ privileges, schema: target.schema, global: target.schema === '*' });
  }
  return { grants, roles };
}

/** Whether the grants give `privilege` on every table of `schema` ('*' = a global privilege). */
export function holds(grants: readonly Grant[], privilege: string, schema: string): boolean {
  const p = ALIASES[privilege] ?? privilege;
  return grants.some(
    (g) => (g.global || (schema !== '*' && likeMatch(g.schema, schema))) && (g.privileges.has('ALL') || g.privileges.has(p)),
  );
}

/** The privileges of `wanted` that the grants do not give on `schema`. */
export function missing(grants: readonly Grant[], wanted: readonly string[], schema: string): string[] {
  return wanted.filter((p) => !holds(grants, p, schema));
}

function parseTarget(text: string): { schema: string; table: string } | undefined {
  const t = text.trim();
  if (/^(FUNCTION|PROCEDURE|PACKAGE)\b/i.test(t)) return undefined;
  const m = /^(`(?:[^`]|``)*`|[^.\s`]+)\.(`(?:[^`]|``)*`|\*|[^.\s`]+)$/.exec(t);
  if (!m) return undefined;
  return { schema: m[1] === '*' ? '*' : unquote(m[1]!), table: m[2] === '*' ? '*' : unquote(m[2]!) };
}

function unquote(s: string): string {
  if (s.startsWith('`') && s.endsWith('`')) return s.slice(1, -1).replace(/``/g, '`');
  if (s.startsWith("'") && s.endsWith("'")) return s.slice(1, -1);
  return s;
}

/** Splits 'SELECT (a, b), INSERT, UPDATE' on the commas outside parentheses. */
function splitPrivileges(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** A schema-level grant's name as a LIKE pattern: `_` one character, `%` any run, `\_` `\%` literal. */
export function likeMatch(pattern: string, name: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]!);
    } else if (ch === '_') re += '.';
    else if (ch === '%') re += '.*';
    else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`, 's').test(name);
}

function escapeRe(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** `'user'@'host'` from CURRENT_USER() (`user@host`), for GRANT statements in fixes. */
export function accountOf(currentUser: string): string {
  const at = currentUser.lastIndexOf('@');
  const user = at === -1 ? currentUser : currentUser.slice(0, at);
  const host = at === -1 ? '%' : currentUser.slice(at + 1);
  const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `${q(user)}@${q(host)}`;
}
