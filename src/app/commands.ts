// The appliance's commands: what each is called, who may run it, and how a message names one.

import type { BotCommand, BotCommandScope } from '@grammyjs/types';
import type { Role } from './auth.js';

export interface CommandSpec {
  name: string;
  /** Shown in /help and in Telegram's command menu. */
  description: string;
  /** The least role that may run it: owners may run everything. */
  role: Role;
  /** Shown in the menu (some commands, like /every, take an argument and are listed in /help only). */
  menu: boolean;
}

export const commands: readonly CommandSpec[] = [
  { name: 'now', description: 'Temperature, humidity and pressure now', role: 'user', menu: true },
  { name: '1m', description: 'Report now, then every minute', role: 'user', menu: true },
  { name: '1h', description: 'Report now, then every hour', role: 'user', menu: true },
  { name: 'every', description: 'Report every… (buttons, or /every 15m: 1m to 24h)', role: 'user', menu: true },
  { name: 'cancel', description: 'Stop this chat\'s reports', role: 'user', menu: true },
  { name: 'status', description: 'Reports, sensor, camera and uptime', role: 'user', menu: true },
  { name: 'chart', description: 'Chart of the last 24h (or /chart 7d, 30d, 1y)', role: 'user', menu: true },
  { name: 'alert', description: 'Alerts: /alert temp < 5, /alert off', role: 'user', menu: true },
  { name: 'open', description: 'Open a private link to the live camera', role: 'owner', menu: true },
  { name: 'close', description: 'Close the camera link', role: 'owner', menu: true },
  { name: 'photo', description: 'Take a photo', role: 'owner', menu: true },
  { name: 'motion', description: 'Photo on motion: /motion on or /motion off', role: 'owner', menu: false },
  { name: 'help', description: 'List the commands', role: 'user', menu: true },
];

export function findCommand(name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name || (name === 'start' && c.name === 'help'));
}

/** The menu of a role: only the commands it may run. */
export function menuCommands(role: Role = 'user'): BotCommand[] {
  return commands.filter((c) => c.menu && (role === 'owner' || c.role === 'user')).map((c) => ({ command: c.name, description: c.description }));
}

/** The menus registered at start-up: the users' by default, the owners' in each owner's private chat. */
export function scopedMenus(owners: readonly number[]): Array<{ commands: BotCommand[]; scope: BotCommandScope }> {
  return [
    { commands: menuCommands('user'), scope: { type: 'default' } },
    ...owners.map((owner) => ({ commands: menuCommands('owner'), scope: { type: 'chat' as const, chat_id: owner } })),
  ];
}

/** The /help text for a role: only the commands that role may run. */
export function helpText(role: Role): string {
  const lines = commands
    .filter((c) => role === 'owner' || c.role === 'user')
    .map((c) => `/${c.name} — ${c.description}`);
  return lines.join('\n');
}

export type ParsedText =
  | { kind: 'command'; name: string; args: string }
  | { kind: 'other-bot' }
  | { kind: 'text'; text: string };

/**
 * Reads `/name@Bot args`: the command name in lower case, and `other-bot` when it is addressed to
 * another bot in a group (which this bot must ignore).
 */
export function parseText(text: string, botUsername: string | undefined): ParsedText {
  const match = /^\/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]+))?(?:\s+([\s\S]*))?$/.exec(text.trim());
  if (match === null) return { kind: 'text', text };
  const [, name = '', addressee, args = ''] = match;
  if (addressee !== undefined && botUsername !== undefined && addressee.toLowerCase() !== botUsername.toLowerCase()) {
    return { kind: 'other-bot' };
  }
  return { kind: 'command', name: name.toLowerCase(), args: args.trim() };
}
