// Turns a node's YAML config file into the frozen, typed Config: YAML parsed,
// ${ENV} expanded, every key checked against reference.ts (unknown keys refused),
// defaults applied, cross-key rules checked. Every problem is reported at once,
// each naming the file and the key; secrets never appear in a message.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { SpokesyncError } from '../../apply/core/errors.js';
import { expandEnv, protectRefs } from './env.js';
import { Reader, type ConfigProblem } from './yaml-reader.js';
import type { AdminConfig, ChildConfig, Compression, Config, ListenConfig, ParentConfig, RowsLeaving, TableFilter } from './types.js';

export type { ConfigProblem } from './yaml-reader.js';

export interface ConfigResult {
  /** the config, when there are no problems */
  readonly config?: Config;
  readonly problems: readonly ConfigProblem[];
}

/** Reads and validates a config file; SpokesyncError SPOKESYNC_E_CONFIG(_ENV) listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'error';
    throw new SpokesyncError('SPOKESYNC_E_CONFIG', `${file}: cannot read the config file (${code})`, {
      cause: e,
      fix: 'Pass the path of this node\'s YAML config file with --config FILE.',
    });
  }
  return parseConfig(text, file, env);
}

/** Validates config text; `file` names it in messages (and, resolved, becomes config.file). */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const { config, problems } = checkConfig(text, file, env);
  if (config) return config;
  throw configError(file, problems);
}

/** Like parseConfig, but returns the problems instead of throwing (tests, `spokesync check`). */
export function checkConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ConfigResult {
  const safe = protectRefs(text);
  const doc = parseDocument(safe.text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    // One error often cascades into many: the first few locate it.
    const shown = doc.errors.slice(0, 3).map((e) => {
      // The message proper, without the quoted source (it could hold a secret).
      const what = (e.message.split(/ at line \d+/)[0] ?? e.code).replace(/:? *"[^"]*"/g, '');
      const at = e.linePos?.[0];
      return { path: '', message: `YAML syntax error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${what}` };
    });
    if (doc.errors.length > 3) shown.push({ path: '', message: `(${doc.errors.length - 3} more YAML errors after these)` });
    return { problems: shown };
  }
  let tree: unknown;
  try {
    tree = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { problems: [{ path: '', message: `cannot read the YAML: ${(e as Error).message.split('\n')[0] ?? ''}` }] };
  }
  const env$ = expandEnv(tree, env, safe.restore);
  const r = new Reader(env$.expanded, new Set(env$.problems.map((p) => p.path)));
  const problems: ConfigProblem[] = env$.problems.map((p) => ({ path: p.path, message: p.message, env: p.variable !== undefined }));
  const config = build(r, env$.value, resolve(file));
  problems.push(...r.problems);
  if (problems.length > 0 || !config) return { problems };
  return { config: deepFreeze(config), problems: [] };
}

/** One error for all the problems: one line per problem, each naming the file and the key. */
export function configError(file: string, problems: readonly ConfigProblem[]): SpokesyncError {
  const lines = problems.map((p) => `${file}: ${p.path === '' ? '' : p.path + ': '}${p.message}`);
  const envOnly = problems.every((p) => p.env);
  const someEnv = problems.some((p) => p.env);
  return new SpokesyncError(envOnly ? 'SPOKESYNC_E_CONFIG_ENV' : 'SPOKESYNC_E_CONFIG', lines.join('\n'), someEnv && !envOnly
    ? { fix: 'Set the environment variables and correct the keys named above; `spokesync help config` lists every key.' }
    : undefined);
}

function build(r: Reader, tree: unknown, file: string): Config | undefined {
  if (tree === null || tree === undefined) {
    r.problem('', 'the file is empty: expected a mapping with node, database and tables');
    return undefined;
  }
  const root = r.section('', tree);
  if (!root) return undefined;

  const node = r.section('node', root.node);
  const nodeId = node ? r.id('node.id', node.id) : undefined;

  const db = r.section('database', root.database);
  const database = db && {
    host: r.string('database.host', db.host),
    port: r.int('database.port', db.port),
    user: r.string('database.user', db.user),
    password: r.string('database.password', db.password),
    schema: r.name('database.schema', db.schema),
    stateSchema: r.name('database.stateSchema', db.stateSchema),
    serverId: r.int('database.serverId', db.serverId),
  };
  if (database?.schema !== undefined && database.schema === database.stateSchema) {
    r.problem('database.stateSchema', `must differ from database.schema (${database.schema}): spokesync keeps its own tables apart`);
  }

  const t = r.section('tables', root.tables);
  const tables = t && {
    include: r.globs('tables.include', t.include),
    exclude: r.globs('tables.exclude', t.exclude),
    keys: r.keymap('tables.keys', t.keys),
    direction: r.dirmap('tables.direction', t.direction),
  };

  const listen = readListen(r, root.listen);
  const children = readChildren(r, root.children, nodeId);
  const parent = readParent(r, root.parent);
  const cap = r.section('capture', root.capture, true);
  const memoryBytes = cap ? r.bytes('capture.memoryBytes', cap.memoryBytes) : undefined;
  const clk = r.section('clock', root.clock, true);
  const maxDrift = clk ? r.duration('clock.maxDrift', clk.maxDrift) : undefined;
  const admin = readAdmin(r, root.admin, listen, children);
  const lg = r.section('log', root.log, true);
  const level = lg ? r.enumOf<Config['log']['level']>('log.level', lg.level) : undefined;
  const format = lg ? r.enumOf<NonNullable<Config['log']['format']>>('log.format', lg.format) : undefined;

  if (r.problems.length > 0) return undefined;
  // With no problems every required value above was read; the checks below only narrow types.
  if (!nodeId || !database || !tables || !children || memoryBytes === undefined || maxDrift === undefined || !level || !format || !admin) return undefined;
  const { host, port, user, password, schema, stateSchema, serverId } = database;
  if (!host || !port || !user || !schema || !stateSchema || !serverId) return undefined;
  if (!tables.include || !tables.exclude || !tables.keys || !tables.direction) return undefined;
  return {
    file,
    node: { id: nodeId },
    database: { host, port, user, ...(password === undefined ? {} : { password }), schema, stateSchema, serverId },
    tables: { include: tables.include, exclude: tables.exclude, keys: tables.keys, direction: tables.direction },
    ...(listen ? { listen } : {}),
    children,
    ...(parent ? { parent } : {}),
    capture: { memoryBytes },
    clock: { maxDrift },
    admin,
    log: { level, format },
  };
}

/** Admin tokens shorter than this are refused: the token guards every node's status. */
const MIN_ADMIN_TOKEN = 16;

function readAdmin(r: Reader, raw: unknown, listen: ListenConfig | undefined, children: readonly ChildConfig[] | undefined): AdminConfig | undefined {
  const a = r.section('admin', raw, true);
  if (!a) return undefined;
  const at = r.hostport('admin.listen', a.listen);
  const token = r.string('admin.token', a.token);
  const al = r.section('admin.alerts', a.alerts, true);
  const silentAfter = al ? r.duration('admin.alerts.silentAfter', al.silentAfter) : undefined;
  if (token !== undefined && token.length < MIN_ADMIN_TOKEN) r.problem('admin.token', `must be at least ${MIN_ADMIN_TOKEN} characters (a long random token)`);
  if (token !== undefined && children?.some((c) => c.token === token)) r.problem('admin.token', 'is the same token as a child\'s (children[].token): give the admin endpoints their own');
  if (token !== undefined && !at && !listen) {
    r.problem('admin.token', 'nothing serves the admin endpoints: this node has no listen, so set admin.listen (host:port) too');
  }
  if (at && listen && at.port === listen.port && (at.host === listen.host || listen.host === '0.0.0.0' || at.host === '0.0.0.0')) {
    r.problem('admin.listen', `is listen's address (port ${listen.port}): choose another port, or leave admin.listen out to serve on listen`);
  }
  if (silentAfter === undefined) return undefined;
  return { ...(at ? { listen: at } : {}), ...(token === undefined ? {} : { token }), alerts: { silentAfter } };
}

function readListen(r: Reader, raw: unknown): ListenConfig | undefined {
  const l = r.section('listen', raw);
  if (!l) return undefined;
  const host = r.string('listen.host', l.host);
  const port = r.int('listen.port', l.port);
  const tlsRaw = r.section('listen.tls', l.tls);
  const cert = tlsRaw && r.string('listen.tls.cert', tlsRaw.cert);
  const key = tlsRaw && r.string('listen.tls.key', tlsRaw.key);
  const handshakeTimeout = tlsRaw && r.duration('listen.tls.handshakeTimeout', tlsRaw.handshakeTimeout);
  const maxBodyBytes = r.bytes('listen.maxBodyBytes', l.maxBodyBytes);
  const maxInflatedBytes = r.bytes('listen.maxInflatedBytes', l.maxInflatedBytes);
  const maxElements = r.int('listen.maxElements', l.maxElements);
  if (maxBodyBytes !== undefined && maxInflatedBytes !== undefined && maxInflatedBytes < maxBodyBytes) {
    r.problem('listen.maxInflatedBytes', 'must be at least listen.maxBodyBytes (a body never shrinks when inflated)');
  }
  const limits = readListenLimits(r, l);
  if (!host || !port || maxBodyBytes === undefined || maxInflatedBytes === undefined || !limits) return undefined;
  if (tlsRaw && (!cert || !key || !handshakeTimeout)) return undefined;
  return { host, port, ...(cert && key && handshakeTimeout ? { tls: { cert, key, handshakeTimeout } } : {}), maxBodyBytes, maxInflatedBytes, ...limits, ...(maxElements === undefined ? {} : { maxElements }) };
}

function readListenLimits(r: Reader, l: Record<string, unknown>) {
  const maxConnections = r.int('listen.maxConnections', l.maxConnections);
  const maxConnectionsPerAddress = r.int('listen.maxConnectionsPerAddress', l.maxConnectionsPerAddress);
  const headersTimeout = r.duration('listen.headersTimeout', l.headersTimeout);
  const bodyTimeout = r.duration('listen.bodyTimeout', l.bodyTimeout);
  const requestTimeout = r.duration('listen.requestTimeout', l.requestTimeout);
  const af = r.section('listen.authFailures', l.authFailures, true);
  const max = af && r.int('listen.authFailures.max', af.max);
  const window = af && r.duration('listen.authFailures.window', af.window);
  const block = af && r.duration('listen.authFailures.block', af.block);
  if (maxConnections !== undefined && maxConnectionsPerAddress !== undefined && maxConnectionsPerAddress > maxConnections) {
    r.problem('listen.maxConnectionsPerAddress', `must be at most listen.maxConnections (${maxConnections})`);
  }
  for (const [key, v] of [['listen.headersTimeout', headersTimeout], ['listen.bodyTimeout', bodyTimeout]] as const) {
    if (v !== undefined && requestTimeout !== undefined && v > requestTimeout) r.problem(key, 'must be at most listen.requestTimeout');
  }
  if (!maxConnections || !maxConnectionsPerAddress || !headersTimeout || !bodyTimeout || !requestTimeout || !max || !window || !block) return undefined;
  return { maxConnections, maxConnectionsPerAddress, headersTimeout, bodyTimeout, requestTimeout, authFailures: { max, window, block } };
}

function readChildren(r: Reader, raw: unknown, nodeId: string | undefined): ChildConfig[] | undefined {
  const list = r.list('children', raw);
  if (!list) return undefined;
  const out: ChildConfig[] = [];
  const ids = new Map<string, number>();
  const tokens = new Map<string, number>();
  list.forEach((item, i) => {
    const p = `children[${i}]`;
    if (item === null || item === undefined) {
      r.problem(p, 'expected a mapping with id and token, got nothing');
      return;
    }
    const c = r.section(p, item);
    if (!c) return;
    const id = r.id(`${p}.id`, c.id);
    const token = r.string(`${p}.token`, c.token);
    const ft = r.section(`${p}.tables`, c.tables);
    const include = ft && r.globs(`${p}.tables.include`, ft.include);
    const exclude = ft && r.globs(`${p}.tables.exclude`, ft.exclude);
    const rows = c.rows === undefined || c.rows === null ? undefined : r.exprmap(`${p}.rows`, c.rows);
    const leaving = r.enumOf<RowsLeaving>(`${p}.rowsLeaving`, c.rowsLeaving);
    if (c.rowsLeaving !== undefined && c.rowsLeaving !== null && (c.rows === undefined || c.rows === null)) {
      r.problem(`${p}.rowsLeaving`, `has no effect without ${p}.rows: set the row filters, or remove it`);
    }
    if (id !== undefined) {
      const first = ids.get(id);
      if (first !== undefined) r.problem(`${p}.id`, `${id} is already children[${first}].id: each child is listed once`);
      else ids.set(id, i);
      if (id === nodeId) r.problem(`${p}.id`, `${id} is this node's own id (node.id): a node cannot be its own child`);
    }
    if (token !== undefined) {
      const first = tokens.get(token);
      if (first !== undefined) r.problem(`${p}.token`, `is the same token as children[${first}].token: the parent tells children apart by token, give each its own`);
      else tokens.set(token, i);
    }
    if (id === undefined || token === undefined) return;
    const tables: TableFilter | undefined = ft && include && exclude ? { include, exclude } : undefined;
    out.push({ id, token, ...(tables ? { tables } : {}), ...(rows && leaving ? { rows, rowsLeaving: leaving } : {}) });
  });
  return out;
}

function readParent(r: Reader, raw: unknown): ParentConfig | undefined {
  const p = r.section('parent', raw);
  if (!p) return undefined;
  const url = r.url('parent.url', p.url);
  const token = r.string('parent.token', p.token);
  const interval = r.duration('parent.interval', p.interval);
  const timeout = r.duration('parent.timeout', p.timeout);
  const maxTries = r.int('parent.maxTries', p.maxTries);
  const compression = r.enumOf<Compression>('parent.compression', p.compression);
  const b = r.section('parent.batch', p.batch, true);
  const records = b && r.int('parent.batch.records', b.records);
  const bytes = b && r.bytes('parent.batch.bytes', b.bytes);
  const ca = r.string('parent.ca', p.ca);
  if (!url || !token || !interval || !timeout || !maxTries || !compression || !records || !bytes) return undefined;
  return { url, token, interval, timeout, maxTries, compression, batch: { records, bytes }, ...(ca ? { ca } : {}) };
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
