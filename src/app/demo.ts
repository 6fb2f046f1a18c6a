// `telepi demo`: the real appliance against the local Bot API emulator and simulated hardware, with a
// chat prompt in the terminal, so anyone can try telepi with no Pi and no token. Commands given as
// arguments (or piped in) run one after the other, each waiting for its reply, and then it exits.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Message } from '@grammyjs/types';
import { createHardware } from '../../hardware/index.js';
import { SimulatedClimateSensor } from '../../hardware/simulated/climate.js';
import { BotApiEmulator, type RecordedCall } from '../emulator/index.js';
import { createLogger, describeError, type Logger } from '../log.js';
import { Appliance } from './appliance.js';
import type { CliIo } from './cli.js';
import { loadConfig } from './config.js';
import { FileHistoryStore } from './history/store.js';

/** Only the embedded emulator accepts it; it is no secret. */
const DEMO_TOKEN = '1000000:DEMO_local_emulator_token_not_a_real_one';
/** You, in the demo: the owner, chatting with the bot in private. */
const DEMO_USER = 1;
const PROMPT = 'you> ';
const BOT = 'telepi> ';

export interface DemoReply {
  /** The message's text (or a photo's caption), or null. */
  text: string | null;
  /** Where a photo was saved, or null. */
  photoPath: string | null;
}

export interface DemoOptions {
  /** Lines to read when no commands are given (default process.stdin). */
  input?: NodeJS.ReadableStream;
  /** Where the prompt goes (default process.stdout). */
  output?: NodeJS.WritableStream;
  /** A prompt and replies as they come (default: whether `input` is a TTY); else one command at a time. */
  interactive?: boolean;
  /** Where photos are saved (default <tmpdir>/telepi-demo). */
  photoDir?: string;
  /** How long a command may wait for its reply (default 15 s). */
  replyTimeoutMs?: number;
  /** Called once it runs: where its temporary state lives, for tests. */
  onStart?: (info: { stateDir: string; photoDir: string; apiRoot: string; streamPort: number }) => void;
  /** Called after each command's reply arrived, before the next command is sent. */
  onReply?: (command: string, reply: DemoReply) => Promise<void> | void;
}

export async function runDemo(args: string[], env: NodeJS.ProcessEnv, io: CliIo, options: DemoOptions = {}): Promise<number> {
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-demo-state-'));
  const photoDir = options.photoDir ?? join(tmpdir(), 'telepi-demo');
  const stops: (() => Promise<void>)[] = [];
  try {
    const emulator = await BotApiEmulator.start({ token: DEMO_TOKEN, bot: { first_name: 'telepi (demo)', username: 'telepi_demo_bot' } });
    stops.unshift(() => emulator.close());
    const config = loadConfig({
      TELEGRAM_BOT_TOKEN: DEMO_TOKEN, TELEGRAM_API_ROOT: emulator.apiRoot, TELEPI_OWNERS: String(DEMO_USER),
      TELEPI_HARDWARE: 'simulated', TELEPI_STATE_DIR: stateDir, STREAM_PORT: env.STREAM_PORT ?? '8080',
      TELEPI_LOG_LEVEL: env.TELEPI_LOG_LEVEL ?? 'warn',
    });
    const streamPort = await freePort(config.stream.port);
    if (streamPort !== config.stream.port) io.err(`Port ${config.stream.port} is busy: the camera link uses port ${streamPort} instead.`);
    const log = createLogger({ level: config.logLevel, write: (text) => io.err(text) });
    await seedHistory(join(stateDir, 'history'), Date.now(), log);
    const hardware = await createHardware({ kind: 'simulated', log: (text) => log.info(text) });
    const chat = new DemoChat(emulator, io, photoDir, options.replyTimeoutMs ?? 15_000);
    stops.unshift(async () => chat.close());
    let appliance: Appliance;
    try {
      appliance = await Appliance.start({
        config: { ...config, stream: { ...config.stream, port: streamPort } }, hardware, log, notifier: null,
        polling: { timeoutSeconds: 10, stopDeadlineMs: 2000 },
        // Links point at this machine, so /open gives a URL its browser opens.
        lanAddress: () => '127.0.0.1', listenHost: '127.0.0.1',
      });
    } catch (error) {
      await hardware.close();
      throw error;
    }
    stops.unshift(() => appliance.stop());
    options.onStart?.({ stateDir, photoDir, apiRoot: emulator.apiRoot, streamPort });
    const commands = joinArguments(args);
    const input = options.input ?? process.stdin;
    if (commands.length > 0) {
      io.out(`telepi demo: the bot against a local Bot API emulator with simulated sensors; photos go to ${photoDir}`);
      return await runScripted(chat, commands, io, options);
    }
    io.out(banner(photoDir));
    const interactive = options.interactive ?? (input as NodeJS.ReadStream).isTTY === true;
    if (interactive) return await runInteractive(chat, input, options.output ?? process.stdout);
    const lines = createInterface({ input, terminal: false });
    try {
      return await runScripted(chat, lines, io, options, () => lines.close());
    } finally {
      lines.close();
    }
  } finally {
    for (const stop of stops) await stop().catch((error: unknown) => io.err(`telepi demo: stopping: ${describeError(error)}`));
    await rm(stateDir, { recursive: true, force: true });
  }
}

const seedMs = 24 * 3_600_000;
const seedEveryMs = 60_000;

/**
 * A day of simulated readings, one a minute up to `nowMs`, written through the HistoryStore before the
 * appliance opens it: the demo starts with a fresh state folder, and /chart should show a day, not nothing.
 */
export async function seedHistory(dir: string, nowMs: number, log: Logger): Promise<void> {
  let atMs = nowMs - seedMs;
  const sensor = new SimulatedClimateSensor({ now: () => atMs, latencyMs: 0, seed: 7 });
  // One batch, written at close: a single write of about 17 KB.
  const history = await FileHistoryStore.open(dir, { keepMs: 2 * seedMs, log, maxBatch: seedMs / seedEveryMs });
  try {
    for (; atMs < nowMs; atMs += seedEveryMs) history.append({ atMs, reading: await sensor.read() });
  } finally {
    await history.close();
  }
}

function banner(photoDir: string): string {
  return [
    'telepi demo: the telepi bot, running here against a local Bot API emulator (no Telegram, no token)',
    'with a simulated sensor and camera. You are its owner, in a private chat. Try:',
    '  /now  /1m  /chart  /alert temp < 18  /status  /photo  /open  /close  /help',
    `Photos are saved in ${photoDir}. Ctrl-D or /quit leaves.`,
  ].join('\n');
}

/** `/every 15m` typed unquoted arrives as two arguments: words not starting with '/' join the command before. */
function joinArguments(args: readonly string[]): string[] {
  const commands: string[] = [];
  for (const arg of args) {
    const last = commands.length - 1;
    if (!arg.startsWith('/') && last >= 0) commands[last] = `${commands[last]} ${arg}`;
    else commands.push(arg);
  }
  return commands.map((c) => c.trim()).filter((c) => c !== '');
}

/** Sends each command and waits for its reply; stops at /quit, a missing reply, or SIGINT/SIGTERM. */
async function runScripted(chat: DemoChat, commands: Iterable<string> | AsyncIterable<string>, io: CliIo, options: DemoOptions,
  stopInput: () => void = () => {}): Promise<number> {
  return withSignals(async (interrupted) => {
    let stopped = false;
    void interrupted.then(() => {
      stopped = true;
      stopInput();
    });
    for await (const raw of commands) {
      const command = raw.trim();
      if (stopped || command === '/quit') break;
      if (command === '') continue;
      io.out(`${PROMPT}${command}`);
      const reply = await Promise.race([chat.send(command), interrupted]);
      if (reply === 'interrupted') break;
      await options.onReply?.(command, reply);
    }
    return stopped ? 130 : 0;
  }).catch((error: unknown) => {
    io.err(`telepi demo: ${describeError(error)}`);
    return 1;
  });
}

/** A prompt; replies print as they come. Ctrl-D or /quit waits for pending replies; Ctrl-C does not. */
async function runInteractive(chat: DemoChat, input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<number> {
  const rl = createInterface({ input, output, prompt: PROMPT, terminal: true });
  chat.onPrint = (print) => {
    output.write('\r\x1b[2K');
    print();
    rl.prompt(true);
  };
  const pending = new Set<Promise<unknown>>();
  let interrupted = false;
  await withSignals(async (signalled) => {
    const closed = new Promise<void>((resolve) => rl.once('close', resolve));
    rl.on('SIGINT', () => {
      interrupted = true;
      rl.close();
    });
    rl.on('line', (text) => {
      const command = text.trim();
      if (command === '/quit') return rl.close();
      if (command !== '') {
        const sent = chat.send(command).catch((error: unknown) => chat.say(`(${describeError(error)})`));
        pending.add(sent);
        void sent.finally(() => pending.delete(sent));
      }
      rl.prompt();
    });
    rl.prompt();
    if ((await Promise.race([closed, signalled])) === 'interrupted') interrupted = true;
    rl.close();
    chat.onPrint = (print) => print();
    output.write('\n');
    if (!interrupted) await Promise.allSettled([...pending]);
  });
  return 0;
}

/** Runs `body` with SIGINT/SIGTERM turned into the `interrupted` promise, and the handlers removed after. */
async function withSignals<T>(body: (interrupted: Promise<'interrupted'>) => Promise<T>): Promise<T> {
  let onSignal = () => {};
  const interrupted = new Promise<'interrupted'>((resolve) => (onSignal = () => resolve('interrupted')));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(interrupted);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

interface Waiter {
  resolve: (reply: DemoReply) => void;
  reject: (error: Error) => void;
}

/** The user's side of the private chat: pushes messages, prints the bot's, saves its photos. */
class DemoChat {
  /** Wraps each printout: the interactive prompt clears its line first and redraws itself after. */
  onPrint: (print: () => void) => void = (print) => print();
  private readonly waiters: Waiter[] = [];
  private printing: Promise<void> = Promise.resolve();

  constructor(
    private readonly emulator: BotApiEmulator,
    private readonly io: CliIo,
    private readonly photoDir: string,
    private readonly timeoutMs: number,
  ) {
    emulator.on('botMessage', (message) => {
      if (message.chat.id === DEMO_USER) this.queue(() => this.received(message));
    });
    emulator.on('call', (call: RecordedCall) => {
      if (call.method === 'sendChatAction' && call.params.action === 'upload_photo') {
        this.queue(async () => this.say('telepi is taking a photo…'));
      }
    });
  }

  /** Sends `text` as the demo user; resolves with the bot's next message in the chat. */
  send(text: string): Promise<DemoReply> {
    return new Promise<DemoReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`no reply to ${text} within ${this.timeoutMs / 1000} s; the bot may be stuck (rerun with TELEPI_LOG_LEVEL=debug to see why)`));
      }, this.timeoutMs);
      const waiter: Waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
      this.emulator.pushText(text, { chatId: DEMO_USER, userId: DEMO_USER, firstName: 'You' });
    });
  }

  /** Gives up on replies still awaited: the demo is stopping. */
  close(): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('the demo stopped before the reply came'));
  }

  say(text: string): void {
    this.onPrint(() => this.io.out(text));
  }

  private queue(task: () => Promise<void>): void {
    this.printing = this.printing.then(task).catch((error: unknown) => this.say(`(could not show the reply: ${describeError(error)})`));
  }

  private async received(message: Message): Promise<void> {
    const photo = message.photo?.at(-1);
    const reply: DemoReply = { text: message.text ?? message.caption ?? null, photoPath: null };
    const lines: string[] = [];
    if (photo !== undefined) {
      try {
        reply.photoPath = await this.savePhoto(photo.file_id);
        lines.push(`[photo] saved to ${reply.photoPath}`);
      } catch (error) {
        lines.push(`[photo] not saved: ${describeError(error)}`);
      }
    }
    for (const line of reply.text?.split('\n') ?? []) {
      lines.push(line);
      if (line.startsWith('http://127.0.0.1:')) lines.push('(open it in a browser on this computer)');
    }
    const indent = ' '.repeat(BOT.length);
    this.say(lines.map((line, i) => (i === 0 ? BOT : line === '' ? '' : indent) + line).join('\n'));
    this.waiters.shift()?.resolve(reply);
  }

  private async savePhoto(fileId: string): Promise<string> {
    const bytes = this.emulator.files.get(fileId)?.bytes;
    if (bytes === undefined) throw new Error('the emulator kept no bytes for the photo');
    await mkdir(this.photoDir, { recursive: true });
    // /chart sends a PNG, the camera a JPEG: named by what it is, so an image viewer opens either.
    const isPng = Buffer.from(bytes.subarray(0, 4)).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const [name, extension] = isPng ? ['chart', 'png'] : ['photo', 'jpg'];
    for (let n = 1; ; n++) {
      const path = join(this.photoDir, `${name}-${n}.${extension}`);
      try {
        await writeFile(path, bytes, { flag: 'wx' });
        return path;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }
}

/** `port` if it is free on loopback, else an ephemeral port the system picks. */
async function freePort(port: number): Promise<number> {
  const tryListen = (candidate: number) => new Promise<number | null>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(candidate, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : null));
    });
  });
  const found = (await tryListen(port)) ?? (await tryListen(0));
  if (found === null) throw new Error('cannot find a free TCP port on 127.0.0.1 for the camera link');
  return found;
}
