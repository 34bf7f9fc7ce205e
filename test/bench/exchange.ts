// Exchange benchmark on the OpenMRS schema, with real capture, apply and HTTP:
// (a) bytes on the wire per patient registration (person, person_name,
//     person_address, person_attribute, patient, patient_identifier) for 200
//     registrations, gzip and brotli, against OpenMRS Sync 1.x (321 B, gzip)
//     and the target (≤ 130 B), and with the default config (target ≤ 110 B);
// (b) seconds to sync 200 registrations end to end through a 1 kbps link with
//     600 ms RTT and two drops (target ≤ 210 s), bounded in time; in batches of
//     100 and of 200.
import { randomUUID } from 'node:crypto';
import type { ParentConfig } from '../../agent/config/types.js';
import { parseConfig } from '../../agent/config/loader.js';
import { silentLogger } from '../../apply/core/log.js';
import { SpokesyncNode } from '../../agent/node.js';
import { BROTLI_CODINGS, compress, encodingFor } from '../../agent/exchange/compression.js';
import type { Caps, Outgoing } from '../../agent/journal/reader.js';
import { batchBuffer } from '../../agent/exchange/wire.js';
import { freePort, loadOpenmrs, startServer, type TestServer } from '../../deploy/sandbox/mariadb.js';
import { kbps, startProxy, type NetProxy } from '../helpers/net-proxy.js';

const N = 200;
const TABLES = ['person', 'person_name', 'person_address', 'person_attribute', 'patient', 'patient_identifier'];
const REFERENCE = 321;
const TARGET = 130;
/** bytes per registration on the wire with the default config: what the worst link pays */
const DEFAULT_TARGET = 110;
const SLOW_TARGET_S = 210;
const SLOW_DEADLINE_S = 420;
/** registrations per request on the slow link: 100 (about 85 s of link time each) and 200 (one request) */
const SLOW_BATCHES = [100, 200];

const GIVEN = ['Aline', 'Jean', 'Claudine', 'Eric', 'Diane', 'Patrick', 'Chantal', 'Emmanuel', 'Grace', 'Olivier'];
const FAMILY = ['Uwimana', 'Habimana', 'Mukamana', 'Niyonzima', 'Uwase', 'Nshimiyimana', 'Ingabire', 'Mugisha'];
const SECTORS = ['Rwinkwavu', 'Kabarondo', 'Rukara', 'Gahini', 'Murama', 'Kayonza'];

export async function register(server: TestServer, from: number, count: number): Promise<void> {
  const c = await server.connect('openmrs');
  try {
    for (let i = from; i < from + count; i++) {
      const when = `2026-03-${String(1 + (i % 28)).padStart(2, '0')} ${String(8 + (i % 9)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:17`;
      const given = GIVEN[i % GIVEN.length]!;
      const family = FAMILY[(i * 7) % FAMILY.length]!;
      await c.query(
        `START TRANSACTION;
         INSERT INTO person (gender, birthdate, birthdate_estimated, dead, creator, date_created, voided, uuid)
           VALUES (?, ?, 0, 0, 1, ?, 0, ?);
         SET @p = LAST_INSERT_ID();
         INSERT INTO person_name (preferred, person_id, given_name, family_name, creator, date_created, voided, uuid)
           VALUES (1, @p, ?, ?, 1, ?, 0, ?);
         INSERT INTO person_address (person_id, preferred, address1, city_village, state_province, country, creator, date_created, voided, uuid)
           VALUES (@p, 1, ?, ?, 'Eastern', 'Rwanda', 1, ?, 0, ?);
         INSERT INTO person_attribute (person_id, value, person_attribute_type_id, creator, date_created, voided, uuid)
           VALUES (@p, ?, 4, 1, ?, 0, ?);
         INSERT INTO patient (patient_id, creator, date_created, voided, allergy_status) VALUES (@p, 1, ?, 0, 'Unknown');
         INSERT INTO patient_identifier (patient_id, identifier, identifier_type, preferred, location_id, creator, date_created, voided, uuid)
           VALUES (@p, ?, 1, 1, 1, 1, ?, 0, ?);
         COMMIT;`,
        [
          i % 2 ? 'F' : 'M', `${1950 + (i % 60)}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`, when, randomUUID(),
          given, family, when, randomUUID(),
          `Cell ${1 + (i % 12)}`, SECTORS[i % SECTORS.length]!, when, randomUUID(),
          `${GIVEN[(i + 3) % GIVEN.length]!} ${FAMILY[(i + 1) % FAMILY.length]!}`, when, randomUUID(),
          when,
          `RW${String(100000 + i * 37).padStart(7, '0')}-${i % 10}`, when, randomUUID(),
        ],
      );
    }
  } finally {
    await c.end();
  }
}

interface Pair {
  readonly parentServer: TestServer;
  readonly childServer: TestServer;
  readonly parent: SpokesyncNode;
  child: SpokesyncNode;
  readonly proxy: NetProxy;
  openChild(p: Partial<ParentConfig>): Promise<void>;
  close(): Promise<void>;
}

async function pair(): Promise<Pair> {
  const [parentServer, childServer] = await Promise.all([startServer(), startServer()]);
  await Promise.all([loadOpenmrs(parentServer), loadOpenmrs(childServer)]);
  const base = (s: TestServer, id: string) => ({
    file: '/dev/null', node: { id },
    database: { host: s.host, port: s.port, user: 'root', schema: 'openmrs', stateSchema: 'spokesync', serverId: s.serverId + 1 },
    tables: { include: TABLES, exclude: [], keys: {}, direction: {} },
    capture: { memoryBytes: 32 << 20 }, log: { level: 'warn' as const },
  });
  const listenPort = await freePort();
  const parent = await SpokesyncNode.open({
    ...base(parentServer, 'kigali'),
    listen: { host: '127.0.0.1', port: listenPort, maxBodyBytes: 8 << 20, maxInflatedBytes: 64 << 20 },
    children: [{ id: 'rwinkwavu', token: 'k7Qm2x' }],
  }, silentLogger);
  await parent.startCapture();
  await parent.startServer();
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: listenPort } });
  const childConfig = (p: Partial<ParentConfig>) => ({
    ...base(childServer, 'rwinkwavu'),
    children: [],
    parent: {
      url: proxy.url, token: 'k7Qm2x', interval: 300_000, timeout: 300_000, maxTries: 20, compression: 'br' as const,
      batch: { records: 200, bytes: 1 << 20 }, ...p,
    },
  });
  const open = async (p: Partial<ParentConfig>): Promise<SpokesyncNode> => {
    const n = await SpokesyncNode.open(childConfig(p), silentLogger, { backoffBaseMs: 1000 });
    await n.startCapture();
    return n;
  };
  const result: Pair = {
    parentServer, childServer, parent, proxy,
    child: await open({}),
    async openChild(p) {
      await result.child.close();
      result.child = await open(p);
    },
    async close() {
      await result.child.close().catch(() => undefined);
      await parent.close().catch(() => undefined);
      await proxy.close();
      await Promise.all([parentServer.stop(), childServer.stop()]);
    },
  };
  return result;
}

/** parent.* as a config that sets only url and token gets it (agent/config/reference.ts), with the proxy's url and token */
function defaultParent(): Partial<ParentConfig> & Pick<ParentConfig, 'compression' | 'batch'> {
  const yaml = 'node: { id: rwinkwavu }\ndatabase: { host: h, user: u, schema: openmrs, serverId: 1 }\ntables: { include: [person] }\n' +
    'parent: { url: "http://kigali.example.org:8080", token: k7Qm2x }\n';
  const { compression, batch, timeout, maxTries } = parseConfig(yaml, 'defaults.yaml', {}).parent!;
  return { compression, batch, timeout, maxTries };
}

/** Entries in batches as the journal reader caps them: at most `records`, and at most `bytes` of <cs> XML unless one alone is larger. */
function cut(entries: readonly Outgoing[], caps: Caps): Outgoing[][] {
  const out: Outgoing[][] = [];
  let part: Outgoing[] = [];
  let bytes = 0;
  for (const e of entries) {
    const n = Buffer.byteLength(e.body);
    if (part.length > 0 && (part.length >= caps.records || bytes + n > caps.bytes)) {
      out.push(part);
      part = [];
      bytes = 0;
    }
    part.push(e);
    bytes += n;
  }
  if (part.length > 0) out.push(part);
  return out;
}

const per = (bytes: number): string => `${(bytes / N).toFixed(0)} B/registration`;
const vs = (bytes: number): string =>
  `${per(bytes)} (${((bytes / N / REFERENCE) * 100).toFixed(0)}% of OpenMRS Sync's ${REFERENCE} B; target ≤ ${TARGET} B: ${bytes / N <= TARGET ? 'met' : 'NOT met'})`;

export async function bench(log: (line: string) => void): Promise<void> {
  const p = await pair();
  try {
    // (a) bytes per registration
    await register(p.childServer, 1, N);
    await p.child.capture.caughtUp(120_000);
    const route = p.child.routeFor('kigali', 'parent');
    const all = await p.child.core.next(route, { records: 10_000, bytes: 1 << 30 });
    const xml = await batchBuffer(all.header, all.entries);
    log(`${all.entries.length} change sets, ${xml.length} B of batch XML: ${per(xml.length)} before compression`);
    for (const records of [200, 50, 25]) {
      let gz = 0;
      let br = 0;
      let ubr = 0;
      let vbr = 0;
      for (let i = 0; i < all.entries.length; i += records) {
        const part = await batchBuffer(all.header, all.entries.slice(i, i + records));
        gz += compress(part, 'gzip').length;
        br += compress(part, 'br').length;
        ubr += compress(part, 'spokesync-ubr').length;
        vbr += compress(part, 'spokesync-vbr').length;
      }
      log(`batches of ${records}, body only: gzip ${vs(gz)}`);
      log(`batches of ${records}, body only: brotli ${vs(br)}`);
      log(`batches of ${records}, body only: spokesync-ubr ${vs(ubr)}`);
      log(`batches of ${records}, body only: spokesync-vbr ${vs(vbr)}`);
    }
    const defaults = defaultParent();
    // the default config's batches, body only: as the journal reader cuts them (records, and the bytes of their XML)
    const enc = defaults.compression === 'br' ? BROTLI_CODINGS[0]! : encodingFor(defaults.compression);
    let body = 0;
    for (const part of cut(all.entries, defaults.batch)) body += compress(await batchBuffer(all.header, part), enc).length;
    log(`the default config (parent.compression ${defaults.compression}: ${enc}, batches of ${defaults.batch.records} records or ${defaults.batch.bytes} B), ` +
      `body only: ${per(body)} (default config target ≤ ${DEFAULT_TARGET} B: ${body / N <= DEFAULT_TARGET ? 'met' : 'NOT met'})`);
    const runs: Array<[string, Partial<ParentConfig>]> = [
      ['gzip', { compression: 'gzip', batch: { records: 200, bytes: 1 << 20 } }],
      [`the default config (parent.compression ${defaults.compression}, batch ${defaults.batch.records} records / ${defaults.batch.bytes} B)`, defaults],
    ];
    for (const [what, parent] of runs) {
      // the same 200 registrations over HTTP, counted on the wire (headers, acks and answers included)
      await p.parentServer.query('DELETE FROM spokesync.peers');
      await p.childServer.query('DELETE FROM spokesync.peers');
      await p.openChild(parent);
      const [up, down] = [p.proxy.stats.bytesUp, p.proxy.stats.bytesDown];
      const r = await p.child.syncWithParent();
      const wire = p.proxy.stats.bytesUp - up + (p.proxy.stats.bytesDown - down);
      log(`HTTP ${what}, ${r.rounds} requests: ${p.proxy.stats.bytesUp - up} B up + ${p.proxy.stats.bytesDown - down} B down = ${vs(wire)}`);
    }

    // (b) 200 new registrations through 1 kbps and 600 ms RTT, with two drops: one
    // mid-request (the rest of the upload is resumed) and one mid-response (a probe
    // learns it arrived); once in batches of 100 and once in one batch of 200
    let expected = N;
    for (const batch of SLOW_BATCHES) {
      expected += N;
      await register(p.childServer, expected - N + 1, N);
      p.proxy.set({ bytesPerSecond: 0, latencyMs: 0 });
      await p.openChild({ compression: 'br', batch: { records: batch, bytes: 1 << 20 } });
      p.proxy.set({ bytesPerSecond: kbps(1), latencyMs: 300 });
      p.proxy.cutNext({ direction: 'up', afterBytes: 5000 }, { direction: 'down', afterBytes: 60 });
      const [up0, down0, cuts0] = [p.proxy.stats.bytesUp, p.proxy.stats.bytesDown, p.proxy.stats.cuts];
      // end to end: from the rows committed on the child to the rows committed on the parent
      const started = Date.now();
      await p.child.capture.caughtUp(120_000);
      const stop = AbortSignal.timeout(SLOW_DEADLINE_S * 1000);
      let done = false;
      let rounds = 0;
      while (!done && !stop.aborted) {
        const r = await p.child.syncWithParent(stop).catch((e: unknown) => {
          log(`  exchange failed (${(e as { code?: string }).code ?? 'error'}), again`);
          return null;
        });
        rounds += r?.rounds ?? 0;
        done = r?.drained === true;
      }
      const secs = (Date.now() - started) / 1000;
      const up = p.proxy.stats.bytesUp - up0;
      await p.parent.capture.caughtUp(60_000);
      const [count] = (await p.parentServer.query('SELECT COUNT(*) AS n FROM openmrs.patient_identifier')) as { n: number }[];
      log(`1 kbps, 600 ms RTT, batches of ${batch}, ${p.proxy.stats.cuts - cuts0} drops: ${done ? '' : 'NOT '}drained in ` +
        `${secs.toFixed(0)} s (target ≤ ${SLOW_TARGET_S} s: ${done && secs <= SLOW_TARGET_S ? 'met' : 'NOT met'}); ${rounds} rounds, ` +
        `${up} B up (${per(up)}, ${(up / kbps(1)).toFixed(0)} s of link time), ${p.proxy.stats.bytesDown - down0} B down; ` +
        `parent holds ${String(count?.n)} patient identifiers (expected ${expected})`);
    }
  } finally {
    await p.close();
  }
}
