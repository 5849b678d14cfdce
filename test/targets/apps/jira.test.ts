// The Jira client against the Jira fake over HTTP: users, groups, memberships, paging, licences and
// handing over project and component leads. Every test ends with the contract check.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { CountingTargetApp } from '../../../src/targets/apps.ts';
import { openApp } from '../../../src/targets/apps.ts';
import type { AppConnection } from '../../../src/targets/types.ts';
import { startAtlassianFake } from '../../support/atlassian/index.ts';
import type { AtlassianFake, FakeOptions } from '../../support/atlassian/types.ts';
import { collect, connection, expectNoViolations, open, targetError, wanted } from './support.ts';

describe('Jira client', () => {
  let fake: AtlassianFake;
  let app: CountingTargetApp;

  async function start(options: FakeOptions = {}, extra: Partial<AppConnection> = {}): Promise<void> {
    fake = await startAtlassianFake('jira', options);
    app = open('jira', fake, extra);
  }

  afterEach(async () => {
    expectNoViolations(fake);
    await app.close?.();
    await fake.close();
  });

  it('creates, updates, renames, deactivates, reactivates and deletes a user', async () => {
    await start();
    const created = await app.createUser(wanted('alice', { displayName: 'Alice A' }));
    expect(created).toMatchObject({ name: 'alice', email: 'alice@example.com', displayName: 'Alice A', active: true });
    expect(created.id).toBe(fake.user('alice')!.id);
    expect(fake.user('alice')).toMatchObject({ email: 'alice@example.com', displayName: 'Alice A', active: true });

    const taken = await targetError(app.createUser(wanted('alice')));
    expect(taken.code).toBe('exists');
    expect(taken.message).toMatch(/^Jira refused to create user "alice" \(HTTP 400\): .*already exists\.$/);

    const updated = await app.updateUser(created, wanted('alice', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(updated).toMatchObject({ name: 'alice', email: 'alice.a@example.com', displayName: 'Alice Anders' });
    expect(fake.user('alice')).toMatchObject({ email: 'alice.a@example.com', displayName: 'Alice Anders' });

    const renamed = await app.updateUser(updated, wanted('alice.anders', { email: 'alice.a@example.com', displayName: 'Alice Anders' }));
    expect(renamed.name).toBe('alice.anders');
    expect(fake.user('alice')).toBeUndefined();
    // the key stays with the user
    expect(fake.user('alice.anders')!.id).toBe(created.id);
    const put = fake.requests.filter((r) => r.method === 'PUT');
    expect(put.at(-1)!.query.username).toBe('alice');

    await app.setActive(renamed, false);
    expect(fake.user('alice.anders')!.active).toBe(false);
    expect((await app.getUser('alice.anders'))?.active).toBe(false);
    await app.setActive(renamed, true);
    expect(fake.user('alice.anders')!.active).toBe(true);

    await app.deleteUser(renamed);
    expect(fake.user('alice.anders')).toBeUndefined();
    expect(await app.getUser('alice.anders')).toBeUndefined();
    // already gone: still done
    await app.deleteUser(renamed);
  });

  it('creates a user without a password and without notifying anyone', async () => {
    await start();
    await app.createUser(wanted('bob'));
    // the fake keeps no password; the request log shows only what was asked
    const post = fake.requests.find((r) => r.method === 'POST' && r.path === '/rest/api/2/user');
    expect(post?.status).toBe(201);
  });

  it("creates an inactive user when the directory's user is inactive", async () => {
    await start();
    const created = await app.createUser(wanted('carol', { active: false }));
    expect(created.active).toBe(false);
    expect(fake.user('carol')!.active).toBe(false);
  });

  it('reports a full licence as licence', async () => {
    await start({ seats: 1 });
    fake.addUser({ name: 'first' });
    const err = await targetError(app.createUser(wanted('second')));
    expect(err.code).toBe('licence');
    expect(err.message).toMatch(/license/);
  });

  it('lists every user across pages of the user stream, inactive ones included', async () => {
    await start();
    for (let i = 0; i < 2345; i++) fake.addUser({ name: `u${String(i).padStart(4, '0')}`, active: i % 10 !== 0 });
    const { items, pages } = await collect(app.listUsers());
    expect(pages).toBeGreaterThan(1);
    expect(items.length).toBe(2345);
    expect(new Set(items.map((u) => u.name)).size).toBe(2345);
    expect(items.find((u) => u.name === 'u0010')).toMatchObject({ active: false, email: 'u0010@example.com' });
    expect(items.find((u) => u.name === 'u0011')?.active).toBe(true);
  });

  it('creates, lists and deletes groups', async () => {
    await start();
    expect(await app.createGroup('devs')).toEqual({ name: 'devs' });
    expect((await targetError(app.createGroup('devs'))).code).toBe('exists');
    for (let i = 0; i < 60; i++) fake.addGroup(`g${i}`);
    const { items } = await collect(app.listGroups());
    expect(items.map((g) => g.name).sort()).toEqual(fake.groups().sort());
    expect(items.length).toBe(61);
    await app.deleteGroup({ name: 'devs' });
    expect(fake.groups()).not.toContain('devs');
    await app.deleteGroup({ name: 'devs' });
  });

  it('adds and removes memberships idempotently and pages through members', async () => {
    await start();
    fake.addGroup('devs');
    fake.addGroup('ops');
    const alice = await app.createUser(wanted('alice'));
    await app.addMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    expect(fake.groupsOf('alice')).toEqual(['devs', 'ops']);
    // Jira answers 400 to an existing membership: still done
    await app.addMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    expect(fake.groupsOf('alice')).toEqual(['devs', 'ops']);

    for (let i = 0; i < 120; i++) {
      fake.addUser({ name: `m${i}`, active: i % 3 !== 0 });
      fake.addMember('devs', `m${i}`);
    }
    const { items, pages } = await collect(app.listMembers({ name: 'devs' }));
    expect(pages).toBe(3);
    expect(items.sort()).toEqual(fake.members('devs').sort());
    expect(items).toContain('m0');

    await app.removeMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);
    expect(fake.groupsOf('alice')).toEqual([]);
    await app.removeMembers(alice, [{ name: 'devs' }, { name: 'ops' }]);

    const missing = await targetError(app.addMembers(alice, [{ name: 'nope' }]));
    expect(missing.code).toBe('not-found');
    expect(await collect(app.listMembers({ name: 'nope' }))).toEqual({ items: [], pages: 0 });
  });

  it('hands projects and components over to the default leads, reading the projects once for many users', async () => {
    await start({}, { defaultProjectLead: 'boss' });
    for (const n of ['boss', 'lead', 'other', 'idle1', 'idle2', 'idle3']) fake.addUser({ name: n });
    fake.addProject!({ key: 'APP', name: 'Application', lead: 'lead', components: [{ name: 'API', lead: 'lead' }, { name: 'UI', lead: 'other' }] });
    fake.addProject!({ key: 'OPS', name: 'Operations', lead: 'other', components: [{ name: 'Infra', lead: 'lead' }, { name: 'Docs' }] });

    const idle = await Promise.all(['idle1', 'idle2', 'idle3'].map((n) => app.handOverLeads!({ name: n, email: null, displayName: n, active: true })));
    expect(idle).toEqual([[], [], []]);

    const said = await app.handOverLeads!({ name: 'lead', email: null, displayName: 'Lead', active: true });
    expect(said).toHaveLength(3);
    expect(said[0]).toBe('Project APP (Application) was led by lead and is now led by boss.');
    expect(said.slice(1).join(' ')).toMatch(/Component "API" of project APP .* Component "Infra" of project OPS/);
    expect(fake.project!('APP')).toMatchObject({ lead: 'boss', components: [{ name: 'API', lead: 'boss' }, { name: 'UI', lead: 'other' }] });
    expect(fake.project!('OPS')).toMatchObject({ lead: 'other', components: [{ name: 'Infra', lead: 'boss' }, { name: 'Docs' }] });

    // the project list and each project's components were read once for all four users
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path === '/rest/api/2/project')).toHaveLength(1);
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/components'))).toHaveLength(2);

    // now the user leads nothing and can go
    expect(await app.handOverLeads!({ name: 'lead', email: null, displayName: 'Lead', active: true })).toEqual([]);
    await app.setActive({ name: 'lead', email: null, displayName: 'Lead', active: true }, false);
    expect(fake.user('lead')!.active).toBe(false);
  });

  it('hands components to the default component lead when one is set', async () => {
    await start({}, { defaultProjectLead: 'boss', defaultComponentLead: 'keeper' });
    for (const n of ['boss', 'keeper', 'lead']) fake.addUser({ name: n });
    fake.addProject!({ key: 'APP', name: 'Application', lead: 'lead', components: [{ name: 'API', lead: 'lead' }] });
    await app.handOverLeads!({ name: 'lead', email: null, displayName: 'Lead', active: true });
    expect(fake.project!('APP')).toMatchObject({ lead: 'boss', components: [{ name: 'API', lead: 'keeper' }] });
  });

  it('refuses to hand over leads when no default lead is set', async () => {
    await start();
    fake.addUser({ name: 'lead' });
    fake.addProject!({ key: 'APP', name: 'Application', lead: 'lead' });
    const err = await targetError(app.handOverLeads!({ name: 'lead', email: null, displayName: 'Lead', active: true }));
    expect(err.code).toBe('invalid');
    expect(err.message).toMatch(/^lead leads project APP; set a default project lead/);
    expect(fake.project!('APP')!.lead).toBe('lead');
    // Jira itself refuses to deactivate a project lead
    expect((await targetError(app.setActive({ name: 'lead', email: null, displayName: 'Lead', active: true }, false))).code).toBe('invalid');
  });

  it('passes its self-test and says when the credentials are refused', async () => {
    await start();
    fake.addGroup('jira-administrators');
    const checks = await app.test();
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['credentials', true],
      ['admin', true],
    ]);
    const bad = open('jira', fake, { auth: { type: 'basic', username: 'admin', password: 'wrong' } });
    const failed = await bad.test();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ name: 'credentials', ok: false });
    expect(failed[0]!.message).toMatch(/did not accept the credentials/);
    expect(failed[0]!.message).not.toContain('wrong');
    await bad.close?.();
  });

  it('keeps to the connections its caller runs at once, and stops when the service stops', async () => {
    // some latency, so that requests overlap at the fake
    await start({ latencyMs: 20 });
    fake.addUser({ name: 'alice' });
    const stop = new AbortController();
    const pooled = openApp('jira', connection(fake), { concurrency: 3, signal: stop.signal });
    const found = await Promise.all(Array.from({ length: 12 }, () => pooled.getUser('alice')));
    expect(found.every((u) => u?.name === 'alice')).toBe(true);
    expect(fake.maxInFlight).toBe(3);

    fake.faults.add({ timeout: true, count: Infinity });
    const t0 = Date.now();
    const pending = targetError(pooled.getUser('alice'));
    setTimeout(() => stop.abort(), 100);
    const err = await pending;
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/the service is stopping/);
    expect(Date.now() - t0).toBeLessThan(1000);
    await pooled.close?.();
  });

  it('works with basic authentication', async () => {
    await start({}, { auth: { type: 'basic', username: 'admin', password: 'admin-password' } });
    await app.createUser(wanted('dave'));
    expect(fake.user('dave')).toBeDefined();
  });
});

describe('Jira client after an uncertain try', () => {
  it('takes "already exists" for its own earlier try when the connection dropped after Jira created the user', async () => {
    // a stand-in for Jira that creates the user, then drops the connection instead of answering
    const created = new Set<string>();
    let posts = 0;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url!, 'http://x');
        if (req.method === 'POST') {
          posts++;
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string };
          if (created.has(body.name)) {
            res.writeHead(400, { 'content-type': 'application/json' });
            return res.end(JSON.stringify({ errorMessages: [], errors: { username: 'A user with that username already exists.' } }));
          }
          created.add(body.name);
          return res.destroy();
        }
        const name = url.searchParams.get('username')!;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name, key: 'JIRAUSER1', emailAddress: `${name}@example.com`, displayName: 'Eve', active: true }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const app = openApp('jira', { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, auth: { type: 'token', token: 't' }, timeoutMs: 2000, retries: 3, maxRetryWaitMs: 100 });
    try {
      expect(await app.createUser(wanted('eve'))).toMatchObject({ name: 'eve', id: 'JIRAUSER1' });
      expect(posts).toBe(2);
      // without an uncertain try, "exists" stays an error
      expect((await targetError(app.createUser(wanted('eve')))).code).toBe('exists');
    } finally {
      await app.close?.();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
