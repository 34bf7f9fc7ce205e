// Which origins a peer may speak for: trust follows the tree. A child stands for
// itself and the nodes below it, the parent for everything else, and no peer
// for this node. Each origin belongs to the one peer it is reached through, kept
// in the state table `origins`: a configured child and the parent own their own
// ids up front; any other origin is registered to the peer that first brings it;
// a change set of an origin that belongs to another peer, or of this node, is
// refused with the whole batch.
import type { BatchEntry } from '../../apply/core/model.js';
import { checkChangeId } from '../../apply/replay/validate.js';
import type { Queryable } from '../../apply/core/db.js';
import { SpokesyncError } from '../../apply/core/errors.js';
import { PARENT_ID_KEY, getMeta } from '../routing/cursors.js';
import { stateTable } from '../../apply/core/state-schema.js';

export interface OriginsOptions {
  readonly db: Queryable;
  readonly stateSchema: string;
  /** this node's id */
  readonly node: string;
  /** the configured children's ids */
  readonly children: readonly string[];
}

const quote = (s: string): string => JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s);

export class Origins {
  private readonly children: ReadonlySet<string>;
  constructor(private readonly o: OriginsOptions) {
    this.children = new Set(o.children);
  }

  /**
   * Checks that `peer` may bring every change set of the batch (ids included)
   * and registers the origins it is the first to bring. Throws
   * SPOKESYNC_E_CHANGE_ID or SPOKESYNC_E_ORIGIN, registering nothing, when not.
   */
  async admit(peer: string, entries: readonly BatchEntry[]): Promise<void> {
    const origins = await this.check(peer, entries);
    if (origins.length === 0) return;
    const table = stateTable(this.o.stateSchema, 'origins');
    await this.o.db.exec(
      `INSERT IGNORE INTO ${table} (origin, peer, since) VALUES ${origins.map(() => '(?, ?, UTC_TIMESTAMP(6))').join(', ')}`,
      origins.flatMap((origin) => [origin, peer]),
    );
    // another peer may have registered one of them at the same moment
    const owners = await this.owners(origins);
    for (const origin of origins) this.refuseOther(peer, origin, owners.get(origin));
  }

  /** The check alone, nothing registered (a USB file is checked whole before any of it applies). Returns the origins new here. */
  async check(peer: string, entries: readonly BatchEntry[]): Promise<string[]> {
    const seen = new Set<string>();
    for (const e of entries) {
      checkChangeId(e.cs);
      seen.add(e.cs.origin);
    }
    if (seen.size === 0) return [];
    const parent = await getMeta(this.o.db, this.o.stateSchema, PARENT_ID_KEY);
    const learned = await this.owners([...seen]);
    const fresh: string[] = [];
    for (const origin of seen) {
      if (origin === this.o.node) {
        throw new SpokesyncError('SPOKESYNC_E_ORIGIN',
          `'${peer}' sent a change set of origin ${quote(origin)}, which is this node: no peer speaks for it; nothing of the batch was applied`);
      }
      const owner = this.children.has(origin) ? origin : origin === parent ? parent : learned.get(origin);
      if (owner === undefined) fresh.push(origin);
      else this.refuseOther(peer, origin, owner);
    }
    return fresh;
  }

  /**
   * Which of `nodes` `peer` may report on (status reports, agent/admin/report-store.ts), by the rule for
   * change sets: itself, or a node below it; never this node, the parent, another child, or a node that
   * belongs to another peer here. Nodes new here are registered to `peer`, as their change sets would be.
   */
  async claim(peer: string, nodes: readonly string[]): Promise<{ accepted: string[]; refused: Array<{ node: string; why: string }> }> {
    const accepted: string[] = [];
    const refused: Array<{ node: string; why: string }> = [];
    const parent = await getMeta(this.o.db, this.o.stateSchema, PARENT_ID_KEY);
    const learned = await this.owners(nodes);
    const fresh: string[] = [];
    for (const node of nodes) {
      const owner = node === this.o.node ? this.o.node : this.children.has(node) ? node : node === parent ? parent : learned.get(node);
      if (owner === undefined) fresh.push(node);
      else if (owner === peer) accepted.push(node);
      else refused.push({ node, why: owner === this.o.node ? 'it is this node' : owner === parent ? 'it is the parent' : `it belongs to '${owner}' here` });
    }
    if (fresh.length > 0) {
      await this.o.db.exec(
        `INSERT IGNORE INTO ${stateTable(this.o.stateSchema, 'origins')} (origin, peer, since) VALUES ${fresh.map(() => '(?, ?, UTC_TIMESTAMP(6))').join(', ')}`,
        fresh.flatMap((origin) => [origin, peer]),
      );
      // another peer may have registered one of them at the same moment
      const owners = await this.owners(fresh);
      for (const node of fresh) {
        if (owners.get(node) === peer) accepted.push(node);
        else refused.push({ node, why: `it belongs to '${owners.get(node) ?? '?'}' here` });
      }
    }
    return { accepted, refused };
  }

  private refuseOther(peer: string, origin: string, owner: string | undefined): void {
    if (owner === undefined || owner === peer) return;
    throw new SpokesyncError('SPOKESYNC_E_ORIGIN',
      `'${peer}' sent a change set of origin ${quote(origin)}, which belongs to '${owner}' here (it is reached through '${owner}'); nothing of the batch was applied`);
  }

  private async owners(origins: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < origins.length; i += 500) {
      const part = origins.slice(i, i + 500);
      const rows = await this.o.db.query<{ origin: string; peer: string }>(
        `SELECT origin, peer FROM ${stateTable(this.o.stateSchema, 'origins')} WHERE origin IN (${part.map(() => '?').join(', ')})`, part);
      for (const r of rows) out.set(r.origin, r.peer);
    }
    return out;
  }
}
