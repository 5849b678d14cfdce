// Targets, their ledgers (what usersync created or adopted in each application), their work queues (which
// users and groups still have to be brought up to date) and their full comparisons. All the SQL of the
// delivery lives here.

import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import type { Db } from './db.ts';
import { insertRows, now } from './db.ts';
import type { Database } from './schema.ts';

type Kdb = Kysely<Database>;

export interface DirectoryUserView {
  id: string;
  username: string;
  email: string | null;
  displayName: string;
  active: boolean;
  /** 0 when the owning connector's rules no longer keep the user */
  inScope: boolean;
  ownerConnectorId: string | null;
  attributes: Record<string, string>;
}

export interface DirectoryGroupView {
  id: string;
  name: string;
  ownerConnectorId: string | null;
}

export type TargetPhase = 'new' | 'awaiting-adoption' | 'active';

export interface TargetRecord {
  id: string;
  name: string;
  kind: string;
  enabled: boolean;
  paused: boolean;
  phase: TargetPhase;
  /** stored form: the secret sealed */
  settings: Record<string, unknown>;
  cursorSeq: number;
  status: TargetStatus;
  createdAt: string;
  updatedAt: string;
}

/** The application's availability as the delivery last saw it. */
export interface TargetStatus {
  /** ISO time before which no request is sent (an outage's back-off, or a 429's Retry-After) */
  unavailableUntil?: string;
  /** when the current outage began */
  unavailableSince?: string;
  failures?: number;
  lastError?: string;
  lastDeliveryAt?: string;
  /** when the last scheduled comparison was queued */
  lastScheduledComparisonAt?: string;
}

export type LedgerKind = 'user' | 'group' | 'membership';

/** One thing a target did in its application (or could not do). */
export interface TargetEvent {
  at: string;
  action: string;
  subject: string;
  detail: string;
}

export interface LedgerRow {
  kind: LedgerKind;
  localId: string;
  remoteName: string;
  remoteId: string | null;
  state: Record<string, unknown>;
  origin: 'created' | 'adopted';
  pending: boolean;
}

export interface WorkRow {
  key: string;
  seq: number;
  attempts: number;
  nextAt: string;
  parkedAt: string | null;
  errorCode: string | null;
  error: string | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

type TargetDbRow = Selectable<Database['targets']>;

function toTarget(r: TargetDbRow): TargetRecord {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    enabled: Number(r.enabled) === 1,
    paused: Number(r.paused) === 1,
    phase: r.phase as TargetPhase,
    settings: JSON.parse(r.settings) as Record<string, unknown>,
    cursorSeq: Number(r.cursor_seq),
    status: JSON.parse(r.status) as TargetStatus,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toLedger(r: { kind: string; local_id: string; remote_name: string; remote_id: string | null; state: string; origin: string; pending: number | string }): LedgerRow {
  return {
    kind: r.kind as LedgerKind,
    localId: r.local_id,
    remoteName: r.remote_name,
    remoteId: r.remote_id,
    state: JSON.parse(r.state) as Record<string, unknown>,
    origin: r.origin as 'created' | 'adopted',
    pending: Number(r.pending) === 1,
  };
}

function toWork(r: { key: string; seq: number | string; attempts: number | string; next_at: string; parked_at: string | null; error_code: string | null; error: string | null; version: number | string; created_at: string; updated_at: string }): WorkRow {
  return {
    key: r.key,
    seq: Number(r.seq),
    attempts: Number(r.attempts),
    nextAt: r.next_at,
    parkedAt: r.parked_at,
    errorCode: r.error_code,
    error: r.error,
    version: Number(r.version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toDirectoryUser(r: Database['directory_users'] extends infer T ? { [K in keyof T]: unknown } : never): DirectoryUserView {
  return {
    id: r.id as string,
    username: r.username as string,
    email: (r.email as string | null) ?? null,
    displayName: r.display_name as string,
    active: Number(r.active) === 1,
    inScope: Number(r.in_scope) === 1,
    ownerConnectorId: (r.owner_connector_id as string | null) ?? null,
    attributes: JSON.parse(r.attributes as string) as Record<string, string>,
  };
}

/** A membership's ledger id: the user first, so one user's memberships are one key range. */
export function membershipLocalId(userId: string, groupId: string): string {
  return `${userId}:${groupId}`;
}

export class TargetStore {
  constructor(readonly db: Db) {}

  // ------------------------------------------------------------------------------------------- targets

  async list(): Promise<TargetRecord[]> {
    const rows = await this.db.kysely.selectFrom('targets').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map((r) => toTarget(r as TargetDbRow));
  }

  async get(id: string, trx: Kdb = this.db.kysely): Promise<TargetRecord | undefined> {
    const row = await trx.selectFrom('targets').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTarget(row as TargetDbRow) : undefined;
  }

  async insert(trx: Kdb, t: { id: string; name: string; kind: string; settings: Record<string, unknown>; cursorSeq: number }): Promise<void> {
    const at = now();
    await trx
      .insertInto('targets')
      .values({ id: t.id, name: t.name, kind: t.kind, enabled: 1, paused: 0, phase: 'new', settings: JSON.stringify(t.settings), cursor_seq: t.cursorSeq, status: '{}', created_at: at, updated_at: at })
      .execute();
  }

  async update(trx: Kdb, id: string, change: { name?: string; enabled?: boolean; paused?: boolean; phase?: TargetPhase; settings?: Record<string, unknown>; cursorSeq?: number }): Promise<void> {
    await trx
      .updateTable('targets')
      .set({
        ...(change.name !== undefined ? { name: change.name } : {}),
        ...(change.enabled !== undefined ? { enabled: change.enabled ? 1 : 0 } : {}),
        ...(change.paused !== undefined ? { paused: change.paused ? 1 : 0 } : {}),
        ...(change.phase !== undefined ? { phase: change.phase } : {}),
        ...(change.settings !== undefined ? { settings: JSON.stringify(change.settings) } : {}),
        ...(change.cursorSeq !== undefined ? { cursor_seq: change.cursorSeq } : {}),
        updated_at: now(),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Merge into the status JSON (one statement per change; only the target's worker writes it). */
  async setStatus(id: string, change: Partial<Record<keyof TargetStatus, string | number | undefined>>): Promise<TargetStatus> {
    const row = await this.db.kysely.selectFrom('targets').select('status').where('id', '=', id).executeTakeFirst();
    const status = { ...(row ? (JSON.parse(row.status) as Record<string, unknown>) : {}) };
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) delete status[k];
      else status[k] = v;
    }
    await this.db.kysely.updateTable('targets').set({ status: JSON.stringify(status) }).where('id', '=', id).execute();
    return status as TargetStatus;
  }

  async remove(trx: Kdb, id: string): Promise<void> {
    // children first: SQLite's foreign keys may be off in other connections' settings
    await trx.deleteFrom('target_work').where('target_id', '=', id).execute();
    await trx.deleteFrom('target_objects').where('target_id', '=', id).execute();
    await trx.deleteFrom('target_events').where('target_id', '=', id).execute();
    const comparisons = trx.selectFrom('target_comparisons').select('id').where('target_id', '=', id);
    await trx.deleteFrom('target_comparison_items').where('comparison_id', 'in', comparisons).execute();
    await trx.deleteFrom('target_comparisons').where('target_id', '=', id).execute();
    await trx.deleteFrom('targets').where('id', '=', id).execute();
  }

  async maxFeedSeq(trx: Kdb = this.db.kysely): Promise<number> {
    const r = await trx.selectFrom('change_feed').select((eb) => eb.fn.max('seq').as('n')).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async oldestFeedSeq(): Promise<number | null> {
    const r = await this.db.kysely.selectFrom('change_feed').select((eb) => eb.fn.min('seq').as('n')).executeTakeFirst();
    return r?.n === null || r?.n === undefined ? null : Number(r.n);
  }

  // --------------------------------------------------------------------------------------- change feed

  /** Change-feed rows after the cursor, in order. */
  async feedAfter(cursor: number, limit: number): Promise<{ seq: number; entity: string; entityId: string; connectorId: string | null }[]> {
    const rows = await this.db.kysely
      .selectFrom('change_feed')
      .select(['seq', 'entity', 'entity_id', 'connector_id'])
      .where('seq', '>', cursor)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ seq: Number(r.seq), entity: r.entity, entityId: r.entity_id, connectorId: r.connector_id }));
  }

  /**
   * Turn feed rows into work and move the cursor, in one transaction: a crash leaves either both or
   * neither. A new change to a parked user takes it out of the parking: it is tried again as it is now.
   * The cursor only moves forward from `from`, so two instances cannot both take the same rows.
   */
  async enqueueFromFeed(targetId: string, from: number, to: number, keys: Map<string, number>): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const moved = await trx.updateTable('targets').set({ cursor_seq: to }).where('id', '=', targetId).where('cursor_seq', '=', from).executeTakeFirst();
      if (Number(moved.numUpdatedRows) !== 1) return false;
      await this.upsertWork(trx, targetId, [...keys].map(([key, seq]) => ({ key, seq })));
      return true;
    });
  }

  async upsertWork(trx: Kdb, targetId: string, items: { key: string; seq: number }[]): Promise<void> {
    const at = now();
    for (let i = 0; i < items.length; i += 400) {
      const part = items.slice(i, i + 400);
      await trx
        .insertInto('target_work')
        .values(part.map((w) => ({ target_id: targetId, key: w.key, seq: w.seq, attempts: 0, next_at: at, parked_at: null, error_code: null, error: null, created_at: at, updated_at: at })))
        .onConflict((oc) =>
          oc.columns(['target_id', 'key']).doUpdateSet((eb) => ({
            seq: sql`CASE WHEN ${eb.ref('excluded.seq')} > target_work.seq THEN ${eb.ref('excluded.seq')} ELSE target_work.seq END`,
            attempts: 0,
            next_at: eb.ref('excluded.next_at'),
            parked_at: null,
            version: sql`target_work.version + 1`,
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
  }

  /** Queue every directory user and group (an adoption, a scope change, a comparison's repair). */
  async enqueueEverything(trx: Kdb, targetId: string): Promise<void> {
    const at = now();
    for (const [prefix, table] of [
      ['g:', 'directory_groups'],
      ['u:', 'directory_users'],
    ] as const) {
      await sql`INSERT INTO target_work (target_id, key, seq, attempts, next_at, parked_at, error_code, error, created_at, updated_at)
        SELECT ${targetId}, ${prefix} || id, 0, 0, ${at}, NULL, NULL, NULL, ${at}, ${at} FROM ${sql.table(table)} WHERE true
        ON CONFLICT (target_id, key) DO UPDATE SET attempts = 0, next_at = excluded.next_at, parked_at = NULL, version = target_work.version + 1, updated_at = excluded.updated_at`.execute(trx);
    }
    // users and groups only the ledger still knows (deleted in the directory meanwhile). `WHERE true`:
    // SQLite needs a WHERE before ON CONFLICT in an INSERT … SELECT
    await sql`INSERT INTO target_work (target_id, key, seq, attempts, next_at, parked_at, error_code, error, created_at, updated_at)
      SELECT ${targetId}, CASE WHEN kind = 'user' THEN 'u:' ELSE 'g:' END || local_id, 0, 0, ${at}, NULL, NULL, NULL, ${at}, ${at}
      FROM target_objects WHERE target_id = ${targetId} AND kind IN ('user', 'group')
      ON CONFLICT (target_id, key) DO NOTHING`.execute(trx);
  }

  /** Work that is due: groups before users (a user's memberships need the group), oldest first. */
  async dueWork(targetId: string, at: string, limit: number): Promise<WorkRow[]> {
    const rows = await this.db.kysely
      .selectFrom('target_work')
      .selectAll()
      .where('target_id', '=', targetId)
      .where('parked_at', 'is', null)
      .where('next_at', '<=', at)
      .orderBy('next_at')
      .orderBy('key')
      .limit(limit)
      .execute();
    return rows.map(toWork).sort((a, b) => Number(b.key.startsWith('g:')) - Number(a.key.startsWith('g:')));
  }

  /** Done: removed, unless the row changed meanwhile (a newer change: then it stays, due now). */
  async finishWork(targetId: string, done: WorkRow[]): Promise<void> {
    if (!done.length) return;
    await this.db.transaction(async (trx) => {
      for (const w of done) await trx.deleteFrom('target_work').where('target_id', '=', targetId).where('key', '=', w.key).where('version', '=', w.version).execute();
    });
  }

  /** A failed try: tried again at `nextAt`, or parked. */
  async failWork(targetId: string, failed: { work: WorkRow; code: string; error: string; park: boolean; nextAt: string }[]): Promise<void> {
    if (!failed.length) return;
    const at = now();
    await this.db.transaction(async (trx) => {
      for (const f of failed) {
        await trx
          .updateTable('target_work')
          .set({ attempts: f.work.attempts + 1, next_at: f.nextAt, parked_at: f.park ? at : null, error_code: f.code, error: f.error, version: sql`version + 1`, updated_at: at })
          .where('target_id', '=', targetId)
          .where('key', '=', f.work.key)
          .where('version', '=', f.work.version)
          .execute();
      }
    });
  }

  async workCounts(targetId: string): Promise<{ pending: number; parked: number }> {
    const rows = await this.db.kysely
      .selectFrom('target_work')
      .select((eb) => [sql<number>`CASE WHEN parked_at IS NULL THEN 0 ELSE 1 END`.as('parked'), eb.fn.countAll<number | string>().as('n')])
      .where('target_id', '=', targetId)
      .groupBy(sql`CASE WHEN parked_at IS NULL THEN 0 ELSE 1 END`)
      .execute();
    let pending = 0;
    let parked = 0;
    for (const r of rows) {
      if (Number(r.parked) === 1) parked = Number(r.n);
      else pending = Number(r.n);
    }
    return { pending, parked };
  }

  async workRow(targetId: string, key: string): Promise<WorkRow | undefined> {
    const r = await this.db.kysely.selectFrom('target_work').selectAll().where('target_id', '=', targetId).where('key', '=', key).executeTakeFirst();
    return r ? toWork(r) : undefined;
  }

  async parked(targetId: string, limit: number, after?: string): Promise<WorkRow[]> {
    let q = this.db.kysely.selectFrom('target_work').selectAll().where('target_id', '=', targetId).where('parked_at', 'is not', null);
    if (after) q = q.where('key', '>', after);
    return (await q.orderBy('key').limit(limit).execute()).map(toWork);
  }

  /** Parked work tried again now (all of it, or the keys given); returns how many. */
  async retryParked(trx: Kdb, targetId: string, keys?: string[]): Promise<number> {
    let q = trx.updateTable('target_work').set({ parked_at: null, attempts: 0, next_at: now(), version: sql`version + 1`, updated_at: now() }).where('target_id', '=', targetId).where('parked_at', 'is not', null);
    if (keys) q = q.where('key', 'in', keys.length ? keys : ['']);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  // ----------------------------------------------------------------------------------------- directory

  async directoryUser(id: string): Promise<DirectoryUserView | undefined> {
    const r = await this.db.kysely.selectFrom('directory_users').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toDirectoryUser(r) : undefined;
  }

  async directoryUsers(ids: string[]): Promise<DirectoryUserView[]> {
    const out: DirectoryUserView[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.kysely.selectFrom('directory_users').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute();
      out.push(...rows.map(toDirectoryUser));
    }
    return out;
  }

  async directoryGroup(id: string): Promise<DirectoryGroupView | undefined> {
    const r = await this.db.kysely.selectFrom('directory_groups').select(['id', 'name', 'owner_connector_id']).where('id', '=', id).executeTakeFirst();
    return r ? { id: r.id, name: r.name, ownerConnectorId: r.owner_connector_id } : undefined;
  }

  /** The groups a user is a member of, however many things manage each membership. */
  async directoryGroupsOfUser(userId: string): Promise<DirectoryGroupView[]> {
    const rows = await this.db.kysely
      .selectFrom('directory_memberships as m')
      .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
      .select(['g.id', 'g.name', 'g.owner_connector_id'])
      .distinct()
      .where('m.user_id', '=', userId)
      .execute();
    return rows.map((r) => ({ id: r.id, name: r.name, ownerConnectorId: r.owner_connector_id }));
  }

  async directoryMemberIds(groupId: string): Promise<string[]> {
    const rows = await this.db.kysely.selectFrom('directory_memberships').select('user_id').distinct().where('group_id', '=', groupId).execute();
    return rows.map((r) => r.user_id);
  }

  /** Every directory user, group and membership, a slice at a time (full comparisons). */
  async *directoryUserPages(size = 2000): AsyncGenerator<DirectoryUserView[]> {
    let after = '';
    for (;;) {
      const rows = await this.db.kysely.selectFrom('directory_users').selectAll().where('id', '>', after).orderBy('id').limit(size).execute();
      if (!rows.length) return;
      yield rows.map(toDirectoryUser);
      after = rows[rows.length - 1]!.id;
    }
  }

  async directoryGroupsAll(): Promise<DirectoryGroupView[]> {
    const rows = await this.db.kysely.selectFrom('directory_groups').select(['id', 'name', 'owner_connector_id']).execute();
    return rows.map((r) => ({ id: r.id, name: r.name, ownerConnectorId: r.owner_connector_id }));
  }

  async *directoryMembershipPages(size = 10000): AsyncGenerator<{ groupId: string; userId: string }[]> {
    let after = { g: '', u: '' };
    for (;;) {
      const rows = await this.db.kysely
        .selectFrom('directory_memberships')
        .select(['group_id', 'user_id'])
        .distinct()
        .where((eb) => eb.or([eb('group_id', '>', after.g), eb.and([eb('group_id', '=', after.g), eb('user_id', '>', after.u)])]))
        .orderBy('group_id')
        .orderBy('user_id')
        .limit(size)
        .execute();
      if (!rows.length) return;
      yield rows.map((r) => ({ groupId: r.group_id, userId: r.user_id }));
      const last = rows[rows.length - 1]!;
      after = { g: last.group_id, u: last.user_id };
    }
  }

  // -------------------------------------------------------------------------------------------- ledger

  async ledgerGet(targetId: string, kind: LedgerKind, localId: string): Promise<LedgerRow | undefined> {
    const r = await this.db.kysely.selectFrom('target_objects').selectAll().where('target_id', '=', targetId).where('kind', '=', kind).where('local_id', '=', localId).executeTakeFirst();
    return r ? toLedger(r) : undefined;
  }

  async ledgerMany(targetId: string, kind: LedgerKind, localIds: string[]): Promise<LedgerRow[]> {
    if (!localIds.length) return [];
    const out: LedgerRow[] = [];
    for (let i = 0; i < localIds.length; i += 500) {
      const rows = await this.db.kysely
        .selectFrom('target_objects')
        .selectAll()
        .where('target_id', '=', targetId)
        .where('kind', '=', kind)
        .where('local_id', 'in', localIds.slice(i, i + 500))
        .execute();
      out.push(...rows.map(toLedger));
    }
    return out;
  }

  /** A user's memberships in the ledger: one range of the primary key ('<user>:' up to '<user>;'). */
  async ledgerMembershipsOfUser(targetId: string, userId: string): Promise<LedgerRow[]> {
    const rows = await this.db.kysely
      .selectFrom('target_objects')
      .selectAll()
      .where('target_id', '=', targetId)
      .where('kind', '=', 'membership')
      .where('local_id', '>=', `${userId}:`)
      .where('local_id', '<', `${userId};`)
      .execute();
    return rows.map(toLedger);
  }

  /** A group's memberships in the ledger (a scan of the target's memberships: group renames and deletions only). */
  async ledgerMembershipsOfGroup(targetId: string, groupId: string): Promise<LedgerRow[]> {
    const rows = await this.db.kysely
      .selectFrom('target_objects')
      .selectAll()
      .where('target_id', '=', targetId)
      .where('kind', '=', 'membership')
      .where('local_id', 'like', `%:${groupId}`)
      .execute();
    return rows.map(toLedger);
  }

  async ledgerAll(targetId: string, kind: LedgerKind): Promise<LedgerRow[]> {
    const rows = await this.db.kysely.selectFrom('target_objects').selectAll().where('target_id', '=', targetId).where('kind', '=', kind).execute();
    return rows.map(toLedger);
  }

  async ledgerPut(targetId: string, row: LedgerRow, trx: Kdb = this.db.kysely): Promise<void> {
    const values = {
      target_id: targetId,
      kind: row.kind,
      local_id: row.localId,
      remote_name: row.remoteName,
      remote_id: row.remoteId,
      state: JSON.stringify(row.state),
      origin: row.origin,
      pending: row.pending ? 1 : 0,
      updated_at: now(),
    };
    await trx
      .insertInto('target_objects')
      .values(values)
      .onConflict((oc) =>
        oc.columns(['target_id', 'kind', 'local_id']).doUpdateSet({ remote_name: values.remote_name, remote_id: values.remote_id, state: values.state, origin: values.origin, pending: values.pending, updated_at: values.updated_at }),
      )
      .execute();
  }

  async ledgerPutMany(trx: Kdb, targetId: string, rows: LedgerRow[]): Promise<void> {
    const at = now();
    await insertRows(
      trx,
      this.db.dialect,
      'target_objects',
      ['target_id', 'kind', 'local_id', 'remote_name', 'remote_id', 'state', 'origin', 'pending', 'updated_at'],
      rows.map((r) => [targetId, r.kind, r.localId, r.remoteName, r.remoteId, JSON.stringify(r.state), r.origin, r.pending ? 1 : 0, at]),
      true,
    );
  }

  async ledgerDelete(targetId: string, kind: LedgerKind, localIds: string[], trx: Kdb = this.db.kysely): Promise<void> {
    for (let i = 0; i < localIds.length; i += 500) {
      await trx.deleteFrom('target_objects').where('target_id', '=', targetId).where('kind', '=', kind).where('local_id', 'in', localIds.slice(i, i + 500)).execute();
    }
  }

  async ledgerCounts(targetId: string): Promise<Record<LedgerKind, number>> {
    const rows = await this.db.kysely
      .selectFrom('target_objects')
      .select((eb) => ['kind', eb.fn.countAll<number | string>().as('n')])
      .where('target_id', '=', targetId)
      .groupBy('kind')
      .execute();
    const out: Record<LedgerKind, number> = { user: 0, group: 0, membership: 0 };
    for (const r of rows) out[r.kind as LedgerKind] = Number(r.n);
    return out;
  }

  // ------------------------------------------------------------------------------------------- events

  async addEvents(targetId: string, events: TargetEvent[]): Promise<void> {
    if (!events.length) return;
    await this.db.transaction((trx) =>
      insertRows(
        trx,
        this.db.dialect,
        'target_events',
        ['target_id', 'at', 'action', 'subject', 'detail'],
        events.map((e) => [targetId, e.at, e.action, e.subject, e.detail]),
      ),
    );
  }

  /** The newest events first; `before`: an event's seq, to page back; `search`: part of the subject. */
  async events(targetId: string, opts: { limit: number; before?: number; search?: string }) {
    let q = this.db.kysely.selectFrom('target_events').selectAll().where('target_id', '=', targetId);
    if (opts.before !== undefined) q = q.where('seq', '<', opts.before);
    if (opts.search) q = q.where(sql<boolean>`lower(subject) LIKE ${`%${opts.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`} ESCAPE '\\'`);
    const rows = await q.orderBy('seq', 'desc').limit(opts.limit).execute();
    return rows.map((r) => ({ seq: Number(r.seq), at: r.at, action: r.action, subject: r.subject, detail: r.detail }));
  }

  // --------------------------------------------------------------------------------------- comparisons

  async queueComparison(trx: Kdb, c: { id: string; targetId: string; mode: 'report' | 'fix'; requestedBy: string }): Promise<void> {
    await trx.insertInto('target_comparisons').values({ id: c.id, target_id: c.targetId, mode: c.mode, status: 'queued', requested_by: c.requestedBy, requested_at: now(), started_at: null, ended_at: null, summary: '{}', error: null }).execute();
  }

  async nextQueuedComparison(targetId: string): Promise<{ id: string; mode: 'report' | 'fix' } | undefined> {
    const r = await this.db.kysely.selectFrom('target_comparisons').select(['id', 'mode']).where('target_id', '=', targetId).where('status', 'in', ['queued', 'running']).orderBy('requested_at').executeTakeFirst();
    return r ? { id: r.id, mode: r.mode as 'report' | 'fix' } : undefined;
  }

  async comparisons(targetId: string, limit: number) {
    return this.db.kysely.selectFrom('target_comparisons').selectAll().where('target_id', '=', targetId).orderBy('requested_at', 'desc').limit(limit).execute();
  }

  async comparison(id: string) {
    return this.db.kysely.selectFrom('target_comparisons').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async setComparison(id: string, change: { status?: string; mode?: 'report' | 'fix'; startedAt?: string; endedAt?: string; summary?: Record<string, unknown>; error?: string | null }): Promise<void> {
    await this.db.kysely
      .updateTable('target_comparisons')
      .set({
        ...(change.status !== undefined ? { status: change.status } : {}),
        ...(change.mode !== undefined ? { mode: change.mode } : {}),
        ...(change.startedAt !== undefined ? { started_at: change.startedAt } : {}),
        ...(change.endedAt !== undefined ? { ended_at: change.endedAt } : {}),
        ...(change.summary !== undefined ? { summary: JSON.stringify(change.summary) } : {}),
        ...(change.error !== undefined ? { error: change.error } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  async writeComparisonItems(comparisonId: string, items: { category: string; entity: string; localId: string | null; remoteName: string; detail: Record<string, unknown> }[]): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx.deleteFrom('target_comparison_items').where('comparison_id', '=', comparisonId).execute();
      await insertRows(
        trx,
        this.db.dialect,
        'target_comparison_items',
        ['comparison_id', 'n', 'category', 'entity', 'local_id', 'remote_name', 'detail'],
        items.map((it, n) => [comparisonId, n, it.category, it.entity, it.localId, it.remoteName, JSON.stringify(it.detail)]),
      );
    });
  }

  async comparisonItems(comparisonId: string, opts: { category?: string; limit: number; after?: number }) {
    let q = this.db.kysely.selectFrom('target_comparison_items').selectAll().where('comparison_id', '=', comparisonId);
    if (opts.category) q = q.where('category', '=', opts.category);
    if (opts.after !== undefined) q = q.where('n', '>', opts.after);
    return q.orderBy('n').limit(opts.limit).execute();
  }
}
