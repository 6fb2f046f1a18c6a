// Reading method parameters the way the Bot API does: numbers may arrive as strings (form bodies),
// objects as JSON strings (any body), booleans as "true"/"false".
import { badRequest } from './http.js';

export type Params = Record<string, unknown>;

export function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

export function int(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number(value);
  return undefined;
}

export function num(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

export function bool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1' || value === 1) return true;
  if (value === 'false' || value === '0' || value === 0) return false;
  return undefined;
}

/** An object or array parameter, also when it arrived as a JSON string. */
export function json(value: unknown): unknown {
  if (typeof value === 'string') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  return value;
}

export function obj(value: unknown): Record<string, unknown> | undefined {
  const parsed = json(value);
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
}

export function arr(value: unknown): unknown[] | undefined {
  const parsed = json(value);
  return Array.isArray(parsed) ? parsed : undefined;
}

/** An integer parameter that must be there: otherwise 400 with `what`. */
export function requireInt(params: Params, name: string, what = `wrong parameter ${name} specified`): number {
  const value = int(params[name]);
  if (value === undefined) throw badRequest(what);
  return value;
}

/** Copies the listed optional parameters that are present, parsed as JSON when they are objects. */
export function pick(params: Params, names: string[], into: Record<string, unknown>): void {
  for (const name of names) {
    const value = params[name];
    if (value === undefined || value === null || value === '') continue;
    into[name] = typeof value === 'string' && /^\s*[[{]/.test(value) ? (json(value) ?? value) : value;
  }
}
