// Contestant: telepi from the built library, a DelegatorBot with one ChatHandler per chat (perChatId)
// that answers its first message and every later one with sendMessage, in the chat's order.
import { measureUpload, payloadStream, serve, settings } from './child-kit.mjs';

// The parent passes the built entry point (dist/src/index.js), so start-up is what users run.
const { ChatHandler, DelegatorBot, InputFile, createRun, perChatId } = await import(process.env.BENCH_TELEPI);

class Echo extends ChatHandler {
  async run() {
    await this.sender.sendMessage(this.initialMessage.text);
    for (;;) await this.sender.sendMessage((await this.listener.wait()).text);
  }
}

const options = settings.timeoutSeconds > 0 ? { timeout: settings.timeoutSeconds } : undefined;
// Resends on, pacing under Telegram's rates off: the peers do not pace either, and at 1 message/s per chat
// the 1-chat workload would measure the pacing, not the library.
const bot = new DelegatorBot(settings.token, [[perChatId(), createRun(Echo, options)]], { apiRoot: settings.apiRoot, flow: { limits: false } });
// BENCH_INBOX: the durable inbox in that folder (bench/delivery.ts measures its cost).
bot.messageLoop(undefined, process.env.BENCH_INBOX ? { inboxDir: process.env.BENCH_INBOX } : undefined);

serve({
  delegates: () => ({ delegateCount: bot.delegateCount, listeners: bot.mic.size, running: bot.runningTasks.size }),
  upload: ({ chatId, bytes }) =>
    measureUpload(() => bot.sendDocument(chatId, InputFile.fromStream(payloadStream(bytes), 'bench.bin'))),
});
