// The checks in the booted guest, in the order a user meets them: install, the service under its sandbox,
// the commands through the emulator, the watchdog, a bad setting, a rerun, stop, an upgrade, uninstall.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BotApiEmulator, RecordedCall } from '../../src/emulator/index.js';
import type { Arch } from './host.js';
import type { Machine } from './machine.js';
import { tail } from './process.js';
import type { Report } from './report.js';

/** Fake, but shaped like a real token: install.sh checks the shape. Asserted absent from every log. */
export const TOKEN = '1234567:AAsystemTESTtoken_not_REAL_abcdefghij';
const OWNER = 4242;
/** What install.sh must write single-quoted, and systemd read back literally. */
const MQTT_PASSWORD = 'pa ss "w0rd" $HOME;#1\\x';
const DROP_IN = '/etc/systemd/system/telepi.service.d/zz-system-test.conf';

export interface Context {
  machine: Machine;
  emu: BotApiEmulator;
  report: Report;
  arch: Arch;
  streamPort: number;
  /** Where install.sh's output goes. */
  logDir: string;
  /** 1 natively; slower under qemu. */
  slow: number;
}

export async function runChecks(ctx: Context): Promise<void> {
  const { report, machine } = ctx;
  const s = ctx.slow;
  let installLog = '';
  await report.step('install.sh installs for real (apt, Node.js, the user, the app, the env file, the unit)', async () => {
    const env = [`TELEGRAM_BOT_TOKEN=${TOKEN}`, `TELEPI_OWNERS=${OWNER}`, `TELEGRAM_API_ROOT=${ctx.emu.apiRoot}`,
      'TELEPI_HARDWARE=simulated', `STREAM_PORT=${ctx.streamPort}`, 'TELEPI_LOG_LEVEL=debug'];
    // The settings reach install.sh through a file the guest's systemd reads, never through a command line.
    await machine.sh(`umask 077; cat >/root/install.env <<'EOF'\n${env.join('\n')}\nEOF`);
    installLog = await install(ctx, 'first', ['-p', 'EnvironmentFile=/root/install.env'], 40 * 60_000 * s);
    const node = /Node\.js (v\d+\.\d+\.\d+)/.exec(installLog)?.[1] ?? '?';
    return `Node.js ${node} from ${/NodeSource/.test(installLog) ? 'NodeSource' : 'Debian'}`;
  });

  await report.step('the service is active under its hardened unit', async () => {
    const unit = await machine.show('telepi', 'ActiveState', 'SubState', 'MainPID', 'User', 'NRestarts');
    expect(unit.ActiveState === 'active' && unit.SubState === 'running', `telepi is ${unit.ActiveState}/${unit.SubState}`);
    const status = await machine.sh(`cat /proc/${unit.MainPID}/status; id -u telepi`);
    const uid = status.trim().split('\n').pop();
    expect(new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status), `the main process does not run as telepi (uid ${uid})`);
    expect(/^NoNewPrivs:\s+1$/m.test(status), 'NoNewPrivs is not set');
    expect(/^CapBnd:\s+0+$/m.test(status), 'the capability bounding set is not empty');
    const seccomp = /^Seccomp:\s+(\d)$/m.exec(status)?.[1];
    // Under qemu-user the filter is the guest's, installed by the emulator, which does not enforce it.
    if (ctx.arch === 'amd64') expect(seccomp === '2', `no seccomp filter (Seccomp: ${seccomp ?? '?'})`);
    // ProtectSystem=strict: / is mounted read-only in the service's own mount namespace (its mountinfo;
    // nsenter into it is no use under qemu-user, which cannot setns).
    const mounts = (await machine.sh(`cat /proc/${unit.MainPID}/mountinfo`)).split('\n').map((line) => line.split(' '));
    const root = mounts.find((fields) => fields[4] === '/');
    expect(root !== undefined && /^ro(,|$)/.test(root[5] ?? ''), `/ is not read-only for the service: ${root?.join(' ') ?? 'no / mount'}`);
    return `pid ${unit.MainPID}, uid ${uid}, no capabilities, NoNewPrivs, / read-only${ctx.arch === 'amd64' ? ', seccomp' : ''}`;
  });

  await report.step('/now is answered with a reading', async () => {
    const reply = await ask(ctx, '/now', 'sendMessage');
    expect(/°C/.test(text(reply)), `the reply to /now: ${text(reply)}`);
    return text(reply);
  });
  await report.step('/1h subscribes and /status lists it', async () => {
    await ask(ctx, '/1h', 'sendMessage');
    const status = text(await ask(ctx, '/status', 'sendMessage', (call) => /Reports:/.test(text(call))));
    expect(/Reports:.*1h/.test(status), `/status: ${status}`);
    return status.split('\n')[0] ?? '';
  });
  await report.step('/photo sends a photo', async () => {
    const call = await ask(ctx, '/photo', 'sendPhoto');
    const photo = Object.values(call.files)[0];
    expect(photo !== undefined && photo.size > 1000, 'sendPhoto without a JPEG');
    return `${photo?.size ?? 0} bytes`;
  });
  await report.step('/open answers a link whose viewer page loads; /close closes it', async () => {
    const link = /http:\/\/\S+\/\?token=\S+/.exec(text(await ask(ctx, '/open', 'sendMessage', (c) => /token=/.test(text(c)))))?.[0];
    expect(link !== undefined, 'no link in the reply to /open');
    const local = new URL(link as string);
    local.hostname = '127.0.0.1';
    const page = await fetch(local, { signal: AbortSignal.timeout(30_000 * s) });
    expect(page.status === 200 && /<html/i.test(await page.text()), `the viewer page answered ${page.status}`);
    const closed = text(await ask(ctx, '/close', 'sendMessage'));
    expect(/Port closed/.test(closed), `/close: ${closed}`);
    return `viewer page 200 on port ${ctx.streamPort}`;
  });

  const watchdogSec = 6 * s;
  await report.step(`the watchdog is fed (WatchdogSec=${watchdogSec} for the test elapses 3 times without a restart)`, async () => {
    await machine.sh(`mkdir -p ${path.dirname(DROP_IN)}; printf '%s\\n' '# system test only' '[Service]' ` +
      `'WatchdogSec=${watchdogSec}' 'RestartSec=1' >${DROP_IN}; systemctl daemon-reload; systemctl restart telepi`, 120_000 * s);
    const before = await machine.show('telepi', 'MainPID', 'NRestarts');
    await sleep(3 * watchdogSec * 1000);
    const after = await machine.show('telepi', 'MainPID', 'NRestarts', 'ActiveState');
    expect(after.ActiveState === 'active' && after.MainPID === before.MainPID && after.NRestarts === before.NRestarts,
      `restarted meanwhile: pid ${before.MainPID} → ${after.MainPID}, restarts ${before.NRestarts} → ${after.NRestarts}`);
    // The control: a stopped process stops feeding it, and systemd restarts it.
    await machine.sh(`kill -STOP ${after.MainPID}`);
    const restarted = await until(async () => (await machine.show('telepi', 'NRestarts')).NRestarts !== after.NRestarts,
      (watchdogSec + 20) * 1000 * s, 'a restart by the watchdog after SIGSTOP');
    expect(restarted, 'not restarted');
    await until(async () => (await machine.show('telepi', 'ActiveState')).ActiveState === 'active', 120_000 * s, 'active again');
    return 'and a SIGSTOPped process was restarted by it';
  });

  await report.step('a bad value in the env file: exit 78 named in the journal, and no restart loop', async () => {
    await machine.sh("cp -p /etc/telepi/telepi.env /root/telepi.env.good; echo 'STREAM_TTL=forever' >>/etc/telepi/telepi.env");
    await machine.exec(['systemctl', 'restart', 'telepi'], 120_000 * s);
    await sleep(5000);
    const unit = await machine.show('telepi', 'ActiveState', 'ExecMainStatus', 'NRestarts');
    await sleep(5000); // RestartSec=1: a loop would have restarted it by now.
    const later = await machine.show('telepi', 'ActiveState', 'NRestarts');
    const journal = await machine.sh('journalctl -u telepi -n 30 --no-pager -o cat');
    expect(unit.ExecMainStatus === '78', `exit status ${unit.ExecMainStatus}`);
    expect(later.ActiveState === 'failed' && later.NRestarts === unit.NRestarts, `restarted: ${unit.NRestarts} → ${later.NRestarts}`);
    expect(/STREAM_TTL/.test(journal), `the journal does not name STREAM_TTL:\n${tail(journal, 10)}`);
    await machine.sh(`mv /root/telepi.env.good /etc/telepi/telepi.env; rm -f ${DROP_IN}; rmdir --ignore-fail-on-non-empty ` +
      `${path.dirname(DROP_IN)}; systemctl daemon-reload; systemctl restart telepi`, 120_000 * s);
    return (/STREAM_TTL[^\n]*/.exec(journal)?.[0] ?? '').slice(0, 100);
  });

  await report.step('a second ./install.sh changes nothing and says so', async () => {
    const pid = (await machine.show('telepi', 'MainPID')).MainPID;
    const out = await install(ctx, 'second', [], 10 * 60_000 * s);
    expect(/Nothing changed: telepi is installed, up to date and running\./.test(out), `it did not say so:\n${tail(out)}`);
    expect(!/^ {4}\+ /m.test(out), `it ran commands:\n${out.split('\n').filter((l) => l.startsWith('    + ')).join('\n')}`);
    expect((await machine.show('telepi', 'MainPID')).MainPID === pid, 'the service was restarted');
  });

  await report.step('systemctl stop ends it cleanly: exit 0, the offset confirmed', async () => {
    const pushed = ctx.emu.pushText('/now', { chatId: OWNER, userId: OWNER }).update_id;
    await ctx.emu.waitForCall('sendMessage', (c) => Number(c.params.chat_id) === OWNER && /°C/.test(text(c)) &&
      c.atMs > performance.now() - 60_000 * s, 60_000 * s);
    await machine.sh('systemctl stop telepi', 60_000 * s);
    const unit = await machine.show('telepi', 'ExecMainStatus', 'Result', 'ActiveState');
    expect(unit.ExecMainStatus === '0' && unit.Result === 'success', `exit status ${unit.ExecMainStatus}, result ${unit.Result}`);
    expect(ctx.emu.confirmedOffset > pushed, `offset ${ctx.emu.confirmedOffset} does not confirm update ${pushed}`);
    return `offset ${ctx.emu.confirmedOffset} confirms update ${pushed}`;
  });

  await report.step('an upgrade after a new commit swaps the app and keeps the state', async () => {
    const stamp = await machine.sh('cat /opt/telepi/.telepi-install-stamp');
    await machine.sh("printf '\\n<!-- system test upgrade -->\\n' >>/root/telepi/README.md");
    const out = await install(ctx, 'upgrade', [], 20 * 60_000 * s);
    expect(/upgrading from/.test(out), `not an upgrade:\n${tail(out)}`);
    expect((await machine.sh('tail -n1 /opt/telepi/README.md')).includes('system test upgrade'), 'the new version is not in /opt/telepi');
    expect((await machine.sh('cat /opt/telepi/.telepi-install-stamp')) !== stamp, 'the stamp did not change');
    const status = text(await ask(ctx, '/status', 'sendMessage', (call) => /Reports:/.test(text(call))));
    expect(/Reports:.*1h/.test(status), `the subscription is gone: ${status}`);
  });

  await report.step('telepi doctor --as-service runs under the unit\'s hardening', async () => {
    const help = await machine.exec(['telepi', 'doctor', '--help'], 60_000 * s);
    if (!/as-service/.test(help.out)) return 'not run: this telepi has no doctor --as-service yet';
    const doctor = await machine.exec(['telepi', 'doctor', '--as-service'], 120_000 * s);
    writeFileSync(path.join(ctx.logDir, 'doctor.log'), doctor.out);
    expect(doctor.code === 0 && /✓ Bot API token: accepted/.test(doctor.out) && /✓ state directory/.test(doctor.out),
      `exit ${doctor.code ?? 'timeout'}:\n${tail(doctor.out)}`);
    return doctor.out.trim().split('\n').pop();
  });

  await report.step('MQTT_PASSWORD with spaces, quotes, $ and # reaches the service as typed, and no log', async () => {
    // A broker that is not there: the appliance must run on without it.
    await machine.sh(`umask 077; cat >/root/mqtt.env <<'EOF'\nMQTT_URL=mqtt://127.0.0.1:9\nMQTT_USERNAME=telepi\n` +
      `MQTT_PASSWORD='${MQTT_PASSWORD}'\nEOF`);
    await install(ctx, 'mqtt', ['-p', 'EnvironmentFile=/root/mqtt.env'], 10 * 60_000 * s);
    const pid = (await machine.show('telepi', 'MainPID')).MainPID;
    const environ = (await machine.sh(`tr '\\0' '\\n' </proc/${pid}/environ`)).split('\n');
    expect(environ.includes(`MQTT_PASSWORD=${MQTT_PASSWORD}`), `the service got ${environ.find((l) => l.startsWith('MQTT_PASSWORD=')) ?? 'none'}`);
    const now = text(await ask(ctx, '/now', 'sendMessage'));
    expect(/°C/.test(now), `/now with the broker away: ${now}`);
  });

  await report.step('--uninstall removes the service, app, command and user, keeping state and settings', async () => {
    await install(ctx, 'uninstall', [], 5 * 60_000 * s, ['--uninstall']);
    const left = await machine.sh('for p in /etc/systemd/system/telepi.service /opt/telepi /usr/local/bin/telepi ' +
      '/etc/modules-load.d/telepi.conf /var/lib/telepi /etc/telepi/telepi.env; do [ -e "$p" ] && echo "$p"; done; ' +
      'getent passwd telepi || true; systemctl is-active telepi || true');
    expect(left.trim() === '/var/lib/telepi\n/etc/telepi/telepi.env\ninactive', `left: ${left}`);
  });
  await report.step('--uninstall --purge removes the state and the settings too', async () => {
    await install(ctx, 'purge', [], 5 * 60_000 * s, ['--uninstall', '--purge']);
    const left = await machine.sh('for p in /var/lib/telepi /etc/telepi; do [ -e "$p" ] && echo "$p"; done; true');
    expect(left.trim() === '', `left: ${left}`);
  });

  await report.step('the token reached no log line', async () => {
    const journal = await machine.sh('journalctl --no-pager -o cat');
    expect(!journal.includes(TOKEN) && !journal.includes(TOKEN.split(':')[1] as string), 'the token is in the journal');
    expect(!installLog.includes(TOKEN), 'install.sh printed the token');
    expect(!journal.includes('w0rd'), 'the MQTT password is in the journal');
  });
}

/** Runs install.sh in the guest as a transient unit of its systemd (no terminal: nothing is asked). */
async function install(ctx: Context, name: string, properties: string[], timeoutMs: number, args: string[] = []): Promise<string> {
  // systemd counts a unit ended by SIGTERM (a guest shutting down) as a success: only this line proves the end.
  const result = await ctx.machine.exec(['systemd-run', '--pipe', '--wait', '--quiet', '--collect', '--service-type=exec',
    '-p', 'WorkingDirectory=/root/telepi', ...properties, '/bin/bash', '-c',
    'bash ./install.sh --force "$@"; code=$?; echo "[install.sh exited with $code]"; exit $code', 'install', ...args], timeoutMs);
  writeFileSync(path.join(ctx.logDir, `install-${name}.log`), result.out);
  if (result.code !== 0 || !result.out.includes('[install.sh exited with 0]')) {
    const end = /\[install.sh exited with (\d+)\]/.exec(result.out)?.[1];
    throw new Error(`install.sh ${args.join(' ')} ${end === undefined ? 'did not finish (stopped, or timed out)' : `exited with ${end}`}:\n${tail(result.out)}`);
  }
  return result.out;
}

/** Sends a command as the owner and waits for the bot's call of `method` to the owner's chat. */
async function ask(ctx: Context, command: string, method: string, match: (call: RecordedCall) => boolean = () => true): Promise<RecordedCall> {
  const since = performance.now();
  ctx.emu.pushText(command, { chatId: OWNER, userId: OWNER });
  return ctx.emu.waitForCall(method, (call) => call.atMs >= since && Number(call.params.chat_id) === OWNER && match(call),
    60_000 * ctx.slow).catch((error: unknown) => {
    throw new Error(`no ${method} after ${command}: ${(error as Error).message}`);
  });
}

function text(call: RecordedCall): string {
  const value = call.params.text ?? call.params.caption;
  return typeof value === 'string' ? value : '';
}

function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(500);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
}

/** A folder for this run's logs. */
export function logFolder(arch: Arch): string {
  return mkdtempSync(path.join(tmpdir(), `telepi-system-${arch}-`));
}
