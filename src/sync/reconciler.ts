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
    await releaseLease(this.db, LEASE, this.holder).catch(() => {});
  }

  /** Something was written: reconcile soon. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(5);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    this.again = false;
    let processed = 0;
    try {
      processed = await this.runOnce();
      await this.runs.closeQuiet();
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

  /** One batch: returns the number of marks handled (0 when idle or another instance holds the lease). */
  runOnce(): Promise<number> {
    // One batch at a time in this process (the background loop and drain() may both ask).
    const next = this.chain.then(() => this.batch());
    this.chain = next.catch(() => {});
    return next;
  }

  private async batch(): Promise<number> {
    if (!(await acquireLease(this.db, LEASE, this.holder, LEASE_TTL_MS))) return 0;
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
class ConnectorPass {
  private readonly managedBy: string;
  private readonly at = now();

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
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  private async feed(entity: 'user' | 'group' | 'membership', entityId: string, op: string, data: Record<string, unknown>): Promise<void> {
    await this.trx
      .insertInto('change_feed')
      .values({ at: this.at, connector_id: this.connectorId, run_id: this.runId, entity, entity_id: entityId, op, data: JSON.stringify(data) })
      .execute();
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
      for (const sourceId of part) {
        const doc = mirror.get(sourceId);
        const current = directory.get(sourceId);
        if (doc) {
          const desired = defaultUserRule(doc);
          if (!current) {
            if (await this.createUser(sourceId, desired)) created.push(sourceId);
          } else await this.updateUser(current, desired);
        } else if (current && Number(current.active) === 1) {
          // Cleanup for a user deleted in the provider: deactivate, keeping memberships.
          await this.trx.updateTable('directory_users').set({ active: 0, updated_at: this.at }).where('id', '=', current.id).execute();
          await this.feed('user', current.id, 'deactivate', { username: current.username, reason: 'deleted in the identity provider' });
          this.count('deactivated');
        }
      }
    }
    return created;
  }

  private async holderOf(usernameKey: string): Promise<{ id: string; owner_connector_id: string | null } | undefined> {
    return this.trx.selectFrom('directory_users').select(['id', 'owner_connector_id']).where('username_key', '=', usernameKey).executeTakeFirst();
  }

  private async conflict(username: string, holder: { owner_connector_id: string | null }): Promise<void> {
    const owner = holder.owner_connector_id ? `connector ${holder.owner_connector_id}` : 'a local user';
    await this.runs.logLine(this.trx, this.runId, 'warn', `username '${username}' is already held by ${owner}; not changed`);
    this.count('conflicts');
  }

  private async createUser(sourceId: string, desired: DesiredUser): Promise<boolean> {
    const key = directoryKey(desired.username);
    const holder = await this.holderOf(key);
    if (holder) {
      await this.conflict(desired.username, holder);
      return false;
    }
    const id = randomUUID();
    await this.trx
      .insertInto('directory_users')
      .values({
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
      })
      .execute();
    await this.feed('user', id, 'create', { after: desired });
    this.count('created');
    return true;
  }

  private async updateUser(current: DirUserRow, wanted: DesiredUser): Promise<void> {
    const desired = { ...wanted };
    const before = asDesired(current);
    if (directoryKey(desired.username) !== current.username_key) {
      const holder = await this.holderOf(directoryKey(desired.username));
      if (holder && holder.id !== current.id) {
        await this.conflict(desired.username, holder);
        desired.username = current.username;
      }
    }
    const diff = userDiff(before, desired);
    if (Object.keys(diff).length === 0) return;
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
    await this.feed('user', current.id, op, { username: desired.username, changes: diff });
    this.count(op === 'activate' ? 'activated' : op === 'deactivate' ? 'deactivated' : 'updated');
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
      for (const sourceId of part) {
        const links = (
          await this.trx.selectFrom('group_links').select('group_id').where('connector_id', '=', this.connectorId).where('source_id', '=', sourceId).execute()
        ).map((l) => l.group_id);
        const doc = mirror.get(sourceId);
        if (!doc) {
          if (links.length) {
            await this.runs.logLine(this.trx, this.runId, 'info', `group ${sourceId} was deleted in the identity provider; its application group is kept`);
            this.count('groupsOrphaned');
          }
          continue;
        }
        const target = await this.targetGroup(sourceId, defaultGroupRule(doc).name);
        if (links.length !== 1 || links[0] !== target) {
          await this.trx.deleteFrom('group_links').where('connector_id', '=', this.connectorId).where('source_id', '=', sourceId).execute();
          await this.trx.insertInto('group_links').values({ connector_id: this.connectorId, source_id: sourceId, group_id: target }).execute();
          relinked.push({ source: sourceId, previous: links.filter((l) => l !== target) });
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
    const byName = await this.trx.selectFrom('directory_groups').select(['id', 'name']).where('name_key', '=', key).executeTakeFirst();
    if (owned) {
      if (owned.name === name) return owned.id;
      if (!byName || byName.id === owned.id) {
        await this.trx.updateTable('directory_groups').set({ name, name_key: key, updated_at: this.at }).where('id', '=', owned.id).execute();
        await this.feed('group', owned.id, 'rename', { from: owned.name, to: name });
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
    await this.feed('group', id, 'create', { name });
    this.count('groupsCreated');
    return id;
  }

  /**
   * Bring the memberships managed by this connector in line with the mirror for some members of one
   * provider group. A directory membership is wanted when any provider group linked to that directory
   * group has the member, so merged groups and renames come out right.
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
      for (const user of users) {
        for (const groupId of targets) {
          const wanted = await this.trx
            .selectFrom('mirror_members as mm')
            .innerJoin('group_links as gl', (j) => j.onRef('gl.connector_id', '=', 'mm.connector_id').onRef('gl.source_id', '=', 'mm.group_id'))
            .select('mm.member_id')
            .where('mm.connector_id', '=', this.connectorId)
            .where('mm.member_id', '=', user.source_id!)
            .where('gl.group_id', '=', groupId)
            .executeTakeFirst();
          if (wanted) {
            const added = await this.trx
              .insertInto('directory_memberships')
              .values({ group_id: groupId, user_id: user.id, managed_by: this.managedBy, created_at: this.at })
              .onConflict((oc) => oc.doNothing())
              .executeTakeFirst();
            if (Number(added.numInsertedOrUpdatedRows ?? 0) > 0) {
              await this.feed('membership', `${groupId}:${user.id}`, 'add', { groupId, userId: user.id, username: user.username });
              this.count('membershipsAdded');
            }
          } else {
            const removed = await this.trx
              .deleteFrom('directory_memberships')
              .where('group_id', '=', groupId)
              .where('user_id', '=', user.id)
              .where('managed_by', '=', this.managedBy)
              .executeTakeFirst();
            if (Number(removed.numDeletedRows) > 0) {
              await this.feed('membership', `${groupId}:${user.id}`, 'remove', { groupId, userId: user.id, username: user.username });
              this.count('membershipsRemoved');
            }
          }
        }
      }
    }
  }
}

function chunk<T>(list: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
