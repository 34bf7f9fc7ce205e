// Identity strings: how a row is named across the network. A uuid table's row is
// its uuid; a shared-key row is the referenced row's identity; a natural key is
// its tuple of parts (foreign-key parts already translated to identities).
// One part travels as itself; several travel as a JSON array of strings.

export function encodeIdentity(parts: readonly string[]): string {
  if (parts.length === 1 && !parts[0]!.startsWith('[')) return parts[0]!;
  return JSON.stringify(parts);
}

export function decodeIdentity(id: string, expectedParts: number): string[] {
  if (expectedParts === 1 && !id.startsWith('[')) return [id];
  let parsed: unknown;
  try {
    parsed = JSON.parse(id);
  } catch {
    throw new Error(`identity is not a key tuple`);
  }
  if (!Array.isArray(parsed) || parsed.length !== expectedParts || !parsed.every((p) => typeof p === 'string')) {
    throw new Error(`identity should have ${expectedParts} parts`);
  }
  return parsed as string[];
}
