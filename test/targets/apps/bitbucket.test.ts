// The Bitbucket client against the Bitbucket fake over HTTP.

import { afterEach, describe, expect, it } from 'vitest';
import type { CountingTargetApp } from '../../../src/targets/apps.ts';
import { BITBUCKET_DEFAULT_GROUP, startAtlassianFake } from '../../support/atlassian/index.ts';
import type { AtlassianFake, FakeOptions } from '../../support/atlassian/types.ts';
import { collect, expectNoViolations, open, targetError, wanted } from './support.ts';

describe('Bitbucket client', () => {
  let fake: AtlassianFake;
  let app: CountingTargetApp;

  async function start(options: FakeOptions = {}): Promise<void> {
    fake = await startAtlassianFake('bitbucket', options);
    app = open('bitbucket', fake);
  }

  afterEach(async () => {
    expectNoViolations(fake);
    await app.close?.();
    await fake.close();
  });

  it('creates, updates, renames and deletes a user, outside the default group', async () => {
    await start();
    const created = await app.createUser(wanted('alice', { displayName: 'Alice A' }));
    expect(created).toMatchObject({ name: 'alice', email: 'alice@example.com', displayName: 'Alice A', active: true });
    expect(fake.user('alice')).toMatchObject({ email: 'alice@example.com', displayName: 'Alice A' });
    // the engine decides the groups
    expect(fake.groupsOf('alice')).toEqual([]);
    const post = fake.requests.find((r) => r.method === 'POST' && r.path === '/rest/api/1.0/admin/users')!;
    expect(post.query).toMatchObject({ name: 'alice', displayName: 'Alice A', emailAddress: 'alice@example.com', addToDefaultGroup: 'false' });
    expect(post.query.password!.length).toBeGreaterThanOrEqual(32);

    const taken = await targetError(app.createUser(wanted('alice')));
    expect(taken.code).toBe('exists');
    expect(taken.message).not.toContain(post.query.password!);

    const fetched = await app.getUser('alice');
    expect(fetched).toMatchObject({ name: 'alice', active: true, id: fake.user('alice')!.id });

    const updated = await app.updateUser(fetched!, wanted('alice', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(updated).toMatchObject({ name: 'alice', email: 'alice.a@example.com', displayName: 'Alice Anders' });
    expect(fake.user('alice')).toMatchObject({ email: 'alice.a@example.com', displayName: 'Alice Anders' });

    const renamed = await app.updateUser(updated, wanted('alice.anders', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(renamed.name).toBe('alice.anders');
    expect(fake.user('alice')).toBeUndefined();
    expect(fake.user('alice.anders')!.id).toBe(fetched!.id);

    fake.addUser({ name: 'bob' });
    expect((await targetError(app.updateUser(renamed, wanted('bob')))).code).toBe('exists');

    await app.deleteUser(renamed);
    expect(fake.user('alice.anders')).toBeUndefined();
    expect(await app.getUser('alice.anders')).toBeUndefined();
    await app.deleteUser(renamed);
  });

  it('says that Bitbucket cannot deactivate users', async () => {
    await start();
    fake.addUser({ name: 'alice' });
    const err = await targetError(app.setActive({ name: 'alice', email: null, displayName: 'alice', active: true }, false));
    expect(err.code).toBe('unsupported');
    expect(err.message).toMatch(/^Bitbucket cannot deactivate users; /);
    expect(fake.requests).toEqual([]);
  });

  it('picks the exact user out of a filtered search', async () => {
    await start();
    fake.addUser({ name: 'ann' });
    fake.addUser({ name: 'anna' });
    fake.addUser({ name: 'joanne', email: 'ann@example.org' });
    expect((await app.getUser('ann'))?.name).toBe('ann');
    expect((await app.getUser('ANNA'))?.name).toBe('anna');
    expect(await app.getUser('an')).toBeUndefined();
  });

  it('reports a licence limit on a licensing group as licence', async () => {
    await start({ seats: 1 });
    fake.addUser({ name: 'first' });
    fake.addMember(BITBUCKET_DEFAULT_GROUP, 'first');
    const second = await app.createUser(wanted('second'));
    const err = await targetError(app.addMembers(second, [{ name: BITBUCKET_DEFAULT_GROUP }]));
    expect(err.code).toBe('licence');
    expect(err.status).toBe(403);
  });

  it('adds all groups in one request and removes them idempotently', async () => {
    await start();
    fake.addGroup('devs');
    fake.addGroup('ops');
    const alice = await app.createUser(wanted('alice'));
    fake.resetStats();
    await app.addMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /rest/api/1.0/admin/users/add-groups']);
    await app.addMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    expect(fake.groupsOf('alice')).toEqual(['devs', 'ops']);
    await app.addMembers(alice, []);

    await app.removeMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    await app.removeMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    expect(fake.groupsOf('alice')).toEqual([]);
    // a group that is gone has no members to remove
    await app.removeMembers(alice, [{ name: 'gone' }]);
    expect((await targetError(app.addMembers(alice, [{ name: 'gone' }]))).code).toBe('not-found');
  });

  it('lists users, groups and members across pages', async () => {
    await start();
    for (let i = 0; i < 1500; i++) fake.addUser({ name: `u${String(i).padStart(4, '0')}` });
    for (let i = 0; i < 1100; i++) fake.addGroup(`g${String(i).padStart(4, '0')}`);
    for (let i = 0; i < 1200; i++) fake.addMember('g0000', `u${String(i).padStart(4, '0')}`);

    const users = await collect(app.listUsers());
    expect(users.pages).toBe(2);
    expect(users.items.length).toBe(1500);
    expect(users.items.every((u) => u.active)).toBe(true);

    const groups = await collect(app.listGroups());
    expect(groups.pages).toBe(2);
    expect(groups.items.map((g) => g.name).sort()).toEqual(fake.groups().sort());

    const members = await collect(app.listMembers({ name: 'g0000' }));
    expect(members.pages).toBe(2);
    expect(members.items.sort()).toEqual(fake.members('g0000'));
  });

  it('creates and deletes groups', async () => {
    await start();
    expect(await app.createGroup('devs')).toEqual({ name: 'devs' });
    expect((await targetError(app.createGroup('devs'))).code).toBe('exists');
    await app.deleteGroup({ name: 'devs' });
    expect(fake.groups()).not.toContain('devs');
    await app.deleteGroup({ name: 'devs' });
  });

  it('passes its self-test', async () => {
    await start();
    const checks = await app.test();
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['credentials', true],
      ['admin', true],
    ]);
  });
});
