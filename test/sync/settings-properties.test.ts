// Invariants of the rules as the reconciler applies them, over generated mirrors and settings:
// a preview's plan is what the run then does; a second run changes nothing; a never-assigned group gets no
// member from the connector; a never-remove group keeps its members when the provider drops them.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wholeNameRegex } from '../../src/domain/rules.ts';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import { DEFAULT_SETTINGS } from '../../src/domain/settings.ts';
import { settingsPatch } from '../../src/domain/settings-validate.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import type { TestStore } from '../support/store.ts';
import { openTestStore } from '../support/store.ts';

const GROUP_NAMES = ['jira-users', 'jira-admins', 'confluence-users', 'bitbucket-users', 'staff'];
const TITLES = ['Engineer', 'Manager', 'Contractor'];

const world = fc.record({
  users: fc.array(fc.record({ title: fc.constantFrom(...TITLES), active: fc.boolean(), groups: fc.subarray(GROUP_NAMES) }), { minLength: 1, maxLength: 12 }),
  condition: fc.constantFrom('', 'title ne "Contractor"', 'title eq "Engineer"', 'active eq true'),
  neverAssign: fc.subarray(['jira-admins', 'bitbucket-.*']),
  neverRemove: fc.subarray(['confluence-.*', 'staff']),
  alwaysGroups: fc.subarray(['everyone']),
  cleanup: fc.constantFrom('deactivate', 'delete', 'leave'),
  dropAll: fc.boolean(),
});

describe('rule invariants over generated mirrors (SQLite)', () => {
  let store: TestStore;
  let n = 0;
  beforeAll(async () => {
    store = await openTestStore('sqlite');
  });
  afterAll(async () => store.cleanup());

  it('preview equals the run, the run is idempotent, never-assign and never-remove hold', async () => {
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        // each case gets a connector of its own, so cases do not see each other's directory
        const connector = `c${n++}`;
        await new ConnectorStore(store.db).create({ id: connector, name: connector, kind: 'scim' }, 'test');
        const mirror = new MirrorStore(store.db);
        const reconciler = new Reconciler(store.db, { holder: 'props' });
        const groups = new Map<string, string>();
        for (const name of GROUP_NAMES) groups.set(name, (await mirror.create(connector, 'Group', normaliseResource(RESOURCE_TYPES.Group, { displayName: `${connector}-${name}` }).doc)).id);
        for (const [i, u] of w.users.entries()) {
          const rec = await mirror.create(connector, 'User', normaliseResource(RESOURCE_TYPES.User, { userName: `${connector}-u${i}`, title: u.title, active: u.active }).doc);
          for (const g of u.groups) await mirror.update(connector, 'Group', groups.get(g)!, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'add', members: [{ value: rec.id }] }] }));
        }
        await store.db.kysely.deleteFrom('dirty_marks').where('connector_id', '=', connector).execute();
        const prefix = (r: string) => `${connector}-${r}`;
        const settings = settingsPatch(DEFAULT_SETTINGS, {
          user: { condition: w.condition, cleanup: w.cleanup },
          group: { neverAssign: w.neverAssign.map(prefix), neverRemove: w.neverRemove.map(prefix), alwaysGroups: w.alwaysGroups.map(prefix) },
        });

        // stored too: the incremental reconciler (drain) reads the connector's saved settings
        await store.db.kysely.updateTable('connectors').set({ settings: JSON.stringify(settings) }).where('id', '=', connector).execute();

        const shape = (changes: { entity: string; op: string; data: unknown }[]) =>
          changes.map((c) => `${c.entity}:${c.op}:${JSON.stringify((c.data as { username?: string; name?: string }).username ?? (c.data as { name?: string }).name ?? '')}`).sort();
        const preview = await reconciler.preview(connector, settings);
        const run = await reconciler.fullPass(connector, 'settings-change', settings);
        expect(shape(preview.changes)).toEqual(shape(run.changes));
        expect(preview.counters).toEqual(run.counters);

        const again = await reconciler.fullPass(connector, 'manual', settings);
        expect(again.changes).toEqual([]);

        const memberships = await store.db.kysely
          .selectFrom('directory_memberships as m')
          .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
          .innerJoin('directory_users as u', 'u.id', 'm.user_id')
          .select(['g.name', 'u.username', 'm.managed_by'])
          .where('m.managed_by', '=', `connector:${connector}`)
          .execute();
        const never = w.neverAssign.map((r) => wholeNameRegex(prefix(r)));
        for (const m of memberships) expect(never.some((re) => re.test(m.name))).toBe(false);

        // the provider drops every membership (or just re-sends them): protected groups keep their members
        if (w.dropAll) {
          for (const id of groups.values()) await mirror.update(connector, 'Group', id, (cur) => ({ doc: cur.doc, memberOps: [{ k: 'removeAll' }] }));
        }
        await reconciler.drain();
        await reconciler.fullPass(connector, 'manual', settings);
        const after = await store.db.kysely
          .selectFrom('directory_memberships as m')
          .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
          .innerJoin('directory_users as u', 'u.id', 'm.user_id')
          .select(['g.name', 'u.username'])
          .where('m.managed_by', '=', `connector:${connector}`)
          .execute();
        const keep = w.neverRemove.map((r) => wholeNameRegex(prefix(r)));
        const kept = new Set(after.map((m) => `${m.name}|${m.username}`));
        for (const m of memberships) if (keep.some((re) => re.test(m.name))) expect(kept.has(`${m.name}|${m.username}`)).toBe(true);
        if (!w.dropAll) expect(after.length).toBe(memberships.length);
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});
