// Inflates each hostile body (hostile-bodies.ts) in this process, run with the
// daemon's heap flags, and prints one JSON line per body: the error code and
// the growth of the process's peak RSS. node dist/test/helpers/inflate-proc.js FILE MAX_BYTES [INDEX]
// (FILE from packBodies; INDEX: only that body, so the peak is its own).
import { readFileSync } from 'node:fs';
import { decompress } from '../../agent/exchange/compression.js';
import { isSpokesyncError } from '../../apply/core/errors.js';
import { unpackBodies } from './hostile-bodies.js';

const hwm = (): number => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) * 1024;
const all = unpackBodies(readFileSync(process.argv[2]!, 'utf8'));
const bodies = process.argv[4] === undefined ? all : [all[Number(process.argv[4])]!];
const max = Number(process.argv[3] ?? 8 * 1024 * 1024);
const base = hwm();
for (const { name, encoding, body } of bodies) {
  let code = 'none';
  try {
    decompress(body, encoding, max);
  } catch (e) {
    code = isSpokesyncError(e) ? e.code : `other: ${String(e)}`;
  }
  process.stdout.write(JSON.stringify({ name, wire: body.length, code, grown: hwm() - base }) + '\n');
}
