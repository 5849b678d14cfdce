// `usersync backup <file>`: an online copy of the SQLite database, taken while another process keeps
// writing to it; whole, integrity-checked, private, never over an existing file.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.ts';
import type { Db } from '../../src/store/db.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import { usersyncCli } from '../support/cli.ts';
import { dropSchema, PG_URL, uniqueName } from '../support/store.ts';

describe('usersync backup', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-backup-'));
  const env = { ...process.env, DATABASE_URL: path.join(dir, 'usersync.db'), USERSYNC_SECRET_KEY: '', LOG_LEVEL: 'warn' };
  let db: Db;

  beforeAll(async () => {
    db = await openStore({ url: env.DATABASE_URL });
    const store = new ConnectorStore(db);
    for (let i = 0; i < 20; i++) await store.create({ id: `c${i}`, name: `Connector ${i}`, kind: 'scim' }, 'test');
  });
  afterAll(async () => {
    await db?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('copies the database while another process writes, and the copy is whole and private', async () => {
    // this process keeps writing (audit rows) for as long as the backup runs
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await db.kysely.insertInto('audit_log').values({ actor: 'test', action: 'busy', target: String(written), details: '{}', at: new Date().toISOString() }).execute();
        written++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const file = path.join(dir, 'copy.db');
    const res = await usersyncCli(env, 'backup', file);
    writing = false;
    await writer;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^backup written to .*copy\.db \([\d.]+ MB in [\d.]+ s; integrity check ok\)$/m);
    expect(written).toBeGreaterThan(0);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    const copy = new SqliteDatabase(file, { readonly: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(copy.prepare('SELECT count(*) AS n FROM connectors').get()).toEqual({ n: 20 });
      // a snapshot: some of the writes made during the backup, never more than were made
      const { n } = copy.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'busy'").get() as { n: number };
      expect(n).toBeLessThanOrEqual(written);
    } finally {
      copy.close();
    }
    // the backup itself is audited
    const audited = await db.kysely.selectFrom('audit_log').select('target').where('action', '=', 'store.backup').execute();
    expect(audited.map((a) => a.target)).toEqual([file]);
  });

  it('refuses to overwrite a file, and says what to do on PostgreSQL', async () => {
    const existing = path.join(dir, 'existing.db');
    fs.writeFileSync(existing, 'keep me');
    const res = await usersyncCli(env, 'backup', existing);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/exists already: give a new file name/);
    expect(fs.readFileSync(existing, 'utf8')).toBe('keep me');
    const missing = await usersyncCli(env, 'backup', path.join(dir, 'no', 'such', 'folder.db'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/folder .* does not exist/);
    const schema = uniqueName('backup');
    try {
      const pg = await usersyncCli({ ...env, DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema }, 'backup', path.join(dir, 'pg.db'));
      expect(pg.code).toBe(1);
      expect(pg.stderr).toMatch(/PostgreSQL: back it up with pg_dump/);
    } finally {
      await dropSchema(schema);
    }
  });
});
