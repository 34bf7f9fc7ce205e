// The origins of the change sets a parent makes for one filtered child when
// membership changes (fill.ts): `<node>--fill` (rows that came to belong) and
// `<node>--leave` (deletes of rows that stopped belonging). Pure.

export type FillKind = 'fill' | 'leave';

/** The origin of the fill or leave change sets of `node` (an origin has at most 64 characters). */
export function fillOrigin(node: string, kind: FillKind): string {
  return `${node.slice(0, 57)}--${kind}`;
}

/** A fill or leave change set: its rows already have their versions where it was made. */
export function isFillOrigin(origin: string): boolean {
  return origin.endsWith('--fill') || origin.endsWith('--leave');
}

/** A leave applied here goes no further: its deletes were for this node alone. */
export function isLeaveOrigin(origin: string): boolean {
  return origin.endsWith('--leave');
}
