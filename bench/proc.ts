// Another process's memory and CPU time, read from /proc by the parent, so the figures cost the
// measured process nothing and need no cooperation from it.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (match === null) throw new Error(`/proc/${pid}/status has no ${field} line`);
  return Number(match[1]) * 1024;
}

/** Resident set size now, in bytes. */
export function rssOf(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** The highest resident set size the process has had, in bytes. */
export function peakRssOf(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/** User + system CPU time the process has used, in ms (10 ms resolution). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may contain spaces: state is the 3rd field, utime the 14th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

export const mb = (bytes: number): number => bytes / 1048576;
