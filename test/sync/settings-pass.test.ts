// User and group sync settings applied by the reconciler, on both stores: what an administrator sees in
// the directory after changing a rule, previewing it, and approving what the deletion limit held.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import type { ConnectorSettings } from '../../src/domain/settings.ts';
import { settingsPatch } from '../../src/domain/settings-validate.ts';
import { DEFAULT_SETTINGS } from '../../src/domain/settings.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import type { MirrorRecord } from '../../src/store/mirror.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';

describe.each(DIALECTS)('connector settings on %s', (dialect) => {
  let store: TestStore;
  let mirror: MirrorStore;
  let reconciler: Reconciler;

  beforeEach(async () => {
    store = await openTestStore(dialect);
    await new ConnectorStore(store.db).create({ id: 'entra', name: 'Entra', kind: 'scim' }, 'test');
    mirror = new MirrorStore(store.db);
    reconciler = new Reconciler(store.db);
  });
  afterEach(async () => store.cleanup());

  const user = (userName: string, extra: Record<string, unknown> = {}) =>
    mirror.create('entra', 'User', normaliseResource(RESOURCE_TYPES.User, { userName, active: true, ...extra }).doc);
  const group = async (displayName: string, members: MirrorRecord[] = []) => {
    const g = await mirror.create('entra', 'Group', normaliseResource(RESOURCE_TYPES.Group, { displayName }).doc);
    if (members.length) await mirror.update('entra', 'Group', g.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: members.map((m) => ({ value: m.id })) }] }));
    return g;
  };
  const settings = (patch: unknown): ConnectorSettings => settingsPatch(DEFAULT_SETTINGS, patch);
  const save = async (s: ConnectorSettings) => {
    await store.db.kysely.updateTable('connectors').set({ settings: JSON.stringify(s) }).where('id', '=', 'entra').execute();
    return reconciler.fullPass('entra', 'settings-change', s);
  };
  const dirUser = (username: string) => store.db.kysely.selectFrom('directory_users').selectAll().where('username_key', '=', username.toLowerCase()).executeTakeFirst();
  const groupsOf = async (username: string) =>
    (
      await store.db.kysely
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
        .innerJoin('directory_users as u', 'u.id', 'm.user_id')
        .select(['g.name', 'm.managed_by'])
        .where('u.username_key', '=', username.toLowerCase())
        .orderBy('g.name')
        .orderBy('m.managed_by')
        .execute()
    ).map((r) => `${r.name}|${r.managed_by.split(':')[0]}`);
  const snapshot = async () => ({
    users: await store.db.kysely.selectFrom('directory_users').select(['username', 'email', 'display_name', 'active', 'attributes']).orderBy('username').execute(),
    groups: await store.db.kysely.selectFrom('directory_groups').select('name').orderBy('name').execute(),
    memberships: (
      await store.db.kysely
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
        .innerJoin('directory_users as u', 'u.id', 'm.user_id')
        .select(['g.name', 'u.username', 'm.managed_by'])
        .execute()
    )
      .map((r) => `${r.name}|${r.username}|${r.managed_by}`)
      .sort(),
  });

  it('maps attributes with transforms and stores custom attributes', async () => {
    await user('ada.lovelace@example.com', { name: { givenName: 'Ada', familyName: 'Lovelace' }, title: 'Countess', emails: [{ type: 'work', value: 'Ada@Example.com' }] });
    await save(
      settings({
        user: {
          username: { source: 'userName', transforms: [{ fn: 'regexReplace', pattern: '(.*)@.*', replacement: '$1' }, { fn: 'upper' }] },
          email: { source: 'emails[type eq "work"].value', transforms: [{ fn: 'lower' }] },
          displayName: { transforms: [{ fn: 'template', template: '${name.familyName}, ${name.givenName}' }] },
          customAttributes: [{ name: 'jobTitle', mapping: { source: 'title' } }],
        },
      }),
    );
    expect(await dirUser('ADA.LOVELACE')).toMatchObject({ username: 'ADA.LOVELACE', email: 'ada@example.com', display_name: 'Lovelace, Ada', attributes: JSON.stringify({ jobTitle: 'Countess' }) });
  });

  it('re-evaluates from the mirror when the mapping changes: the user is renamed, not duplicated', async () => {
    await user('grace@example.com');
    await reconciler.drain();
    const before = await dirUser('grace@example.com');
    await save(settings({ user: { username: { source: 'userName', transforms: [{ fn: 'regexReplace', pattern: '@.*', replacement: '' }] } } }));
    const after = await dirUser('grace');
    expect(after!.id).toBe(before!.id);
    expect((await store.db.kysely.selectFrom('directory_users').select('id').execute()).length).toBe(1);
  });

  it('leaves out users the condition filters, with each cleanup behaviour', async () => {
    await user('member@example.com', { userType: 'Member' });
    await user('guest@example.com', { userType: 'Guest' });
    await reconciler.drain();
    await save(settings({ user: { condition: 'userType eq "Member"' } }));
    expect(await dirUser('guest@example.com')).toMatchObject({ active: 0, in_scope: 0 });
    expect(await dirUser('member@example.com')).toMatchObject({ active: 1, in_scope: 1 });
    // back in scope: reactivated
    await save(settings({ user: { condition: '' } }));
    expect(await dirUser('guest@example.com')).toMatchObject({ active: 1, in_scope: 1 });
    await save(settings({ user: { condition: 'userType eq "Member"', cleanup: 'leave' } }));
    expect(await dirUser('guest@example.com')).toMatchObject({ active: 1, in_scope: 0 });
    await save(settings({ user: { condition: 'userType eq "Member"', cleanup: 'delete' } }));
    expect(await dirUser('guest@example.com')).toBeUndefined();
  });

  it('respects operations that are switched off', async () => {
    await save(settings({ user: { operations: { create: false } } }));
    await user('nobody@example.com');
    await reconciler.drain();
    expect(await dirUser('nobody@example.com')).toBeUndefined();
    const u = await user('somebody@example.com');
    await save(settings({ user: { operations: { create: true, deactivate: false, update: false } } }));
    await mirror.update('entra', 'User', u.id, (cur) => ({ doc: { ...cur.doc, active: false, displayName: 'Changed' }, memberOps: [] }));
    await reconciler.drain();
    expect(await dirUser('somebody@example.com')).toMatchObject({ active: 1, display_name: 'somebody@example.com' });
  });

  it('adopts a local user with copy behaviour, keeping its groups; never takes over without it', async () => {
    const local = await store.db.kysely
      .insertInto('directory_users')
      .values({ id: 'local-1', username: 'pat', username_key: 'pat', email: 'pat@old', display_name: 'Pat', active: 1, attributes: '{"badge":"7"}', owner_connector_id: null, source_id: null, created_at: 'x', updated_at: 'x' })
      .execute();
    expect(local).toBeTruthy();
    await store.db.kysely.insertInto('directory_groups').values({ id: 'g-local', name: 'jira-admins', name_key: 'jira-admins', owner_connector_id: null, source_id: null, created_at: 'x', updated_at: 'x' }).execute();
    await store.db.kysely.insertInto('directory_memberships').values({ group_id: 'g-local', user_id: 'local-1', managed_by: 'local', created_at: 'x' }).execute();
    await user('PAT', { displayName: 'Pat from Entra', emails: [{ type: 'work', value: 'pat@new' }] });
    await reconciler.drain();
    expect(await dirUser('pat')).toMatchObject({ owner_connector_id: null, email: 'pat@old' });
    await save(settings({ user: { copyBehaviour: true } }));
    expect(await dirUser('pat')).toMatchObject({ id: 'local-1', owner_connector_id: 'entra', email: 'pat@new', display_name: 'Pat from Entra', attributes: '{"badge":"7"}' });
    expect(await groupsOf('pat')).toEqual(['jira-admins|local']);
  });

  it('assigns default groups once and always-assigned groups on every run', async () => {
    await save(settings({ group: { defaultGroups: ['jira-software-users'], alwaysGroups: ['everyone'] } }));
    await user('dee@example.com');
    await reconciler.drain();
    expect(await groupsOf('dee@example.com')).toEqual(['everyone|always', 'jira-software-users|default']);
    // an administrator removes both; a run re-applies only the always-assigned group
    await store.db.kysely.deleteFrom('directory_memberships').execute();
    await save(settings({ group: { defaultGroups: ['jira-software-users'], alwaysGroups: ['everyone'] } }));
    expect(await groupsOf('dee@example.com')).toEqual(['everyone|always']);
    // dropping it from the settings removes what the rule gave
    await save(settings({ group: { alwaysGroups: [] } }));
    expect(await groupsOf('dee@example.com')).toEqual([]);
  });

  it('maps groups manually, merging two provider groups into one and splitting one into two', async () => {
    const a = await user('a@example.com');
    const b = await user('b@example.com');
    await group('Engineers EU', [a]);
    await group('Engineers US', [b]);
    await group('Managers', [a]);
    await save(
      settings({
        group: {
          mode: 'manual',
          manualMappings: [
            { source: 'engineers eu', targets: ['engineering'] },
            { source: 'Engineers US', targets: ['engineering'] },
            { source: 'Managers', targets: ['jira-admins', 'confluence-admins'] },
          ],
        },
      }),
    );
    expect(await groupsOf('a@example.com')).toEqual(['confluence-admins|connector', 'engineering|connector', 'jira-admins|connector']);
    expect(await groupsOf('b@example.com')).toEqual(['engineering|connector']);
    // unmapped provider groups do not reach the directory
    expect((await snapshot()).groups.map((g) => g.name)).toEqual(['confluence-admins', 'engineering', 'jira-admins']);
  });

  it('shows in the preview which provider groups a mapping merges into one application group', async () => {
    const a = await user('m1@example.com');
    await group('Engineers EU', [a]);
    await group('Engineers US', []);
    await group('Sales', []);
    const preview = await reconciler.preview(
      'entra',
      settings({ group: { mode: 'manual', manualMappings: [{ source: 'Engineers EU', targets: ['engineering'] }, { source: 'Engineers US', targets: ['Engineering'] }, { source: 'Sales', targets: ['sales'] }] } }),
    );
    expect(preview.merges).toEqual([{ group: 'engineering', sources: ['Engineers EU', 'Engineers US'] }]);
  });

  it('lets two connectors feed one group without undoing each other', async () => {
    await new ConnectorStore(store.db).create({ id: 'okta', name: 'Okta', kind: 'scim' }, 'test');
    const fromEntra = await user('e@example.com');
    const fromOkta = await mirror.create('okta', 'User', normaliseResource(RESOURCE_TYPES.User, { userName: 'o@example.com' }).doc);
    const entraGroup = await group('shared', [fromEntra]);
    const oktaGroup = await mirror.create('okta', 'Group', normaliseResource(RESOURCE_TYPES.Group, { displayName: 'Shared' }).doc);
    await mirror.update('okta', 'Group', oktaGroup.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: [{ value: fromOkta.id }] }] }));
    await reconciler.drain();
    expect(await groupsOf('e@example.com')).toEqual(['shared|connector']);
    expect(await groupsOf('o@example.com')).toEqual(['shared|connector']);
    // Entra empties its group and re-evaluates everything: Okta's member stays
    await mirror.update('entra', 'Group', entraGroup.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'removeAll' }] }));
    await reconciler.drain();
    await reconciler.fullPass('entra', 'manual');
    expect(await groupsOf('e@example.com')).toEqual([]);
    expect(await groupsOf('o@example.com')).toEqual(['shared|connector']);
    const okta = await store.db.kysely.selectFrom('directory_memberships').select('managed_by').execute();
    expect(okta.map((m) => m.managed_by)).toEqual(['connector:okta']);
  });

  it('filters groups: only-assign, then never-assign; never removes from protected groups', async () => {
    const u = await user('f@example.com');
    await group('jira-users', [u]);
    await group('jira-administrators', [u]);
    const c = await group('confluence-users', [u]);
    await save(settings({ group: { onlyAssign: ['jira-.*', 'confluence-.*'], neverAssign: ['.*-administrators'], neverRemove: ['confluence-.*'] } }));
    expect(await groupsOf('f@example.com')).toEqual(['confluence-users|connector', 'jira-users|connector']);
    await mirror.update('entra', 'Group', c.id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'removeAll' }] }));
    await reconciler.drain();
    expect(await groupsOf('f@example.com')).toEqual(['confluence-users|connector', 'jira-users|connector']);
  });

  it('removes local memberships only when the provider is the source of truth', async () => {
    const u = await user('t@example.com');
    await group('from-entra', [u]);
    await reconciler.drain();
    const d = await dirUser('t@example.com');
    for (const name of ['manual-extra', 'protected']) {
      await store.db.kysely.insertInto('directory_groups').values({ id: name, name, name_key: name, owner_connector_id: null, source_id: null, created_at: 'x', updated_at: 'x' }).execute();
      await store.db.kysely.insertInto('directory_memberships').values({ group_id: name, user_id: d!.id, managed_by: 'local', created_at: 'x' }).execute();
    }
    await save(settings({ group: { membershipAuthority: 'keepUnmanaged' } }));
    expect(await groupsOf('t@example.com')).toEqual(['from-entra|connector', 'manual-extra|local', 'protected|local']);
    await save(settings({ group: { membershipAuthority: 'sourceOfTruth', neverRemove: ['protected'] } }));
    expect(await groupsOf('t@example.com')).toEqual(['from-entra|connector', 'protected|local']);
  });

  it('holds users a licence group has no seat for, and previews seats before and after', async () => {
    const users = [];
    for (let i = 0; i < 5; i++) users.push(await user(`seat-${i}@example.com`));
    await group('jira-software-users', users);
    const s = settings({ group: { licences: [{ group: 'jira-software-users', seats: 3 }] } });
    const preview = await reconciler.preview('entra', s);
    expect(preview.seats).toEqual([{ group: 'jira-software-users', seats: 3, before: 0, after: 3 }]);
    const run = await save(s);
    expect(run.counters.seatsHeld).toBe(2);
    const members = (await snapshot()).memberships.filter((m) => m.startsWith('jira-software-users|'));
    expect(members).toHaveLength(3);
    expect(run.log.some((l) => l.message.includes("licence group 'jira-software-users' is full (3 seats): 2 users not added"))).toBe(true);
  });

  it('holds deactivations above the deletion limit until an administrator approves them', async () => {
    for (let i = 0; i < 10; i++) await user(`dl-${i}@example.com`, { department: i < 4 ? 'Sales' : 'Engineering' });
    await save(settings({ safety: { deletionLimit: { count: 3, percent: null } } }));
    // a rule change that would deactivate 4 of 10 users
    const run = await save(settings({ user: { condition: 'not (userName sw "dl-0" or userName sw "dl-1" or userName sw "dl-2" or userName sw "dl-3")' }, safety: { deletionLimit: { count: 3, percent: null } } }));
    expect(run.status).toBe('held');
    expect(run.held).toHaveLength(4);
    expect((await store.db.kysely.selectFrom('directory_users').select('id').where('active', '=', 0).execute()).length).toBe(0);
    const approved = await reconciler.approve(run.runId, 'admin');
    expect(approved).toEqual({ applied: 4, skipped: 0 });
    expect((await store.db.kysely.selectFrom('directory_users').select('username').where('active', '=', 0).orderBy('username').execute()).map((u) => u.username)).toEqual([
      'dl-0@example.com',
      'dl-1@example.com',
      'dl-2@example.com',
      'dl-3@example.com',
    ]);
    const status = await store.db.kysely.selectFrom('runs').select('status').where('id', '=', run.runId).executeTakeFirst();
    expect(status!.status).toBe('succeeded');
    await expect(reconciler.approve(run.runId, 'admin')).rejects.toThrow(/no held changes/);
  });

  it('holds SCIM push deletions above the limit for the rest of the push window; the SCIM side is unaffected', async () => {
    await store.db.kysely.updateTable('connectors').set({ settings: JSON.stringify(settings({ safety: { deletionLimit: { count: 2, percent: null } } })) }).where('id', '=', 'entra').execute();
    const users = [];
    for (let i = 0; i < 6; i++) users.push(await user(`push-${i}@example.com`));
    await reconciler.drain();
    await mirror.delete('entra', 'User', users[0]!.id);
    await reconciler.drain();
    expect(await dirUser('push-0@example.com')).toMatchObject({ active: 0 });
    for (const u of users.slice(1, 4)) await mirror.delete('entra', 'User', u.id);
    await reconciler.drain();
    // 1 + 3 > 2: the three are held, and so is anything later in the same window
    await mirror.delete('entra', 'User', users[4]!.id);
    await reconciler.drain();
    const active = (await store.db.kysely.selectFrom('directory_users').select('username').where('active', '=', 1).orderBy('username').execute()).map((u) => u.username);
    expect(active).toEqual(['push-1@example.com', 'push-2@example.com', 'push-3@example.com', 'push-4@example.com', 'push-5@example.com']);
    expect(await mirror.get('entra', 'User', users[1]!.id)).toBeUndefined();
    const held = await store.db.kysely.selectFrom('held_changes').select(['run_id', 'op']).execute();
    expect(held).toHaveLength(4);
    const quick = new Reconciler(store.db, { quietPeriodMs: 0 });
    await new Promise((r) => setTimeout(r, 5));
    await quick.runs.closeQuiet();
    const run = await store.db.kysely.selectFrom('runs').select(['status']).where('id', '=', held[0]!.run_id).executeTakeFirst();
    expect(run!.status).toBe('held');
    expect(await quick.approve(held[0]!.run_id, 'admin')).toEqual({ applied: 4, skipped: 0 });
  });

  it('lets a rejected hold stand and applies removals within a percentage limit', async () => {
    for (let i = 0; i < 10; i++) await user(`pl-${i}@example.com`);
    await reconciler.drain();
    const run = await save(settings({ user: { condition: 'userName sw "pl-9"' }, safety: { deletionLimit: { count: null, percent: 50 } } }));
    expect(run.status).toBe('held'); // 9 of 10 is over 50 %
    expect(await reconciler.reject(run.runId, 'admin')).toEqual({ rejected: 9 });
    expect((await store.db.kysely.selectFrom('directory_users').select('id').where('active', '=', 0).execute()).length).toBe(0);
    const small = await save(settings({ user: { condition: 'not (userName eq "pl-0@example.com")' }, safety: { deletionLimit: { count: null, percent: 50 } } }));
    expect(small.status).toBe('succeeded');
    expect(small.counters.deactivated).toBe(1);
  });

  it('previews exactly what the run then does, and the preview changes nothing', async () => {
    const users = [];
    for (let i = 0; i < 6; i++) users.push(await user(`pv-${i}@example.com`, { title: i % 2 ? 'Engineer' : 'Manager' }));
    await group('Everyone', users);
    await group('Engineers', users.filter((_, i) => i % 2));
    await reconciler.drain();
    const before = await snapshot();
    const candidate = settings({
      user: { condition: 'title eq "Engineer"', displayName: { transforms: [{ fn: 'template', template: '${title}: ${userName}' }] } },
      group: { alwaysGroups: ['all-staff'], neverAssign: ['Everyone'] },
    });
    const preview = await reconciler.preview('entra', candidate);
    expect(await snapshot()).toEqual(before);
    expect((await store.db.kysely.selectFrom('runs').select('id').where('trigger', '=', 'preview').execute()).length).toBe(0);
    const run = await save(candidate);
    const shape = (r: typeof run) => r.changes.map((c) => `${c.entity}:${c.op}:${JSON.stringify((c.data as { username?: string; name?: string }).username ?? (c.data as { name?: string }).name ?? '')}`).sort();
    expect(preview.changes.length).toBeGreaterThan(0);
    expect(shape(preview)).toEqual(shape(run));
    expect(preview.counters).toEqual(run.counters);
  });

  it('writes nothing when a full pass finds nothing to change', async () => {
    const users = [];
    for (let i = 0; i < 4; i++) users.push(await user(`nc-${i}@example.com`));
    await group('Stable', users);
    await save(settings({ group: { alwaysGroups: ['all'] } }));
    const feed = (await store.db.kysely.selectFrom('change_feed').select('seq').execute()).length;
    const run = await reconciler.fullPass('entra', 'manual');
    expect(run.changes).toEqual([]);
    expect((await store.db.kysely.selectFrom('change_feed').select('seq').execute()).length).toBe(feed);
  });
});
