// What differs per application, each against its fake: Confluence (username rules, enable/disable, the
// asynchronous delete, 402 licences), Bitbucket (no deactivation: the groups and the licence group are
// taken away, or the user is deleted), Atlassian Cloud (SCIM, verified domains). And several instances on
// one PostgreSQL delivering each change once.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import { startAtlassianFake } from '../support/atlassian/index.ts';
import { Rig } from './support.ts';

describe('the same directory delivered to each kind of application', () => {
  let rig: Rig;
  let fake: AtlassianFake;

  beforeEach(async () => {
    rig = await Rig.open('sqlite');
  });
  afterEach(async () => {
    await rig.close();
    await fake.close();
    expect(fake.violations).toEqual([]);
  });

  for (const kind of ['jira', 'confluence', 'bitbucket', 'atlassian-cloud'] as const) {
    it(`${kind}: users, groups, memberships, an update and a removal from a group`, async () => {
      fake = await startAtlassianFake(kind);
      const a = await rig.user('ada@example.com', { displayName: 'Ada' });
      const b = await rig.user('bob@example.com', { displayName: 'Bob' });
      const g = await rig.group('developers', [a, b]);
      await rig.sync();
      const t = await rig.addTarget(kind, fake);
      await rig.deliver();
      expect(fake.user('ada@example.com')).toMatchObject({ email: 'ada@example.com', displayName: 'Ada', active: true });
      expect(fake.members('developers')).toEqual(['ada@example.com', 'bob@example.com']);

      await rig.updateUser(a, { displayName: 'Ada Lovelace' });
      await rig.members(g, { remove: [b] });
      await rig.sync();
      await rig.deliver();
      expect(fake.user('ada@example.com')!.displayName).toBe('Ada Lovelace');
      expect(fake.members('developers')).toEqual(['ada@example.com']);
      expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });
    });
  }

  it('confluence: disables and enables; parks usernames Confluence refuses, and delivers the others', async () => {
    fake = await startAtlassianFake('confluence');
    const a = await rig.user('ok@example.com');
    await rig.user('Upper.Case@example.com', { email: 'upper@example.com' });
    await rig.sync();
    const t = await rig.addTarget('confluence', fake);
    await rig.deliver();
    expect(fake.user('ok@example.com')!.active).toBe(true);
    const parked = await rig.parked(t);
    expect(parked.map((p) => p.errorCode)).toEqual(['invalid']);
    expect(parked[0]!.error).toMatch(/lowercase/);
    expect(fake.users().map((u) => u.name)).toEqual(['ok@example.com']);

    await rig.updateUser(a, { active: false });
    await rig.sync();
    await rig.deliver();
    expect(fake.user('ok@example.com')!.active).toBe(false);
    await rig.updateUser(a, { active: true });
    await rig.sync();
    await rig.deliver();
    expect(fake.user('ok@example.com')!.active).toBe(true);
  });

  it('confluence: a group name Confluence lowercases is delivered once, not renamed over and over', async () => {
    fake = await startAtlassianFake('confluence');
    const a = await rig.user('lc@example.com');
    await rig.group('Wiki Editors', [a]);
    await rig.sync();
    const t = await rig.addTarget('confluence', fake);
    await rig.deliver();
    expect(fake.members('wiki editors')).toEqual(['lc@example.com']);
    const writes = () => fake.requests.filter((r) => r.method !== 'GET').length;
    const before = writes();
    await rig.db.transaction((trx) => rig.targets.enqueueEverything(trx, t));
    await rig.deliver();
    expect(writes()).toBe(before);
  });

  it('confluence: the delete policy waits for the asynchronous delete; no seat left is a 402 parked as licence', async () => {
    fake = await startAtlassianFake('confluence', { seats: 2, deleteDelayMs: 100 });
    const ids = [await rig.user('c1@example.com'), await rig.user('c2@example.com'), await rig.user('c3@example.com')];
    const g = await rig.group('confluence-users', ids);
    await rig.sync();
    const t = await rig.addTarget('confluence', fake, { users: 'group-members', cleanup: 'delete' });
    await rig.deliver();
    expect(fake.users()).toHaveLength(2);
    expect((await rig.parked(t)).map((p) => p.errorCode)).toEqual(['licence']);

    const delivered = fake.users()[0]!.name;
    await rig.members(g, { remove: [await rig.mirrorIdOf(delivered)] });
    await rig.sync();
    await rig.deliver();
    expect(fake.user(delivered)).toBeUndefined();
    await rig.db.transaction((trx) => rig.targets.retryParked(trx, t));
    await rig.deliver();
    expect(fake.users()).toHaveLength(2);
    expect(await rig.parked(t)).toEqual([]);
  });

  it('bitbucket: an inactive user loses its groups and the licence group; back active, it gets its groups again', async () => {
    fake = await startAtlassianFake('bitbucket');
    const a = await rig.user('dev@example.com');
    await rig.group('developers', [a]);
    await rig.sync();
    const t = await rig.addTarget('bitbucket', fake);
    await rig.deliver();
    fake.addMember('stash-users', 'dev@example.com'); // the licence, as Bitbucket's default group gives it
    expect(fake.groupsOf('dev@example.com').sort()).toEqual(['developers', 'stash-users']);

    await rig.updateUser(a, { active: false });
    await rig.sync();
    await rig.deliver();
    expect(fake.groupsOf('dev@example.com')).toEqual([]);
    expect(fake.user('dev@example.com')).toBeDefined();

    await rig.updateUser(a, { active: true });
    await rig.sync();
    await rig.deliver();
    expect(fake.groupsOf('dev@example.com')).toEqual(['developers']);
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });
  });

  it("bitbucket: with the 'delete' strategy an inactive user is deleted", async () => {
    fake = await startAtlassianFake('bitbucket');
    const a = await rig.user('gone@example.com');
    await rig.sync();
    await rig.addTarget('bitbucket', fake, { bitbucketInactive: 'delete' });
    await rig.deliver();
    expect(fake.user('gone@example.com')).toBeDefined();
    await rig.updateUser(a, { active: false });
    await rig.sync();
    await rig.deliver();
    expect(fake.user('gone@example.com')).toBeUndefined();
  });

  it('atlassian cloud: deactivates through SCIM, and parks an e-mail outside the verified domains before sending', async () => {
    fake = await startAtlassianFake('atlassian-cloud', { verifiedDomains: ['example.com'] });
    const a = await rig.user('cloud@example.com');
    await rig.user('partner@partner.example', { email: 'partner@partner.example' });
    await rig.sync();
    const t = await rig.addTarget('atlassian-cloud', fake, { verifiedDomains: ['example.com'] });
    await rig.deliver();
    expect(fake.users().map((u) => u.name)).toEqual(['cloud@example.com']);
    const parked = await rig.parked(t);
    expect(parked.map((p) => p.errorCode)).toEqual(['invalid']);
    expect(parked[0]!.error).toMatch(/verified domain/);
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Users'))).toHaveLength(1);

    await rig.updateUser(a, { active: false });
    await rig.sync();
    await rig.deliver();
    expect(fake.user('cloud@example.com')!.active).toBe(false);
  });
});

describe('several instances on one PostgreSQL', () => {
  let rig: Rig;
  let fake: AtlassianFake;

  afterEach(async () => {
    await rig.close();
    await fake.close();
    expect(fake.violations).toEqual([]);
  });

  it('deliver each change once: every user created by exactly one of them', async () => {
    rig = await Rig.open('postgres');
    fake = await startAtlassianFake('jira', { latencyMs: 5 });
    const ids = [];
    for (let i = 0; i < 120; i++) ids.push(await rig.user(`pg${i}@example.com`));
    await rig.group('everyone', ids);
    await rig.sync();
    const t = await rig.addTarget('jira', fake, { concurrency: 4 });
    const workers = [rig.worker(), rig.worker(), rig.worker()];
    // all three look at the target at once, several times over
    for (let i = 0; i < 10 && (await rig.anythingDue()); i++) await Promise.all(workers.map((w) => w.runOnce()));
    expect(fake.users()).toHaveLength(120);
    expect(fake.members('everyone')).toHaveLength(120);
    const creates = fake.requests.filter((r) => r.method === 'POST' && r.path === '/rest/api/2/user');
    expect(creates).toHaveLength(120);
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });
  });
});
