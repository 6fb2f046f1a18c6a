// `telepi run` for bench/hostile-http.ts with one change: the simulated camera stream repeats one JPEG 4 times a
// second instead of painting and encoding each frame in JavaScript, whose garbage swings RSS by tens of MB and
// would drown what an attack costs. Configuration, appliance, polling and stream server are the real ones.
// Started with --expose-gc it collects once a second, so RSS shows what an attack keeps, not how lazily V8 collects.
import { StreamAwareCamera } from '../hardware/camera.js';
import { createHardware } from '../hardware/index.js';
import { SimulatedCamera } from '../hardware/simulated/camera.js';
import { Appliance } from '../src/app/appliance.js';
import { loadConfig } from '../src/app/config.js';
import { createLogger, registerSecret } from '../src/log.js';
import { ManualFrameSource } from '../test/fakes/jpeg.js';

const config = loadConfig(process.env);
registerSecret(config.token);
const log = createLogger({ level: config.logLevel });
const hardware = await createHardware({ kind: 'simulated' });
const still = new SimulatedCamera();
const frame = await still.capture();
const stream = new ManualFrameSource();
await stream.stop(); // like a camera: no frame until the appliance starts it on /open
const ticker = setInterval(() => stream.running && stream.emit(frame), 250);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc !== undefined) setInterval(gc, 1000).unref();
const app = await Appliance.start({ config, hardware: { ...hardware, stream, camera: new StreamAwareCamera(still, stream) }, log });
process.once('SIGTERM', () => {
  clearInterval(ticker);
  void app.stop().then(() => hardware.close()).then(() => process.exit(0));
});
