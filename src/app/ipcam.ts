// The IP cam: /open starts the stream, serves it behind an unguessable token, maps the router's port
// with a lease and answers the link once frames flow; everything closes again on /close, when the TTL
// runs out, or when the camera stops sending frames.

import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { Hardware } from '../../hardware/index.js';
import { unreachableRange } from '../../hardware/portmap.js';
import type { StreamServer } from '../../hardware/stream-server.js';
import { waitForFrame } from '../../hardware/stream.js';
import { describeError, type Logger } from '../log.js';
import { formatDuration } from './duration.js';
import { systemClock, type Clock } from './scheduler.js';
import { StateWriteError, type StateStore } from './state.js';
import { renderViewerPage } from './viewer.js';

export interface IpCamOptions {
  hardware: Pick<Hardware, 'stream' | 'camera' | 'portMapper' | 'led'>;
  /** The port the viewer is served on here, and the one mapped on the router. */
  port: number;
  externalPort: number;
  ttlMs: number;
  store: StateStore;
  /** A monotonic clock: a Pi has no real-time clock, and its wall clock jumps at the first time sync. */
  clock: Clock;
  log: Logger;
  /** This host's LAN address; default: the first non-internal IPv4 address. */
  lanAddress?: () => string | null;
  /** Where the viewer listens; default every interface. */
  listenHost?: string;
  /** Called when a link closes by itself (it expired, or the camera stopped), with the chat that opened it. */
  onClosed: (chatId: number, why: CamClosedReason) => Promise<void> | void;
  /** How long /open waits for the camera's first frame before it gives up; default 10 s. */
  firstFrameTimeoutMs?: number;
  /** No frame for this long while open means the camera failed: the link is withdrawn; default 20 s. */
  frameTimeoutMs?: number;
  /** The timers that watch for frames, which arrive in real time; default the system's. */
  frameClock?: Clock;
}

export type CamClosedReason = { kind: 'expired' } | { kind: 'camera-lost'; detail: string };

/** What /close did: whether a link was open, and what could not be undone cleanly (said to the owner). */
export interface CloseOutcome {
  wasOpen: boolean;
  problems: string[];
}

export interface OpenLink {
  url: string;
  /** True when the link works from the internet; false for the LAN link. */
  public: boolean;
  /** Why the link is LAN-only, when it is. */
  note: string | null;
  ttlMs: number;
}

interface Session {
  server: StreamServer;
  link: OpenLink;
  chatId: number;
  expiresAtMs: number;
  timer: unknown;
  mapped: boolean;
  /** Stops watching the frames. */
  unwatch: () => void;
}

const realMonotonic: Clock = { ...systemClock, now: () => performance.now() };

export type CamStatus = { open: false } | { open: true; public: boolean; remainingMs: number };

export class IpCam {
  private session: Session | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: IpCamOptions) {}

  get status(): CamStatus {
    const session = this.session;
    if (session === undefined) return { open: false };
    return { open: true, public: session.link.public, remainingMs: Math.max(0, session.expiresAtMs - this.options.clock.now()) };
  }

  /** Opens (or renews, with a new token) the link; rejects when the camera cannot stream. */
  open(chatId: number): Promise<OpenLink> {
    return this.serialised(() => this.openNow(chatId));
  }

  /** Closes the link: revokes the token, removes the mapping, stops the stream, each even when another step fails. */
  close(): Promise<CloseOutcome> {
    return this.serialised(() => this.closeNow());
  }

  /** A photo: the stream's next frame while it runs (never a second camera process), else a still. */
  photo(): Promise<Buffer> {
    return this.options.hardware.camera.capture();
  }

  /** Removes a mapping that a crash left on the router (recorded in the state before it was made). */
  async removeStaleMapping(): Promise<void> {
    const stale = this.options.store.state.portMapping;
    if (stale === null) return;
    const mapper = this.options.hardware.portMapper;
    try {
      await mapper?.remove(stale.externalPort);
      this.options.log.info(`removed the port mapping of external port ${stale.externalPort} left by an earlier run`);
    } catch (error) {
      this.options.log.warn(`could not remove the port mapping left by an earlier run: ${describeError(error)}`);
    }
    await this.forgetMapping();
  }

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async openNow(chatId: number): Promise<OpenLink> {
    const { hardware, clock, ttlMs } = this.options;
    await this.closeNow();
    const { StreamServer } = await import('../../hardware/stream-server.js');
    const server = new StreamServer({ source: hardware.stream, now: () => clock.now(), renderPage: renderViewerPage, log: (line) => this.options.log.info(line) });
    let mapped = false;
    try {
      await hardware.stream.start();
      // A link is answered only once the camera really sends pictures.
      const firstFrameTimeoutMs = this.options.firstFrameTimeoutMs ?? 10_000;
      if ((await waitForFrame(hardware.stream, firstFrameTimeoutMs)) === null) {
        throw new Error(`the camera sent no picture within ${formatDuration(firstFrameTimeoutMs)}${this.streamProblem()}`);
      }
      const boundPort = await server.listen(this.options.port, this.options.listenHost ?? '0.0.0.0');
      const token = randomBytes(24).toString('base64url'); // 192 bits
      const expiresAtMs = clock.now() + ttlMs;
      server.setAccess({ token, expiresAtMs });
      const route = await this.route(boundPort);
      mapped = route.mapped;
      const link: OpenLink = { url: `http://${route.host}:${route.port}/?token=${token}`, public: route.note === null, note: route.note, ttlMs };
      const session: Session = { server, link, chatId, expiresAtMs, timer: undefined, mapped, unwatch: () => undefined };
      session.timer = clock.setTimeout(() => void this.closeBy(session, { kind: 'expired' }), ttlMs);
      session.unwatch = this.watchFrames(session);
      this.session = session;
      await hardware.led?.set(true).catch((error: unknown) => this.options.log.warn(`LED: ${describeError(error)}`));
      this.options.log.info(`camera link opened (${link.public ? 'public' : 'LAN only'}) for ${formatDuration(ttlMs)}`);
      return link;
    } catch (error) {
      await this.bestEffort('closing the viewer', () => server.close());
      if (mapped) await this.unmap();
      await this.bestEffort('stopping the camera', () => hardware.stream.stop());
      throw error;
    }
  }

  /** Withdraws the link when no frame came for frameTimeoutMs: checked every half of it. */
  private watchFrames(session: Session): () => void {
    const frameClock = this.options.frameClock ?? realMonotonic;
    const timeoutMs = this.options.frameTimeoutMs ?? 20_000;
    let lastFrameAtMs = frameClock.now();
    const unsubscribe = this.options.hardware.stream.onFrame(() => {
      lastFrameAtMs = frameClock.now();
    });
    let timer: unknown;
    const check = () => {
      const silentMs = frameClock.now() - lastFrameAtMs;
      if (silentMs <= timeoutMs) {
        timer = frameClock.setTimeout(check, timeoutMs / 2);
        return;
      }
      const detail = `no picture from the camera for ${formatDuration(Math.round(silentMs / 1000) * 1000)}${this.streamProblem()}`;
      void this.closeBy(session, { kind: 'camera-lost', detail });
    };
    timer = frameClock.setTimeout(check, timeoutMs / 2);
    return () => {
      unsubscribe();
      frameClock.clearTimeout(timer);
    };
  }

  /** Why the stream's process last ended, when it says, as a suffix. */
  private streamProblem(): string {
    const lastError = (this.options.hardware.stream as { lastError?: unknown }).lastError;
    return typeof lastError === 'string' && lastError !== '' ? `: ${lastError}` : '';
  }

  /** Where the link points: the router's external address when UPnP works and it is public, else the LAN. */
  private async route(port: number): Promise<{ host: string; port: number; note: string | null; mapped: boolean }> {
    const { externalPort, ttlMs } = this.options;
    const mapper = this.options.hardware.portMapper;
    const lan = () => ({ host: this.options.lanAddress?.() ?? lanAddress() ?? '127.0.0.1', port });
    if (mapper === null) return { ...lan(), note: 'port mapping is not available here', mapped: false };
    await this.options.store.update((state) => {
      state.portMapping = { externalPort, createdAtMs: Date.now() };
    });
    let note: string;
    try {
      await mapper.add(port, externalPort, Math.ceil(ttlMs / 1000));
      const ip = await mapper.externalIp();
      const unreachable = ip === null ? 'unknown' : unreachableRange(ip);
      if (ip !== null && unreachable === null) return { host: ip, port: externalPort, note: null, mapped: true };
      note = ip === null ? 'the router did not tell its external address' : `the router's external address ${ip} is ${unreachable}`;
    } catch (error) {
      note = `UPnP is unavailable: ${describeError(error)}`;
    }
    await this.unmap();
    return { ...lan(), note, mapped: false };
  }

  /** Removes the router's mapping and forgets it; never rejects. What went wrong is returned, to be said. */
  private async unmap(): Promise<string[]> {
    const problems: string[] = [];
    try {
      await this.options.hardware.portMapper?.remove(this.options.externalPort);
    } catch (error) {
      this.options.log.warn(`could not remove the port mapping: ${describeError(error)}`);
      problems.push(`the router kept the port mapping (${describeError(error)}); its lease ends it`);
    }
    const saveProblem = await this.forgetMapping();
    if (saveProblem !== null) problems.push(saveProblem);
    return problems;
  }

  // A read-only or full card must not turn a closed mapping into a crash: the next start removes it again.
  private async forgetMapping(): Promise<string | null> {
    try {
      await this.options.store.update((state) => {
        state.portMapping = null;
      });
      return null;
    } catch (error) {
      this.options.log.warn(`the port mapping is gone but could not be forgotten in the state: ${describeError(error)}`);
      return error instanceof StateWriteError ? error.userMessage : `could not save the state: ${describeError(error)}`;
    }
  }

  /** Closes every part, each even when another fails: the camera always stops. */
  private async closeNow(): Promise<CloseOutcome> {
    const session = this.session;
    if (session === undefined) return { wasOpen: false, problems: [] };
    this.session = undefined;
    this.options.clock.clearTimeout(session.timer);
    session.unwatch();
    session.server.setAccess(null);
    const problems: string[] = [];
    await this.options.hardware.led?.set(false).catch((error: unknown) => this.options.log.warn(`LED: ${describeError(error)}`));
    await this.bestEffort('closing the viewer', () => session.server.close(), problems);
    if (session.mapped) problems.push(...(await this.unmap()));
    await this.bestEffort('stopping the camera', () => this.options.hardware.stream.stop(), problems);
    this.options.log.info('camera link closed');
    return { wasOpen: true, problems };
  }

  private async bestEffort(what: string, step: () => Promise<void>, problems?: string[]): Promise<void> {
    try {
      await step();
    } catch (error) {
      this.options.log.warn(`${what}: ${describeError(error)}`);
      problems?.push(`${what} failed: ${describeError(error)}`);
    }
  }

  /** Closes `session` by itself (expiry, a dead camera) if it is still the open one, and tells its chat. */
  private async closeBy(session: Session, why: CamClosedReason): Promise<void> {
    const closed = await this.serialised(async () => (this.session === session ? this.closeNow() : null));
    if (closed === null) return;
    if (why.kind === 'camera-lost') this.options.log.warn(`camera link withdrawn: ${why.detail}`);
    try {
      await this.options.onClosed(session.chatId, why);
    } catch (error) {
      this.options.log.warn(`could not tell chat ${session.chatId} the camera link closed: ${describeError(error)}`);
    }
  }
}

/** The first non-internal IPv4 address of this host. */
export function lanAddress(): string | null {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return null;
}
