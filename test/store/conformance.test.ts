// The store conformance suite: the same behaviour on SQLite and on PostgreSQL.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { parseQuery } from '../../src/domain/scim/query.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import { openStore } from '../../src/store/db.ts';
import { ConnectorStore, hashToken, tokenMatches } from '../../src/store/connectors.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { acquireLease, releaseLease } from '../../src/sync/lease.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, dropSchema, openTestStore, PG_URL, uniqueName } from '../support/store.ts';

const user = (userName: string, extra: Record<string, unknown> = {}) =>
  normaliseResource(RESOURCE_TYPES.User, { userName, active: true, ...extra }).doc;
const group = (displayName: string) => normaliseResource(RESOURCE_TYPES.Group, { displayName }).doc;

describe.each(DIALECTS)('store conformance on %s', (dialect) => {
  let store: TestStore;
  let connectors: ConnectorStore;
  let mirror: MirrorStore;

  beforeAll(async () => {
    store = await openTestStore(dialect);
    connectors = new ConnectorStore(store.db);
    mirror = new MirrorStore(store.db);
    await connectors.create({ id: 'c1', name: 'First', kind: 'scim' }, 'test');
    await connectors.create({ id: 'c2', name: 'Second', kind: 'scim' }, 'test');
  });
  afterAll(async () => store.cleanup());

  it('applies migrations once: opening the same store again changes nothing', async () => {
    const again = await openStore({ url: store.url, ...(store.pgSchema ? { pgSchema: store.pgSchema } : {}) });
    try {
      const list = await new ConnectorStore(again).list();
      expect(list.map((c) => c.id)).toEqual(['c1', 'c2']);
    } finally {
      await again.close();
    }
  });

  it('stores tokens only as SHA-256 hashes, checks them, and revokes them', async () => {
    const { token, info } = await connectors.createToken('c1', 'rotation', 'test');
    expect(token).toMatch(/^usy_[A-Za-z0-9_-]{43}$/);
    const rows = await store.db.kysely.selectFrom('scim_tokens').selectAll().where('id', '=', info.id).execute();
    expect(rows[0]!.token_hash).toBe(hashToken(token).toString('hex'));
    expect(JSON.stringify(rows)).not.toContain(token);
    const creds = await connectors.credentials('c1');
    expect(tokenMatches(token, creds!.hashes)).toBe(true);
    expect(tokenMatches(token + 'x', creds!.hashes)).toBe(false);
    expect(tokenMatches(token, (await connectors.credentials('c2'))!.hashes)).toBe(false);
    expect(await connectors.revokeToken('c1', info.id, 'test')).toBe(true);
    expect(tokenMatches(token, (await connectors.credentials('c1'))!.hashes)).toBe(false);
    expect(await connectors.revokeToken('c1', info.id, 'test')).toBe(false);
    expect(await connectors.credentials('nope')).toBeUndefined();
  });

  it('writes an audit entry for every connector and token change', async () => {
    const rows = await store.db.kysely.selectFrom('audit_log').select(['actor', 'action', 'target']).execute();
    expect(rows).toEqual(
      expect.arrayContaining([
        { actor: 'test', action: 'connector.create', target: 'c1' },
        { actor: 'test', action: 'token.create', target: 'c1' },
        { actor: 'test', action: 'token.revoke', target: 'c1' },
      ]),
    );
  });

  it('keeps userName unique per connector regardless of case, but not across connectors', async () => {
    await mirror.create('c1', 'User', user('Alice@Example.com'));
    await expect(mirror.create('c1', 'User', user('alice@example.COM'))).rejects.toMatchObject({ status: 409, scimType: 'uniqueness' });
    await expect(mirror.create('c2', 'User', user('alice@example.com'))).resolves.toBeTruthy();
    await mirror.create('c1', 'Group', group('Engineering'));
    await expect(mirror.create('c1', 'Group', group('ENGINEERING'))).rejects.toMatchObject({ status: 409 });
  });

  it('marks every mirror write dirty in the same transaction', async () => {
    const before = await store.db.kysely.selectFrom('dirty_marks').select('seq').execute();
    const u = await mirror.create('c1', 'User', user('bob'));
    await mirror.update('c1', 'User', u.id, (cur) => ({ doc: { ...cur.doc, displayName: 'Bob' }, memberOps: [] }));
    const after = await store.db.kysely.selectFrom('dirty_marks').select(['kind', 'ref']).where('ref', '=', u.id).execute();
    expect(after).toEqual([
      { kind: 'user', ref: u.id },
      { kind: 'user', ref: u.id },
    ]);
    expect((await store.db.kysely.selectFrom('dirty_marks').select('seq').execute()).length).toBe(before.length + 2);
  });

  it('applies membership deltas as set operations: idempotent adds and removes, unknown members refused', async () => {
    const g = await mirror.create('c1', 'Group', group('Set ops'));
    const a = await mirror.create('c1', 'User', user('set-a'));
    const b = await mirror.create('c1', 'User', user('set-b'));
    const add = (ids: string[]) =>
      mirror.update('c1', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: ids.map((value) => ({ value })) }] }));
    await add([a.id]);
    await add([a.id, b.id]);
    await add([a.id]);
    let members = (await mirror.members('c1', [g.id])).get(g.id)!;
    expect(members.map((m) => m.memberId).sort()).toEqual([a.id, b.id].sort());
    await mirror.update('c1', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'remove', ids: ['not-a-member', a.id] }] }));
    members = (await mirror.members('c1', [g.id])).get(g.id)!;
    expect(members.map((m) => m.memberId)).toEqual([b.id]);
    await expect(add(['no-such-user'])).rejects.toMatchObject({ status: 400, scimType: 'invalidValue' });
    // the refused request changed nothing
    expect((await mirror.members('c1', [g.id])).get(g.id)!.map((m) => m.memberId)).toEqual([b.id]);
    // a user of another connector is not a member candidate here
    const other = await mirror.create('c2', 'User', user('other-connector'));
    await expect(add([other.id])).rejects.toMatchObject({ status: 400 });
  });

  it('replaces members exactly and removes a deleted user from every group', async () => {
    const g = await mirror.create('c1', 'Group', group('Replace'));
    const users = await Promise.all(['r1', 'r2', 'r3'].map((n) => mirror.create('c1', 'User', user(n))));
    await mirror.replace('c1', 'Group', g.id, g.doc, users.slice(0, 2).map((u) => ({ value: u.id })));
    await mirror.replace('c1', 'Group', g.id, g.doc, users.slice(1).map((u) => ({ value: u.id })));
    expect((await mirror.members('c1', [g.id])).get(g.id)!.map((m) => m.memberId).sort()).toEqual([users[1]!.id, users[2]!.id].sort());
    await mirror.delete('c1', 'User', users[1]!.id);
    expect((await mirror.members('c1', [g.id])).get(g.id)!.map((m) => m.memberId)).toEqual([users[2]!.id]);
    await expect(mirror.get('c1', 'User', users[1]!.id)).resolves.toBeUndefined();
    await expect(mirror.delete('c1', 'User', users[1]!.id)).rejects.toMatchObject({ status: 404 });
  });

  it('keeps the e-mail lookup index in step with the user document', async () => {
    const byEmail = async (v: string) =>
      (await mirror.list('c1', 'User', parseQuery(RESOURCE_TYPES.User, `emails[type eq "work"].value eq "${v}"`), 1, 10)).records.map((r) => r.doc.userName);
    const u = await mirror.create('c1', 'User', user('mailer', { emails: [{ type: 'work', value: 'First@Example.com' }] }));
    expect(await byEmail('first@example.COM')).toEqual(['mailer']);
    await mirror.update('c1', 'User', u.id, (cur) => ({ doc: { ...cur.doc, emails: [{ type: 'work', value: 'second@example.com' }] }, memberOps: [] }));
    expect(await byEmail('first@example.com')).toEqual([]);
    expect(await byEmail('second@example.com')).toEqual(['mailer']);
    // the index only narrows: the type must still match
    await mirror.update('c1', 'User', u.id, (cur) => ({ doc: { ...cur.doc, emails: [{ type: 'home', value: 'second@example.com' }] }, memberOps: [] }));
    expect(await byEmail('second@example.com')).toEqual([]);
    await mirror.delete('c1', 'User', u.id);
    expect(await store.db.kysely.selectFrom('mirror_user_emails').select('user_id').where('user_id', '=', u.id).execute()).toEqual([]);
  });

  it('deleting a connector removes its mirror and tokens but not the other connector', async () => {
    await connectors.create({ id: 'gone', name: 'Gone', kind: 'scim' }, 'test');
    await connectors.createToken('gone', '', 'test');
    await mirror.create('gone', 'User', user('temp'));
    expect(await connectors.delete('gone', 'test')).toBe(true);
    expect(await store.db.kysely.selectFrom('mirror_users').select('id').where('connector_id', '=', 'gone').execute()).toEqual([]);
    expect(await store.db.kysely.selectFrom('scim_tokens').select('id').where('connector_id', '=', 'gone').execute()).toEqual([]);
    expect((await store.db.kysely.selectFrom('mirror_users').select('id').where('connector_id', '=', 'c2').execute()).length).toBeGreaterThan(0);
  });

  it('gives a lease to one holder at a time and lets another take it once expired', async () => {
    expect(await acquireLease(store.db, 'l1', 'a', 60_000)).toBe(true);
    expect(await acquireLease(store.db, 'l1', 'b', 60_000)).toBe(false);
    expect(await acquireLease(store.db, 'l1', 'a', 60_000)).toBe(true);
    await releaseLease(store.db, 'l1', 'a');
    expect(await acquireLease(store.db, 'l1', 'b', 1)).toBe(true);
    await new Promise((r) => setTimeout(r, 10));
    expect(await acquireLease(store.db, 'l1', 'a', 60_000)).toBe(true);
  });
});

describe('PostgreSQL migrations under concurrency', () => {
  it('lets several instances start on a new schema at once', async () => {
    const schema = uniqueName('mig').toLowerCase();
    try {
      const stores = await Promise.all([1, 2, 3, 4].map(() => openStore({ url: PG_URL, pgSchema: schema, pgPoolSize: 2 })));
      const ids = await Promise.all(stores.map((s, i) => new ConnectorStore(s).create({ id: `i${i}`, name: `instance ${i}`, kind: 'scim' }, 'test')));
      expect(ids).toHaveLength(4);
      expect((await new ConnectorStore(stores[0]!).list()).length).toBe(4);
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await dropSchema(schema);
    }
  });
});
