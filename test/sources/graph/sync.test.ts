// The Graph pull source end to end: the service over HTTP against the local Graph emulator, on both stores.
// What an administrator checks: who is in the directory, in which groups, active or not, after full reads,
// delta rounds, faults, and with each scope.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../support/store.ts';
import type { GraphRig } from './support.ts';
import { startGraphRig } from './support.ts';

/** What the emulator says each user's groups are (transitive), by username, for the users given. */
function expectedGroups(rig: GraphRig, userIds: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const id of userIds) {
    const u = rig.emu.state.liveUser(id);
    if (!u) continue;
    out.set(String(u.props.userPrincipalName), rig.emu.state.transitiveMemberOf(id).map((g) => String(g.props.displayName)).sort());
  }
  return out;
}

async function changeFeedCount(rig: GraphRig): Promise<number> {
  const r = await rig.server.store.db.kysely.selectFrom('change_feed').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

describe.each(DIALECTS)('Graph pull on %s', (dialect) => {
  let rig: GraphRig;
  let userIds: string[];
  let groupIds: string[];

  beforeAll(async () => {
    rig = await startGraphRig(dialect);
    const seeded = rig.emu.state.seed({ users: 400, groups: 30, memberships: 1500, nestedGroups: 6, randomSeed: 7 });
    userIds = seeded.userIds;
    groupIds = seeded.groupIds;
    await rig.createConnector('tenant');
  }, 60_000);
  afterAll(async () => rig?.close());

  it('a full read brings every user into the directory with the groups Graph has them in, nested groups flattened', async () => {
    const disabled = userIds[3]!;
    rig.emu.state.updateUser(disabled, { accountEnabled: false });
    const out = await rig.sync('tenant');
    expect(out.status).toBe('succeeded');
    const users = await rig.directoryUsers('tenant');
    expect(users.size).toBe(400);
    expect(users.get(disabled)!.active).toBe(false);
    expect(users.get(userIds[4]!)!.active).toBe(true);
    const expected = expectedGroups(rig, userIds.slice(0, 60));
    for (const [username, groups] of expected) expect(await rig.groupsOf(username), username).toEqual(groups);
    // a user whose only group is nested in another is also in the outer one
    const nestedSomewhere = userIds.find((id) => rig.emu.state.transitiveMemberOf(id).length > rig.emu.state.liveMemberOf(id).length);
    expect(nestedSomewhere).toBeDefined();
    const run = await rig.api(`/runs/${out.runId}`);
    expect(run.body.trigger).toBe('manual');
    expect(run.body.counters.created).toBe(400);
    expect(run.body.peakRss).toBeGreaterThan(0);
    expect(run.body.log.map((l: { message: string }) => l.message).join('\n')).toMatch(/full read: \d+ objects read/);
  });

  it('a second full read with nothing changed writes nothing to the mirror or the directory', async () => {
    const before = await changeFeedCount(rig);
    const out = await rig.sync('tenant', 'full');
    expect(out.status).toBe('succeeded');
    expect(out.counters.mirrorCreated ?? 0).toBe(0);
    expect(out.counters.mirrorUpdated ?? 0).toBe(0);
    expect(out.counters.mirrorDeleted ?? 0).toBe(0);
    expect(await changeFeedCount(rig)).toBe(before);
  });

  it('a delta round applies updates, new users, removals, renames and nested changes, and reads no full lists', async () => {
    const s = rig.emu.state;
    s.updateUser(userIds[10]!, { displayName: 'Renamed Person', mail: 'renamed@contoso.com' });
    const fresh = s.addUser({ userPrincipalName: 'fresh@contoso.com', displayName: 'Fresh Person', mail: 'fresh@contoso.com' });
    s.addMember(groupIds[0]!, fresh.id);
    s.softDeleteUser(userIds[11]!);
    s.hardDeleteUser(userIds[12]!);
    const someMember = s.liveMembers(s.liveGroup(groupIds[1]!)!).find((m) => m.id !== fresh.id && userIds.includes(m.id))!;
    s.removeMember(groupIds[1]!, someMember.id);
    s.renameGroup(groupIds[2]!, 'Renamed Group');
    // nested: a child group gets a member; its parents gain it through flattening
    const child = groupIds.find((g) => s.transitiveMemberOf(g).length > 0)!;
    const parents = s.transitiveMemberOf(child).map((g) => String(g.props.displayName));
    s.addMember(child, userIds[20]!);
    rig.emu.clearRequests();

    const out = await rig.sync('tenant');
    expect(out.status).toBe('succeeded');
    const run = await rig.api(`/runs/${out.runId}`);
    expect(run.body.log.map((l: { message: string }) => l.message).join('\n')).toMatch(/delta round/);
    expect(rig.emu.requests.some((r) => /^\/v1\.0\/(users|groups)$/.test(r.path))).toBe(false);

    const users = await rig.directoryUsers('tenant');
    expect(users.get(userIds[10]!)!.displayName).toBe('Renamed Person');
    expect(users.get(userIds[10]!)!.email).toBe('renamed@contoso.com');
    expect(users.get(fresh.id)!.username).toBe('fresh@contoso.com');
    expect(await rig.groupsOf('fresh@contoso.com')).toContain(String(s.liveGroup(groupIds[0]!)!.props.displayName));
    expect(users.get(userIds[11]!)!.active).toBe(false); // soft-deleted: deactivated (the default cleanup)
    expect(users.get(userIds[12]!)!.active).toBe(false);
    const memberName = String(s.findUser(someMember.id)!.props.userPrincipalName);
    expect(await rig.groupsOf(memberName)).toEqual(expectedGroups(rig, [someMember.id]).get(memberName));
    const twenty = String(s.liveUser(userIds[20]!)!.props.userPrincipalName);
    expect(await rig.groupsOf(twenty)).toEqual(expect.arrayContaining(parents));
    expect(await rig.groupsOf(twenty)).toEqual(expectedGroups(rig, [userIds[20]!]).get(twenty));
    const groupNames = (await rig.server.store.db.kysely.selectFrom('directory_groups').select('name').execute()).map((g) => g.name);
    expect(groupNames).toContain('Renamed Group');
  });

  it('a restored user comes back active', async () => {
    rig.emu.state.restoreUser(userIds[11]!);
    const out = await rig.sync('tenant');
    expect(out.status).toBe('succeeded');
    expect((await rig.directoryUsers('tenant')).get(userIds[11]!)!.active).toBe(true);
  });

  it('410 syncStateNotFound on a delta link: the run reads everything again and converges', async () => {
    rig.emu.state.updateUser(userIds[30]!, { displayName: 'After Gone' });
    rig.emu.faults.goneOnNextDelta(1);
    const out = await rig.sync('tenant');
    expect(out.status).toBe('succeeded');
    const run = await rig.api(`/runs/${out.runId}`);
    const log = run.body.log.map((l: { message: string }) => l.message).join('\n');
    expect(log).toMatch(/full read/);
    expect(log).toMatch(/410/);
    expect((await rig.directoryUsers('tenant')).get(userIds[30]!)!.displayName).toBe('After Gone');
    // and the next round is a delta round again
    const next = await rig.sync('tenant');
    expect((await rig.api(`/runs/${next.runId}`)).body.log.map((l: { message: string }) => l.message).join('\n')).toMatch(/delta round/);
  });

  it('throttling, a dropped connection and an expired token during a full read: the run still completes', async () => {
    rig.emu.state.updateUser(userIds[40]!, { displayName: 'Through Faults' });
    rig.emu.faults.throttle('/v1.0/users', { count: 2, retryAfter: 0.2 });
    rig.emu.faults.unavailable('/v1.0/groups', { count: 1, retryAfter: 0.1, status: 503 });
    rig.emu.faults.drop('/v1.0/users', { count: 1 });
    rig.emu.faults.expireTokenOnNextCall('/v1.0/groups');
    const out = await rig.sync('tenant', 'full');
    expect(out.status).toBe('succeeded');
    expect((await rig.directoryUsers('tenant')).get(userIds[40]!)!.displayName).toBe('Through Faults');
    expect(rig.emu.faults.pending.filter((f) => f.hits === 0)).toEqual([]);
    rig.emu.faults.clear();
  });

  it('a run that cannot reach Graph fails with the reason and changes nothing', async () => {
    const before = await changeFeedCount(rig);
    rig.emu.faults.add({ kind: 'forbidden', match: '/v1.0/users', count: Infinity });
    const out = await rig.sync('tenant', 'full');
    rig.emu.faults.clear();
    expect(out.status).toBe('failed');
    expect(out.error).toMatch(/403|Authorization_RequestDenied/);
    expect(await changeFeedCount(rig)).toBe(before);
  });

  it('only one run per connector at a time: a second request is told which run is busy', async () => {
    rig.emu.faults.throttle('/v1.0/groups', { count: 3, retryAfter: 0.3 });
    const first = await rig.api('/connectors/tenant/sync?wait=false', { method: 'POST', body: { mode: 'full' } });
    expect(first.status).toBe(202);
    const second = await rig.api('/connectors/tenant/sync?wait=false', { method: 'POST', body: {} });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('busy');
    expect(second.body.error.details.runId).toBe(first.body.runId);
    for (let i = 0; i < 200; i++) {
      const r = await rig.api(`/runs/${first.body.runId}`);
      if (r.body.status !== 'running') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect((await rig.api(`/runs/${first.body.runId}`)).body.status).toBe('succeeded');
    rig.emu.faults.clear();
  });

  it('syncs one user on demand, with its groups, and removes one Graph no longer has', async () => {
    const s = rig.emu.state;
    const u = s.addUser({ userPrincipalName: 'login.now@contoso.com', displayName: 'Login Now', mail: 'login.now@contoso.com' });
    s.addMember(groupIds[5]!, u.id);
    const res = await rig.api('/connectors/tenant/sync-user', { method: 'POST', body: { username: 'Login.Now@contoso.com' } });
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('synced');
    expect(res.body.user.username).toBe('login.now@contoso.com');
    expect(res.body.user.groups).toEqual(expectedGroups(rig, [u.id]).get('login.now@contoso.com'));
    const run = await rig.api(`/runs/${res.body.runId}`);
    expect(run.body.trigger).toBe('on-demand');

    s.hardDeleteUser(u.id);
    const gone = await rig.api('/connectors/tenant/sync-user', { method: 'POST', body: { username: 'login.now@contoso.com' } });
    expect(gone.body.outcome).toBe('not-found');
    expect((await rig.directoryUsers('tenant')).get(u.id)!.active).toBe(false);

    const bad = await rig.api('/connectors/tenant/sync-user', { method: 'POST', body: { username: '' } });
    expect(bad.status).toBe(400);
  });

  it('the run streams its progress as server-sent events', async () => {
    const start = await rig.api('/connectors/tenant/sync?wait=false', { method: 'POST', body: { mode: 'full' } });
    const res = await fetch(`${rig.server.origin}/api/runs/${start.body.runId}/events`, { headers: { authorization: `Bearer ${rig.adminToken}` } });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await res.text();
    expect(text).toMatch(/event: progress/);
    expect(text).toMatch(/event: end\ndata: \{"status":"succeeded"/);
  });
});

describe('Graph source settings, secrets and scopes (SQLite)', () => {
  let rig: GraphRig;
  beforeAll(async () => {
    rig = await startGraphRig('sqlite');
  }, 60_000);
  afterAll(async () => rig?.close());

  it('the client secret is sealed at rest and never shown; a sealed value copied to another connector does not open', async () => {
    await rig.createConnector('sealed');
    const row = await rig.server.store.db.kysely.selectFrom('connectors').select('source').where('id', '=', 'sealed').executeTakeFirstOrThrow();
    expect(row.source).not.toContain(rig.emu.clientSecret);
    expect(JSON.parse(row.source).clientSecret).toMatch(/^enc:v1:/);
    const shown = await rig.api('/connectors/sealed/source');
    expect(shown.body.clientSecret).toEqual({ set: true });
    expect(JSON.stringify(shown.body)).not.toContain(rig.emu.clientSecret);
    // the secret left out of an update keeps its value; the connection still works
    const put = await rig.api('/connectors/sealed/source', { method: 'PATCH', body: { guests: 'exclude', clientSecret: { set: true } } });
    expect(put.status).toBe(200);
    expect((await rig.api('/connectors/sealed/test', { method: 'POST' })).body.ok).toBe(true);
    const audit = await rig.api('/audit');
    expect(JSON.stringify(audit.body)).not.toContain(rig.emu.clientSecret);
    // copy the sealed value to another connector's record
    await rig.createConnector('other', { clientSecret: 'something-else' });
    await rig.server.store.db.kysely.updateTable('connectors').set({ source: row.source }).where('id', '=', 'other').execute();
    const stolen = await rig.api('/connectors/other/sync', { method: 'POST', body: {} });
    expect(stolen.status).toBe(500);
    expect(stolen.body.error.code).toBe('secret_unreadable');
    expect(JSON.stringify(stolen.body)).not.toContain(rig.emu.clientSecret);
  });

  it('bad source settings are refused with every problem named', async () => {
    const res = await rig.api('/connectors', {
      method: 'POST',
      body: { name: 'bad', kind: 'graph', source: { tenantId: 'not a tenant', clientId: 'x', scope: 'everything', schedule: { kind: 'cron', expression: 'every day' }, concurrency: 99 } },
    });
    expect(res.status).toBe(400);
    const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(['clientId', 'clientSecret', 'concurrency', 'schedule', 'scope', 'tenantId']);
  });

  it('test connection names the failing credential and each missing permission', async () => {
    await rig.createConnector('wrong-secret', { clientSecret: 'wrong' });
    const wrong = await rig.api('/connectors/wrong-secret/test', { method: 'POST' });
    expect(wrong.body.ok).toBe(false);
    expect(wrong.body.checks[0].message).toMatch(/AADSTS7000215/);

    rig.emu.auth.permissions = ['User.Read.All'];
    await rig.createConnector('no-groups', { scope: 'application' });
    const res = await rig.api('/connectors/no-groups/test', { method: 'POST' });
    rig.emu.auth.permissions = ['User.Read.All', 'Group.Read.All', 'Application.Read.All'];
    expect(res.body.ok).toBe(false);
    expect(res.body.missingPermissions.sort()).toEqual(['Application.Read.All', 'Group.Read.All']);
    expect(res.body.checks.find((c: { name: string }) => c.name === 'permissions').message).toMatch(/User\.Read\.All/);
  });

  it('application scope: only users and groups assigned to the enterprise app, direct members of assigned groups', async () => {
    const s = rig.emu.state;
    const inGroup = s.addUser({ userPrincipalName: 'app.member@contoso.com' });
    const direct = s.addUser({ userPrincipalName: 'app.direct@contoso.com' });
    const outsider = s.addUser({ userPrincipalName: 'outsider@contoso.com' });
    const nestedUser = s.addUser({ userPrincipalName: 'nested.member@contoso.com' });
    const assigned = s.addGroup({ displayName: 'Jira Users' });
    const inner = s.addGroup({ displayName: 'Inner Team' });
    s.addMember(assigned.id, inGroup.id);
    s.addMember(assigned.id, inner.id);
    s.addMember(inner.id, nestedUser.id);
    s.addMember(inner.id, outsider.id);
    s.removeMember(inner.id, outsider.id);
    s.assign(rig.emu.servicePrincipal.id, assigned.id);
    s.assign(rig.emu.servicePrincipal.id, direct.id);
    await rig.createConnector('app', { scope: 'application', nestedGroups: 'direct' });
    expect((await rig.sync('app')).status).toBe('succeeded');
    const names = [...(await rig.directoryUsers('app')).values()].map((u) => u.username).sort();
    expect(names).toEqual(['app.direct@contoso.com', 'app.member@contoso.com']);
    expect(await rig.groupsOf('app.member@contoso.com')).toEqual(['Jira Users']);

    // unassigning the group takes its members out at the next (delta) round
    s.unassign(rig.emu.servicePrincipal.id, assigned.id);
    expect((await rig.sync('app')).status).toBe('succeeded');
    const after = await rig.directoryUsers('app');
    expect(after.get(inGroup.id)!.active).toBe(false);
    expect(after.get(direct.id)!.active).toBe(true);
  });

  it('groups scope: users of the named groups, nested members flattened, and a member added later joins in a delta round', async () => {
    const s = rig.emu.state;
    const top = s.addGroup({ displayName: 'Engineering' });
    const sub = s.addGroup({ displayName: 'Platform' });
    const a = s.addUser({ userPrincipalName: 'eng.a@contoso.com' });
    const b = s.addUser({ userPrincipalName: 'platform.b@contoso.com' });
    s.addUser({ userPrincipalName: 'not.in.scope@contoso.com' });
    s.addMember(top.id, a.id);
    s.addMember(top.id, sub.id);
    s.addMember(sub.id, b.id);
    await rig.createConnector('eng', { scope: 'groups', groups: ['Engineering'] });
    expect((await rig.sync('eng')).status).toBe('succeeded');
    expect([...(await rig.directoryUsers('eng')).values()].map((u) => u.username).sort()).toEqual(['eng.a@contoso.com', 'platform.b@contoso.com']);

    const c = s.addUser({ userPrincipalName: 'platform.c@contoso.com' });
    s.addMember(sub.id, c.id);
    const out = await rig.sync('eng');
    expect(out.status).toBe('succeeded');
    expect((await rig.api(`/runs/${out.runId}`)).body.log.map((l: { message: string }) => l.message).join('\n')).toMatch(/delta round/);
    expect((await rig.directoryUsers('eng')).get(c.id)?.username).toBe('platform.c@contoso.com');
    expect(await rig.groupsOf('platform.c@contoso.com')).toEqual(expect.arrayContaining(['Engineering']));

    const missing = await rig.api('/connectors', { method: 'POST', body: { id: 'nogroup', name: 'x', kind: 'graph', source: rig.source({ scope: 'groups', groups: ['No Such Group'] }) } });
    expect(missing.status).toBe(201);
    const failed = await rig.sync('nogroup');
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/group 'No Such Group' was not found/);
  });

  it('the username comes from the chosen attribute; extra attributes reach custom attributes; guests get their own address or are left out', async () => {
    const s = rig.emu.state;
    const group = s.addGroup({ displayName: 'Attr Group' });
    const u = s.addUser({ userPrincipalName: 'jdoe@contoso.com', onPremisesSamAccountName: 'JDOE', officeLocation: 'Building 7', employeeId: 'E-77' });
    const guest = s.addUser({ userPrincipalName: 'ann_fabrikam.com#EXT#@contoso.onmicrosoft.com', mail: 'ann@fabrikam.com', userType: 'Guest' });
    s.addMember(group.id, u.id);
    s.addMember(group.id, guest.id);
    const settings = { user: { customAttributes: [{ name: 'office', mapping: { source: 'urn:usersync:params:scim:schemas:extension:source:2.0:User:officeLocation' } }] } };
    await rig.createConnector('sam', { scope: 'groups', groups: [group.id], usernameAttribute: 'onPremisesSamAccountName', extraAttributes: ['officeLocation'] }, settings);
    expect((await rig.sync('sam')).status).toBe('succeeded');
    const users = await rig.directoryUsers('sam');
    expect(users.get(u.id)!.username).toBe('JDOE');
    expect(users.get(u.id)!.attributes.office).toBe('Building 7');
    expect(users.has(guest.id)).toBe(false); // a guest has no onPremisesSamAccountName: left out, counted as skipped

    await rig.createConnector('guests', { scope: 'groups', groups: [group.id] });
    await rig.sync('guests');
    expect((await rig.directoryUsers('guests')).get(guest.id)!.username).toBe('ann@fabrikam.com');
    await rig.createConnector('noguests', { scope: 'groups', groups: [group.id], guests: 'exclude' });
    await rig.sync('noguests');
    expect((await rig.directoryUsers('noguests')).has(guest.id)).toBe(false);
  });

  it('a scoped sync-user token may only ask for one user', async () => {
    const { token } = await rig.server.service.adminTokens.create('sso', 'test', 'sync-user');
    rig.emu.state.addUser({ userPrincipalName: 'sso.user@contoso.com' });
    await rig.createConnector('sso');
    const ok = await rig.api('/connectors/sso/sync-user', { method: 'POST', body: { username: 'sso.user@contoso.com' }, token });
    expect(ok.status).toBe(200);
    expect(ok.body.outcome).toBe('synced');
    const denied = await rig.api('/connectors', { token });
    expect(denied.status).toBe(403);
    const sync = await rig.api('/connectors/sso/sync', { method: 'POST', body: {}, token });
    expect(sync.status).toBe(403);
  });

  it('the deletion limit holds a pull run that would deactivate too many', async () => {
    const s = rig.emu.state;
    const group = s.addGroup({ displayName: 'Limited' });
    const ids = Array.from({ length: 10 }, (_, i) => s.addUser({ userPrincipalName: `limited${i}@contoso.com` }).id);
    for (const id of ids) s.addMember(group.id, id);
    await rig.createConnector('limited', { scope: 'groups', groups: ['Limited'] }, { safety: { deletionLimit: { count: 3, percent: null } } });
    expect((await rig.sync('limited')).status).toBe('succeeded');
    for (const id of ids.slice(0, 5)) s.hardDeleteUser(id);
    const out = await rig.sync('limited');
    expect(out.status).toBe('held');
    expect([...(await rig.directoryUsers('limited')).values()].filter((u) => u.active)).toHaveLength(10);
    const approved = await rig.api(`/runs/${out.runId}/approve`, { method: 'POST' });
    expect(approved.body.applied).toBe(5);
    expect([...(await rig.directoryUsers('limited')).values()].filter((u) => u.active)).toHaveLength(5);
  });

  it('a certificate credential works in place of a secret', async () => {
    const { generateClientCertificate } = await import('../../support/graph-emulator/index.ts');
    const cert = await generateClientCertificate();
    rig.emu.auth.addCertificate(cert.certPem);
    const res = await rig.api('/connectors', {
      method: 'POST',
      body: { id: 'cert', name: 'cert', kind: 'graph', source: rig.source({ credential: 'certificate', clientSecret: undefined, certificate: cert.certPem, privateKey: cert.privateKeyPem }) },
    });
    expect(res.status).toBe(201);
    expect(res.body.source.privateKey).toEqual({ set: true });
    expect(res.body.source.credentialExpiresAt).toMatch(/^\d{4}-/);
    const row = await rig.server.store.db.kysely.selectFrom('connectors').select('source').where('id', '=', 'cert').executeTakeFirstOrThrow();
    expect(row.source).not.toContain('PRIVATE KEY');
    expect((await rig.api('/connectors/cert/test', { method: 'POST' })).body.ok).toBe(true);
  });

  it('a schedule starts runs by itself, once per interval', async () => {
    await rig.createConnector('scheduled', { schedule: { kind: 'interval', minutes: 5 } });
    await rig.server.service.scheduler.tick(new Date());
    await rig.server.service.scheduler.tick(new Date());
    for (let i = 0; i < 100; i++) {
      const runs = await rig.api('/runs?connector=scheduled');
      if (runs.body.runs.every((r: { status: string }) => r.status !== 'running')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await rig.server.service.scheduler.tick(new Date());
    const runs = await rig.api('/runs?connector=scheduled');
    expect(runs.body.runs.map((r: { trigger: string; status: string }) => `${r.trigger}:${r.status}`)).toEqual(['schedule:succeeded']);
  });
});

describe.each(DIALECTS)('Graph pull: large runs and username conflicts on %s', (dialect) => {
  let rig: GraphRig;
  beforeAll(async () => {
    // a low threshold: a run that changes more than 50 records marks the whole connector instead
    rig = await startGraphRig(dialect, { bulkMarkThreshold: 50 });
  }, 60_000);
  afterAll(async () => rig?.close());

  it('a run that changes a great deal is reconciled as one pass over the connector, with the same result', async () => {
    const seeded = rig.emu.state.seed({ users: 300, groups: 12, memberships: 800, nestedGroups: 3, randomSeed: 11 });
    await rig.createConnector('bulk');
    const out = await rig.sync('bulk');
    expect(out.status).toBe('succeeded');
    expect(out.counters.created).toBe(300);
    const users = await rig.directoryUsers('bulk');
    expect(users.size).toBe(300);
    for (const [username, groups] of expectedGroups(rig, seeded.userIds.slice(0, 40))) expect(await rig.groupsOf(username)).toEqual(groups);
    const marks = await rig.server.store.db.kysely.selectFrom('dirty_marks').select('seq').where('connector_id', '=', 'bulk').execute();
    expect(marks).toEqual([]);
    // a small change afterwards goes record by record again
    rig.emu.state.updateUser(seeded.userIds[0]!, { displayName: 'Small Change' });
    expect((await rig.sync('bulk')).counters.updated).toBe(1);
  });

  it('two Graph users with one username: the second is reported, not synced, and syncs once the first lets go', async () => {
    const s = rig.emu.state;
    const group = s.addGroup({ displayName: 'Mail Users' });
    const a = s.addUser({ userPrincipalName: 'a1@contoso.com', mail: 'shared@contoso.com' });
    const b = s.addUser({ userPrincipalName: 'b1@contoso.com', mail: 'shared@contoso.com' });
    s.addMember(group.id, a.id);
    s.addMember(group.id, b.id);
    await rig.createConnector('bymail', { scope: 'groups', groups: ['Mail Users'], usernameAttribute: 'mail' });
    const out = await rig.sync('bymail');
    expect(out.status).toBe('succeeded');
    expect(out.counters.conflicts).toBe(1);
    const log = (await rig.api(`/runs/${out.runId}`)).body.log.map((l: { message: string }) => l.message).join('\n');
    expect(log).toMatch(/username 'shared@contoso.com'/);
    expect([...(await rig.directoryUsers('bymail')).values()].map((u) => u.username)).toEqual(['shared@contoso.com']);
    // the holder takes another address: the other user gets the name in the same run
    const holder = (await rig.directoryUsers('bymail')).has(a.id) ? a : b;
    const other = holder === a ? b : a;
    s.updateUser(holder.id, { mail: 'moved@contoso.com' });
    expect((await rig.sync('bymail', 'full')).status).toBe('succeeded');
    const after = await rig.directoryUsers('bymail');
    expect(after.get(holder.id)!.username).toBe('moved@contoso.com');
    expect(after.get(other.id)!.username).toBe('shared@contoso.com');
  });
});
