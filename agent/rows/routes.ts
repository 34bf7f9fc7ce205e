// The row routes of a node's filtered children, made once per catalogue (a DDL
// reloads it), over a pool of their own whose sessions have the application
// schema as default schema (operators name tables without their schema).
import type { Catalog } from '../../apply/core/catalog.js';
import { openDb, type Db, type DbSettings } from '../../apply/core/db.js';
import type { ChildConfig, Config } from '../config/types.js';
import { childFilters } from './child.js';
import { childTables } from '../config/tables.js';
import type { Logger } from '../../apply/core/log.js';
import { Membership } from './membership.js';
import { RowRoute } from './routed.js';

export class RowRoutes {
  private pool: Db | null = null;
  private readonly made = new Map<string, { catalog: Catalog; route: RowRoute }>();

  constructor(
    private readonly config: Config,
    private readonly settings: DbSettings,
    /** the state schema's database */
    private readonly db: Db,
    private readonly catalog: () => Catalog,
    private readonly opts: { readonly scanEveryMs?: number | undefined; readonly log?: Logger } = {},
  ) {}

  /** The pool whose sessions work in the application schema. */
  appDb(): Db {
    this.pool ??= openDb({ ...this.settings, schema: this.config.database.schema }, { connectionLimit: 2 });
    return this.pool;
  }

  /** The row route toward a child, or undefined for a child without row filters. */
  for(child: ChildConfig | undefined): RowRoute | undefined {
    if (!child?.rows) return undefined;
    const catalog = this.catalog();
    const had = this.made.get(child.id);
    if (had && had.catalog === catalog) return had.route;
    const membership = new Membership(this.appDb(), catalog, childFilters(this.config, child, catalog)!);
    const route = new RowRoute({
      db: this.db, stateSchema: this.config.database.stateSchema, node: this.config.node.id, peer: child.id, membership, app: this.appDb(),
      tables: new Set(childTables(this.config, child.id, catalog)), leaving: child.rowsLeaving ?? 'keep',
      ...(this.opts.scanEveryMs === undefined ? {} : { scanEveryMs: this.opts.scanEveryMs }), ...(this.opts.log ? { log: this.opts.log } : {}),
    });
    this.made.set(child.id, { catalog, route });
    return route;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }
}
