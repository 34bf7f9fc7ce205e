// The one catalogue of spokesync errors. Every error has a stable code, a message
// that says what happened (never a secret or a row value) and the fix. Match on
// `code`, never on message text. The `cause` is always kept.

export interface ErrorSpec {
  /** exit status of the CLI when this error ends a command: 1 failure, 2 usage/config */
  readonly exit: 1 | 2;
  /** what to do about it */
  readonly fix: string;
}

export const catalogue = {
  // --- config and command line (exit 2) ---
  SPOKESYNC_E_CONFIG: { exit: 2, fix: 'Correct the named keys in the config file; `spokesync help config` lists every key with its default.' },
  SPOKESYNC_E_CONFIG_ENV: { exit: 2, fix: 'Set the environment variable named in the message, or write the value into the config.' },
  SPOKESYNC_E_USAGE: { exit: 2, fix: 'Run `spokesync --help` or `spokesync <command> --help`.' },

  // --- server and schema (exit 1) ---
  SPOKESYNC_E_DB_CONNECT: { exit: 1, fix: 'Check database.host, port, user and password, and that the server is running.' },
  SPOKESYNC_E_PREFLIGHT: { exit: 1, fix: 'Run `spokesync check --config F` and apply the fixes it lists (see mysql-conf/).' },
  SPOKESYNC_E_NO_IDENTITY: { exit: 1, fix: 'Give the table a uuid column or a primary/unique key, exclude it, or set tables.keys.<table> in the config.' },
  SPOKESYNC_E_UNKNOWN_TABLE: { exit: 1, fix: 'Only tables of the application schema that this node syncs can appear in a change set.' },
  SPOKESYNC_E_UNKNOWN_COLUMN: { exit: 1, fix: 'The schemas of the two nodes differ: bring them to the same version before syncing.' },

  // --- capture ---
  SPOKESYNC_E_BINLOG_PURGED: { exit: 1, fix: 'The binlog at the checkpoint was purged before it was captured: raise binlog_expire_logs_seconds and re-provision this node (`spokesync clone`).' },
  SPOKESYNC_E_BINLOG_ROW: { exit: 1, fix: 'A row image in the binlog does not fit its event or its table map; capture restarts from its last checkpoint, nothing is lost. If it repeats at the same position, report it with the binlog file and position from the log.' },
  SPOKESYNC_E_CAPTURE: { exit: 1, fix: 'See the cause; capture restarts from its last checkpoint, nothing is lost.' },
  SPOKESYNC_E_JOURNAL_DUPLICATE: { exit: 1, fix: 'A change set captured now has an id the journal already holds (the state schema was restored or copied from another node, or the clock went back past a stamp): nothing after it is journaled until that row is gone; restore the state schema that belongs to this node, or re-provision it (`spokesync clone`).' },
  SPOKESYNC_E_SCHEMA_CHANGED: { exit: 1, fix: 'A synced table was altered: apply the same DDL on every node, then restart.' },
  SPOKESYNC_E_RESTORE_CLOCK: { exit: 1, fix: 'This node was restored from a backup, but the clock of its database server is earlier than the moment the backup was taken: set the clock right (and the server\'s time zone), then start spokesync again. Nothing was changed; new changes stamped by a clock that far behind could take the ids of changes lost with the disk.' },
  SPOKESYNC_E_STATE_NEWER: { exit: 1, fix: 'The state schema was written by a newer spokesync (a newer release ran on this node, or the state was restored from one): install that release or a newer one on this node, then start it again. Nothing was written to the state; an older spokesync could misread or undo what the newer one keeps there.' },
  SPOKESYNC_E_JOURNAL_BODY: { exit: 1, fix: 'A journal row cannot be read: restore the state schema from a backup, or re-provision this node from its parent (`spokesync clone`).' },

  // --- wire format ---
  SPOKESYNC_E_XML: { exit: 1, fix: 'The batch is not well-formed spokesync XML; nothing from it was applied. Resend it.' },
  SPOKESYNC_E_XML_DTD: { exit: 1, fix: 'Batches never carry a DTD or entities; the sender is not spokesync or is hostile.' },
  SPOKESYNC_E_BATCH_TOO_LARGE: { exit: 1, fix: 'Lower parent.batch.records / parent.batch.bytes on the sender, or raise the receiver\'s limits.' },
  SPOKESYNC_E_OVERLOADED: { exit: 1, fix: 'The receiver is holding as many decoded batches as its memory allows; nothing was applied. The daemon sends it again at its next exchange; after `spokesync sync`, run it again.' },

  // --- apply ---
  SPOKESYNC_E_APPLY: { exit: 1, fix: 'See the cause; the change set was rolled back whole and will be retried.' },
  SPOKESYNC_E_BAD_CHANGE: { exit: 1, fix: 'The batch carries a malformed change set (id, identity or value); nothing from it was applied. The sender is not spokesync or runs an incompatible version.' },
  SPOKESYNC_E_ROW_CHANGED: { exit: 1, fix: 'The row changed here since the conflict (shown above): look at it again with `spokesync conflicts --config F`; to write the side taken over those changes, repeat with --force.' },
  SPOKESYNC_E_QUARANTINED: { exit: 1, fix: 'See `spokesync status`; quarantined change sets are retried on every exchange.' },

  // --- exchange and USB ---
  SPOKESYNC_E_AUTH: { exit: 1, fix: 'The token does not match: the child\'s parent.token must be the token its parent lists for it in children[].token (the parent\'s log names the child and its address).' },
  SPOKESYNC_E_PEER: { exit: 1, fix: 'The batch names a sender or receiver that is not this node\'s peer.' },
  SPOKESYNC_E_HTTP: { exit: 1, fix: 'The parent could not be reached or answered with an error (the message names the URL tried): check that it runs and that this machine reaches it. The daemon tries again every parent.interval; `spokesync sync` does not: run it again.' },
  SPOKESYNC_E_USB_FILE: { exit: 1, fix: 'The file is damaged, truncated, tampered with, or meant for another node: export it again.' },
  SPOKESYNC_E_PENDING: { exit: 1, fix: 'Changes are still pending; run `spokesync sync` again or look at `spokesync status`.' },
  SPOKESYNC_E_ORIGIN: { exit: 1, fix: 'A peer may send only change sets of the nodes it stands for (a child: itself and the nodes below it). Nothing of the batch was applied and the sender keeps it. If the tree was changed on purpose (a node moved under another parent), delete that origin\'s row from the `origins` table of this node\'s state schema; otherwise the sender\'s token may be in the wrong hands: give it a new one.' },
  SPOKESYNC_E_CHANGE_ID: { exit: 1, fix: 'A change set id must be `origin:stamp`, and an id applied here before must come again with the same content: one of the two is forged. Nothing of the batch was applied and the sender keeps it. Find the sender in the log, check who holds its token, and compare the two versions before releasing anything.' },
  SPOKESYNC_E_ACK: { exit: 1, fix: 'The peer acknowledges journal entries this node never sent it (its state schema was restored from elsewhere, or someone sent batches with its token); no cursor moved. Check who holds the token; the peer acknowledges correctly again once it has taken a batch of this node\'s changes.' },
  SPOKESYNC_E_BUSY: { exit: 1, fix: 'Another spokesync process (usually the daemon, `spokesync run`) is using this node: stop it first, or wait for it to finish. A daemon that lost the node lock to another process (see `spokesync status`) captures and applies nothing until it has taken it again.' },

  // --- provisioning ---
  SPOKESYNC_E_NOT_EMPTY: { exit: 1, fix: 'The application schema already has tables: clone into an empty schema, or pass --force to replace it.' },
  SPOKESYNC_E_WOULD_LOSE: { exit: 1, fix: 'The command would make a site miss change sets or throw away changes not yet sent. Send them first (`spokesync sync`, or `spokesync export` for USB), or, when that loss is intended (re-provisioning a site), repeat the command with the flag the message names (--force, --discard-local): the loss is recorded and shown by `spokesync status`.' },
  SPOKESYNC_E_SNAPSHOT: { exit: 1, fix: 'The snapshot file is damaged or from another network: make a new one with `spokesync snapshot`.' },
  SPOKESYNC_E_JOIN: { exit: 1, fix: '`spokesync join` is for a site that has never exchanged with its parent, never cloned, with the same schema: make the schemas and the table lists match, or, for a site that already syncs, compare with `spokesync verify` and fix with `spokesync repair`. An interrupted join is finished by running `spokesync join` again.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof catalogue;

export class SpokesyncError extends Error {
  readonly code: ErrorCode;
  readonly fix: string;
  readonly exit: 1 | 2;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; fix?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpokesyncError';
    this.code = code;
    this.fix = options?.fix ?? catalogue[code].fix;
    this.exit = catalogue[code].exit;
  }
}

export function isSpokesyncError(e: unknown, code?: ErrorCode): e is SpokesyncError {
  return e instanceof SpokesyncError && (code === undefined || e.code === code);
}
