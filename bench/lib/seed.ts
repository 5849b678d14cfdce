// Fast seeding of the mirror for the benchmark: rows written directly with Kysely in one transaction,
// shaped as MirrorStore.create writes them (the same normalised `resource` and folded `search`
// documents, the e-mail index rows), because creating 100,000 users one by one through the store would
// dominate the run. Keep in step with MirrorStore.create when it starts writing more.

import { normaliseResource, searchDocument } from '../../src/domain/scim/resource.ts';
import { foldCase, RESOURCE_TYPES, USER_SCHEMA } from '../../src/domain/scim/schema.ts';
import type { Db } from '../../src/store/db.ts';
import { now } from '../../src/store/db.ts';
import { newId } from '../../src/store/ids.ts';

const ROWS_PER_INSERT = 400;

/** The SCIM body the benchmark POSTs; seeded users are the same shape. */
export function userBody(userName: string, n: number): Record<string, unknown> {
  return {
    schemas: [USER_SCHEMA],
    userName,
    active: true,
    emails: [{ type: 'work', value: userName, primary: true }],
    name: { givenName: `Given${n}`, familyName: `Family${n}` },
  };
}

export interface SeededUsers {
  ids: string[];
  userNames: string[];
}

/**
 * Insert `count` users named `${prefix}${i}@example.com`. With `marks`, each gets a dirty mark as a SCIM
 * create would, so the reconciler brings them into the directory.
 */
export async function seedUsers(db: Db, connectorId: string, opts: { prefix: string; count: number; marks: boolean }): Promise<SeededUsers> {
  const type = RESOURCE_TYPES.User;
  const ids: string[] = [];
  const userNames: string[] = [];
  const at = now();
  await db.transaction(async (trx) => {
    for (let start = 0; start < opts.count; start += ROWS_PER_INSERT) {
      const rows = [];
      for (let i = start; i < Math.min(opts.count, start + ROWS_PER_INSERT); i++) {
        const userName = `${opts.prefix}${i}@example.com`;
        const { doc } = normaliseResource(type, userBody(userName, i));
        const id = newId(); // the ids the store gives new rows
        ids.push(id);
        userNames.push(userName);
        rows.push({
          connector_id: connectorId,
          id,
          user_name: userName,
          user_name_key: foldCase(userName),
          external_id: null,
          resource: JSON.stringify(doc),
          search: JSON.stringify(searchDocument(type, doc)),
          version: 1,
          created_at: at,
          updated_at: at,
        });
      }
      await trx.insertInto('mirror_users').values(rows).execute();
      // the e-mail index MirrorStore keeps beside each user (one row per distinct folded address)
      await trx
        .insertInto('mirror_user_emails')
        .values(rows.map((r) => ({ connector_id: connectorId, user_id: r.id, value_key: foldCase(r.user_name) })))
        .execute();
      if (opts.marks) {
        const part = ids.slice(start);
        for (let j = 0; j < part.length; j += ROWS_PER_INSERT) {
          await trx
            .insertInto('dirty_marks')
            .values(part.slice(j, j + ROWS_PER_INSERT).map((id) => ({ connector_id: connectorId, kind: 'user' as const, ref: id, ref2: '' })))
            .execute();
        }
      }
    }
  });
  return { ids, userNames };
}

/** Make `memberIds` (existing users) members of `groupId`; with `marks`, mark each membership. */
export async function seedMembers(db: Db, connectorId: string, groupId: string, memberIds: string[], opts: { marks: boolean }): Promise<void> {
  await db.transaction(async (trx) => {
    for (let start = 0; start < memberIds.length; start += ROWS_PER_INSERT) {
      const part = memberIds.slice(start, start + ROWS_PER_INSERT);
      await trx
        .insertInto('mirror_members')
        .values(part.map((m) => ({ connector_id: connectorId, group_id: groupId, member_id: m, member_type: 'User' as const })))
        .execute();
      if (opts.marks) {
        await trx
          .insertInto('dirty_marks')
          .values(part.map((m) => ({ connector_id: connectorId, kind: 'membership' as const, ref: groupId, ref2: m })))
          .execute();
      }
    }
    // a membership change bumps the group's version, as the PATCH path does
    await trx.updateTable('mirror_groups').set({ version: (eb) => eb('version', '+', 1), updated_at: now() }).where('connector_id', '=', connectorId).where('id', '=', groupId).execute();
  });
}

