// A clock for tests: time moves only when the test says, timers run in due order, the wall clock can jump.
import type { Clock } from '../../src/app/scheduler.js';

interface Timer {
  dueMs: number;
  seq: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  #monotonicMs = 0;
  #wallOffsetMs: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();
  /** Every delay asked of setTimeout, in order. */
  readonly delays: number[] = [];

  constructor(startWallMs = Date.UTC(2025, 0, 1, 12, 0, 0)) {
    this.#wallOffsetMs = startWallMs;
  }

  now(): number {
    return this.#monotonicMs + this.#wallOffsetMs;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    this.delays.push(ms);
    this.#timers.set(seq, { dueMs: this.#monotonicMs + Math.max(0, ms), seq, fn });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.#timers.delete(handle);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves the wall clock without moving timers, as NTP or an admin does. */
  jumpWallClock(ms: number): void {
    this.#wallOffsetMs += ms;
  }

  /** Moves time on by ms, running each timer that falls due, in due order, at its due time. */
  advance(ms: number, maxTimers = 100_000): void {
    const endMs = this.#monotonicMs + ms;
    for (let count = 0; ; count++) {
      const timer = this.#nextDue(endMs);
      if (timer === undefined) break;
      if (count >= maxTimers) throw new Error(`FakeClock.advance: more than ${maxTimers} timers ran; a timer loop?`);
      this.#run(timer);
    }
    this.#monotonicMs = endMs;
  }

  /** Like advance, but lets promises settle after each timer, for code whose timers start async work. */
  async advanceAsync(ms: number, maxTimers = 100_000): Promise<void> {
    const endMs = this.#monotonicMs + ms;
    for (let count = 0; ; count++) {
      await settle();
      const timer = this.#nextDue(endMs);
      if (timer === undefined) break;
      if (count >= maxTimers) throw new Error(`FakeClock.advanceAsync: more than ${maxTimers} timers ran; a timer loop?`);
      this.#run(timer);
    }
    this.#monotonicMs = endMs;
    await settle();
  }

  /** Runs timers until none is left; throws after maxTimers, as code that re-arms forever would never end. */
  runAll(maxTimers = 10_000): void {
    for (let count = 0; this.#timers.size > 0; count++) {
      if (count >= maxTimers) throw new Error(`FakeClock.runAll: more than ${maxTimers} timers ran; a timer loop?`);
      const timer = this.#nextDue(Infinity);
      if (timer !== undefined) this.#run(timer);
    }
  }

  #nextDue(limitMs: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (timer.dueMs > limitMs) continue;
      if (next === undefined || timer.dueMs < next.dueMs || (timer.dueMs === next.dueMs && timer.seq < next.seq)) next = timer;
    }
    return next;
  }

  #run(timer: Timer): void {
    this.#timers.delete(timer.seq);
    this.#monotonicMs = Math.max(this.#monotonicMs, timer.dueMs);
    timer.fn();
  }
}

/** Resolves after pending promise callbacks (and their follow-ups) have run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
