// A table created on both nodes while their daemons run, matching
// tables.include: rows written at the child right after the CREATE reach the
// parent, without a restart.
import t from 'tap';
import { SYNCED, settle, startNode, stopNode, uuid } from '../helpers/sync-net.js';

void t.test('a table created while the daemons run syncs from its first row', async (t) => {
  const parent = await startNode({ id: 'parent', listen: true, children: [{ id: 'child', token: 'tok-child' }] });
  t.teardown(() => stopNode(parent));
  const url = `http://127.0.0.1:${parent.config.listen!.port}`;
  // include is a glob here: pet matches it, though it does not exist yet
  const child = await startNode({ id: 'child', parent: { url, token: 'tok-child' } });
  t.teardown(() => stopNode(child));
  for (const n of [parent, child]) Object.assign(n.config, { tables: { ...n.config.tables, include: [...SYNCED, 'pe*'] } });
  t.ok(!SYNCED.includes('pet'));

  const ddl = 'CREATE TABLE pet (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(38) NOT NULL UNIQUE, name VARCHAR(20))';
  await parent.sql(ddl);
  await child.sql(ddl);
  await child.sql('INSERT INTO pet (uuid, name) VALUES (?, ?), (?, ?)', [uuid('a', 1), 'rex', uuid('a', 2), 'tom']);
  await settle([parent, child], [child]);
  t.same(await parent.node.db.query('SELECT uuid, name FROM app.pet ORDER BY uuid'), [{ uuid: uuid('a', 1), name: 'rex' }, { uuid: uuid('a', 2), name: 'tom' }],
    'the rows reached the parent');
});
