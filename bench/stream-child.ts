// Runs bench/stream.ts's relay benchmark in a fresh process, so its RSS figures are not blurred by the
// garbage the throughput runs left in the bench's own heap; the result goes back over IPC.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { StreamBenchResult } from './stream.js';

export async function runStreamBenchApart(): Promise<StreamBenchResult> {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  const [message] = (await Promise.race([once(child, 'message'), exited.then(([code]) => {
    throw new Error(`the stream benchmark exited (code ${String(code)}) without a result`);
  })])) as [StreamBenchResult | { error: string }];
  await exited;
  if ('error' in message) throw new Error(message.error);
  return message;
}

if (process.argv[2] === '--child' && process.send !== undefined) {
  const { runStreamBench } = await import('./stream.js');
  const result = await runStreamBench().catch((error: unknown) => ({ error: String(error) }));
  process.send(result, () => process.disconnect());
}
