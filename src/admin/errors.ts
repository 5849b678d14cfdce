// The admin API's error, answered as {"error": {"code", "message", "details"?}} with the HTTP status, and the
// readers of request input that every admin route plugin shares.

import type { FastifyRequest } from 'fastify';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The JSON body as an object (absent: an empty one); anything else is a 400. */
export function body<T extends Record<string, unknown>>(req: FastifyRequest): T {
  const b = req.body;
  if (b === undefined || b === null) return {} as T;
  if (typeof b !== 'object' || Array.isArray(b)) throw new ApiError(400, 'invalid_body', 'the request body must be a JSON object');
  return b as T;
}

/** A `limit` query parameter: a whole number from 1 to `max`; the default when absent; 400 otherwise. */
export function limitParam(value: unknown, fallback: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ApiError(400, 'invalid_limit', `'limit' must be a whole number from 1 to ${max}`);
  return Math.min(n, max);
}
