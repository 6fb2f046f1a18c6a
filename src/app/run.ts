// `telepi run`: the appliance on real (or simulated) hardware until SIGTERM or SIGINT.

import { createHardware } from '../../hardware/index.js';
import { TelegramError } from '../errors.js';
import { createLogger, describeError, registerSecret, type Logger } from '../log.js';
import { Appliance } from './appliance.js';
import type { CliIo } from './cli.js';
import { describeConfig, type Config } from './config.js';
import { SystemdNotifier } from './watchdog.js';

const stateDirReasons: Record<Config['stateDirSource'], string> = {
  TELEPI_STATE_DIR: 'from TELEPI_STATE_DIR',
  STATE_DIRECTORY: 'from systemd\'s StateDirectory',
  system: 'the system state directory',
  XDG_STATE_HOME: '/var/lib/telepi is not writable, so in XDG_STATE_HOME',
  home: '/var/lib/telepi is not writable, so in your home',
};

/** Exit code for a configuration that cannot work: systemd must not restart-loop on it. */
const EX_CONFIG = 78;

/** After a stop signal during start-up, how long start-up may go on before telepi gives up on it (stop then has 6 s). */
const startupGraceMs = 2000;

export async function run(config: Config, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  // First of all: SIGTERM while start-up waits for the network (a Pi booting offline) stops telepi
  // cleanly with 0, instead of killing it with the state folder still locked.
  const stop = stopSignal();
  try {
    return await runUntil(stop.signalled, config, env, io);
  } finally {
    stop.dispose();
  }
}

async function runUntil(stopped: Promise<NodeJS.Signals>, config: Config, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  registerSecret(config.token);
  const log = createLogger({ level: config.logLevel });
  for (const line of describeConfig(config)) log.info(line);
  log.info(`state in ${config.stateDir} (${stateDirReasons[config.stateDirSource]})`);
  const hardware = await createHardware({
    kind: config.hardware, bme280: config.bme280, pirGpio: config.gpio.pirLine, ledGpio: config.gpio.ledLine,
    photoSize: config.photoSize, env, log: (line) => log.info(line),
  });
  for (const problem of hardware.problems) log.warn(problem);
  const starting = Appliance.start({ config, hardware, log, notifier: SystemdNotifier.fromEnv(env, { log }) });
  const first = await Promise.race([
    starting.then((appliance) => ({ appliance }), (error: unknown) => ({ error })),
    stopped.then((signal) => ({ signal })),
  ]);
  if ('signal' in first) return stopDuringStartup(first.signal, starting, hardware, log);
  if ('error' in first) {
    await hardware.close();
    const { error } = first;
    if (error instanceof TelegramError && (error.errorCode === 401 || error.errorCode === 404)) {
      io.err(`telepi: ${describeError(error)}`);
      return EX_CONFIG;
    }
    throw error;
  }
  const { appliance } = first;
  let fatal: unknown;
  const signal = await Promise.race([
    stopped,
    appliance.loop.done.then(() => undefined, (error: unknown) => {
      fatal = error;
      return undefined;
    }),
  ]);
  log.info(signal === 'SIGHUP' ? hangupText : 'stopping');
  await appliance.stop();
  if (signal !== undefined) return exitCodeFor(signal);
  if (fatal === undefined) return 0;
  // The token can only be revoked while running; like a bad token at start, a restart cannot help.
  if (isTokenRejection(fatal)) {
    log.error(`exiting with ${EX_CONFIG} (configuration): ${describeError(fatal)}`);
    return EX_CONFIG;
  }
  log.error(`the message loop ended on an unexpected error (${describeError(fatal)}): exiting with 1 so that systemd restarts telepi`);
  return 1;
}

/**
 * A stop signal came while Appliance.start was under way, which cannot be cut short. A start-up that
 * finishes within startupGraceMs is stopped as usual; one still waiting (for Telegram, most likely)
 * is left behind: the hardware is closed and run returns 0, and bin/telepi.js exits 3 s later.
 */
async function stopDuringStartup(signal: NodeJS.Signals, starting: Promise<Appliance>, hardware: { close(): Promise<void> }, log: Logger): Promise<number> {
  log.info(`${signal} during start-up: ${signal === 'SIGHUP' ? hangupText : 'stopping'}`);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, startupGraceMs, undefined);
  });
  const appliance = await Promise.race([starting.catch(() => undefined), late]);
  clearTimeout(timer);
  if (appliance !== undefined) {
    log.info('stopping');
    await appliance.stop();
    return exitCodeFor(signal);
  }
  // A start-up that fails after this is the process's last act: nothing more to say about it.
  starting.catch(() => undefined);
  log.warn(`stop: start-up did not finish within ${startupGraceMs / 1000} s (still waiting for Telegram?); exiting without it`);
  await hardware.close().catch((error: unknown) => log.warn(`the hardware to close: ${describeError(error)}`));
  return exitCodeFor(signal);
}

/**
 * SIGHUP (a closed terminal, `systemctl kill -s HUP`, a reload by habit) stops telepi cleanly too; killed
 * by it, telepi would leave its lock and inbox unflushed, and systemd (which counts death by SIGHUP as a
 * clean exit) would not start it again. Exit 129 instead: under systemd, Restart=on-failure starts it
 * again, reading its settings afresh — a reload.
 */
const hangupText = 'SIGHUP: stopping; under systemd telepi starts again and reads its settings afresh';

function exitCodeFor(signal: NodeJS.Signals): number {
  return signal === 'SIGHUP' ? 129 : 0;
}

const stopSignals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** SIGTERM, SIGINT and SIGHUP, listened for from the start; dispose() gives them back to their default. */
function stopSignal(): { signalled: Promise<NodeJS.Signals>; dispose(): void } {
  let resolveSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    resolveSignal = resolve;
  });
  const listeners = stopSignals.map((signal) => [signal, () => resolveSignal(signal)] as const);
  // once: a second signal of a kind while stopping has its default effect (ends the process at once).
  for (const [signal, listener] of listeners) process.once(signal, listener);
  return {
    signalled,
    dispose: () => {
      for (const [signal, listener] of listeners) process.removeListener(signal, listener);
    },
  };
}

/** The loop ends on a rejected token with that TelegramError as the cause. */
function isTokenRejection(error: unknown): boolean {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause instanceof TelegramError && (cause.errorCode === 401 || cause.errorCode === 404);
}
