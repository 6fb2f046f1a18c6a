// `telepi doctor --as-service`: the doctor under the service's own user, groups and sandbox, read from
// the installed unit and its drop-ins, so a sandbox problem shows here and the two cannot drift apart.
// systemd-run takes each [Service] line as a property (-p), in the unit's order, as systemd reads them.

import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { scrubbedEnv } from '../../hardware/child.js';
import type { CliIo } from './cli.js';

export const INSTALLED_UNIT = '/etc/systemd/system/telepi.service';

/**
 * [Service] settings that describe how a long-running service is started, restarted and watched,
 * not what it may touch: a one-shot doctor run under them would wait for READY=1 or be killed by the
 * watchdog. Output is piped back instead of going to the journal.
 */
const NOT_FOR_A_CHECK = new Set([
  'Type', 'NotifyAccess', 'WatchdogSec', 'Restart', 'RestartSec', 'RestartPreventExitStatus', 'RestartForceExitStatus',
  'SuccessExitStatus', 'RemainAfterExit', 'TimeoutSec', 'TimeoutStartSec', 'TimeoutStopSec', 'RuntimeMaxSec',
  'ExecStart', 'ExecStartPre', 'ExecStartPost', 'ExecStop', 'ExecStopPost', 'ExecReload', 'ExecCondition', 'PIDFile',
  'StandardInput', 'StandardOutput', 'StandardError', 'SyslogIdentifier',
]);

export interface ServiceSettings {
  /** Every other [Service] assignment as "Key=value", in the order systemd applies them. */
  properties: string[];
  /** ExecStart's program (the telepi command the service runs), without systemd's prefix characters. */
  program: string;
}

/** Reads the [Service] assignments of a unit file and its drop-ins (given in the order systemd reads them). */
export function serviceSettings(files: readonly { path: string; text: string }[]): ServiceSettings {
  const properties: string[] = [];
  let program: string | null = null;
  for (const { path, text } of files) {
    let section = '';
    // A trailing backslash continues the line, as in systemd.syntax(7).
    for (const raw of text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      if (line.startsWith('[')) {
        section = line;
        continue;
      }
      const eq = line.indexOf('=');
      if (section !== '[Service]' || eq < 1) continue;
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      if (key === 'ExecStart' && value !== '') program = value.split(/\s+/)[0]!.replace(/^[-@:+!]+/, '');
      if (!NOT_FOR_A_CHECK.has(key)) properties.push(`${key}=${value}`);
    }
    if (section === '' && text.trim() !== '') throw new Error(`${path} has no [Service] section: is it a systemd unit?`);
  }
  if (program === null) throw new Error(`${files[0]?.path ?? 'the unit'} has no ExecStart=: reinstall with sudo ./install.sh`);
  return { properties, program };
}

/** The systemd-run command line that runs `program doctor` under the service's settings. */
export function systemdRunArgv(settings: ServiceSettings, runtimeMaxSec = 180): string[] {
  return [
    '--pipe', '--wait', '--quiet', '--collect', '--unit=telepi-doctor', '--description=telepi doctor, as the service',
    // Every check has its own timeout; this only ends a doctor that hangs anyway.
    '-p', `RuntimeMaxSec=${runtimeMaxSec}`,
    ...settings.properties.flatMap((property) => ['-p', property]),
    settings.program, 'doctor',
  ];
}

/** The unit file and its drop-ins (unit.d/*.conf, in name order), as systemd would read them. */
export async function readInstalledUnit(unitPath: string): Promise<{ path: string; text: string }[]> {
  const files = [{ path: unitPath, text: await readFile(unitPath, 'utf8') }];
  let names: string[] = [];
  try {
    names = (await readdir(`${unitPath}.d`)).filter((name) => name.endsWith('.conf')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const name of names) files.push({ path: `${unitPath}.d/${name}`, text: await readFile(`${unitPath}.d/${name}`, 'utf8') });
  return files;
}

export interface AsServiceOptions {
  unitPath?: string;
  /** Who runs this (default process.getuid()): only root may start a system service. */
  uid?: number;
}

/** Runs the doctor through systemd-run under the installed unit's settings; resolves with its exit code. */
export async function runDoctorAsService(env: NodeJS.ProcessEnv, io: CliIo, options: AsServiceOptions = {}): Promise<number> {
  const unitPath = options.unitPath ?? INSTALLED_UNIT;
  if ((options.uid ?? process.getuid?.()) !== 0) {
    io.err('telepi doctor --as-service starts a system service: run it as root, sudo telepi doctor --as-service');
    return 1;
  }
  let settings: ServiceSettings;
  try {
    settings = serviceSettings(await readInstalledUnit(unitPath));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    io.err(missing
      ? `telepi doctor --as-service: ${unitPath} does not exist: install the service first (sudo ./install.sh), or run telepi doctor`
      : `telepi doctor --as-service: ${(error as Error).message}`);
    return 1;
  }
  io.out(`Running the doctor as the service would run, under the settings of ${unitPath} and its drop-ins`);
  return new Promise((resolve) => {
    const child = spawn('systemd-run', systemdRunArgv(settings), { env: scrubbedEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (stream: NodeJS.ReadableStream, write: (text: string) => void) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) write(line);
      });
      stream.on('end', () => rest !== '' && write(rest));
    };
    forward(child.stdout, io.out);
    forward(child.stderr, io.err);
    child.once('error', (error) => {
      io.err(`telepi doctor --as-service: cannot run systemd-run (${error.message}): is systemd installed?`);
      resolve(1);
    });
    child.once('close', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}
