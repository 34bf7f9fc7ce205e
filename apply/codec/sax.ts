// The one place that configures saxes for spokesync: XML 1.0 only, UTF-8 only,
// no DOCTYPE, no entities beyond the five predefined ones, no processing
// instructions. saxes never expands external entities and has no DTD
// processor; on top of that any DOCTYPE, and any reference to a
// non-predefined entity, is rejected with SPOKESYNC_E_XML_DTD, so neither XXE
// nor entity expansion ("billion laughs") can happen.
//
// saxes rather than xmlbuilder2's parser: it streams (no DOM, flat memory) and
// is much faster (test/bench/codec.ts compares them).
//
// Namespace handling is done here, not by saxes' xmlns mode (which costs time
// per attribute): the format uses the default namespace only, so an element
// or attribute name with a prefix is simply unknown, and every xmlns
// attribute must name urn:spokesync:batch:1.

import { SaxesParser } from 'saxes';
import { SpokesyncError, isSpokesyncError } from '../core/errors.js';
import type { Attrs } from './cs-builder.js';
import { MAX_ATTRIBUTES, TagGuard } from './decode-limits.js';
import { xmlError } from './xml-text.js';

export interface XmlSink {
  open(name: string, attrs: Attrs): void;
  text(t: string): void;
  close(name: string): void;
}

export interface Parser {
  /** Push the next piece of the document; throws SpokesyncError on the first problem. */
  write(chunk: string): void;
  /** The document is complete; throws when it is truncated. */
  close(): void;
}

const PREDEFINED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
/** Roughly XML's Name production: enough to tell an entity reference from junk. */
const ENTITY_NAME = /^[\p{L}_:][\p{L}\p{M}\p{N}_:.\u00B7\u203F\u2040-]*$/u;

const MARKUP_DECL = /<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;

export function dtdError(what: string): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_XML_DTD', `${what} is not allowed in a spokesync batch`);
}

export function createParser(sink: XmlSink, fragment: boolean): Parser {
  const p = new SaxesParser({ fragment, position: true, defaultXMLVersion: '1.0', forceXMLVersion: true });
  // Only the predefined entities resolve; a named reference to anything else
  // is a DTD feature and is refused before saxes can report it as undefined.
  p.ENTITIES = new Proxy(PREDEFINED as Record<string, string>, {
    get(target, key) {
      if (typeof key !== 'string') return undefined;
      if (Object.hasOwn(target, key)) return target[key];
      if (ENTITY_NAME.test(key)) throw dtdError('an entity reference other than &amp; &lt; &gt; &quot; &apos;');
      return undefined;
    },
  });
  const positioned = new WeakSet<object>();
  // the input around the error, to tell a misplaced markup declaration from other junk
  let before = '';
  let current = '';
  p.on('error', (err) => {
    // saxes reports a DOCTYPE anywhere but the prolog (always, in a fragment) as an
    // error, and <!ENTITY …> and friends outside a DOCTYPE as "incorrect syntax"
    const dtd = /doctype/i.test(err.message) || MARKUP_DECL.test(before + current);
    const e = dtd ? dtdError('a DOCTYPE or markup declaration') : xmlError(`malformed XML: ${err.message}`, err);
    positioned.add(e);
    throw e;
  });
  p.on('doctype', () => {
    throw dtdError('a DOCTYPE');
  });
  p.on('xmldecl', (d) => {
    if (d.version !== '1.0') throw xmlError('only XML version 1.0 is accepted');
    if (d.encoding !== undefined && !/^utf-8$/i.test(d.encoding)) throw xmlError('only UTF-8 encoding is accepted');
  });
  p.on('processinginstruction', () => {
    throw xmlError('processing instructions are not part of the format');
  });
  // saxes collects a whole tag before reporting it: attributes are counted as they are read
  let attributes = 0;
  p.on('opentagstart', () => {
    attributes = 0;
  });
  p.on('attribute', () => {
    if (++attributes > MAX_ATTRIBUTES) throw xmlError(`an element with more than ${MAX_ATTRIBUTES} attributes`);
  });
  p.on('opentag', (tag) => sink.open(tag.name, tag.attributes as Attrs));
  p.on('text', (t) => sink.text(t));
  p.on('cdata', (t) => sink.text(t));
  p.on('closetag', (tag) => sink.close(tag.name));

  const located = (e: unknown): unknown => {
    if (isSpokesyncError(e) && !positioned.has(e)) {
      e.message += ` (line ${p.line}, column ${p.column})`;
    }
    return e;
  };
  const guard = new TagGuard();
  return {
    write(chunk) {
      before = current.slice(-16);
      current = chunk;
      try {
        guard.feed(chunk);
        p.write(chunk);
      } catch (e) {
        throw located(e);
      }
    },
    close() {
      before = current.slice(-16);
      current = '';
      try {
        p.close();
      } catch (e) {
        throw located(e);
      }
    },
  };
}
