// The package as a stranger gets it: `npm pack`, installed into an empty project, type-checked there
// under strict + exactOptionalPropertyTypes, and a three-line bot run against the emulator.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BotApiEmulator } from '../src/emulator/index.js';
import { TOKEN } from './support.js';

const run = promisify(execFile);
const repo = new URL('..', import.meta.url).pathname;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const consumerBot = `import { Bot, isText } from 'telepi';
import { createHardware, type Hardware } from 'telepi/hardware';

const bot = new Bot(process.env.BOT_TOKEN ?? '', { apiRoot: process.env.API_ROOT ?? '' });
const loop = bot.messageLoop(async (msg) => {
  if (isText(msg)) await bot.sendMessage(msg.chat.id, \`echo: \${msg.text.toUpperCase()}\`);
  void loop.stop().then(() => bot.close());
});
const device: ((options: { kind: 'simulated' }) => Promise<Hardware>) | undefined = createHardware;
console.log(typeof device);
// Proves the types are telepi's (not any) and the flag is on: an explicit undefined is refused.
// @ts-expect-error exactOptionalPropertyTypes: apiRoot may be left out, not set to undefined
export const neverCalled = (): Bot => new Bot('1:x', { apiRoot: undefined });
`;

const consumerConfig = {
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, exactOptionalPropertyTypes: true,
    // skipLibCheck as most projects set it (checking all of @types/node would triple this test's time);
    // telepi's declarations carry no bodies, so nothing of telepi's own code is checked under these flags.
    noUncheckedIndexedAccess: true, skipLibCheck: true, types: ['node'], outDir: 'out',
  },
  files: ['bot.ts'],
};

test('npm pack makes a package that installs, type-checks strictly and runs a bot', { timeout: 240_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'telepi-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  // Packed from a copy, so that the build it runs never touches this checkout's dist/.
  const source = join(work, 'source');
  await mkdir(source);
  const skipped = new Set(['node_modules', 'dist', '.git', 'test', 'bench', 'coverage', '.scratch', 'scratch', '.telepi-demo']);
  for (const entry of await readdir(repo)) {
    if (!skipped.has(entry)) await cp(join(repo, entry), join(source, entry), { recursive: true });
  }
  await symlink(join(repo, 'node_modules'), join(source, 'node_modules'));
  const packed = await run(npm, ['pack', '--json', '--pack-destination', work], { cwd: source, maxBuffer: 16 * 1024 * 1024 });
  const [{ filename, files }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [{ filename: string; files: Array<{ path: string }> }];
  const paths = files.map((f) => f.path);
  for (const path of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/hardware/index.js', 'dist/hardware/index.d.ts', 'bin/telepi.js']) {
    assert.ok(paths.includes(path), `the tarball holds ${path}`);
  }
  assert.ok(!paths.some((path) => path.startsWith('src/') || path.startsWith('test/')), 'no sources or tests in the tarball');

  const consumer = join(work, 'consumer');
  await mkdir(consumer);
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await writeFile(join(consumer, 'tsconfig.json'), JSON.stringify(consumerConfig));
  await writeFile(join(consumer, 'bot.ts'), consumerBot);
  // This checkout's npm cache: the registry is asked only for what it lacks.
  await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=optional', '--ignore-scripts', join(work, filename), '@types/node@20'], {
    cwd: consumer, maxBuffer: 16 * 1024 * 1024,
  });
  assert.deepEqual(await readdir(join(consumer, 'node_modules', 'telepi', 'dist', 'src')).then((names) => names.includes('index.d.ts')), true);
  // This checkout's compiler (the same 5.9 a consumer would pin), saving the install of a 20 MB package.
  const tsc = await run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: consumer }).catch((error: { stdout?: string }) => {
    assert.fail(`the consumer's strict type check failed:\n${error.stdout ?? String(error)}`);
  });
  assert.equal(tsc.stdout, '');

  const emu = await BotApiEmulator.start({ token: TOKEN });
  t.after(() => emu.close());
  emu.pushText('hello', { chatId: 77 });
  const started = run(process.execPath, [join(consumer, 'out', 'bot.js')], {
    cwd: consumer, env: { PATH: process.env.PATH, BOT_TOKEN: TOKEN, API_ROOT: emu.apiRoot }, timeout: 30_000,
  });
  const { stdout } = await started;
  assert.equal(stdout.trim(), 'function', "'telepi/hardware' loads");
  assert.deepEqual(emu.sentMessages(77).map((m) => ('text' in m ? m.text : '')), ['echo: HELLO']);
});
