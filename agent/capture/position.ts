// A binlog position: file name and byte offset. Value object with parse,
// format and compare. Positions are only ever taken at transaction boundaries
// (the end of a commit event, or of an event outside any transaction).

export interface BinlogPosition {
  readonly file: string;
  readonly pos: number;
}

export function position(file: string, pos: number): BinlogPosition {
  if (file === '' || !Number.isSafeInteger(pos) || pos < 0) throw new Error('binlog position needs a file name and an offset');
  return { file, pos };
}

/** 'mysql-bin.000012:1234' */
export function formatPosition(p: BinlogPosition): string {
  return `${p.file}:${p.pos}`;
}

export function parsePosition(s: string): BinlogPosition {
  const i = s.lastIndexOf(':');
  if (i <= 0) throw new Error('binlog position is written file:offset');
  const pos = Number(s.slice(i + 1));
  return position(s.slice(0, i), pos);
}

/** The numeric suffix of a binlog file name ('mysql-bin.000012' → 12), or -1. */
export function fileIndex(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  return m ? Number(m[1]) : -1;
}

/** Negative when a is before b. Files order by their numeric suffix (the server's own order). */
export function comparePositions(a: BinlogPosition, b: BinlogPosition): number {
  if (a.file !== b.file) {
    const ia = fileIndex(a.file);
    const ib = fileIndex(b.file);
    if (ia !== ib) return ia - ib;
    return a.file < b.file ? -1 : 1;
  }
  return a.pos - b.pos;
}

export function samePosition(a: BinlogPosition, b: BinlogPosition): boolean {
  return a.file === b.file && a.pos === b.pos;
}
