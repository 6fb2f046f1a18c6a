import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PortMapError, UpnpcPortMapper, unreachableRange, type SetTimer } from '../hardware/portmap.js';

const FAKE_BIN = fileURLToPath(new URL('./fakes/bin', import.meta.url));
const TOKEN = '123456:secret-token-the-child-must-not-see';
const homes: string[] = [];
after(() => Promise.all(homes.map((home) => rm(home, { recursive: true, force: true }))));

interface FakeRouter {
  mode?: string;
  mappings?: Record<string, { internalClient: string; internalPort: number; description: string; leaseSeconds: number }>;
  runs?: Array<{ argv: string[]; envKeys: string[]; pid: number }>;
}

/** A fresh fake router: $HOME/.fake-upnpc.json in a temporary HOME, and fakes/bin first on PATH. */
async function router(config: FakeRouter = {}) {
  const home = await mkdtemp(join(tmpdir(), 'telepi-upnpc-'));
  homes.push(home);
  const file = join(home, '.fake-upnpc.json');
  await writeFile(file, JSON.stringify(config));
  const env = { PATH: `${FAKE_BIN}${delimiter}${process.env.PATH}`, HOME: home, TELEGRAM_BOT_TOKEN: TOKEN, SECRET_THING: 'x' };
  return {
    env,
    read: async (): Promise<FakeRouter> => JSON.parse(await readFile(file, 'utf8')) as FakeRouter,
  };
}

/** A scheduler the test fires by hand. */
function manualTimers() {
  const timers: Array<{ callback: () => void; delayMs: number; cancelled: boolean }> = [];
  const setTimer: SetTimer = (callback, delayMs) => {
    const timer = { callback, delayMs, cancelled: false };
    timers.push(timer);
    return () => { timer.cancelled = true; };
  };
  return { timers, setTimer, pending: () => timers.filter((t) => !t.cancelled) };
}

describe('UpnpcPortMapper', () => {
  test('adds a mapping with a lease, as upnpc -e telepi -a @ <internal> <external> TCP <seconds>', async () => {
    const r = await router();
    const mapper = new UpnpcPortMapper({ env: r.env });
    assert.deepEqual(await mapper.add(8080, 54321, 3600), { internalPort: 8080, externalPort: 54321, leaseSeconds: 3600 });
    const state = await r.read();
    assert.deepEqual(state.runs!.map((run) => run.argv), [['-e', 'telepi', '-a', '@', '8080', '54321', 'TCP', '3600']]);
    assert.deepEqual(state.mappings!['54321/TCP'], { internalClient: '192.168.1.50', internalPort: 8080, description: 'telepi', leaseSeconds: 3600 });
  });

  test('removes a mapping, and a mapping already gone is not an error', async () => {
    const r = await router();
    const mapper = new UpnpcPortMapper({ env: r.env });
    await mapper.add(8080, 54321, 600);
    await mapper.remove(54321);
    assert.deepEqual((await r.read()).mappings, {});
    await mapper.remove(54321); // upnpc: "failed with code : 714", exit 2
    assert.deepEqual((await r.read()).runs!.at(-1)!.argv, ['-d', '54321', 'TCP']);
  });

  test('reads the external address from upnpc -s', async () => {
    const r = await router();
    assert.equal(await new UpnpcPortMapper({ env: r.env }).externalIp(), '203.0.113.7');
    assert.deepEqual((await r.read()).runs![0]!.argv, ['-s']);
  });

  test('no external address (failed, or 0.0.0.0) is null, though upnpc exits 0', async () => {
    for (const mode of ['noip', 'zeroip']) {
      const r = await router({ mode });
      assert.equal(await new UpnpcPortMapper({ env: r.env }).externalIp(), null, mode);
    }
  });

  test('a carrier-grade NAT address is reported as it is, and unreachableRange says why it cannot work', async () => {
    const r = await router({ mode: 'cgnat' });
    const ip = await new UpnpcPortMapper({ env: r.env }).externalIp();
    assert.equal(ip, '100.64.12.34');
    assert.match(unreachableRange(ip!)!, /carrier-grade NAT/);
  });

  for (const mode of ['noigd', 'novalid']) {
    test(`no gateway (${mode}) says to enable UPnP or use the LAN link`, async () => {
      const r = await router({ mode });
      const mapper = new UpnpcPortMapper({ env: r.env });
      await assert.rejects(mapper.add(8080, 54321, 3600),
        { name: 'PortMapError', code: 'NO_IGD', message: 'no UPnP router answered: enable UPnP on the router, or use the LAN link' });
      await assert.rejects(mapper.externalIp(), { code: 'NO_IGD' });
    });
  }

  test('a conflicting mapping (718) says to pick another port', async () => {
    const r = await router({ mode: 'conflict' });
    await assert.rejects(new UpnpcPortMapper({ env: r.env }).add(8080, 54321, 3600), (err: PortMapError) => {
      assert.equal(err.code, 'CONFLICT');
      assert.equal(err.upnpCode, 718);
      assert.match(err.message, /map external port 54321 to 8080: the router already maps that port to another host \(UPnP error 718 ConflictInMappingEntry\): choose another external port/);
      return true;
    });
  });

  test('a missing upnpc says which package to install', async () => {
    const r = await router();
    const emptyBin = await mkdtemp(join(tmpdir(), 'telepi-empty-bin-'));
    homes.push(emptyBin);
    const mapper = new UpnpcPortMapper({ env: { ...r.env, PATH: emptyBin } });
    await assert.rejects(mapper.add(8080, 54321, 3600),
      { code: 'NOT_INSTALLED', message: 'upnpc not found: install it with apt install miniupnpc' });
  });

  test('a router that takes only permanent leases (725) gets one, removed when the lease would end', async () => {
    const r = await router({ mode: 'permanent-only' });
    const clock = manualTimers();
    let onLog: (message: string) => void = () => {};
    const logged = new Promise<string>((resolve) => { onLog = resolve; });
    const mapper = new UpnpcPortMapper({ env: r.env, setTimer: clock.setTimer, log: (m) => onLog(m) });

    assert.deepEqual(await mapper.add(8080, 54321, 3600), { internalPort: 8080, externalPort: 54321, leaseSeconds: 0 });
    const state = await r.read();
    assert.deepEqual(state.runs!.map((run) => run.argv.at(-1)), ['3600', '0']);
    assert.equal(state.mappings!['54321/TCP']!.leaseSeconds, 0);
    assert.deepEqual(clock.pending().map((t) => t.delayMs), [3_600_000]);

    clock.pending()[0]!.callback(); // the requested hour has passed
    assert.match(await logged, /removed the permanent mapping of external port 54321 after its requested 3600 s lease/);
    assert.deepEqual((await r.read()).mappings, {});
  });

  test('remove() cancels the self-removal of a permanent mapping', async () => {
    const r = await router({ mode: 'permanent-only' });
    const clock = manualTimers();
    const mapper = new UpnpcPortMapper({ env: r.env, setTimer: clock.setTimer });
    await mapper.add(8080, 54321, 3600);
    await mapper.remove(54321);
    assert.equal(clock.pending().length, 0);
  });

  test('asking for a permanent mapping schedules no removal', async () => {
    const r = await router();
    const clock = manualTimers();
    const mapping = await new UpnpcPortMapper({ env: r.env, setTimer: clock.setTimer }).add(8080, 54321, 0);
    assert.equal(mapping.leaseSeconds, 0);
    assert.equal(clock.timers.length, 0);
  });

  test('a hanging upnpc is killed at the timeout', async () => {
    const r = await router({ mode: 'hang' });
    const started = Date.now();
    await assert.rejects(new UpnpcPortMapper({ env: r.env, timeoutMs: 300 }).externalIp(), (err: PortMapError) => {
      assert.equal(err.code, 'TIMEOUT');
      assert.match(err.message, /^upnpc -s did not finish within 0\.3 s and was killed: .*use the LAN link/);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
    const [run] = (await r.read()).runs!;
    assert.throws(() => process.kill(run!.pid, 0), { code: 'ESRCH' }, 'the fake upnpc is gone');
  });

  test('upnpc never sees the bot token or anything else outside the short list', async () => {
    const r = await router();
    await new UpnpcPortMapper({ env: r.env }).externalIp();
    const [run] = (await r.read()).runs!;
    assert.ok(!run!.envKeys.includes('TELEGRAM_BOT_TOKEN'));
    assert.ok(!run!.envKeys.includes('SECRET_THING'));
    for (const key of run!.envKeys) assert.match(key, /^(PATH|HOME|LANG|LC_ALL|TZ|XDG_RUNTIME_DIR|LIBCAMERA_.*)$/);
  });

  test('refuses ports and leases outside their ranges before running anything', async () => {
    const mapper = new UpnpcPortMapper({ command: '/nonexistent/upnpc' });
    await assert.rejects(mapper.add(0, 54321, 60), RangeError);
    await assert.rejects(mapper.add(8080, 65536, 60), RangeError);
    await assert.rejects(mapper.add(8080, 54321, -1), RangeError);
    await assert.rejects(mapper.remove(1.5), RangeError);
  });
});

describe('unreachableRange', () => {
  test('knows the ranges the internet cannot reach', () => {
    for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', '100.64.0.1', '100.127.255.254', '169.254.1.1', '127.0.0.1']) {
      assert.notEqual(unreachableRange(ip), null, ip);
    }
    for (const ip of ['203.0.113.7', '172.32.0.1', '100.128.0.1', '8.8.8.8']) assert.equal(unreachableRange(ip), null, ip);
  });
});
