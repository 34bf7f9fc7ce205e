// HTTPS between child and parent with a self-signed certificate, as sites run
// it: the child pins the parent's certificate (parent.ca) and connects by IP,
// whatever name the certificate carries; without the pin, or with another
// certificate pinned, the exchange is refused.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../apply/core/db.js';
import { silentLogger } from '../../apply/core/log.js';
import { ExchangeClient } from '../../agent/exchange/client.js';
import { ExchangeServer } from '../../agent/exchange/http-server.js';
import { routeTo } from '../../agent/routing/filters.js';
import type { ParentConfig } from '../../agent/config/types.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { changeSet, journal, nodeConfig, rigNode } from '../helpers/exchange-rig.js';

// test-only self-signed certificates (EC P-256, valid until 2126); the key protects nothing
const CERT_A = `-----BEGIN CERTIFICATE-----
MIIBqjCCAVCgAwIBAgIUA2Jo+Eet4TlaHqWXBYkaOWBxFGYwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc3Bva2VzeW5jLXRlc3QtYTAgFw0yNjExMjYwNzI5MzdaGA8y
MTI2MTEwMjA3MjkzN1owGzEZMBcGA1UEAwwQc3Bva2VzeW5jLXRlc3QtYTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABK6Qvmb0bs3/M9hPEQWJfCKrh5/ZqURg+l55
CTMaIalNcFK0HmUZ6XTWMbHxo5jC9cPO6zFLvQ9bKy43P7LHegKjcDBuMB0GA1Ud
DgQWBBSUZR6STTejL3R4x1JGc1mpP8MlLzAfBgNVHSMEGDAWgBSUZR6STTejL3R4
x1JGc1mpP8MlLzAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEHBhcmVudC1h
LmV4YW1wbGUwCgYIKoZIzj0EAwIDSAAwRQIgY7GQucLjuXm9gnn0sCEF+8BZ/cK/
wzZgEB/H+o9AnAwCIQDSjxBpZS08nS0YvPJTOVmHDHQtM6mAeZSX3739twbmpg==
-----END CERTIFICATE-----`;
const KEY_A = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgykttQhVzrcN7FOB2
sz3J2QuJYdTeUdEiX+JHY/y6rsyhRANCAASukL5m9G7N/zPYTxEFiXwiq4ef2alE
YPpeeQkzGiGpTXBStB5lGel01jGx8aOYwvXDzusxS70PWysuNz+yx3oC
-----END PRIVATE KEY-----`;
const CERT_B = `-----BEGIN CERTIFICATE-----
MIIBqTCCAVCgAwIBAgIUXu341F7232yvyXKa6IQ/Rdc4jbwwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc3Bva2VzeW5jLXRlc3QtYjAgFw0yNjExMjYwNzI5MzdaGA8y
MTI2MTEwMjA3MjkzN1owGzEZMBcGA1UEAwwQc3Bva2VzeW5jLXRlc3QtYjBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABADqSCHMspHlJmylHydCSG2gKOKfvYhGlgzu
eHBOFozoG1UlEh4f3EWAVsJmsJSTewzqc7kpmInwW7rg++ESppmjcDBuMB0GA1Ud
DgQWBBRP6L9i0PL69ZNPD/eq63cL4Ci4wDAfBgNVHSMEGDAWgBRP6L9i0PL69ZNP
D/eq63cL4Ci4wDAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEHBhcmVudC1i
LmV4YW1wbGUwCgYIKoZIzj0EAwIDRwAwRAIgLy/SUmM5pWeAbGP6eIDWe3wd84om
Mw8GPlWYZCIOZWcCIDx4vlIdg1cptJq37vjq6V027WxXohaU+jlM10EKdVKA
-----END CERTIFICATE-----`;

void t.test('HTTPS with a pinned self-signed certificate', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spokesync-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = async (name: string, text: string) => {
    const p = join(dir, name);
    await writeFile(p, text + '\n');
    return p;
  };
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const hubConfig = nodeConfig('hub', { children: [{ id: 'leaf', token: 'tls-token' }] });
  const hub = await rigNode(db, hubConfig);
  const server = new ExchangeServer({
    listen: { host: '127.0.0.1', port: 0, tls: { cert: await file('a.crt', CERT_A), key: await file('a.key', KEY_A) }, maxBodyBytes: 1 << 20, maxInflatedBytes: 1 << 22 },
    children: hubConfig.children, core: hub.core, routeFor: (c) => routeTo(hubConfig, c, 'child'), log: silentLogger,
  });
  await server.start();
  t.teardown(() => server.stop());
  t.match(server.url, /^https:/);

  const leafConfig = nodeConfig('leaf');
  const leaf = await rigNode(db, leafConfig);
  await journal(db, leaf.stateSchema, changeSet('leaf', 1));
  const client = (ca: string | undefined) => {
    const parent: ParentConfig = {
      url: server.url, token: 'tls-token', interval: 1000, timeout: 5000, maxTries: 1, compression: 'gzip',
      batch: { records: 10, bytes: 65536 }, ...(ca ? { ca } : {}),
    };
    return new ExchangeClient({
      parent, node: 'leaf', core: leaf.core, db, stateSchema: leaf.stateSchema,
      routeFor: (p) => routeTo(leafConfig, p, 'parent'), log: silentLogger,
    });
  };
  await t.rejects(client(undefined).sync(), { code: 'SPOKESYNC_E_HTTP' }, 'an unpinned self-signed certificate is refused');
  await t.rejects(client(await file('b.crt', CERT_B)).sync(), { code: 'SPOKESYNC_E_HTTP' }, 'another pinned certificate is refused');
  t.equal(hub.applier.taken.length, 0);
  const r = await client(await file('pin.crt', CERT_A)).sync();
  t.ok(r.drained, 'the pinned certificate is trusted though it names another host');
  t.same(hub.applier.taken.map((x) => x.entry.cs.id), ['leaf:1']);
});
