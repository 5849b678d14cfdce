// Test stores: a fresh SQLite file, or a fresh schema in the local PostgreSQL (dropped afterwards).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Db, Dialect } from '../../src/store/db.ts';
import { openStore } from '../../src/store/db.ts';

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const DIALECTS: Dialect[] = ['sqlite', 'postgres'];

export interface TestStore {
  db: Db;
  /** the URL another process can open the same store with */
  url: string;
  pgSchema?: string;
  cleanup(): Promise<void>;
}

let counter = 0;

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

export async function openTestStore(dialect: Dialect): Promise<TestStore> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-test-'));
    const url = path.join(dir, 'store.db');
    const db = await openStore({ url });
    return {
      db,
      url,
      async cleanup() {
        await db.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = uniqueName('t').toLowerCase();
  const db = await openStore({ url: PG_URL, pgSchema: schema, pgPoolSize: 10 });
  return {
    db,
    url: PG_URL,
    pgSchema: schema,
    async cleanup() {
      await db.close();
      await dropSchema(schema);
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
