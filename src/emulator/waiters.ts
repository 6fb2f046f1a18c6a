// The call log indexed by method (lower-cased), and promises that wait for calls to arrive.
import type { RecordedCall } from './types.js';

interface Waiter {
  /** Returns true when the waiter is done with this call. */
  offer(call: RecordedCall, all: RecordedCall[]): boolean;
  fail(error: Error): void;
}

export class CallWaiters {
  private readonly byMethod = new Map<string, RecordedCall[]>();
  private readonly waiting = new Map<string, Set<Waiter>>();

  callsOf(method: string): readonly RecordedCall[] {
    return this.byMethod.get(method.toLowerCase()) ?? [];
  }

  add(call: RecordedCall): void {
    const key = call.method.toLowerCase();
    let list = this.byMethod.get(key);
    if (!list) this.byMethod.set(key, (list = []));
    list.push(call);
    const waiters = this.waiting.get(key);
    if (!waiters) return;
    for (const waiter of [...waiters]) waiter.offer(call, list);
  }

  waitFor(method: string, predicate: ((call: RecordedCall) => boolean) | undefined, timeoutMs: number): Promise<RecordedCall> {
    const matches = (call: RecordedCall): boolean => (predicate ? predicate(call) : true);
    try {
      const found = this.callsOf(method).find(matches);
      if (found) return Promise.resolve(found);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.wait(method, timeoutMs, (resolve) => (call) => {
      if (!matches(call)) return false;
      resolve(call);
      return true;
    }, (seen) => `${seen} call(s) of ${method} recorded${predicate ? ', none matching the predicate' : ''}`);
  }

  waitForCount(method: string, count: number, timeoutMs: number): Promise<RecordedCall[]> {
    const existing = this.callsOf(method);
    if (existing.length >= count) return Promise.resolve(existing.slice(0, count));
    return this.wait(method, timeoutMs, (resolve) => (_call, all) => {
      if (all.length < count) return false;
      resolve(all.slice(0, count));
      return true;
    }, (seen) => `${seen} of ${count} call(s) of ${method} recorded`);
  }

  /** Rejects every pending wait (close()). */
  closeAll(error: Error): void {
    for (const waiters of this.waiting.values()) for (const waiter of [...waiters]) waiter.fail(error);
    this.waiting.clear();
  }

  private wait<T>(
    method: string,
    timeoutMs: number,
    makeOffer: (resolve: (value: T) => void) => (call: RecordedCall, all: RecordedCall[]) => boolean,
    describe: (seen: number) => string,
  ): Promise<T> {
    const key = method.toLowerCase();
    return new Promise<T>((resolve, reject) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key);
      };
      const offer = makeOffer((value) => { done(); resolve(value); });
      const waiter: Waiter = {
        offer: (call, all) => {
          try {
            return offer(call, all);
          } catch (error) {
            done();
            reject(error instanceof Error ? error : new Error(String(error)));
            return true;
          }
        },
        fail: (error) => { done(); reject(error); },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for a call of ${method}: ${describe(this.callsOf(method).length)}`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  }
}
