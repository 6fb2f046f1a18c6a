// Contestant: grammY in its documented long-polling set-up, bot.start() (updates one at a time), or
// with BENCH_RUNNER=1, @grammyjs/runner's run(bot) (updates concurrently).
import { Bot, InputFile } from 'grammy';
import { measureUpload, payloadStream, serve, settings } from './child-kit.mjs';

const bot = new Bot(settings.token, { client: { apiRoot: settings.apiRoot } });
bot.on('message:text', (ctx) => ctx.reply(ctx.message.text));
bot.catch((error) => console.error(`grammY handler failed: ${error.message}`));

if (process.env.BENCH_RUNNER === '1') {
  const { run } = await import('@grammyjs/runner');
  run(bot);
} else {
  void bot.start();
}

serve({
  upload: ({ chatId, bytes }) =>
    measureUpload(() => bot.api.sendDocument(chatId, new InputFile(payloadStream(bytes), 'bench.bin'))),
});
