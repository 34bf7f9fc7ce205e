// Private by construction: every byte a filtered child receives — its snapshot
// file, the snapshot of its clone over HTTP, every HTTP answer of its
// exchanges, a USB file for it — is captured, opened and decompressed, and no
// identity (uuid) of a patient of another clinic, or of any row that follows
// one, appears in it, whatever happened to those patients meanwhile (edits,
// deletes, new visits). The child's own patients do appear (the capture works).
import t from 'tap';
import { createServer, request, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { openDb } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { cloneSnapshot } from '../../agent/provision/load.js';
import { fetchSnapshot } from '../../agent/provision/http.js';
import { writeSnapshot } from '../../agent/provision/snapshot-writer.js';
import { viaCapture } from '../../agent/provision/cursor.js';
import { plainRails } from '../../agent/provision/rails.js';
import { childFilters } from '../../agent/rows/child.js';
import { SNAPSHOT_FILE, open } from '../../agent/usb/usb-file.js';
import { exportFile } from '../../agent/usb/transfer.js';
import { BUTARO, RWINKWAVU, addStaff, atLocation, recordUuids, registerAt } from '../helpers/openmrs-sites.js';
import { childConfig, openRowsNode, openmrsServer, rowsParent, type RowsNode } from '../helpers/rows-net.js';

const TOKEN = 'rwinkwavu-token-0123456789';
const quiet = () => ({ table: () => undefined, add: () => undefined, done: () => undefined });

interface Seen { readonly path: string; readonly encoding: string | undefined; readonly body: Buffer }

/** An HTTP proxy in front of the parent that keeps every answer's body as it went. */
async function recorder(target: { host: string; port: number }): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const up = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      const parts: Buffer[] = [];
      r.on('data', (b: Buffer) => { parts.push(b); res.write(b); });
      r.on('end', () => { seen.push({ path: req.url ?? '', encoding: r.headers['content-encoding'], body: Buffer.concat(parts) }); res.end(); });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

/** An answer's body as text: decoded by its content-encoding; a snapshot's gzip opened. */
function plain(s: Seen): string {
  let b = s.encoding === undefined || s.encoding === 'identity' ? s.body
    : s.encoding === 'gzip' ? gunzipSync(s.body)
    : s.encoding === 'br' ? brotliDecompressSync(s.body)
    : (() => { throw new Error(`an answer in a coding this test cannot open: ${s.encoding}`); })();
  if (s.path.startsWith('/v1/snapshot')) b = gunzipSync(b);
  return b.toString('latin1');
}

/** A sealed file (USB or snapshot) opened with the child's token, its gzip inflated. */
async function openSealed(bytes: Buffer, kind?: typeof SNAPSHOT_FILE): Promise<string> {
  const parts: Buffer[] = [];
  for await (const item of open((async function* () { yield bytes; })(), () => TOKEN, ...(kind ? [kind] : []))) {
    if (item.type === 'data') parts.push(item.data);
  }
  return gunzipSync(Buffer.concat(parts)).toString('latin1');
}

void t.test('nothing of another clinic\'s patients reaches a filtered child', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-privacy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ps = await openmrsServer();
  t.teardown(() => ps.stop());
  await addStaff(ps);
  const rwEarly = await registerAt(ps, RWINKWAVU, 'rw', 2);
  const buEarly = await registerAt(ps, BUTARO, 'bu', 3);
  const parent = await rowsParent(ps, [{ id: 'rwinkwavu', token: TOKEN, rows: { person: atLocation('Rwinkwavu') }, rowsLeaving: 'keep' }]);
  const nodes: RowsNode[] = [parent];
  t.teardown(() => Promise.all(nodes.map((n) => n.close())));
  const proxy = await recorder({ host: '127.0.0.1', port: parent.config.listen!.port });
  t.teardown(() => new Promise<void>((resolve) => { proxy.server.close(() => resolve()); proxy.server.closeAllConnections(); }));
  const texts: { what: string; text: string }[] = [];

  // 1. a snapshot file for the child, sealed with its token
  const { host, port, user, schema, stateSchema } = parent.config.database;
  const sink = new PassThrough();
  const fileParts: Buffer[] = [];
  sink.on('data', (b: Buffer) => fileParts.push(b));
  await writeSnapshot({
    settings: { host, port, user }, db: parent.node.db, schema, stateSchema, node: 'kigali', log: silentLogger,
    waitForCapture: viaCapture(parent.node.capture), sealWith: TOKEN, rails: plainRails('rwinkwavu'), progress: quiet,
    subset: (cat) => childFilters(parent.config, parent.config.children[0]!, cat, true),
  }, 'rwinkwavu', sink);
  texts.push({ what: 'the snapshot file', text: await openSealed(Buffer.concat(fileParts), SNAPSHOT_FILE) });

  // 2. the child is cloned over HTTP, then exchanges, all through the recorder
  const cs = await startServer();
  t.teardown(() => cs.stop());
  const cfg = childConfig(cs, 'rwinkwavu', parent, TOKEN, proxy.url);
  const cdb = openDb({ host: cs.host, port: cs.port, user: 'root' });
  t.teardown(() => cdb.close());
  await cloneSnapshot({ db: cdb, schema: 'openmrs', stateSchema: 'spokesync', node: 'rwinkwavu', log: silentLogger, force: false, progress: quiet },
    () => fetchSnapshot(cfg.parent!));
  const child = await openRowsNode(cs, cfg);
  nodes.push(child);
  // meanwhile at the parent: new patients at both clinics, edits and deletes of the other clinic's
  const q = (sql: string, p: unknown[] = []) => ps.query(`USE openmrs; ${sql}`, p);
  const rwLate = await registerAt(ps, RWINKWAVU, 'rw2', 1);
  const buLate = await registerAt(ps, BUTARO, 'bu2', 2);
  const butaro = [...buEarly, ...buLate];
  const secret = new Set((await Promise.all(butaro.map((p) => recordUuids(parent.app, p)))).flat());
  await q("UPDATE person_name n JOIN person p USING (person_id) SET n.given_name = 'Edited' WHERE p.uuid = ?", [buEarly[0]]);
  await q('DELETE o FROM obs o JOIN person p USING (person_id) WHERE p.uuid = ?', [buEarly[1]]);
  await q(`SET @p = (SELECT person_id FROM person WHERE uuid = ?);
    INSERT INTO visit (patient_id, visit_type_id, date_started, creator, date_created, uuid)
      SELECT @p, visit_type_id, NOW(), 1, NOW(), 'bu-visit-0000-4000-8000-000000000009' FROM visit_type LIMIT 1`, [buEarly[2]]);
  secret.add('bu-visit-0000-4000-8000-000000000009');
  for (let i = 0; i < 2; i++) {
    await parent.node.capture.caughtUp(60_000);
    await child.node.syncWithParent();
  }
  t.ok(proxy.seen.some((s) => s.path.startsWith('/v1/snapshot')) && proxy.seen.some((s) => s.path.startsWith('/v1/exchange')), 'the clone and the exchanges went through the recorder');
  for (const s of proxy.seen) texts.push({ what: `HTTP ${s.path.split('?')[0]}`, text: plain(s) });

  // 3. a USB file for the child, after more writes
  const [buUsb] = await registerAt(ps, BUTARO, 'bu3', 1);
  for (const u of await recordUuids(parent.app, buUsb!)) secret.add(u);
  const [rwUsb] = await registerAt(ps, RWINKWAVU, 'rw3', 1);
  await parent.node.capture.caughtUp(60_000);
  const file = join(dir, 'to-rwinkwavu.usb');
  await exportFile(parent.node.usb(), { peer: 'rwinkwavu', out: file });
  texts.push({ what: 'the USB file', text: await openSealed(await readFile(file)) });

  t.ok(secret.size >= 40, `the other clinic's rows: ${secret.size} uuids`);
  for (const { what, text } of texts) {
    t.same([...secret].filter((u) => text.includes(u)), [], `no uuid of the other clinic in ${what} (${text.length} bytes)`);
  }
  const mine = async (p: string) => recordUuids(parent.app, p);
  const all = texts.map((x) => x.text).join('\n');
  for (const p of [...rwEarly, ...rwLate, rwUsb!]) t.ok((await mine(p)).every((u) => all.includes(u)), `the child's patient ${p} went, whole`);
  t.ok(texts.find((x) => x.what === 'the USB file')!.text.includes(rwUsb!), 'the USB file carries the child\'s new patient');
});
