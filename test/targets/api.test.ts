// The target API as an administrator uses it, against a running service and the Jira and Confluence fakes:
// settings validated with clear errors, the secret sealed and never shown, the cut-over (first comparison,
// adoption, delivery), pause, parked work and its retry, who may do what, the audit, metrics, the
// preview's per-target checks, and the change feed kept for a target that has not read it yet.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prune } from '../../src/store/retention.ts';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import { startAtlassianFake } from '../support/atlassian/index.ts';
import { until } from '../support/process.ts';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

describe('the target API', () => {
  let server: TestServer;
  let jira: AtlassianFake;
  let confluence: AtlassianFake;
  let admin: string;
  let auditor: string;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { targetTickMs: 100 });
    admin = (await server.service.adminTokens.create('automation', 'test')).token;
    auditor = (await server.service.adminTokens.create('reader', 'test', 'auditor')).token;
    jira = await startAtlassianFake('jira');
    confluence = await startAtlassianFake('confluence');
    for (const name of ['ann', 'bob', 'cyd']) {
      const res = await server.scim('/Users', { method: 'POST', body: { userName: `${name}@example.com`, displayName: name.toUpperCase(), emails: [{ value: `${name}@example.com`, primary: true }], active: true } });
      expect(res.status).toBe(201);
    }
    const g = await server.scim('/Groups', { method: 'POST', body: { displayName: 'jira-users' } });
    const users = (await server.scim('/Users')).body.Resources as { id: string }[];
    await server.scim(`/Groups/${g.body.id}`, { method: 'PATCH', body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'add', path: 'members', value: users.map((u) => ({ value: u.id })) }] } });
    await until('the directory', 10_000, async () => (await server.store.db.kysely.selectFrom('directory_memberships').select('user_id').execute()).length === 3);
  });
  afterAll(async () => {
    await server.close();
    await jira.close();
    await confluence.close();
    expect(jira.violations).toEqual([]);
    expect(confluence.violations).toEqual([]);
  });

  const api = async (path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${server.origin}/api${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? admin}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  it('refuses bad input with the field and a sentence, and stores nothing', async () => {
    const noKind = await api('/targets', { method: 'POST', body: { name: 'x', settings: {} } });
    expect(noKind).toMatchObject({ status: 400, body: { error: { code: 'invalid_target' } } });
    const bad = await api('/targets', { method: 'POST', body: { id: 'jira-bad', name: 'Jira', kind: 'jira', settings: { baseUrl: 'ftp://x', concurrency: 0, groups: { mode: 'only', patterns: ['/[/'] }, surprise: 1 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_settings');
    const paths = (bad.body.error.details as { path: string }[]).map((d) => d.path).sort();
    expect(paths).toEqual(['baseUrl', 'concurrency', 'groups.patterns.0', 'secret', 'surprise']);
    expect((await api('/targets/jira-bad')).status).toBe(404);
    const badId = await api('/targets', { method: 'POST', body: { id: 'Has Spaces', name: 'x', kind: 'jira', settings: {} } });
    expect(badId).toMatchObject({ status: 400, body: { error: { code: 'invalid_target' } } });
    const notJson = await fetch(`${server.origin}/api/targets`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"kind":' });
    expect(notJson.status).toBe(400);
  });

  it('creates a target that compares first, changes nothing until adopted, then delivers', async () => {
    jira.addUser({ name: 'ann@example.com', email: 'ann@example.com', displayName: 'Old Ann' });
    const created = await api('/targets', { method: 'POST', body: { id: 'jira-prod', name: 'Jira production', kind: 'jira', settings: { baseUrl: jira.url, secret: jira.token } } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'jira-prod', kind: 'jira', phase: 'new', settings: { secret: { set: true }, baseUrl: jira.url } });
    expect(JSON.stringify(created.body)).not.toContain(jira.token);
    const row = await server.store.db.kysely.selectFrom('targets').select('settings').where('id', '=', 'jira-prod').executeTakeFirstOrThrow();
    expect(row.settings).not.toContain(jira.token);

    const waiting = await until('the first comparison', 15_000, async () => {
      const t = await api('/targets/jira-prod');
      return t.body.phase === 'awaiting-adoption' ? t.body : undefined;
    });
    expect(waiting.lastComparison).toMatchObject({ status: 'done', mode: 'report', summary: { 'user-match': 1, 'user-missing': 2, 'group-missing': 1 } });
    expect(jira.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    const detail = await api(`/targets/jira-prod/comparisons/${waiting.lastComparison.id}?category=user-match`);
    expect(detail.body.items).toHaveLength(1);
    expect(detail.body.items[0]).toMatchObject({ remoteName: 'ann@example.com', category: 'user-match' });
    expect(detail.body.categories['user-match']).toMatch(/adopt/);

    const adopted = await api('/targets/jira-prod/adopt', { method: 'POST', body: {} });
    expect(adopted).toMatchObject({ status: 200, body: { adopted: { users: 1 }, phase: 'active' } });
    await until('delivery to Jira', 15_000, async () => jira.users().length === 3 && jira.members('jira-users').length === 3);
    expect(jira.user('ann@example.com')!.displayName).toBe('ANN');

    const audit = await server.store.db.kysely.selectFrom('audit_log').select(['action', 'actor']).where('target', '=', 'target:jira-prod').orderBy('seq').execute();
    expect(audit.map((a) => a.action)).toEqual(['target.create', 'target.adopt']);
    expect(audit[0]!.actor).toBe('token:automation');
  });

  it('lets an auditor read and test the connection, and nothing else', async () => {
    expect((await api('/targets', { token: auditor })).status).toBe(200);
    expect((await api('/targets/jira-prod/test', { method: 'POST', token: auditor })).body).toMatchObject({ ok: true });
    expect((await api('/targets/jira-prod', { method: 'PATCH', body: { paused: true }, token: auditor })).status).toBe(403);
    expect((await api('/targets/jira-prod/comparisons', { method: 'POST', body: { mode: 'fix' }, token: auditor })).status).toBe(403);
    expect((await api('/targets', { method: 'POST', body: { name: 'x', kind: 'jira', settings: {} }, token: auditor })).status).toBe(403);
  });

  it('pauses and resumes, audited; a paused target receives nothing', async () => {
    expect((await api('/targets/jira-prod', { method: 'PATCH', body: { paused: true } })).body.paused).toBe(true);
    const res = await server.scim('/Users', { method: 'POST', body: { userName: 'dee@example.com', emails: [{ value: 'dee@example.com' }], active: true } });
    expect(res.status).toBe(201);
    await until('the work queued', 10_000, async () => (await api('/targets/jira-prod')).body.backlog.pending === 1);
    expect(jira.user('dee@example.com')).toBeUndefined();
    await api('/targets/jira-prod', { method: 'PATCH', body: { paused: false } });
    await until('dee in Jira', 10_000, async () => jira.user('dee@example.com'));
    const actions = (await server.store.db.kysely.selectFrom('audit_log').select('action').where('target', '=', 'target:jira-prod').execute()).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['target.pause', 'target.resume']));
  });

  it('shows parked work with names and retries it', async () => {
    expect((await api('/targets/jira-prod/settings', { method: 'PATCH', body: { maxAttempts: 1 } })).status).toBe(200);
    jira.faults.add({ status: 404, match: '/rest/api/2/user', method: 'POST', count: 1 });
    await server.scim('/Users', { method: 'POST', body: { userName: 'eve@example.com', emails: [{ value: 'eve@example.com' }], active: true } });
    const parked = await until('a parked user', 10_000, async () => {
      const p = await api('/targets/jira-prod/parked');
      return p.body.parked.length ? p.body.parked : undefined;
    });
    expect(parked[0]).toMatchObject({ entity: 'user', name: 'eve@example.com', code: 'not-found' });
    expect((await api('/targets/jira-prod')).body.backlog.parked).toBe(1);
    // the user's page says where it is
    const eve = await api(`/users/${parked[0].id}`);
    expect(eve.body.targets).toEqual([expect.objectContaining({ targetId: 'jira-prod', state: 'parked', remoteName: null })]);
    const annId = (await server.store.db.kysely.selectFrom('directory_users').select('id').where('username', '=', 'ann@example.com').executeTakeFirstOrThrow()).id;
    expect((await api(`/users/${annId}`)).body.targets).toEqual([expect.objectContaining({ targetId: 'jira-prod', state: 'delivered', remoteName: 'ann@example.com', origin: 'adopted', active: true })]);
    const retried = await api('/targets/jira-prod/parked/retry', { method: 'POST', body: { keys: [parked[0].key] } });
    expect(retried.body).toEqual({ retried: 1 });
    await until('eve in Jira', 10_000, async () => jira.user('eve@example.com'));
    expect((await api('/targets/jira-prod/parked')).body.parked).toEqual([]);
    // the activity shows both: parked, then created
    const events = (await api('/targets/jira-prod/events?search=eve')).body.events as { action: string; detail: string }[];
    expect(events.map((e) => e.action)).toEqual(['created', 'parked']);
    expect(events[1]!.detail).toMatch(/^not-found: /);
    expect((await api('/targets/jira-prod/events?before=x')).status).toBe(400);
    expect((await api('/targets/jira-prod/parked/retry', { method: 'POST', body: { keys: 'all' } })).status).toBe(400);
  });

  it("never opens one target's secret for another", async () => {
    const other = await api('/targets', { method: 'POST', body: { id: 'jira-copy', name: 'Copy', kind: 'jira', settings: { baseUrl: jira.url, secret: 'something else' } } });
    expect(other.status).toBe(201);
    const source = await server.store.db.kysely.selectFrom('targets').select('settings').where('id', '=', 'jira-prod').executeTakeFirstOrThrow();
    await server.store.db.kysely.updateTable('targets').set({ settings: source.settings }).where('id', '=', 'jira-copy').execute();
    const test = await api('/targets/jira-copy/test', { method: 'POST' });
    expect(test.status).toBe(500);
    expect(test.body.error.code).toBe('secret_unreadable');
    expect((await api('/targets/jira-copy', { method: 'DELETE' })).status).toBe(204);
  });

  it('checks in the preview what a target would refuse', async () => {
    const c = await api('/targets', { method: 'POST', body: { id: 'wiki', name: 'Wiki', kind: 'confluence', settings: { baseUrl: confluence.url, secret: confluence.token } } });
    expect(c.status).toBe(201);
    const preview = await api(`/connectors/${server.connectorId}/preview`, { method: 'POST', body: { settings: { user: { username: { source: 'userName', transforms: [{ fn: 'upper' }] } } } } });
    if (preview.status !== 200) throw new Error(JSON.stringify(preview.body));
    const problems = preview.body.targetProblems as { targetId: string; problem: string }[];
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.targetId === 'wiki')).toBe(true);
    expect(problems[0]!.problem).toMatch(/lowercase/);
  });

  it('exports the backlog per target', async () => {
    const res = await fetch(`${server.origin}/metrics`, { headers: { authorization: `Bearer ${auditor}` } });
    const text = await res.text();
    expect(text).toMatch(/usersync_target_backlog\{target="jira-prod",kind="pending"\} 0/);
    expect(text).toMatch(/usersync_target_backlog\{target="jira-prod",kind="parked"\} 0/);
  });

  it('keeps change-feed rows a target has not taken in, however old', async () => {
    const db = server.store.db;
    await db.kysely.updateTable('change_feed').set({ at: '2000-01-01T00:00:00.000Z' }).execute();
    const max = Number((await db.kysely.selectFrom('change_feed').select((eb) => eb.fn.max('seq').as('n')).executeTakeFirstOrThrow()).n);
    await db.kysely.updateTable('targets').set({ cursor_seq: max - 2, paused: 1 }).where('id', '=', 'jira-prod').execute();
    await prune(db, { runsDays: 0, changeFeedDays: 30, auditDays: 0 });
    const left = await db.kysely.selectFrom('change_feed').select('seq').orderBy('seq').execute();
    expect(left.map((r) => Number(r.seq))).toEqual([max - 1, max]);
  });

  it('makes a scope change that takes managed users out name how many first', async () => {
    const narrow = { users: 'group-members', groups: { mode: 'only', patterns: ['no-such-group'] } };
    const first = await api('/targets/jira-prod/settings', { method: 'PATCH', body: narrow });
    expect(first.status).toBe(409);
    expect(first.body.error.code).toBe('confirm_scope_change');
    expect(first.body.error.message).toMatch(/would leave the target's scope .* deactivated/);
    const affected = first.body.error.details.affected as number;
    expect(affected).toBe(5);
    expect(first.body.error.details.leavingExamples).toContain('ann@example.com');
    expect((await api('/targets/jira-prod/settings')).body.users).toBe('all'); // nothing saved
    const wrong = await api(`/targets/jira-prod/settings?confirmLeaving=${affected - 1}`, { method: 'PATCH', body: narrow });
    expect(wrong.status).toBe(409);
    const ok = await api(`/targets/jira-prod/settings?confirmLeaving=${affected}`, { method: 'PATCH', body: narrow });
    expect(ok.status).toBe(200);
    const entry = await server.store.db.kysely.selectFrom('audit_log').select('details').where('action', '=', 'target.settings.update').orderBy('seq', 'desc').executeTakeFirstOrThrow();
    expect(JSON.parse(entry.details)).toMatchObject({ leaving: 5, reevaluated: true });
    // a change that takes nobody out needs no confirmation
    expect((await api('/targets/jira-prod/settings', { method: 'PATCH', body: { concurrency: 4 } })).status).toBe(200);
  });
});
