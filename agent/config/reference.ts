// Every config key, its kind, its default and its help text, written down once.
// The loader validates against this table (unknown keys are the ones not in it),
// and `spokesync help config` prints it.

/** How a value is read. */
export type KeyKind =
  | 'section' // a mapping of the keys below it
  | 'list' // a sequence (of sections or strings, see the keys below it / `item`)
  | 'string'
  | 'secret' // a string that never appears in messages
  | 'name' // a schema name
  | 'id' // a node id: [a-z0-9-]+
  | 'int'
  | 'duration' // '500ms', '30s', '5m', '1h', '2d'
  | 'bytes' // 65536, '64KiB', '8MiB'
  | 'url' // http:// or https://
  | 'hostport' // host:port, [v6]:port
  | 'enum'
  | 'globs' // a list of table names or globs
  | 'keymap' // table → list of column names
  | 'dirmap' // table → 'both' | 'up' | 'down'
  | 'exprmap'; // table → SQL boolean expression

export interface KeySpec {
  /** dotted path; `[]` stands for any element of a list */
  readonly key: string;
  readonly kind: KeyKind;
  readonly help: string;
  /** must be present (when its section is) */
  readonly required?: boolean;
  /** the value when the key is absent, as written in YAML */
  readonly default?: string | number | readonly string[] | Readonly<Record<string, never>>;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  /** shown in `spokesync help config` as an example value */
  readonly example?: string;
}

export const MAX_SERVER_ID = 4294967295;

export const CONFIG_KEYS: readonly KeySpec[] = [
  { key: 'node', kind: 'section', required: true, help: 'this node' },
  { key: 'node.id', kind: 'id', required: true, example: 'kigali', help: 'name of this node: lower-case letters, digits and -, unique in the network' },

  { key: 'database', kind: 'section', required: true, help: 'the MySQL/MariaDB server beside this node' },
  { key: 'database.host', kind: 'string', required: true, example: '127.0.0.1', help: 'server host name or address' },
  { key: 'database.port', kind: 'int', default: 3306, min: 1, max: 65535, help: 'server TCP port' },
  { key: 'database.user', kind: 'string', required: true, example: 'spokesync', help: 'user with the grants in mysql-conf/grants.sql' },
  { key: 'database.password', kind: 'secret', example: '${SPOKESYNC_DB_PASSWORD}', help: "that user's password; write ${VAR} to read it from the environment" },
  { key: 'database.schema', kind: 'name', required: true, example: 'openmrs', help: 'the application schema to sync' },
  { key: 'database.stateSchema', kind: 'name', default: 'spokesync', help: "spokesync's own tables (journal, ledger, peers...), created on first run" },
  { key: 'database.serverId', kind: 'int', required: true, min: 1, max: MAX_SERVER_ID, example: '4101', help: "binlog client id: unique among this server's replicas and binlog readers, and not the server's own server_id" },

  { key: 'tables', kind: 'section', required: true, help: 'which tables of the application schema sync' },
  { key: 'tables.include', kind: 'globs', required: true, example: '[person, patient, encounter, obs]', help: 'table names or globs (* any run, ? one character); at least one' },
  { key: 'tables.exclude', kind: 'globs', default: [], help: 'table names or globs taken out of include' },
  { key: 'tables.keys', kind: 'keymap', default: {}, example: '{ concept_name_tag_map: [concept_name_id, concept_name_tag_id] }', help: 'identity override for tables without a uuid or usable key: table → key columns' },
  { key: 'tables.direction', kind: 'dirmap', default: {}, example: '{ location: down }', help: 'one-way tables: table → up (child to parent only) or down (parent to child only); others sync both ways' },

  { key: 'listen', kind: 'section', help: 'parent role: serve children over HTTP(S)' },
  { key: 'listen.host', kind: 'string', default: '0.0.0.0', help: 'address to listen on' },
  { key: 'listen.port', kind: 'int', required: true, min: 1, max: 65535, example: '8080', help: 'TCP port to listen on' },
  { key: 'listen.tls', kind: 'section', help: 'serve HTTPS instead of HTTP' },
  { key: 'listen.tls.cert', kind: 'string', required: true, example: '/etc/spokesync/cert.pem', help: 'PEM certificate (chain) file' },
  { key: 'listen.tls.key', kind: 'string', required: true, example: '/etc/spokesync/key.pem', help: 'PEM private key file' },
  { key: 'listen.tls.handshakeTimeout', kind: 'duration', default: '60s', min: 1000, help: 'time allowed for the TLS handshake (the certificate alone takes seconds at 1 kbps)' },
  { key: 'listen.maxBodyBytes', kind: 'bytes', default: '8MiB', min: 1024, help: 'largest request body accepted, as sent (compressed)' },
  { key: 'listen.maxInflatedBytes', kind: 'bytes', default: '8MiB', min: 1024, help: 'largest request body accepted after decompression (the XML of one batch; it bounds the memory a request takes)' },
  { key: 'listen.maxElements', kind: 'int', default: 100_000, min: 100, max: 100_000_000, help: 'most XML elements in one request (change sets, operations and columns together; about 250 bytes of memory each while it is applied)' },
  { key: 'listen.maxConnections', kind: 'int', default: 256, min: 1, max: 65535, help: 'most connections open at once, from all addresses' },
  { key: 'listen.maxConnectionsPerAddress', kind: 'int', default: 8, min: 1, max: 65535, help: 'most connections open at once from one address (an IPv6 /64); more are closed unanswered' },
  { key: 'listen.headersTimeout', kind: 'duration', default: '10s', min: 1000, help: 'time allowed from connecting (from the end of the TLS handshake) to the end of the request headers' },
  { key: 'listen.bodyTimeout', kind: 'duration', default: '60s', min: 1000, help: 'longest time a request body may send nothing before its connection is closed' },
  { key: 'listen.requestTimeout', kind: 'duration', default: '15m', min: 1000, help: 'longest time one request may take to arrive, however steadily' },
  { key: 'listen.authFailures', kind: 'section', help: 'answer 429 to an address that presents too many wrong tokens' },
  { key: 'listen.authFailures.max', kind: 'int', default: 10, min: 1, max: 1_000_000, help: 'wrong tokens from one address within window before it is refused' },
  { key: 'listen.authFailures.window', kind: 'duration', default: '1m', min: 1000, help: 'time over which wrong tokens are counted' },
  { key: 'listen.authFailures.block', kind: 'duration', default: '5m', min: 1000, help: 'how long that address then gets 429 without its token being looked at' },

  { key: 'children', kind: 'list', default: [], help: 'parent role: the children allowed to exchange with this node' },
  { key: 'children[].id', kind: 'id', required: true, example: 'rwinkwavu', help: "the child's node.id" },
  { key: 'children[].token', kind: 'secret', required: true, example: '${RWINKWAVU_TOKEN}', help: 'the bearer token that child presents (its parent.token); unique per child' },
  { key: 'children[].tables', kind: 'section', help: 'optional filter for this child, applied on top of tables' },
  { key: 'children[].tables.include', kind: 'globs', default: ['*'], help: 'table names or globs this child receives' },
  { key: 'children[].tables.exclude', kind: 'globs', default: [], help: 'table names or globs this child does not receive' },
  {
    key: 'children[].rows', kind: 'exprmap', example: '{ person: "EXISTS (SELECT 1 FROM patient_identifier i WHERE i.patient_id = person.person_id AND i.location_id = 2)" }',
    help: 'row filters: table → SQL boolean expression over that table\'s row (named by the table\'s name), evaluated by this node\'s server; only matching rows, the rows that follow them through foreign keys and the rows those refer to go to this child (README, Row filters); checked at start',
  },
  { key: 'children[].rowsLeaving', kind: 'enum', default: 'keep', values: ['keep', 'delete'], help: 'a row that stops matching: keep it at the child, or delete it there (and only there) with the rows that follow it' },

  { key: 'parent', kind: 'section', help: 'child role: the node this one exchanges with' },
  { key: 'parent.url', kind: 'url', required: true, example: 'https://kigali.example.org:8080', help: "the parent's listen address, http:// or https://" },
  { key: 'parent.token', kind: 'secret', required: true, example: '${SPOKESYNC_PARENT_TOKEN}', help: "this node's token, as listed in the parent's children" },
  { key: 'parent.interval', kind: 'duration', default: '5m', min: 1000, help: 'time between exchanges in `spokesync run`' },
  { key: 'parent.timeout', kind: 'duration', default: '10m', min: 1000, help: 'time allowed for one HTTP request, upload and answer together. The default fits a full batch each way at 1 kbps (125 B/s): 200 OpenMRS registrations are about 22 KB with spokesync-vbr, 3 minutes each way; a request the timeout cuts is resumed where it stopped, not sent again' },
  { key: 'parent.maxTries', kind: 'int', default: 5, min: 1, max: 100, help: 'attempts per request, the first one included' },
  { key: 'parent.compression', kind: 'enum', default: 'br', values: ['gzip', 'br', 'none'], help: 'request body encoding: br (brotli, as spokesync-vbr, the smallest, to parents that take it, else spokesync-ubr, else plain br), gzip or none; answers come in the same coding' },
  { key: 'parent.batch', kind: 'section', help: 'size of one request, so it fits a slow link' },
  { key: 'parent.batch.records', kind: 'int', default: 200, min: 1, max: 1_000_000, help: 'most change sets per request (the parent answers within the same records and bytes)' },
  { key: 'parent.batch.bytes', kind: 'bytes', default: '1MiB', min: 1024, help: 'most bytes of batch XML per request, before compression. The default lets records decide for most data: 200 OpenMRS registrations are about 600 KB of XML, and brotli packs a batch that large far better than small ones (105 B per registration against 146 B in batches of 25)' },
  { key: 'parent.ca', kind: 'string', example: '/etc/spokesync/parent-ca.pem', help: "PEM file of the parent's certificate or CA, for self-signed parents" },

  { key: 'capture', kind: 'section', help: 'binlog capture' },
  { key: 'capture.memoryBytes', kind: 'bytes', default: '32MiB', min: 1024 * 1024, help: 'decoded binlog rows held in memory before capture pauses to drain' },

  { key: 'clock', kind: 'section', help: 'the clock that stamps changes' },
  { key: 'clock.maxDrift', kind: 'duration', default: '1d', min: 60_000, max: 366 * 86_400_000, help: "how far a received change's stamp may be ahead of this node's clock; a change further ahead is held in quarantine until this clock catches up" },

  { key: 'admin', kind: 'section', help: 'the admin endpoints: GET /status.json (the tree below this node, with alerts), POST /login, GET /health' },
  { key: 'admin.listen', kind: 'hostport', example: '127.0.0.1:8081', help: 'serve them on this address (host:port) instead of listen; needed on a node without listen' },
  { key: 'admin.token', kind: 'secret', example: '${SPOKESYNC_ADMIN_TOKEN}', help: 'bearer token of /status.json (or a browser logs in with it at POST /login), at least 16 characters; without it only /health is served' },
  { key: 'admin.alerts', kind: 'section', help: 'when status.json raises alerts' },
  { key: 'admin.alerts.silentAfter', kind: 'duration', default: '1d', min: 1000, help: 'a node without a successful exchange for this long is shown silent' },

  { key: 'log', kind: 'section', help: 'logging: JSON lines for services, readable lines on a terminal' },
  { key: 'log.level', kind: 'enum', default: 'info', values: ['debug', 'info', 'warn', 'error'], help: 'least severe level written: debug, info, warn or error' },
  { key: 'log.format', kind: 'enum', default: 'auto', values: ['auto', 'text', 'json'], help: 'json: one JSON object per line; text: time, level, message, key=value fields; auto: text when the log goes to a terminal, json otherwise (the environment variable SPOKESYNC_LOG_FORMAT overrides it)' },
];

const byKey = new Map(CONFIG_KEYS.map((k) => [k.key, k]));

/** The spec of a concrete path such as `children[2].token`, or undefined for an unknown key. */
export function specOf(path: string): KeySpec | undefined {
  return byKey.get(path.replace(/\[\d+\]/g, '[]'));
}

/** The keys allowed directly under a section path ('' for the top level). */
export function keysUnder(path: string): string[] {
  const norm = path.replace(/\[\d+\]/g, '[]');
  const prefix = norm === '' ? '' : norm + '.';
  return CONFIG_KEYS.filter((k) => k.key.startsWith(prefix) && !k.key.slice(prefix.length).includes('.') && !k.key.slice(prefix.length).includes('[')).map((k) =>
    k.key.slice(prefix.length),
  );
}

/** `spokesync help config`: every key with its default and help. */
export function configReference(): string {
  const rows = CONFIG_KEYS.map((k) => {
    const note = k.required ? 'required' : k.default !== undefined ? `default ${showDefault(k.default)}` : 'optional';
    const eg = k.example ? `, e.g. ${k.example}` : '';
    return { key: k.key, text: `${k.help} (${note}${eg})` };
  });
  const width = Math.max(...rows.map((r) => r.key.length)) + 2;
  return [
    'Config file (YAML), one per node. Unknown keys are errors.',
    '${VAR} is replaced by the environment variable VAR (an error when unset); ${VAR:-text} uses text when VAR is unset or empty; $${ is a literal ${.',
    'Durations need a unit: 500ms, 30s, 5m, 1h, 2d. Sizes: a number of bytes, or 64KiB, 8MiB, 1GiB (also KB/MB/GB = 1000-based, K/M/G = 1024-based).',
    '',
    ...rows.map((r) => `  ${r.key.padEnd(width)}${r.text}`),
  ].join('\n');
}

function showDefault(v: NonNullable<KeySpec['default']>): string {
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  if (typeof v === 'object') return '{}';
  return String(v);
}
