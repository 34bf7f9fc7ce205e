// `spokesync run`: the daemon. It waits for a database that is not up yet
// (agent/start-wait.ts). Capture runs all the time; children are served
// when `listen` is set; the parent is synced every parent.interval when
// `parent` is set; quarantined change sets are retried on every tick. SIGTERM
// stops cleanly: the batch in flight finishes, requests in flight finish, capture stops.
// While the node lock is lost (agent/node-lock.ts) the daemon neither captures nor applies.
import type { CommandSpec } from '../cli/command.js';
import { DAEMON_HEAP_FLAGS, missingHeapFlags } from '../cli/heap-flags.js';
import { realSleep } from '../backoff.js';
import { isSpokesyncError } from '../../apply/core/errors.js';
import type { Logger } from '../../apply/core/log.js';
import type { Config } from '../config/types.js';
import { SpokesyncNode } from '../node.js';
import { startWhenUp } from '../start-wait.js';

/** how often a node without a parent retries its quarantine */
const QUARANTINE_TICK_MS = 60_000;

export const command: CommandSpec = {
  name: 'run',
  summary: 'The daemon: capture, serve children, sync with the parent every interval',
  description:
    'Runs until SIGTERM or SIGINT. A database that is not up yet (refused, unreachable, starting, shutting down) is ' +
    'waited for: tried again after 1 s, 2 s, 4 s and so on, then every 60 s, each try logged at warn; errors that ' +
    'waiting cannot fix (a refused login, a failed preflight, a state schema of a newer spokesync) end it with exit 1. ' +
    'A parent that cannot be reached never stops the daemon either: each exchange retries (parent.maxTries), then the ' +
    'next one starts after parent.interval. Capture tails the binlog into the journal; with `listen` the node ' +
    'serves its children (POST /v1/exchange); with `parent` it exchanges with the parent at start and ' +
    'then every parent.interval (a failed exchange is logged and tried again at the next interval). ' +
    'Quarantined change sets are retried on every tick. GET /health answers 200 while the database answers and ' +
    'capture runs (503 with the reason otherwise); with admin.token, GET /status.json shows this node and every node ' +
    'below it, on listen or on admin.listen. The first signal stops cleanly (the batch in ' +
    'flight is finished); a second one exits at once. Logs are JSON lines on stdout.\n\n' +
    'One process per node: the daemon holds the node lock (a named lock on its database server) and checks it every ' +
    'two seconds. When the server drops it (a restart of MariaDB), the daemon takes it again; while another process ' +
    'holds it, the daemon captures nothing, applies nothing (children get 503 SPOKESYNC_E_BUSY and send again later), ' +
    'does not exchange with its parent, logs "node lock lost" and shows it in `spokesync status`; it resumes by itself ' +
    'once it holds the lock again.',
  options: {},
  needsConfig: true,
  logTo: 'stdout',
  async run(ctx) {
    const { config, log, signal } = ctx;
    const missing = missingHeapFlags(process.execArgv, process.env.NODE_OPTIONS);
    if (missing.length > 0) {
      log.warn("node runs without the daemon's heap flags: on a large capture backlog memory can grow to about twice as much", {
        missing, fix: `NODE_OPTIONS="${DAEMON_HEAP_FLAGS.join(' ')}" (deploy/spokesync.service sets it)`,
      });
    }
    const { host, port } = config.database;
    let node: SpokesyncNode;
    try {
      node = await startWhenUp(() => openCapturing(config, log), { log, signal, address: `${host}:${port}`, dispose: (n) => n.close() });
    } catch (e) {
      if (!signal.aborted) throw e;
      log.info('stopping (the database was not up yet)');
      return 0;
    }
    try {
      await node.startServer();
      const interval = config.parent?.interval ?? QUARANTINE_TICK_MS;
      const admin = config.admin?.listen ?? config.listen;
      log.info('running', {
        listen: config.listen ? `${config.listen.host}:${config.listen.port}` : null, parent: config.parent?.url ?? null,
        admin: admin ? `${admin.host}:${admin.port}` : null, statusJson: config.admin?.token !== undefined,
      });
      while (!signal.aborted) {
        const fatal = node.fatal();
        if (fatal) throw fatal;
        try {
          // without the node lock nothing is exchanged or applied (the lock's log says so); tried at the next tick
          if (!node.lockHeld()) log.debug('node lock not held: no exchange this time');
          else if (config.parent) await node.syncWithParent(signal);
          else await node.applier.retryQuarantine();
        } catch (e) {
          log.warn('exchange failed; trying again at the next interval', {
            code: isSpokesyncError(e) ? e.code : undefined, error: (e as Error).message,
          });
        }
        await realSleep(interval, signal).catch(() => undefined);
      }
      log.info('stopping');
      return 0;
    } finally {
      await node.close();
    }
  },
};

/** The node opened with capture started; closed again when that fails. */
async function openCapturing(config: Config, log: Logger): Promise<SpokesyncNode> {
  const node = await SpokesyncNode.open(config, log);
  try {
    await node.beginCapture();
    return node;
  } catch (e) {
    await node.close().catch(() => undefined);
    throw e;
  }
}
