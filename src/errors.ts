// The errors the library throws. None of their texts ever contains the bot token.

import type { ResponseParameters } from '@grammyjs/types';

/** The Bot API answered `ok: false`: carries the method, the error code, its description and parameters. */
export class TelegramError extends Error {
  override readonly name = 'TelegramError';
  readonly method: string;
  readonly errorCode: number;
  readonly description: string;
  readonly parameters: ResponseParameters;

  constructor(method: string, errorCode: number, description: string, parameters: ResponseParameters = {}) {
    super(`${method} failed: ${errorCode} ${description}${hintFor(errorCode)}`);
    this.method = method;
    this.errorCode = errorCode;
    this.description = description;
    this.parameters = parameters;
  }
}

function hintFor(errorCode: number): string {
  if (errorCode === 401 || errorCode === 404) {
    return ' (the bot token was rejected: check TELEGRAM_BOT_TOKEN against what @BotFather gave you)';
  }
  if (errorCode === 409) return ' (another program is receiving updates for this bot, or a webhook is set)';
  return '';
}

export type NetworkFailure = 'timeout' | 'network' | 'malformed' | 'aborted';

/** The request did not produce a Bot API answer: timeout, connection failure, or a body that is not one. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  readonly method: string;
  readonly failure: NetworkFailure;
  /** True when the request provably never reached the server (refused, no DNS, no route): safe to send again. */
  readonly notSent: boolean;

  constructor(method: string, failure: NetworkFailure, detail: string, cause?: unknown, notSent = false) {
    super(`${method} failed: ${detail}`, cause === undefined ? undefined : { cause });
    this.method = method;
    this.failure = failure;
    this.notSent = notSent;
  }
}

/** A `listener.wait()` saw no matching message within `listener.timeout` seconds. */
export class WaitTooLong extends Error {
  override readonly name = 'WaitTooLong';
  readonly seconds: number;

  constructor(seconds: number) {
    super(`no matching message within ${seconds} s`);
    this.seconds = seconds;
  }
}

/** The message loop stopped while a `listener.wait()` was pending. */
export class LoopStopped extends Error {
  override readonly name = 'LoopStopped';

  constructor() {
    super('the message loop stopped');
  }
}
