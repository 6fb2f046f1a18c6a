// systemd's notify protocol (READY, STATUS, STOPPING, WATCHDOG) through systemd-notify: no native code.
import { spawn as nodeSpawn } from 'node:child_process';
import type { Logger } from '../log.js';
import { describeError, redact, silentLogger } from '../log.js';
import type { Clock } from './scheduler.js';

/** The part of a child process the notifier listens to. */
export interface NotifyChild {
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
}

export type NotifySpawn = (
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; stdio: 'ignore' },
) => NotifyChild;

export interface NotifierOptions {
  spawn?: NotifySpawn;
  log?: Logger;
  /** The pid systemd attributes the messages to; defaults to this process. */
  pid?: number;
}

/**
 * Talks to systemd when telepi runs as a Type=notify service. systemd-notify sends from its own pid,
 * so the unit needs NotifyAccess=all; every message carries --pid=<our pid> so systemd attributes it.
 */
export class SystemdNotifier {
  /** Half of WatchdogSec=, as sd_watchdog_enabled(3) advises; null when systemd expects no pings. */
  readonly watchdogIntervalMs: number | null;
  readonly #env: NodeJS.ProcessEnv;
  readonly #spawn: NotifySpawn;
  readonly #log: Logger;
  readonly #pid: number;
  #failing = false;
  /** Stops the pings running now: one watchdog at a time, so a new health check replaces the old. */
  #stopCurrent: (() => void) | null = null;

  private constructor(env: NodeJS.ProcessEnv, watchdogIntervalMs: number | null, options: NotifierOptions) {
    this.#env = env;
    this.watchdogIntervalMs = watchdogIntervalMs;
    this.#spawn = options.spawn ?? nodeSpawn;
    this.#log = options.log ?? silentLogger;
    this.#pid = options.pid ?? process.pid;
  }

  /** A notifier when systemd set NOTIFY_SOCKET, else null (run by hand, in tests, in the demo). */
  static fromEnv(env: NodeJS.ProcessEnv, options: NotifierOptions = {}): SystemdNotifier | null {
    const socket = env.NOTIFY_SOCKET;
    if (socket === undefined || socket === '') return null;
    const pid = options.pid ?? process.pid;
    const usec = Number(env.WATCHDOG_USEC);
    // WATCHDOG_PID names the process systemd expects pings from; another pid means they are not ours to send.
    const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === '' || Number(env.WATCHDOG_PID) === pid;
    const intervalMs = Number.isSafeInteger(usec) && usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : null;
    // The child gets only what it needs: never the bot token.
    const childEnv = { NOTIFY_SOCKET: socket, PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
    return new SystemdNotifier(childEnv, intervalMs, { ...options, pid });
  }

  /** Start-up is done: systemd marks the service active. */
  ready(): Promise<boolean> {
    return this.#send(['--ready']);
  }

  /** Shutdown has begun, so systemd does not take the silence for a hang. */
  stopping(): Promise<boolean> {
    return this.#send(['STOPPING=1']);
  }

  /** One line shown by `systemctl status telepi`. */
  status(text: string): Promise<boolean> {
    // A newline would start another assignment in the message: keep it one line.
    return this.#send([`STATUS=${redact(text).replace(/\s*\n\s*/g, ' ')}`]);
  }

  /**
   * Sends WATCHDOG=1 now and every watchdogIntervalMs while isHealthy() is true; when it turns false
   * (a stalled poll loop), the pings stop and systemd restarts telepi after WatchdogSec=.
   * Returns a function that stops the pings. Does nothing when systemd set no WATCHDOG_USEC.
   * Replaces the pings started before, so start-up can hand the watchdog over without a gap.
   */
  startWatchdog(isHealthy: () => boolean, clock: Clock): () => void {
    const intervalMs = this.watchdogIntervalMs;
    if (intervalMs === null) return () => {};
    this.#stopCurrent?.();
    let stopped = false;
    let pingInFlight = false;
    let wasHealthy = true;
    let timer: unknown;
    const tick = () => {
      if (stopped) return;
      const healthy = safely(isHealthy);
      if (healthy !== wasHealthy) {
        if (healthy) this.#log.info('healthy again; feeding the systemd watchdog');
        else this.#log.warn('unhealthy: no longer feeding the systemd watchdog, which will restart telepi');
        wasHealthy = healthy;
      }
      // A ping still on its way (systemd-notify waits for systemd) makes a second one pointless.
      if (healthy && !pingInFlight) {
        pingInFlight = true;
        void this.#send(['WATCHDOG=1']).finally(() => { pingInFlight = false; });
      }
      timer = clock.setTimeout(tick, intervalMs);
    };
    const stop = () => {
      stopped = true;
      clock.clearTimeout(timer);
      if (this.#stopCurrent === stop) this.#stopCurrent = null;
    };
    this.#stopCurrent = stop;
    tick();
    return stop;
  }

  /** Runs systemd-notify; resolves true when it succeeded. Never rejects: a lost notification is logged. */
  #send(args: string[]): Promise<boolean> {
    const argv = [`--pid=${this.#pid}`, ...args];
    return new Promise((resolve) => {
      const fail = (why: string) => {
        if (!this.#failing) this.#log.warn(`systemd-notify ${args.join(' ')} ${why}; check that systemd-notify is installed and the unit has NotifyAccess=all`);
        this.#failing = true;
        resolve(false);
      };
      let child: NotifyChild;
      try {
        child = this.#spawn('systemd-notify', argv, { env: this.#env, stdio: 'ignore' });
      } catch (error) {
        fail(`could not start: ${describeError(error)}`);
        return;
      }
      child.on('error', (error) => fail(`could not start: ${describeError(error)}`));
      child.on('exit', (code, signal) => {
        if (code === 0) {
          this.#failing = false;
          resolve(true);
        } else {
          fail(signal === null ? `exited with code ${code}` : `was killed by ${signal}`);
        }
      });
    });
  }
}

function safely(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}
