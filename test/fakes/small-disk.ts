// A real, tiny filesystem for the state folder: a 64 KiB tmpfs that a test can make read-only or fill,
// as an SD card remounted read-only after errors, or a full card, would be. Needs root (CI runs as root).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export interface SmallDisk {
  /** The mount point. */
  dir: string;
  /** Remounts it read-only (EROFS from now on), as the kernel does to an ext4 card after I/O errors. */
  readOnly(): void;
  /** Fills it so the next write fails with ENOSPC. */
  fill(): void;
}

/**
 * Mounts a tmpfs for this test and unmounts it in teardown; null (and the test skipped, saying why) when not root.
 * `apart` names subfolders mounted on tmpfs of their own: files kept open there (the inbox's journal) would
 * otherwise make the remount read-only fail with "mount point is busy".
 */
export function smallDisk(t: TestContext, sizeKiB = 64, apart: readonly string[] = []): SmallDisk | null {
  if (process.getuid?.() !== 0) {
    t.skip('not run: mounting a small tmpfs needs root (CI runs as root); run the tests as root to cover a read-only or full disk');
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'telepi-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir]);
  const subs = apart.map((name) => join(dir, name));
  for (const sub of subs) {
    mkdirSync(sub);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', sub]);
  }
  t.after(() => {
    for (const sub of subs) execFileSync('umount', ['-l', sub]);
    execFileSync('umount', ['-l', dir]);
    rmdirSync(dir);
  });
  return {
    dir,
    readOnly: () => execFileSync('mount', ['-o', 'remount,ro', dir]),
    fill: () => {
      try {
        writeFileSync(join(dir, 'filler'), Buffer.alloc(sizeKiB * 1024 * 2));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    },
  };
}
