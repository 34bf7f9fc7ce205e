// Random faults at a given mean rate: kill -9 of a daemon (restarted a few
// seconds later), kill -9 of a node's mariadbd (restarted at once on the same
// datadir), a link cut mid-stream (after a random number of bytes, either
// direction), a link stalled (open but silent, longer or shorter than the
// exchange timeout) and a link down (every connection dropped). heal() ends
// them all and brings everything back up.
import type { Rng } from './rng.js';
import { sleep } from './rng.js';
import type { Site } from './tree.js';

export const FAULT_KINDS = ['daemon-kill', 'db-crash', 'link-cut', 'link-stall', 'link-down'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultEvent {
  readonly at: number;
  readonly kind: FaultKind;
  readonly node: string;
  readonly detail: string;
}

export class Faults {
  readonly events: FaultEvent[] = [];
  private readonly tasks = new Set<Promise<void>>();
  private readonly busy = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly sites: readonly Site[],
    private readonly rng: Rng,
    /** mean faults per minute */
    private readonly perMinute: number,
    private readonly say: (line: string) => void,
    private readonly kinds: readonly FaultKind[] = FAULT_KINDS,
  ) {}

  /** Injects faults until stop() or `untilMs` (epoch ms). */
  start(untilMs: number): void {
    this.loop ??= (async () => {
      for (let n = 0; n < 100_000 && !this.stopped; n++) {
        const wait = this.rng.exp(60_000 / Math.max(0.01, this.perMinute));
        const left = untilMs - Date.now();
        if (wait >= left) { await this.until(untilMs); break; }
        await this.until(Date.now() + wait);
        if (this.stopped) break;
        this.inject();
      }
    })();
  }

  private async until(at: number): Promise<void> {
    while (!this.stopped && Date.now() < at) await sleep(Math.min(250, at - Date.now()));
  }

  private track(key: string, p: Promise<void>): void {
    this.busy.add(key);
    const t = p.catch((e: unknown) => this.say(`fault on ${key} failed: ${(e as Error).message}`)).finally(() => {
      this.busy.delete(key);
      this.tasks.delete(t);
    });
    this.tasks.add(t);
  }

  private inject(): void {
    const kind = this.rng.pick(this.kinds);
    const isLink = kind.startsWith('link');
    const candidates = this.sites.filter((s) => (isLink ? s.link !== undefined : true) && !this.busy.has(`${isLink ? 'link' : 'node'}:${s.id}`));
    if (candidates.length === 0) return;
    const site = this.rng.pick(candidates);
    const record = (detail: string): void => {
      this.events.push({ at: Date.now(), kind, node: site.id, detail });
    };
    switch (kind) {
      case 'daemon-kill': {
        const down = this.rng.int(300, 6000);
        record(`down ${down} ms`);
        this.track(`node:${site.id}`, (async () => {
          await site.daemon.kill9();
          await sleep(down);
          if (!this.stopped) site.daemon.start();
        })());
        break;
      }
      case 'db-crash':
        record('kill -9 mariadbd, restart');
        this.track(`node:${site.id}`, site.server.crashAndRestart());
        break;
      case 'link-cut': {
        const direction = this.rng.chance(0.5) ? 'up' : 'down';
        const afterBytes = this.rng.int(1, 40_000);
        record(`${direction} after ${afterBytes} bytes`);
        site.link!.cutNext({ direction, afterBytes });
        break;
      }
      case 'link-stall': {
        const ms = this.rng.int(1000, 15_000);
        record(`${ms} ms`);
        site.link!.set({ stalled: true });
        this.track(`link:${site.id}`, this.until(Date.now() + ms).then(() => site.link!.set({ stalled: false })));
        break;
      }
      case 'link-down': {
        const ms = this.rng.int(1000, 10_000);
        record(`${ms} ms`);
        site.link!.set({ dropRate: 1 });
        site.link!.cutAll();
        this.track(`link:${site.id}`, this.until(Date.now() + ms).then(() => site.link!.set({ dropRate: 0 })));
        break;
      }
    }
  }

  /** Stops injecting, waits for faults in progress, heals every link and starts every daemon that is down. */
  async heal(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.tasks]);
    for (const s of this.sites) {
      s.link?.cancelCuts();
      s.link?.set({ stalled: false, dropRate: 0 });
      s.daemon.start();
    }
  }

  counts(): Record<FaultKind, number> {
    const c = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    for (const e of this.events) c[e.kind]++;
    return c;
  }
}
