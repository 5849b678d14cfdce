// The reconciler with the default rules, on both stores: the mirror becomes the directory, each change
// with its change-feed entry, and a second pass with nothing new writes nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import type { MirrorRecord } from '../../src/store/mirror.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';

const userDoc = (body: Record<string, unknown>) => normaliseResource(RESOURCE_TYPES.User, body).doc;
const groupDoc = (displayName: string) => normaliseResource(RESOURCE_TYPES.Group, { displayName }).doc;

describe.each(DIALECTS)('reconciler on %s', (dialect) => {
  let store: TestStore;
  let mirror: MirrorStore;
  let reconciler: Reconciler;

  const directoryUser = (username: string) =>
    store.db.kysely.selectFrom('directory_users').selectAll().where('username_key', '=', username.toLowerCase()).executeTakeFirst();
  const feedCount = async () => (await store.db.kysely.selectFrom('change_feed').select('seq').execute()).length;
  const membershipsOf = async (userId: string) =>
    (
      await store.db.kysely
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
        .select(['g.name', 'm.managed_by'])
        .where('m.user_id', '=', userId)
        .orderBy('g.name')
        .execute()
    ).map((r) => `${r.name}|${r.managed_by}`);

  beforeAll(async () => {
    store = await openTestStore(dialect);
    const connectors = new ConnectorStore(store.db);
    await connectors.create({ id: 'entra', name: 'Entra', kind: 'scim' }, 'test');
    await connectors.create({ id: 'other', name: 'Other', kind: 'scim' }, 'test');
    mirror = new MirrorStore(store.db);
    reconciler = new Reconciler(store.db, { batchSize: 7 });
  });
  afterAll(async () => store.cleanup());

  it('creates directory users with the default rules', async () => {
    await mirror.create(
      'entra',
      'User',
      userDoc({
        userName: 'ada@example.com',
        name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
        emails: [
          { type: 'home', value: 'ada@home.example' },
          { type: 'work', value: 'ada@example.com', primary: true },
        ],
        active: 'True',
      }),
    );
    await mirror.create('entra', 'User', userDoc({ userName: 'grace', displayName: 'Grace Hopper', active: false }));
    await reconciler.drain();
    expect(await directoryUser('ada@example.com')).toMatchObject({
      username: 'ada@example.com',
      email: 'ada@example.com',
      display_name: 'Ada Lovelace',
      active: 1,
      owner_connector_id: 'entra',
    });
    expect(await directoryUser('grace')).toMatchObject({ display_name: 'Grace Hopper', active: 0, email: null });
  });

  it('links by the provider id: a rename renames, and deactivation keeps memberships', async () => {
    const u = await mirror.create('entra', 'User', userDoc({ userName: 'old.name', displayName: 'Renamed Person' }));
    const g = await mirror.create('entra', 'Group', groupDoc('Staff'));
    await mirror.update('entra', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: [{ value: u.id }] }] }));
    await reconciler.drain();
    const before = await directoryUser('old.name');
    expect(await membershipsOf(before!.id)).toEqual(['Staff|connector:entra']);

    await mirror.update('entra', 'User', u.id, (cur) => ({ doc: { ...cur.doc, userName: 'new.name', active: false }, memberOps: [] }));
    await reconciler.drain();
    expect(await directoryUser('old.name')).toBeUndefined();
    const after = await directoryUser('new.name');
    expect(after!.id).toBe(before!.id);
    expect(after!.active).toBe(0);
    expect(await membershipsOf(after!.id)).toEqual(['Staff|connector:entra']);

    const feed = await store.db.kysely.selectFrom('change_feed').select(['op', 'data']).where('entity_id', '=', after!.id).orderBy('seq').execute();
    // the rename is applied at once; the deactivation goes through the deletion limit as its own change
    expect(feed.map((f) => f.op)).toEqual(['create', 'update', 'deactivate']);
    expect(JSON.parse(feed[1]!.data).changes.username).toEqual({ from: 'old.name', to: 'new.name' });
    expect(JSON.parse(feed[2]!.data)).toEqual({ username: 'new.name', reason: 'disabled in the identity provider' });
  });

  it('deactivates a user deleted in the provider and keeps the memberships', async () => {
    const u = await mirror.create('entra', 'User', userDoc({ userName: 'leaver' }));
    const g = await mirror.create('entra', 'Group', groupDoc('Leavers group'));
    await mirror.update('entra', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: [{ value: u.id }] }] }));
    await reconciler.drain();
    await mirror.delete('entra', 'User', u.id);
    await reconciler.drain();
    const d = await directoryUser('leaver');
    expect(d!.active).toBe(0);
    expect(await membershipsOf(d!.id)).toEqual(['Leavers group|connector:entra']);
  });

  it('adds and removes memberships, picks up members that arrived before the user was reconciled', async () => {
    const g = await mirror.create('entra', 'Group', groupDoc('Early'));
    const users: MirrorRecord[] = [];
    for (let i = 0; i < 12; i++) users.push(await mirror.create('entra', 'User', userDoc({ userName: `early-${i}` })));
    await mirror.update('entra', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: users.map((u) => ({ value: u.id })) }] }));
    await mirror.update('entra', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'remove', ids: [users[0]!.id, users[1]!.id] }] }));
    await reconciler.drain();
    const rows = await store.db.kysely
      .selectFrom('directory_memberships as m')
      .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
      .innerJoin('directory_users as u', 'u.id', 'm.user_id')
      .select('u.username')
      .where('g.name', '=', 'Early')
      .execute();
    expect(rows.map((r) => r.username).sort()).toEqual(users.slice(2).map((_, i) => `early-${i + 2}`).sort());
  });

  it('renames the directory group when the provider renames its group', async () => {
    const g = await mirror.create('entra', 'Group', groupDoc('Before rename'));
    await reconciler.drain();
    const before = await store.db.kysely.selectFrom('directory_groups').selectAll().where('name', '=', 'Before rename').executeTakeFirstOrThrow();
    await mirror.update('entra', 'Group', g.id, (cur) => ({ doc: { ...cur.doc, displayName: 'After rename' }, memberOps: [] }));
    await reconciler.drain();
    const after = await store.db.kysely.selectFrom('directory_groups').selectAll().where('id', '=', before.id).executeTakeFirstOrThrow();
    expect(after.name).toBe('After rename');
    const feed = await store.db.kysely.selectFrom('change_feed').select(['op', 'data']).where('entity_id', '=', before.id).orderBy('seq').execute();
    expect(feed.map((f) => f.op)).toEqual(['create', 'rename']);
  });

  it('reports a username held by a local user or another connector instead of overwriting it', async () => {
    await store.db.kysely
      .insertInto('directory_users')
      .values({
        id: 'local-1',
        username: 'admin',
        username_key: 'admin',
        email: 'admin@local',
        display_name: 'Local admin',
        active: 1,
        attributes: '{}',
        owner_connector_id: null,
        source_id: null,
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
      })
      .execute();
    await mirror.create('entra', 'User', userDoc({ userName: 'ADMIN', displayName: 'Entra admin' }));
    await mirror.create('other', 'User', userDoc({ userName: 'ada@example.com', displayName: 'Impostor' }));
    await reconciler.drain();
    expect(await directoryUser('admin')).toMatchObject({ id: 'local-1', display_name: 'Local admin', owner_connector_id: null });
    expect(await directoryUser('ada@example.com')).toMatchObject({ owner_connector_id: 'entra', display_name: 'Ada Lovelace' });
    const warnings = await store.db.kysely.selectFrom('run_logs').select('message').where('level', '=', 'warn').execute();
    expect(warnings.map((w) => w.message)).toEqual(
      expect.arrayContaining([expect.stringContaining("'ADMIN' is already held by a local user"), expect.stringContaining("'ada@example.com' is already held by connector entra")]),
    );
  });

  it('writes nothing when nothing changed', async () => {
    await reconciler.drain();
    const feed = await feedCount();
    const all = await store.db.kysely.selectFrom('mirror_users').select('id').where('connector_id', '=', 'entra').execute();
    // re-mark everything: the pass must find no difference
    await store.db.kysely
      .insertInto('dirty_marks')
      .values(all.map((u) => ({ connector_id: 'entra', kind: 'user' as const, ref: u.id, ref2: '' })))
      .execute();
    expect(await reconciler.drain()).toBe(all.length);
    expect(await feedCount()).toBe(feed);
  });

  it("keeps reconciling other connectors when one connector's batch fails, and keeps the failed marks", async () => {
    const broken = await mirror.create('entra', 'User', userDoc({ userName: 'broken-record' }));
    await store.db.kysely.updateTable('mirror_users').set({ resource: 'not json' }).where('id', '=', broken.id).execute();
    await mirror.create('other', 'User', userDoc({ userName: 'healthy@other' }));
    const errors: string[] = [];
    // same lease holder as the suite's reconciler, a log of its own
    const r = new Reconciler(store.db, { holder: reconciler.holder, log: (level, msg) => level === 'error' && errors.push(msg) });
    await r.drain();
    expect(await directoryUser('healthy@other')).toMatchObject({ owner_connector_id: 'other' });
    expect(await directoryUser('broken-record')).toBeUndefined();
    const left = await store.db.kysely.selectFrom('dirty_marks').select(['connector_id', 'ref']).execute();
    expect(left).toEqual([{ connector_id: 'entra', ref: broken.id }]);
    expect(errors[0]).toMatch(/reconciling connector entra failed; its changes stay queued/);
    // repaired, the marks go through
    await store.db.kysely.updateTable('mirror_users').set({ resource: JSON.stringify(userDoc({ userName: 'broken-record' })) }).where('id', '=', broken.id).execute();
    // the failing connector rests in the instance that saw it fail; a fresh one takes it at once
    expect(await r.drain()).toBe(0);
    await new Reconciler(store.db, { holder: reconciler.holder }).drain();
    expect(await directoryUser('broken-record')).toMatchObject({ owner_connector_id: 'entra' });
  });

  it('records the SCIM push as a run with counters', async () => {
    const runs = await store.db.kysely.selectFrom('runs').selectAll().where('connector_id', '=', 'entra').execute();
    expect(runs).toHaveLength(1);
    const counters = JSON.parse(runs[0]!.counters);
    expect(counters.created).toBeGreaterThanOrEqual(5);
    expect(counters.membershipsAdded).toBeGreaterThanOrEqual(12);
    // the local 'admin' conflict is reported on every evaluation of that user
    expect(counters.conflicts).toBeGreaterThanOrEqual(1);
    expect(Number(runs[0]!.peak_rss)).toBeGreaterThan(0);
  });
});
