// Router port mapping through miniupnpc's `upnpc` tool: add a TCP mapping with a lease, remove it,
// read the router's external address. Routers that only take permanent mappings (UPnP error 725)
// get one, and telepi removes it itself when the requested lease would have ended.
import { runCommand, type RunResult } from './child.js';
import type { PortMapper, PortMapping } from './types.js';

/** Schedules `callback` after `delayMs`; returns a function that cancels it. */
export type SetTimer = (callback: () => void, delayMs: number) => () => void;

export interface UpnpcOptions {
  /** The upnpc executable, looked up on PATH (default 'upnpc'). */
  command?: string;
  /** Kill upnpc after this long (default 15 000 ms; discovery alone takes 2 s). */
  timeoutMs?: number;
  /** The environment to scrub for upnpc (default process.env); only PATH, HOME, locale and TZ get through. */
  env?: NodeJS.ProcessEnv;
  /** The timer for removing permanent mappings (default setTimeout, unref'd, fine for any delay). */
  setTimer?: SetTimer;
  /** The mapping's description on the router (default 'telepi'). */
  description?: string;
  /** Notes worth a log line: self-removals, unusable external addresses. */
  log?: (message: string) => void;
}

export type PortMapErrorCode = 'NOT_INSTALLED' | 'NO_IGD' | 'CONFLICT' | 'UPNP_ERROR' | 'TIMEOUT' | 'UNEXPECTED';

/** A failed upnpc run: `code` says what kind; `upnpCode` is the router's UPnP error (718, 725, …). */
export class PortMapError extends Error {
  constructor(
    message: string,
    readonly code: PortMapErrorCode,
    readonly details: { upnpCode?: number; exitCode?: number | null; output?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PortMapError';
  }
  get upnpCode(): number | undefined { return this.details.upnpCode; }
}

const ERROR_CONFLICT = 718; // ConflictInMappingEntry
const ERROR_NO_SUCH_ENTRY = 714; // NoSuchEntryInArray
const ERROR_ONLY_PERMANENT = 725; // OnlyPermanentLeasesSupported

// Printed by upnpc.c on success of -a: "external %s:%s %s is redirected to internal %s:%s (duration=%s)".
const REDIRECTED = /^external (\S*):(\d+) (TCP|UDP) is redirected to internal (\S+):(\d+) \(duration=(\d*)\)/m;
// "AddPortMapping(%s, %s, %s) failed with code %d (%s)" and "UPNP_DeletePortMapping() failed with code : %d".
const FAILED_WITH_CODE = /failed with code :? ?(-?\d+)(?: \(([^)]*)\))?/;
const NO_IGD = /No IGD UPnP Device found on the network|No valid UPNP Internet Gateway Device found/;
const EXTERNAL_IP = /^ExternalIPAddress = (\d{1,3}(?:\.\d{1,3}){3})\s*$/m;

const MAX_TIMER_MS = 2 ** 31 - 1;

/** setTimeout that neither keeps the process alive nor overflows past 24.8 days. */
const defaultSetTimer: SetTimer = (callback, delayMs) => {
  let timer: NodeJS.Timeout;
  const arm = (remainingMs: number) => {
    timer = setTimeout(() => (remainingMs > MAX_TIMER_MS ? arm(remainingMs - MAX_TIMER_MS) : callback()),
      Math.min(remainingMs, MAX_TIMER_MS));
    timer.unref();
  };
  arm(delayMs);
  return () => clearTimeout(timer);
};

/** A `PortMapper` that runs upnpc, one command per call (each does its own 2 s discovery). */
export class UpnpcPortMapper implements PortMapper {
  private readonly command: string;
  private readonly timeoutMs: number;
  private readonly setTimer: SetTimer;
  private readonly description: string;
  private readonly log: (message: string) => void;
  /** Self-removal timers of permanent mappings, by external port. */
  private readonly removals = new Map<number, () => void>();

  constructor(private readonly options: UpnpcOptions = {}) {
    this.command = options.command ?? 'upnpc';
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.setTimer = options.setTimer ?? defaultSetTimer;
    this.description = options.description ?? 'telepi';
    this.log = options.log ?? (() => {});
  }

  /**
   * Maps `externalPort` (TCP) on the router to `internalPort` on this host for `leaseSeconds`
   * (0: permanent). A router that accepts only permanent mappings gets one, reported as
   * `leaseSeconds: 0`, which this mapper removes when the requested lease would have ended.
   */
  async add(internalPort: number, externalPort: number, leaseSeconds: number): Promise<PortMapping> {
    checkPort(internalPort, 'internal');
    checkPort(externalPort, 'external');
    if (!Number.isInteger(leaseSeconds) || leaseSeconds < 0) {
      throw new RangeError(`leaseSeconds must be a whole number ≥ 0, not ${leaseSeconds}`);
    }
    let granted: number;
    try {
      granted = await this.addOnce(internalPort, externalPort, leaseSeconds);
    } catch (err) {
      if (!(err instanceof PortMapError && err.upnpCode === ERROR_ONLY_PERMANENT && leaseSeconds > 0)) throw err;
      granted = await this.addOnce(internalPort, externalPort, 0);
    }
    this.cancelRemoval(externalPort);
    if (granted === 0 && leaseSeconds > 0) this.scheduleRemoval(externalPort, leaseSeconds);
    return { internalPort, externalPort, leaseSeconds: granted };
  }

  /** Removes the mapping of `externalPort` (TCP); a mapping that is already gone is fine. */
  async remove(externalPort: number): Promise<void> {
    checkPort(externalPort, 'external');
    this.cancelRemoval(externalPort);
    try {
      await this.run(['-d', String(externalPort), 'TCP'], `remove the mapping of external port ${externalPort}`);
    } catch (err) {
      if (err instanceof PortMapError && err.upnpCode === ERROR_NO_SUCH_ENTRY) return;
      throw err;
    }
  }

  /**
   * The router's external IPv4 address as the router reports it; null when it has none (0.0.0.0, or
   * no answer). It may be private or carrier-grade NAT: `unreachableRange()` says whether it is.
   */
  async externalIp(): Promise<string | null> {
    const { stdout } = await this.run(['-s'], 'read the external address');
    const ip = EXTERNAL_IP.exec(stdout)?.[1];
    if (ip === undefined || ip === '0.0.0.0') return null;
    return ip;
  }

  /** Runs `upnpc -a`; resolves to the lease the router reports (the requested one if it says none). */
  private async addOnce(internalPort: number, externalPort: number, leaseSeconds: number): Promise<number> {
    const { stdout } = await this.run(
      ['-e', this.description, '-a', '@', String(internalPort), String(externalPort), 'TCP', String(leaseSeconds)],
      `map external port ${externalPort} to ${internalPort}`);
    const match = REDIRECTED.exec(stdout);
    if (!match) {
      throw new PortMapError(`upnpc -a exited 0 without the "is redirected to internal" line: ${tail(stdout)}`, 'UNEXPECTED',
        { exitCode: 0, output: tail(stdout) });
    }
    return match[6] === '' ? leaseSeconds : Number(match[6]);
  }

  private scheduleRemoval(externalPort: number, leaseSeconds: number): void {
    const cancel = this.setTimer(() => {
      this.removals.delete(externalPort);
      this.remove(externalPort).then(
        () => this.log(`removed the permanent mapping of external port ${externalPort} after its requested ${leaseSeconds} s lease`),
        (err: Error) => this.log(`could not remove the permanent mapping of external port ${externalPort}: ${err.message}`));
    }, leaseSeconds * 1000);
    this.removals.set(externalPort, cancel);
  }

  private cancelRemoval(externalPort: number): void {
    this.removals.get(externalPort)?.();
    this.removals.delete(externalPort);
  }

  /** Runs upnpc with `args` and turns every failure into a PortMapError that says what to do. */
  private async run(args: string[], purpose: string): Promise<{ stdout: string }> {
    const shown = `${this.command} ${args.join(' ')}`;
    let result: RunResult;
    try {
      result = await runCommand(this.command, args, { timeoutMs: this.timeoutMs, env: this.options.env });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT') {
        throw new PortMapError(`${this.command} not found: install it with apt install miniupnpc`, 'NOT_INSTALLED', {}, { cause: err });
      }
      if (code === 'ETIMEDOUT') {
        throw new PortMapError(`${shown} did not finish within ${this.timeoutMs / 1000} s and was killed: the router answers UPnP slowly or not at all; use the LAN link`, 'TIMEOUT', {}, { cause: err });
      }
      throw new PortMapError(`could not run ${shown} to ${purpose}: ${(err as Error).message}`, 'UNEXPECTED', {}, { cause: err });
    }
    const stdout = result.stdout.toString('utf8');
    const output = `${stdout}\n${result.stderrTail}`;
    if (result.code === 0) return { stdout };
    if (result.code === 1 && NO_IGD.test(output)) {
      throw new PortMapError('no UPnP router answered: enable UPnP on the router, or use the LAN link', 'NO_IGD',
        { exitCode: 1, output: tail(output) });
    }
    const failed = FAILED_WITH_CODE.exec(output);
    if (result.code === 2 && failed) {
      const upnpCode = Number(failed[1]);
      const name = failed[2] ? ` ${failed[2]}` : '';
      if (upnpCode === ERROR_CONFLICT) {
        throw new PortMapError(`could not ${purpose}: the router already maps that port to another host (UPnP error 718${name}): choose another external port, or delete the old mapping in the router's settings`, 'CONFLICT', { upnpCode, exitCode: 2, output: tail(output) });
      }
      throw new PortMapError(`the router refused to ${purpose} (UPnP error ${upnpCode}${name})${upnpCode === 606 ? ': allow UPnP port mapping for this host in the router\'s settings' : ''}`, 'UPNP_ERROR', { upnpCode, exitCode: 2, output: tail(output) });
    }
    const how = result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
    throw new PortMapError(`${shown} ${how}: ${tail(output)}`, 'UNEXPECTED', { exitCode: result.code, output: tail(output) });
  }
}

function checkPort(port: number, which: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`${which} port must be 1–65535, not ${port}`);
}

/** Why an IPv4 address cannot be reached from the internet, or null if it can. */
export function unreachableRange(ip: string): string | null {
  const [a = 0, b = 0] = ip.split('.').map(Number);
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'a private address (double NAT: another router sits in front of this one)';
  if (a === 100 && b >= 64 && b <= 127) return 'a carrier-grade NAT address (the provider shares one public address among customers)';
  if (a === 169 && b === 254) return 'a link-local address (the router is not connected)';
  if (a === 127 || a === 0 || a >= 224) return 'not a unicast internet address';
  return null;
}

function tail(text: string, max = 600): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
}
