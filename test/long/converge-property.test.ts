// The convergence invariant as a property: for every column, every node ends
// with the value of the highest version written anywhere, whatever the order and
// path of delivery. Five real nodes form the tree root ← mid ← (leaf1, leaf2),
// root ← leaf3; each run picks a connected part of it with 3 to 5 nodes (a chain,
// a star or three levels), writes the same columns and keys at several of them,
// syncs the links in a random order (a link left out stalls), restarts nodes,
// then lets the part settle: its nodes must then hold identical tables.
import fc from 'fast-check';
import t from 'tap';
import { settle, startNode, stopNode, uuid, type NetNode } from '../helpers/sync-net.js';

const NAMES = ['root', 'mid', 'leaf1', 'leaf2', 'leaf3'] as const;
type Name = (typeof NAMES)[number];
const PARENT: Record<Name, Name | null> = { root: null, mid: 'root', leaf1: 'mid', leaf2: 'mid', leaf3: 'root' };

/** Connected parts of the tree that hold the root, with 3 to 5 nodes. */
const PARTS: readonly (readonly Name[])[] = [
  ['root', 'mid', 'leaf1'], ['root', 'mid', 'leaf2'], ['root', 'mid', 'leaf3'],
  ['root', 'mid', 'leaf1', 'leaf2'], ['root', 'mid', 'leaf1', 'leaf3'], ['root', 'mid', 'leaf2', 'leaf3'],
  ['root', 'mid', 'leaf1', 'leaf2', 'leaf3'],
];

type Action =
  | { readonly kind: 'set'; readonly at: number; readonly row: number; readonly col: 'name' | 'gender'; readonly value: string }
  | { readonly kind: 'setting'; readonly at: number; readonly key: number; readonly value: string | null }
  | { readonly kind: 'delete'; readonly at: number; readonly row: number }
  | { readonly kind: 'sync'; readonly at: number }
  | { readonly kind: 'restart'; readonly at: number }
  | { readonly kind: 'tick' };

const ROWS = 1;
const KEYS = 2;

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(4), row: fc.nat(ROWS - 1), col: fc.constantFrom('name' as const, 'name' as const, 'gender' as const), value: fc.constantFrom('A', 'B') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('setting' as const), at: fc.nat(4), key: fc.nat(KEYS - 1), value: fc.option(fc.constantFrom('x', 'y'), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(4), row: fc.nat(ROWS - 1) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('sync' as const), at: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), at: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
);

void t.test('every part of a tree converges whatever the writes, delivery order, stalls and restarts', async (t) => {
  const tokens: Record<Name, string> = { root: '', mid: 'mid-token-prop', leaf1: 'leaf1-token-prop', leaf2: 'leaf2-token-prop', leaf3: 'leaf3-token-prop' };
  const nodes = new Map<Name, NetNode>();
  const url = (n: Name): string => `http://127.0.0.1:${nodes.get(n)!.config.listen!.port}`;
  const childrenOf = (n: Name): { id: string; token: string }[] =>
    NAMES.filter((c) => PARENT[c] === n).map((c) => ({ id: c, token: tokens[c] }));
  for (const name of NAMES) {
    const parent = PARENT[name];
    const children = childrenOf(name);
    const node = await startNode({
      id: name,
      ...(children.length > 0 ? { listen: true, children } : {}),
      ...(parent ? { parent: { url: url(parent), token: tokens[name], batch: { records: 3, bytes: 64 * 1024 } } } : {}),
    });
    nodes.set(name, node);
    t.teardown(() => stopNode(node));
  }
  const all = NAMES.map((n) => nodes.get(n)!);
  const children = (part: readonly Name[]): NetNode[] =>
    // deepest first, so one pass carries a leaf's change up to the root
    [...part].filter((n) => PARENT[n] !== null).sort((a, b) => depth(b) - depth(a)).map((n) => nodes.get(n)!);

  let run = 0;
  const runs = Number(process.env.SPOKESYNC_PROPERTY_RUNS ?? 10);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...PARTS), fc.array(action, { minLength: 6, maxLength: 16 }), async (part, actions) => {
      run++;
      const here = part.map((n) => nodes.get(n)!);
      const rowIds = Array.from({ length: ROWS }, (_, i) => uuid(`p${run}`, i));
      const keys = Array.from({ length: KEYS }, (_, i) => `run${run}.k${i}`);
      // the run's rows start at the root and reach the part
      for (const id of rowIds) await nodes.get('root')!.sql(`INSERT INTO person (uuid, name, gender) VALUES (?, 'start', 'F')`, [id]);
      await settle(here, children(part));
      for (const a of actions) {
        if (a.kind === 'tick') {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        const n = here[a.at % here.length]!;
        switch (a.kind) {
          case 'set':
            // (binlog times have whole seconds: a write in a new second is newer than every earlier one)
            await nextSecond();
            await n.sql(`UPDATE person SET ${a.col} = ? WHERE uuid = ?`, [a.value, rowIds[a.row]]);
            break;
          case 'setting':
            if (a.value === null) await n.sql(`DELETE FROM setting WHERE property = ?`, [keys[a.key]]);
            else await n.sql(`INSERT INTO setting (property, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)`, [keys[a.key], a.value]);
            break;
          case 'delete':
            await n.sql(`DELETE FROM person WHERE uuid = ?`, [rowIds[a.row]]);
            break;
          case 'sync':
            if (PARENT[n.id as Name] !== null) {
              await n.node.capture.caughtUp(60_000);
              await nodes.get(PARENT[n.id as Name]!)!.node.capture.caughtUp(60_000);
              await n.node.syncWithParent();
            }
            break;
          case 'restart':
            await n.pause();
            await n.resume();
            break;
        }
      }
      await settle(here, children(part));
      const dumps = await Promise.all(here.map((n) => n.dump()));
      for (let i = 1; i < dumps.length; i++) {
        if (JSON.stringify(dumps[i]) !== JSON.stringify(dumps[0])) {
          t.same(dumps[i], dumps[0], `run ${run}: ${here[i]!.id} = root`);
          return false;
        }
      }
      const quarantined = await Promise.all(here.map(async (n) => Number((await n.node.db.query<{ c: number }>('SELECT COUNT(*) AS c FROM spokesync.quarantine'))[0]?.c)));
      if (quarantined.some((q) => q > 0)) {
        t.fail(`run ${run}: quarantine not empty after settling: ${quarantined.join(', ')}`);
        return false;
      }
      return true;
    }),
    { numRuns: runs, endOnFailure: true, ...(process.env.SPOKESYNC_PROPERTY_SEED ? { seed: Number(process.env.SPOKESYNC_PROPERTY_SEED) } : {}) },
  );
  t.pass(`${runs} runs converged`);

  // and the whole tree, once every link has had its turn
  await settle(all, children(NAMES));
  const dumps = await Promise.all(all.map((n) => n.dump()));
  for (let i = 1; i < dumps.length; i++) t.same(dumps[i], dumps[0], `${all[i]!.id} = root after the whole tree settled`);
});

async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
}

function depth(n: Name): number {
  let d = 0;
  for (let p = PARENT[n]; p !== null; p = PARENT[p]) d++;
  return d;
}
