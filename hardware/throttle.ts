// Decides, before a token is compared, whether this guess may be compared at all: per address and in total, in bounded memory.

export interface ThrottleSettings {
  /** Wrong tokens from one address compared at once before its guesses are spaced out. Default 5. */
  freeFailures: number;
  /** The wait before the first spaced-out comparison; it doubles with each further failure. Default 250 ms. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Addresses remembered at most (least recently failed forgotten first). Default 1024. */
  maxAddresses: number;
  /** An address quiet for this long starts afresh; a trusted one stays trusted this long after its last success. Default 15 min. */
  forgetAfterMs: number;
  /** Failed comparisons per second for all addresses that have not shown the right token, sustained. Default 5. */
  globalFailuresPerSecond: number;
  /** …and in a burst. Default 20. */
  globalFailureBurst: number;
  /** Addresses that showed the right token, remembered at most. Default 16. */
  maxTrusted: number;
}

export const DEFAULT_THROTTLE: ThrottleSettings = {
  freeFailures: 5, initialDelayMs: 250, maxDelayMs: 8000, maxAddresses: 1024, forgetAfterMs: 15 * 60_000,
  globalFailuresPerSecond: 5, globalFailureBurst: 20, maxTrusted: 16,
};

/** compare: go ahead (`charged`: it took from the global budget); otherwise no comparison before `waitMs`. */
export type Admission = { compare: true; charged: boolean } | { compare: false; waitMs: number };

interface AddressEntry {
  failures: number;
  lastMs: number;
  /** No comparison for this address before then. */
  nextMs: number;
}

/** Sets `key` as the most recently touched entry and evicts the least recent beyond `max` (Map order is insertion order). */
export function touch<V>(table: Map<string, V>, key: string, value: V, max: number): void {
  table.delete(key);
  table.set(key, value);
  for (const oldest of table.keys()) {
    if (table.size <= max) break;
    table.delete(oldest);
  }
}

/**
 * Limits token comparisons, not just answers: each address gets `freeFailures` guesses, then one per doubling wait;
 * all addresses that never showed the right token share one budget of failed comparisons (a token bucket), so many
 * addresses cannot multiply the rate. Addresses that showed the right token recently (the owner watching) are not
 * charged to the shared budget, so a flood from elsewhere does not lock them out.
 */
export class FailureThrottle {
  private readonly table = new Map<string, AddressEntry>();
  private readonly trusted = new Map<string, number>();
  private budget: number;
  private budgetAtMs: number;

  constructor(private readonly settings: ThrottleSettings, private readonly now: () => number) {
    this.budget = settings.globalFailureBurst;
    this.budgetAtMs = now();
  }

  /** Addresses with recent wrong tokens remembered. */
  get size(): number {
    return this.table.size;
  }

  isTrusted(address: string): boolean {
    const lastMs = this.trusted.get(address);
    return lastMs !== undefined && this.now() - lastMs <= this.settings.forgetAfterMs;
  }

  /** Whether a token from `address` may be compared now; a `charged` admission must be settled by fail() or succeed(). */
  admit(address: string): Admission {
    const nowMs = this.now();
    const entry = this.table.get(address);
    if (entry !== undefined && nowMs - entry.lastMs <= this.settings.forgetAfterMs && entry.nextMs > nowMs) {
      return { compare: false, waitMs: entry.nextMs - nowMs };
    }
    if (this.isTrusted(address)) return { compare: true, charged: false };
    this.refill(nowMs);
    if (this.budget < 1) return { compare: false, waitMs: Math.ceil(((1 - this.budget) * 1000) / this.settings.globalFailuresPerSecond) };
    this.budget -= 1;
    return { compare: true, charged: true };
  }

  /** Records a wrong token from `address`; `firstSlowed` is true when its guesses start being spaced out. */
  fail(address: string): { failures: number; firstSlowed: boolean } {
    const nowMs = this.now();
    const known = this.table.get(address);
    const failures = known !== undefined && nowMs - known.lastMs <= this.settings.forgetAfterMs ? known.failures + 1 : 1;
    const over = failures - this.settings.freeFailures;
    const waitMs = over < 0 ? 0 : Math.min(this.settings.initialDelayMs * 2 ** over, this.settings.maxDelayMs);
    touch(this.table, address, { failures, lastMs: nowMs, nextMs: nowMs + waitMs }, this.settings.maxAddresses);
    return { failures, firstSlowed: over === 0 };
  }

  /** The right token from `address`: it starts afresh, is trusted, and a charged admission is given back. */
  succeed(address: string, charged: boolean): void {
    this.table.delete(address);
    touch(this.trusted, address, this.now(), this.settings.maxTrusted);
    if (charged) this.budget = Math.min(this.settings.globalFailureBurst, this.budget + 1);
  }

  private refill(nowMs: number): void {
    const earned = ((nowMs - this.budgetAtMs) / 1000) * this.settings.globalFailuresPerSecond;
    this.budget = Math.min(this.settings.globalFailureBurst, this.budget + Math.max(0, earned));
    this.budgetAtMs = nowMs;
  }
}
