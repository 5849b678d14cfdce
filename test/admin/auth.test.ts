// Logging in to the admin API as a browser does: the session cookie, CSRF, lockout, rate limit, roles,
// forced password changes, API token scopes, and the audit entries each leaves.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideAccess } from '../../src/admin/access.ts';
import { SessionStore } from '../../src/admin/sessions.ts';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';

const ADMIN_PASSWORD = 'correct horse battery staple';

interface Browser {
  cookie?: string;
  csrf?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = { status: number; headers: Headers; body: any };

describe.each(['sqlite', 'postgres'] as const)('admin sessions on %s', (dialect) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(dialect, { env: { LOGIN_LOCKOUT_ATTEMPTS: '5', LOGIN_RATE_PER_MINUTE: '1000' } });
    await server.service.accounts.create({ username: 'admin', password: ADMIN_PASSWORD, role: 'administrator' }, 'test');
  });
  afterAll(async () => server.close());

  async function call(path: string, init: { method?: string; body?: unknown; browser?: Browser; csrf?: string | null; headers?: Record<string, string>; ip?: string } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (init.browser?.cookie) headers.cookie = init.browser.cookie;
    const csrf = init.csrf === undefined ? init.browser?.csrf : init.csrf;
    if (csrf) headers['x-csrf-token'] = csrf;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.origin}/api${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  async function login(username: string, password: string): Promise<{ answer: Answer; browser: Browser }> {
    const answer = await call('/session', { method: 'POST', body: { username, password } });
    const setCookie = answer.headers.get('set-cookie') ?? '';
    const browser: Browser = {};
    if (answer.status === 200) {
      browser.cookie = setCookie.split(';')[0];
      browser.csrf = answer.body.csrfToken;
    }
    return { answer, browser };
  }

  async function auditActions(target?: string): Promise<{ actor: string; action: string; target: string; details: Record<string, unknown> }[]> {
    let q = server.service.db.kysely.selectFrom('audit_log').selectAll().orderBy('seq');
    if (target) q = q.where('target', '=', target);
    return (await q.execute()).map((r) => ({ actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  it('logs in with an HTTP-only, same-site cookie whose value the database does not hold', async () => {
    const { answer, browser } = await login('admin', ADMIN_PASSWORD);
    expect(answer.status).toBe(200);
    expect(answer.body.account).toMatchObject({ username: 'admin', role: 'administrator', mustChangePassword: false });
    const setCookie = answer.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^usersync_session=[A-Za-z0-9_-]{40,}; /);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toMatch(/Secure/i); // plain HTTP on loopback; COOKIE_SECURE=true forces it
    const value = browser.cookie!.split('=')[1]!;
    const stored = await server.service.db.kysely.selectFrom('admin_sessions').select(['id_hash', 'csrf_token']).execute();
    expect(stored.some((s) => s.id_hash === value)).toBe(false);
    expect(stored.some((s) => s.csrf_token === answer.body.csrfToken)).toBe(true);

    const me = await call('/session', { browser });
    expect([me.status, me.body.account.username, me.body.csrfToken]).toEqual([200, 'admin', answer.body.csrfToken]);
    expect((await call('/connectors', { browser })).status).toBe(200);
    expect((await call('/session')).status).toBe(401);
    const login1 = (await auditActions()).filter((a) => a.action === 'session.login');
    expect(login1.at(-1)).toMatchObject({ actor: 'account:admin', details: { ip: '127.0.0.1' } });
  });

  it('refuses a wrong password or an unknown name alike, and audits both', async () => {
    const wrong = await login('admin', 'not the password at all');
    const unknown = await login('nobody', 'not the password at all');
    expect([wrong.answer.status, wrong.answer.body.error.code]).toEqual([401, 'invalid_credentials']);
    expect([unknown.answer.status, unknown.answer.body.error.code]).toEqual([401, 'invalid_credentials']);
    expect(wrong.answer.body.error.message).toBe(unknown.answer.body.error.message);
    expect(wrong.answer.headers.get('set-cookie')).toBeNull();
    const failed = (await auditActions()).filter((a) => a.action === 'session.login-failed');
    expect(failed.map((f) => f.details.username)).toEqual(expect.arrayContaining(['admin', 'nobody']));
    expect(JSON.stringify(failed)).not.toContain('not the password');
    // a success resets the count, so these two do not bring the lockout nearer
    expect((await login('admin', ADMIN_PASSWORD)).answer.status).toBe(200);
    const row = await server.service.db.kysely.selectFrom('admin_accounts').select('failed_logins').where('username_key', '=', 'admin').executeTakeFirstOrThrow();
    expect(Number(row.failed_logins)).toBe(0);
  });

  it('answers bad login input with a clear error and keeps running', async () => {
    const raw = async (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
      const res = await fetch(`${server.origin}/api/session`, { method: 'POST', headers, body });
      return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
    };
    expect((await raw('[]')).status).toBe(400);
    expect((await raw('{"username": 7, "password": "x"}')).body.error.code).toBe('invalid_body');
    expect((await raw('{"username": "admin"')).status).toBe(400);
    expect((await raw('username=admin&password=x', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await raw(JSON.stringify({ username: 'admin', password: 'x'.repeat(2_000_000) }))).status).toBe(413);
    const long = await raw(JSON.stringify({ username: 'a'.repeat(5000), password: 'y'.repeat(5000) }));
    expect([long.status, long.body.error.code]).toEqual([401, 'invalid_credentials']);
    for (const cookie of ['usersync_session=', 'usersync_session=%%%', `usersync_session=${'z'.repeat(5000)}`, 'garbage']) {
      const res = await call('/connectors', { headers: { cookie } });
      expect([cookie.slice(0, 20), res.status]).toEqual([cookie.slice(0, 20), 401]);
    }
    expect((await login('admin', ADMIN_PASSWORD)).answer.status).toBe(200);
  });

  it('needs the CSRF token on every change made with the cookie, and refuses another site', async () => {
    const { browser } = await login('admin', ADMIN_PASSWORD);
    const change = { method: 'PATCH', body: { name: 'Entra ID (renamed)' }, browser };
    const without = await call(`/connectors/${server.connectorId}`, { ...change, csrf: null });
    expect([without.status, without.body.error.code]).toEqual([403, 'csrf_failed']);
    const wrong = await call(`/connectors/${server.connectorId}`, { ...change, csrf: 'x'.repeat(43) });
    expect([wrong.status, wrong.body.error.code]).toEqual([403, 'csrf_failed']);
    const otherSite = await call(`/connectors/${server.connectorId}`, { ...change, headers: { origin: 'https://evil.example' } });
    expect([otherSite.status, otherSite.body.error.code]).toEqual([403, 'csrf_failed']);
    // another session's token is no good either
    const other = await login('admin', ADMIN_PASSWORD);
    expect((await call(`/connectors/${server.connectorId}`, { ...change, csrf: other.browser.csrf! })).status).toBe(403);
    expect((await server.service.connectors.get(server.connectorId))!.name).toBe('Entra ID');

    const ok = await call(`/connectors/${server.connectorId}`, { ...change, headers: { origin: server.origin } });
    expect([ok.status, ok.body.name]).toEqual([200, 'Entra ID (renamed)']);
    const entry = (await auditActions(server.connectorId)).at(-1)!;
    expect(entry).toMatchObject({ actor: 'account:admin', action: 'connector.rename', details: { before: 'Entra ID', after: 'Entra ID (renamed)' } });
    // reads need no token
    expect((await call('/runs', { browser, csrf: null })).status).toBe(200);
  });

  it('locks an account after five failed logins in a row, even against logins racing in parallel', async () => {
    await server.service.accounts.create({ username: 'victim', password: 'the quick brown fox 1', role: 'administrator' }, 'test');
    const attempts = await Promise.all(Array.from({ length: 12 }, () => login('victim', 'guessing wrongly')));
    const codes = attempts.map((a) => a.answer.body.error.code);
    expect(codes.filter((c) => c === 'invalid_credentials').length).toBe(4);
    expect(codes.filter((c) => c === 'account_locked').length).toBe(8);
    const locked = attempts.find((a) => a.answer.status === 423)!;
    expect(Number(locked.answer.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(locked.answer.body.error.message).toMatch(/locked.*try again in 15 minutes/i);
    // the right password does not open a locked account
    const right = await login('victim', 'the quick brown fox 1');
    expect([right.answer.status, right.answer.body.error.code]).toEqual([423, 'account_locked']);
    const id = (await server.service.accounts.byUsername('victim'))!.id;
    expect((await auditActions(id)).filter((a) => a.action === 'account.locked')).toHaveLength(1);

    // an administrator unlocks it
    const { browser } = await login('admin', ADMIN_PASSWORD);
    const listed = await call('/accounts', { browser });
    expect(listed.body.accounts.find((a: { username: string }) => a.username === 'victim')).toMatchObject({ locked: true });
    const unlocked = await call(`/accounts/${id}/unlock`, { method: 'POST', browser });
    expect([unlocked.status, unlocked.body.locked]).toEqual([200, false]);
    expect((await login('victim', 'the quick brown fox 1')).answer.status).toBe(200);
    expect((await auditActions(id)).at(-2)).toMatchObject({ actor: 'account:admin', action: 'account.unlock' });
  });

  it('makes an account created by an administrator change its password first, then lets an auditor only read', async () => {
    const { browser: admin } = await login('admin', ADMIN_PASSWORD);
    const weak = await call('/accounts', { method: 'POST', browser: admin, body: { username: 'ann', password: 'short', role: 'auditor' } });
    expect([weak.status, weak.body.error.code]).toEqual([400, 'weak_password']);
    const badRole = await call('/accounts', { method: 'POST', browser: admin, body: { username: 'ann', password: 'a long enough one', role: 'root' } });
    expect([badRole.status, badRole.body.error.code]).toEqual([400, 'invalid_account']);
    const created = await call('/accounts', { method: 'POST', browser: admin, body: { username: 'ann', password: 'first password 42', role: 'auditor' } });
    expect([created.status, created.body.mustChangePassword]).toEqual([201, true]);
    const dup = await call('/accounts', { method: 'POST', browser: admin, body: { username: 'ANN', password: 'first password 42', role: 'auditor' } });
    expect([dup.status, dup.body.error.code]).toEqual([409, 'username_taken']);
    const audit = (await auditActions(created.body.id)).find((a) => a.action === 'account.create')!;
    expect(audit).toMatchObject({ actor: 'account:admin', details: { username: 'ann', role: 'auditor' } });
    expect(JSON.stringify(await auditActions())).not.toContain('first password 42');

    const first = await login('ann', 'first password 42');
    expect(first.answer.body.account.mustChangePassword).toBe(true);
    const blocked = await call('/connectors', { browser: first.browser });
    expect([blocked.status, blocked.body.error.code]).toEqual([403, 'password_change_required']);
    const second = await login('ann', 'first password 42'); // another browser, to be logged out by the change
    const wrongCurrent = await call('/session/password', { method: 'POST', browser: first.browser, body: { currentPassword: 'nope', newPassword: 'my own password 77' } });
    expect([wrongCurrent.status, wrongCurrent.body.error.code]).toEqual([400, 'wrong_password']);
    const changed = await call('/session/password', { method: 'POST', browser: first.browser, body: { currentPassword: 'first password 42', newPassword: 'my own password 77' } });
    expect(changed.status).toBe(204);
    expect((await call('/session', { browser: second.browser })).status).toBe(401);
    expect((await call('/session', { browser: first.browser })).body.account.mustChangePassword).toBe(false);

    // the auditor reads and previews, but changes nothing
    const auditor = first.browser;
    expect((await call('/connectors', { browser: auditor })).status).toBe(200);
    expect((await call('/audit', { browser: auditor })).status).toBe(200);
    expect((await call(`/connectors/${server.connectorId}/preview`, { method: 'POST', browser: auditor, body: {} })).status).toBe(200);
    for (const [method, path, body] of [
      ['PUT', `/connectors/${server.connectorId}/settings`, {}],
      ['POST', `/connectors/${server.connectorId}/sync`, {}],
      ['POST', '/accounts', { username: 'x', password: 'a long enough one', role: 'administrator' }],
      ['POST', `/connectors/${server.connectorId}/tokens`, {}],
      ['DELETE', `/connectors/${server.connectorId}`, undefined],
      ['PATCH', `/accounts/${created.body.id}`, { role: 'administrator' }],
    ] as const) {
      const res = await call(path, { method, browser: auditor, ...(body ? { body } : {}) });
      expect([method, path, res.status, res.body.error.code]).toEqual([method, path, 403, 'forbidden']);
    }
    // logging out ends the session for good
    expect((await call('/session', { method: 'DELETE', browser: auditor })).status).toBe(204);
    expect((await call('/connectors', { browser: auditor })).status).toBe(401);
  });

  it('keeps one enabled administrator, and ends the sessions of an account that is disabled', async () => {
    const { browser: admin } = await login('admin', ADMIN_PASSWORD);
    const me = (await server.service.accounts.byUsername('admin'))!;
    const others = (await server.service.accounts.list()).filter((a) => a.role === 'administrator' && a.username !== 'admin');
    for (const o of others) await server.service.accounts.update(o.id, { disabled: true }, 'test');
    const demote = await call(`/accounts/${me.id}`, { method: 'PATCH', browser: admin, body: { role: 'auditor' } });
    expect([demote.status, demote.body.error.code]).toEqual([409, 'last_administrator']);
    expect((await server.service.accounts.get(me.id))!.role).toBe('administrator');
    const self = await call(`/accounts/${me.id}`, { method: 'DELETE', browser: admin });
    expect([self.status, self.body.error.code]).toEqual([409, 'own_account']);

    const bob = await call('/accounts', { method: 'POST', browser: admin, body: { username: 'bob', password: 'open sesame 2026', role: 'administrator' } });
    const bobLogin = await login('bob', 'open sesame 2026');
    await call('/session/password', { method: 'POST', browser: bobLogin.browser, body: { currentPassword: 'open sesame 2026', newPassword: 'closed sesame 2027' } });
    expect((await call('/connectors', { browser: bobLogin.browser })).status).toBe(200);
    const disabled = await call(`/accounts/${bob.body.id}`, { method: 'PATCH', browser: admin, body: { disabled: true } });
    expect([disabled.status, disabled.body.disabled]).toEqual([200, true]);
    expect((await call('/connectors', { browser: bobLogin.browser })).status).toBe(401);
    expect((await login('bob', 'closed sesame 2027')).answer.status).toBe(401);
    const unknownField = await call(`/accounts/${bob.body.id}`, { method: 'PATCH', browser: admin, body: { isAdmin: true } });
    expect(unknownField.status).toBe(400);
    for (const o of others) await server.service.accounts.update(o.id, { disabled: false }, 'test');
  });

  it('gives API tokens shown once, with scopes that limit them', async () => {
    const { browser } = await login('admin', ADMIN_PASSWORD);
    const mint = async (scope: string) => (await call('/admin-tokens', { method: 'POST', browser, body: { label: `${scope} robot`, scope } })).body as { token: string; info: { id: string; scope: string } };
    const sync = await mint('sync');
    const auditor = await mint('auditor');
    expect(sync.token).toMatch(/^usa_/);
    const listed = await call('/admin-tokens', { browser });
    expect(JSON.stringify(listed.body)).not.toContain(sync.token);
    expect(listed.body.tokens.map((t: { scope: string }) => t.scope)).toEqual(expect.arrayContaining(['sync', 'auditor']));
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

    const started = await call(`/connectors/${server.connectorId}/sync`, { method: 'POST', headers: bearer(sync.token) });
    expect(started.status).toBe(200);
    expect((await call('/runs', { headers: bearer(sync.token) })).status).toBe(200);
    const settings = await call(`/connectors/${server.connectorId}/settings`, { method: 'PUT', body: {}, headers: bearer(sync.token) });
    expect([settings.status, settings.body.error.code]).toEqual([403, 'forbidden']);
    expect((await call('/audit', { headers: bearer(sync.token) })).status).toBe(403);
    expect((await call('/audit', { headers: bearer(auditor.token) })).status).toBe(200);
    expect((await call(`/connectors/${server.connectorId}/sync`, { method: 'POST', headers: bearer(auditor.token) })).status).toBe(403);
    // a token needs no CSRF header: it is not sent by browsers on their own
    expect((await call('/admin-tokens', { method: 'POST', headers: bearer(sync.token), body: { label: 'x' } })).status).toBe(403);

    const syncAudit = (await auditActions(server.connectorId)).filter((a) => a.action === 'connector.sync').at(-1);
    expect(syncAudit?.actor).toBe('token:sync robot');
    expect((await call(`/admin-tokens/${sync.info.id}`, { method: 'DELETE', browser })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 2100)); // revocation reaches the token cache within two seconds
    expect((await call('/runs', { headers: bearer(sync.token) })).status).toBe(401);
    expect((await auditActions(sync.info.id)).map((a) => a.action)).toEqual(['admin-token.create', 'admin-token.revoke']);
  });

  it('rotates a SCIM token: the new one works at once, the old one stops after revocation', async () => {
    const { browser } = await login('admin', ADMIN_PASSWORD);
    const before = await call(`/connectors/${server.connectorId}/tokens`, { browser });
    const old = before.body.tokens.find((t: { revokedAt: string | null }) => t.revokedAt === null);
    const created = await call(`/connectors/${server.connectorId}/tokens`, { method: 'POST', browser, body: { label: 'rotation' } });
    expect(created.status).toBe(201);
    expect(created.body.scimBaseUrl).toBe(`${server.origin}/scim/v2/${server.connectorId}`);
    expect((await server.scim('/Users', { token: created.body.token })).status).toBe(200);
    expect((await call(`/connectors/${server.connectorId}/tokens/${old.id}`, { method: 'DELETE', browser })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await server.scim('/Users', { token: server.token })).status).toBe(401);
    expect((await server.scim('/Users', { token: created.body.token })).status).toBe(200);
    server.token = created.body.token;
    const list = await call('/connectors', { browser });
    expect(list.body.connectors[0]).toMatchObject({ id: server.connectorId, scimBaseUrl: `${server.origin}/scim/v2/${server.connectorId}` });
    expect(list.body.connectors[0]).toHaveProperty('lastRun');
  });
});

describe('login rate limit per address', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { LOGIN_RATE_PER_MINUTE: '5' } });
  });
  afterAll(async () => server.close());

  it('answers 429 with Retry-After once an address has tried too often, whatever the names', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 7; i++) {
      last = await fetch(`${server.origin}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `user${i}`, password: 'whatever it is' }) });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await last!.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('too_many_attempts');
    expect(body.error.message).toMatch(/try again in \d+ seconds/);
  });
});

describe('sessions expire', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    await server.service.accounts.create({ username: 'admin', password: ADMIN_PASSWORD, role: 'administrator' }, 'test');
  });
  afterAll(async () => server.close());

  it('ends a session unused for the idle time, and every session at its absolute limit', async () => {
    const account = (await server.service.accounts.byUsername('admin'))!;
    const idle = new SessionStore(server.service.db, { idleMs: 150, absoluteMs: 60_000 });
    const a = await idle.create(account.id, { ip: '127.0.0.1', userAgent: 't' });
    expect(await idle.find(a.cookieValue)).toMatchObject({ username: 'admin', role: 'administrator' });
    await new Promise((r) => setTimeout(r, 250));
    expect(await idle.find(a.cookieValue)).toBeUndefined();

    const short = new SessionStore(server.service.db, { idleMs: 60_000, absoluteMs: 150 });
    const b = await short.create(account.id, { ip: '127.0.0.1', userAgent: 't' });
    await new Promise((r) => setTimeout(r, 250));
    expect(await short.find(b.cookieValue)).toBeUndefined();
    expect(await short.find('not-a-session-value-at-all-xxxxxxxx')).toBeUndefined();
    const c = await idle.create(account.id, { ip: '127.0.0.1', userAgent: 't' });
    await new Promise((r) => setTimeout(r, 250));
    expect(await idle.prune()).toBeGreaterThanOrEqual(1);
    expect(await server.service.db.kysely.selectFrom('admin_sessions').select('id_hash').where('id_hash', '!=', '').execute()).not.toContainEqual(expect.objectContaining({ id_hash: c.cookieValue }));
  });
});

describe('the access policy', () => {
  it('lets administrators do anything, auditors read, and narrow tokens only their routes', () => {
    const admin = { kind: 'session', role: 'administrator', mustChangePassword: false } as const;
    const auditor = { kind: 'session', role: 'auditor', mustChangePassword: false } as const;
    expect(decideAccess(admin, 'DELETE /api/connectors/:id').allow).toBe(true);
    expect(decideAccess(auditor, 'GET /api/runs/:id/events').allow).toBe(true);
    expect(decideAccess(auditor, 'POST /api/connectors/:id/search-user').allow).toBe(true);
    expect(decideAccess(auditor, 'POST /api/runs/:id/approve').allow).toBe(false);
    expect(decideAccess(auditor, 'POST /api/session/password').allow).toBe(true);
    expect(decideAccess({ ...admin, mustChangePassword: true }, 'GET /api/connectors')).toMatchObject({ allow: false, code: 'password_change_required' });
    expect(decideAccess({ kind: 'token', scope: 'sync' }, 'POST /api/connectors/:id/sync').allow).toBe(true);
    expect(decideAccess({ kind: 'token', scope: 'sync' }, 'POST /api/runs/:id/approve').allow).toBe(false);
    expect(decideAccess({ kind: 'token', scope: 'sync-user' }, 'GET /api/connectors').allow).toBe(false);
    expect(decideAccess({ kind: 'token', scope: 'admin' }, 'POST /api/accounts').allow).toBe(true);
  });
});

describe('every change the API offers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    await server.service.accounts.create({ username: 'admin', password: ADMIN_PASSWORD, role: 'administrator' }, 'test');
    await server.service.accounts.create({ username: 'reader', password: 'reading is all I do', role: 'auditor' }, 'test');
  });
  afterAll(async () => server.close());

  async function session(username: string, password: string): Promise<{ cookie: string; csrf: string }> {
    const res = await fetch(`${server.origin}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
    return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
  }

  /** Every operation of the OpenAPI document that is not a read, with its path parameters filled in. */
  async function changes(): Promise<{ method: string; path: string; route: string }[]> {
    const { openApiDocument } = await import('../../src/admin/openapi.ts');
    const out: { method: string; path: string; route: string }[] = [];
    for (const [path, item] of Object.entries(openApiDocument.paths)) {
      for (const method of ['post', 'put', 'patch', 'delete'] as const) {
        if (!item[method]) continue;
        out.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x'), route: `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}` });
      }
    }
    return out;
  }

  it('refuses each one made with the session cookie but without the CSRF token, and each one an auditor may not make', async () => {
    const list = await changes();
    expect(list.length).toBeGreaterThan(20);
    const admin = await session('admin', ADMIN_PASSWORD);
    const reader = await session('reader', 'reading is all I do');
    const { decideAccess } = await import('../../src/admin/access.ts');
    for (const { method, path, route } of list) {
      if (route === 'POST /api/session') continue; // logging in: no session yet
      const res = await fetch(`${server.origin}${path}`, { method, headers: { cookie: admin.cookie, 'content-type': 'application/json' }, body: '{}' });
      expect([route, res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([route, 403, 'csrf_failed']);
      if (!decideAccess({ kind: 'session', role: 'auditor', mustChangePassword: false }, route).allow) {
        const asAuditor = await fetch(`${server.origin}${path}`, { method, headers: { cookie: reader.cookie, 'x-csrf-token': reader.csrf, 'content-type': 'application/json' }, body: '{}' });
        expect([route, asAuditor.status]).toEqual([route, 403]);
      }
    }
    // nothing was changed by any of them
    const changed = await server.service.db.kysely.selectFrom('audit_log').select(['actor', 'action']).where('actor', '!=', 'test').execute();
    expect(changed.map((a) => a.action)).toEqual(['session.login', 'session.login']);
  });
});
