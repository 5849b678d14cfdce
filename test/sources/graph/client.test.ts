// The Graph client against the local HTTPS Graph emulator: tokens, paging, throttling, dropped
// connections, expired tokens, errors. Only the hosts and the trusted certificate differ from Microsoft's.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDS, GraphClient, GraphError } from '../../../src/sources/graph/client.ts';
import type { GraphEmulator } from '../../support/graph-emulator/index.ts';
import { startGraphEmulator } from '../../support/graph-emulator/index.ts';

describe('Graph client', () => {
  let emu: GraphEmulator;
  let client: GraphClient;

  beforeAll(async () => {
    emu = await startGraphEmulator();
    emu.state.seed({ users: 2500, groups: 5, memberships: 100, randomSeed: 7 });
  });
  afterAll(async () => emu.close());
  afterEach(() => {
    client?.close();
    emu.faults.clear();
  });

  const newClient = (extra: Partial<ConstructorParameters<typeof GraphClient>[0]> = {}) =>
    new GraphClient({
      tenantId: emu.tenantId,
      clientId: emu.clientId,
      clientSecret: emu.clientSecret,
      // the emulator stands in for the global cloud: its hosts differ, the resource is Graph's
      cloud: { authorityHost: emu.authorityHost, graphRoot: emu.url.replace(/\/v1\.0$/, ''), scope: 'https://graph.microsoft.com/.default' },
      caCertificates: emu.caCert,
      ...extra,
    });

  it('knows the hosts of each national cloud', () => {
    expect(CLOUDS.usgov).toEqual({ authorityHost: 'https://login.microsoftonline.us', graphRoot: 'https://graph.microsoft.us' });
    expect(CLOUDS['usgov-dod'].graphRoot).toBe('https://dod-graph.microsoft.us');
    expect(CLOUDS.china.authorityHost).toBe('https://login.chinacloudapi.cn');
  });

  it('gets one token for many requests and pages through every user with $top=999', async () => {
    client = newClient();
    const before = emu.auth.issued;
    const ids: string[] = [];
    let pages = 0;
    for await (const page of client.pages<{ id: string }>('/users?$select=id,userPrincipalName&$top=999')) {
      pages++;
      ids.push(...page.value.map((u) => u.id));
    }
    expect(pages).toBe(3);
    expect(new Set(ids).size).toBe(2500);
    expect(emu.auth.issued - before).toBe(1);
  });

  it('waits as Retry-After says on 429 and retries 503', async () => {
    client = newClient();
    emu.faults.throttle('/v1.0/users', { count: 2, retryAfter: 0.3 });
    emu.faults.unavailable('/v1.0/groups', { count: 1, retryAfter: 0.1 });
    const t0 = Date.now();
    const users = await client.get<{ value: unknown[] }>('/users?$top=5');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    expect(users.value).toHaveLength(5);
    expect((await client.get<{ value: unknown[] }>('/groups')).value).toHaveLength(5);
    expect(client.stats.retries).toBe(3);
  });

  it('resumes a page after a dropped connection', async () => {
    client = newClient();
    emu.faults.drop('/v1.0/users', { count: 1, phase: 'midBody' });
    const users = await client.get<{ value: unknown[] }>('/users?$top=50');
    expect(users.value).toHaveLength(50);
    expect(client.stats.retries).toBe(1);
  });

  it('renews an expired token once and goes on', async () => {
    client = newClient();
    await client.get('/users?$top=1');
    const issued = emu.auth.issued;
    emu.faults.expireTokenOnNextCall('/v1.0/users');
    const users = await client.get<{ value: unknown[] }>('/users?$top=1');
    expect(users.value).toHaveLength(1);
    expect(emu.auth.issued).toBe(issued + 1);
    expect(client.stats.tokenRenewals).toBe(1);
  });

  it("reports Graph's error code for a bad request and the token service's for a wrong secret", async () => {
    client = newClient();
    await expect(client.get('/users?$select=notAProperty')).rejects.toMatchObject({ status: 400, code: 'Request_BadRequest' });
    client.close();
    client = newClient({ clientSecret: 'wrong' });
    const err = await client.get('/users').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).message).toMatch(/invalid_client|AADSTS7000215/);
  });

  it('gives up after the last attempt with the last error', async () => {
    client = newClient({ maxAttempts: 2 });
    emu.faults.unavailable('/v1.0/groups', { count: 5, retryAfter: 0 });
    await expect(client.get('/groups')).rejects.toMatchObject({ status: 503 });
  });
});
