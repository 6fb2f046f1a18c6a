// Slows down repeated wrong tokens from one address, in bounded memory.

export interface ThrottleSettings {
  /** Wrong tokens from one address answered at once before slowing down. Default 5. */
  freeFailures: number;
  /** The delay of the first slowed 403; it doubles with each further failure. Default 250 ms. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Addresses remembered at most (least recently failed forgotten first). Default 1024. */
  maxAddresses: number;
  /** An address quiet for this long starts afresh. Default 15 min. */
  forgetAfterMs: number;
}

/** Remembers wrong-token counts per address, in bounded memory, and says how long to delay the next 403. */
export class FailureThrottle {
  private readonly table = new Map<string, { failures: number; lastMs: number }>();

  constructor(private readonly settings: ThrottleSettings, private readonly now: () => number) {}

  get size(): number {
    return this.table.size;
  }

  /** Records a failure; returns the delay for its 403 in ms (0 for the first few). */
  fail(address: string): { delayMs: number; failures: number; firstSlowed: boolean } {
    const nowMs = this.now();
    const entry = this.table.get(address) ?? { failures: 0, lastMs: nowMs };
    if (nowMs - entry.lastMs > this.settings.forgetAfterMs) entry.failures = 0;
    entry.failures += 1;
    entry.lastMs = nowMs;
    this.table.delete(address); // re-insert: Map order is then least recently failed first
    this.table.set(address, entry);
    for (const oldest of this.table.keys()) {
      if (this.table.size <= this.settings.maxAddresses) break;
      this.table.delete(oldest);
    }
    const over = entry.failures - this.settings.freeFailures;
    const delayMs = over <= 0 ? 0 : Math.min(this.settings.initialDelayMs * 2 ** (over - 1), this.settings.maxDelayMs);
    return { delayMs, failures: entry.failures, firstSlowed: over === 1 };
  }

  succeed(address: string): void {
    this.table.delete(address);
  }
}
