// One connector's reconciliation work inside one transaction: the rules (domain/rules.ts) applied to the
// mirror, compared with the directory, and the differences written with their change-feed entries.
// Set-oriented: a handful of queries per batch of records, so a pass over many changes stays cheap.
// Deactivations and deletions are collected rather than applied, so the caller can hold them when they
// exceed the connector's deletion limit.

import { newId } from '../store/ids.ts';
import type { Kysely } from 'kysely';
import { CompiledQuery, sql } from 'kysely';
import type { DesiredUser } from '../domain/rules.ts';
import { directoryKey, evaluateUser, groupTargets, isAssignable, isNeverRemove, licenceFor, userDiff } from '../domain/rules.ts';
import type { ScimDoc } from '../domain/scim/resource.ts';
import type { ConnectorSettings } from '../domain/settings.ts';
import { insertRows, now, placeholder } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import type { RunCounters, RunRecorder } from './runs.ts';

type Trx = Kysely<Database>;

interface DirUserRow {
  id: string;
  username: string;
  username_key: string;
  email: string | null;
  display_name: string;
  active: number | string;
  attributes: string;
  owner_connector_id: string | null;
  source_id: string | null;
  in_scope: number | string;
}

interface FeedRow {
  entity: 'user' | 'group' | 'membership';
  entity_id: string;
  op: string;
  data: string;
}

/** A deactivation or deletion waiting for the deletion-limit decision. */
export interface PendingRemoval {
  userId: string;
  username: string;
  op: 'deactivate' | 'delete';
  reason: string;
}

export function chunk<T>(list: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function asDesired(row: DirUserRow): DesiredUser {
  return {
    username: row.username,
    email: row.email,
    displayName: row.display_name,
    active: Number(row.active) === 1,
    attributes: JSON.parse(row.attributes) as Record<string, string>,
  };
}

export class ConnectorPass {
  readonly managedBy: string;
  private readonly defaultBy: string;
  private readonly alwaysBy: string;
  private readonly at = now();
  private readonly feedRows: FeedRow[] = [];
  readonly pendingRemovals: PendingRemoval[] = [];
  /** provider groups deleted in this pass, for deleteEmptyManagedGroups after memberships settle */
  private readonly deletedSources: string[] = [];
  private groupIdCache = new Map<string, string | null>();

  constructor(
    readonly trx: Trx,
    readonly connectorId: string,
    readonly settings: ConnectorSettings,
    readonly runId: string,
    readonly counters: RunCounters,
    private readonly runs: RunRecorder,
    private readonly dialect: 'sqlite' | 'postgres' = 'sqlite',
  ) {
    this.managedBy = `connector:${connectorId}`;
    this.defaultBy = `default:${connectorId}`;
    this.alwaysBy = `always:${connectorId}`;
  }

  count(name: keyof RunCounters, n = 1): void {
    if (n) this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  feed(entity: FeedRow['entity'], entityId: string, op: string, data: Record<string, unknown>): void {
    this.feedRows.push({ entity, entity_id: entityId, op, data: JSON.stringify(data) });
  }

  async flushFeed(): Promise<void> {
    await insertRows(
      this.trx,
      this.dialect,
      'change_feed',
      ['at', 'connector_id', 'run_id', 'entity', 'entity_id', 'op', 'data'],
      this.feedRows.map((f) => [this.at, this.connectorId, this.runId, f.entity, f.entity_id, f.op, f.data]),
    );
    this.feedRows.length = 0;
  }

  log(level: 'info' | 'warn' | 'error', message: string): Promise<void> {
    return this.runs.logLine(this.trx, this.runId, level, message);
  }

  // ---------------------------------------------------------------------------------------------- users

  /** Reconcile provider users by id; returns the source ids whose memberships need comparing (new, adopted, back in scope). */
  async reconcileUsers(ids: string[]): Promise<string[]> {
    const created: string[] = [];
    const { user: us } = this.settings;
    for (const part of chunk(ids)) {
      const mirror = new Map(
        (
          await this.trx.selectFrom('mirror_users').select(['id', 'resource']).where('connector_id', '=', this.connectorId).where('id', 'in', part).execute()
        ).map((r) => [r.id, JSON.parse(r.resource) as ScimDoc]),
      );
      const directory = new Map(
        (
          await this.trx.selectFrom('directory_users').selectAll().where('owner_connector_id', '=', this.connectorId).where('source_id', 'in', part).execute()
        ).map((r) => [r.source_id!, r as DirUserRow]),
      );

      const creates: { sourceId: string; desired: DesiredUser }[] = [];
      const updates: { current: DirUserRow; desired: DesiredUser }[] = [];
      const inScope: string[] = []; // directory ids of users in scope after this pass
      for (const sourceId of part) {
        const doc = mirror.get(sourceId);
        const current = directory.get(sourceId);
        const ev = doc ? evaluateUser(us, doc) : ({ inScope: false, reason: 'deleted in the identity provider' } as const);
        if (ev.inScope) {
          if (!current) creates.push({ sourceId, desired: ev.desired });
          else {
            inScope.push(current.id);
            if (Number(current.in_scope) !== 1) {
              // back in scope: its memberships are compared again
              await this.trx.updateTable('directory_users').set({ in_scope: 1 }).where('id', '=', current.id).execute();
              created.push(sourceId);
            }
            const diff = userDiff(asDesired(current), ev.desired);
            if (Object.keys(diff).length) updates.push({ current, desired: ev.desired });
          }
        } else if (current) {
          await this.cleanup(current, ev.reason);
        }
      }

      // Who holds the usernames this part wants: one query for all of them.
      const wantedKeys = [
        ...creates.map((c) => directoryKey(c.desired.username)),
        ...updates.map((u) => directoryKey(u.desired.username)).filter((k, i) => k !== updates[i]!.current.username_key),
      ];
      const holders = new Map<string, DirUserRow>();
      for (const keys of chunk([...new Set(wantedKeys)])) {
        for (const r of await this.trx.selectFrom('directory_users').selectAll().where('username_key', 'in', keys).execute()) holders.set(r.username_key, r as DirUserRow);
      }

      // Renames first, so a name given up in this batch can be taken by a user created in it.
      for (const { current, desired } of updates) await this.updateUser(current, desired, holders);

      const rows = [];
      for (const { sourceId, desired } of creates) {
        const key = directoryKey(desired.username);
        const holder = holders.get(key);
        if (holder) {
          if (holder.owner_connector_id === null && us.copyBehaviour) {
            await this.adopt(holder, sourceId, desired);
            created.push(sourceId);
            inScope.push(holder.id);
            holders.set(key, { ...holder, owner_connector_id: this.connectorId });
          } else await this.conflict(desired.username, holder);
          continue;
        }
        if (!us.operations.create) {
          this.count('skipped');
          continue;
        }
        const id = newId();
        holders.set(key, { id, owner_connector_id: this.connectorId } as DirUserRow);
        rows.push({
          id,
          username: desired.username,
          username_key: key,
          email: desired.email,
          display_name: desired.displayName,
          active: desired.active ? 1 : 0,
          attributes: JSON.stringify(desired.attributes),
          owner_connector_id: this.connectorId,
          source_id: sourceId,
          in_scope: 1,
          created_at: this.at,
          updated_at: this.at,
        });
        this.feed('user', id, 'create', { after: desired });
        created.push(sourceId);
        inScope.push(id);
      }
      const columns = ['id', 'username', 'username_key', 'email', 'display_name', 'active', 'attributes', 'owner_connector_id', 'source_id', 'in_scope', 'created_at', 'updated_at'] as const;
      await insertRows(
        this.trx,
        this.dialect,
        'directory_users',
        columns,
        rows.map((r) => columns.map((c) => r[c])),
      );
      this.count('created', rows.length);
      await this.ruleGroups(rows.map((r) => r.id), this.settings.group.defaultGroups, this.defaultBy, false);
      await this.ruleGroups(inScope, this.settings.group.alwaysGroups, this.alwaysBy, true);
      if (this.settings.group.membershipAuthority === 'sourceOfTruth') await this.removeUnmanaged(inScope);
    }
    return created;
  }

  private get updateUserSql(): string {
    const p = (n: number) => placeholder(this.dialect, n);
    return `UPDATE directory_users SET username = ${p(1)}, username_key = ${p(2)}, email = ${p(3)}, display_name = ${p(4)}, active = ${p(5)}, attributes = ${p(6)}, updated_at = ${p(7)} WHERE id = ${p(8)}`;
  }

  private async updateUser(current: DirUserRow, wanted: DesiredUser, holders: Map<string, DirUserRow>): Promise<void> {
    const ops = this.settings.user.operations;
    const before = asDesired(current);
    // Operations that are off keep the directory's value.
    const desired: DesiredUser = ops.update
      ? { ...wanted }
      : { ...before, active: wanted.active };
    if (desired.active && !before.active && !ops.activate) desired.active = false;
    const deactivate = !desired.active && before.active;
    if (deactivate) desired.active = true; // a deactivation goes through the deletion limit, below
    const key = directoryKey(desired.username);
    if (key !== current.username_key) {
      const holder = holders.get(key);
      if (holder && holder.id !== current.id) {
        await this.conflict(desired.username, holder);
        desired.username = current.username;
      } else {
        holders.delete(current.username_key);
        holders.set(key, current);
      }
    }
    if (deactivate && ops.deactivate) this.pendingRemovals.push({ userId: current.id, username: desired.username, op: 'deactivate', reason: 'disabled in the identity provider' });
    const diff = userDiff(before, desired);
    if (Object.keys(diff).length === 0) return;
    // One fixed statement (prepared once): a settings change may update every user of a connector.
    await this.trx.executeQuery(
      CompiledQuery.raw(this.updateUserSql, [
        desired.username,
        directoryKey(desired.username),
        desired.email,
        desired.displayName,
        desired.active ? 1 : 0,
        JSON.stringify(desired.attributes),
        this.at,
        current.id,
      ]),
    );
    const op = diff.active ? 'activate' : 'update';
    this.feed('user', current.id, op, { username: desired.username, changes: diff });
    this.count(op === 'activate' ? 'activated' : 'updated');
  }

  /** Copy behaviour: an existing local user becomes this connector's, keeping its groups and attributes. */
  private async adopt(local: DirUserRow, sourceId: string, desired: DesiredUser): Promise<void> {
    const before = asDesired(local);
    const next: DesiredUser = this.settings.user.operations.update
      ? { ...desired, attributes: { ...before.attributes, ...desired.attributes } }
      : before;
    await this.trx
      .updateTable('directory_users')
      .set({
        owner_connector_id: this.connectorId,
        source_id: sourceId,
        in_scope: 1,
        email: next.email,
        display_name: next.displayName,
        attributes: JSON.stringify(next.attributes),
        updated_at: this.at,
      })
      .where('id', '=', local.id)
      .execute();
    this.feed('user', local.id, 'adopt', { username: local.username, changes: userDiff(before, { ...next, username: before.username, active: before.active }) });
    this.count('adopted');
  }

  /** Out of scope (deleted, filtered by the condition, no username): the cleanup behaviour. */
  private async cleanup(current: DirUserRow, reason: string): Promise<void> {
    if (Number(current.in_scope) === 1) await this.trx.updateTable('directory_users').set({ in_scope: 0 }).where('id', '=', current.id).execute();
    const cleanup = this.settings.user.cleanup;
    if (cleanup === 'leave') return;
    if (cleanup === 'delete') {
      this.pendingRemovals.push({ userId: current.id, username: current.username, op: 'delete', reason });
      return;
    }
    if (Number(current.active) === 1 && this.settings.user.operations.deactivate) {
      this.pendingRemovals.push({ userId: current.id, username: current.username, op: 'deactivate', reason });
    }
  }

  private async conflict(username: string, holder: { owner_connector_id: string | null }): Promise<void> {
    const owner = holder.owner_connector_id ? `connector ${holder.owner_connector_id}` : 'a local user';
    await this.log('warn', `username '${username}' is already held by ${owner}; not changed`);
    this.count('conflicts');
  }

  /** Apply deactivations and deletions the deletion limit allowed. Memberships are kept on deactivation. */
  async applyRemovals(removals: PendingRemoval[]): Promise<void> {
    const deactivate = removals.filter((r) => r.op === 'deactivate');
    const remove = removals.filter((r) => r.op === 'delete');
    for (const ids of chunk(deactivate.map((d) => d.userId))) {
      await this.trx.updateTable('directory_users').set({ active: 0, updated_at: this.at }).where('id', 'in', ids).where('active', '=', 1).execute();
    }
    for (const d of deactivate) this.feed('user', d.userId, 'deactivate', { username: d.username, reason: d.reason });
    this.count('deactivated', deactivate.length);
    for (const ids of chunk(remove.map((d) => d.userId))) {
      await this.trx.deleteFrom('directory_users').where('id', 'in', ids).execute();
    }
    for (const d of remove) this.feed('user', d.userId, 'delete', { username: d.username, reason: d.reason });
    this.count('deleted', remove.length);
  }

  /** Default groups (`once`: on creation only) and always-assigned groups (re-applied for these users). */
  private async ruleGroups(userIds: string[], names: string[], managedBy: string, reapply: boolean): Promise<void> {
    if (userIds.length === 0) return;
    const groupIds: string[] = [];
    for (const name of names) {
      if (!isAssignable(this.settings.group, name)) continue;
      groupIds.push(await this.groupByName(name, true));
    }
    for (const part of chunk(userIds)) {
      const present = await this.trx
        .selectFrom('directory_memberships')
        .select(['group_id', 'user_id'])
        .where('managed_by', '=', managedBy)
        .where('user_id', 'in', part)
        .execute();
      const have = new Set(present.map((p) => `${p.group_id}|${p.user_id}`));
      const add = part.flatMap((u) => groupIds.filter((g) => !have.has(`${g}|${u}`)).map((g) => ({ group_id: g, user_id: u })));
      await this.addMemberships(add, managedBy);
      if (reapply) {
        const wanted = new Set(groupIds);
        const stale = present.filter((p) => !wanted.has(p.group_id));
        await this.removeMemberships(stale, managedBy);
      }
    }
  }

  /** Source of truth: local memberships of these users are removed, except in never-remove groups. */
  private async removeUnmanaged(userIds: string[]): Promise<void> {
    for (const part of chunk(userIds)) {
      const rows = await this.trx
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
        .select(['m.group_id', 'm.user_id', 'g.name'])
        .where('m.managed_by', '=', 'local')
        .where('m.user_id', 'in', part)
        .execute();
      await this.removeMemberships(rows.filter((r) => !isNeverRemove(this.settings.group, r.name)), 'local');
    }
  }

  private async addMemberships(rows: { group_id: string; user_id: string }[], managedBy: string): Promise<void> {
    await insertRows(
      this.trx,
      this.dialect,
      'directory_memberships',
      ['group_id', 'user_id', 'managed_by', 'created_at'],
      rows.map((r) => [r.group_id, r.user_id, managedBy, this.at]),
      true,
    );
    for (const r of rows) this.feed('membership', `${r.group_id}:${r.user_id}`, 'add', { groupId: r.group_id, userId: r.user_id, managedBy });
    this.count('membershipsAdded', rows.length);
  }

  private async removeMemberships(rows: { group_id: string; user_id: string }[], managedBy: string): Promise<void> {
    const byGroup = new Map<string, string[]>();
    for (const r of rows) {
      const list = byGroup.get(r.group_id);
      if (list) list.push(r.user_id);
      else byGroup.set(r.group_id, [r.user_id]);
    }
    for (const [groupId, users] of byGroup) {
      for (const part of chunk(users)) {
        await this.trx.deleteFrom('directory_memberships').where('group_id', '=', groupId).where('managed_by', '=', managedBy).where('user_id', 'in', part).execute();
      }
    }
    for (const r of rows) this.feed('membership', `${r.group_id}:${r.user_id}`, 'remove', { groupId: r.group_id, userId: r.user_id, managedBy });
    this.count('membershipsRemoved', rows.length);
  }

  // --------------------------------------------------------------------------------------------- groups

  /** The id of the directory group with this name (case-insensitive), created when missing and asked to. */
  async groupByName(name: string, create: boolean, owner?: string): Promise<string> {
    const key = directoryKey(name);
    const cached = this.groupIdCache.get(key);
    if (cached) return cached;
    const row = await this.trx.selectFrom('directory_groups').select('id').where('name_key', '=', key).executeTakeFirst();
    if (row) {
      this.groupIdCache.set(key, row.id);
      return row.id;
    }
    if (!create) return '';
    const id = newId();
    await this.trx
      .insertInto('directory_groups')
      .values({ id, name, name_key: key, owner_connector_id: owner ? this.connectorId : null, source_id: owner ?? null, created_at: this.at, updated_at: this.at })
      .execute();
    this.feed('group', id, 'create', { name });
    this.count('groupsCreated');
    this.groupIdCache.set(key, id);
    return id;
  }

  /** Reconcile provider groups: which directory groups each feeds. Returns those whose targets changed. */
  async reconcileGroups(ids: string[]): Promise<{ source: string; previous: string[] }[]> {
    const relinked: { source: string; previous: string[] }[] = [];
    const gs = this.settings.group;
    for (const part of chunk(ids)) {
      const mirror = new Map(
        (
          await this.trx.selectFrom('mirror_groups').select(['id', 'resource']).where('connector_id', '=', this.connectorId).where('id', 'in', part).execute()
        ).map((r) => [r.id, JSON.parse(r.resource) as ScimDoc]),
      );
      const links = new Map<string, string[]>();
      for (const l of await this.trx.selectFrom('group_links').select(['source_id', 'group_id']).where('connector_id', '=', this.connectorId).where('source_id', 'in', part).execute()) {
        links.set(l.source_id, [...(links.get(l.source_id) ?? []), l.group_id]);
      }
      const hasMembers = new Set(
        gs.createEmptyGroups
          ? []
          : (
              await this.trx.selectFrom('mirror_members').select('group_id').distinct().where('connector_id', '=', this.connectorId).where('group_id', 'in', part).execute()
            ).map((r) => r.group_id),
      );
      for (const sourceId of part) {
        const current = links.get(sourceId) ?? [];
        const doc = mirror.get(sourceId);
        if (!doc) {
          if (current.length) {
            await this.log('info', `group ${sourceId} was deleted in the identity provider; its application groups are kept`);
            this.count('groupsOrphaned');
            this.deletedSources.push(sourceId);
          }
          continue;
        }
        const { targets, excluded } = groupTargets(gs, String(doc.displayName));
        for (const x of excluded) await this.log('info', `group '${x.name}' is not assigned: ${x.reason}`);
        const create = gs.createEmptyGroups || hasMembers.has(sourceId);
        const ids: string[] = [];
        for (const name of targets) {
          const id = gs.mode === 'onTheFly' && targets.length === 1 ? await this.ownGroup(sourceId, name, create) : await this.groupByName(name, create);
          if (id) ids.push(id);
        }
        const same = ids.length === current.length && ids.every((i) => current.includes(i));
        if (!same) {
          await this.trx.deleteFrom('group_links').where('connector_id', '=', this.connectorId).where('source_id', '=', sourceId).execute();
          if (ids.length) await this.trx.insertInto('group_links').values(ids.map((group_id) => ({ connector_id: this.connectorId, source_id: sourceId, group_id }))).execute();
          relinked.push({ source: sourceId, previous: current.filter((l) => !ids.includes(l)) });
        }
      }
    }
    return relinked;
  }

  /** On-the-fly: the group this connector created for the provider group (renamed along), or one of that name. */
  private async ownGroup(sourceId: string, name: string, create: boolean): Promise<string> {
    const key = directoryKey(name);
    const owned = await this.trx
      .selectFrom('directory_groups')
      .select(['id', 'name'])
      .where('owner_connector_id', '=', this.connectorId)
      .where('source_id', '=', sourceId)
      .executeTakeFirst();
    if (owned?.name === name) return owned.id;
    const byName = await this.trx.selectFrom('directory_groups').select(['id', 'name']).where('name_key', '=', key).executeTakeFirst();
    if (owned && (!byName || byName.id === owned.id)) {
      // Recorded as one rename; targets that cannot rename groups create the new one and move members.
      await this.trx.updateTable('directory_groups').set({ name, name_key: key, updated_at: this.at }).where('id', '=', owned.id).execute();
      this.feed('group', owned.id, 'rename', { from: owned.name, to: name });
      this.count('groupsRenamed');
      this.groupIdCache.delete(directoryKey(owned.name));
      this.groupIdCache.set(key, owned.id);
      return owned.id;
    }
    if (byName) return byName.id;
    if (!create) return '';
    return this.groupByName(name, true, sourceId);
  }

  /** Delete groups this connector created whose provider group is gone and which have no members left. */
  async deleteEmptyOrphans(): Promise<void> {
    if (!this.settings.group.deleteEmptyManagedGroups || this.deletedSources.length === 0) return;
    for (const part of chunk(this.deletedSources)) {
      const groups = await this.trx
        .selectFrom('directory_groups as g')
        .select(['g.id', 'g.name'])
        .where('g.owner_connector_id', '=', this.connectorId)
        .where('g.source_id', 'in', part)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('directory_memberships as m').select('m.user_id').whereRef('m.group_id', '=', 'g.id'))))
        .execute();
      for (const g of groups) {
        await this.trx.deleteFrom('directory_groups').where('id', '=', g.id).execute();
        this.feed('group', g.id, 'delete', { name: g.name, reason: 'deleted in the identity provider and empty' });
        this.count('groupsDeleted');
      }
    }
  }

  // ---------------------------------------------------------------------------------------- memberships

  /**
   * Bring this connector's memberships of one directory group in line with the mirror: wanted when any
   * provider group linked to it has the member and the member is in scope. `members` limits the work to
   * those provider members (incremental); without it the whole group is compared (full pass).
   */
  async reconcileGroupMembers(groupId: string, members?: string[]): Promise<void> {
    const group = await this.trx.selectFrom('directory_groups').select(['id', 'name']).where('id', '=', groupId).executeTakeFirst();
    if (!group) return;
    const parts = members ? chunk(members) : [undefined];
    for (const part of parts) {
      // wanted: (provider member) → directory user, in scope, owned by this connector
      // Driven from the provider groups linked to this directory group (an IN subquery, so that neither
      // planner starts from every membership of the connector).
      let wantedQ = this.trx
        .selectFrom('mirror_members as mm')
        .innerJoin('directory_users as du', (j) => j.onRef('du.owner_connector_id', '=', 'mm.connector_id').onRef('du.source_id', '=', 'mm.member_id'))
        .select(['du.id', 'du.username', 'du.active'])
        .distinct()
        .where('mm.connector_id', '=', this.connectorId)
        .where('mm.group_id', 'in', (eb) => eb.selectFrom('group_links as gl').select('gl.source_id').where('gl.connector_id', '=', this.connectorId).where('gl.group_id', '=', groupId))
        .where('du.in_scope', '=', 1);
      if (part) wantedQ = wantedQ.where('mm.member_id', 'in', part);
      const wanted = new Map((await wantedQ.execute()).map((r) => [r.id, r]));

      let presentQ = this.trx
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_users as du', 'du.id', 'm.user_id')
        .select(['m.user_id', 'du.username', 'du.in_scope'])
        .where('m.group_id', '=', groupId)
        .where('m.managed_by', '=', this.managedBy);
      if (part) presentQ = presentQ.where('du.owner_connector_id', '=', this.connectorId).where('du.source_id', 'in', part);
      const present = await presentQ.execute();
      const have = new Set(present.map((p) => p.user_id));

      let toAdd = [...wanted.values()].filter((w) => !have.has(w.id));
      // Out-of-scope users (deleted, filtered) keep what they have; never-remove groups keep everyone.
      const toRemove = isNeverRemove(this.settings.group, group.name) ? [] : present.filter((p) => !wanted.has(p.user_id) && Number(p.in_scope) === 1);
      toAdd = await this.seatLimit(group, toAdd);
      await this.addMemberships(toAdd.map((u) => ({ group_id: groupId, user_id: u.id })), this.managedBy);
      await this.removeMemberships(toRemove.map((u) => ({ group_id: groupId, user_id: u.user_id })), this.managedBy);
    }
  }

  /**
   * Full pass: the memberships this connector manages in these directory groups compared with the mirror
   * in two set-based queries (what is missing, what is no longer wanted), instead of two per group. With
   * nothing to change both return no rows and nothing is written.
   */
  async reconcileAllMembers(groups: string[]): Promise<void> {
    if (groups.length === 0) return;
    const c = this.connectorId;
    // CROSS JOIN keeps SQLite's join order (from the links of these groups outwards); without statistics
    // it would otherwise start from every membership of the connector. PostgreSQL plans it as a join.
    const missing = await sql<{ group_id: string; user_id: string; username: string; active: number | string }>`
      SELECT DISTINCT gl.group_id, du.id AS user_id, du.username, du.active
      FROM group_links gl CROSS JOIN mirror_members mm CROSS JOIN directory_users du
      WHERE gl.connector_id = ${c} AND gl.group_id IN (${sql.join(groups)})
        AND mm.connector_id = gl.connector_id AND mm.group_id = gl.source_id
        AND du.owner_connector_id = mm.connector_id AND du.source_id = mm.member_id AND du.in_scope = 1
        AND NOT EXISTS (SELECT 1 FROM directory_memberships m
                        WHERE m.group_id = gl.group_id AND m.user_id = du.id AND m.managed_by = ${this.managedBy})`.execute(this.trx);
    const stale = await sql<{ group_id: string; user_id: string }>`
      SELECT m.group_id, m.user_id
      FROM directory_memberships m
      JOIN directory_users du ON du.id = m.user_id
      WHERE m.group_id IN (${sql.join(groups)}) AND m.managed_by = ${this.managedBy} AND du.in_scope = 1
        AND NOT EXISTS (SELECT 1 FROM group_links gl
                        JOIN mirror_members mm ON mm.connector_id = gl.connector_id AND mm.group_id = gl.source_id
                        WHERE gl.connector_id = ${c} AND gl.group_id = m.group_id AND mm.member_id = du.source_id)`.execute(this.trx);
    const groupIds = [...new Set([...missing.rows.map((r) => r.group_id), ...stale.rows.map((r) => r.group_id)])];
    const names = new Map<string, string>();
    for (const part of chunk(groupIds)) {
      for (const g of await this.trx.selectFrom('directory_groups').select(['id', 'name']).where('id', 'in', part).execute()) names.set(g.id, g.name);
    }
    const byGroup = new Map<string, typeof missing.rows>();
    for (const r of missing.rows) {
      const list = byGroup.get(r.group_id);
      if (list) list.push(r);
      else byGroup.set(r.group_id, [r]);
    }
    for (const [groupId, rows] of byGroup) {
      const seated = await this.seatLimit({ id: groupId, name: names.get(groupId) ?? '' }, rows.map((r) => ({ id: r.user_id, username: r.username, active: r.active })));
      await this.addMemberships(seated.map((u) => ({ group_id: groupId, user_id: u.id })), this.managedBy);
    }
    await this.removeMemberships(stale.rows.filter((r) => !isNeverRemove(this.settings.group, names.get(r.group_id) ?? '')), this.managedBy);
  }

  /** Licence groups: users beyond the seat limit are held (reported), not added. */
  private async seatLimit<T extends { id: string; username: string; active: number | string }>(group: { id: string; name: string }, toAdd: T[]): Promise<T[]> {
    const licence = licenceFor(this.settings.group, group.name);
    if (!licence || toAdd.length === 0) return toAdd;
    // Seats are taken by active users; inactive users do not hold a licence in the applications.
    const taken = await sql<{ n: number | string }>`SELECT count(DISTINCT m.user_id) AS n FROM directory_memberships m
      JOIN directory_users u ON u.id = m.user_id WHERE m.group_id = ${group.id} AND u.active = 1`.execute(this.trx);
    let free = licence.seats - Number(taken.rows[0]?.n ?? 0);
    const out: T[] = [];
    const held: string[] = [];
    for (const u of [...toAdd].sort((a, b) => a.username.localeCompare(b.username))) {
      if (Number(u.active) !== 1) out.push(u); // an inactive member takes no seat
      else if (free > 0) {
        out.push(u);
        free--;
      } else held.push(u.username);
    }
    if (held.length) {
      this.count('seatsHeld', held.length);
      await this.log('warn', `licence group '${group.name}' is full (${licence.seats} seats): ${held.length} users not added (${held.slice(0, 10).join(', ')}${held.length > 10 ? ', …' : ''})`);
    }
    return out;
  }

  /** Incremental: some members of one provider group (plus directory groups it no longer feeds). */
  async reconcilePairs(source: string, members: string[], extraTargets: string[]): Promise<void> {
    let links = (
      await this.trx.selectFrom('group_links').select('group_id').where('connector_id', '=', this.connectorId).where('source_id', '=', source).execute()
    ).map((l) => l.group_id);
    if (links.length === 0 && !this.settings.group.createEmptyGroups) {
      // a group that was not created while empty gets its directory groups with its first member
      await this.reconcileGroups([source]);
      links = (
        await this.trx.selectFrom('group_links').select('group_id').where('connector_id', '=', this.connectorId).where('source_id', '=', source).execute()
      ).map((l) => l.group_id);
    }
    for (const groupId of new Set([...links, ...extraTargets])) await this.reconcileGroupMembers(groupId, members);
  }
}
