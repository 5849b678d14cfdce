// The reconciler: takes dirty marks in batches, applies the connector's rules to the mirror, compares the
// result with the directory, and writes directory changes together with their change-feed entries and
// the removal of the marks, in one transaction per connector batch. A crash anywhere leaves the marks in
// place, so the next pass converges. Several instances share the work safely through a lease.

import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { defaultGroupRule, defaultUserRule, directoryKey, userDiff } from '../domain/rules.ts';
import type { DesiredUser } from '../domain/rules.ts';
import type { ScimDoc } from '../domain/scim/resource.ts';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import { acquireLease, releaseLease } from './lease.ts';
import type { RunCounters } from './runs.ts';
import { RunRecorder } from './runs.ts';

type Trx = Kysely<Database>;

export interface ReconcilerOptions {
  batchSize?: number;
  /** a SCIM push run ends after this much quiet */
  quietPeriodMs?: number;
  pollIntervalMs?: number;
  holder?: string;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

interface Mark {
  seq: number;
  kind: string;
  ref: string;
  ref2: string;
}

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
}

const LEASE = 'reconciler';
/** A killed instance's lease lapses after this; every batch renews it (a batch takes well under a second). */
const LEASE_TTL_MS = 10_000;
const POKE_DELAY_MS = 20;

function asDesired(row: DirUserRow): DesiredUser {
  return {
    username: row.username,
    email: row.email,
    displayName: row.display_name,
    active: Number(row.active) === 1,
    attributes: JSON.parse(row.attributes) as Record<string, string>,
  };
}

export class Reconciler {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  readonly holder: string;
  private readonly runs: RunRecorder;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = true;
  private again = false;
  private idleWaiters: (() => void)[] = [];
  private readonly log: NonNullable<ReconcilerOptions['log']>;

  constructor(
    private readonly db: Db,
    opts: ReconcilerOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 500;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.holder = opts.holder ?? randomUUID();
    this.log = opts.log ?? (() => {});
    this.runs = new RunRecorder(db, this.holder, opts.quietPeriodMs ?? 60_000);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    while (this.running) await new Promise((r) => setTimeout(r, 10));
    this.leaseRenewAt = 0;
    await releaseLease(this.db, LEASE, this.holder).catch(() => {});
  }

  /** Something was written: reconcile soon. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // A short delay lets a burst of requests share one batch (one transaction) instead of one each.
    // Never push a sooner wake-up later: under steady load that would starve the reconciler.
    if (this.timer && this.wakeAt <= Date.now() + POKE_DELAY_MS) return;
    this.schedule(POKE_DELAY_MS);
  }

  private wakeAt = 0;

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.wakeAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    this.again = false;
    let processed = 0;
    try {
      processed = await this.runOnce();
      if (Date.now() - this.lastQuietCheck > 1000) {
        this.lastQuietCheck = Date.now();
        await this.runs.closeQuiet();
      }
    } catch (e) {
      this.log('error', 'reconciler pass failed; the marks stay and the next pass retries', { err: String(e) });
    } finally {
      this.running = false;
    }
    if (processed === 0 && !this.again) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    this.schedule(processed > 0 || this.again ? 0 : this.pollIntervalMs);
  }

  /** Resolve once a pass finds nothing to do (tests, benchmarks). */
  async idle(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.poke();
    });
  }

  /** Process every pending mark now (no background loop needed). Returns how many marks were handled. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.runOnce();
      if (n === 0) return total;
      total += n;
    }
  }

  private chain: Promise<unknown> = Promise.resolve();
  private leaseRenewAt = 0;
  private lastQuietCheck = 0;

  /** One batch: returns the number of marks handled (0 when idle or another instance holds the lease). */
  runOnce(): Promise<number> {
    // One batch at a time in this process (the background loop and drain() may both ask).
    const next = this.chain.then(() => this.batch());
    this.chain = next.catch(() => {});
    return next;
  }

  private async batch(): Promise<number> {
    // Renew the lease only when half of it has passed: no other instance can take it before it expires.
    if (Date.now() > this.leaseRenewAt) {
      if (!(await acquireLease(this.db, LEASE, this.holder, LEASE_TTL_MS))) return 0;
      this.leaseRenewAt = Date.now() + LEASE_TTL_MS / 2;
    }
    const rows = await this.db.kysely
      .selectFrom('dirty_marks')
      .select(['seq', 'connector_id', 'kind', 'ref', 'ref2'])
      .orderBy('seq')
      .limit(this.batchSize)
      .execute();
    if (rows.length === 0) return 0;
    const byConnector = new Map<string, Mark[]>();
    for (const r of rows) {
      const list = byConnector.get(r.connector_id) ?? [];
      list.push({ seq: Number(r.seq), kind: r.kind, ref: r.ref, ref2: r.ref2 });
      byConnector.set(r.connector_id, list);
    }
    for (const [connectorId, marks] of byConnector) {
      const counters: RunCounters = {};
      await this.db.transaction(async (trx) => {
        const runId = await this.runs.pushRun(trx, connectorId);
        await new ConnectorPass(trx, connectorId, runId, counters, this.runs).reconcile(marks);
        for (let i = 0; i < marks.length; i += 500) {
          await trx
            .deleteFrom('dirty_marks')
            .where('seq', 'in', marks.slice(i, i + 500).map((m) => m.seq))
            .execute();
        }
        await this.runs.addCounters(trx, runId, counters);
      });
    }
    return rows.length;
  }
}

/** One connector's share of a batch, inside its transaction. */
interface FeedRow {
  entity: 'user' | 'group' | 'membership';
  entity_id: string;
  op: string;
  data: string;
}

/**
 * One connector's share of a batch, inside its transaction. Work is set-oriented: a handful of queries
 * per batch of records, not per record, so a pass over many changes stays cheap.
 */
class ConnectorPass {
  private readonly managedBy: string;
  private readonly at = now();
  private readonly feedRows: FeedRow[] = [];

  constructor(
    private readonly trx: Trx,
    private readonly connectorId: string,
    private readonly runId: string,
    private readonly counters: RunCounters,
    private readonly runs: RunRecorder,
  ) {
    this.managedBy = `connector:${connectorId}`;
  }

  private count(name: keyof RunCounters, n = 1): void {
    if (n) this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  private feed(entity: FeedRow['entity'], entityId: string, op: string, data: Record<string, unknown>): void {
    this.feedRows.push({ entity, entity_id: entityId, op, data: JSON.stringify(data) });
  }

  private async flushFeed(): Promise<void> {
    for (const part of chunk(this.feedRows, 200)) {
      await this.trx
        .insertInto('change_feed')
        .values(part.map((f) => ({ ...f, at: this.at, connector_id: this.connectorId, run_id: this.runId })))
        .execute();
    }
    this.feedRows.length = 0;
  }

  async reconcile(marks: Mark[]): Promise<void> {
    const users = new Set<string>();
    const groups = new Set<string>();
    const pairs = new Map<string, Set<string>>(); // provider group → provider members
    const addPair = (g: string, m: string) => {
      const s = pairs.get(g) ?? new Set<string>();
      s.add(m);
      pairs.set(g, s);
    };
    for (const m of marks) {
      if (m.kind === 'user') users.add(m.ref);
      else if (m.kind === 'group') groups.add(m.ref);
      else addPair(m.ref, m.ref2);
    }
    this.count('read', users.size + groups.size);

    const newUsers = await this.reconcileUsers([...users]);
    const relinked = await this.reconcileGroups([...groups]);

    // A new directory user picks up every group the provider already has it in.
    for (const part of chunk(newUsers)) {
      const rows = await this.trx
        .selectFrom('mirror_members')
        .select(['group_id', 'member_id'])
        .where('connector_id', '=', this.connectorId)
        .where('member_id', 'in', part)
        .execute();
      for (const r of rows) addPair(r.group_id, r.member_id);
    }
    // A provider group that now feeds other directory groups: every member is re-evaluated, in old and new.
    const extraTargets = new Map<string, string[]>();
    for (const { source, previous } of relinked) {
      extraTargets.set(source, previous);
      const rows = await this.trx
        .selectFrom('mirror_members')
        .select('member_id')
        .where('connector_id', '=', this.connectorId)
        .where('group_id', '=', source)
        .execute();
      for (const r of rows) addPair(source, r.member_id);
    }
    for (const [source, members] of pairs) {
      await this.reconcilePairs(source, [...members], extraTargets.get(source) ?? []);
    }
    await this.flushFeed();
  }

  private async reconcileUsers(ids: string[]): Promise<string[]> {
    const created: string[] = [];
    for (const part of chunk(ids)) {
      const mirror = new Map(
        (
          await this.trx
            .selectFrom('mirror_users')
            .select(['id', 'resource'])
            .where('connector_id', '=', this.connectorId)
            .where('id', 'in', part)
            .execute()
        ).map((r) => [r.id, JSON.parse(r.resource) as ScimDoc]),
      );
      const directory = new Map(
        (
          await this.trx
            .selectFrom('directory_users')
            .selectAll()
            .where('owner_connector_id', '=', this.connectorId)
            .where('source_id', 'in', part)
            .execute()
        ).map((r) => [r.source_id!, r as DirUserRow]),
      );

      const creates: { sourceId: string; desired: DesiredUser }[] = [];
      const updates: { current: DirUserRow; desired: DesiredUser }[] = [];
      const deactivations: DirUserRow[] = [];
      for (const sourceId of part) {
        const doc = mirror.get(sourceId);
        const current = directory.get(sourceId);
        if (doc) {
          const desired = defaultUserRule(doc);
          if (!current) creates.push({ sourceId, desired });
          else if (Object.keys(userDiff(asDesired(current), desired)).length) updates.push({ current, desired });
        } else if (current && Number(current.active) === 1) {
          deactivations.push(current); // cleanup for a user deleted in the provider: deactivate, keep memberships
        }
      }

      // Who holds the usernames this part wants: one query for all of them.
      const wantedKeys = [
        ...creates.map((c) => directoryKey(c.desired.username)),
        ...updates.map((u) => directoryKey(u.desired.username)).filter((k, i) => k !== updates[i]!.current.username_key),
      ];
      const holders = new Map<string, { id: string; owner_connector_id: string | null }>();
      for (const keys of chunk([...new Set(wantedKeys)])) {
        const rows = await this.trx.selectFrom('directory_users').select(['id', 'owner_connector_id', 'username_key']).where('username_key', 'in', keys).execute();
        for (const r of rows) holders.set(r.username_key, r);
      }

      // Renames first, so a name given up in this batch can be taken by a user created in it.
      for (const { current, desired: wanted } of updates) {
        const desired = { ...wanted };
        const key = directoryKey(desired.username);
        if (key !== current.username_key) {
          const holder = holders.get(key);
          if (holder && holder.id !== current.id) {
            await this.conflict(desired.username, holder);
            desired.username = current.username;
          } else {
            holders.delete(current.username_key);
            holders.set(key, { id: current.id, owner_connector_id: this.connectorId });
          }
        }
        const diff = userDiff(asDesired(current), desired);
        if (Object.keys(diff).length === 0) continue;
        await this.trx
          .updateTable('directory_users')
          .set({
            username: desired.username,
            username_key: directoryKey(desired.username),
            email: desired.email,
            display_name: desired.displayName,
            active: desired.active ? 1 : 0,
            attributes: JSON.stringify(desired.attributes),
            updated_at: this.at,
          })
          .where('id', '=', current.id)
          .execute();
        const op = diff.active ? (desired.active ? 'activate' : 'deactivate') : 'update';
        this.feed('user', current.id, op, { username: desired.username, changes: diff });
        this.count(op === 'activate' ? 'activated' : op === 'deactivate' ? 'deactivated' : 'updated');
      }

      const rows = [];
      for (const { sourceId, desired } of creates) {
        const key = directoryKey(desired.username);
        const holder = holders.get(key);
        if (holder) {
          await this.conflict(desired.username, holder);
          continue;
        }
        const id = randomUUID();
        holders.set(key, { id, owner_connector_id: this.connectorId });
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
          created_at: this.at,
          updated_at: this.at,
        });
        this.feed('user', id, 'create', { after: desired });
        created.push(sourceId);
      }
      for (const values of chunk(rows, 100)) await this.trx.insertInto('directory_users').values(values).execute();
      this.count('created', rows.length);

      for (const ids of chunk(deactivations.map((d) => d.id))) {
        await this.trx.updateTable('directory_users').set({ active: 0, updated_at: this.at }).where('id', 'in', ids).execute();
      }
      for (const d of deactivations) this.feed('user', d.id, 'deactivate', { username: d.username, reason: 'deleted in the identity provider' });
      this.count('deactivated', deactivations.length);
    }
    return created;
  }

  private async conflict(username: string, holder: { owner_connector_id: string | null }): Promise<void> {
    const owner = holder.owner_connector_id ? `connector ${holder.owner_connector_id}` : 'a local user';
    await this.runs.logLine(this.trx, this.runId, 'warn', `username '${username}' is already held by ${owner}; not changed`);
    this.count('conflicts');
  }

  /** Returns the provider groups whose directory targets changed, with their previous targets. */
  private async reconcileGroups(ids: string[]): Promise<{ source: string; previous: string[] }[]> {
    const relinked: { source: string; previous: string[] }[] = [];
    for (const part of chunk(ids)) {
      const mirror = new Map(
        (
          await this.trx
            .selectFrom('mirror_groups')
            .select(['id', 'resource'])
            .where('connector_id', '=', this.connectorId)
            .where('id', 'in', part)
            .execute()
        ).map((r) => [r.id, JSON.parse(r.resource) as ScimDoc]),
      );
      const links = new Map<string, string[]>();
      for (const l of await this.trx
        .selectFrom('group_links')
        .select(['source_id', 'group_id'])
        .where('connector_id', '=', this.connectorId)
        .where('source_id', 'in', part)
        .execute()) {
        links.set(l.source_id, [...(links.get(l.source_id) ?? []), l.group_id]);
      }
      for (const sourceId of part) {
        const current = links.get(sourceId) ?? [];
        const doc = mirror.get(sourceId);
        if (!doc) {
          if (current.length) {
            await this.runs.logLine(this.trx, this.runId, 'info', `group ${sourceId} was deleted in the identity provider; its application group is kept`);
            this.count('groupsOrphaned');
          }
          continue;
        }
        const target = await this.targetGroup(sourceId, defaultGroupRule(doc).name);
        if (current.length !== 1 || current[0] !== target) {
          await this.trx.deleteFrom('group_links').where('connector_id', '=', this.connectorId).where('source_id', '=', sourceId).execute();
          await this.trx.insertInto('group_links').values({ connector_id: this.connectorId, source_id: sourceId, group_id: target }).execute();
          relinked.push({ source: sourceId, previous: current.filter((l) => l !== target) });
        }
      }
    }
    return relinked;
  }

  /** The directory group a provider group maps to: its own (renamed if needed), one of that name, or a new one. */
  private async targetGroup(sourceId: string, name: string): Promise<string> {
    const key = directoryKey(name);
    const owned = await this.trx
      .selectFrom('directory_groups')
      .select(['id', 'name', 'name_key'])
      .where('owner_connector_id', '=', this.connectorId)
      .where('source_id', '=', sourceId)
      .executeTakeFirst();
    if (owned?.name === name) return owned.id;
    const byName = await this.trx.selectFrom('directory_groups').select(['id', 'name']).where('name_key', '=', key).executeTakeFirst();
    if (owned) {
      if (!byName || byName.id === owned.id) {
        await this.trx.updateTable('directory_groups').set({ name, name_key: key, updated_at: this.at }).where('id', '=', owned.id).execute();
        this.feed('group', owned.id, 'rename', { from: owned.name, to: name });
        this.count('groupsRenamed');
        return owned.id;
      }
      return byName.id;
    }
    if (byName) return byName.id;
    const id = randomUUID();
    await this.trx
      .insertInto('directory_groups')
      .values({ id, name, name_key: key, owner_connector_id: this.connectorId, source_id: sourceId, created_at: this.at, updated_at: this.at })
      .execute();
    this.feed('group', id, 'create', { name });
    this.count('groupsCreated');
    return id;
  }

  /**
   * Bring the memberships managed by this connector in line with the mirror for some members of one
   * provider group. A directory membership is wanted when any provider group linked to that directory
   * group has the member, so merged groups and renames come out right. Set-oriented: per directory group
   * and 500 members, one query for what is wanted, one for what is there, one write each way.
   */
  private async reconcilePairs(source: string, members: string[], extraTargets: string[]): Promise<void> {
    const links = (
      await this.trx.selectFrom('group_links').select('group_id').where('connector_id', '=', this.connectorId).where('source_id', '=', source).execute()
    ).map((l) => l.group_id);
    const targets = [...new Set([...links, ...extraTargets])];
    if (targets.length === 0) return;
    for (const part of chunk(members)) {
      // Members the provider deleted are left out: their cleanup (deactivation) keeps their memberships.
      const users = await this.trx
        .selectFrom('directory_users as d')
        .innerJoin('mirror_users as mu', (j) => j.onRef('mu.connector_id', '=', 'd.owner_connector_id').onRef('mu.id', '=', 'd.source_id'))
        .select(['d.id', 'd.source_id', 'd.username'])
        .where('d.owner_connector_id', '=', this.connectorId)
        .where('d.source_id', 'in', part)
        .execute();
      if (users.length === 0) continue;
      const bySource = new Map(users.map((u) => [u.source_id!, u]));
      const byId = new Map(users.map((u) => [u.id, u]));
      for (const groupId of targets) {
        const wanted = new Set(
          (
            await this.trx
              .selectFrom('mirror_members as mm')
              .innerJoin('group_links as gl', (j) => j.onRef('gl.connector_id', '=', 'mm.connector_id').onRef('gl.source_id', '=', 'mm.group_id'))
              .select('mm.member_id')
              .distinct()
              .where('mm.connector_id', '=', this.connectorId)
              .where('gl.group_id', '=', groupId)
              .where('mm.member_id', 'in', [...bySource.keys()])
              .execute()
          ).map((r) => bySource.get(r.member_id)!.id),
        );
        const present = new Set(
          (
            await this.trx
              .selectFrom('directory_memberships')
              .select('user_id')
              .where('group_id', '=', groupId)
              .where('managed_by', '=', this.managedBy)
              .where('user_id', 'in', [...byId.keys()])
              .execute()
          ).map((r) => r.user_id),
        );
        const toAdd = [...wanted].filter((u) => !present.has(u));
        const toRemove = [...present].filter((u) => !wanted.has(u));
        for (const values of chunk(toAdd, 200)) {
          await this.trx
            .insertInto('directory_memberships')
            .values(values.map((userId) => ({ group_id: groupId, user_id: userId, managed_by: this.managedBy, created_at: this.at })))
            .onConflict((oc) => oc.doNothing())
            .execute();
        }
        for (const ids of chunk(toRemove)) {
          await this.trx
            .deleteFrom('directory_memberships')
            .where('group_id', '=', groupId)
            .where('managed_by', '=', this.managedBy)
            .where('user_id', 'in', ids)
            .execute();
        }
        for (const userId of toAdd) this.feed('membership', `${groupId}:${userId}`, 'add', { groupId, userId, username: byId.get(userId)!.username });
        for (const userId of toRemove) this.feed('membership', `${groupId}:${userId}`, 'remove', { groupId, userId, username: byId.get(userId)!.username });
        this.count('membershipsAdded', toAdd.length);
        this.count('membershipsRemoved', toRemove.length);
      }
    }
  }
}

function chunk<T>(list: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
