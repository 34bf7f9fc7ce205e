// Snapshot files are sealed like USB files (agent/usb/usb-file.ts, kind
// SNAPSHOT_FILE): the snapshot's gzip bytes in chunks of AES-256-GCM under a key
// from HKDF over the token the parent lists for the child under children (the
// child's parent.token), direction parent → child. A lost stick shows nothing
// but the two node ids; a changed, cut or foreign file does not open.
//
// A regular file is read twice on the child: pass one authenticates every chunk
// and nothing is dropped or loaded before it has; pass two loads it and
// authenticates every chunk again as it goes (the file could change between the
// passes). A pipe or device can be read only once: it is loaded as it is
// authenticated, and a chunk that fails stops the load (cloneSnapshot then
// empties the application schema again). The HTTP body is not sealed: TLS
// protects it.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { SpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import { open, seal, SNAPSHOT_FILE, type UsbHeader } from '../usb/usb-file.js';

/** Who seals a snapshot file for whom: the parent's node id, the child's id, the child's token. */
export interface SealFor {
  readonly sender: string;
  readonly receiver: string;
  readonly secret: string;
  /** plaintext bytes per chunk (default that of USB files, 64 KiB) */
  readonly chunkSize?: number;
}

/** Who opens one: this node's id and its parent.token. */
export interface OpenAs {
  readonly node: string;
  readonly token: string;
}

/** A pipeline stage: gzip bytes in, the sealed file out (header first). */
export function sealer(s: SealFor): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return (source) => seal(source, {
    sender: s.sender, receiver: s.receiver, secret: s.secret, kind: SNAPSHOT_FILE,
    ...(s.chunkSize === undefined ? {} : { chunkSize: s.chunkSize }),
  });
}

function secretFor(as: OpenAs): (h: UsbHeader) => string {
  return (h) => {
    if (h.receiver !== as.node) {
      throw new SpokesyncError('SPOKESYNC_E_SNAPSHOT', `the snapshot file was made for node ${h.receiver}, not for ${as.node}`, {
        fix: `Make a snapshot for this node on the parent: spokesync snapshot --config F --peer ${as.node} --out FILE.`,
      });
    }
    return as.token;
  };
}

/**
 * The gzip bytes inside a sealed snapshot stream, each chunk passed on only
 * once it has authenticated; a chunk that does not fails the stream with
 * SPOKESYNC_E_SNAPSHOT. `source` is destroyed when the stream ends or fails.
 */
export function unsealed(source: Readable, as: OpenAs): Readable {
  async function* plain(): AsyncGenerator<Buffer> {
    try {
      for await (const item of open(source, secretFor(as), SNAPSHOT_FILE)) {
        if (item.type === 'data') yield item.data;
      }
    } finally {
      source.destroy();
    }
  }
  return Readable.from(plain(), { objectMode: false });
}

/** Pass one: authenticates all of a sealed snapshot file; resolves with its header. */
export async function verifySnapshotFile(path: string, as: OpenAs, signal?: AbortSignal): Promise<UsbHeader & { bytes: number }> {
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  let header: UsbHeader | undefined;
  let bytes = 0;
  try {
    for await (const item of open(source, secretFor(as), SNAPSHOT_FILE)) {
      if (signal?.aborted) throw new SpokesyncError('SPOKESYNC_E_SNAPSHOT', 'stopped by a signal');
      if (item.type === 'header') header = item.header;
      else bytes += item.data.length;
    }
  } finally {
    source.destroy();
  }
  if (!header) throw SNAPSHOT_FILE.error('the snapshot file has no header');
  return { ...header, bytes };
}

/**
 * Opens a sealed snapshot file for cloneSnapshot: a regular file is
 * authenticated whole first (pass one), then its gzip bytes are returned as a
 * stream that authenticates each chunk again as it is read (pass two).
 */
export async function openSnapshotFile(
  path: string, as: OpenAs, opts: { log?: Logger; signal?: AbortSignal } = {},
): Promise<Readable> {
  const { log, signal } = opts;
  if ((await stat(path)).isFile()) {
    const started = Date.now();
    const h = await verifySnapshotFile(path, as, signal);
    log?.info('snapshot file authenticated', { from: h.sender, compressedBytes: h.bytes, seconds: (Date.now() - started) / 1000 });
  } else {
    log?.info('the snapshot is not a regular file: it is authenticated chunk by chunk as it loads');
  }
  return unsealed(createReadStream(path, { highWaterMark: 1 << 20 }), as);
}
