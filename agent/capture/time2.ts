// TIME values as the binlog stores them (TIME2), decoded exactly into the text
// SELECT returns. The stored bytes are one big-endian number offset by half its
// range; less the offset it is the signed packed time: hours, minutes and
// seconds (10, 6 and 6 bits) above the fraction (1, 2 or 3 bytes, by fsp). A
// negative time is the whole packed value negated, its fraction included.

/** The size in bytes of a TIME2 value of `fsp` fractional digits. */
export function time2Size(fsp: number): number {
  return 3 + Math.ceil(fsp / 2);
}

/** The text of the TIME2 value of `fsp` digits (0..6) at `at` in `b` (the caller checked it lies within). */
export function time2Text(b: Buffer, at: number, fsp: number): string {
  const fracBytes = Math.ceil(fsp / 2);
  const size = 3 + fracBytes;
  // at most 48 bits: exact as a double
  const v = b.readUIntBE(at, size) - 2 ** (size * 8 - 1);
  const abs = Math.abs(v);
  const scale = 2 ** (fracBytes * 8);
  const hms = Math.floor(abs / scale);
  const frac = abs - hms * scale;
  const hours = hms >>> 12;
  const text = `${v < 0 ? '-' : ''}${hours < 10 ? '0' : ''}${hours}:${PAD2[(hms >>> 6) & 63]}:${PAD2[hms & 63]}`;
  if (fsp === 0) return text;
  // the stored fraction has an even number of digits: an odd fsp keeps one more, always 0
  return `${text}.${String(frac).padStart(fracBytes * 2, '0').slice(0, fsp)}`;
}

const PAD2 = Array.from({ length: 64 }, (_, i) => String(i).padStart(2, '0'));
