// A webhook for node:http: Telegram POSTs each update, it goes through the same dispatch as the message
// loop, and the request is answered once the handler has finished with it, so a crash means a resend.

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Update } from '@grammyjs/types';
import type { Bot } from './bot.js';
import type { Handler } from './delivery.js';
import type { Msg, Payload } from './glance.js';
import { describeError } from './log.js';

/** `P`: the payloads the handler takes (Msg by default; Payload when setWebhook's allowed_updates asks for more kinds). */
export interface WebhookOptions<P extends Payload = Msg> {
  /** The `secret_token` given to setWebhook: a request without it (X-Telegram-Bot-Api-Secret-Token) gets 401. */
  secretToken?: string;
  /** Default: the bot's handle(). */
  handler?: Handler<P>;
  /** The largest body accepted, in bytes (Telegram's updates are far smaller). */
  maxBodyBytes?: number;
  /**
   * Answer after this long even if the handler has not finished (logged, naming the update): Telegram
   * would otherwise give up on the request and send the update again while it is still being handled.
   */
  answerWithinMs?: number;
}

/** A `(req, res)` listener for `http.createServer` that feeds `bot.handleUpdate()`. */
export function webhookCallback<P extends Payload = Msg>(bot: Bot, options: WebhookOptions<P> = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const answerWithinMs = options.answerWithinMs ?? 50_000;
  const secret = options.secretToken === undefined ? undefined : Buffer.from(options.secretToken);
  return (req, res) => {
    const refuse = (status: number, why: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close', ...headers }).end(`${why}\n`);
      req.resume();
    };
    if (req.method !== 'POST') return refuse(405, 'Telegram sends updates with POST', { allow: 'POST' });
    if (secret !== undefined && !sameSecret(secret, req.headers['x-telegram-bot-api-secret-token'])) {
      return refuse(401, 'wrong or missing X-Telegram-Bot-Api-Secret-Token');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        refuse(413, `an update is at most ${maxBodyBytes} bytes`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (res.headersSent) return;
      let update: Update;
      try {
        update = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Update;
      } catch {
        return refuse(400, 'the body is not JSON');
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const answer = () => {
        clearTimeout(timer);
        if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      };
      bot.handleUpdate(update, options.handler).then(answer, (error: unknown) => {
        clearTimeout(timer);
        refuse(400, describeError(error));
      });
      timer = setTimeout(() => {
        bot.log.warn(`update ${update.update_id} is still unfinished after ${answerWithinMs} ms: answering the webhook anyway, so it will not come again`);
        answer();
      }, answerWithinMs);
    });
  };
}

function sameSecret(expected: Buffer, given: string | string[] | undefined): boolean {
  if (typeof given !== 'string') return false;
  const bytes = Buffer.from(given);
  return bytes.length === expected.length && timingSafeEqual(bytes, expected);
}
