// The validated, frozen configuration every part of spokesync receives.
// The YAML format is documented in README.md and DESIGN.md; loader.ts turns a
// file into this object (defaults applied, ${ENV} expanded, unknown keys refused).

export type Compression = 'gzip' | 'br' | 'none';
/** `both` (default), `up` (child → parent only) or `down` (parent → child only) */
export type Direction = 'both' | 'up' | 'down';

export interface TableFilter {
  /** table names or globs (`*`, `?`) */
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

export interface DatabaseConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  /** the application schema */
  readonly schema: string;
  /** spokesync's own state (default `spokesync`) */
  readonly stateSchema: string;
  /** binlog client id, unique per server */
  readonly serverId: number;
}

export interface ChildConfig {
  readonly id: string;
  readonly token: string;
  /** optional per-child filter applied on top of `tables` */
  readonly tables?: TableFilter;
  /** row filters: table → SQL boolean expression over that table's row, evaluated by this node's server (agent/rows/) */
  readonly rows?: Readonly<Record<string, string>>;
  /** rows that stop matching: kept at the child (default), or deleted there only */
  readonly rowsLeaving?: RowsLeaving;
}

export type RowsLeaving = 'keep' | 'delete';

export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  /** handshakeTimeout: milliseconds a TLS handshake may take (default 60s; a certificate takes seconds at 1 kbps) */
  readonly tls?: { readonly cert: string; readonly key: string; readonly handshakeTimeout?: number };
  /** largest request body accepted on the wire (default 8 MiB) */
  readonly maxBodyBytes: number;
  /** largest body after decompression (default 8 MiB) */
  readonly maxInflatedBytes: number;
  // The limits below are always set by the loader; absent ones take the defaults of reference.ts (exchange/peer-limits.ts).
  /** most connections at once (default 256) */
  readonly maxConnections?: number;
  /** most connections at once from one address or IPv6 /64 (default 8) */
  readonly maxConnectionsPerAddress?: number;
  /** milliseconds from connecting to the end of the headers (default 10s) */
  readonly headersTimeout?: number;
  /** milliseconds a body may send nothing (default 60s) */
  readonly bodyTimeout?: number;
  /** milliseconds one request may take to arrive (default 15m) */
  readonly requestTimeout?: number;
  /** wrong tokens from one address within `window` ms before it gets 429 for `block` ms (default 10, 1m, 5m) */
  readonly authFailures?: AuthFailureLimit;
  /** most XML elements in one request body (default 100,000) */
  readonly maxElements?: number;
}

export interface AuthFailureLimit {
  readonly max: number;
  readonly window: number;
  readonly block: number;
}

export interface ParentConfig {
  readonly url: string;
  readonly token: string;
  /** milliseconds between exchanges in `run` (default 5m) */
  readonly interval: number;
  /** milliseconds per HTTP request (default 10m: one full batch each way at 1 kbps) */
  readonly timeout: number;
  /** attempts per request, first one included (default 5) */
  readonly maxTries: number;
  readonly compression: Compression;
  readonly batch: { readonly records: number; readonly bytes: number };
  /** PEM file of the parent's certificate or CA to trust (self-signed sites) */
  readonly ca?: string;
}

/** The admin endpoints (agent/admin/): status.json, the status page, /health. */
export interface AdminConfig {
  /** where they are served when set (a node without `listen` needs it); otherwise on `listen` */
  readonly listen?: { readonly host: string; readonly port: number };
  /** the bearer token of status.json and the status page; without it those are not served (404) */
  readonly token?: string;
  readonly alerts: {
    /** milliseconds without a successful exchange before a node is shown silent (default 1 day) */
    readonly silentAfter: number;
  };
}

export interface Config {
  /** absolute path of the file this was read from */
  readonly file: string;
  readonly node: { readonly id: string };
  readonly database: DatabaseConfig;
  readonly tables: TableFilter & {
    /** identity overrides: table → key columns */
    readonly keys: Readonly<Record<string, readonly string[]>>;
    /** one-way tables: table → direction (tables not named sync both ways) */
    readonly direction: Readonly<Record<string, Direction>>;
  };
  readonly listen?: ListenConfig;
  readonly children: readonly ChildConfig[];
  readonly parent?: ParentConfig;
  readonly capture: {
    /** bytes of decoded binlog rows held before capture pauses to drain (default 32 MiB) */
    readonly memoryBytes: number;
  };
  /** the loader always sets it; absent in hand-built configs, where its defaults hold */
  readonly clock?: {
    /** milliseconds a received stamp may be ahead of this node's clock before its change set is held (default 1 day) */
    readonly maxDrift: number;
  };
  /** the loader always sets it; absent in hand-built configs (no admin endpoints but /health) */
  readonly admin?: AdminConfig;
  readonly log: {
    readonly level: 'debug' | 'info' | 'warn' | 'error';
    /** JSON lines, readable text, or auto: text on a terminal (default auto; SPOKESYNC_LOG_FORMAT overrides) */
    readonly format?: 'auto' | 'text' | 'json';
  };
}
