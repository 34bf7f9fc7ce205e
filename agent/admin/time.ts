// Times as people and programs read them: the state schema keeps UTC
// DATETIME(6) text without a zone; JSON gets ISO 8601 with Z, people get the
// local time with its offset and how long ago it was.

/** ISO 8601 (UTC, with Z) of a DATETIME value the state schema holds in UTC; null stays null. */
export function isoOf(db: string | null | undefined): string | null {
  if (db === null || db === undefined || db === '') return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,6})?/.exec(db);
  if (!m) return null;
  const ms = (m[3] ?? '.000').slice(0, 4).padEnd(4, '0');
  return `${m[1]}T${m[2]}${ms}Z`;
}

/** `2026-05-01 14:03:07 +02:00`: the local time of an ISO time, with this machine's offset then. */
export function localTime(iso: string, zoneOffsetMin?: number): string {
  const d = new Date(iso);
  const off = zoneOffsetMin ?? -d.getTimezoneOffset();
  const local = new Date(d.getTime() + off * 60_000);
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local.toISOString().slice(0, 19).replace('T', ' ')} ${zone}`;
}

/** How long ago, in the largest whole unit: `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 days ago` (`in …` ahead). */
export function ago(iso: string, nowMs: number = Date.now()): string {
  const diff = nowMs - Date.parse(iso);
  const ahead = diff < 0;
  const s = Math.floor(Math.abs(diff) / 1000);
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : s < 86_400 ? `${Math.floor(s / 3600)} h`
    : `${Math.floor(s / 86_400)} day${Math.floor(s / 86_400) === 1 ? '' : 's'}`;
  if (s < 2) return 'just now';
  return ahead ? `in ${text}` : `${text} ago`;
}

/** A stored UTC time for people: local time with offset and how long ago, or `never`. */
export function whenText(db: string | null | undefined, nowMs: number = Date.now()): string {
  const iso = isoOf(db);
  return iso === null ? 'never' : `${localTime(iso)} (${ago(iso, nowMs)})`;
}
