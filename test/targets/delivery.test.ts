// Delivery to Jira (a stateful fake that checks every request and answer against Atlassian's OpenAPI
// document) from the change feed the real reconciler writes: creation, attributes, activity, renames,
// memberships, cleanup policies, lead handover, licences, parking and retry, faults and outages, pause.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import { startAtlassianFake } from '../support/atlassian/index.ts';
import { Rig } from './support.ts';

describe('delivery to Jira', () => {
  let rig: Rig;
  let jira: AtlassianFake;

  beforeEach(async () => {
    rig = await Rig.open('sqlite');
  });
  afterEach(async () => {
    await rig.close();
    // every request usersync sent, and every answer the fake gave, matched the OpenAPI document
    await jira.close();
    expect(jira.violations).toEqual([]);
  });

  const writes = () => jira.requests.filter((r) => r.method !== 'GET').length;

  it('creates users, groups and memberships, with the directory values, and a second pass sends nothing', async () => {
    jira = await startAtlassianFake('jira');
    const ada = await rig.user('ada@example.com', { displayName: 'Ada Lovelace' });
    const bob = await rig.user('bob@example.com', { displayName: 'Bob Babbage' });
    await rig.group('jira-developers', [ada, bob]);
    await rig.group('jira-admins', [ada]);
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.deliver();

    expect(jira.user('ada@example.com')).toMatchObject({ email: 'ada@example.com', displayName: 'Ada Lovelace', active: true });
    expect(jira.user('bob@example.com')).toMatchObject({ displayName: 'Bob Babbage', active: true });
    expect(jira.members('jira-developers')).toEqual(['ada@example.com', 'bob@example.com']);
    expect(jira.members('jira-admins')).toEqual(['ada@example.com']);
    expect(await rig.targets.ledgerCounts(t)).toMatchObject({ user: 2, group: 2, membership: 3 });
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });

    const before = writes();
    await rig.db.transaction((trx) => rig.targets.enqueueEverything(trx, t));
    await rig.deliver();
    expect(writes()).toBe(before);
  });

  it('follows the directory: attribute changes, a rename keeping the account, deactivation and reactivation, membership removal', async () => {
    jira = await startAtlassianFake('jira');
    const u = await rig.user('carol@example.com', { displayName: 'Carol' });
    const g = await rig.group('jira-testers', [u]);
    await rig.sync();
    await rig.addTarget('jira', jira);
    await rig.deliver();
    const idBefore = jira.user('carol@example.com')!.id;

    await rig.updateUser(u, { displayName: 'Carol Shaw', userName: 'carol.shaw@example.com', email: 'carol.shaw@example.com' });
    await rig.sync();
    await rig.deliver();
    expect(jira.user('carol@example.com')).toBeUndefined();
    expect(jira.user('carol.shaw@example.com')).toMatchObject({ id: idBefore, displayName: 'Carol Shaw', email: 'carol.shaw@example.com' });
    expect(jira.members('jira-testers')).toEqual(['carol.shaw@example.com']);

    await rig.updateUser(u, { active: false });
    await rig.sync();
    await rig.deliver();
    expect(jira.user('carol.shaw@example.com')!.active).toBe(false);

    await rig.updateUser(u, { active: true });
    await rig.sync();
    await rig.deliver();
    expect(jira.user('carol.shaw@example.com')!.active).toBe(true);

    await rig.members(g, { remove: [u] });
    await rig.sync();
    await rig.deliver();
    expect(jira.members('jira-testers')).toEqual([]);

    // and the target's activity says what it did, newest first
    const t = (await rig.targets.list())[0]!.id;
    const events = (await rig.targets.events(t, { limit: 50 })).map((e) => `${e.action} ${e.subject}${e.detail ? ` (${e.detail})` : ''}`);
    expect(events).toEqual([
      'groups-removed carol.shaw@example.com (jira-testers)',
      'activated carol.shaw@example.com',
      'deactivated carol.shaw@example.com',
      'updated carol.shaw@example.com (email, displayName)',
      'renamed carol.shaw@example.com (from carol@example.com)',
      'groups-added carol@example.com (jira-testers)',
      'created carol@example.com (carol@example.com, Carol)',
      'group-created jira-testers',
    ]);
    expect((await rig.targets.events(t, { limit: 50, search: 'TESTERS' })).map((e) => e.action)).toEqual(['group-created']);
  });

  it('renames a group as Jira allows: a new group with the members, the old one deleted', async () => {
    jira = await startAtlassianFake('jira');
    const a = await rig.user('dan@example.com');
    const b = await rig.user('eve@example.com');
    const g = await rig.group('team-old', [a, b]);
    await rig.sync();
    await rig.addTarget('jira', jira);
    await rig.deliver();
    await rig.renameGroup(g, 'team-new');
    await rig.sync();
    await rig.deliver();
    expect(jira.groups()).toContain('team-new');
    expect(jira.groups()).not.toContain('team-old');
    expect(jira.members('team-new')).toEqual(['dan@example.com', 'eve@example.com']);
  });

  it("hands a deactivated lead's projects and components to the default leads first", async () => {
    jira = await startAtlassianFake('jira');
    const lead = await rig.user('frank@example.com');
    await rig.user('pm@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira, { defaultProjectLead: 'pm@example.com' });
    await rig.deliver();
    jira.addProject!({ key: 'APP', name: 'App', lead: 'frank@example.com', components: [{ name: 'Backend', lead: 'frank@example.com' }, { name: 'UI' }] });

    await rig.updateUser(lead, { active: false });
    await rig.sync();
    await rig.deliver();
    expect(jira.user('frank@example.com')!.active).toBe(false);
    const project = jira.project!('APP')!;
    expect(project.lead).toBe('pm@example.com');
    expect(project.components.find((c) => c.name === 'Backend')!.lead).toBe('pm@example.com');
    const audit = await rig.db.kysely.selectFrom('audit_log').selectAll().where('action', '=', 'target.lead-handover').executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ actor: `target:${t}`, target: 'frank@example.com' });
    expect(audit.details).toMatch(/Project APP .* is now led by pm@example.com/);
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });
  });

  it('parks the deactivation of a lead when no default lead is set, and delivers it after the setting and a retry', async () => {
    jira = await startAtlassianFake('jira');
    const lead = await rig.user('gina@example.com');
    await rig.user('other@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira, { maxAttempts: 1 });
    await rig.deliver();
    jira.addProject!({ key: 'OPS', name: 'Ops', lead: 'gina@example.com' });
    await rig.updateUser(lead, { active: false });
    await rig.sync();
    await rig.deliver();
    const parked = await rig.parked(t);
    expect(parked).toHaveLength(1);
    expect(parked[0]!.error).toMatch(/lead/i);
    expect(jira.user('gina@example.com')!.active).toBe(true);

    await rig.setTargetSettings(t, { defaultProjectLead: 'other@example.com' });
    await rig.db.transaction((trx) => rig.targets.retryParked(trx, t));
    await rig.deliver();
    expect(jira.user('gina@example.com')!.active).toBe(false);
    expect(jira.project!('OPS')!.lead).toBe('other@example.com');
  });

  it('applies the cleanup policy to a user who leaves the scope: deactivate by default, or delete', async () => {
    jira = await startAtlassianFake('jira');
    const a = await rig.user('hal@example.com');
    const b = await rig.user('ivy@example.com');
    const g = await rig.group('jira-users', [a, b]);
    await rig.sync();
    const t = await rig.addTarget('jira', jira, { users: 'group-members' });
    await rig.deliver();
    expect(jira.user('hal@example.com')!.active).toBe(true);

    await rig.members(g, { remove: [a] });
    await rig.sync();
    await rig.deliver();
    expect(jira.user('hal@example.com')!.active).toBe(false);

    await rig.setTargetSettings(t, { cleanup: 'delete' });
    await rig.members(g, { remove: [b] });
    await rig.sync();
    await rig.deliver();
    expect(jira.user('ivy@example.com')).toBeUndefined();
    expect(await rig.targets.ledgerGet(t, 'user', await rig.directoryUserId('ivy@example.com'))).toBeUndefined();
  });

  it('never touches a user it did not create: an existing account is parked as not owned, the others go on', async () => {
    jira = await startAtlassianFake('jira');
    jira.addUser({ name: 'joe@example.com', email: 'joe@elsewhere.example', displayName: 'Somebody Else' });
    await rig.user('joe@example.com');
    await rig.user('kim@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.deliver();
    const parked = await rig.parked(t);
    expect(parked.map((p) => p.errorCode)).toEqual(['not-owned']);
    expect(parked[0]!.error).toMatch(/already exists in Jira/);
    expect(jira.user('joe@example.com')).toMatchObject({ email: 'joe@elsewhere.example', displayName: 'Somebody Else' });
    expect(jira.user('kim@example.com')).toBeDefined();
  });

  it('recovers a create whose answer was lost: the existing account is its own, not a conflict', async () => {
    jira = await startAtlassianFake('jira');
    await rig.user('lost@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    const id = await rig.directoryUserId('lost@example.com');
    // what a crash right after Jira created the user leaves: the intent in the ledger, the user in Jira
    await rig.targets.ledgerPut(t, { kind: 'user', localId: id, remoteName: 'lost@example.com', remoteId: null, state: {}, origin: 'created', pending: true });
    jira.addUser({ name: 'lost@example.com', email: 'lost@example.com', displayName: 'lost' });
    await rig.deliver();
    expect(await rig.parked(t)).toEqual([]);
    expect(await rig.targets.ledgerGet(t, 'user', id)).toMatchObject({ pending: false, origin: 'created' });
  });

  it('parks users without a licence seat with a clear message and an alert, delivers the rest, and retries them', async () => {
    jira = await startAtlassianFake('jira', { seats: 3 });
    for (const n of ['l1', 'l2', 'l3', 'l4', 'l5']) await rig.user(`${n}@example.com`);
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.deliver();
    expect(jira.users().filter((u) => u.active)).toHaveLength(3);
    const parked = await rig.parked(t);
    expect(parked.map((p) => p.errorCode)).toEqual(['licence', 'licence']);
    expect(parked[0]!.error).toMatch(/licen[cs]e/i);
    const alerts = await rig.db.kysely.selectFrom('alerts').selectAll().where('kind', '=', 'target-parked').execute();
    expect(alerts.some((a) => /licence seat/.test(a.subject))).toBe(true);

    // a seat freed by deactivating a user in the directory; then the parked ones are retried
    await rig.updateUser(await rig.mirrorIdOf('l1@example.com'), { active: false });
    await rig.sync();
    await rig.deliver();
    await rig.db.transaction((trx) => rig.targets.retryParked(trx, t));
    await rig.deliver();
    expect(jira.users().filter((u) => u.active)).toHaveLength(3);
    expect((await rig.parked(t)).length).toBe(1);
  });

  it('retries 429 (waiting for Retry-After), 500 and timeouts, and loses nothing', async () => {
    jira = await startAtlassianFake('jira');
    for (const n of ['m1', 'm2', 'm3', 'm4']) await rig.user(`${n}@example.com`);
    await rig.sync();
    await rig.addTarget('jira', jira);
    jira.faults.add({ status: 429, retryAfter: 1, match: '/rest/api/2/user', method: 'POST', count: 2 });
    jira.faults.add({ status: 500, match: '/rest/api/2/user', method: 'POST', count: 1 });
    jira.faults.add({ timeout: true, match: '/rest/api/2/user', method: 'POST', count: 1 });
    const started = Date.now();
    await rig.deliver();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(jira.users().map((u) => u.name).sort()).toEqual(['m1@example.com', 'm2@example.com', 'm3@example.com', 'm4@example.com']);
  });

  it('waits out an outage without parking anything, and holds no other target back', async () => {
    jira = await startAtlassianFake('jira');
    const second = await startAtlassianFake('jira');
    try {
      for (const n of ['n1', 'n2', 'n3']) await rig.user(`${n}@example.com`);
      await rig.sync();
      const down = await rig.addTarget('jira', jira, { retries: 0 });
      const up = await rig.addTarget('jira', second);
      jira.faults.add({ status: 503, count: Infinity });
      await rig.deliver(rig.worker({ outageAlertMs: 0 }));
      expect(second.users()).toHaveLength(3);
      expect(jira.users()).toHaveLength(0);
      const t = (await rig.targets.get(down))!;
      expect(t.status.unavailableUntil).toBeDefined();
      expect(t.status.lastError).toMatch(/503|unavailable/i);
      expect(await rig.targets.workCounts(down)).toEqual({ pending: 3, parked: 0 });
      expect(await rig.targets.workCounts(up)).toEqual({ pending: 0, parked: 0 });
      const alert = await rig.db.kysely.selectFrom('alerts').selectAll().where('kind', '=', 'target-unavailable').executeTakeFirstOrThrow();
      expect(alert.message).toMatch(/Nothing is lost/);

      jira.faults.clear();
      await rig.makeDue(down);
      await rig.deliver();
      expect(jira.users()).toHaveLength(3);
      expect((await rig.targets.get(down))!.status.unavailableUntil).toBeUndefined();
      expect(second.violations).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('stops on refused credentials (401) and waits, counting nothing against the users', async () => {
    jira = await startAtlassianFake('jira');
    await rig.user('o1@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    jira.faults.add({ status: 401, count: Infinity });
    await rig.deliver();
    const w = await rig.targets.dueWork(t, new Date(Date.now() + 3600_000).toISOString(), 10);
    expect(w.map((x) => x.attempts)).toEqual([0]);
    expect((await rig.targets.get(t))!.status.lastError).toBeDefined();
  });

  it('waits when every change is refused with 403 (the token lost its admin permission), parking nothing', async () => {
    jira = await startAtlassianFake('jira');
    for (const n of ['f1', 'f2', 'f3']) await rig.user(`${n}@example.com`);
    await rig.sync();
    const t = await rig.addTarget('jira', jira, { maxAttempts: 1 });
    jira.faults.add({ status: 403, count: Infinity });
    await rig.deliver();
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 3, parked: 0 });
    expect((await rig.targets.get(t))!.status.lastError).toMatch(/403/);
    jira.faults.clear();
    await rig.makeDue(t);
    await rig.deliver();
    expect(jira.users()).toHaveLength(3);
  });

  it('delivers nothing while paused, and everything after resuming', async () => {
    jira = await startAtlassianFake('jira');
    await rig.user('p1@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.db.transaction((trx) => rig.targets.update(trx, t, { paused: true }));
    await rig.worker().runOnce();
    expect(jira.users()).toHaveLength(0);
    await rig.db.transaction((trx) => rig.targets.update(trx, t, { paused: false }));
    await rig.deliver();
    expect(jira.users()).toHaveLength(1);
  });

  it('keeps in-flight requests within the configured concurrency', async () => {
    jira = await startAtlassianFake('jira', { latencyMs: 20 });
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push(await rig.user(`q${i}@example.com`));
    await rig.group('q-group', ids);
    await rig.sync();
    await rig.addTarget('jira', jira, { concurrency: 3 });
    await rig.deliver();
    expect(jira.users()).toHaveLength(40);
    expect(jira.members('q-group')).toHaveLength(40);
    expect(jira.maxInFlight).toBeLessThanOrEqual(3);
    expect(jira.maxInFlight).toBeGreaterThanOrEqual(2);
  });

  it('checks everyone again when the feed rows it had not read were pruned while it was disabled', async () => {
    jira = await startAtlassianFake('jira');
    await rig.user('r1@example.com');
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.deliver();
    await rig.db.transaction((trx) => rig.targets.update(trx, t, { enabled: false }));
    await rig.user('r2@example.com');
    await rig.sync();
    // retention only keeps rows for enabled targets: these are gone
    await rig.db.kysely.deleteFrom('change_feed').execute();
    await rig.user('r3@example.com');
    await rig.sync();
    await rig.db.transaction((trx) => rig.targets.update(trx, t, { enabled: true }));
    await rig.deliver();
    expect(jira.users().map((u) => u.name).sort()).toEqual(['r1@example.com', 'r2@example.com', 'r3@example.com']);
  });

  it('follows a group renamed into and out of the scope: its members are added, then removed', async () => {
    jira = await startAtlassianFake('jira');
    const a = await rig.user('s1@example.com');
    const b = await rig.user('s2@example.com');
    const g = await rig.group('staff', [a, b]);
    await rig.sync();
    await rig.addTarget('jira', jira, { groups: { mode: 'only', patterns: ['/^jira-/'] } });
    await rig.deliver();
    expect(jira.groups()).not.toContain('staff');

    await rig.renameGroup(g, 'jira-staff');
    await rig.sync();
    await rig.deliver();
    await rig.deliver();
    expect(jira.members('jira-staff')).toEqual(['s1@example.com', 's2@example.com']);

    await rig.renameGroup(g, 'staff-again');
    await rig.sync();
    await rig.deliver();
    await rig.deliver();
    expect(jira.members('jira-staff')).toEqual([]);
  });

  it('keeps a piece of work that changed while it was being done, however quickly', async () => {
    jira = await startAtlassianFake('jira');
    const t = await rig.addTarget('jira', jira);
    await rig.db.transaction((trx) => rig.targets.upsertWork(trx, t, [{ key: 'u:someone', seq: 7 }]));
    const [w] = await rig.targets.dueWork(t, new Date(Date.now() + 1000).toISOString(), 10);
    // the same change again (same seq, likely the same millisecond) while the round works on it
    await rig.db.transaction((trx) => rig.targets.upsertWork(trx, t, [{ key: 'u:someone', seq: 7 }]));
    await rig.targets.finishWork(t, [w!]);
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 1, parked: 0 });
    const [again] = await rig.targets.dueWork(t, new Date(Date.now() + 1000).toISOString(), 10);
    await rig.targets.finishWork(t, [again!]);
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });
  });
});
