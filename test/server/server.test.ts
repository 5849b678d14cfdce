// The service's own HTTP concerns: health, TLS, and the public base URL behind a reverse proxy.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';

describe('health endpoints', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => server.close());

  it('answers /healthz and /readyz without authentication', async () => {
    expect(await (await fetch(`${server.origin}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${server.origin}/readyz`)).json()).toEqual({ status: 'ready' });
  });
});

describe('behind a reverse proxy', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { TRUST_PROXY: 'true' } });
  });
  afterAll(async () => server.close());

  it("builds resource locations from the proxy's forwarded host and protocol", async () => {
    const res = await server.scim('/Users', {
      method: 'POST',
      body: { userName: 'proxied@example.com' },
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'sync.example.com' },
    });
    expect(res.status).toBe(201);
    expect(res.body.meta.location).toBe(`https://sync.example.com/scim/v2/entra/Users/${res.body.id}`);
    expect(res.headers.get('location')).toBe(res.body.meta.location);
  });
});

describe('with PUBLIC_BASE_URL set', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { PUBLIC_BASE_URL: 'https://idp-sync.example.org/' } });
  });
  afterAll(async () => server.close());

  it('uses it for every location, whatever the request says', async () => {
    const res = await server.scim('/Groups', { method: 'POST', body: { displayName: 'Located' }, headers: { 'x-forwarded-host': 'evil.example.com' } });
    expect(res.body.meta.location).toBe(`https://idp-sync.example.org/scim/v2/entra/Groups/${res.body.id}`);
  });
});

describe('serving TLS itself', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-tls-'));
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers over HTTPS with TLS 1.2 or newer', async () => {
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    server = await startTestServer('sqlite', { env: { TLS_CERT_FILE: cert, TLS_KEY_FILE: key } });
    const port = new URL(server.origin).port;
    const get = (maxVersion: 'TLSv1.1' | 'TLSv1.3') =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.get(
          { host: '127.0.0.1', port, path: '/scim/v2/entra/ServiceProviderConfig', headers: { authorization: `Bearer ${server!.token}` }, ca: fs.readFileSync(cert), servername: '127.0.0.1', maxVersion, checkServerIdentity: () => undefined },
          (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
      });
    const ok = await get('TLSv1.3');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).patch.supported).toBe(true);
    await expect(get('TLSv1.1')).rejects.toThrow();
  });
});

describe('configuration', () => {
  it('refuses settings that cannot work, with a sentence naming the variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT must be a whole number/);
    expect(() => loadConfig({ SQLITE_SYNCHRONOUS: 'OFF' })).toThrow(/SQLITE_SYNCHRONOUS must be NORMAL or FULL/);
    expect(() => loadConfig({ TLS_CERT_FILE: '/x.pem' })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE go together/);
    expect(() => loadConfig({ PUBLIC_BASE_URL: 'sync.example.com' })).toThrow(/PUBLIC_BASE_URL must be an http\(s\) URL/);
    expect(loadConfig({}).databaseUrl).toBe(path.join('data', 'usersync.db'));
  });
});
