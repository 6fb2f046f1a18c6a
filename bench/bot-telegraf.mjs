// Contestant: telegraf's documented long-polling set-up, launch(). For an http:// API root telegraf
// drops its keep-alive agent, so every call opens a new connection (noted beside its figures).
import { Telegraf } from 'telegraf';
import { message } from 'telegraf/filters';
import { serve, settings } from './child-kit.mjs';

const bot = new Telegraf(settings.token, { telegram: { apiRoot: settings.apiRoot } });
bot.on(message('text'), (ctx) => ctx.reply(ctx.message.text));
bot.catch((error) => console.error(`telegraf handler failed: ${error instanceof Error ? error.message : String(error)}`));
void bot.launch();

serve({});
