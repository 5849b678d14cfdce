// The mirror: each connector's users, groups and memberships as the identity provider presents them.
// Every write marks what changed (dirty marks) in the same transaction, for the reconciler.
// Memberships are rows of their own; adding or removing members are set operations whose cost depends
// on the members changed, never on the size of the group.

import { newId } from './ids.ts';
import type { Kysely } from 'kysely';
import { CompiledQuery, sql } from 'kysely';
import { conflict, notFound, badRequest } from '../domain/scim/errors.ts';
import type { MemberOp } from '../domain/scim/patch.ts';
import type { Condition } from '../domain/scim/query.ts';
import type { MemberRef, ScimDoc } from '../domain/scim/resource.ts';
import { searchDocument } from '../domain/scim/resource.ts';
import type { ResourceKind } from '../domain/scim/schema.ts';
import { foldCase, RESOURCE_TYPES } from '../domain/scim/schema.ts';
import type { Db } from './db.ts';
import { isUniqueViolation, now, placeholder } from './db.ts';
import { filterToSql } from './filter-sql.ts';
import type { Database, DirtyKind } from './schema.ts';

export interface MirrorRecord {
  kind: ResourceKind;
  connectorId: string;
  id: string;
  doc: ScimDoc;
  version: number;
  created: string;
  lastModified: string;
}

export interface MemberRow {
  memberId: string;
  memberType: 'User' | 'Group';
}

type Trx = Kysely<Database>;

const CHUNK = 500;

export function chunks<T>(list: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export interface DirtyMark {
  kind: DirtyKind;
  ref: string;
  ref2?: string;
}

export async function markDirty(trx: Trx, connectorId: string, marks: DirtyMark[]): Promise<void> {
  for (const part of chunks(marks, 200)) {
    await trx
      .insertInto('dirty_marks')
      .values(part.map((m) => ({ connector_id: connectorId, kind: m.kind, ref: m.ref, ref2: m.ref2 ?? '' })))
      .execute();
  }
}

function emailKeys(doc: ScimDoc | undefined): Set<string> {
  const keys = new Set<string>();
  for (const e of doc && Array.isArray(doc.emails) ? (doc.emails as { value?: unknown }[]) : []) {
    if (typeof e?.value === 'string') keys.add(foldCase(e.value));
  }
  return keys;
}

function keyColumns(kind: ResourceKind, doc: ScimDoc) {
  const externalId = typeof doc.externalId === 'string' ? doc.externalId : null;
  if (kind === 'User') {
    const userName = doc.userName as string;
    return { user_name: userName, user_name_key: foldCase(userName), external_id: externalId };
  }
  const displayName = doc.displayName as string;
  return { display_name: displayName, display_name_key: foldCase(displayName), external_id: externalId };
}

function uniquenessMessage(kind: ResourceKind, doc: ScimDoc): string {
  return kind === 'User'
    ? `a user with userName '${String(doc.userName)}' already exists`
    : `a group with displayName '${String(doc.displayName)}' already exists`;
}

/** A filter that is exactly `<unique key> eq "…"`: the column and the (already folded) value. */
function uniqueKeyLookup(kind: ResourceKind, cond: Condition): { column: string; value: string } | undefined {
  if (cond.k !== 'cmp' || cond.op !== 'eq' || cond.kind !== 'string' || cond.path.extension !== null || cond.path.names.length !== 1) return undefined;
  const name = cond.path.names[0];
  if (name === 'id') return { column: 'id', value: cond.value as string };
  if (kind === 'User' && name === 'userName') return { column: 'user_name_key', value: cond.value as string };
  if (kind === 'Group' && name === 'displayName') return { column: 'display_name_key', value: cond.value as string };
  return undefined;
}

function tableOf(kind: ResourceKind): 'mirror_users' | 'mirror_groups' {
  return kind === 'User' ? 'mirror_users' : 'mirror_groups';
}

const ROW_COLUMNS = 'connector_id, id, resource, version, created_at, updated_at';

interface RawRow {
  connector_id: string;
  id: string;
  resource: string;
  version: number | string;
  created_at: string;
  updated_at: string;
}

function toRecord(kind: ResourceKind, row: RawRow): MirrorRecord {
  return {
    kind,
    connectorId: row.connector_id,
    id: row.id,
    doc: JSON.parse(row.resource) as ScimDoc,
    version: Number(row.version),
    created: row.created_at,
    lastModified: row.updated_at,
  };
}

export class MirrorStore {
  constructor(private readonly db: Db) {}

  /** Create a resource (and, for groups, its initial members). 409 on a duplicate userName/displayName. */
  async create(connectorId: string, kind: ResourceKind, doc: ScimDoc, members?: MemberRef[], id: string = newId()): Promise<MirrorRecord> {
    const type = RESOURCE_TYPES[kind];
    const at = now();
    const row = {
      connector_id: connectorId,
      id,
      ...keyColumns(kind, doc),
      resource: JSON.stringify(doc),
      search: JSON.stringify(searchDocument(type, doc)),
      version: 1,
      created_at: at,
      updated_at: at,
    };
    try {
      await this.db.transaction(async (trx) => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        await trx.insertInto(tableOf(kind)).values(row as any).execute();
        if (kind === 'User') await this.writeEmails(trx, connectorId, id, doc, undefined);
        const marks: DirtyMark[] = [{ kind: kind === 'User' ? 'user' : 'group', ref: id }];
        if (kind === 'Group' && members?.length) {
          const added = await this.addMembers(trx, connectorId, id, members);
          for (const m of added) marks.push({ kind: 'membership', ref: id, ref2: m });
        }
        await markDirty(trx, connectorId, marks);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(uniquenessMessage(kind, doc));
      throw e;
    }
    return { kind, connectorId, id, doc, version: 1, created: at, lastModified: at };
  }

  async get(connectorId: string, kind: ResourceKind, id: string, trx?: Trx): Promise<MirrorRecord | undefined> {
    if (!trx && this.db.reader) {
      const rows = this.db.reader.all<RawRow>(`SELECT ${ROW_COLUMNS} FROM ${tableOf(kind)} WHERE connector_id = ? AND id = ?`, [connectorId, id]);
      return rows[0] ? toRecord(kind, rows[0]) : undefined;
    }
    const row = await (trx ?? this.db.kysely)
      .selectFrom(tableOf(kind))
      .select(['connector_id', 'id', 'resource', 'version', 'created_at', 'updated_at'])
      .where('connector_id', '=', connectorId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(kind, row) : undefined;
  }

  /** Read a row for update: on PostgreSQL the row stays locked until the transaction ends. */
  private async getForUpdate(trx: Trx, connectorId: string, kind: ResourceKind, id: string): Promise<MirrorRecord | undefined> {
    let q = trx
      .selectFrom(tableOf(kind))
      .select(['connector_id', 'id', 'resource', 'version', 'created_at', 'updated_at'])
      .where('connector_id', '=', connectorId)
      .where('id', '=', id);
    if (this.db.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toRecord(kind, row) : undefined;
  }

  /** List with an optional compiled filter; `startIndex` is 1-based. */
  async list(
    connectorId: string,
    kind: ResourceKind,
    cond: Condition | undefined,
    startIndex: number,
    count: number,
  ): Promise<{ total: number; records: MirrorRecord[] }> {
    const table = tableOf(kind);
    const unique = cond && startIndex === 1 && count > 0 ? uniqueKeyLookup(kind, cond) : undefined;
    if (unique) {
      // Entra's lookups (userName, displayName, id eq "…"): one row at most, so no ordering or paging,
      // and a statement written once rather than built per request.
      const text = `SELECT ${ROW_COLUMNS} FROM ${table} WHERE connector_id = ${placeholder(this.db.dialect, 1)} AND ${unique.column} = ${placeholder(this.db.dialect, 2)}`;
      const rows = this.db.reader
        ? this.db.reader.all<RawRow>(text, [connectorId, unique.value])
        : (await this.db.kysely.executeQuery<RawRow>(CompiledQuery.raw(text, [connectorId, unique.value]))).rows;
      return { total: rows.length, records: rows.map((r) => toRecord(kind, r)) };
    }
    const where = cond ? filterToSql(this.db.dialect, kind, 'r', cond, connectorId) : sql`1 = 1`;
    const records =
      count === 0
        ? []
        : (
            await sql<RawRow>`SELECT r.connector_id, r.id, r.resource, r.version, r.created_at, r.updated_at
              FROM ${sql.table(table)} r
              WHERE r.connector_id = ${connectorId} AND ${where}
              ORDER BY r.id
              LIMIT ${count} OFFSET ${startIndex - 1}`.execute(this.db.kysely)
          ).rows.map((r) => toRecord(kind, r));
    let total: number;
    if (startIndex === 1 && records.length < count) total = records.length;
    else {
      const res = await sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql.table(table)} r
        WHERE r.connector_id = ${connectorId} AND ${where}`.execute(this.db.kysely);
      total = Number(res.rows[0]?.n ?? 0);
    }
    return { total, records };
  }

  /** Replace the whole document (PUT); for groups with a `members` list, replace the members too. */
  async replace(connectorId: string, kind: ResourceKind, id: string, doc: ScimDoc, members?: MemberRef[]): Promise<MirrorRecord> {
    return this.update(connectorId, kind, id, async () => ({
      doc,
      memberOps: kind === 'Group' && members !== undefined ? [{ k: 'replace', members } as MemberOp] : [],
    }));
  }

  /**
   * Read-modify-write of one resource document under a row lock (PostgreSQL) or the single writer
   * (SQLite); membership changes are applied as set operations in the same transaction.
   */
  async update(
    connectorId: string,
    kind: ResourceKind,
    id: string,
    change: (current: MirrorRecord) => Promise<{ doc: ScimDoc; memberOps: MemberOp[] }> | { doc: ScimDoc; memberOps: MemberOp[] },
  ): Promise<MirrorRecord> {
    const type = RESOURCE_TYPES[kind];
    let attempted: ScimDoc = {};
    try {
      return await this.db.transaction(async (trx) => {
        const current = await this.getForUpdate(trx, connectorId, kind, id);
        if (!current) throw notFound(`${kind} ${id} not found`);
        const { doc, memberOps } = await change(current);
        attempted = doc;
        const marks: DirtyMark[] = [];
        let membersChanged = false;
        for (const op of memberOps) {
          const changed = await this.applyMemberOp(trx, connectorId, id, op);
          if (changed.length) membersChanged = true;
          for (const m of changed) marks.push({ kind: 'membership', ref: id, ref2: m });
        }
        // the same object back means unchanged (a members-only PATCH): no need to serialise both
        const docChanged = doc !== current.doc && JSON.stringify(doc) !== JSON.stringify(current.doc);
        if (!docChanged && !membersChanged) return current;
        const at = now();
        const version = current.version + 1;
        await trx
          .updateTable(tableOf(kind))
          .set({
            ...(docChanged
              ? { ...keyColumns(kind, doc), resource: JSON.stringify(doc), search: JSON.stringify(searchDocument(type, doc)) }
              : {}),
            version,
            updated_at: at,
            // eslint-disable-next-line @typescript-eslint/no-explicit-any
          } as any)
          .where('connector_id', '=', connectorId)
          .where('id', '=', id)
          .execute();
        if (docChanged && kind === 'User') await this.writeEmails(trx, connectorId, id, doc, current.doc);
        if (docChanged) marks.push({ kind: kind === 'User' ? 'user' : 'group', ref: id });
        await markDirty(trx, connectorId, marks);
        return { ...current, doc, version, lastModified: at };
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(uniquenessMessage(kind, attempted));
      throw e;
    }
  }

  /** Delete a resource. A deleted user leaves every group; a deleted group loses its members. */
  async delete(connectorId: string, kind: ResourceKind, id: string): Promise<void> {
    await this.db.transaction(async (trx) => {
      const current = await this.getForUpdate(trx, connectorId, kind, id);
      if (!current) throw notFound(`${kind} ${id} not found`);
      if (kind === 'User') await this.writeEmails(trx, connectorId, id, undefined, current.doc);
      await trx.deleteFrom(tableOf(kind)).where('connector_id', '=', connectorId).where('id', '=', id).execute();
      const marks: DirtyMark[] = [{ kind: kind === 'User' ? 'user' : 'group', ref: id }];
      if (kind === 'User') {
        const left = await trx
          .deleteFrom('mirror_members')
          .where('connector_id', '=', connectorId)
          .where('member_id', '=', id)
          .returning('group_id')
          .execute();
        for (const g of left) marks.push({ kind: 'membership', ref: g.group_id, ref2: id });
      } else {
        // members cascade with the group row; the group's own memberships in other groups go too
        await trx.deleteFrom('mirror_members').where('connector_id', '=', connectorId).where('group_id', '=', id).execute();
        await trx.deleteFrom('mirror_members').where('connector_id', '=', connectorId).where('member_id', '=', id).execute();
      }
      await markDirty(trx, connectorId, marks);
    });
  }

  /** Keep the e-mail index of a user in step with its document (`before`: the document it replaces). */
  private async writeEmails(trx: Trx, connectorId: string, userId: string, doc: ScimDoc | undefined, before: ScimDoc | undefined): Promise<void> {
    const next = emailKeys(doc);
    const old = emailKeys(before);
    const gone = [...old].filter((k) => !next.has(k));
    const added = [...next].filter((k) => !old.has(k));
    if (gone.length) {
      await trx.deleteFrom('mirror_user_emails').where('connector_id', '=', connectorId).where('value_key', 'in', gone).where('user_id', '=', userId).execute();
    }
    if (added.length) {
      await trx
        .insertInto('mirror_user_emails')
        .values(added.map((value_key) => ({ connector_id: connectorId, user_id: userId, value_key })))
        .execute();
    }
  }

  /** The members of a group (only read when a response asks for them). */
  async members(connectorId: string, groupIds: string[]): Promise<Map<string, MemberRow[]>> {
    const out = new Map<string, MemberRow[]>(groupIds.map((g) => [g, []]));
    for (const part of chunks(groupIds)) {
      const rows = await this.db.kysely
        .selectFrom('mirror_members')
        .select(['group_id', 'member_id', 'member_type'])
        .where('connector_id', '=', connectorId)
        .where('group_id', 'in', part)
        .orderBy('member_id')
        .execute();
      for (const r of rows) out.get(r.group_id)!.push({ memberId: r.member_id, memberType: r.member_type });
    }
    return out;
  }

  /** The groups a user is a direct member of. */
  async groupsOf(connectorId: string, memberIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(memberIds.map((m) => [m, []]));
    for (const part of chunks(memberIds)) {
      const rows = await this.db.kysely
        .selectFrom('mirror_members')
        .select(['group_id', 'member_id'])
        .where('connector_id', '=', connectorId)
        .where('member_id', 'in', part)
        .orderBy('group_id')
        .execute();
      for (const r of rows) out.get(r.member_id)!.push(r.group_id);
    }
    return out;
  }

  private async existing(trx: Trx, connectorId: string, ids: string[]): Promise<Map<string, 'User' | 'Group'>> {
    const found = new Map<string, 'User' | 'Group'>();
    for (const part of chunks(ids)) {
      const users = await trx.selectFrom('mirror_users').select('id').where('connector_id', '=', connectorId).where('id', 'in', part).execute();
      for (const u of users) found.set(u.id, 'User');
      const missing = part.filter((p) => !found.has(p));
      if (missing.length) {
        const groups = await trx.selectFrom('mirror_groups').select('id').where('connector_id', '=', connectorId).where('id', 'in', missing).execute();
        for (const g of groups) found.set(g.id, 'Group');
      }
    }
    return found;
  }

  /** Insert members that are not there yet; returns the ids actually added. Unknown ids are a 400. */
  private async addMembers(trx: Trx, connectorId: string, groupId: string, members: MemberRef[]): Promise<string[]> {
    const ids = [...new Set(members.map((m) => m.value))];
    const found = await this.existing(trx, connectorId, ids);
    const unknown = ids.filter((i) => !found.has(i));
    if (unknown.length) {
      throw badRequest('invalidValue', `no user or group with id ${unknown.slice(0, 5).map((u) => `'${u}'`).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`);
    }
    if (ids.includes(groupId)) throw badRequest('invalidValue', 'a group cannot be a member of itself');
    const added: string[] = [];
    for (const part of chunks(ids)) {
      const rows = await trx
        .insertInto('mirror_members')
        .values(part.map((m) => ({ connector_id: connectorId, group_id: groupId, member_id: m, member_type: found.get(m)! })))
        .onConflict((oc) => oc.doNothing())
        .returning('member_id')
        .execute();
      for (const r of rows) added.push(r.member_id);
    }
    return added;
  }

  private async removeMembers(trx: Trx, connectorId: string, groupId: string, ids: string[]): Promise<string[]> {
    const removed: string[] = [];
    for (const part of chunks([...new Set(ids)])) {
      const rows = await trx
        .deleteFrom('mirror_members')
        .where('connector_id', '=', connectorId)
        .where('group_id', '=', groupId)
        .where('member_id', 'in', part)
        .returning('member_id')
        .execute();
      for (const r of rows) removed.push(r.member_id);
    }
    return removed;
  }

  /** Apply one membership delta; returns the member ids whose membership changed. */
  private async applyMemberOp(trx: Trx, connectorId: string, groupId: string, op: MemberOp): Promise<string[]> {
    switch (op.k) {
      case 'add':
        return this.addMembers(trx, connectorId, groupId, op.members);
      case 'remove':
        return this.removeMembers(trx, connectorId, groupId, op.ids);
      case 'removeAll': {
        const rows = await trx
          .deleteFrom('mirror_members')
          .where('connector_id', '=', connectorId)
          .where('group_id', '=', groupId)
          .returning('member_id')
          .execute();
        return rows.map((r) => r.member_id);
      }
      case 'replace': {
        const wanted = new Set(op.members.map((m) => m.value));
        const current = await trx
          .selectFrom('mirror_members')
          .select('member_id')
          .where('connector_id', '=', connectorId)
          .where('group_id', '=', groupId)
          .execute();
        const gone = current.map((c) => c.member_id).filter((m) => !wanted.has(m));
        const removed = await this.removeMembers(trx, connectorId, groupId, gone);
        const added = await this.addMembers(trx, connectorId, groupId, op.members);
        return [...removed, ...added];
      }
    }
  }
}
