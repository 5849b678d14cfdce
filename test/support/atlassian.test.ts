// Tests of the Atlassian fakes themselves: each product's behaviour over real HTTP, the contract
// checks, faults, authentication and the manual-edit API.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Contract, FAKE_KINDS, SPECS_DIR, SPEC_FILES, fakeOperations, startAtlassianFake } from './atlassian/index.ts';
import type { AtlassianFake, FakeKind, FakeOptions } from './atlassian/index.ts';

interface Res {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- answers are checked field by field
}

interface CallOptions {
  body?: unknown;
  /** 'bearer' (default), 'basic', 'none', or a whole Authorization value */
  auth?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function call(fake: AtlassianFake, method: string, p: string, o: CallOptions = {}): Promise<Res> {
  const auth = o.auth ?? 'bearer';
  const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
  if (auth === 'bearer') headers.authorization = `Bearer ${fake.token}`;
  else if (auth === 'basic') headers.authorization = `Basic ${Buffer.from('admin:admin-password').toString('base64')}`;
  else if (auth !== 'none') headers.authorization = auth;
  if (o.body !== undefined) headers['content-type'] ??= 'application/json';
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const r = await fetch(fake.url + p, { method, headers, body, signal: o.signal });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text === '' ? undefined : JSON.parse(text) };
}

const enc = encodeURIComponent;
const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const SCIM_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** one user-creating request per product, for the tests every product shares */
function createUser(fake: AtlassianFake, name: string, signal?: AbortSignal): Promise<Res> {
  switch (fake.kind) {
    case 'jira':
      return call(fake, 'POST', '/rest/api/2/user', { body: { name, emailAddress: `${name}@example.com`, displayName: `User ${name}` }, signal });
    case 'confluence':
      return call(fake, 'POST', '/rest/api/admin/user', { body: { userName: name, fullName: `User ${name}`, email: `${name}@example.com`, password: 'secret' }, signal });
    case 'bitbucket':
      return call(fake, 'POST', `/rest/api/1.0/admin/users?name=${enc(name)}&password=secret&displayName=${enc(`User ${name}`)}&emailAddress=${enc(`${name}@example.com`)}`, { signal });
    case 'atlassian-cloud':
      return call(fake, 'POST', '/Users', { body: { schemas: [SCIM_USER], userName: name, emails: [{ value: `${name}@example.com`, type: 'work', primary: true }], displayName: `User ${name}` }, signal });
  }
}

/** a request the product's document rejects */
function badRequest(fake: AtlassianFake): Promise<Res> {
  switch (fake.kind) {
    case 'jira':
      return call(fake, 'PUT', '/rest/api/2/user?username=someone', { body: { active: 'nope' } });
    case 'confluence':
      return call(fake, 'GET', '/rest/api/user/list?limit=lots');
    case 'bitbucket':
      // emailAddress and displayName are required query parameters
      return call(fake, 'POST', '/rest/api/1.0/admin/users?name=x&password=y');
    case 'atlassian-cloud':
      return call(fake, 'GET', '/Users?count=many');
  }
}

const PING: Record<FakeKind, string> = {
  jira: '/rest/api/2/myself',
  confluence: '/rest/api/user/current',
  bitbucket: '/rest/api/1.0/application-properties',
  'atlassian-cloud': '/ServiceProviderConfig',
};

/** a cheap authenticated read, the kind a connection test makes */
const ping = (fake: AtlassianFake, auth?: string): Promise<Res> => call(fake, 'GET', PING[fake.kind], { auth });

/** the product's own error body shape */
function expectErrorShape(kind: FakeKind, status: number, body: Res['json']): void {
  switch (kind) {
    case 'jira':
      expect(body).toEqual({ errorMessages: expect.any(Array), errors: expect.any(Object) });
      break;
    case 'confluence':
      expect(body).toMatchObject({ statusCode: status, message: expect.any(String), reason: expect.any(String), data: expect.any(Object) });
      break;
    case 'bitbucket':
      expect(body.errors[0]).toMatchObject({ context: null, message: expect.any(String) });
      expect(Object.keys(body.errors[0]).sort()).toEqual(['context', 'exceptionName', 'message']);
      break;
    case 'atlassian-cloud':
      if (status === 401 || status === 403) expect(body).toEqual({ error: expect.any(String), traceId: expect.any(String) });
      else expect(body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), detail: expect.any(String) });
      break;
  }
}

const started: AtlassianFake[] = [];
async function start(kind: FakeKind, options?: FakeOptions): Promise<AtlassianFake> {
  const f = await startAtlassianFake(kind, options);
  started.push(f);
  return f;
}
afterAll(async () => {
  await Promise.all(started.map((f) => f.close()));
});

describe('documents', () => {
  it('are read from shared/atlassian-specs beside the project', () => {
    expect(SPECS_DIR).toBe(path.resolve(import.meta.dirname, '../../../shared/atlassian-specs'));
    for (const f of Object.values(SPEC_FILES)) expect(existsSync(path.join(SPECS_DIR, f))).toBe(true);
  });

  it.each(FAKE_KINDS)('%s: the cut-down, patched document is valid OpenAPI 3 and compiles', async (kind) => {
    const table = Object.fromEntries(fakeOperations(kind).map((k) => [k, k]));
    // strict: openapi-schema-validator over the document, every validator compiled up front
    const contract = await Contract.load(kind, table, { checkDocument: true });
    expect(contract.api.getOperations().length).toBe(Object.keys(table).length);
  });

  it('reports responses that do not fit, and tells unknown paths from wrong methods', async () => {
    const table = Object.fromEntries(fakeOperations('jira').map((k) => [k, k]));
    const contract = await Contract.load('jira', table);
    const m = contract.match('GET', '/api/2/group/member');
    if (!m || 'methodNotAllowed' in m) throw new Error('no route');
    expect(contract.validateResponse(m.route, 200, { values: [], total: 0, isLast: true, startAt: 0, maxResults: 50 })).toEqual([]);
    expect(contract.validateResponse(m.route, 200, { values: 'none' })).toEqual([expect.stringContaining('must be array')]);
    expect(contract.match('PATCH', '/api/2/user')).toEqual({ methodNotAllowed: true });
    expect(contract.match('GET', '/api/2/nothing')).toBeUndefined();
  });
});

describe.each(FAKE_KINDS)('%s: shared behaviour', (kind) => {
  let fake: AtlassianFake;
  beforeAll(async () => {
    const t = performance.now();
    fake = await start(kind);
    expect(performance.now() - t).toBeLessThan(1000);
  });
  afterEach(() => {
    fake.faults.clear();
  });

  it('needs credentials on every call, answered in the product 401 shape', async () => {
    const none = await ping(fake, 'none');
    expect(none.status).toBe(401);
    expectErrorShape(kind, 401, none.json);
    expect((await ping(fake, 'Bearer not-the-token')).status).toBe(401);
    expect((await ping(fake, `Basic ${Buffer.from('admin:wrong').toString('base64')}`)).status).toBe(401);
    expect((await ping(fake)).status).toBe(200);
    // Atlassian Cloud takes only the bearer directory key
    expect((await ping(fake, 'basic')).status).toBe(kind === 'atlassian-cloud' ? 401 : 200);
    const unauthWrite = await call(fake, 'POST', kind === 'jira' ? '/rest/api/2/group' : kind === 'confluence' ? '/rest/api/admin/group' : kind === 'bitbucket' ? '/rest/api/1.0/admin/groups?name=g0' : '/Groups', {
      auth: 'none',
      body: kind === 'bitbucket' ? undefined : kind === 'atlassian-cloud' ? { schemas: [SCIM_GROUP], displayName: 'g0' } : { name: 'g0' },
    });
    expect(unauthWrite.status).toBe(401);
    expect(fake.groups()).not.toContain('g0');
    expect(fake.violations).toEqual([]);
  });

  it.each([401, 403, 404, 409, 429, 500, 502, 503] as const)('answers a %i fault in the product shape without changing anything', async (status) => {
    const name = `fault${status}`;
    const f = fake.faults.add({ status, match: kind === 'bitbucket' ? '/admin/users' : kind === 'atlassian-cloud' ? '/Users' : '/user', method: 'POST', ...(status === 429 ? { retryAfter: 7 } : {}) });
    const r = await createUser(fake, name);
    expect(r.status).toBe(status);
    expectErrorShape(kind, status, r.json);
    expect(r.headers.get('retry-after')).toBe(status === 429 ? '7' : null);
    expect(f.hits).toBe(1);
    expect(fake.user(name)).toBeUndefined();
    expect(fake.faults.pending).toEqual([]);
    // used up: the next one goes through
    expect((await createUser(fake, name)).status).toBeLessThan(300);
    expect(fake.user(name)).toBeDefined();
    expect(fake.violations).toEqual([]);
  });

  it('applies a fault `count` times, matched by RegExp and method', async () => {
    const f = fake.faults.add({ status: 503, match: /./, method: 'GET', count: 2 });
    expect((await ping(fake)).status).toBe(503);
    expect((await createUser(fake, 'countfault')).status).toBeLessThan(300);
    expect((await ping(fake)).status).toBe(503);
    expect((await ping(fake)).status).toBe(200);
    expect(f.hits).toBe(2);
    fake.faults.add({ status: 500, count: Infinity });
    expect((await ping(fake)).status).toBe(500);
    expect((await ping(fake)).status).toBe(500);
    fake.faults.clear();
    expect((await ping(fake)).status).toBe(200);
  });

  it('holds a timed-out request open without changing anything', async () => {
    const f = fake.faults.add({ timeout: true, method: 'POST' });
    await expect(createUser(fake, 'timeout1', AbortSignal.timeout(150))).rejects.toThrow();
    expect(f.hits).toBe(1);
    expect(fake.user('timeout1')).toBeUndefined();
    expect((await createUser(fake, 'timeout1')).status).toBeLessThan(300);
  });

  it('rejects a request the document does not allow, and lists it', async () => {
    const before = fake.violations.length;
    const r = await badRequest(fake);
    expect(r.status).toBe(400);
    expectErrorShape(kind, 400, r.json);
    expect(fake.violations.length).toBe(before + 1);
    expect(fake.violations.at(-1)).toMatch(/must/);
    const prefix = { jira: '/rest/api/2', confluence: '/rest/api', bitbucket: '/rest/api/1.0', 'atlassian-cloud': '' }[kind];
    const unknown = await call(fake, 'GET', `${prefix}/no-such-thing`);
    expect(unknown.status).toBe(404);
    expect(fake.violations.at(-1)).toMatch(/has no operation GET/);
    const textBody = await call(fake, 'PUT', kind === 'jira' ? '/rest/api/2/user?username=x' : kind === 'confluence' ? '/rest/api/admin/user/x' : kind === 'bitbucket' ? '/rest/api/1.0/admin/users' : '/Users/x', {
      body: 'name=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(textBody.status).toBe(415);
    expect(fake.violations.length).toBe(before + 3);
    fake.violations.length = 0;
  });

  it('logs answered requests', async () => {
    fake.resetStats();
    await Promise.all(Array.from({ length: 6 }, () => ping(fake)));
    expect(fake.requests.length).toBe(6);
    expect(fake.requests[0]).toMatchObject({ method: 'GET', status: 200, query: {}, at: expect.any(Number) });
    expect(fake.maxInFlight).toBeGreaterThanOrEqual(1);
    fake.resetStats();
    expect(fake.requests).toEqual([]);
  });

  it('edits by hand show through the API', async () => {
    fake.addUser({ name: 'manual1', displayName: 'Manual One' });
    fake.addGroup('manual-group');
    fake.addMember('manual-group', 'manual1');
    expect(fake.user('MANUAL1')).toMatchObject({ name: 'manual1', email: 'manual1@example.com', displayName: 'Manual One', active: true });
    expect(fake.members('manual-group')).toEqual(['manual1']);
    expect(fake.groupsOf('manual1')).toEqual(['manual-group']);
    fake.updateUser('manual1', { displayName: 'Renamed One' });
    const shown = await readUser(fake, 'manual1');
    expect(shown).toBe('Renamed One');
    fake.removeMember('manual-group', 'manual1');
    expect(fake.members('manual-group')).toEqual([]);
    fake.removeGroup('manual-group');
    fake.removeUser('manual1');
    expect(fake.user('manual1')).toBeUndefined();
    expect(() => fake.addMember('nope', 'nobody')).toThrow();
  });

  it('closes with a request held open', async () => {
    const other = await startAtlassianFake(kind);
    other.faults.add({ timeout: true });
    const held = ping(other).catch((e: unknown) => e);
    await sleep(50);
    const t = performance.now();
    await other.close();
    expect(performance.now() - t).toBeLessThan(500);
    expect(await held).toBeInstanceOf(Error);
  });
});

/** the display name the API shows for a user */
async function readUser(fake: AtlassianFake, name: string): Promise<string> {
  switch (fake.kind) {
    case 'jira':
      return (await call(fake, 'GET', `/rest/api/2/user?username=${name}`)).json.displayName;
    case 'confluence':
      return (await call(fake, 'GET', `/rest/api/user?username=${name}`)).json.displayName;
    case 'bitbucket':
      return (await call(fake, 'GET', `/rest/api/1.0/admin/users?filter=${name}`)).json.values[0].displayName;
    case 'atlassian-cloud':
      return (await call(fake, 'GET', `/Users?filter=${enc(`userName eq "${name}"`)}`)).json.Resources[0].displayName;
  }
}

describe('jira', () => {
  let jira: AtlassianFake;
  beforeAll(async () => {
    jira = await start('jira');
  });

  it('creates users, groups and memberships, and reads them back', async () => {
    const u = await call(jira, 'POST', '/rest/api/2/user', { body: { name: 'JDoe', emailAddress: 'jdoe@example.com', displayName: 'J Doe' } });
    expect(u.status).toBe(201);
    expect(u.json).toMatchObject({ name: 'JDoe', key: expect.stringMatching(/^JIRAUSER\d+$/), emailAddress: 'jdoe@example.com', active: true });
    expect((await call(jira, 'POST', '/rest/api/2/group', { body: { name: 'devs' } })).status).toBe(201);
    const add = await call(jira, 'POST', '/rest/api/2/group/user?groupname=devs', { body: { name: 'jdoe' } });
    expect(add.status).toBe(201);
    // not idempotent
    const again = await call(jira, 'POST', '/rest/api/2/group/user?groupname=devs', { body: { name: 'jdoe' } });
    expect(again.status).toBe(400);
    expect(again.json.errorMessages[0]).toContain('already a member');
    expect((await call(jira, 'GET', '/rest/api/2/user?username=jdoe')).json.name).toBe('JDoe');
    expect((await call(jira, 'GET', `/rest/api/2/user?key=${u.json.key}`)).json.name).toBe('JDoe');
    expect((await call(jira, 'GET', '/rest/api/2/user?username=nobody')).status).toBe(404);
    const members = await call(jira, 'GET', '/rest/api/2/group/member?groupname=devs&includeInactiveUsers=true&startAt=0&maxResults=50');
    expect(members.json).toMatchObject({ startAt: 0, total: 1, isLast: true, values: [{ name: 'JDoe' }] });
    expect(jira.members('devs')).toEqual(['JDoe']);
    const picker = await call(jira, 'GET', '/rest/api/2/groups/picker?query=&maxResults=100');
    expect(picker.json.groups.map((g: { name: string }) => g.name)).toContain('devs');
    expect((await call(jira, 'DELETE', '/rest/api/2/group/user?groupname=devs&username=jdoe')).status).toBe(200);
    expect((await call(jira, 'DELETE', '/rest/api/2/group/user?groupname=devs&username=jdoe')).status).toBe(404);
    expect((await call(jira, 'POST', '/rest/api/2/group/user?groupname=nogroup', { body: { name: 'jdoe' } })).status).toBe(404);
    expect((await call(jira, 'POST', '/rest/api/2/group/user?groupname=devs', { body: { name: 'nobody' } })).status).toBe(404);
    expect((await call(jira, 'POST', '/rest/api/2/group', { body: { name: 'DEVS' } })).status).toBe(400);
    expect((await call(jira, 'DELETE', '/rest/api/2/group?groupname=devs')).status).toBe(200);
    expect(jira.groups()).not.toContain('devs');
    expect(jira.violations).toEqual([]);
  });

  it('refuses taken usernames and missing e-mail addresses', async () => {
    jira.addUser({ name: 'taken' });
    const dup = await call(jira, 'POST', '/rest/api/2/user', { body: { name: 'TAKEN', emailAddress: 't@example.com', displayName: 'T' } });
    expect(dup.status).toBe(400);
    expect(dup.json).toEqual({ errorMessages: [], errors: { username: 'A user with that username already exists.' } });
    const noMail = await call(jira, 'POST', '/rest/api/2/user', { body: { name: 'nomail', displayName: 'No Mail' } });
    expect(noMail.status).toBe(400);
    expect(noMail.json.errors.email).toBeDefined();
    expect(jira.user('nomail')).toBeUndefined();
  });

  it('renames keeping the key, deactivates and reactivates', async () => {
    const { id } = jira.addUser({ name: 'old.name' });
    const r = await call(jira, 'PUT', '/rest/api/2/user?username=old.name', { body: { name: 'new.name', displayName: 'New Name' } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ name: 'new.name', key: id, displayName: 'New Name' });
    expect(jira.user('old.name')).toBeUndefined();
    expect((await call(jira, 'PUT', '/rest/api/2/user?username=new.name', { body: { active: false } })).json.active).toBe(false);
    const search = await call(jira, 'GET', '/rest/api/2/user/search?username=new&includeInactive=true&startAt=0&maxResults=10');
    expect(search.json).toEqual([expect.objectContaining({ name: 'new.name', active: false })]);
    expect((await call(jira, 'GET', '/rest/api/2/user/search?username=new')).json).toEqual([]);
    expect((await call(jira, 'PUT', '/rest/api/2/user?username=new.name', { body: { active: true } })).json.active).toBe(true);
    expect((await call(jira, 'DELETE', '/rest/api/2/user?username=new.name')).status).toBe(204);
    expect(jira.user('new.name')).toBeUndefined();
  });

  it('refuses to deactivate or delete a project or component lead until the lead is handed over', async () => {
    jira.addUser({ name: 'lead1' });
    jira.addUser({ name: 'fallback' });
    jira.addProject!({ key: 'PRJ', name: 'Project', lead: 'lead1', components: [{ name: 'Backend', lead: 'lead1' }, { name: 'Docs' }] });
    const off = await call(jira, 'PUT', '/rest/api/2/user?username=lead1', { body: { active: false } });
    expect(off.status).toBe(400);
    expect(off.json.errorMessages[0]).toBe("User 'lead1' cannot be deactivated because they are the project lead of Project (PRJ).");
    expect((await call(jira, 'DELETE', '/rest/api/2/user?username=lead1')).status).toBe(400);
    expect(jira.user('lead1')?.active).toBe(true);

    const projects = await call(jira, 'GET', '/rest/api/2/project?expand=lead');
    expect(projects.json).toEqual([expect.objectContaining({ key: 'PRJ', lead: expect.objectContaining({ name: 'lead1' }) })]);
    expect((await call(jira, 'PUT', '/rest/api/2/project/PRJ', { body: { lead: 'nobody' } })).status).toBe(400);
    const moved = await call(jira, 'PUT', '/rest/api/2/project/PRJ', { body: { lead: 'fallback' } });
    expect(moved.status).toBe(200);
    expect(moved.json.lead.name).toBe('fallback');
    // the component lead still blocks
    const still = await call(jira, 'PUT', '/rest/api/2/user?username=lead1', { body: { active: false } });
    expect(still.json.errorMessages[0]).toContain('component lead of Backend (PRJ)');
    const comps = await call(jira, 'GET', '/rest/api/2/project/PRJ/components');
    const backend = comps.json.find((c: { name: string }) => c.name === 'Backend');
    expect(backend).toMatchObject({ leadUserName: 'lead1', lead: { name: 'lead1' } });
    expect((await call(jira, 'PUT', `/rest/api/2/component/${backend.id}`, { body: { leadUserName: 'nobody' } })).status).toBe(400);
    expect((await call(jira, 'PUT', `/rest/api/2/component/${backend.id}`, { body: { leadUserName: 'fallback' } })).json.leadUserName).toBe('fallback');
    expect(jira.project!('PRJ')).toEqual({ key: 'PRJ', name: 'Project', lead: 'fallback', components: [{ id: backend.id, name: 'Backend', lead: 'fallback' }, { id: expect.any(String), name: 'Docs' }] });
    expect((await call(jira, 'PUT', '/rest/api/2/user?username=lead1', { body: { active: false } })).status).toBe(200);
    expect(jira.violations).toEqual([]);
  });

  it('pages group members by at most 50 and streams the user list by cursor', async () => {
    jira.addGroup('big');
    for (let i = 0; i < 60; i++) {
      jira.addUser({ name: `m${String(i).padStart(2, '0')}`, active: i !== 0 });
      jira.addMember('big', `m${String(i).padStart(2, '0')}`);
    }
    const first = await call(jira, 'GET', '/rest/api/2/group/member?groupname=big&includeInactiveUsers=true&maxResults=100');
    expect(first.json).toMatchObject({ maxResults: 50, startAt: 0, total: 60, isLast: false, nextPage: expect.stringContaining('startAt=50') });
    expect(first.json.values).toHaveLength(50);
    const second = await call(jira, 'GET', '/rest/api/2/group/member?groupname=big&includeInactiveUsers=true&startAt=50&maxResults=50');
    expect(second.json).toMatchObject({ total: 60, isLast: true });
    expect(second.json.values).toHaveLength(10);
    // inactive members only on request
    expect((await call(jira, 'GET', '/rest/api/2/group/member?groupname=big')).json.total).toBe(59);

    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const r = await call(jira, 'GET', `/rest/api/2/user/list?maxResults=25${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...r.json.values.map((u: { name: string }) => u.name));
      if (r.json.isLast) break;
      cursor = r.json.nextCursor;
    }
    expect(seen.sort()).toEqual(jira.users().map((u) => u.name).sort());
    expect(jira.violations).toEqual([]);
  });

  it('refuses users beyond the licence', async () => {
    const small = await start('jira', { seats: 1 });
    expect((await createUser(small, 'one')).status).toBe(201);
    const two = await createUser(small, 'two');
    expect(two.status).toBe(400);
    expect(two.json.errorMessages[0]).toMatch(/licen[cs]e/i);
    await call(small, 'PUT', '/rest/api/2/user?username=one', { body: { active: false } });
    expect((await createUser(small, 'two')).status).toBe(201);
    const back = await call(small, 'PUT', '/rest/api/2/user?username=one', { body: { active: true } });
    expect(back.status).toBe(400);
    expect(back.json.errorMessages[0]).toMatch(/licen[cs]e/i);
    expect(small.violations).toEqual([]);
  });

  it('answers the connection-test calls', async () => {
    expect((await call(jira, 'GET', '/rest/api/2/myself')).json).toMatchObject({ name: 'admin', active: true });
    expect((await call(jira, 'GET', '/rest/api/2/serverInfo')).json.version).toBe('10.3.24');
  });
});

describe('confluence', () => {
  let conf: AtlassianFake;
  beforeAll(async () => {
    conf = await start('confluence', { deleteDelayMs: 100 });
  });

  it('creates users, groups and idempotent memberships, and reads them back', async () => {
    const u = await call(conf, 'POST', '/rest/api/admin/user', { body: { userName: 'jdoe', fullName: 'J Doe', email: 'jdoe@example.com', notifyViaEmail: true } });
    expect(u.status).toBe(201);
    expect(u.json).toEqual({ userKey: expect.stringMatching(/^[0-9a-f]{32}$/) });
    const g = await call(conf, 'POST', '/rest/api/admin/group', { body: { name: 'Devs' } });
    expect(g.status).toBe(200);
    // Confluence keeps group names in lower case
    expect(g.json.name).toBe('devs');
    expect((await call(conf, 'POST', '/rest/api/admin/group', { body: { name: 'devs' } })).status).toBe(409);
    expect((await call(conf, 'PUT', '/rest/api/user/jdoe/group/devs')).status).toBe(204);
    expect((await call(conf, 'PUT', '/rest/api/user/jdoe/group/devs')).status).toBe(204);
    expect((await call(conf, 'PUT', '/rest/api/user/jdoe/group/nogroup')).status).toBe(404);
    expect((await call(conf, 'PUT', '/rest/api/user/nobody/group/devs')).status).toBe(404);
    expect(conf.members('devs')).toEqual(['jdoe']);
    const members = await call(conf, 'GET', '/rest/api/group/devs/member?start=0&limit=10&expand=status');
    expect(members.json).toMatchObject({ start: 0, limit: 10, size: 1, results: [{ username: 'jdoe', userKey: u.json.userKey, displayName: 'J Doe', status: 'Active' }] });
    expect((await call(conf, 'GET', '/rest/api/user?username=jdoe&expand=details.personal')).json.details.personal.email).toBe('jdoe@example.com');
    expect((await call(conf, 'GET', '/rest/api/user/memberof?username=jdoe')).json.results).toEqual([expect.objectContaining({ name: 'devs' })]);
    expect((await call(conf, 'DELETE', '/rest/api/user/jdoe/group/devs')).status).toBe(204);
    expect((await call(conf, 'DELETE', '/rest/api/user/jdoe/group/devs')).status).toBe(204);
    expect((await call(conf, 'PUT', '/rest/api/admin/user/jdoe', { body: { fullName: 'John Doe', email: 'john@example.com' } })).status).toBe(204);
    expect(conf.user('jdoe')).toMatchObject({ displayName: 'John Doe', email: 'john@example.com' });
    expect((await call(conf, 'DELETE', '/rest/api/admin/group/devs')).status).toBe(204);
    expect((await call(conf, 'DELETE', '/rest/api/admin/group/devs')).status).toBe(404);
    expect(conf.violations).toEqual([]);
  });

  it.each(['JDoe', 'j doe', 'j,doe', 'j+doe', 'j<doe', "j'doe", 'j"doe', 'j\\doe', 'anonymous'])('refuses the username %j', async (userName) => {
    const r = await call(conf, 'POST', '/rest/api/admin/user', { body: { userName, fullName: 'X', email: 'x@example.com', password: 'p' } });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ statusCode: 400, reason: 'Bad Request', data: { valid: false } });
  });

  it('refuses an existing username', async () => {
    conf.addUser({ name: 'exists' });
    expect((await call(conf, 'POST', '/rest/api/admin/user', { body: { userName: 'exists', fullName: 'X', email: 'x@example.com', password: 'p' } })).status).toBe(409);
  });

  it('disables and enables idempotently, and lists disabled users with their status', async () => {
    conf.addUser({ name: 'toggle' });
    for (let i = 0; i < 2; i++) expect((await call(conf, 'PUT', '/rest/api/admin/user/toggle/disable')).status).toBe(204);
    expect(conf.user('toggle')?.active).toBe(false);
    expect((await call(conf, 'PUT', '/rest/api/admin/user/nobody/disable')).status).toBe(404);
    const list = await call(conf, 'GET', '/rest/api/user/list?start=0&limit=200&expand=status');
    expect(list.json.results.find((p: { username: string }) => p.username === 'toggle').status).toBe('Deactivated');
    for (let i = 0; i < 2; i++) expect((await call(conf, 'PUT', '/rest/api/admin/user/toggle/enable')).status).toBe(204);
    expect(conf.user('toggle')?.active).toBe(true);
  });

  it('pages with _links.next', async () => {
    for (let i = 0; i < 5; i++) conf.addGroup(`page-${i}`);
    const names: string[] = [];
    let next: string | undefined = '/rest/api/group?limit=2';
    while (next) {
      const r: Res = await call(conf, 'GET', next);
      names.push(...r.json.results.map((g: { name: string }) => g.name));
      next = r.json._links.next;
    }
    expect(names).toEqual(conf.groups());
    expect(conf.violations).toEqual([]);
  });

  it('deletes users asynchronously', async () => {
    conf.addUser({ name: 'leaving' });
    conf.addGroup('leavers');
    conf.addMember('leavers', 'leaving');
    const r = await call(conf, 'DELETE', '/rest/api/admin/user/leaving');
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ id: expect.any(String), links: { status: expect.stringContaining(`/confluence/rest/api/longtask/${r.json.id}`), result: expect.any(String) } });
    // still there while the task runs
    expect(conf.user('leaving')).toBeDefined();
    const running = await call(conf, 'GET', `/rest/api/longtask/${r.json.id}`);
    expect(running.json).toMatchObject({ id: r.json.id, percentageComplete: 0, successful: false });
    await sleep(150);
    expect(conf.user('leaving')).toBeUndefined();
    expect(conf.members('leavers')).toEqual([]);
    expect((await call(conf, 'GET', `/rest/api/longtask/${r.json.id}`)).json).toMatchObject({ percentageComplete: 100, successful: true });
    expect((await call(conf, 'GET', '/rest/api/user?username=leaving')).status).toBe(404);
    expect((await call(conf, 'DELETE', '/rest/api/admin/user/leaving')).status).toBe(404);
    expect(conf.violations).toEqual([]);
  });

  it('answers 402 when no licence seat is left', async () => {
    const small = await start('confluence', { seats: 1 });
    expect((await createUser(small, 'one')).status).toBe(201);
    const two = await createUser(small, 'two');
    expect(two.status).toBe(402);
    expect(two.json).toMatchObject({ statusCode: 402, reason: 'Payment Required' });
    expect((await call(small, 'PUT', '/rest/api/admin/user/one/disable')).status).toBe(204);
    expect((await createUser(small, 'two')).status).toBe(201);
    expect((await call(small, 'PUT', '/rest/api/admin/user/one/enable')).status).toBe(402);
    expect(small.violations).toEqual([]);
  });
});

describe('bitbucket', () => {
  let bb: AtlassianFake;
  beforeAll(async () => {
    bb = await start('bitbucket');
  });

  it('creates users with query parameters, groups and memberships, and reads them back', async () => {
    const c = await call(bb, 'POST', '/rest/api/1.0/admin/users?name=jdoe&password=pw&displayName=J%20Doe&emailAddress=jdoe%40example.com&addToDefaultGroup=true', { headers: { 'content-type': 'application/json' } });
    expect(c.status).toBe(204);
    expect(bb.groupsOf('jdoe')).toEqual(['stash-users']);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/users?name=JDOE&password=pw&displayName=x&emailAddress=x%40example.com')).status).toBe(409);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/users?name=nopw&displayName=x&emailAddress=x%40example.com')).status).toBe(400);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/users?name=notified&notify=true&displayName=x&emailAddress=x%40example.com&addToDefaultGroup=false')).status).toBe(204);
    expect(bb.groupsOf('notified')).toEqual([]);
    const g = await call(bb, 'POST', '/rest/api/latest/admin/groups?name=devs');
    expect(g.json).toEqual({ name: 'devs', deletable: true });
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/groups?name=devs')).status).toBe(409);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/groups/add-users', { body: { group: 'devs', users: ['jdoe', 'notified'] } })).status).toBe(200);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/users/add-groups', { body: { user: 'jdoe', groups: ['devs'] } })).status).toBe(200);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/users/add-groups', { body: { user: 'jdoe', groups: ['nogroup'] } })).status).toBe(404);
    const members = await call(bb, 'GET', '/rest/api/1.0/admin/groups/more-members?context=devs&start=0&limit=1');
    expect(members.json).toMatchObject({ size: 1, limit: 1, start: 0, isLastPage: false, nextPageStart: 1, values: [{ name: 'jdoe', active: true, emailAddress: 'jdoe@example.com' }] });
    expect((await call(bb, 'GET', '/rest/api/1.0/admin/users/more-members?context=jdoe')).json.values).toEqual([{ name: 'devs', deletable: true }, { name: 'stash-users', deletable: true }]);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/users/remove-group', { body: { context: 'jdoe', itemName: 'devs' } })).status).toBe(200);
    expect((await call(bb, 'POST', '/rest/api/1.0/admin/groups/remove-user', { body: { context: 'devs', itemName: 'notified' } })).status).toBe(200);
    expect(bb.members('devs')).toEqual([]);
    const upd = await call(bb, 'PUT', '/rest/api/1.0/admin/users', { body: { name: 'jdoe', displayName: 'John', email: 'john@example.com' } });
    expect(upd.json).toMatchObject({ name: 'jdoe', displayName: 'John', emailAddress: 'john@example.com' });
    const ren = await call(bb, 'POST', '/rest/api/1.0/admin/users/rename', { body: { name: 'jdoe', newName: 'john' } });
    expect(ren.json).toMatchObject({ name: 'john', id: Number(bb.user('john')!.id) });
    expect(bb.groupsOf('john')).toEqual(['stash-users']);
    const list = await call(bb, 'GET', '/rest/api/1.0/admin/users?filter=joh');
    expect(list.json.values.map((u: { name: string }) => u.name)).toEqual(['john']);
    expect((await call(bb, 'DELETE', '/rest/api/1.0/admin/permissions/users?name=john')).status).toBe(204);
    expect((await call(bb, 'DELETE', '/rest/api/1.0/admin/users?name=john')).json.name).toBe('john');
    expect((await call(bb, 'DELETE', '/rest/api/1.0/admin/groups?name=devs')).status).toBe(200);
    expect((await call(bb, 'GET', '/rest/api/1.0/admin/groups')).json.values).toEqual([{ name: 'stash-users', deletable: true }]);
    expect(bb.violations).toEqual([]);
  });

  it('refuses licensed users beyond the seats with 403', async () => {
    const small = await start('bitbucket', { seats: 1 });
    expect((await createUser(small, 'one')).status).toBe(204);
    const two = await createUser(small, 'two');
    expect(two.status).toBe(403);
    expect(two.json.errors[0].message).toMatch(/licen[cs]/i);
    expect(small.user('two')).toBeUndefined();
    expect((await call(small, 'POST', '/rest/api/1.0/admin/users?name=two&password=pw&displayName=Two&emailAddress=two%40example.com&addToDefaultGroup=false')).status).toBe(204);
    expect((await call(small, 'POST', '/rest/api/1.0/admin/users/add-groups', { body: { user: 'two', groups: ['stash-users'] } })).status).toBe(403);
    expect((await call(small, 'POST', '/rest/api/1.0/admin/groups/add-users', { body: { group: 'stash-users', users: ['two'] } })).status).toBe(403);
    // someone already licensed can join more groups
    small.addGroup('other');
    expect((await call(small, 'POST', '/rest/api/1.0/admin/users/add-groups', { body: { user: 'one', groups: ['other', 'stash-users'] } })).status).toBe(200);
    expect(() => small.updateUser('one', { active: false })).toThrow(/cannot be deactivated/);
    expect(small.violations).toEqual([]);
  });
});

describe('atlassian-cloud', () => {
  let scim: AtlassianFake;
  beforeAll(async () => {
    scim = await start('atlassian-cloud', { verifiedDomains: ['example.com', 'corp.example'] });
  });

  const newUser = (userName: string, email = userName): Promise<Res> =>
    call(scim, 'POST', '/Users', { body: { schemas: [SCIM_USER], userName, externalId: `ext-${userName}`, emails: [{ value: email, type: 'work', primary: true }], name: { givenName: 'Jane', familyName: 'Doe' }, active: true } });
  const patch = (p: string, ops: unknown[]): Promise<Res> => call(scim, 'PATCH', p, { body: { schemas: [PATCH_OP], Operations: ops }, headers: { 'content-type': 'application/scim+json' } });

  it('creates users, groups and memberships, and reads them back', async () => {
    const u = await newUser('jane@example.com');
    expect(u.status).toBe(201);
    expect(u.headers.get('location')).toBe(`${scim.url}/Users/${u.json.id}`);
    expect(u.json).toMatchObject({ userName: 'jane@example.com', displayName: 'Jane Doe', active: true, externalId: 'ext-jane@example.com' });
    expect(scim.user('jane@example.com')).toMatchObject({ email: 'jane@example.com', displayName: 'Jane Doe', id: u.json.id });
    const dup = await newUser('JANE@example.com');
    expect(dup.status).toBe(409);
    expect(dup.json.scimType).toBe('uniqueness');

    const g = await call(scim, 'POST', '/Groups', { body: { schemas: [SCIM_GROUP], displayName: 'devs' } });
    expect(g.status).toBe(201);
    expect((await call(scim, 'POST', '/Groups', { body: { schemas: [SCIM_GROUP], displayName: 'DEVS' } })).status).toBe(409);
    const add = { op: 'add', path: 'members', value: [{ value: u.json.id }] };
    expect((await patch(`/Groups/${g.json.id}`, [add])).status).toBe(200);
    expect((await patch(`/Groups/${g.json.id}`, [add])).status).toBe(200);
    expect((await patch(`/Groups/${g.json.id}`, [{ op: 'add', path: 'members', value: [{ value: 'no-such-user' }] }])).status).toBe(404);
    expect(scim.members('devs')).toEqual(['jane@example.com']);
    const found = await call(scim, 'GET', `/Groups?filter=${enc('displayName eq "devs"')}&startIndex=1&count=10`);
    expect(found.json).toMatchObject({ totalResults: 1, startIndex: 1, itemsPerPage: 1, Resources: [{ displayName: 'devs', members: [{ value: u.json.id }] }] });
    const byName = await call(scim, 'GET', `/Users?filter=${enc('userName eq "jane@example.com"')}`);
    expect(byName.json.Resources[0].groups).toEqual([expect.objectContaining({ value: g.json.id, display: 'devs' })]);
    const byExt = await call(scim, 'GET', `/Users?filter=${enc('externalId eq "ext-jane@example.com"')}`);
    expect(byExt.json.totalResults).toBe(1);
    expect((await call(scim, 'GET', `/Users?filter=${enc('displayName co "x"')}`)).json.scimType).toBe('invalidFilter');
    expect((await patch(`/Groups/${g.json.id}`, [{ op: 'remove', path: `members[value eq "${u.json.id}"]` }])).status).toBe(200);
    expect(scim.members('devs')).toEqual([]);

    const upd = await patch(`/Users/${u.json.id}`, [
      { op: 'replace', path: 'displayName', value: 'Jane Q. Doe' },
      { op: 'replace', path: 'emails[type eq "work"].value', value: 'jane.doe@corp.example' },
      { op: 'replace', value: { active: false } },
    ]);
    expect(upd.status).toBe(200);
    expect(scim.user('jane@example.com')).toMatchObject({ displayName: 'Jane Q. Doe', email: 'jane.doe@corp.example', active: false });
    const put = await call(scim, 'PUT', `/Users/${u.json.id}`, { body: { schemas: [SCIM_USER], userName: 'jane@example.com', emails: [{ value: 'jane@example.com', primary: true }], displayName: 'Jane', active: true } });
    expect(put.json).toMatchObject({ displayName: 'Jane', active: true });
    // PUT replaces: attributes left out are gone
    expect(put.json.externalId).toBeUndefined();
    expect(scim.violations).toEqual([]);
  });

  it('refuses e-mail addresses outside the verified domains', async () => {
    const r = await newUser('out@elsewhere.org');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ status: '400', scimType: 'invalidValue', detail: expect.stringContaining("'elsewhere.org'") });
    expect(scim.user('out@elsewhere.org')).toBeUndefined();
  });

  it('deletes by deactivating: the user is gone from SCIM and stays in users() as inactive', async () => {
    const u = await newUser('gone@example.com');
    scim.addGroup('g-gone');
    scim.addMember('g-gone', 'gone@example.com');
    expect((await call(scim, 'DELETE', `/Users/${u.json.id}`)).status).toBe(204);
    expect(scim.user('gone@example.com')).toMatchObject({ active: false });
    expect(scim.members('g-gone')).toEqual([]);
    for (const m of ['GET', 'DELETE']) expect((await call(scim, m, `/Users/${u.json.id}`)).status).toBe(404);
    expect((await patch(`/Users/${u.json.id}`, [{ op: 'replace', path: 'active', value: true }])).status).toBe(404);
    expect((await call(scim, 'GET', `/Users?filter=${enc('userName eq "gone@example.com"')}`)).json.totalResults).toBe(0);
    const back = await newUser('gone@example.com');
    expect(back.status).toBe(201);
    expect(back.json.id).not.toBe(u.json.id);
    expect(scim.user('gone@example.com')).toMatchObject({ active: true, id: back.json.id });
    expect(scim.violations).toEqual([]);
  });

  it('pages from a 1-based startIndex, at most 100 at a time', async () => {
    for (let i = 0; i < 105; i++) scim.addUser({ name: `bulk${i}@example.com` });
    const total = (await call(scim, 'GET', '/Users?count=0')).json.totalResults;
    const first = await call(scim, 'GET', '/Users?startIndex=1&count=500');
    expect(first.json).toMatchObject({ startIndex: 1, itemsPerPage: 100, totalResults: total });
    const rest = await call(scim, 'GET', '/Users?startIndex=101&count=100');
    expect(rest.json.itemsPerPage).toBe(total - 100);
  });

  it('keeps group names, and answers 404 for another directory', async () => {
    const g = await call(scim, 'POST', '/Groups', { body: { schemas: [SCIM_GROUP], displayName: 'fixed' } });
    expect((await patch(`/Groups/${g.json.id}`, [{ op: 'replace', path: 'displayName', value: 'renamed' }])).json.scimType).toBe('mutability');
    expect((await call(scim, 'DELETE', `/Groups/${g.json.id}`)).status).toBe(204);
    expect((await call(scim, 'GET', `/Groups/${g.json.id}`)).status).toBe(404);
    const other = await fetch(scim.url.replace(/directory\/[^/]+/, 'directory/other') + '/Users', { headers: { authorization: `Bearer ${scim.token}` } });
    expect(other.status).toBe(404);
    expect((await call(scim, 'GET', '/ServiceProviderConfig')).json.patch).toEqual({ supported: true });
  });
});

describe('load', () => {
  it('counts requests in flight and adds latency', async () => {
    const slow = await start('jira', { latencyMs: 40 });
    const t = performance.now();
    await Promise.all(Array.from({ length: 8 }, () => ping(slow)));
    expect(performance.now() - t).toBeGreaterThanOrEqual(38);
    expect(slow.maxInFlight).toBe(8);
    slow.resetStats();
    expect(slow.maxInFlight).toBe(0);
  });

  it('serves a few thousand requests quickly, with every one checked', async () => {
    const fast = await start('jira');
    for (let i = 0; i < 50; i++) fast.addUser({ name: `load${i}` });
    const t = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 2000) {
        const i = next++;
        const r = await call(fast, 'GET', `/rest/api/2/user?username=load${i % 50}`);
        expect(r.status).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const ms = performance.now() - t;
    expect(ms).toBeLessThan(5000);
    expect(fast.violations).toEqual([]);
  });
});
