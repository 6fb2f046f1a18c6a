// `telepi run`: the appliance on real (or simulated) hardware until SIGTERM or SIGINT.

import { createHardware } from '../../hardware/index.js';
import { TelegramError } from '../errors.js';
import { createLogger, describeError, registerSecret } from '../log.js';
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

export async function run(config: Config, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  registerSecret(config.token);
  const log = createLogger({ level: config.logLevel });
  for (const line of describeConfig(config)) log.info(line);
  log.info(`state in ${config.stateDir} (${stateDirReasons[config.stateDirSource]})`);
  const hardware = await createHardware({
    kind: config.hardware, bme280: config.bme280, pirGpio: config.gpio.pirLine, ledGpio: config.gpio.ledLine,
    photoSize: config.photoSize, env, log: (line) => log.info(line),
  });
  for (const problem of hardware.problems) log.warn(problem);
  let appliance: Appliance;
  try {
    appliance = await Appliance.start({ config, hardware, log, notifier: SystemdNotifier.fromEnv(env, { log }) });
  } catch (error) {
    await hardware.close();
    if (error instanceof TelegramError && (error.errorCode === 401 || error.errorCode === 404)) {
      io.err(`telepi: ${describeError(error)}`);
      return EX_CONFIG;
    }
    throw error;
  }
  let fatal: unknown;
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
    appliance.loop.done.then(resolve, (error: unknown) => {
      fatal = error;
      resolve();
    });
  });
  log.info('stopping');
  await appliance.stop();
  if (fatal === undefined) return 0;
  // The token can only be revoked while running; like a bad token at start, a restart cannot help.
  if (isTokenRejection(fatal)) {
    log.error(`exiting with ${EX_CONFIG} (configuration): ${describeError(fatal)}`);
    return EX_CONFIG;
  }
  log.error(`the message loop ended on an unexpected error (${describeError(fatal)}): exiting with 1 so that systemd restarts telepi`);
  return 1;
}

/** The loop ends on a rejected token with that TelegramError as the cause. */
function isTokenRejection(error: unknown): boolean {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause instanceof TelegramError && (cause.errorCode === 401 || cause.errorCode === 404);
}
