// Where a request's time goes, without HTTP: each step of the three hot paths (lookup by userName,
// create a user, add a member) timed in a loop on a store seeded like the benchmark's, next to the
// same database work done with prepared better-sqlite3 statements (what the bare handler does). The
// difference between "store call" and "SQL alone" is the cost of building and compiling queries with
// Kysely plus the store's own logic. Run: `npx tsx bench/breakdown.ts` (about 20 s; not part of the
// bench run, which measures over HTTP).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { applyPatch } from '../src/domain/scim/patch.ts';
import { parseQuery } from '../src/domain/scim/query.ts';
import { normaliseResource, searchDocument } from '../src/domain/scim/resource.ts';
import { foldCase, RESOURCE_TYPES } from '../src/domain/scim/schema.ts';
import { openStore } from '../src/store/db.ts';
import { filterToSql } from '../src/store/filter-sql.ts';
import { MirrorStore } from '../src/store/mirror.ts';
import { seedUsers, userBody } from './lib/seed.ts';

const C = 'bench';
const N = Number(process.env.BREAKDOWN_N ?? 4000);

async function time(label: string, n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(500, n); i++) await fn(n + i); // warm-up (JIT, caches)
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const us = ((performance.now() - t0) * 1000) / n;
  process.stdout.write(`  ${label.padEnd(62)} ${us.toFixed(1).padStart(7)} µs\n`);
  return us;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-breakdown-'));
try {
  const db = await openStore({ url: path.join(dir, 'store.db') });
  await db.kysely
    .insertInto('connectors')
    .values({ id: C, name: C, kind: 'scim', enabled: 1, settings: '{}', created_at: new Date().toISOString(), updated_at: new Date().toISOString() })
    .execute();
  const mirror = new MirrorStore(db);
  const seeded = await seedUsers(db, C, { prefix: 'seed.', count: 10_000, marks: false });
  const pool = await seedUsers(db, C, { prefix: 'pool.', count: 3 * (N + 500), marks: false });
  const groupA = (await mirror.create(C, 'Group', { schemas: [RESOURCE_TYPES.Group.core.id], displayName: 'A' })).id;
  const groupB = (await mirror.create(C, 'Group', { schemas: [RESOURCE_TYPES.Group.core.id], displayName: 'B' })).id;
  const raw = new Database(path.join(dir, 'store.db'));
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  const User = RESOURCE_TYPES.User;
  const name = (i: number) => seeded.userNames[(i * 7919) % seeded.userNames.length]!;

  process.stdout.write(`GET /Users?filter=userName eq "…" (10,000 users), ${N} iterations\n`);
  await time('parse + compile the filter', N, (i) => parseQuery(User, `userName eq "${name(i)}"`));
  await time('build + compile the SQL (Kysely), no execution', N, (i) => {
    const where = filterToSql('sqlite', 'User', 'r', parseQuery(User, `userName eq "${name(i)}"`), C);
    return sql`SELECT r.connector_id, r.id, r.resource, r.version, r.created_at, r.updated_at FROM mirror_users r
      WHERE r.connector_id = ${C} AND ${where} ORDER BY r.id LIMIT ${100} OFFSET ${0}`.compile(db.kysely);
  });
  await time('store call: parseQuery + MirrorStore.list', N, (i) => mirror.list(C, 'User', parseQuery(User, `userName eq "${name(i)}"`), 1, 100));
  const lookup = raw.prepare(
    'SELECT connector_id, id, resource, version, created_at, updated_at FROM mirror_users WHERE connector_id = ? AND user_name_key = ? ORDER BY id LIMIT 100 OFFSET 0',
  );
  await time('SQL alone: the same SELECT, prepared once, + JSON.parse', N, (i) => {
    const rows = lookup.all(C, foldCase(name(i))) as { resource: string }[];
    return rows.map((r) => JSON.parse(r.resource) as unknown);
  });

  process.stdout.write(`POST /Users, ${N} iterations\n`);
  await time('normaliseResource + searchDocument + 2× JSON.stringify', N, (i) => {
    const { doc } = normaliseResource(User, userBody(`x.${i}@example.com`, i));
    return JSON.stringify(doc).length + JSON.stringify(searchDocument(User, doc)).length;
  });
  await time('store call: normaliseResource + MirrorStore.create', N, (i) =>
    mirror.create(C, 'User', normaliseResource(User, userBody(`a.${i}@example.com`, i)).doc),
  );
  const insUser = raw.prepare(
    `INSERT INTO mirror_users (connector_id, id, user_name, user_name_key, external_id, resource, search, version, created_at, updated_at)
     VALUES (?, ?, ?, ?, NULL, ?, ?, 1, ?, ?)`,
  );
  const insMark = raw.prepare('INSERT INTO dirty_marks (connector_id, kind, ref, ref2) VALUES (?, ?, ?, ?)');
  const insEmail = raw.prepare('INSERT INTO mirror_user_emails (connector_id, user_id, value_key) VALUES (?, ?, ?)');
  const createTx = raw.transaction((userName: string, n: number) => {
    const { doc } = normaliseResource(User, userBody(userName, n));
    const id = randomUUID();
    const at = new Date().toISOString();
    insUser.run(C, id, userName, foldCase(userName), JSON.stringify(doc), JSON.stringify(searchDocument(User, doc)), at, at);
    insEmail.run(C, id, foldCase(userName));
    insMark.run(C, 'user', id, '');
  });
  await time('SQL alone: same normalising + 3 prepared INSERTs in a transaction', N, (i) => createTx(`b.${i}@example.com`, i));
  const createMany = raw.transaction((from: number) => {
    for (let j = from; j < from + 50; j++) createTx(`c.${j}@example.com`, j);
  });
  await time('SQL alone: the same, 50 creates per transaction (per create)', N / 50, (i) => createMany(i * 50)).then((us) =>
    process.stdout.write(`  ${'  → per create'.padEnd(62)} ${(us / 50).toFixed(1).padStart(7)} µs\n`),
  );
  const bare = new Database(path.join(dir, 'bare.db'));
  bare.pragma('journal_mode = WAL');
  bare.pragma('synchronous = NORMAL');
  bare.exec('CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL); CREATE UNIQUE INDEX items_name ON items (name)');
  const bareInsert = bare.prepare('INSERT INTO items (id, name, data, created_at) VALUES (?, ?, ?, ?)');
  await time("bare handler's insert (autocommit, as in bench/bare-handler.ts)", N, (i) => {
    const n = `d.${i}@example.com`;
    bareInsert.run(randomUUID(), n, JSON.stringify(userBody(n, i)), new Date().toISOString());
  });
  bare.close();

  process.stdout.write(`PATCH /Groups/{id} add one member, ${N} iterations\n`);
  const patchBody = (userId: string) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Add', path: 'members', value: [{ value: userId }] }],
  });
  const groupDoc = (await mirror.get(C, 'Group', groupA))!.doc;
  await time('applyPatch (the PATCH document)', N, (i) => applyPatch(RESOURCE_TYPES.Group, groupDoc, patchBody(pool.ids[i]!)));
  let k = 0;
  await time('store call: MirrorStore.update with applyPatch', N, () => {
    const userId = pool.ids[k++]!;
    return mirror.update(C, 'Group', groupA, (current) => {
      const r = applyPatch(RESOURCE_TYPES.Group, current.doc, patchBody(userId));
      return { doc: r.changed ? r.doc : current.doc, memberOps: r.memberOps };
    });
  });
  const getGroup = raw.prepare('SELECT connector_id, id, resource, version, created_at, updated_at FROM mirror_groups WHERE connector_id = ? AND id = ?');
  const userExists = raw.prepare('SELECT id FROM mirror_users WHERE connector_id = ? AND id IN (?)');
  const insMember = raw.prepare("INSERT INTO mirror_members (connector_id, group_id, member_id, member_type) VALUES (?, ?, ?, 'User') ON CONFLICT DO NOTHING RETURNING member_id");
  const bump = raw.prepare('UPDATE mirror_groups SET version = ?, updated_at = ? WHERE connector_id = ? AND id = ?');
  const addTx = raw.transaction((groupId: string, userId: string) => {
    const g = getGroup.get(C, groupId) as { resource: string; version: number };
    const r = applyPatch(RESOURCE_TYPES.Group, JSON.parse(g.resource) as Record<string, unknown>, patchBody(userId));
    if (!userExists.get(C, userId)) throw new Error('no such user');
    const added = insMember.all(C, groupId, userId);
    if (added.length && r.memberOps.length) {
      bump.run(g.version + 1, new Date().toISOString(), C, groupId);
      insMark.run(C, 'membership', groupId, userId);
    }
  });
  await time('SQL alone: same applyPatch + 5 prepared statements in a transaction', N, () => addTx(groupB, pool.ids[k++]!));

  raw.close();
  await db.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
