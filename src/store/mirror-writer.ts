// Set-oriented mirror writes for pull sources (Graph, LDAP): a page of records at a time, compared with
// what the mirror holds, so that an unchanged record writes nothing and marks nothing. Every change is
// marked dirty in the same transaction, with the run that made it. A run that changes a great deal
// switches to one `connector` mark instead (the reconciler then re-evaluates the whole connector once,
// which is far cheaper than a million single marks).
//
// Pull sources never answer SCIM queries, so their rows skip the e-mail index, and a group's
// display-name key is made unique with its id: identity providers allow two groups of one name
// (both then feed the directory group of that name).

import type { Kysely } from 'kysely';
import type { ScimDoc } from '../domain/scim/resource.ts';
import { searchDocument } from '../domain/scim/resource.ts';
import { foldCase, RESOURCE_TYPES } from '../domain/scim/schema.ts';
import type { Db, Dialect } from './db.ts';
import { insertRows, isUniqueViolation, now } from './db.ts';
import { chunks } from './mirror.ts';
import type { Database, DirtyKind } from './schema.ts';

type Trx = Kysely<Database>;


/** Marks of one run: record by record until there are too many, then one mark for the connector. */
export class RunMarks {
  private written = 0;
  private connectorMarked = false;
  constructor(
    readonly connectorId: string,
    readonly runId: string,
    readonly dialect: Dialect,
    /** record marks a run may write before it switches to a single connector mark */
    readonly bulkThreshold = 20_000,
  ) {}

  get bulk(): boolean {
    return this.connectorMarked;
  }

  async add(trx: Trx, marks: { kind: DirtyKind; ref: string; ref2?: string }[]): Promise<void> {
    if (marks.length === 0) return;
    if (!this.connectorMarked && this.written + marks.length > this.bulkThreshold) {
      await trx.insertInto('dirty_marks').values({ connector_id: this.connectorId, kind: 'connector', ref: '', ref2: '', run_id: this.runId }).execute();
      this.connectorMarked = true;
    }
    if (this.connectorMarked) return;
    for (const part of chunks(marks, 200)) {
      await trx
        .insertInto('dirty_marks')
        .values(part.map((m) => ({ connector_id: this.connectorId, kind: m.kind, ref: m.ref, ref2: m.ref2 ?? '', run_id: this.runId })))
        .execute();
    }
    this.written += marks.length;
  }
}

export interface PulledRecord {
  /** the provider's immutable id (the mirror id) */
  id: string;
  doc: ScimDoc;
}

export interface UpsertResult {
  created: number;
  updated: number;
  unchanged: number;
  /** not written: another record holds the same userName */
  conflicts: { id: string; userName: string; heldBy: string }[];
}

export interface MemberChange {
  added: number;
  removed: number;
}

/** Writes of one transaction. */
export class MirrorWriter {
  constructor(
    readonly trx: Trx,
    private readonly marks: RunMarks,
  ) {}

  private get connectorId(): string {
    return this.marks.connectorId;
  }

  /** Insert new users, update changed ones; users whose userName another user holds are reported, not written. */
  async upsertUsers(records: PulledRecord[]): Promise<UpsertResult> {
    const result: UpsertResult = { created: 0, updated: 0, unchanged: 0, conflicts: [] };
    if (records.length === 0) return result;
    const at = now();
    const existing = new Map<string, { resource: string; key: string; version: number }>();
    for (const part of chunks(records.map((r) => r.id))) {
      const rows = await this.trx
        .selectFrom('mirror_users')
        .select(['id', 'resource', 'user_name_key', 'version'])
        .where('connector_id', '=', this.connectorId)
        .where('id', 'in', part)
        .execute();
      for (const r of rows) existing.set(r.id, { resource: r.resource, key: r.user_name_key, version: Number(r.version) });
    }
    // Keep the last representation of an id (a page may repeat an object).
    const latest = new Map<string, PulledRecord & { text: string; key: string }>();
    for (const r of records) latest.set(r.id, { ...r, text: JSON.stringify(r.doc), key: foldCase(String(r.doc.userName)) });
    const changed = [...latest.values()].filter((r) => existing.get(r.id)?.resource !== r.text);
    result.unchanged = latest.size - changed.length;
    if (changed.length === 0) return result;

    // Who holds the userNames about to be taken: another record than the one taking it is a conflict,
    // unless that record gives the name up in this same write (then it is written first).
    const holders = new Map<string, string>();
    const keys = [...new Set(changed.map((r) => r.key))];
    for (const part of chunks(keys)) {
      const rows = await this.trx
        .selectFrom('mirror_users')
        .select(['id', 'user_name_key'])
        .where('connector_id', '=', this.connectorId)
        .where('user_name_key', 'in', part)
        .execute();
      for (const r of rows) holders.set(r.user_name_key, r.id);
    }
    const taking = new Map<string, string>(); // key → id that takes it in this write
    const ordered: typeof changed = [];
    const later: typeof changed = [];
    for (const r of changed) {
      const holder = holders.get(r.key);
      const claimed = taking.get(r.key);
      if (claimed !== undefined && claimed !== r.id) {
        result.conflicts.push({ id: r.id, userName: String(r.doc.userName), heldBy: claimed });
        continue;
      }
      if (holder !== undefined && holder !== r.id) {
        const freed = latest.get(holder);
        if (!freed || freed.key === r.key) {
          result.conflicts.push({ id: r.id, userName: String(r.doc.userName), heldBy: holder });
          continue;
        }
        later.push(r); // the holder renames in this write: take the name after it let go
      } else ordered.push(r);
      taking.set(r.key, r.id);
    }

    const marks: { kind: DirtyKind; ref: string }[] = [];
    const inserts: (typeof changed)[number][] = [];
    const deferred = new Set(later);
    for (const r of [...ordered, ...later]) {
      if (deferred.has(r)) {
        // the holder was to give the name up above; check that it did
        const still = await this.trx.selectFrom('mirror_users').select('id').where('connector_id', '=', this.connectorId).where('user_name_key', '=', r.key).executeTakeFirst();
        if (still && still.id !== r.id) {
          result.conflicts.push({ id: r.id, userName: String(r.doc.userName), heldBy: still.id });
          continue;
        }
      }
      const before = existing.get(r.id);
      if (!before) {
        inserts.push(r);
        continue;
      }
      try {
        await this.trx
          .updateTable('mirror_users')
          .set({
            user_name: String(r.doc.userName),
            user_name_key: r.key,
            external_id: typeof r.doc.externalId === 'string' ? r.doc.externalId : null,
            resource: r.text,
            search: JSON.stringify(searchDocument(RESOURCE_TYPES.User, r.doc)),
            version: before.version + 1,
            updated_at: at,
          })
          .where('connector_id', '=', this.connectorId)
          .where('id', '=', r.id)
          .execute();
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        throw new Error(`userName '${String(r.doc.userName)}' of ${r.id} is held by another user of this connector`);
      }
      result.updated++;
      marks.push({ kind: 'user', ref: r.id });
    }
    if (inserts.length) {
      await insertRows(
        this.trx,
        this.marks.dialect,
        'mirror_users',
        ['connector_id', 'id', 'user_name', 'user_name_key', 'external_id', 'resource', 'search', 'version', 'created_at', 'updated_at'],
        inserts.map((r) => [
          this.connectorId,
          r.id,
          String(r.doc.userName),
          r.key,
          typeof r.doc.externalId === 'string' ? r.doc.externalId : null,
          r.text,
          JSON.stringify(searchDocument(RESOURCE_TYPES.User, r.doc)),
          1,
          at,
          at,
        ]),
      );
      result.created += inserts.length;
      for (const r of inserts) marks.push({ kind: 'user', ref: r.id });
    }
    await this.marks.add(this.trx, marks);
    return result;
  }

  /** Delete users; each leaves every group. Returns how many existed. */
  async deleteUsers(ids: string[]): Promise<number> {
    let n = 0;
    const marks: { kind: DirtyKind; ref: string; ref2?: string }[] = [];
    for (const part of chunks(ids)) {
      const left = await this.trx.deleteFrom('mirror_members').where('connector_id', '=', this.connectorId).where('member_id', 'in', part).returning(['group_id', 'member_id']).execute();
      for (const m of left) marks.push({ kind: 'membership', ref: m.group_id, ref2: m.member_id });
      const gone = await this.trx.deleteFrom('mirror_users').where('connector_id', '=', this.connectorId).where('id', 'in', part).returning('id').execute();
      for (const g of gone) marks.push({ kind: 'user', ref: g.id });
      n += gone.length;
    }
    await this.marks.add(this.trx, marks);
    return n;
  }

  /** Insert new groups, update changed ones. */
  async upsertGroups(records: PulledRecord[]): Promise<{ created: number; updated: number; unchanged: number }> {
    const result = { created: 0, updated: 0, unchanged: 0 };
    if (records.length === 0) return result;
    const at = now();
    const existing = new Map<string, { resource: string; version: number }>();
    for (const part of chunks(records.map((r) => r.id))) {
      const rows = await this.trx.selectFrom('mirror_groups').select(['id', 'resource', 'version']).where('connector_id', '=', this.connectorId).where('id', 'in', part).execute();
      for (const r of rows) existing.set(r.id, { resource: r.resource, version: Number(r.version) });
    }
    const latest = new Map<string, PulledRecord & { text: string }>();
    for (const r of records) latest.set(r.id, { ...r, text: JSON.stringify(r.doc) });
    const marks: { kind: DirtyKind; ref: string }[] = [];
    const inserts: (PulledRecord & { text: string })[] = [];
    const columns = (r: PulledRecord & { text: string }) => ({
      display_name: String(r.doc.displayName),
      display_name_key: `${foldCase(String(r.doc.displayName))}\u001f${r.id}`,
      external_id: typeof r.doc.externalId === 'string' ? r.doc.externalId : null,
      resource: r.text,
      search: JSON.stringify(searchDocument(RESOURCE_TYPES.Group, r.doc)),
    });
    for (const r of latest.values()) {
      const before = existing.get(r.id);
      if (before?.resource === r.text) {
        result.unchanged++;
        continue;
      }
      if (!before) {
        inserts.push(r);
        continue;
      }
      await this.trx
        .updateTable('mirror_groups')
        .set({ ...columns(r), version: before.version + 1, updated_at: at })
        .where('connector_id', '=', this.connectorId)
        .where('id', '=', r.id)
        .execute();
      result.updated++;
      marks.push({ kind: 'group', ref: r.id });
    }
    for (const part of chunks(inserts, 200)) {
      await this.trx
        .insertInto('mirror_groups')
        .values(part.map((r) => ({ connector_id: this.connectorId, id: r.id, ...columns(r), version: 1, created_at: at, updated_at: at })))
        .execute();
      result.created += part.length;
      for (const r of part) marks.push({ kind: 'group', ref: r.id });
    }
    await this.marks.add(this.trx, marks);
    return result;
  }

  /** Delete groups with their memberships. */
  async deleteGroups(ids: string[]): Promise<number> {
    let n = 0;
    const marks: { kind: DirtyKind; ref: string; ref2?: string }[] = [];
    for (const part of chunks(ids)) {
      const left = await this.trx.deleteFrom('mirror_members').where('connector_id', '=', this.connectorId).where('group_id', 'in', part).returning(['group_id', 'member_id']).execute();
      for (const m of left) marks.push({ kind: 'membership', ref: m.group_id, ref2: m.member_id });
      const gone = await this.trx.deleteFrom('mirror_groups').where('connector_id', '=', this.connectorId).where('id', 'in', part).returning('id').execute();
      for (const g of gone) marks.push({ kind: 'group', ref: g.id });
      n += gone.length;
    }
    await this.marks.add(this.trx, marks);
    return n;
  }

  /** Make a group's user members exactly `memberIds` (compared with what the mirror holds). */
  async replaceMembers(groupId: string, memberIds: Iterable<string>): Promise<MemberChange> {
    const want = new Set(memberIds);
    const rows = await this.trx.selectFrom('mirror_members').select('member_id').where('connector_id', '=', this.connectorId).where('group_id', '=', groupId).execute();
    const have = new Set(rows.map((r) => r.member_id));
    const add = [...want].filter((m) => !have.has(m));
    const remove = [...have].filter((m) => !want.has(m));
    return this.changeMembers(groupId, add, remove);
  }

  /** Make a user a member of exactly these groups (those the mirror has). */
  async setUserGroups(userId: string, groupIds: string[]): Promise<MemberChange> {
    const have = new Set(
      (await this.trx.selectFrom('mirror_members').select('group_id').where('connector_id', '=', this.connectorId).where('member_id', '=', userId).execute()).map((r) => r.group_id),
    );
    const known = groupIds.length
      ? new Set((await this.trx.selectFrom('mirror_groups').select('id').where('connector_id', '=', this.connectorId).where('id', 'in', groupIds).execute()).map((r) => r.id))
      : new Set<string>();
    const want = new Set(groupIds.filter((g) => known.has(g)));
    const total: MemberChange = { added: 0, removed: 0 };
    for (const g of want) {
      if (have.has(g)) continue;
      total.added += (await this.changeMembers(g, [userId], [])).added;
    }
    for (const g of have) {
      if (want.has(g)) continue;
      total.removed += (await this.changeMembers(g, [], [userId])).removed;
    }
    return total;
  }

  /** Add and remove user members of a group (adding one that is there, or removing one that is not, is a no-op). */
  async changeMembers(groupId: string, add: string[], remove: string[]): Promise<MemberChange> {
    const marks: { kind: DirtyKind; ref: string; ref2: string }[] = [];
    let added = 0;
    let removed = 0;
    for (const part of chunks(remove)) {
      const gone = await this.trx
        .deleteFrom('mirror_members')
        .where('connector_id', '=', this.connectorId)
        .where('group_id', '=', groupId)
        .where('member_id', 'in', part)
        .returning('member_id')
        .execute();
      for (const g of gone) marks.push({ kind: 'membership', ref: groupId, ref2: g.member_id });
      removed += gone.length;
    }
    if (add.length) {
      added = await insertRows(
        this.trx,
        this.marks.dialect,
        'mirror_members',
        ['connector_id', 'group_id', 'member_id', 'member_type'],
        add.map((m) => [this.connectorId, groupId, m, 'User']),
        true,
      );
      // a mark for a membership that was there already costs the reconciler a no-op, nothing more
      if (added) for (const m of add) marks.push({ kind: 'membership', ref: groupId, ref2: m });
    }
    await this.marks.add(this.trx, marks);
    return { added, removed };
  }
}

/** Ids of a connector's mirrored users or groups, in pages (bounded memory per query). */
export async function mirrorIds(db: Db | Trx, connectorId: string, table: 'mirror_users' | 'mirror_groups'): Promise<Set<string>> {
  const k = 'kysely' in db ? db.kysely : db;
  const out = new Set<string>();
  for (let after = ''; ; ) {
    const rows = await k.selectFrom(table).select('id').where('connector_id', '=', connectorId).where('id', '>', after).orderBy('id').limit(10_000).execute();
    for (const r of rows) out.add(r.id);
    if (rows.length < 10_000) return out;
    after = rows[rows.length - 1]!.id;
  }
}

/** What a pull source keeps between runs (delta links, nested-group edges), as JSON. */
export async function readSourceState<T>(db: Db, connectorId: string, name: string): Promise<T | undefined> {
  const row = await db.kysely.selectFrom('source_state').select('value').where('connector_id', '=', connectorId).where('name', '=', name).executeTakeFirst();
  return row ? (JSON.parse(row.value) as T) : undefined;
}

export async function writeSourceState(trx: Trx, connectorId: string, name: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value);
  const at = now();
  await trx
    .insertInto('source_state')
    .values({ connector_id: connectorId, name, value: text, updated_at: at })
    .onConflict((oc) => oc.columns(['connector_id', 'name']).doUpdateSet({ value: text, updated_at: at }))
    .execute();
}

export async function clearSourceState(trx: Trx, connectorId: string, name: string): Promise<void> {
  await trx.deleteFrom('source_state').where('connector_id', '=', connectorId).where('name', '=', name).execute();
}
