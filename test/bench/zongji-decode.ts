// zongji alone over the events of one table between two binlog positions,
// counting rows: the capture benchmark's measure of raw decoding, both in a
// process of its own (zongji-proc.ts) and in the benchmark's process.
import ZongJi from '@vlasky/zongji';
import type { AnyBinlogEvent } from '@vlasky/zongji';

export interface DecodeRange {
  readonly port: number;
  readonly schema: string;
  readonly table: string;
  readonly start: { readonly file: string; readonly pos: number };
  readonly end: { readonly file: string; readonly pos: number };
}

/** Rows zongji decoded from `start` to the commit at or past `end`, and the wall time it took from its start. */
export async function zongjiDecode(r: DecodeRange): Promise<{ rows: number; ms: number }> {
  const z = new ZongJi({ host: '127.0.0.1', port: r.port, user: 'root', dateStrings: true, supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z' });
  let rows = 0;
  let file = r.start.file;
  const t0 = Date.now();
  try {
    await new Promise<void>((resolve, reject) => {
      z.on('error', reject);
      z.on('binlog', (ev: AnyBinlogEvent) => {
        const name = ev.getEventName();
        if (name === 'rotate') file = (ev as { binlogName: string }).binlogName;
        if (name === 'writerows') rows += (ev as { rows: unknown[] }).rows.length;
        if (name === 'xid' && file === r.end.file && ev.nextPosition >= r.end.pos) resolve();
      });
      z.start({
        serverId: 6000 + Math.floor(Math.random() * 1000), filename: r.start.file, position: r.start.pos,
        includeEvents: ['rotate', 'tablemap', 'writerows', 'xid'], includeSchema: { [r.schema]: [r.table] },
      });
    });
    return { rows, ms: Date.now() - t0 };
  } finally {
    z.stop();
  }
}
