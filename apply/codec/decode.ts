// One <cs> fragment (a journal body) → ChangeSet. Strict: exactly one <cs>
// element, nothing but whitespace around it, every element and attribute known.

import type { ChangeSet } from '../core/model.js';
import { ChangeSetBuilder, type Attrs } from './cs-builder.js';
import { tooMany } from './decode-limits.js';
import { createParser } from './sax.js';
import { decodeUtf8, xmlError } from './xml-text.js';

/** `maxElements`: most elements accepted (none by default: journal bodies were written by this node's capture). */
export function decodeChangeSet(xml: string | Buffer, limits: { maxElements?: number } = {}): ChangeSet {
  const text = typeof xml === 'string' ? xml : decodeUtf8(xml, 'change set');
  const b = new ChangeSetBuilder();
  const maxElements = limits.maxElements ?? Infinity;
  let elements = 0;
  let result: ChangeSet | undefined;
  const parser = createParser(
    {
      open(name: string, attrs: Attrs) {
        if (result !== undefined) throw xmlError('more than one element in a change set fragment');
        if (++elements > maxElements) throw tooMany('elements', maxElements);
        b.open(name, attrs);
      },
      text(t: string) {
        b.text(t);
      },
      close() {
        const cs = b.close();
        if (cs !== undefined) result = cs;
      },
    },
    true,
  );
  parser.write(text);
  parser.close();
  if (result === undefined) throw xmlError('no <cs> element in change set fragment');
  return result;
}
