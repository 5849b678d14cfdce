// The admin API as an automation client uses it: tokens, settings with clear errors, preview, sync,
// held runs, local users, and an audit entry for every change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';

describe.each(['sqlite', 'postgres'] as const)('admin API on %s', (dialect) => {
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer(dialect);
    token = (await server.service.adminTokens.create('automation', 'test')).token;
  });
  afterAll(async () => server.close());

  async function api(path: string, init: { method?: string; body?: unknown; token?: string | null } = {}) {
    const headers: Record<string, string> = {};
    const t = init.token === undefined ? token : init.token;
    if (t) headers.authorization = `Bearer ${t}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.origin}/api${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
    const text = await res.text();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
  }

  async function pushUsers(n: number, prefix: string) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await server.scim('/Users', { method: 'POST', body: { userName: `${prefix}-${i}@example.com`, title: i % 2 ? 'Engineer' : 'Sales' } });
      ids.push(res.body.id);
    }
    await server.service.reconciler.drain();
    return ids;
  }

  it('refuses a limit that is not a whole number from 1, a SCIM connector with source settings, and rejecting a run that does not exist', async () => {
    for (const path of ['/runs?limit=-5', '/users?limit=0', '/audit?limit=abc', '/runs?limit=1.5']) {
      const res = await api(path);
      expect([path, res.status, res.body.error.code]).toEqual([path, 400, 'invalid_limit']);
    }
    expect((await api('/runs?limit=1')).status).toBe(200);
    expect((await api('/audit?limit=5000')).status).toBe(200);
    const missing = await api('/runs/no-such-run/reject', { method: 'POST' });
    expect([missing.status, missing.body.error.code]).toEqual([404, 'not_found']);
    const scimWithSource = await api('/connectors', { method: 'POST', body: { name: 'x', kind: 'scim', source: { url: 'ldap://x' } } });
    expect([scimWithSource.status, scimWithSource.body.error.code]).toEqual([400, 'invalid_connector']);
  });

  it('refuses requests without a valid admin token, including SCIM tokens', async () => {
    expect((await api('/connectors', { token: null })).status).toBe(401);
    expect((await api('/connectors', { token: 'usa_wrong' })).status).toBe(401);
    const scimToken = await api('/connectors', { token: server.token });
    expect(scimToken.status).toBe(401);
    expect(scimToken.body.error.code).toBe('unauthenticated');
  });

  it('lists connectors and shows their settings', async () => {
    const list = await api('/connectors');
    expect(list.status).toBe(200);
    expect(list.body.connectors.map((c: { id: string }) => c.id)).toEqual(['entra']);
    const settings = await api('/connectors/entra/settings');
    expect(settings.body.user.cleanup).toBe('deactivate');
    expect((await api('/connectors/nope/settings')).status).toBe(404);
  });

  it('rejects bad settings with every error, its path and the position in the expression', async () => {
    const res = await api('/connectors/entra/settings', {
      method: 'PATCH',
      body: { user: { condition: 'userType eq', username: { source: 'userName', transforms: [{ fn: 'regexReplace', pattern: '(unclosed', replacement: '' }] } }, group: { onlyAssign: ['['] } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_settings');
    const paths = res.body.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['user.condition', 'group.onlyAssign[0]']));
    const condition = res.body.error.details.find((d: { path: string }) => d.path === 'user.condition');
    expect(condition.position).toBe(11);
    // nothing was saved
    expect((await api('/connectors/entra/settings')).body.user.condition).toBe('');
  });

  it('previews a settings change without changing anything, then saves it and re-evaluates', async () => {
    await pushUsers(4, 'pv');
    const before = await api('/users');
    const preview = await api('/connectors/entra/preview', { method: 'POST', body: { settings: { user: { condition: 'title eq "Engineer"' } } } });
    expect(preview.status).toBe(200);
    expect(preview.body.counters.deactivated).toBe(2);
    expect(preview.body.changes.filter((c: { op: string }) => c.op === 'deactivate').map((c: { data: { username: string } }) => c.data.username).sort()).toEqual(['pv-0@example.com', 'pv-2@example.com']);
    expect(await api('/users')).toEqual(before);

    const saved = await api('/connectors/entra/settings', { method: 'PATCH', body: { user: { condition: 'title eq "Engineer"' } } });
    expect(saved.status).toBe(200);
    expect(saved.body.reevaluation.counters.deactivated).toBe(2);
    const users = (await api('/users?search=pv-')).body.users;
    expect(users.filter((u: { active: boolean }) => !u.active).map((u: { username: string }) => u.username)).toEqual(['pv-0@example.com', 'pv-2@example.com']);
    await api('/connectors/entra/settings', { method: 'PATCH', body: { user: { condition: '' } } });
  });

  it('holds a run over the deletion limit, shows it, and applies it on approval', async () => {
    await pushUsers(6, 'hold');
    const saved = await api('/connectors/entra/settings', { method: 'PATCH', body: { user: { condition: 'not (userName sw "hold-")' }, safety: { deletionLimit: { count: 2 } } } });
    const runId = saved.body.reevaluation.runId;
    expect(saved.body.reevaluation.status).toBe('held');
    const run = await api(`/runs/${runId}`);
    expect(run.body.status).toBe('held');
    expect(run.body.held).toHaveLength(6);
    expect((await api('/runs?status=held')).body.runs.map((r: { id: string }) => r.id)).toContain(runId);
    const approved = await api(`/runs/${runId}/approve`, { method: 'POST' });
    expect(approved.body).toEqual({ applied: 6, skipped: 0 });
    expect((await api(`/runs/${runId}/approve`, { method: 'POST' })).status).toBe(409);
    expect((await api('/runs/nope/approve', { method: 'POST' })).status).toBe(404);
    await api('/connectors/entra/settings', { method: 'PATCH', body: { user: { condition: '' }, safety: { deletionLimit: { count: null } } } });
  });

  it('creates local users and shows a user with its groups, what manages each, and its history', async () => {
    const created = await api('/users', { method: 'POST', body: { username: 'local.admin', email: 'admin@example.com', groups: ['jira-administrators'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ username: 'local.admin', owner: 'local', active: true });
    expect((await api('/users', { method: 'POST', body: { username: 'LOCAL.ADMIN' } })).status).toBe(409);
    expect((await api('/users', { method: 'POST', body: { username: '' } })).status).toBe(400);
    expect((await api('/users', { method: 'POST', body: [1, 2] })).status).toBe(400);
    const shown = await api(`/users/${created.body.id}`);
    expect(shown.body.groups).toEqual([{ id: expect.any(String), name: 'jira-administrators', managedBy: 'local' }]);
    expect(shown.body.history.map((h: { entity: string; op: string }) => `${h.entity}.${h.op}`)).toEqual(['membership.add', 'user.create']);
    expect(shown.body.history[0].data).toMatchObject({ groupName: 'jira-administrators', username: 'local.admin', managedBy: 'local' });
  });

  it('audits every change with the token that made it', async () => {
    const entries = (await api('/audit?limit=1000')).body.entries as { actor: string; action: string }[];
    const actions = entries.filter((e) => e.actor === 'token:automation').map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['settings.update', 'run.approve', 'user.create']));
    expect(actions.filter((a) => a === 'settings.update').length).toBe(4);
  });

  it('searches the whole audit log and pages through it', async () => {
    for (let i = 0; i < 5; i++) await api('/connectors', { method: 'POST', body: { name: `Audit search ${i}`, kind: 'scim', id: `audit-search-${i}` } });
    const found = await api('/audit?search=AUDIT-SEARCH&limit=3');
    expect(found.status).toBe(200);
    expect(found.body.entries).toHaveLength(3);
    expect(found.body.entries.every((e: { target: string }) => e.target.startsWith('audit-search-'))).toBe(true);
    const next = await api(`/audit?search=audit-search&limit=100&before=${found.body.entries[2].seq}`);
    const all = await api('/audit?search=audit-search&limit=100');
    expect([...found.body.entries, ...next.body.entries].map((e: { seq: number }) => e.seq)).toEqual(all.body.entries.map((e: { seq: number }) => e.seq));
    expect(all.body.entries.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['connector.create', 'token.create']));
    expect((await api('/audit?search=no-such-thing-at-all')).body.entries).toEqual([]);
    expect((await api('/audit?before=abc')).status).toBe(400);
    expect((await api(`/audit?search=${'x'.repeat(201)}`)).status).toBe(400);
  });

  it("refuses a settings save made on a version someone else has changed since (If-Match), and merges concurrent partial updates", async () => {
    const raw = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.origin}/api${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, etag: res.headers.get('etag'), body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    const loaded = await raw('GET', '/connectors/entra/settings');
    const detail = await raw('GET', '/connectors/entra');
    expect(loaded.etag).toBe(`"${detail.body.settingsVersion}"`);
    // Ann saves on what she loaded
    const ann = await raw('PUT', '/connectors/entra/settings', { ...loaded.body, group: { ...loaded.body.group, neverAssign: ['ann-was-here'] } }, { 'if-match': loaded.etag! });
    expect(ann.status).toBe(200);
    expect(ann.body.settingsVersion).not.toBe(detail.body.settingsVersion);
    expect(ann.etag).toBe(`"${ann.body.settingsVersion}"`);
    // Bob loaded before Ann saved: his save is refused and hers stays
    const bob = await raw('PUT', '/connectors/entra/settings', { ...loaded.body, group: { ...loaded.body.group, neverAssign: ['bob-was-here'] } }, { 'if-match': loaded.etag! });
    expect([bob.status, bob.body.error.code]).toEqual([412, 'settings_changed']);
    expect(bob.body.error.message).toMatch(/someone saved these settings after you loaded them/);
    expect((await raw('GET', '/connectors/entra/settings')).body.group.neverAssign).toEqual(['ann-was-here']);
    // two partial updates of different fields at once, without If-Match: both take effect
    await Promise.all([
      raw('PATCH', '/connectors/entra/settings?wait=false', { group: { neverRemove: ['keep-me'] } }),
      raw('PATCH', '/connectors/entra/settings?wait=false', { group: { alwaysGroups: ['everyone'] } }),
      raw('PATCH', '/connectors/entra/settings?wait=false', { group: { defaultGroups: ['new-people'] } }),
    ]);
    const merged = (await raw('GET', '/connectors/entra/settings')).body.group;
    expect([merged.neverRemove, merged.alwaysGroups, merged.defaultGroups, merged.neverAssign]).toEqual([['keep-me'], ['everyone'], ['new-people'], ['ann-was-here']]);
    await server.service.reconciler.drain();
    await raw('PATCH', '/connectors/entra/settings', { group: { neverRemove: [], alwaysGroups: [], defaultGroups: [], neverAssign: [] } });
  });
});
