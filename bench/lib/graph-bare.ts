// The bare-store baseline of `npm run bench -- graph`: the rows a full Graph sync leaves in the directory
// (users, groups, memberships), inserted straight into a fresh SQLite file with better-sqlite3 prepared
// statements in one transaction — the same tables, keys and indexes as the directory tables, the same
// pragmas as the service's store (WAL, synchronous=NORMAL, foreign keys on), time-ordered ids. No
// mirror, no dirty marks, no rules, no change feed, no HTTP: the floor a sync is measured against.

import fs from 'node:fs';
import SqliteDatabase from 'better-sqlite3';
import { newId } from '../../src/store/ids.ts';
import { mulberry32 } from '../../test/support/random.ts';

export interface BareResult {
  users: number;
  groups: number;
  memberships: number;
  ms: number;
  /** of which the COMMIT */
  commitMs: number;
}

export function bareDirectoryInsert(file: string, users: number, groups: number, memberships: number): BareResult {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  const db = new SqliteDatabase(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.exec(`
    CREATE TABLE directory_users (
      id text PRIMARY KEY, username text NOT NULL, username_key text NOT NULL UNIQUE, email text,
      display_name text NOT NULL, active integer NOT NULL, attributes text NOT NULL DEFAULT '{}',
      owner_connector_id text, source_id text, in_scope integer NOT NULL DEFAULT 1,
      created_at text NOT NULL, updated_at text NOT NULL,
      CONSTRAINT directory_users_source UNIQUE (owner_connector_id, source_id));
    CREATE INDEX directory_users_owner ON directory_users (owner_connector_id, in_scope);
    CREATE TABLE directory_groups (
      id text PRIMARY KEY, name text NOT NULL, name_key text NOT NULL UNIQUE, owner_connector_id text, source_id text,
      created_at text NOT NULL, updated_at text NOT NULL,
      CONSTRAINT directory_groups_source UNIQUE (owner_connector_id, source_id));
    CREATE TABLE directory_memberships (
      group_id text NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
      user_id text NOT NULL REFERENCES directory_users (id) ON DELETE CASCADE,
      managed_by text NOT NULL, created_at text NOT NULL,
      CONSTRAINT directory_memberships_pk PRIMARY KEY (group_id, user_id, managed_by));
    CREATE INDEX directory_memberships_user ON directory_memberships (user_id);
  `);
  const insUser = db.prepare(
    'INSERT INTO directory_users (id, username, username_key, email, display_name, active, attributes, owner_connector_id, source_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insGroup = db.prepare('INSERT INTO directory_groups (id, name, name_key, owner_connector_id, source_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const insMember = db.prepare('INSERT INTO directory_memberships (group_id, user_id, managed_by, created_at) VALUES (?, ?, ?, ?)');
  const rnd = mulberry32(1);
  const at = new Date().toISOString();
  const t0 = performance.now();
  let commitMs = 0;
  db.exec('BEGIN');
  const userIds: string[] = new Array<string>(users);
  for (let i = 0; i < users; i++) {
    const id = newId();
    userIds[i] = id;
    const name = `user${i + 1}@contoso.example`;
    insUser.run(id, name, name, name, `First${i + 1} Last${i + 1}`, 1, '{}', 'graph', crypto.randomUUID(), at, at);
  }
  const groupIds: string[] = new Array<string>(groups);
  for (let i = 0; i < groups; i++) {
    const id = newId();
    groupIds[i] = id;
    insGroup.run(id, `group-${i + 1}`, `group-${i + 1}`, 'graph', crypto.randomUUID(), at, at);
  }
  // group by group (as a sync writes them), each group's members distinct, spread at random
  let written = 0;
  for (let g = 0; g < groups; g++) {
    const want = Math.floor(((g + 1) * memberships) / groups) - written;
    const members = new Set<number>();
    while (members.size < Math.min(want, users)) members.add(Math.floor(rnd() * users));
    for (const u of members) insMember.run(groupIds[g]!, userIds[u]!, 'connector:graph', at);
    written += members.size;
  }
  const c0 = performance.now();
  db.exec('COMMIT');
  commitMs = performance.now() - c0;
  const ms = performance.now() - t0;
  db.close();
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  return { users, groups, memberships: written, ms, commitMs };
}
