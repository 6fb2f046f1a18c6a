// Who may do what: owners everything, users the climate commands, everyone else a rate-limited refusal.

export type Role = 'owner' | 'user';

export interface AuthorizerOptions {
  owners: number[];
  users: number[];
  clock?: { now(): number };
  /** At most one refusal per user per this many ms. */
  refusalIntervalMs?: number;
}

/** Above this many remembered refusals, the oldest are dropped even if recent: memory stays bounded. */
const maxRememberedRefusals = 10_000;

export class Authorizer {
  readonly #owners: ReadonlySet<number>;
  readonly #users: ReadonlySet<number>;
  readonly #clock: { now(): number };
  readonly #refusalIntervalMs: number;
  // Map order is refusal order (entries are re-inserted), so expired ones are always at the front.
  readonly #lastRefusalMs = new Map<number, number>();

  constructor(options: AuthorizerOptions) {
    this.#owners = new Set(options.owners);
    this.#users = new Set(options.users);
    this.#clock = options.clock ?? Date;
    this.#refusalIntervalMs = options.refusalIntervalMs ?? 60_000;
  }

  /** The user's role; null for strangers and for updates without a sender (channel posts). */
  roleOf(userId: number | undefined): Role | null {
    if (userId === undefined) return null;
    if (this.#owners.has(userId)) return 'owner';
    if (this.#users.has(userId)) return 'user';
    return null;
  }

  /** Whether the user may run a command that needs `need`; owners may do everything. */
  may(userId: number | undefined, need: Role): boolean {
    const role = this.roleOf(userId);
    return role === 'owner' || (role === 'user' && need === 'user');
  }

  /** True at most once per user per refusal interval, so a stranger cannot make the bot spam. */
  shouldSendRefusal(userId: number | undefined): boolean {
    if (userId === undefined) return false;
    const nowMs = this.#clock.now();
    this.#prune(nowMs);
    const lastMs = this.#lastRefusalMs.get(userId);
    if (lastMs !== undefined && nowMs - lastMs < this.#refusalIntervalMs) return false;
    this.#lastRefusalMs.delete(userId);
    this.#lastRefusalMs.set(userId, nowMs);
    return true;
  }

  /** Strangers remembered for rate limiting; for tests and /status. */
  get rememberedRefusals(): number {
    return this.#lastRefusalMs.size;
  }

  refusalText(userId: number): string {
    return `Sorry, this bot is private. Your user id is ${userId} — ask the owner to add it to TELEPI_USERS.`;
  }

  #prune(nowMs: number): void {
    for (const [userId, lastMs] of this.#lastRefusalMs) {
      const expired = nowMs - lastMs >= this.#refusalIntervalMs;
      if (!expired && this.#lastRefusalMs.size < maxRememberedRefusals) break;
      this.#lastRefusalMs.delete(userId);
    }
  }
}
