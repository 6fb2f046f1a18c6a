// The IP cam: /open starts the stream, serves it behind an unguessable token, maps the router's port
// with a lease and answers the link; everything closes again on /close or when the TTL runs out.

import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { Hardware } from '../../hardware/index.js';
import { unreachableRange } from '../../hardware/portmap.js';
import type { StreamServer } from '../../hardware/stream-server.js';
import { describeError, type Logger } from '../log.js';
import { formatDuration } from './duration.js';
import type { Clock } from './scheduler.js';
import type { StateStore } from './state.js';
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
  /** Called when a link expires, with the chat that opened it. */
  onExpired: (chatId: number) => Promise<void> | void;
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
}

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

  /** Closes the link: revokes the token, removes the mapping, stops the stream. False if it was not open. */
  close(): Promise<boolean> {
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
    await this.options.store.update((state) => {
      state.portMapping = null;
    });
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
      const boundPort = await server.listen(this.options.port, this.options.listenHost ?? '0.0.0.0');
      const token = randomBytes(24).toString('base64url'); // 192 bits
      const expiresAtMs = clock.now() + ttlMs;
      server.setAccess({ token, expiresAtMs });
      const route = await this.route(boundPort);
      mapped = route.mapped;
      const link: OpenLink = { url: `http://${route.host}:${route.port}/?token=${token}`, public: route.note === null, note: route.note, ttlMs };
      const timer = clock.setTimeout(() => void this.expire(), ttlMs);
      this.session = { server, link, chatId, expiresAtMs, timer, mapped };
      await hardware.led?.set(true).catch((error: unknown) => this.options.log.warn(`LED: ${describeError(error)}`));
      this.options.log.info(`camera link opened (${link.public ? 'public' : 'LAN only'}) for ${formatDuration(ttlMs)}`);
      return link;
    } catch (error) {
      await server.close();
      if (mapped) await this.unmap();
      await hardware.stream.stop();
      throw error;
    }
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

  private async unmap(): Promise<void> {
    try {
      await this.options.hardware.portMapper?.remove(this.options.externalPort);
    } catch (error) {
      this.options.log.warn(`could not remove the port mapping: ${describeError(error)}`);
    }
    await this.options.store.update((state) => {
      state.portMapping = null;
    });
  }

  private async closeNow(): Promise<boolean> {
    const session = this.session;
    if (session === undefined) return false;
    this.session = undefined;
    this.options.clock.clearTimeout(session.timer);
    session.server.setAccess(null);
    await this.options.hardware.led?.set(false).catch((error: unknown) => this.options.log.warn(`LED: ${describeError(error)}`));
    await session.server.close();
    if (session.mapped) await this.unmap();
    await this.options.hardware.stream.stop();
    this.options.log.info('camera link closed');
    return true;
  }

  private async expire(): Promise<void> {
    const session = this.session;
    if (session === undefined) return;
    await this.close();
    try {
      await this.options.onExpired(session.chatId);
    } catch (error) {
      this.options.log.warn(`could not tell chat ${session.chatId} the link expired: ${describeError(error)}`);
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
