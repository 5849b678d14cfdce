// Microsoft Graph client for the pull source: tokens from Microsoft's own library (client credentials,
// renewed before expiry), JSON GETs with paging, and the retry policy Graph asks for: 429/503/504 honour
// Retry-After (fractional seconds), otherwise jittered exponential back-off; a dropped connection retries
// the same page; an expired token is renewed once. Only the authority host and Graph base URL differ
// between Microsoft's clouds (and any other Graph-compatible endpoint).

import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { ConfidentialClientApplication } from '@azure/msal-node';

export type NationalCloud = 'global' | 'usgov' | 'usgov-dod' | 'china';

/** Token service and Graph hosts per national cloud (learn.microsoft.com/graph/deployments). */
export const CLOUDS: Record<NationalCloud, { authorityHost: string; graphRoot: string }> = {
  global: { authorityHost: 'https://login.microsoftonline.com', graphRoot: 'https://graph.microsoft.com' },
  usgov: { authorityHost: 'https://login.microsoftonline.us', graphRoot: 'https://graph.microsoft.us' },
  'usgov-dod': { authorityHost: 'https://login.microsoftonline.us', graphRoot: 'https://dod-graph.microsoft.us' },
  china: { authorityHost: 'https://login.chinacloudapi.cn', graphRoot: 'https://microsoftgraph.chinacloudapi.cn' },
};

export interface GraphClientOptions {
  tenantId: string;
  clientId: string;
  /** a client secret, or a certificate registered on the app */
  clientSecret?: string;
  clientCertificate?: { certificate: string; privateKey: string };
  /**
   * a national cloud, or explicit hosts; `scope` defaults to `${graphRoot}/.default` (the token service
   * names the resource it issues tokens for, which a proxy or mirror of a cloud keeps)
   */
  cloud?: NationalCloud | { authorityHost: string; graphRoot: string; scope?: string };
  /** extra CA certificates (PEM) to trust besides the system's, e.g. for a TLS-inspecting proxy */
  caCertificates?: string;
  /** attempts per request before giving up (default 6) */
  maxAttempts?: number;
  /** longest single wait between attempts (default 60 s) */
  maxBackoffMs?: number;
  /** requests in flight at once (default 4) */
  concurrency?: number;
  /** per-request timeout (default 60 s) */
  timeoutMs?: number;
}

export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`Graph ${status} ${code}: ${message}`);
    this.name = 'GraphError';
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One HTTPS request; network failures reject (they are retried by the caller). */
function request(agent: https.Agent, url: string, init: { method: string; headers?: Record<string, string>; body?: string; timeoutMs: number }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method, agent, headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => reject(new Error('connection dropped in the middle of the response')));
      res.on('error', reject);
      res.on('end', () => {
        if (!res.complete) return reject(new Error('connection dropped in the middle of the response'));
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.setTimeout(init.timeoutMs, () => req.destroy(new Error(`no answer within ${init.timeoutMs} ms`)));
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

/** A small counting semaphore: bounded concurrency towards Graph. */
class Limiter {
  private active = 0;
  private waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    while (this.active >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export interface Page<T> {
  value: T[];
  nextLink?: string;
  deltaLink?: string;
}

export class GraphClient {
  readonly graphBase: string;
  private readonly agent: https.Agent;
  private readonly msal: ConfidentialClientApplication;
  private readonly scope: string;
  private readonly limiter: Limiter;
  private readonly maxAttempts: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  /** counters for runs and tests */
  readonly stats = { requests: 0, retries: 0, tokenRenewals: 0 };

  constructor(opts: GraphClientOptions) {
    const cloud = typeof opts.cloud === 'object' ? opts.cloud : CLOUDS[opts.cloud ?? 'global'];
    const authorityHost = cloud.authorityHost.replace(/\/+$/, '');
    const graphRoot = cloud.graphRoot.replace(/\/+$/, '').replace(/\/v1\.0$/, '');
    this.graphBase = `${graphRoot}/v1.0`;
    this.scope = (typeof opts.cloud === 'object' ? opts.cloud.scope : undefined) ?? `${graphRoot}/.default`;
    this.maxAttempts = opts.maxAttempts ?? 6;
    this.maxBackoffMs = opts.maxBackoffMs ?? 60_000;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.limiter = new Limiter(opts.concurrency ?? 4);
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: opts.concurrency ?? 4,
      // one secure context for every connection: building one parses every root certificate again
      ...(opts.caCertificates ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, opts.caCertificates] }) } : {}),
    });
    const agent = this.agent;
    const timeoutMs = this.timeoutMs;
    // MSAL's own HTTP goes through the same agent (and so trusts the same certificates).
    const networkClient: INetworkModule = {
      async sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
        const res = await request(agent, url, { method: 'GET', ...(options?.headers ? { headers: options.headers } : {}), timeoutMs });
        return { status: res.status, headers: res.headers, body: JSON.parse(res.body || '{}') as T };
      },
      async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
        const res = await request(agent, url, { method: 'POST', ...(options?.headers ? { headers: options.headers } : {}), ...(options?.body !== undefined ? { body: options.body } : {}), timeoutMs });
        return { status: res.status, headers: res.headers, body: JSON.parse(res.body || '{}') as T };
      },
    };
    let credential: { clientSecret: string } | { clientCertificate: { thumbprintSha256: string; privateKey: string; x5c: string } };
    if (opts.clientCertificate) {
      const cert = new X509Certificate(opts.clientCertificate.certificate);
      credential = {
        clientCertificate: {
          thumbprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
          privateKey: opts.clientCertificate.privateKey,
          x5c: opts.clientCertificate.certificate,
        },
      };
    } else if (opts.clientSecret) credential = { clientSecret: opts.clientSecret };
    else throw new Error('a Graph client needs a client secret or a certificate');
    this.msal = new ConfidentialClientApplication({
      auth: {
        clientId: opts.clientId,
        ...credential,
        authority: `${authorityHost}/${opts.tenantId}`,
        // the authority is named explicitly: no instance discovery round trip to the global cloud
        knownAuthorities: [new URL(authorityHost).host],
      },
      system: { networkClient },
    });
  }

  private cached: { token: string; renewAt: number } | undefined;

  /**
   * An access token, renewed five minutes before it expires (or at once when forced). MSAL caches it
   * too; keeping it here saves a cache lookup per request, which costs more than the request on loopback.
   */
  async token(forceRefresh = false): Promise<string> {
    if (!forceRefresh && this.cached && Date.now() < this.cached.renewAt) return this.cached.token;
    if (forceRefresh) this.stats.tokenRenewals++;
    let result;
    try {
      result = await this.msal.acquireTokenByClientCredential({ scopes: [this.scope], ...(forceRefresh ? { skipCache: true } : {}) });
    } catch (e) {
      const err = e as { errorCode?: string; errorMessage?: string; message?: string };
      throw new GraphError(401, err.errorCode ?? 'token_error', err.errorMessage ?? err.message ?? String(e));
    }
    if (!result?.accessToken) throw new GraphError(401, 'token_error', 'the token service returned no access token');
    const expires = result.expiresOn ? result.expiresOn.getTime() : Date.now() + 10 * 60_000;
    this.cached = { token: result.accessToken, renewAt: Math.max(Date.now(), expires - 5 * 60_000) };
    return result.accessToken;
  }

  private backoff(attempt: number, retryAfter: string | undefined): number {
    if (retryAfter !== undefined && /^\d+(\.\d+)?$/.test(retryAfter.trim())) return Math.min(this.maxBackoffMs, Math.ceil(Number(retryAfter) * 1000));
    // full jitter: a random wait up to an exponentially growing ceiling
    return Math.round(Math.random() * Math.min(this.maxBackoffMs, 500 * 2 ** attempt));
  }

  /** GET a Graph URL (absolute, or a path below the Graph base) as JSON, with the retry policy. */
  async get<T>(pathOrUrl: string, headers: Record<string, string> = {}): Promise<T> {
    const url = /^https:\/\//i.test(pathOrUrl) ? pathOrUrl : `${this.graphBase}${pathOrUrl.startsWith('/') ? '' : '/'}${pathOrUrl}`;
    return this.limiter.run(async () => {
      let renewed = false;
      let lastError: unknown;
      for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
        let res: RawResponse;
        try {
          const token = await this.token();
          this.stats.requests++;
          res = await request(this.agent, url, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...headers }, timeoutMs: this.timeoutMs });
        } catch (e) {
          if (e instanceof GraphError) throw e;
          // dropped connection or timeout: the same page again, after a pause
          lastError = e;
          this.stats.retries++;
          await sleep(this.backoff(attempt, undefined));
          continue;
        }
        if (res.status >= 200 && res.status < 300) return (res.body ? JSON.parse(res.body) : {}) as T;
        const err = parseError(res);
        if (res.status === 401 && err.code === 'InvalidAuthenticationToken' && !renewed) {
          renewed = true;
          await this.token(true);
          continue;
        }
        if (res.status === 429 || res.status === 503 || res.status === 504) {
          lastError = err;
          this.stats.retries++;
          await sleep(this.backoff(attempt, res.headers['retry-after']));
          continue;
        }
        throw err;
      }
      throw lastError instanceof Error ? lastError : new Error(String(lastError));
    });
  }

  /** The application permissions (`roles`) granted in the current token, when it is a JWT that says. */
  async grantedRoles(): Promise<string[] | undefined> {
    const token = await this.token();
    const part = token.split('.')[1];
    if (!part) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { roles?: unknown };
      return Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
    } catch {
      return undefined;
    }
  }

  /** Follow `@odata.nextLink` from a first URL; the last page carries the `@odata.deltaLink` of a delta query. */
  async *pages<T>(first: string, headers: Record<string, string> = {}): AsyncGenerator<Page<T>> {
    let next: string | undefined = first;
    while (next) {
      const body: { value?: T[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string } = await this.get(next, headers);
      const page: Page<T> = { value: body.value ?? [] };
      if (body['@odata.nextLink']) page.nextLink = body['@odata.nextLink'];
      if (body['@odata.deltaLink']) page.deltaLink = body['@odata.deltaLink'];
      yield page;
      next = page.nextLink;
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

function parseError(res: RawResponse): GraphError {
  try {
    const body = JSON.parse(res.body) as { error?: { code?: string; message?: string } };
    return new GraphError(res.status, body.error?.code ?? `http_${res.status}`, body.error?.message ?? res.body.slice(0, 200));
  } catch {
    return new GraphError(res.status, `http_${res.status}`, res.body.slice(0, 200));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
