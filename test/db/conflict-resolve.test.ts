// `spokesync conflicts review|resolve` as operators run them (the built binary)
// on a live parent with two children. A resolve writes the side taken as an
// ordinary edit: capture journals it, ordinary sync takes it to every node, and
// no node records a new conflict for it. A row that changed since the conflict
// is refused (and shown) unless forced; every bad input exits 2.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { spokesync, spokesyncHere } from '../helpers/cli.js';
import { settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

interface Listed {
  id: string; identity: string; kind: string; outcome: string;
  local: { values?: Record<string, unknown>; versions?: Record<string, { node: string }> };
  remote: { version: { node: string } };
  reviewedAt: string | null; reviewedBy: string | null; resolvedAt: string | null; resolvedBy: string | null; resolution: string | null;
}

async function listed(config: string, ...extra: string[]): Promise<Listed[]> {
  const r = await spokesync(['conflicts', '--config', config, '--json', ...extra]);
  if (r.code !== 0) throw new Error(`conflicts exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as Listed[];
}

async function count(n: NetNode): Promise<number> {
  const [r] = await n.node.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM spokesync.conflicts');
  return Number(r?.n);
}

async function nameAt(n: NetNode, id: string): Promise<string | null | undefined> {
  const [r] = await n.node.db.query<{ name: string }>('SELECT name FROM app.person WHERE uuid = ?', [id]);
  return r?.name;
}

async function edit(n: NetNode, id: string, name: string): Promise<void> {
  await n.sql('UPDATE person SET name = ? WHERE uuid = ?', [name, id]);
  await n.node.capture.caughtUp(60_000);
}

void t.test('review and resolve through the CLI; the value taken reaches every node without a new conflict', async (t) => {
  const parent = await startNode({ id: 'p', listen: true, children: [{ id: 'a', token: 'a-token-123456' }, { id: 'b', token: 'b-token-123456' }] });
  t.teardown(() => stopNode(parent));
  const url = `http://127.0.0.1:${parent.config.listen!.port}`;
  const a = await startNode({ id: 'a', parent: { url, token: 'a-token-123456' } });
  t.teardown(() => stopNode(a));
  const b = await startNode({ id: 'b', parent: { url, token: 'b-token-123456' } });
  t.teardown(() => stopNode(b));
  const all = [parent, a, b];
  const dir = mkdtempSync(join(tmpdir(), 'spokesync-resolve-'));
  const [pConf, aConf] = [await parent.writeConfig(dir), await a.writeConfig(dir)];
  const x = uuid('x', 3);
  const y = uuid('y', 3);
  const w = uuid('w', 3);
  for (const id of [x, y, w]) await parent.sql('INSERT INTO person (uuid, name) VALUES (?, ?)', [id, 'first']);
  await settle(all, [a, b]);

  // the siblings edit x and y at once (they meet at the parent); the parent deletes w while a edits it
  await edit(a, x, 'a:x');
  await edit(b, x, 'b:x');
  await edit(a, y, 'a:y');
  await edit(b, y, 'b:y');
  await parent.sql('DELETE FROM person WHERE uuid = ?', [w]);
  await edit(a, w, 'a:w');
  await settle(all, [a, b]);

  const atParent = await listed(pConf, '--unreviewed');
  const cx = atParent.find((c) => c.identity === x);
  const cy = atParent.find((c) => c.identity === y);
  const cw = atParent.find((c) => c.identity === w);
  if (!cx || !cy || !cw) throw new Error(`the parent recorded ${JSON.stringify(atParent)}`);
  t.equal(cw.kind, 'update', 'w: a\'s update met the delete at the parent');

  // review: marked with who and when, then gone from --unreviewed
  const reviewed = await spokesync(['conflicts', '--config', pConf, 'review', `#${cx.id}`]);
  t.equal(reviewed.code, 0, reviewed.err);
  t.equal(reviewed.out.trim(), `conflict #${cx.id} reviewed by ${userInfo().username}`);
  const again = await spokesync(['conflicts', '--config', pConf, 'review', cx.id]);
  t.match(again.out, new RegExp(`conflict #${cx.id} was reviewed already, by ${userInfo().username} at \\d{4}-`));
  t.notOk((await listed(pConf, '--unreviewed')).some((c) => c.id === cx.id), '--unreviewed leaves the reviewed one out');
  t.match((await listed(pConf)).find((c) => c.id === cx.id), { reviewedBy: userInfo().username, reviewedAt: /^\d{4}-/, resolvedAt: null });
  const text = await spokesync(['conflicts', '--config', pConf]);
  t.match(text.out, new RegExp(`#${cx.id} .* update person ${x} {2}\\[reviewed\\]`));
  t.match(text.out, /here {5}\(local, written by [ab]\)/, 'the listing names the writer of each side');

  // every bad input: a clear message and exit 2
  const bad: Array<[string[], RegExp]> = [
    [['review'], /review needs the id of a conflict/],
    [['review', '99999'], /no conflict #99999 is recorded here/],
    [['review', 'x1'], /"x1" is not a conflict id/],
    [['resolve', cx.id], /resolve needs --take VERSION/],
    [['resolve', cx.id, '--take', 'nobody'], /--take "nobody" names no side of conflict #\d+: take local \(written by [ab]\) or remote \(written by [ab]\)/],
    [['resolve', cx.id, cy.id, '--take', 'local'], /resolve takes one conflict id/],
    [['resolve', '99999', '--take', 'local'], /no conflict #99999/],
    [['resolve', cw.id, '--take', 'remote'], /an update of name of a row deleted here/],
    [['review', cx.id, '--take', 'local'], /--take and --force go with resolve/],
    [['--force'], /--take and --force go with resolve/],
    [['review', cx.id, '--unreviewed'], /--limit and --unreviewed go with the list/],
    [['undo', cx.id], /unknown action "undo"/],
  ];
  for (const [args, msg] of bad) {
    const r = await spokesyncHere(['conflicts', '--config', pConf, ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.err, msg, args.join(' '));
  }
  const help = await spokesync(['conflicts', '--help']);
  t.match(help.out, /resolve ID --take VERSION/);
  t.match(help.out, /--unreviewed/);

  // resolve x at the parent by taking the side that lost, named by its writer
  const won = await nameAt(parent, x);
  const loser = won === 'a:x' ? 'b' : 'a';
  const before = await Promise.all(all.map(count));
  const res = await spokesync(['conflicts', '--config', pConf, 'resolve', cx.id, '--take', loser]);
  t.equal(res.code, 0, res.err);
  t.match(res.out, new RegExp(`conflict #${cx.id} resolved: took (local|remote) \\(written by ${loser}\\); wrote name`));
  t.match((await listed(pConf)).find((c) => c.id === cx.id), { resolvedBy: userInfo().username, resolvedAt: /^\d{4}-/, resolution: /wrote name/ });
  await settle(all, [a, b]);
  for (const n of all) t.equal(await nameAt(n, x), `${loser}:x`, `${n.id} holds the side taken`);
  t.same(await Promise.all(all.map(count)), before, 'no node recorded a new conflict');
  const twice = await spokesync(['conflicts', '--config', pConf, 'resolve', cx.id, '--take', loser]);
  t.equal(twice.code, 2);
  t.match(twice.err, new RegExp(`conflict #${cx.id} was resolved already, by ${userInfo().username}`));

  // y changed at the parent since the conflict: refused and shown, then forced
  await edit(parent, y, 'p:later');
  const refused = await spokesync(['conflicts', '--config', pConf, 'resolve', cy.id, '--take', 'local']);
  t.equal(refused.code, 1, refused.err);
  t.match(refused.err, /SPOKESYNC_E_ROW_CHANGED/);
  t.match(refused.err, new RegExp(`the person row of conflict #${cy.id} changed here since the conflict: name \\(written by p at \\d{4}-`));
  t.notMatch(refused.err, /p:later/, 'the error carries no value');
  t.match(refused.out, /name: after the conflict "[ab]:y", here now "p:later" \(written by p at /, 'stdout shows what changed');
  t.equal(await nameAt(parent, y), 'p:later', 'nothing written');
  t.equal((await listed(pConf)).find((c) => c.id === cy.id)?.resolvedAt, null, 'not marked resolved');
  const local = cy.local.values?.name;
  const forced = await spokesync(['conflicts', '--config', pConf, 'resolve', cy.id, '--take', 'local', '--force']);
  t.equal(forced.code, 0, forced.err);
  t.match(forced.out, /written over \(--force\)/);
  t.match((await listed(pConf)).find((c) => c.id === cy.id), { resolution: /forced over changes made since/ });

  // w at the leaf: a's edit lost to the parent's delete; taking it back inserts the row again everywhere
  const atA = (await listed(aConf)).find((c) => c.identity === w);
  if (!atA) throw new Error('a recorded no conflict on w');
  t.match(atA, { kind: 'delete', outcome: 'delete wins', local: { values: { name: 'a:w' } } });
  const back = await spokesync(['conflicts', '--config', aConf, 'resolve', atA.id, '--take', 'a']);
  t.equal(back.code, 0, back.err);
  t.match(back.out, /took local \(written by a, p\); inserted the row again/, 'the row: its insert (p) and the edit (a)');

  const settled = await Promise.all(all.map(count));
  await settle(all, [a, b]);
  for (const n of all) {
    t.equal(await nameAt(n, y), local, `${n.id}: y holds the side taken by force`);
    t.equal(await nameAt(n, w), 'a:w', `${n.id}: w is back, with a's edit`);
  }
  t.same(await Promise.all(all.map(count)), settled, 'no node recorded a new conflict for either');
  const dumps = await Promise.all(all.map((n) => n.dump()));
  t.same(dumps[1], dumps[0], 'a = p');
  t.same(dumps[2], dumps[0], 'b = p');
});
