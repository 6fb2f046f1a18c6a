// One line per event, with a level, and never a secret: every line goes through redact().

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const secrets = new Set<string>();

/** Registers a secret (the bot token) that redact() replaces wherever it appears. */
export function registerSecret(secret: string): void {
  if (secret.length >= 6) secrets.add(secret);
}

// Anything shaped like a bot token, registered or not: "123456789:AA…" (35 characters after the colon).
const tokenShape = /\d{3,}:[A-Za-z0-9_-]{30,}/g;

// The user and password of any URL, as in TELEGRAM_API_ROOT=http://user:pass@host: "scheme://<credentials>@host".
const urlCredentials = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/** Replaces registered secrets, token-shaped strings and the credentials in URLs with placeholders. */
export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join('<token>');
  }
  return out.replace(tokenShape, '<token>').replace(urlCredentials, '$1<credentials>@');
}

/** Builds the text of an error for a log line: its message, with its cause's, redacted, on one line. */
export function describeError(error: unknown): string {
  let text: string;
  try {
    if (error instanceof Error) {
      const cause = error.cause instanceof Error ? ` (${textOf(error.cause.message)})` : '';
      text = `${textOf(error.message)}${cause}`;
    } else {
      text = textOf(error);
    }
  } catch {
    text = 'a value that cannot be shown';
  }
  return redact(text).replace(/\s*\n\s*/g, ' ');
}

/**
 * Whatever was thrown, as text, without throwing in turn: a driver may throw null, an object without
 * a prototype or one whose toString throws, and describing it is often the last line of a catch.
 */
function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return 'a value that cannot be shown';
    }
  }
}

export interface ConsoleLoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stderr, which journald captures. */
  write?: (line: string) => void;
  /** Prefix each line with an ISO time (off under systemd, whose journal stamps lines itself). */
  timestamps?: boolean;
}

let stderrGuarded = false;

/**
 * Writes a line to stderr. A stderr whose reader has gone (journald restarted, a closed terminal, a
 * pipe into `head`) fails with EPIPE as an 'error' event, which unheard would crash telepi: lost log
 * lines must not stop the bot, so such errors are heard and dropped.
 */
function writeToStderr(line: string): void {
  if (!stderrGuarded) {
    stderrGuarded = true;
    process.stderr.on('error', () => undefined);
  }
  if (process.stderr.destroyed || !process.stderr.writable) return;
  process.stderr.write(`${line}\n`);
}

/** A logger writing "LEVEL message" lines; under journald the level is also a syslog priority prefix. */
export function createLogger(options: ConsoleLoggerOptions = {}): Logger {
  const minimum = levelRank[options.level ?? 'info'];
  const write = options.write ?? writeToStderr;
  const journald = options.timestamps === undefined && process.env.JOURNAL_STREAM !== undefined;
  const stamp = options.timestamps ?? false;
  const priority: Record<LogLevel, string> = { debug: '<7>', info: '<6>', warn: '<4>', error: '<3>' };
  const emit = (level: LogLevel, message: string) => {
    if (levelRank[level] < minimum) return;
    const text = redact(message).replace(/\s*\n\s*/g, ' ');
    const prefix = journald ? priority[level] : stamp ? `${new Date().toISOString()} ` : '';
    write(`${prefix}${level.toUpperCase()} ${text}`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}

/** A logger that keeps lines in memory: for tests, which assert on what was logged. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => lines.push(line), timestamps: false });
  return Object.assign(logger, { lines });
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
