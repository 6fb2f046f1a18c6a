// A real Mosquitto broker for tests: Debian's mosquitto on a free loopback port, configured from a
// file in a temporary folder (plain, with a password file, or TLS with a private CA made here with
// openssl), logging every connection so tests can count attempts, and stopped by its PID in teardown.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from '../free-port.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface BrokerOptions {
  /** Require this user and password (written with mosquitto_passwd, never on a command line we log). */
  user?: { username: string; password: string };
  /** Serve TLS with a server certificate for 127.0.0.1 signed by a private CA made for this broker. */
  tls?: boolean;
}

export interface Broker {
  port: number;
  /** mqtt://127.0.0.1:PORT or mqtts://127.0.0.1:PORT */
  url: string;
  /** The private CA's certificate (PEM) when tls is on. */
  caPath: string | undefined;
  /** The broker's log so far. */
  log(): string;
  /** How many TCP connections the broker has accepted so far. */
  connections(): number;
  /** Stops the broker (by PID) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts the broker again on the same port and configuration (retained messages are lost: no persistence). */
  start(): Promise<void>;
  /** Freezes or thaws the broker (SIGSTOP/SIGCONT): its sockets stay open but nothing answers. */
  freeze(frozen: boolean): void;
}

/** Skips the test when mosquitto is not installed (the test prerequisites install it). */
export function mosquittoMissing(): string | false {
  return existsSync(MOSQUITTO) ? false : `${MOSQUITTO} is missing: apt-get install mosquitto`;
}

export async function startBroker(t: Pick<TestContext, 'after'>, options: BrokerOptions = {}): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'telepi-mosquitto-'));
  const port = await freePort();
  const logPath = join(dir, 'mosquitto.log');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'persistence false',
    `log_dest file ${logPath}`,
    'log_type all',
    'connection_messages true',
  ];
  // As root, mosquitto would switch to the mosquitto user, which cannot read this private folder.
  if (process.getuid?.() === 0) lines.push('user root');
  if (options.user === undefined) {
    lines.push('allow_anonymous true');
  } else {
    const passwordFile = join(dir, 'passwords');
    execFileSync('mosquitto_passwd', ['-c', '-b', passwordFile, options.user.username, options.user.password], { stdio: 'ignore' });
    lines.push('allow_anonymous false', `password_file ${passwordFile}`);
  }
  let caPath: string | undefined;
  if (options.tls === true) {
    const certs = makeCertificates(dir);
    caPath = certs.ca;
    lines.push(`cafile ${certs.ca}`, `certfile ${certs.cert}`, `keyfile ${certs.key}`);
  }
  const confPath = join(dir, 'mosquitto.conf');
  writeFileSync(confPath, `${lines.join('\n')}\n`);

  let child: ChildProcess | undefined;
  const readLog = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  const start = async () => {
    const logBefore = readLog().length;
    const started = spawn(MOSQUITTO, ['-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    started.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child = started;
    const deadline = performance.now() + 10_000;
    // Ready once the log says it runs; a broker that exits at start says why on stderr or in the log.
    while (!/mosquitto version [\d.]+ running/.test(readLog().slice(logBefore))) {
      if (started.exitCode !== null) throw new Error(`mosquitto exited with ${started.exitCode} at start: ${stderr} ${readLog()}`);
      if (performance.now() > deadline) throw new Error(`mosquitto did not start within 10 s: ${readLog()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGCONT');
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  t.after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    port,
    url: `${options.tls === true ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    caPath,
    log: readLog,
    connections: () => readLog().split('\n').filter((line) => line.includes('New connection from')).length,
    stop,
    start,
    freeze: (frozen) => void child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT'),
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export { freePort };

/** A private CA and a server certificate for 127.0.0.1/localhost signed by it. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=telepi test CA',
    '-keyout', file('ca.key'), '-out', file('ca.crt'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'));
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', file('server.ext'), '-out', file('server.crt'));
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') };
}

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

export interface Watcher {
  messages: Received[];
  /** The payloads on one topic, as text, in order. */
  on(topic: string): string[];
  /** Resolves with the first message on topic after index `from` (default: any), failing after timeoutMs. */
  next(topic: string, timeoutMs?: number, from?: number): Promise<Received>;
  publish(topic: string, payload: string, retain?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A Home-Assistant-like client: subscribes to topics (retained messages arrive first) and records everything. */
export async function watch(t: TestContext, broker: Broker, topics: string[], login?: { username: string; password: string }): Promise<Watcher> {
  const { connectAsync } = await import('mqtt');
  const client = await connectAsync(broker.url, {
    ...login, ca: broker.caPath === undefined ? undefined : readFileSync(broker.caPath), reconnectPeriod: 200, connectTimeout: 5000, writeCache: false,
  });
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload, retain: packet.retain }));
  if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
  const close = () => client.endAsync(true).catch(() => undefined);
  t.after(close);
  return {
    messages,
    on: (topic) => messages.filter((m) => m.topic === topic).map((m) => m.payload.toString()),
    next: async (topic, timeoutMs = 5000, from = 0) => {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const found = messages.slice(from).find((m) => m.topic === topic);
        if (found !== undefined) return found;
        if (performance.now() > deadline) throw new Error(`nothing on ${topic} within ${timeoutMs} ms (got ${messages.map((m) => m.topic).join(', ')})`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    publish: async (topic, payload, retain = false) => {
      await client.publishAsync(topic, payload, { qos: 1, retain });
    },
    close,
  };
}
