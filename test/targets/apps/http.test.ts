// The shared HTTP layer against a small local server: headers, Retry-After as a date, the shared hold
// after a 429, connection errors, stopping, and a private CA.

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpClient, parseRetryAfter, productMessage, seg } from '../../../src/targets/http.ts';
import type { AppConnection } from '../../../src/targets/types.ts';
import { TargetError } from '../../../src/targets/types.ts';
import { generateCertificate } from '../../support/graph-emulator/tls.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

const servers: (http.Server | https.Server)[] = [];
const clients: HttpClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function serve(handler: Handler, tls?: { cert: string; key: string }): Promise<string> {
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, listener) : http.createServer(listener);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(baseUrl: string, extra: Partial<AppConnection> = {}, signal?: AbortSignal): HttpClient {
  const c = new HttpClient(
    { baseUrl, auth: { type: 'token', token: 't0ken' }, timeoutMs: 2000, retries: 3, maxRetryWaitMs: 2000, ...extra },
    { product: 'Testapp', ...(signal ? { signal } : {}) },
  );
  clients.push(c);
  return c;
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

describe('HTTP layer', () => {
  it('sends the credentials, Accept and a JSON body below the base path', async () => {
    const seen: { url?: string; headers?: http.IncomingHttpHeaders; body?: string }[] = [];
    const url = await serve((req, res, body) => {
      seen.push({ url: req.url!, headers: req.headers, body });
      json(res, 200, { ok: true });
    });
    const c = client(`${url}/ctx/`);
    const res = await c.request({ method: 'POST', path: '/rest/x', query: { a: 'b c', skip: undefined, n: 2 }, body: { k: 'v' }, what: 'do x' });
    expect(res.body).toEqual({ ok: true });
    expect(seen[0]!.url).toBe('/ctx/rest/x?a=b+c&n=2');
    expect(seen[0]!.headers!.authorization).toBe('Bearer t0ken');
    expect(seen[0]!.headers!.accept).toBe('application/json');
    expect(seen[0]!.headers!['content-type']).toBe('application/json');
    expect(JSON.parse(seen[0]!.body!)).toEqual({ k: 'v' });

    const basic = client(url, { auth: { type: 'basic', username: 'admin', password: 'pä:ss' } });
    await basic.get('/y', undefined, 'read y');
    expect(seen[1]!.headers!.authorization).toBe(`Basic ${Buffer.from('admin:pä:ss').toString('base64')}`);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it("quotes each product's own error words", () => {
    expect(productMessage({ errorMessages: ['No.'], errors: { username: 'Taken' } })).toBe('No; username: Taken');
    expect(productMessage({ statusCode: 409, message: 'A user with this name exists.' })).toBe('A user with this name exists');
    expect(productMessage({ errors: [{ context: null, message: 'Group exists', exceptionName: 'X' }] })).toBe('Group exists');
    expect(productMessage({ schemas: [], status: '409', detail: 'User already exists' })).toBe('User already exists');
    expect(productMessage(undefined, '<html><body>Login</body></html>')).toBeUndefined();
  });

  it('honours a Retry-After HTTP date and holds the other requests back meanwhile', async () => {
    let notBefore = 0;
    let throttled!: () => void;
    const answered = new Promise<void>((r) => (throttled = r));
    const later: number[] = [];
    const url = await serve((_req, res) => {
      if (!notBefore) {
        const until = new Date(Date.now() + 2000).toUTCString();
        notBefore = Date.parse(until);
        json(res, 429, { message: 'slow down' }, { 'retry-after': until });
        return throttled();
      }
      later.push(Date.now());
      json(res, 200, {});
    });
    const c = client(url, { maxRetryWaitMs: 5000 });
    const first = c.get('/a', undefined, 'read a');
    await answered;
    await new Promise((r) => setTimeout(r, 50));
    // sent after the 429: waits for the same moment instead of going out at once
    await Promise.all([first, c.get('/b', undefined, 'read b')]);
    expect(later).toHaveLength(2);
    // an HTTP date has whole seconds: the wait ends at that second (timer slack allowed)
    for (const at of later) expect(at).toBeGreaterThanOrEqual(notBefore - 20);
    expect(c.counters).toMatchObject({ requests: 3, retries: 1, throttled: 1 });
  });

  it('gives up at once when Retry-After is longer than a wait may be', async () => {
    const url = await serve((_req, res) => json(res, 429, {}, { 'retry-after': '120' }));
    const c = client(url);
    const t0 = Date.now();
    const err = await c.get('/a', undefined, 'read a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect(err).toMatchObject({ code: 'throttled', retryAfterMs: 120_000, status: 429 });
    expect(Date.now() - t0).toBeLessThan(1000);
    // the next request is not even sent while the application asked for quiet
    const next = await c.get('/b', undefined, 'read b').catch((e: unknown) => e);
    expect(next).toMatchObject({ code: 'throttled' });
    expect(c.counters.requests).toBe(1);
  });

  it('retries a refused connection and then reports the application unavailable', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = client(`http://127.0.0.1:${port}`, { retries: 2, maxRetryWaitMs: 50 });
    const err = await c.get('/a', undefined, 'read a').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable' });
    expect((err as Error).message).toMatch(/Testapp could not be reached to read a after 3 tries: .*ECONNREFUSED/);
    expect(c.counters).toMatchObject({ requests: 3, retries: 2 });
  });

  it('stops waiting when the service stops', async () => {
    const url = await serve((_req, res) => json(res, 503, {}, { 'retry-after': '1' }));
    const stop = new AbortController();
    const c = client(url, {}, stop.signal);
    const t0 = Date.now();
    const pending = c.get('/a', undefined, 'read a').catch((e: unknown) => e);
    setTimeout(() => stop.abort(), 100);
    const err = await pending;
    expect(err).toMatchObject({ code: 'unavailable' });
    expect((err as Error).message).toMatch(/stopping/);
    expect(Date.now() - t0).toBeLessThan(800);
  });

  it('trusts a configured CA for an internal certificate, and only then', async () => {
    const tls = await generateCertificate();
    const url = await serve((_req, res) => json(res, 200, { ok: 1 }), tls);
    expect(await client(url, { caCertificate: tls.cert }).get('/a', undefined, 'read a')).toEqual({ ok: 1 });
    const err = await client(url, { retries: 0 })
      .get('/a', undefined, 'read a')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable' });
    expect((err as Error).message).toMatch(/certificate/);
  });

  it('does not take an HTML page for an empty answer', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Sign in</body></html>');
    });
    const err = await client(url)
      .get('/a', undefined, 'read a')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', status: 200 });
    expect((err as Error).message).toMatch(/not JSON/);
  });

  it('encodes path segments and refuses the ones a URL would resolve away', () => {
    expect(seg('a/b c#d')).toBe('a%2Fb%20c%23d');
    expect(() => seg('..')).toThrow(TargetError);
    expect(() => seg('.')).toThrow(TargetError);
  });

  it('never puts the credentials into a message', async () => {
    const url = await serve((_req, res) => json(res, 401, { message: 'Unauthorized' }));
    const err = await client(url, { auth: { type: 'basic', username: 'admin', password: 'sekret' } })
      .request({ method: 'POST', path: '/a', query: { password: 'sekret' }, what: 'create user "x"' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'auth', status: 401 });
    expect((err as Error).message).toBe('Testapp did not accept the credentials when asked to create user "x" (HTTP 401): Unauthorized.');
  });
});
