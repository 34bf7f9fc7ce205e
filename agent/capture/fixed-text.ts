// MariaDB's UUID, INET6 and INET4 column types: the binlog carries their 16
// or 4 bytes, a SELECT gives their text. Capture sends the text, as the server
// writes it, so that what capture sends equals what apply and snapshots read
// (old values, delete digests, identities) and any server parses it back to
// the same bytes. The rules below are the server's (checked against MariaDB
// 10.11 by test/db/capture-types on random and edge values):
//   UUID  lower-case hex, 8-4-4-4-12, the bytes in order;
//   INET4 dotted decimal;
//   INET6 lower-case hex groups without leading zeros; the longest run of zero
//         groups (the first of equal runs, even a single group) becomes '::';
//         ::ffff:a.b.c.d for IPv4-mapped addresses, and ::a.b.c.d when the
//         first 96 bits are zero and the seventh group is not.

/** Data types whose values capture turns from bytes into the server's text. */
export const FIXED_TEXT_TYPES: ReadonlySet<string> = new Set(['uuid', 'inet6', 'inet4']);

/** The text of a UUID/INET6/INET4 value from its bytes; null when the length does not fit the type. */
export function fixedText(dataType: string, b: Buffer): string | null {
  switch (dataType) {
    case 'uuid':
      return b.length === 16 ? uuidText(b) : null;
    case 'inet6':
      return b.length === 16 ? inet6Text(b) : null;
    case 'inet4':
      return b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : null;
    default:
      return null;
  }
}

function uuidText(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function inet6Text(b: Buffer): string {
  const zeroTo = (n: number): boolean => b.subarray(0, n).every((x) => x === 0);
  const v4 = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  if (zeroTo(10) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${v4}`;
  if (zeroTo(12) && (b[12] !== 0 || b[13] !== 0)) return `::${v4}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // the longest run of zero groups; the first of equal runs
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(0, 8);
  return `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}
