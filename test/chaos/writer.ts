// The application on one node: registrations, visits, encounters, obs-like
// rows, edits of rows that several sites edit at once, settings and deletes,
// one transaction at a time on its own connection, through database crashes.
// Every transaction and its outcome goes into the Tracker.
import mysql from 'mysql2/promise';
import type { Rng } from './rng.js';
import { sleep } from './rng.js';
import { HOT, SCHEMA, seedSetting, seedUuid } from './schema.js';
import type { Outcome, Tracker, Txn } from './tracker.js';

type Pooled = Array<{ pool: keyof Tracker['pools'] | 'scratch'; id: string }>;
type Q = (sql: string, params?: unknown[]) => Promise<unknown>;
interface Ok { insertId: number; affectedRows: number }
type Op = (q: Q, t: Txn) => Promise<Pooled>;

export interface WriterOptions {
  readonly node: string;
  /** 1-based index of the node, part of every value it writes */
  readonly index: number;
  readonly port: () => number;
  readonly tracker: Tracker;
  readonly rng: Rng;
  /** mean pause between transactions */
  readonly paceMs: number;
}

export class Writer {
  private conn: mysql.Connection | null = null;
  private stopped = false;
  private done: Promise<void> | null = null;
  private counter = 0;
  constructor(private readonly o: WriterOptions) {}

  start(): void {
    this.done ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    this.conn?.destroy();
    this.conn = null;
  }

  private async loop(): Promise<void> {
    const { rng } = this.o;
    for (let n = 0; n < 10_000_000 && !this.stopped; n++) {
      const c = await this.connection();
      if (c) await this.transaction(c, ...this.choose());
      await sleep(this.o.paceMs * (0.5 + rng.next()));
    }
  }

  private async connection(): Promise<mysql.Connection | null> {
    if (this.conn) return this.conn;
    let c: mysql.Connection | undefined;
    try {
      c = await mysql.createConnection({
        host: '127.0.0.1', port: this.o.port(), user: 'root', database: SCHEMA, connectTimeout: 3000,
      });
      const conn = c;
      conn.on('error', () => { if (this.conn === conn) this.conn = null; });
      // a writer waits at most a few seconds on a lock, so stopping it is quick
      await conn.query('SET SESSION innodb_lock_wait_timeout = 5');
      this.conn = conn;
      return conn;
    } catch {
      c?.destroy();
      return null;
    }
  }

  private async transaction(c: mysql.Connection, kind: string, op: Op): Promise<void> {
    const { tracker } = this.o;
    const t = tracker.begin(this.o.node, kind);
    const q: Q = async (sql, params) => (await c.query(sql, params))[0];
    let pooled: Pooled;
    let outcome: Outcome;
    try {
      await q('START TRANSACTION');
      pooled = await op(q, t);
    } catch {
      // rolled back: by us, or by the server when the connection or the server died
      await c.query('ROLLBACK').catch(() => this.drop(c));
      tracker.end(t, 'failed');
      return;
    }
    try {
      await q('COMMIT');
      outcome = 'committed';
    } catch {
      outcome = 'unknown';
      this.drop(c);
    }
    tracker.end(t, outcome, pooled);
  }

  private drop(c: mysql.Connection): void {
    c.destroy();
    if (this.conn === c) this.conn = null;
  }

  private value(): string {
    return `${this.o.node}-${++this.counter}`;
  }

  /** A DECIMAL(10,2) no other write uses. */
  private number(): string {
    return `${this.o.index * 1_000_000 + (++this.counter % 1_000_000)}.00`;
  }

  private choose(): [string, Op] {
    const { rng } = this.o;
    const ops: Array<[number, string, Op]> = [
      [25, 'register', (q, t) => this.register(q, t)],
      [12, 'visit', (q, t) => this.visit(q, t)],
      [12, 'encounter', (q, t) => this.encounter(q, t)],
      [14, 'obs', (q, t) => this.obs(q, t)],
      [14, 'edit-person', (q, t) => this.edit(q, t, 'person', 'name', () => this.value())],
      [6, 'edit-visit', (q, t) => this.edit(q, t, 'visit', 'note', () => this.value())],
      [7, 'edit-obs', (q, t) => this.edit(q, t, 'obs', 'value_numeric', () => this.number())],
      [5, 'setting', (q, t) => this.setting(q, t)],
      [5, 'delete', (q, t) => this.deleteScratch(q, t)],
    ];
    let r = rng.next() * ops.reduce((s, [w]) => s + w, 0);
    for (const [w, kind, op] of ops) {
      if ((r -= w) < 0) return [kind, op];
    }
    const last = ops[ops.length - 1]!;
    return [last[1], last[2]];
  }

  /** A committed row from any node (a seed row when this node does not have it yet), local ids resolved. */
  private async pick<T>(q: Q, pool: readonly string[], seedKind: string, sql: string): Promise<{ id: string; row: T }> {
    const { rng } = this.o;
    if (pool.length > 0 && rng.chance(0.7)) {
      const id = rng.pick(pool);
      const [row] = (await q(sql, [id])) as T[];
      if (row) return { id, row };
    }
    const id = seedUuid(seedKind, rng.int(1, HOT));
    const [row] = (await q(sql, [id])) as T[];
    if (!row) throw new Error(`seed row ${id} missing`);
    return { id, row };
  }

  private async addObs(q: Q, t: Txn, encounterId: number, personId: number, n: number): Promise<Pooled> {
    const { tracker, rng } = this.o;
    const pooled: Pooled = [];
    for (let i = 0; i < n; i++) {
      const id = rng.uuid();
      const scratch = rng.chance(0.3);
      const v = this.number();
      await q('INSERT INTO obs (uuid, encounter_id, person_id, concept, value_numeric, value_text) VALUES (?, ?, ?, ?, ?, ?)',
        [id, encounterId, personId, scratch ? 'scratch' : 'weight', v, rng.chance(0.3) ? `note ${this.value()}` : null]);
      t.inserts.push({ table: 'obs', id });
      tracker.write(t, 'obs', id, v, true);
      pooled.push({ pool: scratch ? 'scratch' : 'obs', id });
    }
    return pooled;
  }

  private async addEncounter(q: Q, t: Txn, visitId: number, patientId: number): Promise<Pooled> {
    const id = this.o.rng.uuid();
    const r = (await q("INSERT INTO encounter (uuid, visit_id, patient_id, kind, at) VALUES (?, ?, ?, 'consult', NOW(6))",
      [id, visitId, patientId])) as Ok;
    t.inserts.push({ table: 'encounter', id });
    return [{ pool: 'encounter', id }, ...(await this.addObs(q, t, r.insertId, patientId, this.o.rng.int(1, 3)))];
  }

  private async addVisit(q: Q, t: Txn, patientId: number): Promise<Pooled> {
    const id = this.o.rng.uuid();
    const note = this.value();
    const r = (await q('INSERT INTO visit (uuid, patient_id, started, note) VALUES (?, ?, NOW(6), ?)', [id, patientId, note])) as Ok;
    t.inserts.push({ table: 'visit', id });
    this.o.tracker.write(t, 'visit', id, note, true);
    return [{ pool: 'visit', id }, ...(await this.addEncounter(q, t, r.insertId, patientId))];
  }

  private async register(q: Q, t: Txn): Promise<Pooled> {
    const { rng, tracker } = this.o;
    const id = rng.uuid();
    const name = this.value();
    const r = (await q('INSERT INTO person (uuid, name, gender, birthdate) VALUES (?, ?, ?, ?)',
      [id, name, rng.pick(['F', 'M']), `19${rng.int(40, 99)}-0${rng.int(1, 9)}-1${rng.int(0, 9)}`])) as Ok;
    await q('INSERT INTO patient (patient_id, identifier, allergy) VALUES (?, ?, ?)',
      [r.insertId, `${this.o.node.toUpperCase()}-${this.counter}`, rng.chance(0.2) ? 'penicillin' : null]);
    t.inserts.push({ table: 'person', id }, { table: 'patient', id });
    tracker.write(t, 'person', id, name, true);
    return [{ pool: 'person', id }, ...(await this.addVisit(q, t, r.insertId))];
  }

  private async visit(q: Q, t: Txn): Promise<Pooled> {
    const p = await this.pick<{ person_id: number }>(q, this.o.tracker.pools.person, 'person',
      'SELECT p.person_id FROM person p JOIN patient pt ON pt.patient_id = p.person_id WHERE p.uuid = ?');
    return this.addVisit(q, t, p.row.person_id);
  }

  private async encounter(q: Q, t: Txn): Promise<Pooled> {
    const v = await this.pick<{ visit_id: number; patient_id: number }>(q, this.o.tracker.pools.visit, 'visit',
      'SELECT visit_id, patient_id FROM visit WHERE uuid = ?');
    return this.addEncounter(q, t, v.row.visit_id, v.row.patient_id);
  }

  private async obs(q: Q, t: Txn): Promise<Pooled> {
    const e = await this.pick<{ encounter_id: number; patient_id: number }>(q, this.o.tracker.pools.encounter, 'encounter',
      'SELECT encounter_id, patient_id FROM encounter WHERE uuid = ?');
    return this.addObs(q, t, e.row.encounter_id, e.row.patient_id, this.o.rng.int(1, 3));
  }

  /** Edits a seed row (edited everywhere at once) or a committed row from any node. */
  private async edit(q: Q, t: Txn, table: 'person' | 'visit' | 'obs', column: string, value: () => string): Promise<Pooled> {
    const { rng, tracker } = this.o;
    const pool = tracker.pools[table];
    const id = pool.length > 0 && rng.chance(0.5) ? rng.pick(pool) : seedUuid(table, rng.int(1, HOT));
    const v = value();
    const r = (await q(`UPDATE ${table} SET ${column} = ? WHERE uuid = ?`, [v, id])) as Ok;
    if (r.affectedRows > 0) tracker.write(t, table, id, v);
    return [];
  }

  private async setting(q: Q, t: Txn): Promise<Pooled> {
    const { rng, tracker } = this.o;
    const fresh = rng.chance(0.2);
    const id = fresh ? `chaos.${this.value()}` : rng.chance(0.5) && tracker.pools.setting.length > 0
      ? rng.pick(tracker.pools.setting) : seedSetting(rng.int(1, HOT));
    const v = this.value();
    await q('INSERT INTO setting (property, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)', [id, v]);
    if (fresh) t.inserts.push({ table: 'setting', id });
    tracker.write(t, 'setting', id, v, fresh);
    return fresh ? [{ pool: 'setting', id }] : [];
  }

  private async deleteScratch(q: Q, t: Txn): Promise<Pooled> {
    const own = this.o.tracker.scratch.get(this.o.node) ?? [];
    if (own.length === 0) return this.obs(q, t);
    const id = this.o.rng.pick(own);
    const r = (await q('DELETE FROM obs WHERE uuid = ?', [id])) as Ok;
    if (r.affectedRows > 0) t.deletes.push({ table: 'obs', id });
    return [];
  }
}
