// /metrics as Prometheus scrapes it: only with an admin token; SCIM requests counted by connector,
// operation and status (an unknown connector in a URL adds no series); the reconciler's backlog, the
// change feed, runs and the directory read from the store.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';
import { DIALECTS } from '../support/store.ts';

/** one sample's value from the exposition text, by metric name and exact labels */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(/,(?=[a-zA-Z_]+=")/).filter(Boolean).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

describe.each(DIALECTS)('/metrics on %s', (dialect) => {
  let server: TestServer;
  let adminToken: string;
  const scrape = async (token: string | null = adminToken) => fetch(`${server.origin}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    server = await startTestServer(dialect);
    adminToken = (await server.service.adminTokens.create('prometheus', 'test')).token;
  });
  afterAll(async () => server?.close());

  it('refuses a scrape without an admin or read-only token', async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape('usa_not-a-token')).status).toBe(401);
    for (const scope of ['sync-user', 'sync'] as const) {
      const scoped = (await server.service.adminTokens.create(`${scope} robot`, 'test', scope)).token;
      expect([scope, (await scrape(scoped)).status]).toEqual([scope, 401]);
    }
    const readOnly = (await server.service.adminTokens.create('prometheus', 'test', 'auditor')).token;
    expect((await scrape(readOnly)).status).toBe(200);
  });

  it('counts SCIM requests by connector, operation and status, and not by unknown connectors', async () => {
    const user = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'metrics.user@example.com', active: true };
    expect((await server.scim('/Users', { method: 'POST', body: user })).status).toBe(201);
    expect((await server.scim('/Users', { method: 'POST', body: user })).status).toBe(409);
    expect((await server.scim('/Users?filter=userName eq "nobody"')).status).toBe(200);
    expect((await server.scim('/Users', { token: 'wrong' })).status).toBe(401);
    for (let i = 0; i < 3; i++) await fetch(`${server.origin}/scim/v2/no-such-connector-${i}/Users`, { headers: { authorization: `Bearer ${server.token}` } });

    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const c = server.connectorId;
    expect(sample(text, 'usersync_scim_requests_total', { connector: c, operation: 'POST /Users', status: '201' })).toBe(1);
    expect(sample(text, 'usersync_scim_requests_total', { connector: c, operation: 'POST /Users', status: '409' })).toBe(1);
    expect(sample(text, 'usersync_scim_requests_total', { connector: c, operation: 'GET /Users', status: '200' })).toBe(1);
    expect(sample(text, 'usersync_scim_requests_total', { connector: c, operation: 'GET /Users', status: '401' })).toBe(1);
    expect(text).not.toContain('no-such-connector');
    expect(sample(text, 'usersync_scim_request_duration_seconds_count', { operation: 'POST /Users' })).toBe(2);
    expect(sample(text, 'usersync_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
  });

  it('reports the backlog, the change feed, runs and the directory from the store', async () => {
    await server.service.reconciler.runOnce();
    const text = await (await scrape()).text();
    const c = server.connectorId;
    expect(sample(text, 'usersync_reconcile_backlog')).toBe(0);
    expect(sample(text, 'usersync_change_feed_last_seq')).toBeGreaterThan(0);
    expect(sample(text, 'usersync_directory_users', { connector: c, active: 'true' })).toBe(1);
    const runs = await server.service.db.kysely.selectFrom('runs').select(['status']).where('connector_id', '=', c).execute();
    expect(sample(text, 'usersync_runs', { connector: c, status: runs[0]!.status })).toBe(runs.filter((r) => r.status === runs[0]!.status).length);
  });
});
