// The directory pages' endpoints: groups found by part of their name with their member counts, a group's
// members with what manages each membership and the provider groups feeding it, and each connector's
// latest run in the connector list.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';

describe.each(['sqlite', 'postgres'] as const)('directory groups on %s', (dialect) => {
  let server: TestServer;
  let token: string;
  const userIds: string[] = [];
  let scimGroupId = '';

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function api(path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`${server.origin}/api${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.json() };
  }

  beforeAll(async () => {
    server = await startTestServer(dialect);
    token = (await server.service.adminTokens.create('reader', 'test', 'auditor')).token;
    for (const name of ['ann', 'bob', 'cy']) userIds.push((await server.scim('/Users', { method: 'POST', body: { userName: `${name}@contoso.com` } })).body.id);
    scimGroupId = (await server.scim('/Groups', { method: 'POST', body: { displayName: 'Sales Team', members: userIds.slice(0, 2).map((value) => ({ value })) } })).body.id;
    await server.scim('/Groups', { method: 'POST', body: { displayName: 'Engineering', members: [{ value: userIds[2] }] } });
    await server.service.reconciler.drain();
    await server.service.reconciler.fullPass(server.connectorId, 'manual');
  });
  afterAll(async () => server.close());

  it('finds groups by part of the name, with member counts', async () => {
    const all = await api('/groups');
    expect(all.status).toBe(200);
    const byName = Object.fromEntries(all.body.groups.map((g: { name: string; memberCount: number }) => [g.name, g.memberCount]));
    expect(byName).toMatchObject({ 'Sales Team': 2, Engineering: 1 });
    const found = await api('/groups?search=sALES');
    expect(found.body.groups.map((g: { name: string }) => g.name)).toEqual(['Sales Team']);
    expect((await api('/groups?search=nothing-like-it')).body.groups).toEqual([]);
    expect((await api('/groups?limit=0')).status).toBe(400);
  });

  it("shows a group's members with what manages each, the provider group feeding it, and its history", async () => {
    const id = (await api('/groups?search=sales')).body.groups[0].id;
    const g = await api(`/groups/${id}`);
    expect(g.body).toMatchObject({ name: 'Sales Team', memberCount: 2, owner: { connectorId: server.connectorId } });
    expect(g.body.members.map((m: { username: string; managedBy: string }) => [m.username, m.managedBy])).toEqual([
      ['ann@contoso.com', `connector:${server.connectorId}`],
      ['bob@contoso.com', `connector:${server.connectorId}`],
    ]);
    expect(g.body.providerGroups).toEqual([{ connectorId: server.connectorId, sourceId: scimGroupId }]);
    const ops = g.body.history.map((h: { entity: string; op: string }) => `${h.entity}.${h.op}`);
    expect(ops.filter((o: string) => o === 'membership.add')).toHaveLength(2);
    expect(ops).toContain('group.create');
    // another group's changes are not in this one's history
    expect(g.body.history.every((h: { entity: string; entityId: string }) => h.entity === 'group' || h.entityId.startsWith(`${id}:`))).toBe(true);
    expect((await api('/groups/no-such-group')).status).toBe(404);
  });

  it('lists each connector with its latest run', async () => {
    const list = await api('/connectors');
    const c = list.body.connectors.find((x: { id: string }) => x.id === server.connectorId);
    expect(c.lastRun).toMatchObject({ status: 'succeeded', trigger: 'manual' });
    expect(c.scimBaseUrl).toBe(`${server.origin}/scim/v2/${server.connectorId}`);
  });
});

describe('names in membership changes', () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    token = (await server.service.adminTokens.create('reader', 'test', 'auditor')).token;
  });
  afterAll(async () => server.close());

  it("adds the user's and the group's names to membership changes of a run, a preview and a group's history", async () => {
    const ann = (await server.scim('/Users', { method: 'POST', body: { userName: 'ann@contoso.com' } })).body.id;
    await server.scim('/Groups', { method: 'POST', body: { displayName: 'Sales', members: [{ value: ann }] } });
    await server.service.reconciler.drain();
    const get = async (path: string, init: RequestInit = {}) => (await fetch(`${server.origin}/api${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } })).json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const runId = (await get('/runs')).runs[0].id;
    const add = (await get(`/runs/${runId}`)).changes.find((c: { entity: string; op: string }) => c.entity === 'membership' && c.op === 'add');
    expect(add.data).toMatchObject({ username: 'ann@contoso.com', groupName: 'Sales' });
    const preview = await get(`/connectors/${server.connectorId}/preview`, { method: 'POST', body: JSON.stringify({ settings: { group: { neverAssign: ['sales'] } } }) });
    const remove = preview.changes.find((c: { entity: string; op: string }) => c.entity === 'membership' && c.op === 'remove');
    expect(remove.data).toMatchObject({ username: 'ann@contoso.com', groupName: 'Sales' });
    const groupId = (await get('/groups?search=sales')).groups[0].id;
    const history = (await get(`/groups/${groupId}`)).history.find((h: { entity: string }) => h.entity === 'membership');
    expect(history.data).toMatchObject({ username: 'ann@contoso.com', groupName: 'Sales' });
    const userHistory = (await get(`/users/${(await get('/users?search=ann')).users[0].id}`)).history;
    expect(userHistory.map((h: { entity: string; op: string }) => `${h.entity}.${h.op}`)).toEqual(['membership.add', 'user.create']);
    expect(userHistory[0].data).toMatchObject({ username: 'ann@contoso.com', groupName: 'Sales' });
    expect((await get(`/connectors/${server.connectorId}`)).scimBaseUrl).toBe(`${server.origin}/scim/v2/${server.connectorId}`);
  });
});
