/**
 * `limitBody(maxSize)`: Hono's `bodyLimit` answering 413 as problem details. Placed after the
 * auth check on each route, so a client without a token learns nothing by sending a large body.
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PayloadTooLargeError } from '../../errors.ts';

/** The default body limit: 2 MiB. */
export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

/**
 * Refuses bodies over `maxSize` bytes, by `Content-Length` or while reading a chunked body.
 *
 * @param maxSize The limit in bytes.
 *
 * @returns The middleware; it throws {@link PayloadTooLargeError} (`API4130`, 413).
 */
export function limitBody(maxSize: number = DEFAULT_BODY_LIMIT): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new PayloadTooLargeError(maxSize);
    },
  });
}
