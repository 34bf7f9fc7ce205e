// Reads values out of a parsed YAML tree by key path, applying the defaults of
// reference.ts and collecting every problem instead of stopping at the first.
// Secret values never appear in a problem; other values are quoted short.
import { keysUnder, specOf, type KeySpec } from './reference.js';
import { parseBytes, parseDuration, formatBytes, formatDuration } from '../../apply/core/units.js';
import { expressionProblem } from '../rows/expr.js';

export interface ConfigProblem {
  /** key path such as `parent.batch.bytes` or `children[1].id`; '' for the whole file */
  readonly path: string;
  readonly message: string;
  /** an unset environment variable */
  readonly env?: boolean;
}

type Obj = Record<string, unknown>;

export const NODE_ID = /^[a-z0-9-]+$/;
/** a table or column name as spokesync accepts it in the config */
const IDENT = /^[A-Za-z0-9_$-]{1,64}$/;
const GLOB = /^[A-Za-z0-9_$*?-]{1,64}$/;

export class Reader {
  readonly problems: ConfigProblem[] = [];

  /**
   * @param expanded paths whose value came from ${ENV} (a number may arrive as text there)
   * @param skip paths already reported (unset variables): read as absent, without a second problem
   */
  constructor(
    private readonly expanded: ReadonlySet<string> = new Set(),
    private readonly skip: ReadonlySet<string> = new Set(),
  ) {}

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** A mapping; unknown keys are reported. Absent: undefined, or {} when `fill` (all its keys have defaults). */
  section(path: string, raw: unknown, fill = false): Obj | undefined {
    if (raw === undefined || raw === null) {
      if (specOf(path)?.required) this.problem(path, `missing: ${specOf(path)?.help ?? 'required'}`);
      return fill ? {} : undefined;
    }
    if (!isObj(raw)) {
      this.problem(path, `expected a mapping of keys (${keysUnder(path).join(', ')}), got ${describe(raw, false)}`);
      return undefined;
    }
    const allowed = keysUnder(path);
    for (const k of Object.keys(raw)) {
      if (!allowed.includes(k)) {
        const near = nearest(k, allowed);
        this.problem(join(path, k), `unknown key${near ? ` (did you mean ${near}?)` : ''}; allowed here: ${allowed.join(', ')}`);
      }
    }
    return raw;
  }

  /** A sequence; absent → the default ([]). */
  list(path: string, raw: unknown): unknown[] | undefined {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) {
      this.problem(path, `expected a list, got ${describe(raw, false)}`);
      return undefined;
    }
    return raw;
  }

  string(path: string, raw: unknown): string | undefined {
    return this.read(path, raw, (v, spec) => {
      if (typeof v === 'string' && v !== '') return v;
      const quote = spec.kind === 'secret' && typeof v !== 'string' ? ' (quote the value)' : '';
      return this.bad(path, spec, `a non-empty string${quote}`, v);
    });
  }

  name(path: string, raw: unknown): string | undefined {
    return this.read(path, raw, (v, spec) =>
      typeof v === 'string' && IDENT.test(v) ? v : this.bad(path, spec, 'a schema name (letters, digits, _, $ or -; at most 64)', v),
    );
  }

  id(path: string, raw: unknown): string | undefined {
    return this.read(path, raw, (v, spec) =>
      typeof v === 'string' && NODE_ID.test(v) && v.length <= 64 ? v : this.bad(path, spec, 'a node id of lower-case letters, digits and - (e.g. kigali)', v),
    );
  }

  int(path: string, raw: unknown): number | undefined {
    return this.read(path, raw, (v, spec) => {
      const n = typeof v === 'string' && this.expanded.has(path) && /^\d+$/.test(v) ? Number(v) : v;
      const min = spec.min ?? 0;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return n;
      return this.bad(path, spec, `a whole number from ${min} to ${max}`, v);
    });
  }

  duration(path: string, raw: unknown): number | undefined {
    return this.read(path, raw, (v, spec) => {
      const ms = typeof v === 'string' ? parseDuration(v) : undefined;
      const min = spec.min ?? 1;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      if (ms !== undefined && ms >= min && ms <= max) return ms;
      const hint = typeof v === 'number' ? ' (a bare number has no unit)'
        : ms !== undefined ? (ms < min ? ` (at least ${formatDuration(min)})` : ` (at most ${formatDuration(max)})`) : '';
      return this.bad(path, spec, `a duration like 30s, 5m or 1h${hint}`, v);
    });
  }

  bytes(path: string, raw: unknown): number | undefined {
    return this.read(path, raw, (v, spec) => {
      const n = typeof v === 'string' || typeof v === 'number' ? parseBytes(v) : undefined;
      const min = spec.min ?? 1;
      if (n !== undefined && n >= min) return n;
      const hint = n !== undefined ? ` of at least ${formatBytes(min)}` : '';
      return this.bad(path, spec, `a size like 65536, 64KiB or 8MiB${hint}`, v);
    });
  }

  url(path: string, raw: unknown): string | undefined {
    return this.read(path, raw, (v, spec) => {
      let u: URL | undefined;
      try {
        u = typeof v === 'string' ? new URL(v) : undefined;
      } catch {
        u = undefined;
      }
      if (u && u.username === '' && u.password === '' && (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '') return v as string;
      const creds = u && (u.username !== '' || u.password !== '') ? ' without user or password in it (the token authenticates)' : '';
      // A URL may carry credentials: it is never quoted back.
      return this.bad({ path, secret: true }, spec, `an http:// or https:// URL${creds}`, v);
    });
  }

  /** `host:port` (an IPv6 host in brackets: `[::1]:8081`). */
  hostport(path: string, raw: unknown): { host: string; port: number } | undefined {
    return this.read(path, raw, (v, spec) => {
      const m = typeof v === 'string' ? /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v) : null;
      const port = m ? Number(m[3]) : 0;
      if (m && port >= 1 && port <= 65535) return { host: m[1] ?? m[2] ?? '', port };
      return this.bad(path, spec, 'host:port, e.g. 127.0.0.1:8081 or [::1]:8081', v);
    });
  }

  enumOf<T extends string>(path: string, raw: unknown): T | undefined {
    return this.read(path, raw, (v, spec) => {
      const values = spec.values ?? [];
      return typeof v === 'string' && values.includes(v) ? (v as T) : this.bad(path, spec, `one of ${values.join(', ')}`, v);
    });
  }

  globs(path: string, raw: unknown): string[] | undefined {
    return this.read(path, raw, (v, spec) => {
      if (!Array.isArray(v)) return this.bad(path, spec, 'a list of table names or globs, e.g. [person, patient*]', v);
      const out: string[] = [];
      v.forEach((x, i) => {
        if (typeof x === 'string' && GLOB.test(x)) out.push(x);
        else this.problem(`${path}[${i}]`, `expected a table name or glob (letters, digits, _, $, -, * and ?), got ${describe(x, false)}`);
      });
      if (spec.required && v.length === 0) this.problem(path, 'must name at least one table or glob');
      return out.length === v.length ? out : undefined;
    });
  }

  keymap(path: string, raw: unknown): Record<string, string[]> | undefined {
    return this.map(path, raw, 'a list of key column names, e.g. [concept_name_id, concept_name_tag_id]', (v) =>
      Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === 'string' && IDENT.test(c)) && new Set(v).size === v.length
        ? (v as string[])
        : undefined,
    );
  }

  dirmap(path: string, raw: unknown): Record<string, 'both' | 'up' | 'down'> | undefined {
    return this.map(path, raw, 'both, up or down', (v) => (v === 'both' || v === 'up' || v === 'down' ? v : undefined));
  }

  /** table → one SQL boolean expression (agent/rows/expr.ts) */
  exprmap(path: string, raw: unknown): Record<string, string> | undefined {
    return this.read(path, raw, (v, spec) => {
      if (!isObj(v)) return this.bad(path, spec, 'a mapping of table name → SQL boolean expression', v);
      if (Object.keys(v).length === 0) return this.bad(path, spec, 'at least one table → expression', v);
      const out: Record<string, string> = {};
      for (const [table, x] of Object.entries(v)) {
        const p = join(path, table);
        if (!IDENT.test(table)) this.problem(p, 'expected a table name (letters, digits, _, $ or -)');
        else if (typeof x !== 'string') this.problem(p, `expected a SQL boolean expression in quotes, got ${describe(x, false)}`);
        else {
          const why = expressionProblem(x);
          if (why) this.problem(p, `the expression ${why}`);
          else out[table] = x;
        }
      }
      return Object.keys(out).length === Object.keys(v).length ? out : undefined;
    });
  }

  private map<T>(path: string, raw: unknown, expected: string, item: (v: unknown) => T | undefined): Record<string, T> | undefined {
    return this.read(path, raw, (v, spec) => {
      if (!isObj(v)) return this.bad(path, spec, 'a mapping of table name → value', v);
      const out: Record<string, T> = {};
      let ok = true;
      for (const [table, x] of Object.entries(v)) {
        const p = join(path, table);
        if (!IDENT.test(table)) {
          this.problem(p, 'expected a table name (letters, digits, _, $ or -)');
          ok = false;
          continue;
        }
        const got = item(x);
        if (got === undefined) {
          this.problem(p, `expected ${expected}, got ${describe(x, false)}`);
          ok = false;
        } else out[table] = got;
      }
      return ok ? out : undefined;
    });
  }

  /** Absent → default (parsed like a written value) or a "missing" problem; present → parse. */
  private read<T>(path: string, raw: unknown, parse: (v: unknown, spec: KeySpec) => T | undefined): T | undefined {
    const spec = specOf(path);
    if (!spec) throw new Error(`config key ${path} is not in reference.ts`);
    if (this.skip.has(path)) return undefined;
    if (raw === undefined || raw === null) {
      if (spec.default !== undefined) return parse(spec.default, spec);
      if (spec.required) this.problem(path, `missing: ${spec.help}${spec.example ? `, e.g. ${spec.example}` : ''}`);
      return undefined;
    }
    return parse(raw, spec);
  }

  private bad(where: string | { path: string; secret: boolean }, spec: KeySpec, expected: string, got: unknown): undefined {
    const path = typeof where === 'string' ? where : where.path;
    const secret = spec.kind === 'secret' || (typeof where !== 'string' && where.secret);
    this.problem(path, `expected ${expected}, got ${describe(got, secret)}`);
    return undefined;
  }
}

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** A short description of a value for a message; secrets only by type. */
export function describe(v: unknown, secret: boolean): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') {
    if (secret) return v === '' ? 'an empty string' : 'a string that is not valid here (not shown)';
    const s = v.length > 40 ? v.slice(0, 40) + '…' : v;
    return `'${[...s].map((c) => (c < ' ' ? '?' : c)).join('')}'`;
  }
  if (secret) return `a ${typeof v}`;
  return String(v);
}

/** The allowed key closest to a misspelt one (case or up to two edits), if any. */
export function nearest(k: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const a of allowed) {
    const d = a.toLowerCase() === k.toLowerCase() ? 0 : distance(k, a);
    if (d < bestD) {
      best = a;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}
