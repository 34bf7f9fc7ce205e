// The parent's exchange server under a hostile peer, on loopback: the attacker
// connects from 127.0.0.2..9 while the legitimate child syncs from 127.0.0.1.
// Slow headers, a stalled body, a slow but steady body and repeated wrong
// tokens each cost the attacker's address only; the child keeps syncing.
import t from 'tap';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { encodeBatch } from '../../apply/codec/batch.js';
import type { BatchHeader } from '../../apply/core/model.js';
import { openDb } from '../../apply/core/db.js';
import { createLogger, silentLogger } from '../../apply/core/log.js';
import type { ParentConfig } from '../../agent/config/types.js';
import { ExchangeClient } from '../../agent/exchange/client.js';
import { EXCHANGE_PATH } from '../../agent/exchange/protocol.js';
import { OFFSET_HEADER, UPLOAD_HEADER, uploadId } from '../../agent/exchange/resume.js';
import { ExchangeServer } from '../../agent/exchange/http-server.js';
import { routeTo } from '../../agent/routing/filters.js';
import { startServer } from '../../deploy/sandbox/mariadb.js';
import { changeSet, journal, nodeConfig, rigNode } from '../helpers/exchange-rig.js';
import { LOOPBACK_CERT, LOOPBACK_KEY } from '../helpers/tls-cert.js';

const TOKEN = 'leaf-token-limits-1';
const SLOW_TOKEN = 'slow-token-limits-2';
const ATTACKERS = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const HEADERS_TIMEOUT = 2000;
const BODY_TIMEOUT = 2000;
const PER_ADDRESS = 8;

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Watched {
  readonly socket: Socket;
  readonly opened: number;
  /** resolves when the socket closes: after how long, and what the server sent */
  readonly closed: Promise<{ after: number; got: string }>;
}

void t.test('exchange server limits', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const db = openDb({ host: s.host, port: s.port, user: 'root' });
  t.teardown(() => db.close());
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => logs.push(l) });
  const config = nodeConfig('hub-lim', { children: [{ id: 'leaf-lim', token: TOKEN }, { id: 'slow-lim', token: SLOW_TOKEN }] });
  const hub = await rigNode(db, config, log);
  const server = new ExchangeServer({
    listen: {
      host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, maxInflatedBytes: 8 << 20,
      maxConnections: 256, maxConnectionsPerAddress: PER_ADDRESS, headersTimeout: HEADERS_TIMEOUT, bodyTimeout: BODY_TIMEOUT,
      requestTimeout: 60_000, authFailures: { max: 5, window: 60_000, block: 30_000 },
    },
    children: config.children,
    core: hub.core,
    routeFor: (c) => routeTo(config, c, 'child'),
    log,
  });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.port;

  const sockets = new Set<Socket>();
  t.teardown(() => { for (const x of sockets) x.destroy(); });
  /** A raw connection from `from`, remembered so that the end of the test closes it. */
  const open = (from: string, to = port): Watched => {
    const socket = connect({ host: '127.0.0.1', port: to, localAddress: from });
    sockets.add(socket);
    const opened = Date.now();
    let got = '';
    socket.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    socket.on('error', () => undefined);
    const closed = new Promise<{ after: number; got: string }>((resolve) => socket.once('close', () => {
      sockets.delete(socket);
      resolve({ after: Date.now() - opened, got });
    }));
    return { socket, opened, closed };
  };
  const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> =>
    Promise.race([p, delay(ms).then(() => 'pending' as const)]);

  /** One HTTP request from a given source address. */
  const post = (from: string, headers: Record<string, string>, body: Buffer) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port, localAddress: from, path: EXCHANGE_PATH, method: 'POST', agent: false,
        headers: { 'content-length': String(body.length), ...headers },
      }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  const header = (from: string, seq: string): BatchHeader => ({ version: 1, from, to: 'hub-lim', seq, ack: '0', more: false });

  await t.test('a wave of slow-header connections costs only the attacking addresses', async (t) => {
    const parent: ParentConfig = {
      url: server.url, token: TOKEN, interval: 1000, timeout: 5000, maxTries: 3, compression: 'gzip', batch: { records: 50, bytes: 64 * 1024 },
    };
    const leafConfig = nodeConfig('leaf-lim', { parent });
    const leaf = await rigNode(db, leafConfig);
    const client = new ExchangeClient({
      parent, node: leaf.id, core: leaf.core, db, stateSchema: leaf.stateSchema,
      routeFor: (p) => routeTo(leafConfig, p, 'parent'), log: silentLogger, backoffBaseMs: 100, backoffMaxMs: 100,
    });

    // 300 connections, one byte of a request line a second; each closed one comes back a second later
    const request = 'POST /v1/exchange HTTP/1.1\r\nHost: hub\r\n';
    const until = Date.now() + 7000;
    const outcomes: { after: number; got: string }[] = [];
    const attacker = async (i: number): Promise<void> => {
      const from = ATTACKERS[i % ATTACKERS.length]!;
      for (let round = 0; round < 20 && Date.now() < until; round++) {
        const c = open(from);
        let sent = 0;
        const drip = setInterval(() => { if (!c.socket.destroyed && sent < request.length) c.socket.write(request[sent++]!); }, 1000);
        const end = await within(c.closed, Math.max(0, until - Date.now()));
        clearInterval(drip);
        if (end === 'pending') {
          c.socket.destroy();
          return;
        }
        outcomes.push(end);
        await delay(1000);
      }
    };
    const wave = Promise.all(Array.from({ length: 300 }, (_, i) => attacker(i)));
    await delay(500);

    let hlc = 1;
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++, hlc++) {
        await journal(db, leaf.stateSchema, changeSet('leaf-lim', hlc));
        await journal(db, hub.stateSchema, changeSet('hub-lim', hlc));
      }
      const started = Date.now();
      const r = await within(client.sync().catch((e: Error) => e), 6000);
      times.push(Date.now() - started);
      t.notOk(r instanceof Error || r === 'pending', `sync ${round + 1} under the wave: ${r instanceof Error ? r.message : String(r === 'pending' ? r : 'ok')}`);
      await delay(1000);
    }
    t.ok(Math.max(...times) < 3000, `each sync under the wave took ${times.join(', ')} ms`);
    t.equal(hub.applier.taken.filter((x) => x.peer === 'leaf-lim').length, 9, 'every change of the child taken');
    t.equal(leaf.applier.taken.length, 9, 'every change of the parent received');

    await wave;
    const refused = outcomes.filter((o) => o.got === '' && o.after < 500);
    const timedOut = outcomes.filter((o) => o.got.startsWith('HTTP/1.1 408'));
    t.ok(refused.length >= 200, `extra connections closed at once, unanswered (${refused.length} of ${outcomes.length})`);
    t.ok(timedOut.length >= PER_ADDRESS * ATTACKERS.length, `admitted ones answered 408 (${timedOut.length})`);
    const late = timedOut.filter((o) => o.after > HEADERS_TIMEOUT + 500);
    t.same(late.map((o) => o.after), [], `closed within the headers timeout (${HEADERS_TIMEOUT} ms) of connecting`);
    const refusalLines = logs.filter((l) => l.includes('too many connections from one address'));
    t.ok(refusalLines.length <= ATTACKERS.length * 2, `refusals logged once per address and window (${refusalLines.length} lines)`);
  });

  const entries = (from: string, first: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ seq: String(first + i), cs: changeSet(from, 1000 + first + i, ['person', 'obs']) }));
  const takenFrom = (peer: string) => hub.applier.taken.filter((x) => x.peer === peer).map((x) => x.entry.cs.id);

  await t.test('a body that stops arriving is closed within the body timeout; what came is kept for resume', async (t) => {
    const body = await encodeBatch(header('slow-lim', '1'), entries('slow-lim', 1, 40));
    t.ok(body.length > 4096, `a ${body.length}-byte body`);
    const id = uploadId(body);
    const half = Math.floor(body.length / 2);
    const c = open('127.0.0.2');
    c.socket.write(
      `POST ${EXCHANGE_PATH} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer ${SLOW_TOKEN}\r\n` +
      `Content-Length: ${body.length}\r\n${UPLOAD_HEADER}: ${id}\r\n\r\n`,
    );
    c.socket.write(body.subarray(0, half));
    const end = await within(c.closed, BODY_TIMEOUT + 3000);
    t.not(end, 'pending', 'closed');
    if (end !== 'pending') t.ok(end.after >= BODY_TIMEOUT - 100 && end.after < BODY_TIMEOUT + 1500, `closed after ${end.after} ms`);
    if (end === 'pending') c.socket.destroy();
    t.same(takenFrom('slow-lim'), [], 'nothing applied from a body that never ended');

    const rest = await post('127.0.0.2', { authorization: `Bearer ${SLOW_TOKEN}`, [UPLOAD_HEADER]: id, [OFFSET_HEADER]: String(half) }, body.subarray(half));
    t.equal(rest.status, 200, `the rest completes it${rest.status === 200 ? '' : `: ${rest.body.slice(0, 200)}`}`);
    t.equal(takenFrom('slow-lim').length, 40, 'the joined body applied once');
  });

  await t.test('a slow but steady body is accepted', async (t) => {
    const body = await encodeBatch(header('slow-lim', '2'), entries('slow-lim', 41, 3));
    const c = open('127.0.0.3');
    c.socket.write(`POST ${EXCHANGE_PATH} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer ${SLOW_TOKEN}\r\nContent-Length: ${body.length}\r\n\r\n`);
    // the whole body takes about three body timeouts; no gap is longer than a second
    const pieces = 12;
    const size = Math.ceil(body.length / pieces);
    const started = Date.now();
    for (let i = 0; i < pieces && !c.socket.destroyed; i++) {
      await delay(500);
      c.socket.write(body.subarray(i * size, (i + 1) * size));
    }
    await delay(300);
    c.socket.end();
    const end = await within(c.closed, 5000);
    t.not(end, 'pending');
    if (end === 'pending') c.socket.destroy();
    else {
      t.match(end.got, /^HTTP\/1\.1 200 /, `answered 200 after ${Date.now() - started} ms`);
      t.ok(end.after > BODY_TIMEOUT * 2, `the body took ${end.after} ms`);
    }
    t.equal(takenFrom('slow-lim').length, 43, 'applied');
  });

  await t.test('repeated wrong tokens get 429 for a while; the right child elsewhere is not affected', async (t) => {
    const guesser = '127.0.0.9';
    const empty = await encodeBatch(header('leaf-lim', '100'), []);
    for (let i = 0; i < 5; i++) {
      const r = await post(guesser, { authorization: `Bearer wrong-${i}` }, empty);
      t.equal(r.status, 401, `wrong token ${i + 1}: 401`);
    }
    const warned = logs.length;
    for (let i = 0; i < 20; i++) {
      const r = await post(guesser, { authorization: `Bearer wrong-more-${i}` }, empty);
      if (r.status !== 429) {
        t.fail(`request ${i + 6} from the address: ${r.status}`);
        break;
      }
      if (i === 0) {
        t.match(r.body, /^SPOKESYNC_E_HTTP: too many wrong tokens/);
        const after = Number(r.headers['retry-after']);
        t.ok(after > 25 && after <= 30, `Retry-After: ${after}`);
      }
    }
    const right = await post(guesser, { authorization: `Bearer ${TOKEN}` }, empty);
    t.equal(right.status, 429, 'even the right token, from that address, is not looked at');
    t.equal(logs.slice(warned).filter((l) => l.includes('too many wrong tokens from one address')).length, 1, 'refusals logged once in the window');
    t.notOk(logs.some((l) => l.includes('wrong-more-') || l.includes(TOKEN)), 'tokens never logged');

    const elsewhere = await post('127.0.0.1', { authorization: `Bearer ${TOKEN}` }, await encodeBatch(header('leaf-lim', '100'), []));
    t.equal(elsewhere.status, 200, 'the child from its own address gets through');
  });

  await t.test('over TLS: the address limit applies before the handshake, which is timed, then the headers and the body', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'spokesync-limits-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'c.pem'), LOOPBACK_CERT);
    await writeFile(join(dir, 'k.pem'), LOOPBACK_KEY);
    const handshake = 1500;
    const secure = new ExchangeServer({
      listen: {
        host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, maxInflatedBytes: 8 << 20,
        tls: { cert: join(dir, 'c.pem'), key: join(dir, 'k.pem'), handshakeTimeout: handshake },
        maxConnectionsPerAddress: PER_ADDRESS, headersTimeout: HEADERS_TIMEOUT, bodyTimeout: BODY_TIMEOUT,
      },
      children: config.children, core: hub.core, routeFor: (c) => routeTo(config, c, 'child'), log,
    });
    await secure.start();
    t.teardown(() => secure.stop());

    // no handshake at all: PER_ADDRESS held until the handshake timeout, the next one closed at once
    const silent = Array.from({ length: PER_ADDRESS }, () => open('127.0.0.4', secure.port));
    await delay(200);
    const extra = await within(open('127.0.0.4', secure.port).closed, 1000);
    t.ok(extra !== 'pending' && extra.got === '' && extra.after < 500, 'the connection past the limit is closed at once');
    const ends = await Promise.all(silent.map((c) => within(c.closed, handshake + 2000)));
    const afters = ends.map((e) => (e === 'pending' ? Infinity : e.after));
    t.ok(afters.every((a) => a >= handshake - 100 && a < handshake + 1000), `silent ones closed after ${afters.join(', ')} ms`);

    /** A TLS connection from 127.0.0.4 that sends `text` once the handshake is done: when it closed after that, and what came back. */
    const secureSend = async (text: string, wait: number): Promise<{ closed: number | 'pending'; got: string }> => {
      const raw = connect({ host: '127.0.0.1', port: secure.port, localAddress: '127.0.0.4' });
      sockets.add(raw);
      const tlsSocket = tlsConnect({ socket: raw, host: '127.0.0.1', ca: LOOPBACK_CERT });
      sockets.add(tlsSocket);
      tlsSocket.on('error', (e) => t.fail(`TLS: ${e.message}`));
      t.not(await within(new Promise<void>((resolve) => tlsSocket.once('secureConnect', () => resolve())), 3000), 'pending', 'handshake');
      const shook = Date.now();
      let got = '';
      tlsSocket.on('data', (d: Buffer) => { got += d.toString('latin1'); });
      if (text) tlsSocket.write(text);
      const closed = await within(new Promise<number>((resolve) => tlsSocket.once('close', () => resolve(Date.now() - shook))), wait);
      for (const x of [tlsSocket, raw]) {
        sockets.delete(x);
        x.destroy();
      }
      return { closed, got };
    };

    // a handshake, then no headers: 408 within the headers timeout
    const quiet = await secureSend('', HEADERS_TIMEOUT + 2000);
    t.match(quiet.got, /^HTTP\/1\.1 408 /, 'answered 408');
    t.ok(quiet.closed !== 'pending' && quiet.closed < HEADERS_TIMEOUT + 500, `closed ${String(quiet.closed)} ms after the handshake`);

    // headers, then part of a body and silence: closed within the body timeout
    const stalled = await secureSend(
      `POST ${EXCHANGE_PATH} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer ${SLOW_TOKEN}\r\nContent-Length: 5000\r\n\r\n<batch`,
      BODY_TIMEOUT + 3000,
    );
    t.ok(stalled.closed !== 'pending' && stalled.closed >= BODY_TIMEOUT - 100 && stalled.closed < BODY_TIMEOUT + 1500,
      `a stalled body closed ${String(stalled.closed)} ms after the handshake`);

    // and a proper request from there is served
    const status = await within(new Promise<number>((resolve, reject) => {
      httpsGet(`${secure.url}/v1/health`, { ca: LOOPBACK_CERT, localAddress: '127.0.0.4', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    }), 3000);
    t.equal(status, 200, 'health over TLS');
  });
});
