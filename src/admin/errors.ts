// The admin API's error: answered as {"error": {"code", "message", "details"?}} with the HTTP status.

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
