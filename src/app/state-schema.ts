// What state.json may hold, checked entry by entry: one bad entry is set aside, the others are kept.

export interface Subscription {
  chatId: number;
  intervalMs: number;
  /** Wall-clock ms of the schedule's phase origin: reports fall on anchorMs + k·intervalMs. */
  anchorMs: number;
  /** REPORT_STYLE=edit: the live message the reports edit, kept so a restart edits it too. */
  liveMessageId?: number;
}

export interface AppState {
  version: 1;
  subscriptions: Subscription[];
  motion: { enabled: boolean };
  portMapping: { externalPort: number; createdAtMs: number } | null;
}

export const stateVersion = 1;

/** The bounds of every number in the state: a value outside them was not written by telepi. */
export const stateLimits = {
  minIntervalMs: 60_000,
  maxIntervalMs: 24 * 3_600_000,
  // 1970 is allowed: a Pi without a real-time clock may run on it until the first time sync.
  minEpochMs: 0,
  maxEpochMs: Date.UTC(2200, 0, 1),
} as const;

/** An entry of state.json that could not be used; `chatId` is the chat to tell, when it can be read. */
export interface SetAside {
  /** Where it was, like `subscriptions[3]` or `motion`. */
  where: string;
  entry: unknown;
  reason: string;
  chatId: number | null;
}

export type ParsedState =
  | { kind: 'ok'; state: AppState; setAside: SetAside[] }
  /** Nothing in it can be read: not JSON, not an object, no version. */
  | { kind: 'unreadable'; problem: string }
  /** Written by a newer telepi, whose format this one does not know: it must not be overwritten. */
  | { kind: 'newer'; version: number };

export function freshState(): AppState {
  return { version: stateVersion, subscriptions: [], motion: { enabled: false }, portMapping: null };
}

/** Reads state.json's text (a UTF-8 BOM, as some editors add, is ignored). */
export function parseState(text: string): ParsedState {
  const body = text.replace(/^\uFEFF/, '');
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { kind: 'unreadable', problem: body.trim() === '' ? 'is empty' : 'is not valid JSON' };
  }
  if (!isRecord(value)) return { kind: 'unreadable', problem: 'does not hold an object' };
  const version = value.version;
  if (typeof version === 'number' && Number.isInteger(version) && version > stateVersion) return { kind: 'newer', version };
  if (version !== stateVersion) return { kind: 'unreadable', problem: `has an unknown version ${shown(version)}` };

  const setAside: SetAside[] = [];
  const state = freshState();
  const subs = Array.isArray(value.subscriptions) ? (value.subscriptions as unknown[]) : [];
  const subscribed = new Set<number>();
  if (!Array.isArray(value.subscriptions) && value.subscriptions !== undefined) {
    setAside.push({ where: 'subscriptions', entry: value.subscriptions, reason: 'is not a list', chatId: null });
  }
  subs.forEach((entry, i) => {
    const problem = subscriptionProblem(entry);
    const chatId = isRecord(entry) && isChatId(entry.chatId) ? entry.chatId : null;
    if (problem === null && subscribed.has(chatId as number)) {
      setAside.push({ where: `subscriptions[${i}]`, entry, reason: `chat ${String(chatId)} is subscribed twice`, chatId: null });
    } else if (problem !== null) {
      setAside.push({ where: `subscriptions[${i}]`, entry, reason: problem, chatId });
    } else {
      const sub = entry as unknown as Subscription;
      // Only the known fields, so stray ones are not carried forward. A live message id that is not one
      // is dropped: it costs only the live message (a new one is sent), not the subscription.
      state.subscriptions.push({
        chatId: sub.chatId, intervalMs: sub.intervalMs, anchorMs: sub.anchorMs,
        ...(isMessageId(sub.liveMessageId) ? { liveMessageId: sub.liveMessageId } : {}),
      });
      subscribed.add(sub.chatId);
    }
  });
  if (isRecord(value.motion) && typeof value.motion.enabled === 'boolean') state.motion = { enabled: value.motion.enabled };
  else setAside.push({ where: 'motion', entry: value.motion, reason: 'motion.enabled is not true or false', chatId: null });
  const mappingProblem = portMappingProblem(value.portMapping);
  if (mappingProblem === null) {
    const mapping = value.portMapping as AppState['portMapping'];
    state.portMapping = mapping === null ? null : { externalPort: mapping.externalPort, createdAtMs: mapping.createdAtMs };
  } else {
    setAside.push({ where: 'portMapping', entry: value.portMapping, reason: mappingProblem, chatId: null });
  }
  return { kind: 'ok', state, setAside };
}

/** Says what is wrong with a would-be AppState, or null when every entry is valid: update()'s check. */
export function stateProblem(state: AppState): string | null {
  if (state.version !== stateVersion) return `version ${shown(state.version)}, expected ${stateVersion}`;
  if (!Array.isArray(state.subscriptions)) return 'subscriptions is not a list';
  const chats = new Set<number>();
  for (const sub of state.subscriptions) {
    const problem = subscriptionProblem(sub);
    if (problem !== null) return `bad subscription ${shown(sub)}: ${problem}`;
    if (sub.liveMessageId !== undefined && !isMessageId(sub.liveMessageId)) return `liveMessageId ${shown(sub.liveMessageId)} is not a message id (a positive whole number)`;
    if (chats.has(sub.chatId)) return `chat ${sub.chatId} subscribed twice`;
    chats.add(sub.chatId);
  }
  if (!isRecord(state.motion) || typeof state.motion.enabled !== 'boolean') return 'motion.enabled is not a boolean';
  return portMappingProblem(state.portMapping);
}

/** Why a subscription entry is unusable, or null. */
export function subscriptionProblem(entry: unknown): string | null {
  if (!isRecord(entry)) return 'not an object';
  const { chatId, intervalMs, anchorMs } = entry;
  if (!isChatId(chatId)) return `chatId ${shown(chatId)} is not a chat id (a non-zero whole number)`;
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs)
    || intervalMs < stateLimits.minIntervalMs || intervalMs > stateLimits.maxIntervalMs) {
    return `intervalMs ${shown(intervalMs)} is not from 1m to 24h`;
  }
  if (!isEpochMs(anchorMs)) return `anchorMs ${shown(anchorMs)} is not a time between 1970 and 2200`;
  return null;
}

function isMessageId(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function portMappingProblem(mapping: unknown): string | null {
  if (mapping === null) return null;
  if (!isRecord(mapping) || typeof mapping.externalPort !== 'number' || !Number.isInteger(mapping.externalPort)
    || mapping.externalPort < 1 || mapping.externalPort > 65535 || !isEpochMs(mapping.createdAtMs)) {
    return 'portMapping is neither null nor { externalPort (1–65535), createdAtMs }';
  }
  return null;
}

/**
 * A value as it appears in a reason: JSON, cut to 200 characters. A value nested thousands deep (a
 * damaged or hand-made file) cannot be stringified at all: it is named, not shown.
 */
export function shown(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return Array.isArray(value) ? 'a list nested too deep to show' : 'a value too deep to show';
  }
  if (text === undefined) return String(value);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

function isChatId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value !== 0;
}

function isEpochMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= stateLimits.minEpochMs && value <= stateLimits.maxEpochMs;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
