// The Confluence client against the Confluence fake (context path /confluence) over HTTP.

import { afterEach, describe, expect, it } from 'vitest';
import type { CountingTargetApp } from '../../../src/targets/apps.ts';
import { ConfluenceClient } from '../../../src/targets/confluence/client.ts';
import { startAtlassianFake } from '../../support/atlassian/index.ts';
import type { AtlassianFake, FakeOptions } from '../../support/atlassian/types.ts';
import { collect, connection, expectNoViolations, open, targetError, wanted } from './support.ts';

describe('Confluence client', () => {
  let fake: AtlassianFake;
  let app: CountingTargetApp;

  async function start(options: FakeOptions = {}): Promise<void> {
    fake = await startAtlassianFake('confluence', options);
    app = open('confluence', fake);
  }

  afterEach(async () => {
    expectNoViolations(fake);
    await app.close?.();
    await fake.close();
  });

  it('creates, updates, disables, enables and deletes a user', async () => {
    await start();
    expect(fake.url).toMatch(/\/confluence$/);
    const created = await app.createUser(wanted('alice', { displayName: 'Alice A' }));
    expect(created).toMatchObject({ name: 'alice', email: 'alice@example.com', displayName: 'Alice A', active: true, id: fake.user('alice')!.id });
    expect(fake.user('alice')).toMatchObject({ email: 'alice@example.com', displayName: 'Alice A', active: true });
    expect(await app.getUser('alice')).toEqual(created);

    const taken = await targetError(app.createUser(wanted('alice')));
    expect(taken.code).toBe('exists');
    expect(taken.message).toMatch(/^Confluence refused to create user "alice" \(HTTP 409\): A user with username alice already exists\.$/);

    const updated = await app.updateUser(created, wanted('alice', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(updated).toMatchObject({ name: 'alice', email: 'alice.a@example.com', displayName: 'Alice Anders' });
    expect(fake.user('alice')).toMatchObject({ email: 'alice.a@example.com', displayName: 'Alice Anders' });

    await app.setActive(updated, false);
    expect(fake.user('alice')!.active).toBe(false);
    expect((await app.getUser('alice'))?.active).toBe(false);
    await app.setActive(updated, false);
    await app.setActive(updated, true);
    expect(fake.user('alice')!.active).toBe(true);

    await app.deleteUser(updated);
    expect(fake.user('alice')).toBeUndefined();
    expect(fake.requests.some((r) => r.path.includes('/rest/api/longtask/'))).toBe(true);
    await app.deleteUser(updated);
  });

  it('says that Confluence cannot rename users', async () => {
    await start();
    const alice = await app.createUser(wanted('alice'));
    const err = await targetError(app.updateUser(alice, wanted('alice2')));
    expect(err.code).toBe('unsupported');
    expect(err.message).toMatch(/Confluence cannot rename users/);
    expect(fake.user('alice')).toBeDefined();
  });

  it('waits for a slow deletion to finish', async () => {
    await start({ deleteDelayMs: 1200 });
    fake.addUser({ name: 'slow' });
    const t0 = Date.now();
    await app.deleteUser({ name: 'slow', email: null, displayName: 'slow', active: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1100);
    expect(fake.user('slow')).toBeUndefined();
  });

  it('reports a deletion still running after the bound as failed', async () => {
    await start({ deleteDelayMs: 5000 });
    fake.addUser({ name: 'slow' });
    const client = new ConfluenceClient(connection(fake));
    client.deleteWaitMs = 600;
    const err = await targetError(client.deleteUser({ name: 'slow', email: null, displayName: 'slow', active: true }));
    expect(err.code).toBe('failed');
    expect(err.message).toMatch(/still deleting user "slow"/);
    await client.close();
  });

  it('reports no licence seats as licence', async () => {
    await start({ seats: 1 });
    fake.addUser({ name: 'first' });
    const err = await targetError(app.createUser(wanted('second')));
    expect(err.code).toBe('licence');
    expect(err.status).toBe(402);
  });

  it('reports a refused username as invalid', async () => {
    await start();
    const err = await targetError(app.createUser(wanted('Upper Case')));
    expect(err.code).toBe('invalid');
    expect(err.message).toMatch(/lowercase/);
  });

  it('lists users with their status and e-mail across pages', async () => {
    await start();
    for (let i = 0; i < 450; i++) fake.addUser({ name: `u${String(i).padStart(3, '0')}`, active: i % 4 !== 0 });
    const { items, pages } = await collect(app.listUsers());
    expect(pages).toBe(3);
    expect(items.length).toBe(450);
    expect(items.find((u) => u.name === 'u000')).toMatchObject({ active: false, email: 'u000@example.com', displayName: 'u000' });
    expect(items.find((u) => u.name === 'u001')?.active).toBe(true);
  });

  it('creates, lists and deletes groups', async () => {
    await start();
    expect(await app.createGroup('devs')).toEqual({ name: 'devs' });
    expect((await targetError(app.createGroup('devs'))).code).toBe('exists');
    // Confluence keeps group names in lower case, and the client reports the name it keeps
    expect(await app.createGroup('Ops')).toEqual({ name: 'ops' });
    for (let i = 0; i < 250; i++) fake.addGroup(`g${String(i).padStart(3, '0')}`);
    const { items, pages } = await collect(app.listGroups());
    expect(pages).toBe(2);
    expect(items.map((g) => g.name).sort()).toEqual(fake.groups().sort());
    await app.deleteGroup({ name: 'devs' });
    expect(fake.groups()).not.toContain('devs');
    await app.deleteGroup({ name: 'devs' });
  });

  it('adds and removes memberships idempotently and pages through members', async () => {
    await start();
    fake.addGroup('devs');
    fake.addGroup('a/b c');
    const alice = await app.createUser(wanted('alice'));
    await app.addMembers(alice, [{ name: 'devs' }, { name: 'a/b c' }]);
    await app.addMembers(alice, [{ name: 'devs' }, { name: 'a/b c' }]);
    expect(fake.groupsOf('alice')).toEqual(['a/b c', 'devs']);
    for (let i = 0; i < 230; i++) {
      fake.addUser({ name: `m${i}`, active: i % 2 === 0 });
      fake.addMember('devs', `m${i}`);
    }
    const { items, pages } = await collect(app.listMembers({ name: 'devs' }));
    expect(pages).toBe(2);
    expect(items.sort()).toEqual(fake.members('devs').sort());
    expect((await collect(app.listMembers({ name: 'a/b c' }))).items).toEqual(['alice']);

    await app.removeMembers(alice, [{ name: 'devs' }, { name: 'a/b c' }]);
    await app.removeMembers(alice, [{ name: 'devs' }, { name: 'a/b c' }]);
    expect(fake.groupsOf('alice')).toEqual([]);
  });

  it('passes its self-test', async () => {
    await start();
    fake.addGroup('confluence-administrators');
    const checks = await app.test();
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['credentials', true],
      ['admin', true],
    ]);
  });
});
