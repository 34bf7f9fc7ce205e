// `npm run demo` as a user runs it: three nodes on this machine, provisioning
// over HTTP and from a file, changes everywhere including a conflict, and
// convergence; exit 0, and nothing left behind.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const demo = fileURLToPath(new URL('../../deploy/demo.js', import.meta.url));

const demoDirs = async (): Promise<string[]> => (await readdir(tmpdir())).filter((n) => n.startsWith('spokesync-demo-'));

void t.test('the demo runs to convergence and cleans up', async (t) => {
  const before = new Set(await demoDirs());
  const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const p = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
  t.equal(r.code, 0, 'the demo exits 0', { output: r.out.slice(-4000) });
  t.match(r.out, /rwinkwavu: cloned 116 tables/, 'one child cloned over HTTP');
  t.match(r.out, /butaro: cloned 116 tables/, 'one child cloned from a file');
  t.match(r.out, /✓ Amina \(rwinkwavu\) reached butaro/, 'a child change reached the sibling');
  t.match(r.out, /conflict: every node now calls Jean "Uwimana-(Habimana|Mukamana)"/);
  // one conflict happened, whatever the number of nodes that recorded it, between the two sites that wrote
  t.match(r.out, /\n.* 1 conflict happened: person_name of Jean, (rwinkwavu's edit against butaro's|butaro's edit against rwinkwavu's); (rwinkwavu|butaro)'s is newer and won\n/);
  t.match(r.out, /recorded by each node that met it: kigali [12], rwinkwavu [01], butaro [01]/);
  t.match(r.out, /✓ all three nodes hold the same rows: encounter 4, obs 4, patient 4, patient_identifier 4, person 5/);
  const seconds = Number(/done in ([\d.]+) s/.exec(r.out)?.[1] ?? NaN);
  t.ok(seconds < 120, `well under two minutes (${seconds} s)`);
  t.same((await demoDirs()).filter((d) => !before.has(d)), [], 'its directory is removed');
});
