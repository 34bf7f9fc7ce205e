// Which ops of a batch of change sets go to one child with row filters,
// asked of the parent's own server: each op becomes questions about rows
// (graph.ts, membership-sql.ts), the questions of the whole batch are grouped
// by table and asked once per table (500 identities a statement), and each op
// goes when one of its alternatives is all yes.
//
// - An op on a shared table goes.
// - An op on an owner table goes when its row, as it is now, matches or is
//   named by a row that goes ('in').
// - An insert into a follower table goes when every owner row its edges name
//   (in the insert's own values) matches, or when a row that goes names it; a
//   delete by the references the deleted row held (journaled with it by
//   capture); an update by the row as it is now. A row that names no owner
//   goes everywhere.
// A row that is gone from the parent by then, or a delete whose references
// were not journaled, answers no: nothing is sent that cannot be shown to
// belong.
import type { Catalog } from '../../apply/core/catalog.js';
import type { Queryable } from '../../apply/core/db.js';
import { isRef, type Op, type Ref, type Value } from '../../apply/core/model.js';
import { questionSql, type Ask, type Filters } from './membership-sql.js';

/** An op, and for a delete the references the deleted row held (column → referenced row). */
export interface OpFacts {
  readonly op: Op;
  readonly oldRefs?: Readonly<Record<string, Ref>> | undefined;
}

interface Question {
  readonly table: string;
  readonly id: string;
  readonly ask: Ask;
}

/** The op goes when every question of one alternative is answered yes (no alternative: never; `true`: always). */
type Plan = true | Question[][];

const CHUNK = 500;

const keyOf = (q: Question): string => `${q.ask}\u0000${q.table}\u0000${q.id}`;

export class Membership {
  constructor(private readonly db: Queryable, readonly catalog: Catalog, readonly filters: Filters) {}

  /** The same questions under other filters (adjusted: membership-sql.ts). */
  withFilters(filters: Filters): Membership {
    return new Membership(this.db, this.catalog, filters);
  }

  /** What must hold for the op to go. */
  plan(f: OpFacts): Plan {
    const { op } = f;
    const g = this.filters.graph;
    const role = g.role(op.table);
    if (role === 'shared') return true;
    if (role === 'owner' || op.kind === 'update') return [[{ table: op.table, id: op.id, ask: 'in' }]];
    const values: Readonly<Record<string, Value | undefined>> = op.kind === 'insert' ? op.row : f.oldRefs ?? {};
    if (op.kind === 'delete' && f.oldRefs === undefined) return [];
    const owners: Question[] = [];
    const rule = this.catalog.tables.get(op.table)?.identity;
    for (const e of g.edges(op.table)) {
      // a shared primary key does not travel: the row's identity is the referenced row's (patient → person)
      const v = rule?.kind === 'shared' && rule.column === e.column ? { ref: rule.refTable, id: op.id } : values[e.column];
      // a NULL edge names no owner
      if (v === undefined || v === null || !isRef(v)) continue;
      owners.push({ table: e.refTable, id: v.id, ask: 'match' });
    }
    // a row that names no owner belongs to no one: it goes everywhere
    if (owners.length === 0) return true;
    const alternatives: Question[][] = [owners];
    if (op.kind === 'insert' && g.referencedBy(op.table).length > 0) alternatives.push([{ table: op.table, id: op.id, ask: 'ref' }]);
    return alternatives;
  }

  /** For each op, whether it goes to the child: first by what it matches, then, for those that do not, by what names them. */
  async decide(ops: readonly OpFacts[]): Promise<boolean[]> {
    const plans = ops.map((f) => this.plan(f));
    const yes = new Set<string>();
    const goes = (p: Plan): boolean => p === true || p.some((alt) => alt.every((q) => yes.has(keyOf(q))));
    await this.ask(plans.flatMap((p) => (p === true ? [] : p.flat().filter((q) => q.ask !== 'ref'))), yes);
    await this.ask(plans.flatMap((p) => (p === true || goes(p) ? [] : p.flat().filter((q) => q.ask === 'ref'))), yes);
    return plans.map(goes);
  }

  /** Asks the questions, one statement per table and kind (and per CHUNK identities); adds the yeses. */
  private async ask(questions: readonly Question[], yes: Set<string>): Promise<void> {
    const wanted = new Map<string, Map<string, Question>>();
    for (const q of questions) {
      const group = `${q.ask}\u0000${q.table}`;
      let m = wanted.get(group);
      if (!m) wanted.set(group, (m = new Map()));
      m.set(q.id, q);
    }
    for (const m of wanted.values()) {
      const qs = [...m.values()];
      const { table, ask } = qs[0]!;
      for (let i = 0; i < qs.length; i += CHUNK) {
        const part = qs.slice(i, i + CHUNK);
        const rows = await this.db.query<{ k: string | null }>(
          questionSql(this.filters, this.catalog, table, ask, part.length), part.map((q) => q.id));
        for (const r of rows) if (r.k !== null) yes.add(keyOf({ table, ask, id: String(r.k) }));
      }
    }
  }
}
