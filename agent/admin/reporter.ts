// A node's status reporting, as the exchange sees it: it records every round
// (both roles, over the network or by USB file), makes the report a child's
// last batch of an exchange (or its file) carries up (its own, then the latest
// of every node below it), keeps what its children report, and builds
// status.json from all of that.
import type { Db } from '../../apply/core/db.js';
import type { Logger } from '../../apply/core/log.js';
import type { ClientObserver } from '../exchange/client.js';
import type { ServerObserver } from '../exchange/http-server.js';
import type { Origins } from '../exchange/origins.js';
import type { RoundRecord } from '../exchange/protocol.js';
import type { UsbReporting } from '../usb/transfer.js';
import { getCursor, recordContact } from '../routing/cursors.js';
import { recordRound, roundsWith } from './history.js';
import { storeReports, storedReports, type Arrival, type StoredReport } from './report-store.js';
import { MAX_REPORT_CHARS, RELAYED_HISTORY, decodeReport, encodeReport, type ReportEntry } from './report-wire.js';
import { OwnReport, type ReportSource } from './report.js';
import { statusDoc, type StatusDoc } from './status-doc.js';
import { isoOf } from './time.js';

/** silent this long without a successful exchange: an alert, unless admin.alerts.silentAfter says otherwise */
export const DEFAULT_SILENT_AFTER_MS = 86_400_000;
/** exchanges of a node shown in status.json */
const SHOWN_HISTORY = 50;
/** a child whose reports cannot be read is logged at most this often */
const BAD_REPORT_LOG_MS = 3_600_000;

export interface ReporterOptions {
  readonly source: ReportSource;
  readonly db: Db;
  readonly origins: Origins;
  readonly log: Logger;
  readonly now?: () => number;
  /** told of every round as it ends (the metrics) */
  readonly onRound?: (r: RoundRecord) => void;
}

/** A round as it ends: a child's report in it, and whether the report's time tells the child's clock (not in a USB file). */
type Round = RoundRecord & { readonly report?: string; readonly clockKnown?: boolean };

export class StatusReporter implements ClientObserver, ServerObserver, UsbReporting {
  private readonly own: OwnReport;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly badLogged = new Map<string, number>();

  constructor(private readonly o: ReporterOptions) {
    this.now = o.now ?? Date.now;
    this.own = new OwnReport(o.source, this.now);
    this.log = o.log.child({ part: 'report' });
  }

  private get stateSchema(): string {
    return this.o.source.config.database.stateSchema;
  }

  /** The report header for the parent, stamped at each attempt; trimmed to fit, which is logged once. */
  async report(inFlight: number): Promise<(now: Date) => string> {
    const [own, ...below] = await this.entries(inFlight);
    let logged = false;
    return (now) => {
      const entries = [{ report: { ...own!.report, at: now.toISOString() } }, ...below];
      const enc = encodeReport(entries);
      if ((enc.dropped > 0 || enc.historyCut) && !logged) {
        logged = true;
        this.log.warn('status report trimmed to fit one request header', { nodes: entries.length, dropped: enc.dropped, historyCut: enc.historyCut });
      }
      return enc.value;
    };
  }

  /** The report a USB file to the parent carries, trimmed to `max` characters as a header is (logged); null when not even this node's fits. */
  async fileReport(inFlight: number, max: number): Promise<{ value: string; nodes: number } | null> {
    const entries = await this.entries(inFlight);
    const enc = encodeReport(entries, Math.min(max, MAX_REPORT_CHARS));
    if (enc.value.length > max) {
      this.log.warn('status report left out of the USB file: the discard reports it carries leave no room', { room: max });
      return null;
    }
    if (enc.dropped > 0 || enc.historyCut) this.log.warn('status report trimmed to fit the USB file', { nodes: entries.length, dropped: enc.dropped, historyCut: enc.historyCut });
    return { value: enc.value, nodes: entries.length - enc.dropped };
  }

  /** This node's own report first, then every node below it with what its parent saw of it. */
  async entries(inFlight = 0): Promise<ReportEntry[]> {
    const { db } = this.o;
    const ss = this.stateSchema;
    const out: ReportEntry[] = [{ report: await this.own.make(inFlight) }];
    for (const s of await this.stored()) {
      if (s.via === s.node) {
        // a child of this node: its parent's view is ours
        const cur = await getCursor(db, ss, s.node);
        out.push({ report: s.report, seenAt: isoOf(cur.lastSuccess), clockOffsetMs: s.clockOffsetMs, history: await roundsWith(db, ss, s.node, RELAYED_HISTORY) });
      } else {
        out.push({ report: s.report, seenAt: s.seenAt, clockOffsetMs: s.clockOffsetMs, history: s.history });
      }
    }
    return out;
  }

  /** A round ended (either role, the network's or a USB file's): recorded; a child's report in it is kept. */
  async round(r: Round): Promise<void> {
    this.o.onRound?.(r);
    await recordRound(this.o.db, this.stateSchema, r);
    if (r.report !== undefined) await this.take(r.peer, r.report, { receivedAt: r.startedAt, ok: r.result === 'ok', clockKnown: r.clockKnown !== false });
  }

  /** A child's report: read, checked, kept; a report that cannot be read is logged (at most hourly per child) and dropped. */
  private async take(child: string, value: string, at: Arrival): Promise<void> {
    let decoded;
    try {
      decoded = decodeReport(value);
    } catch (e) {
      const last = this.badLogged.get(child) ?? -Infinity;
      if (this.now() - last >= BAD_REPORT_LOG_MS) {
        this.badLogged.set(child, this.now());
        this.log.warn('status report dropped: it cannot be read', { child, error: (e as Error).message });
      }
      return;
    }
    if (decoded.bad.length > 0) this.log.warn('status report entries dropped: not in the report format', { child, bad: decoded.bad });
    const { config } = this.o.source;
    await storeReports({ db: this.o.db, stateSchema: this.stateSchema, origins: this.o.origins, log: this.log }, child, config.node.id, decoded.entries, at);
  }

  /** A wrong token from a node that says it is `claimed`: the child's last attempt and its history say so. */
  async refusedToken(claimed: string | null, address: string): Promise<void> {
    if (claimed === null) return;
    const result = `SPOKESYNC_E_AUTH: a wrong token came from ${address}: check children[].token for '${claimed}' here and parent.token at '${claimed}'`;
    const at = new Date(this.now());
    await recordContact(this.o.db, this.stateSchema, claimed, result, at);
    await recordRound(this.o.db, this.stateSchema, { peer: claimed, role: 'child', startedAt: at, durationMs: 0, bytesUp: 0, bytesDown: 0, setsUp: 0, setsDown: 0, result });
  }

  /** The reports kept of nodes below a configured child (a child taken out of the config takes its branch with it). */
  private async stored(): Promise<StoredReport[]> {
    const children = new Set(this.o.source.config.children.map((c) => c.id));
    return (await storedReports(this.o.db, this.stateSchema)).filter((s) => children.has(s.via));
  }

  /** status.json: this node and every node below it. */
  async status(): Promise<StatusDoc> {
    const { db, source } = this.o;
    const ss = this.stateSchema;
    const self = await this.own.make();
    const parentCur = self.parent === null ? null : await getCursor(db, ss, self.parent);
    const children = [];
    for (const c of source.config.children) {
      const cur = await getCursor(db, ss, c.id);
      children.push({
        id: c.id, lastSuccess: isoOf(cur.lastSuccess), lastAttempt: isoOf(cur.lastContact), lastResult: cur.lastResult,
        history: await roundsWith(db, ss, c.id, SHOWN_HISTORY),
      });
    }
    return statusDoc({
      self,
      selfHistory: self.parent === null ? [] : await roundsWith(db, ss, self.parent, SHOWN_HISTORY),
      selfLastAttempt: isoOf(parentCur?.lastContact),
      selfLastResult: parentCur?.lastResult ?? null,
      children,
      stored: await this.stored(),
      nowMs: this.now(),
      silentAfterMs: source.config.admin?.alerts.silentAfter ?? DEFAULT_SILENT_AFTER_MS,
    });
  }
}
