// Which binlog events a command beside the daemon must see journaled before it
// counts the daemon's capture as caught up (SHOW BINLOG EVENTS rows), and the
// names of the locks the processes of one node share.
import t from 'tap';
import { forCapture } from '../../agent/usb/daemon-capture.js';
import { lockNameFor } from '../../apply/core/named-lock.js';

const node = { schema: 'app', stateSchema: 'spokesync', journals: (table: string) => table === 'person' || table === 'visit' };

void t.test('events capture journals, and those it skips', async (t) => {
  const table: [string, string | null, boolean, string][] = [
    ['Table_map', 'table_id: 18 (app.person)', true, 'rows of a synced table'],
    ['Table_map', 'table_id: 19 (app.scratch)', false, 'rows of a table that does not sync'],
    ['Table_map', 'table_id: 20 (spokesync.ledger)', true, 'an applied change set (its ledger row)'],
    ['Table_map', 'table_id: 21 (spokesync.carry)', true, 'what a relay must forward'],
    ['Table_map', 'table_id: 22 (spokesync.peers)', false, "the state schema's bookkeeping"],
    ['Table_map', 'table_id: 23 (other.person)', false, 'a table of another schema'],
    ['Table_map', 'table_id: 24 (app.personal)', false, 'a name that only starts like a synced one'],
    ['Table_map', 'garbled', true, 'a row it cannot read: counted'],
    ['Query', 'BEGIN', false, 'a transaction starts'],
    ['Query', 'COMMIT', false, 'a transaction ends'],
    ['Query', 'use `app`; ALTER TABLE person ADD COLUMN x INT', true, 'DDL on the schema'],
    ['Query', 'ALTER TABLE APP.person DROP COLUMN x', true, 'DDL naming the schema in other case'],
    ['Query', 'use `spokesync`; CREATE TABLE IF NOT EXISTS `spokesync`.`meta` (k INT)', false, 'DDL of the state schema alone'],
    ['Query_compressed', 'use `app`; DROP TABLE visit', true, 'a compressed statement'],
    ['Gtid', 'BEGIN GTID 0-1-5', false, 'a GTID'],
    ['Annotate_rows', 'INSERT INTO app.person VALUES (1)', false, 'the statement text of rows (their table map counts)'],
    ['Write_rows_v1', 'table_id: 18 flags: STMT_END_F', false, 'rows (their table map counts)'],
    ['Xid', 'COMMIT /* xid=10 */', false, 'a commit'],
    ['Execute_load_query', 'LOAD DATA INFILE', true, 'LOAD DATA by statement'],
    ['Rotate', null, false, 'a rotate'],
  ];
  for (const [type, info, want, what] of table) t.equal(forCapture(node, { Event_type: type, Info: info }), want, what);
});

void t.test('lock names: one per node and purpose, within the server limit of 64', async (t) => {
  t.equal(lockNameFor('spokesync', 'apply'), 'spokesync:spokesync:apply');
  const long = lockNameFor('s'.repeat(64), 'peer:' + 'p'.repeat(64));
  t.ok(long.length <= 64, `${long.length} characters`);
  t.not(long, lockNameFor('s'.repeat(64), 'peer:' + 'q'.repeat(64)), 'two long names stay apart');
  t.equal(long, lockNameFor('s'.repeat(64), 'peer:' + 'p'.repeat(64)), 'and are the same in every process');
});
