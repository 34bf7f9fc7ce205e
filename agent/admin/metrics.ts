// GET /metrics: this node in the Prometheus text format (prom-client), on a
// registry of its own (several nodes may share a process). Gauges are read at
// each scrape from what status.json shows (its own report, its peers' cursors,
// the alerts of every node below it); counters and histograms count what this
// process saw since it started (Prometheus takes a restart's reset in its stride).
import client from 'prom-client';
import type { Queryable } from '../../apply/core/db.js';
import type { Config } from '../config/types.js';
import type { RoundRecord } from '../exchange/protocol.js';
import type { JournalReader } from '../journal/reader.js';
import { getCursor } from '../routing/cursors.js';
import { routeTo } from '../routing/filters.js';
import type { StatusDoc } from './status-doc.js';
import { isoOf } from './time.js';

export const METRICS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;

export interface MetricsSource {
  readonly config: Config;
  readonly db: Queryable;
  readonly reader: JournalReader;
  /** status.json's document */
  status(): Promise<StatusDoc>;
  /** change sets capture journaled since this process started */
  captured(): number;
}

const BYTE_BUCKETS = client.exponentialBuckets(256, 4, 10);
const SECOND_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** A round's direction as this node sees it: a child sends up, a parent sends down. */
export function roundFlow(r: RoundRecord): { sets: { sent: number; received: number }; bytes: { sent: number; received: number } } {
  const toParent = r.role === 'parent';
  return {
    sets: { sent: toParent ? r.setsUp : r.setsDown, received: toParent ? r.setsDown : r.setsUp },
    bytes: { sent: toParent ? r.bytesUp : r.bytesDown, received: toParent ? r.bytesDown : r.bytesUp },
  };
}

export class NodeMetrics {
  readonly registry = new client.Registry();
  private readonly g: Record<'lagSeconds' | 'lagBytes' | 'running' | 'quarantined' | 'held' | 'conflicts' | 'unreviewed' | 'stateBytes', client.Gauge>;
  private readonly pending: client.Gauge<'peer'>;
  private readonly lastSuccess: client.Gauge<'peer'>;
  private readonly alerts: client.Gauge<'node' | 'kind' | 'severity'>;
  private readonly nodes: client.Gauge;
  private readonly captured: client.Counter;
  private capturedSeen = 0;
  private readonly applied: client.Counter<'peer'>;
  private readonly sent: client.Counter<'peer'>;
  private readonly received: client.Counter<'peer'>;
  private readonly rounds: client.Counter<'peer' | 'result'>;
  private readonly duration: client.Histogram<'peer' | 'result'>;
  private readonly bytes: client.Histogram<'peer' | 'direction'>;

  constructor(private readonly src: MetricsSource) {
    const registers = [this.registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Gauge<L> =>
      new client.Gauge({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Counter<L> =>
      new client.Counter({ name, help, labelNames, registers });
    this.g = {
      lagSeconds: gauge('spokesync_capture_lag_seconds', 'Seconds the oldest change capture holds has waited (0 when it holds none).'),
      lagBytes: gauge('spokesync_capture_lag_bytes', 'Binlog bytes capture still has to journal.'),
      running: gauge('spokesync_capture_running', '1 while capture runs, 0 when it is stopped.'),
      quarantined: gauge('spokesync_quarantined_changesets', 'Change sets in quarantine on this node.'),
      held: gauge('spokesync_held_changesets', 'Change sets held on this node because a table differs from a peer\'s.'),
      conflicts: gauge('spokesync_conflicts', 'Conflicts recorded on this node.'),
      unreviewed: gauge('spokesync_conflicts_unreviewed', 'Conflicts recorded on this node that nobody has reviewed yet (spokesync conflicts review).'),
      stateBytes: gauge('spokesync_state_schema_bytes', 'Disk the state schema takes (data and indexes).'),
    };
    this.pending = gauge('spokesync_pending_changesets', 'Change sets waiting to be sent to a peer (not yet acknowledged).', ['peer']);
    this.lastSuccess = gauge('spokesync_last_success_timestamp_seconds', 'Unix time of the last successful exchange with a peer.', ['peer']);
    this.alerts = gauge('spokesync_node_alerts', 'Alerts standing on a node of the tree below this one (status.json), by kind.', ['node', 'kind', 'severity']);
    this.nodes = gauge('spokesync_nodes', 'Nodes in the tree this node knows (itself and every node below it).');
    this.captured = counter('spokesync_changesets_captured_total', 'Change sets capture journaled since the process started (committed here, or applied from a peer and journaled to pass on).');
    this.applied = counter('spokesync_changesets_applied_total', 'Change sets from a peer applied here.', ['peer']);
    this.sent = counter('spokesync_changesets_sent_total', 'Change sets sent to a peer in exchange rounds.', ['peer']);
    this.received = counter('spokesync_changesets_received_total', 'Change sets received from a peer in exchange rounds.', ['peer']);
    this.rounds = counter('spokesync_exchanges_total', 'Exchange rounds with a peer, by result (ok or error).', ['peer', 'result']);
    this.duration = new client.Histogram({
      name: 'spokesync_exchange_duration_seconds', help: 'How long an exchange round with a peer took.', labelNames: ['peer', 'result'], buckets: SECOND_BUCKETS, registers,
    });
    this.bytes = new client.Histogram({
      name: 'spokesync_exchange_bytes', help: 'Bytes of one exchange round with a peer, sent or received.', labelNames: ['peer', 'direction'], buckets: BYTE_BUCKETS, registers,
    });
    client.collectDefaultMetrics({ register: this.registry });
  }

  /** An exchange round ended (either role). */
  round(r: RoundRecord): void {
    const flow = roundFlow(r);
    const result = r.result === 'ok' ? 'ok' : 'error';
    this.sent.inc({ peer: r.peer }, flow.sets.sent);
    this.received.inc({ peer: r.peer }, flow.sets.received);
    this.rounds.inc({ peer: r.peer, result });
    this.duration.observe({ peer: r.peer, result }, r.durationMs / 1000);
    this.bytes.observe({ peer: r.peer, direction: 'sent' }, flow.bytes.sent);
    this.bytes.observe({ peer: r.peer, direction: 'received' }, flow.bytes.received);
  }

  /** A batch from a peer was applied: `applied` of its change sets took effect here. */
  appliedFrom(peer: string, applied: number): void {
    if (applied > 0) this.applied.inc({ peer }, applied);
  }

  /** The text format, with the gauges read now. */
  async scrape(): Promise<string> {
    const { config, db, reader } = this.src;
    const ss = config.database.stateSchema;
    const doc = await this.src.status();
    const self = doc.nodes.find((n) => n.self)?.report;
    if (self) {
      this.g.lagSeconds.set(self.capture.lagSeconds ?? 0);
      this.g.lagBytes.set(self.capture.behindBytes ?? 0);
      this.g.running.set(self.capture.running ? 1 : 0);
      this.g.quarantined.set(self.quarantined);
      this.g.held.set(self.held.count);
      this.g.conflicts.set(self.conflicts);
      this.g.unreviewed.set(self.conflictsUnreviewed ?? 0);
      if (self.stateBytes !== null) this.g.stateBytes.set(self.stateBytes);
    }
    const captured = this.src.captured();
    // a counter only goes up: capture restarted in this process counts from its own zero again
    if (captured > this.capturedSeen) this.captured.inc(captured - this.capturedSeen);
    this.capturedSeen = captured;
    this.pending.reset();
    this.lastSuccess.reset();
    const peers: Array<[string, 'parent' | 'child']> = [...config.children.map((c): [string, 'child'] => [c.id, 'child'])];
    if (self?.parent) peers.unshift([self.parent, 'parent']);
    for (const [peer, role] of peers) {
      const cur = await getCursor(db, ss, peer);
      this.pending.set({ peer }, await reader.count(routeTo(config, peer, role), cur.ackedSeq));
      const last = isoOf(cur.lastSuccess);
      if (last !== null) this.lastSuccess.set({ peer }, Date.parse(last) / 1000);
    }
    this.alerts.reset();
    for (const n of doc.nodes) for (const a of n.alerts) this.alerts.inc({ node: n.id, kind: a.kind, severity: a.severity });
    this.nodes.set(doc.nodes.length);
    return this.registry.metrics();
  }
}
