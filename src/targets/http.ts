// The HTTP layer shared by the application clients: JSON requests below a base URL with the connection's
// credentials, a per-request timeout, a keep-alive agent (with an extra trusted CA when configured), and
// the retry policy: 429, 500, 502, 503, 504, timeouts and refused or dropped connections are tried again
// after a jittered exponential back-off or the application's Retry-After. A 429 holds back every request
// of the same client until its Retry-After has passed, so concurrent callers do not keep hammering a
// throttled application. Refusals become TargetErrors whose messages quote the product's own words.

import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AppConnection, TargetErrorCode } from './types.ts';
import { TargetError } from './types.ts';

/** Counts for a run's report: tries sent, tries repeated, and 429s received. */
export interface TargetCounters {
  requests: number;
  retries: number;
  throttled: number;
}

export interface HttpOptions {
  /** the product's name in messages: 'Jira' */
  product: string;
  /** requests the caller runs at once; the agent keeps that many connections open */
  concurrency?: number;
  /** stops waits and requests in flight when the service stops */
  signal?: AbortSignal;
  /** headers sent with every request, e.g. Atlassian's XSRF opt-out */
  headers?: Record<string, string>;
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: Method;
  /** below the base URL, path segments already encoded: `/rest/api/2/user` */
  path: string;
  query?: Query;
  /** sent as JSON */
  body?: unknown;
  /** what the request does, for messages: `create user "jdoe"` */
  what: string;
  /** statuses besides 2xx that the caller handles itself: returned rather than thrown */
  expect?: readonly number[];
  /** the error code for a refusal; the default mapping applies where this returns undefined */
  classify?: (failure: HttpFailure) => TargetErrorCode | undefined;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Record<string, string>;
  /** the parsed JSON body, undefined when empty or not JSON */
  body: T | undefined;
  /**
   * an earlier try of this request may have reached the application (it timed out, the connection
   * dropped or the application failed with 5xx), so a 'taken' answer may be our own earlier try
   */
  ambiguous: boolean;
}

/** A refusal, for classifying. */
export interface HttpFailure {
  status: number;
  body: unknown;
  /** the product's own message, when it sent one */
  detail: string | undefined;
  ambiguous: boolean;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** network errors worth another try; anything else (unknown host, bad certificate) is configuration */
const RETRY_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'UND_ERR_SOCKET']);
const FIRST_BACKOFF_MS = 250;

export const LICENCE_WORDING = /licen[cs](e|ing)|\bseats?\b|user limit/i;
export const EXISTS_WORDING = /already exist|already in use|already taken|exists|duplicate|not unique|uniqueness/i;

class TimeoutError extends Error {}
class StoppedError extends Error {}

export class HttpClient {
  readonly counters: TargetCounters = { requests: 0, retries: 0, throttled: 0 };
  private readonly base: string;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly authorization: string;
  /** no request of this client is sent before this time (a 429's Retry-After) */
  private notBefore = 0;
  /** what to end when the service stops: one listener on the signal for all waits and requests */
  private readonly stoppers = new Set<() => void>();
  private readonly stopAll = (): void => {
    for (const stop of [...this.stoppers]) stop();
  };

  constructor(
    private readonly conn: AppConnection,
    private readonly options: HttpOptions,
  ) {
    const url = new URL(conn.baseUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TargetError('invalid', `The ${options.product} URL must start with https:// or http://.`);
    this.base = conn.baseUrl.replace(/\/+$/, '');
    const sockets = Math.max(1, options.concurrency ?? 16);
    if (url.protocol === 'https:') {
      this.transport = https;
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets: sockets,
        maxFreeSockets: sockets,
        // one secure context for every connection: building one parses every root certificate again
        ...(conn.caCertificate ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, conn.caCertificate] }) } : {}),
      });
    } else {
      this.transport = http;
      this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
    }
    options.signal?.addEventListener('abort', this.stopAll, { once: true });
    this.authorization =
      conn.auth.type === 'token' ? `Bearer ${conn.auth.token}` : `Basic ${Buffer.from(`${conn.auth.username}:${conn.auth.password}`, 'utf8').toString('base64')}`;
  }

  get product(): string {
    return this.options.product;
  }

  /** GET and return the JSON body. */
  async get<T>(path: string, query: Query | undefined, what: string): Promise<T> {
    const res = await this.request<T>({ method: 'GET', path, ...(query ? { query } : {}), what });
    return res.body as T;
  }

  /** Send with the retry policy; resolves with 2xx and `expect`ed statuses, throws a TargetError otherwise. */
  async request<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
    const url = this.url(req.path, req.query);
    const headers: Record<string, string> = {
      ...this.options.headers,
      accept: 'application/json',
      authorization: this.authorization,
      'user-agent': 'usersync',
    };
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body), 'utf8');
      headers['content-type'] = 'application/json';
    }
    if (payload || req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') headers['content-length'] = String(payload?.length ?? 0);

    const tries = 1 + Math.max(0, this.conn.retries);
    let ambiguous = false;
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= tries;
      await this.waitTurn(req);
      let raw: RawResponse;
      try {
        this.counters.requests++;
        raw = await this.send(url, req.method, headers, payload);
      } catch (e) {
        if (e instanceof StoppedError) throw this.stopped(req);
        const retryable = e instanceof TimeoutError || RETRY_ERRNOS.has((e as NodeJS.ErrnoException).code ?? '');
        // a refused connection never reached the application; anything later may have
        if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED') ambiguous = true;
        if (!retryable || last) throw this.networkError(req, e, attempt + 1);
        this.counters.retries++;
        await this.sleep(this.backoff(attempt));
        continue;
      }

      const { status } = raw;
      if (status >= 200 && status < 300) {
        const body = parseJson(raw.text);
        // an HTML page with 200 (a sign-in page, a proxy's notice) must not read as "nothing there"
        if (body === undefined && raw.text.trim() !== '') {
          throw new TargetError('unavailable', `${this.product} answered a request to ${req.what} with a page that is not JSON (HTTP ${status}); check the base URL and that no sign-in page or proxy stands in the way.`, status);
        }
        return { status, headers: raw.headers, body: body as T | undefined, ambiguous };
      }
      if (req.expect?.includes(status)) return { status, headers: raw.headers, body: parseJson(raw.text) as T | undefined, ambiguous };

      const body = parseJson(raw.text);
      const detail = productMessage(body, raw.text);
      if (RETRY_STATUSES.has(status)) {
        const retryAfter = parseRetryAfter(raw.headers['retry-after']);
        if (status === 429) {
          this.counters.throttled++;
          const wait = retryAfter ?? this.backoff(attempt);
          this.notBefore = Math.max(this.notBefore, Date.now() + wait);
          // a longer wait than we may make is the application's answer for now: the caller reschedules
          if (last || wait > this.conn.maxRetryWaitMs) throw this.throttledError(req, attempt + 1, wait, detail);
          this.counters.retries++;
          continue; // waitTurn() waits out the Retry-After, together with every other request
        }
        ambiguous = true;
        if (last) {
          throw new TargetError('unavailable', `${this.product} failed to ${req.what} (HTTP ${status}) ${triesText(attempt + 1)}${detail ? `: ${sentence(detail)}` : '.'}`, status, retryAfter);
        }
        this.counters.retries++;
        await this.sleep(Math.min(retryAfter ?? this.backoff(attempt), this.conn.maxRetryWaitMs));
        continue;
      }

      const failure: HttpFailure = { status, body, detail, ambiguous };
      const code = req.classify?.(failure) ?? defaultCode(status, detail);
      throw this.refusal(code, req.what, failure);
    }
  }

  /** A pause that ends early (with a TargetError) when the service stops. */
  wait(ms: number): Promise<void> {
    return this.sleep(ms);
  }

  /** A TargetError for a refusal, worded like the ones request() throws. */
  refusal(code: TargetErrorCode, what: string, failure: HttpFailure): TargetError {
    const why = failure.detail ? `: ${sentence(failure.detail)}` : '.';
    if (failure.status >= 300 && failure.status < 400) {
      return new TargetError(code, `${this.product} answered a request to ${what} with a redirect (HTTP ${failure.status}); check the base URL and that the credentials are accepted without a browser sign-in.`, failure.status);
    }
    if (failure.status === 401) return new TargetError(code, `${this.product} did not accept the credentials when asked to ${what} (HTTP 401)${why}`, 401);
    return new TargetError(code, `${this.product} refused to ${what} (HTTP ${failure.status})${why}`, failure.status);
  }

  close(): void {
    this.options.signal?.removeEventListener('abort', this.stopAll);
    this.agent.destroy();
  }

  private url(path: string, query: Query | undefined): URL {
    const url = new URL(this.base + (path.startsWith('/') ? path : `/${path}`));
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) url.searchParams.append(k, String(v));
    return url;
  }

  /** Waits while a 429 holds this client back; fails at once when that is longer than a wait may be. */
  private async waitTurn(req: HttpRequest): Promise<void> {
    for (;;) {
      if (this.options.signal?.aborted) throw this.stopped(req);
      const wait = this.notBefore - Date.now();
      if (wait <= 0) return;
      if (wait > this.conn.maxRetryWaitMs) throw this.throttledError(req, 0, wait, undefined);
      await this.sleep(wait);
    }
  }

  /** equal jitter: half the doubling ceiling for certain, the other half at random */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.conn.maxRetryWaitMs, FIRST_BACKOFF_MS * 2 ** attempt);
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stopped = () => new TargetError('unavailable', `Stopped waiting for ${this.product}: the service is stopping.`);
      if (this.options.signal?.aborted) return reject(stopped());
      const stop = () => {
        clearTimeout(timer);
        this.stoppers.delete(stop);
        reject(stopped());
      };
      const timer = setTimeout(() => {
        this.stoppers.delete(stop);
        resolve();
      }, Math.max(0, ms));
      this.stoppers.add(stop);
    });
  }

  private send(url: URL, method: Method, headers: Record<string, string>, payload: Buffer | undefined): Promise<RawResponse> {
    const timeoutMs = this.conn.timeoutMs;
    return new Promise((resolve, reject) => {
      if (this.options.signal?.aborted) return reject(new StoppedError());
      let timer: NodeJS.Timeout | undefined;
      const stop = () => req.destroy(new StoppedError());
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.stoppers.delete(stop);
        fn();
      };
      const req = this.transport.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish(() => reject(e)));
        res.on('aborted', () => finish(() => reject(Object.assign(new Error('the connection dropped in the middle of the response'), { code: 'ECONNRESET' }))));
        res.on('end', () => {
          if (!res.complete) return finish(() => reject(Object.assign(new Error('the connection dropped in the middle of the response'), { code: 'ECONNRESET' })));
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
          finish(() => resolve({ status: res.statusCode ?? 0, headers: out, text: Buffer.concat(chunks).toString('utf8') }));
        });
      });
      // the clock starts with a connection: waiting for a free socket is the caller's queue, not a timeout
      req.once('socket', () => {
        timer = setTimeout(() => req.destroy(new TimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      req.on('error', (e) => finish(() => reject(e)));
      this.stoppers.add(stop);
      if (payload) req.write(payload);
      req.end();
    });
  }

  private stopped(req: HttpRequest): TargetError {
    return new TargetError('unavailable', `Stopped before ${this.product} could ${req.what}: the service is stopping.`);
  }

  private throttledError(req: HttpRequest, tries: number, waitMs: number, detail: string | undefined): TargetError {
    const seconds = Math.ceil(waitMs / 1000);
    const asked = `it asks to wait ${seconds} s`;
    const message =
      tries === 0
        ? `${this.product} is throttling requests (HTTP 429), so this client did not ask it to ${req.what}; ${asked}.`
        : `${this.product} throttled the request to ${req.what} (HTTP 429) ${triesText(tries)}; ${asked}${detail ? ` (${detail.replace(/[.\s]+$/, '')})` : ''}.`;
    return new TargetError('throttled', message, 429, waitMs);
  }

  private networkError(req: HttpRequest, e: unknown, tries: number): TargetError {
    if (e instanceof TimeoutError) {
      return new TargetError('unavailable', `${this.product} did not answer within ${this.conn.timeoutMs} ms when asked to ${req.what} ${triesText(tries)}.`);
    }
    const err = e as NodeJS.ErrnoException;
    const why = (err.message || err.code || String(e)).replace(/[.\s]+$/, '');
    return new TargetError('unavailable', `${this.product} could not be reached to ${req.what} ${triesText(tries)}: ${why}.`);
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

function triesText(tries: number): string {
  return tries === 1 ? 'on the only try' : `after ${tries} tries`;
}

function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function parseJson(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Seconds (possibly fractional) or an HTTP date, as milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The product's own words from an error body: Jira `errorMessages` and `errors`, Confluence `message`,
 * Bitbucket `errors[].message`, SCIM `detail`, Atlassian Cloud gateway `error`. A short plain-text body
 * is used as it is; HTML pages are not quoted.
 */
export function productMessage(body: unknown, text = ''): string | undefined {
  const parts: string[] = [];
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (Array.isArray(b.errorMessages)) for (const m of b.errorMessages) if (typeof m === 'string' && m.trim()) parts.push(m.trim());
    if (b.errors && typeof b.errors === 'object' && !Array.isArray(b.errors)) {
      for (const [field, m] of Object.entries(b.errors as Record<string, unknown>)) if (typeof m === 'string' && m.trim()) parts.push(`${field}: ${m.trim()}`);
    }
    if (Array.isArray(b.errors)) for (const e of b.errors) if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') parts.push((e as { message: string }).message.trim());
    if (typeof b.detail === 'string' && b.detail.trim()) parts.push(b.detail.trim());
    if (!parts.length && typeof b.message === 'string' && b.message.trim()) parts.push(b.message.trim());
    const data = b.data as { errors?: unknown } | undefined;
    if (data && Array.isArray(data.errors)) {
      for (const e of data.errors) {
        const m = (e as { message?: { translation?: unknown; key?: unknown } } | undefined)?.message;
        if (typeof m?.translation === 'string') parts.push(m.translation);
      }
    }
    if (!parts.length && typeof b.error === 'string' && b.error.trim()) parts.push(b.error.trim());
  } else if (text && !text.includes('<') && text.length <= 300) {
    parts.push(text.trim());
  }
  const joined = parts.map((p) => p.replace(/[.\s]+$/, '')).filter(Boolean).join('; ');
  return joined || undefined;
}

function defaultCode(status: number, detail: string | undefined): TargetErrorCode {
  const d = detail ?? '';
  if (status === 401) return 'auth';
  if (status === 402) return 'licence';
  if (status === 403) return LICENCE_WORDING.test(d) ? 'licence' : 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return EXISTS_WORDING.test(d) ? 'exists' : 'conflict';
  if (status === 400 || status === 422) return 'invalid';
  return 'failed';
}

/** A returned (`expect`ed) error response as a failure, for classifying and wording. */
export function failureOf(res: HttpResponse): HttpFailure {
  return { status: res.status, body: res.body, detail: productMessage(res.body), ambiguous: res.ambiguous };
}

/** Encode one path segment (a username or group name may hold slashes, spaces or '#'). */
export function seg(value: string): string {
  // URL parsing resolves "." and ".." (encoded or not), which would address another resource
  if (value === '.' || value === '..' || value === '') throw new TargetError('invalid', `"${value}" cannot be used as a name in a URL path.`);
  return encodeURIComponent(value);
}
