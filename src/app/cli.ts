// The `telepi` command: run | doctor | demo | read | snap FILE. Every subcommand is loaded on demand,
// so `telepi read` never loads the bot and `telepi run` never loads the demo.

import { createLogger } from '../log.js';
import { ConfigError, loadConfig, type Config } from './config.js';

const usage = `Usage: telepi [command]
  run          run the bot (the default when TELEGRAM_BOT_TOKEN is set)
  doctor       check the token, sensor, camera, GPIO, UPnP and state directory, and say what to fix
  doctor --as-service
               the same checks under the installed service's user, groups and sandbox (as root)
  demo [CMD…]  try telepi with no Pi and no token: a local Bot API emulator and simulated hardware
               (the default without TELEGRAM_BOT_TOKEN); commands given as arguments run, then it exits
  read         one climate reading, as JSON
  snap FILE    take a photo and save it to FILE
  history --csv [PERIOD]
               the recorded readings as CSV (all of them, or the last PERIOD like 7d or 1y)
Configuration is read from the environment (see README.md); under systemd from /etc/telepi/telepi.env.`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** Runs one subcommand and resolves with the process's exit code. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, io: CliIo = stdio): Promise<number> {
  const [given, ...rest] = argv;
  const command = given ?? (env.TELEGRAM_BOT_TOKEN ? 'run' : 'demo');
  if (given === undefined && command === 'demo') io.err('TELEGRAM_BOT_TOKEN is not set: starting the demo (a local emulator and simulated hardware).');
  try {
    switch (command) {
      case 'run':
        return await (await import('./run.js')).run(loadConfig(env), env, io);
      case 'doctor':
        if (rest[0] === '--as-service' && rest.length === 1) return await (await import('./doctor-as-service.js')).runDoctorAsService(env, io);
        if (rest.length > 0) {
          io.err(`telepi doctor: unknown option "${rest[0]}"; the only one is --as-service\n${usage}`);
          return 64;
        }
        return await (await import('./doctor.js')).runDoctor(env, io);
      case 'demo':
        return await (await import('./demo.js')).runDemo(rest, env, io);
      case 'read':
        return await read(loadConfig(env, { requireBot: false }), env, io);
      case 'snap':
        return await snap(rest[0], loadConfig(env, { requireBot: false }), env, io);
      case 'history':
        return await history(rest, loadConfig(env, { requireBot: false }), io);
      case 'help':
      case '--help':
      case '-h':
        io.out(usage);
        return 0;
      default:
        io.err(`telepi: unknown command "${command}"\n${usage}`);
        return 64;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(error.message);
      return error.exitCode;
    }
    throw error;
  }
}

async function openHardware(config: Config, env: NodeJS.ProcessEnv) {
  const { createHardware } = await import('../../hardware/index.js');
  return createHardware({
    kind: config.hardware,
    bme280: config.bme280,
    photoSize: config.photoSize,
    env,
    log: createLogger({ level: config.logLevel }).info,
  });
}

async function read(config: Config, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const hardware = await openHardware(config, env);
  try {
    io.out(JSON.stringify(await hardware.climate.read()));
    return 0;
  } catch (error) {
    io.err(`telepi read: ${hardware.climate.description}: ${(error as Error).message}`);
    return 1;
  } finally {
    await hardware.close();
  }
}

async function history(args: readonly string[], config: Config, io: CliIo): Promise<number> {
  const [format, period, extra] = args;
  if (format !== '--csv' || extra !== undefined) {
    io.err('Usage: telepi history --csv [PERIOD]   (PERIOD like 24h, 7d or 1y; all of it without)');
    return 64;
  }
  const [{ exportCsv }, { parseSpan }, path] = await Promise.all([import('./history/export.js'), import('./history/span.js'), import('node:path')]);
  let fromMs = 0;
  try {
    if (period !== undefined) fromMs = Date.now() - parseSpan(period);
  } catch (error) {
    io.err(`telepi history: ${(error as Error).message}`);
    return 64;
  }
  const dir = path.join(config.stateDir, 'history');
  // `telepi history --csv | head`: a closed pipe ends the export quietly (exit 0), not with an EPIPE trace.
  const stdout = io === stdio ? process.stdout : undefined;
  stdout?.on('error', () => undefined); // stdout.errored is read below; unheard, the error would crash the CLI
  const out = (text: string) => {
    if (stdout?.errored) return false;
    io.out(text);
    return !stdout?.errored;
  };
  try {
    await exportCsv(dir, fromMs, Date.now(), out);
  } catch (error) {
    io.err(`telepi history: cannot read ${dir}: ${(error as Error).message}`);
    return 1;
  }
  const writeError = stdout?.errored as NodeJS.ErrnoException | null | undefined;
  if (writeError && writeError.code !== 'EPIPE') {
    io.err(`telepi history: cannot write the CSV: ${writeError.message}`);
    return 1;
  }
  return 0;
}

async function snap(file: string | undefined, config: Config, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  if (file === undefined) {
    io.err('Usage: telepi snap FILE');
    return 64;
  }
  const { writeFile } = await import('node:fs/promises');
  const hardware = await openHardware(config, env);
  try {
    const jpeg = await hardware.camera.capture();
    await writeFile(file, jpeg);
    io.out(`saved ${jpeg.length} bytes to ${file}`);
    return 0;
  } catch (error) {
    io.err(`telepi snap: ${(error as Error).message}`);
    return 1;
  } finally {
    await hardware.close();
  }
}
