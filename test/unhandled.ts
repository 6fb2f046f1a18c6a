// Catches what would crash the process: a test fails on any unhandled rejection while it runs (issue 10 row 3).
import type { TestContext } from 'node:test';

/** The unhandled rejections seen while this test runs; assert it stays empty. */
export function noUnhandledRejections(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  t.after(() => {
    process.off('unhandledRejection', listener);
  });
  return seen;
}
