// ${ENV} expansion in config values. Pure: the environment is passed in.
//
//   ${VAR}          the variable's value; an error when VAR is not set
//   ${VAR:-text}    the value, or text when VAR is unset or empty
//   $${             a literal ${
//
// Only string values are expanded (never keys), after YAML parsing, so a value
// with quotes, colons or newlines cannot change the structure of the file.
// References are swapped for plain tokens before parsing (protectRefs), so
// `{ id: x, token: ${TOKEN} }` is valid in a YAML flow mapping too.

export interface EnvProblem {
  readonly path: string;
  readonly message: string;
  /** the variable that is not set, when that is the problem */
  readonly variable?: string;
}

export interface Expanded {
  readonly value: unknown;
  /** paths of the string values that contained a ${...} reference */
  readonly expanded: ReadonlySet<string>;
  readonly problems: readonly EnvProblem[];
}

const REF = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface Protected {
  /** the text with every `${...}` and `$${` replaced by a token safe in any YAML scalar */
  readonly text: string;
  /** puts the original references back into a string */
  restore(s: string): string;
}

/** Hides ${...} references from the YAML parser (they would break flow mappings). */
export function protectRefs(text: string): Protected {
  const refs: string[] = [];
  let nonce = 0;
  while (text.includes(`spokesyncref${nonce}x`)) nonce++;
  const token = (i: number): string => `spokesyncref${nonce}x${i}x`;
  const out = text.replace(/\$\$\{|\$\{[^}\n]*\}/g, (ref) => token(refs.push(ref) - 1));
  const back = new RegExp(`spokesyncref${nonce}x(\\d+)x`, 'g');
  return { text: out, restore: (s) => (refs.length === 0 ? s : s.replace(back, (_, i: string) => refs[Number(i)] ?? '')) };
}

export function expandEnv(tree: unknown, env: NodeJS.ProcessEnv, restore: (s: string) => string = (s) => s): Expanded {
  const expanded = new Set<string>();
  const problems: EnvProblem[] = [];
  const walk = (v0: unknown, path: string): unknown => {
    const v = typeof v0 === 'string' ? restore(v0) : v0;
    if (typeof v === 'string') {
      if (!v.includes('${')) return v;
      expanded.add(path);
      return expandString(v, env, (p) => problems.push({ path, ...p }));
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k0, x] of Object.entries(v)) {
        const k = restore(k0);
        out[k] = walk(x, path === '' ? k : `${path}.${k}`);
      }
      return out;
    }
    return v;
  };
  const value = walk(tree, '');
  return { value, expanded, problems };
}

/** Expands one string; unset variables and malformed references are reported, never their values. */
export function expandString(
  text: string,
  env: NodeJS.ProcessEnv,
  report: (p: { message: string; variable?: string }) => void,
): string {
  return text.replace(REF, (whole: string, body: string | undefined) => {
    if (whole === '$${') return '${';
    if (body === undefined) {
      report({ message: 'has a ${ without a closing }: write ${VAR}, ${VAR:-default}, or $${ for a literal ${' });
      return '';
    }
    const sep = body.indexOf(':-');
    const name = sep === -1 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      report({ message: `has a malformed reference \${${name}}: a variable name is letters, digits and _` });
      return '';
    }
    const value = env[name];
    if (sep !== -1) return value === undefined || value === '' ? body.slice(sep + 2) : value;
    if (value === undefined) {
      report({ message: `environment variable ${name} is not set`, variable: name });
      return '';
    }
    return value;
  });
}
