// An online copy of the SQLite database while the service runs: `VACUUM INTO` reads one consistent
// snapshot (a read transaction, which WAL lets writers continue beside) and writes a compact copy. The
// copy is written under a temporary name, checked with integrity_check, and only then given its name,
// so a file with the backup's name is always a whole, sound database.

import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import type { Db } from './db.ts';

export class BackupError extends Error {}

export async function backupSqlite(db: Db, target: string): Promise<{ file: string; bytes: number; ms: number }> {
  if (db.dialect !== 'sqlite') throw new BackupError('the database is PostgreSQL: back it up with pg_dump (or your PostgreSQL backups); `usersync backup` copies the embedded SQLite database');
  const file = path.resolve(target);
  if (fs.existsSync(file)) throw new BackupError(`${file} exists already: give a new file name (a backup never overwrites)`);
  if (!fs.existsSync(path.dirname(file))) throw new BackupError(`the folder ${path.dirname(file)} does not exist`);
  const partial = `${file}.partial-${process.pid}`;
  const started = Date.now();
  try {
    await sql`VACUUM INTO ${partial}`.execute(db.kysely);
    const copy = new SqliteDatabase(partial, { readonly: true });
    try {
      const result = copy.pragma('integrity_check', { simple: true });
      if (result !== 'ok') throw new BackupError(`the copy failed its integrity check (${String(result)}); nothing was kept`);
    } finally {
      copy.close();
    }
    fs.chmodSync(partial, 0o600); // it holds sealed secrets and token hashes
    fs.linkSync(partial, file); // never replaces a file that appeared meanwhile
    return { file, bytes: fs.statSync(file).size, ms: Date.now() - started };
  } finally {
    fs.rmSync(partial, { force: true });
  }
}
