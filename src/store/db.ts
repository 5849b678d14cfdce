// Opening the store: SQLite (embedded default, WAL, a file under ./data) or PostgreSQL (a postgres:// URL).

import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface StoreOptions {
  /** `postgres://…` / `postgresql://…`, `sqlite:path`, a file path, or `:memory:` */
  url: string;
  /** SQLite: NORMAL survives a killed process; FULL also survives power loss */
  sqliteSynchronous?: 'NORMAL' | 'FULL';
  /** PostgreSQL: the schema to use (created when missing); tests use one each */
  pgSchema?: string;
  pgPoolSize?: number;
}

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL: the schema in use */
  pgSchema?: string;
  /** run fn in one transaction */
  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** SQLite: an online, consistent copy of the database into `file` (backups, previews) */
  snapshot?(file: string): Promise<void>;
  /**
   * SQLite: a second, read-only connection for the hot read paths. It sees committed data only (WAL
   * snapshot), never a transaction in progress on the writer, and needs no turn on the writer's queue.
   */
  reader?: { all<R>(text: string, params: unknown[]): R[] };
  close(): Promise<void>;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

export function sqlitePath(url: string): string {
  return url.replace(/^sqlite:(\/\/)?/i, '');
}

export async function openStore(opts: StoreOptions): Promise<Db> {
  let kysely: Kysely<Database>;
  let dialect: Dialect;
  let snapshot: ((file: string) => Promise<void>) | undefined;
  let reader: Db['reader'];
  let closeReader = () => {};
  if (isPostgresUrl(opts.url)) {
    dialect = 'postgres';
    const schema = opts.pgSchema;
    if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid PostgreSQL schema name '${schema}'`);
    if (schema) {
      const admin = new pg.Client({ connectionString: opts.url });
      await admin.connect();
      try {
        await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (e) {
        // two instances creating the schema at once: the loser sees a unique violation
        if ((e as { code?: string }).code !== '23505') throw e;
      } finally {
        await admin.end();
      }
    }
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.pgPoolSize ?? 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  } else {
    dialect = 'sqlite';
    const file = sqlitePath(opts.url);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const database = new SqliteDatabase(file);
    database.pragma('journal_mode = WAL');
    database.pragma(`synchronous = ${opts.sqliteSynchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    database.pragma('busy_timeout = 10000');
    database.pragma('foreign_keys = ON');
    // Checkpoint every 40 MB of WAL rather than every 4 MB: a large run rewrites the same index pages
    // many times, and each checkpoint copies them again.
    database.pragma('wal_autocheckpoint = 10000');
    // 32 MB of page cache for the writer (the default is 2 MB): inserts into large indexes stop
    // re-reading the same pages (about a sixth faster for a run that loads half a million memberships)
    database.pragma('cache_size = -32768');
    kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
    // better-sqlite3's backup copies page by page between event-loop turns; the service keeps serving
    snapshot = async (target) => {
      await database.backup(target);
    };
    if (file !== ':memory:') {
      // opened after the schema exists (migrations below run first on the writer)
      let readDb: SqliteDatabase.Database | undefined;
      let cached: ReturnType<typeof withStatementCache> | undefined;
      reader = {
        all<R>(text: string, params: unknown[]): R[] {
          if (!readDb) {
            readDb = new SqliteDatabase(file, { readonly: true, fileMustExist: true });
            readDb.pragma('busy_timeout = 10000');
            cached = withStatementCache(readDb);
          }
          return cached!.prepare(text).all(...params) as R[];
        },
      };
      closeReader = () => readDb?.close();
    }
  }
  const db: Db = {
    kysely,
    dialect,
    ...(dialect === 'postgres' ? { pgSchema: opts.pgSchema ?? 'public' } : {}),
    ...(snapshot ? { snapshot } : {}),
    ...(reader ? { reader } : {}),
    transaction: dialect === 'sqlite' ? groupCommit(kysely) : (fn) => kysely.transaction().execute(fn),
    close: async () => {
      closeReader();
      await kysely.destroy();
    },
  };
  await migrateToLatest(db);
  return db;
}

/**
 * Kysely prepares every query anew; preparing costs about as much as running a small statement, so keep
 * the most recent prepared statements (better-sqlite3 statements are reusable) by their SQL text.
 */
function withStatementCache(database: SqliteDatabase.Database, max = 1000) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare(text: string) {
      let stmt = cache.get(text);
      if (!stmt) {
        stmt = database.prepare(text);
        // the oldest entry goes first; hot statements are re-prepared at most once per 1,000 new ones
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
}

/**
 * Group commit for SQLite's single writer: transactions that arrive while one is committing are run
 * together in the next one, each inside its own savepoint. A failing unit rolls back to its savepoint
 * alone; the others commit. Each caller's promise settles only after the shared COMMIT, so an
 * acknowledged write is as durable as before, and the per-commit cost (WAL frames for every page
 * touched) is shared by everyone in the group.
 */
function groupCommit(kysely: Kysely<Database>) {
  type Unit = { fn: (trx: Kysely<Database>) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };
  const queue: Unit[] = [];
  let running = false;
  const MAX_GROUP = 64;

  async function drain(): Promise<void> {
    running = true;
    try {
      while (queue.length) {
        const group = queue.splice(0, MAX_GROUP);
        const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
        try {
          await kysely.transaction().execute(async (trx) => {
            for (const unit of group) {
              await sql`SAVEPOINT unit`.execute(trx);
              try {
                const value = await unit.fn(trx);
                await sql`RELEASE unit`.execute(trx);
                outcomes.push({ ok: true, value });
              } catch (error) {
                await sql`ROLLBACK TO unit`.execute(trx);
                await sql`RELEASE unit`.execute(trx);
                outcomes.push({ ok: false, error });
              }
            }
          });
        } catch (error) {
          // the COMMIT itself failed: nothing of the group was kept
          for (const unit of group) unit.reject(error);
          continue;
        }
        group.forEach((unit, i) => {
          const o = outcomes[i]!;
          if (o.ok) unit.resolve(o.value);
          else unit.reject(o.error);
        });
      }
    } finally {
      running = false;
    }
  }

  let scheduled = false;
  return <T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      // better-sqlite3 is synchronous, so a transaction never yields to I/O: start on the next turn of
      // the event loop, after the requests already read from the sockets have queued their work too
      if (!running && !scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          if (!running) void drain();
        });
      }
    });
}

/** The n-th (1-based) bound parameter in hand-written SQL: `?` on SQLite, `$n` on PostgreSQL. */
export function placeholder(dialect: Dialect, n: number): string {
  return dialect === 'postgres' ? `$${n}` : '?';
}

/** The current time as stored: ISO 8601 with milliseconds, UTC. */
const insertTexts = new Map<string, string>();

/**
 * Insert many rows with one statement per chunk, without the query builder: large runs insert hundreds
 * of thousands of memberships and feed rows, and building each multi-row statement costs more than
 * SQLite takes to run it. The SQL is fixed per table, columns and chunk size, so it is prepared once.
 * Returns the number of rows inserted (with `ignoreConflicts`, those that were new).
 */
export async function insertRows(trx: Kysely<Database>, dialect: Dialect, table: keyof Database, columns: readonly string[], rows: readonly unknown[][], ignoreConflicts = false): Promise<number> {
  const size = Math.max(1, Math.min(500, Math.floor(30_000 / columns.length)));
  let inserted = 0;
  for (let i = 0; i < rows.length; i += size) {
    const part = rows.slice(i, i + size);
    const key = `${table}|${columns.join(',')}|${part.length}|${ignoreConflicts}|${dialect}`;
    let text = insertTexts.get(key);
    if (!text) {
      const values: string[] = [];
      let n = 0;
      for (let r = 0; r < part.length; r++) values.push(`(${columns.map(() => placeholder(dialect, ++n)).join(', ')})`);
      text = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values.join(', ')}${ignoreConflicts ? ' ON CONFLICT DO NOTHING' : ''}`;
      if (insertTexts.size > 500) insertTexts.clear();
      insertTexts.set(key, text);
    }
    const params: unknown[] = [];
    for (const row of part) for (const v of row) params.push(v);
    const res = await trx.executeQuery(CompiledQuery.raw(text, params));
    inserted += Number(res.numAffectedRows ?? 0);
  }
  return inserted;
}

export function now(): string {
  return new Date().toISOString();
}

/** true when the error is a unique-constraint violation on either database */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export { sql };
