// Counts and lengths that bound what decoding one batch or change set can hold
// in memory, whatever the peer sends. Bytes are bounded by the receiver's
// listen.maxInflatedBytes; these bound the number of things in those bytes.
import { SpokesyncError } from '../core/errors.js';
import { xmlError } from './xml-text.js';

/** Most attributes on one element: the format has at most 7 (on <batch>). */
export const MAX_ATTRIBUTES = 16;
/** Longest start or end tag, `<` to `>`, in characters (a <i> naming every column of a 4096-column table null fits). */
export const MAX_TAG_CHARS = 1024 * 1024;
/** Most columns in one row (MariaDB's own limit per table). */
export const MAX_COLUMNS = 4096;
/** Longest table or column name, in characters (MariaDB's identifier limit). */
export const MAX_NAME_CHARS = 64;
/** Default for listen.maxElements, and for answers a child takes: elements in one batch (each costs about 250 bytes while a batch is validated and applied). */
export const DEFAULT_MAX_ELEMENTS = 100_000;

/**
 * What all the batches being read at once hold (elements, bytes of XML), in
 * one process: every child's requests draw on it until they are done, so
 * several large requests at once cannot add up past the heap.
 */
export class DecodeBudget {
  private elements = 0;
  private bytes = 0;

  constructor(readonly maxElements: number, readonly maxBytes: number) {}

  /** A request's share, counted as it is read; release() when the request is done with its batch. */
  lease(): BudgetLease {
    let elements = 0;
    let bytes = 0;
    return {
      take: (e, b) => {
        elements += e;
        bytes += b;
        this.elements += e;
        this.bytes += b;
        if (this.elements > this.maxElements || this.bytes > this.maxBytes) {
          throw new SpokesyncError('SPOKESYNC_E_OVERLOADED', 'other requests being read at the same time hold as much memory as this node allows');
        }
      },
      release: () => {
        this.elements -= elements;
        this.bytes -= bytes;
        elements = 0;
        bytes = 0;
      },
    };
  }

  get held(): { elements: number; bytes: number } {
    return { elements: this.elements, bytes: this.bytes };
  }
}

export interface BudgetLease {
  /** Counts more elements and bytes; throws SPOKESYNC_E_OVERLOADED past the shared budget. */
  take(elements: number, bytes: number): void;
  release(): void;
}

export function tooMany(what: string, max: number): SpokesyncError {
  return new SpokesyncError('SPOKESYNC_E_BATCH_TOO_LARGE', `the batch holds more than ${max} ${what}`);
}

/** A table or column name within MAX_NAME_CHARS (counted in code points, as MariaDB does). */
export function checkName(name: string, what: string): string {
  if (name.length > MAX_NAME_CHARS && [...name].length > MAX_NAME_CHARS) {
    throw xmlError(`a ${what} longer than ${MAX_NAME_CHARS} characters`);
  }
  return name;
}

const enum Scan { Text, Lt, Tag, Quoted, Bang, Comment, Cdata }

/**
 * Watches the raw text before the XML parser sees it and fails as soon as one
 * tag runs past MAX_TAG_CHARS: a parser collects a whole tag (its attributes)
 * before reporting any of it. Comments and CDATA sections are passed over
 * (their length is bounded by the body's). Needs no more state than a few characters.
 */
export class TagGuard {
  private state = Scan.Text;
  private quote = '';
  /** characters of the current tag so far */
  private tag = 0;
  /** the start of a `<!` construct or the end of a comment or CDATA section, across chunk boundaries */
  private held = '';

  constructor(private readonly maxTag = MAX_TAG_CHARS) {}

  feed(s: string): void {
    let i = 0;
    const n = s.length;
    while (i < n) {
      switch (this.state) {
        case Scan.Text: {
          const lt = s.indexOf('<', i);
          if (lt === -1) return;
          i = lt + 1;
          this.tag = 1;
          this.state = Scan.Lt;
          break;
        }
        case Scan.Lt:
          if (s[i] === '!') {
            this.state = Scan.Bang;
            this.held = '<!';
            i++;
          } else {
            this.state = Scan.Tag;
          }
          break;
        case Scan.Bang:
          // `<!--`, `<![CDATA[`, or a markup declaration (bounded like a tag); decided one character at a time
          this.held += s[i++];
          if (this.held === '<!--') this.enter(Scan.Comment);
          else if (this.held === '<![CDATA[') this.enter(Scan.Cdata);
          else if (!'<!--'.startsWith(this.held) && !'<![CDATA['.startsWith(this.held)) {
            this.tag = this.held.length - 1;
            this.held = '';
            this.state = Scan.Tag;
            i--;
          }
          break;
        case Scan.Comment:
        case Scan.Cdata: {
          const end = this.state === Scan.Comment ? '-->' : ']]>';
          const look = this.held + s.slice(i);
          const at = look.indexOf(end);
          if (at === -1) {
            this.held = look.slice(-2);
            return;
          }
          i += at + 3 - this.held.length;
          this.held = '';
          this.state = Scan.Text;
          break;
        }
        case Scan.Tag: {
          let j = i;
          while (j < n && s[j] !== '>' && s[j] !== '"' && s[j] !== "'") j++;
          this.tag += j - i;
          this.check();
          if (j === n) return;
          if (s[j] === '>') this.state = Scan.Text;
          else {
            this.quote = s[j]!;
            this.state = Scan.Quoted;
          }
          this.tag++;
          i = j + 1;
          break;
        }
        case Scan.Quoted: {
          const q = s.indexOf(this.quote, i);
          const j = q === -1 ? n : q;
          this.tag += j - i;
          this.check();
          if (q === -1) return;
          this.tag++;
          this.state = Scan.Tag;
          i = q + 1;
          break;
        }
      }
    }
  }

  private enter(state: Scan): void {
    this.state = state;
    this.held = '';
  }

  private check(): void {
    if (this.tag > this.maxTag) throw xmlError(`a tag longer than ${this.maxTag} characters`);
  }
}
