// Checks of the application schema and the tables the config selects. Pure.
import { nearest } from '../config/yaml-reader.js';
import { filterTables, isGlob, syncedTables, unmatchedPatterns } from '../config/tables.js';
import type { Config } from '../config/types.js';
import { catalogue } from '../../apply/core/errors.js';
import type { Facts } from './facts.js';
import { error, warning, type Problem } from './problem.js';

export function tableProblems(facts: Facts, config: Config): Problem[] {
  const { schema } = config.database;
  const cat = facts.catalog;
  if (!facts.schemaExists || !cat) {
    return [error('schema', `the application schema ${schema} does not exist (or ${facts.currentUser} may not see it)`,
      `correct database.schema in ${config.file}, or grant the user access to ${schema} (see mysql-conf/grants.sql)`, schema)];
  }
  const out: Problem[] = [];
  const names = [...cat.tables.keys()];
  const hint = (name: string): string => {
    const near = nearest(name, names);
    return near ? ` (did you mean ${near}?)` : '';
  };

  for (const p of unmatchedPatterns(config.tables.include, names)) {
    if (isGlob(p)) {
      out.push(warning('tables.include', `tables.include: ${p} matches no table of schema ${schema}`, 'correct or remove the glob in tables.include', p));
    } else {
      out.push(error('tables.include', `tables.include names ${p}, which is not a table of schema ${schema}${hint(p)}`,
        'correct the name in tables.include or remove it', p));
    }
  }
  for (const p of unmatchedPatterns(config.tables.exclude, names)) {
    out.push(warning('tables.exclude', `tables.exclude: ${p} matches no table of schema ${schema}${isGlob(p) ? '' : hint(p)}`,
      'correct or remove it in tables.exclude', p));
  }

  const synced = syncedTables(config, cat);
  if (synced.length === 0) {
    out.push(error('tables', `tables.include and tables.exclude select no table of schema ${schema}`, 'name the tables to sync in tables.include'));
  }
  const syncedSet = new Set(synced);
  for (const [key, map] of [['tables.keys', config.tables.keys], ['tables.direction', config.tables.direction]] as const) {
    for (const table of Object.keys(map)) {
      if (!syncedSet.has(table)) {
        out.push(warning(key, `${key}.${table}: ${table} is not a synced table${cat.tables.has(table) ? '' : ` of schema ${schema}${hint(table)}`}`,
          `remove ${key}.${table}, or include the table`, table));
      }
    }
  }
  config.children.forEach((c, i) => {
    if (!c.tables) return;
    for (const p of unmatchedPatterns(c.tables.include, synced)) {
      out.push(warning('children.tables', `children[${i}].tables.include: ${p} matches no synced table`, `correct it, or add the table to tables.include`, p));
    }
    if (filterTables(synced, c.tables).length === 0) {
      out.push(warning('children.tables', `children[${i}] (${c.id}) receives no table`, `correct children[${i}].tables`, c.id));
    }
  });

  for (const name of synced) {
    const t = cat.table(name);
    if (t.engine.toLowerCase() !== 'innodb') {
      out.push(error('table.engine', `table ${name} uses ${t.engine || 'no storage engine (a view?)'}, not InnoDB: its changes are not transactional and cannot sync safely`,
        `ALTER TABLE \`${schema}\`.\`${name}\` ENGINE=InnoDB, or exclude it in tables.exclude`, name));
    }
    if (!t.identity) {
      out.push(error('table.identity', t.identityProblem ?? `table ${name} has no usable identity`, catalogue.SPOKESYNC_E_NO_IDENTITY.fix.replace('<table>', name), name));
    }
  }
  return out;
}
