// The Atlassian Cloud (SCIM) client against the Cloud fake over HTTP.

import { afterEach, describe, expect, it } from 'vitest';
import type { CountingTargetApp } from '../../../src/targets/apps.ts';
import { openApp } from '../../../src/targets/apps.ts';
import { scimString } from '../../../src/targets/cloud/client.ts';
import { startAtlassianFake } from '../../support/atlassian/index.ts';
import type { AtlassianFake, FakeOptions } from '../../support/atlassian/types.ts';
import { collect, connection, expectNoViolations, open, targetError, wanted } from './support.ts';

describe('Atlassian Cloud client', () => {
  let fake: AtlassianFake;
  let app: CountingTargetApp;

  async function start(options: FakeOptions = {}): Promise<void> {
    fake = await startAtlassianFake('atlassian-cloud', options);
    app = open('atlassian-cloud', fake);
  }

  afterEach(async () => {
    expectNoViolations(fake);
    await app.close?.();
    await fake.close();
  });

  it('creates, updates, renames, deactivates, reactivates and deletes a user', async () => {
    await start();
    const created = await app.createUser(wanted('alice@example.com', { email: 'alice@example.com', displayName: 'Alice A', givenName: 'Alice', familyName: 'A' }));
    expect(created).toMatchObject({ name: 'alice@example.com', email: 'alice@example.com', displayName: 'Alice A', active: true, id: fake.user('alice@example.com')!.id });

    const taken = await targetError(app.createUser(wanted('alice@example.com', { email: 'alice@example.com' })));
    expect(taken.code).toBe('exists');
    expect(taken.message).toMatch(/^Atlassian Cloud refused to create user "alice@example.com" \(HTTP 409\): .*already exists/);

    const updated = await app.updateUser(created, wanted('alice@example.com', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(updated).toMatchObject({ name: 'alice@example.com', email: 'alice.a@example.com', displayName: 'Alice Anders' });
    expect(fake.user('alice@example.com')).toMatchObject({ email: 'alice.a@example.com', displayName: 'Alice Anders' });

    // a PATCH changes only what it names: the name parts sent at creation stay
    const renamed = await app.updateUser(updated, wanted('anders@example.com', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(renamed).toMatchObject({ name: 'anders@example.com', id: created.id });
    expect(fake.user('alice@example.com')).toBeUndefined();
    expect(fake.user('anders@example.com')!.id).toBe(created.id);
    expect(fake.requests.filter((r) => r.method === 'PUT')).toEqual([]);

    await app.setActive(renamed, false);
    expect(fake.user('anders@example.com')!.active).toBe(false);
    expect((await app.getUser('anders@example.com'))?.active).toBe(false);
    await app.setActive(renamed, true);
    expect(fake.user('anders@example.com')!.active).toBe(true);

    await app.deleteUser(renamed);
    expect(await app.getUser('anders@example.com')).toBeUndefined();
    await app.deleteUser(renamed);
    const { id: _id, ...withoutId } = renamed;
    await app.deleteUser(withoutId);
  });

  it('finds users by a userName that needs escaping, and looks ids up when the caller has none', async () => {
    await start();
    expect(scimString('a"b\\c')).toBe('"a\\"b\\\\c"');
    fake.addUser({ name: 'o"brien@example.com', email: 'obrien@example.com' });
    fake.addGroup('devs');
    const found = await app.getUser('o"brien@example.com');
    expect(found?.name).toBe('o"brien@example.com');

    // a fresh client knows no ids: it looks up the user and the group by filter
    const fresh = openApp('atlassian-cloud', connection(fake));
    await fresh.addMembers({ name: 'o"brien@example.com', email: null, displayName: 'x', active: true }, [{ name: 'devs' }]);
    expect(fake.members('devs')).toEqual(['o"brien@example.com']);
    await fresh.close?.();
  });

  it('refuses basic credentials: Cloud takes only the directory API key', async () => {
    await start();
    expect(() => openApp('atlassian-cloud', connection(fake, { auth: { type: 'basic', username: 'a', password: 'b' } }))).toThrow(/bearer token/);
  });

  it('reports an e-mail on an unverified domain as invalid', async () => {
    await start();
    const err = await targetError(app.createUser(wanted('eve@elsewhere.org', { email: 'eve@elsewhere.org' })));
    expect(err.code).toBe('invalid');
    expect(err.message).toMatch(/not verified/);
  });

  it('creates, lists and deletes groups, and manages members by id', async () => {
    await start();
    const devs = await app.createGroup('devs');
    expect(devs.id).toBeDefined();
    expect((await targetError(app.createGroup('devs'))).code).toBe('exists');
    const alice = await app.createUser(wanted('alice', { email: 'alice@example.com' }));
    await app.addMembers(alice, [devs]);
    await app.addMembers(alice, [devs]);
    expect(fake.members('devs')).toEqual(['alice']);
    expect((await collect(app.listMembers(devs))).items).toEqual(['alice']);
    await app.removeMembers(alice, [devs]);
    await app.removeMembers(alice, [devs]);
    expect(fake.members('devs')).toEqual([]);
    await app.deleteGroup(devs);
    expect(fake.groups()).toEqual([]);
    await app.deleteGroup(devs);
    await app.deleteGroup({ name: 'devs' });
  });

  it('pages users and groups 100 at a time and names members it has not seen', async () => {
    await start();
    for (let i = 0; i < 250; i++) fake.addUser({ name: `u${String(i).padStart(3, '0')}@example.com`, active: i % 5 !== 0 });
    for (let i = 0; i < 130; i++) fake.addGroup(`g${String(i).padStart(3, '0')}`);
    for (let i = 0; i < 40; i++) fake.addMember('g000', `u${String(i).padStart(3, '0')}@example.com`);

    const users = await collect(app.listUsers());
    expect(users.pages).toBe(3);
    expect(users.items.length).toBe(250);
    expect(users.items.find((u) => u.name === 'u000@example.com')).toMatchObject({ active: false, email: 'u000@example.com' });
    const requests = fake.requests.filter((r) => r.path.endsWith('/Users'));
    expect(requests.map((r) => r.query.startIndex)).toEqual(['1', '101', '201']);

    const groups = await collect(app.listGroups());
    expect(groups.pages).toBe(2);
    expect(groups.items.every((g) => g.id)).toBe(true);

    // after listUsers, members are named from memory
    fake.resetStats();
    const g000 = groups.items.find((g) => g.name === 'g000')!;
    expect((await collect(app.listMembers(g000))).items.sort()).toEqual(fake.members('g000'));
    expect(fake.requests.length).toBe(1);

    // a fresh client asks for each member it does not know
    const fresh = openApp('atlassian-cloud', connection(fake));
    expect((await collect(fresh.listMembers({ name: 'g000' }))).items.sort()).toEqual(fake.members('g000'));
    await fresh.close?.();
  });

  it('passes its self-test, and explains a wrong key', async () => {
    await start();
    expect((await app.test()).map((c) => c.ok)).toEqual([true]);
    const bad = openApp('atlassian-cloud', connection(fake, { auth: { type: 'token', token: 'nope' } }));
    const checks = await bad.test();
    expect(checks[0]!.ok).toBe(false);
    expect(checks[0]!.message).toMatch(/directory/);
    await bad.close?.();
  });
});
