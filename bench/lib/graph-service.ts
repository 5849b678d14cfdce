// The service under test for `npm run bench -- graph`, in a process of its own: the production service
// (`buildService`: Fastify, admin API, PullRunner, reconciler and scheduler running, logger at
// LOG_LEVEL) on the store of DATABASE_URL (and DATABASE_SCHEMA on PostgreSQL), with the secrets key of
// USERSYNC_SECRET_KEY. Prints `READY {"port":…,"token":…,"pid":…}` once listening; the token is an admin
// API token made for the bench. The driver runs every sync over the admin API (HTTP); the IPC channel
// only carries read-only checks of the store (counts, one user's directory view), profiling and shutdown.
//
//   DATABASE_URL=… USERSYNC_SECRET_KEY=… node --import tsx bench/lib/graph-service.ts   (started by bench/graph-sync.ts)

import type { AddressInfo } from 'node:net';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { directoryKey } from '../../src/domain/rules.ts';
import { buildService } from '../../src/server/app.ts';
import { openStore } from '../../src/store/db.ts';
import { serveIpc, shutdownAfter } from './ipc.ts';
import { startProfiling, stopProfiling } from './profile.ts';

// BENCH_SQL_TIMING=1 (profiling runs only; it slows every statement a little): time every SQL statement
// by its text, with IN-lists and VALUES lists folded, to name the statements a CPU profile only shows as
// better-sqlite3's native `run`/`all` (or as time waiting for PostgreSQL).
const sqlTimes = new Map<string, { n: number; ms: number; rows: number }>();
function recordSql(text: string, ms: number, rows: number): string {
  const key = text
    .replace(/\s+/g, ' ')
    .replace(/(\?|\$\d+)(\s*,\s*(\?|\$\d+))+/g, '…')
    .replace(/(\(…\))(\s*,\s*\(…\))+/g, '$1, …')
    .replace(/(\((\?|\$\d+)\))(\s*,\s*\((\?|\$\d+)\))+/g, '$1, …')
    .slice(0, 400);
  const e = sqlTimes.get(key) ?? { n: 0, ms: 0, rows: 0 };
  e.n++;
  e.ms += ms;
  e.rows += rows;
  sqlTimes.set(key, e);
  return key;
}
if (process.env.BENCH_SQL_TIMING) {
  const probe = new SqliteDatabase(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...args: unknown[]) => unknown>;
  probe.close();
  for (const m of ['run', 'all', 'get'] as const) {
    const orig = proto[m]!;
    proto[m] = function (this: { source: string }, ...args: unknown[]) {
      const t0 = performance.now();
      const r = orig.apply(this, args);
      const rows = m === 'all' ? (r as unknown[]).length : m === 'run' ? Number((r as { changes: number }).changes) : r ? 1 : 0;
      recordSql(this.source, performance.now() - t0, rows);
      return r;
    };
  }
  const origQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    const r = origQuery.apply(this, args);
    const text = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string } | undefined)?.text ?? '');
    if (this !== explainClient && r && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<{ rowCount?: number | null; rows?: unknown[] }>).then(
        (res) => {
          const ms = performance.now() - t0;
          const key = recordSql(text, ms, Number(res?.rowCount ?? res?.rows?.length ?? 0));
          if (ms > SLOW_MS && Array.isArray(args[1])) explainLater(key, text, args[1] as unknown[], ms);
        },
        () => recordSql(text, performance.now() - t0, 0),
      );
    }
    return r;
  };
}

// PostgreSQL (BENCH_SQL_TIMING=1): the plan of a statement that took longer than SLOW_MS, once per statement
// text, as the planner sees it right then (a connection of its own; EXPLAIN without ANALYZE runs nothing).
const SLOW_MS = Number(process.env.BENCH_SLOW_MS ?? 1000);
const plans = new Map<string, { ms: number; plan: string }>();
let explainClient: pg.Client | undefined;
function explainLater(key: string, text: string, params: unknown[], ms: number): void {
  if (plans.has(key) || !/^\s*select/i.test(text)) return;
  plans.set(key, { ms, plan: '(pending)' });
  void (async () => {
    try {
      if (!explainClient) {
        explainClient = new pg.Client({ connectionString: process.env.DATABASE_URL, ...(process.env.DATABASE_SCHEMA ? { options: `-c search_path=${process.env.DATABASE_SCHEMA}` } : {}) });
        await explainClient.connect();
      }
      const res = await explainClient.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, params);
      plans.set(key, { ms, plan: res.rows.map((r) => r['QUERY PLAN']).join('\n') });
    } catch (e) {
      plans.set(key, { ms, plan: `(EXPLAIN failed: ${String(e)})` });
    }
  })();
}

const config = loadConfig(process.env);
const db = await openStore({ url: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous, ...(config.databaseSchema ? { pgSchema: config.databaseSchema } : {}) });
const service = await buildService(db, config);
const { token } = await service.adminTokens.create('bench', 'bench');
const k = db.kysely;

async function one(q: { executeTakeFirstOrThrow(): Promise<{ n: unknown }> }): Promise<number> {
  const r = await q.executeTakeFirstOrThrow();
  return r.n === null || r.n === undefined ? 0 : Number(r.n);
}

serveIpc({
  /** row counts and high-water marks of the directory, the change feed and the mirror */
  stats: async (a: { connector: string }) => {
    const managedBy = `connector:${a.connector}`;
    const [users, activeUsers, groups, memberships, feed, feedMax, mirrorUsers, mirrorGroups, mirrorMembers, marks] = await Promise.all([
      one(k.selectFrom('directory_users').select((eb) => eb.fn.countAll().as('n')).where('owner_connector_id', '=', a.connector)),
      one(k.selectFrom('directory_users').select((eb) => eb.fn.countAll().as('n')).where('owner_connector_id', '=', a.connector).where('active', '=', 1)),
      one(k.selectFrom('directory_groups').select((eb) => eb.fn.countAll().as('n')).where('owner_connector_id', '=', a.connector)),
      one(k.selectFrom('directory_memberships').select((eb) => eb.fn.countAll().as('n')).where('managed_by', '=', managedBy)),
      one(k.selectFrom('change_feed').select((eb) => eb.fn.countAll().as('n'))),
      one(k.selectFrom('change_feed').select((eb) => eb.fn.max('seq').as('n'))),
      one(k.selectFrom('mirror_users').select((eb) => eb.fn.countAll().as('n')).where('connector_id', '=', a.connector)),
      one(k.selectFrom('mirror_groups').select((eb) => eb.fn.countAll().as('n')).where('connector_id', '=', a.connector)),
      one(k.selectFrom('mirror_members').select((eb) => eb.fn.countAll().as('n')).where('connector_id', '=', a.connector)),
      one(k.selectFrom('dirty_marks').select((eb) => eb.fn.countAll().as('n'))),
    ]);
    const hw = async (table: 'directory_users' | 'directory_groups', col: 'updated_at') =>
      String((await k.selectFrom(table).select((eb) => eb.fn.max(col).as('m')).where('owner_connector_id', '=', a.connector).executeTakeFirst())?.m ?? '');
    const mirrorVersions = await one(k.selectFrom('mirror_users').select((eb) => eb.fn.sum<number>('version').as('n')).where('connector_id', '=', a.connector));
    const mirrorGroupVersions = await one(k.selectFrom('mirror_groups').select((eb) => eb.fn.sum<number>('version').as('n')).where('connector_id', '=', a.connector));
    const mirrorUpdated = String((await k.selectFrom('mirror_users').select((eb) => eb.fn.max('updated_at').as('m')).where('connector_id', '=', a.connector).executeTakeFirst())?.m ?? '');
    const membershipsCreated = String((await k.selectFrom('directory_memberships').select((eb) => eb.fn.max('created_at').as('m')).where('managed_by', '=', managedBy).executeTakeFirst())?.m ?? '');
    return {
      users,
      activeUsers,
      groups,
      memberships,
      changeFeed: feed,
      changeFeedMaxSeq: feedMax,
      mirrorUsers,
      mirrorGroups,
      mirrorMembers,
      dirtyMarks: marks,
      usersUpdatedAt: await hw('directory_users', 'updated_at'),
      groupsUpdatedAt: await hw('directory_groups', 'updated_at'),
      membershipsCreatedAt: membershipsCreated,
      mirrorUserVersions: mirrorVersions,
      mirrorGroupVersions,
      mirrorUsersUpdatedAt: mirrorUpdated,
    };
  },

  /** change-feed rows written by one run, by entity and operation */
  feedOfRun: async (a: { runId: string }) => {
    const rows = await k.selectFrom('change_feed').select(['entity', 'op', (eb) => eb.fn.countAll().as('n')]).where('run_id', '=', a.runId).groupBy(['entity', 'op']).execute();
    return rows.map((r) => ({ entity: r.entity, op: r.op, n: Number(r.n) }));
  },

  /** directory users by username, with their connector-managed groups (names) */
  users: async (a: { connector: string; usernames: string[] }) => {
    const out = [];
    for (const name of a.usernames) {
      const u = await k.selectFrom('directory_users').select(['id', 'username', 'display_name', 'active']).where('username_key', '=', directoryKey(name)).executeTakeFirst();
      if (!u) {
        out.push({ username: name, found: false });
        continue;
      }
      const groups = await k
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
        .select('g.name')
        .distinct()
        .where('m.user_id', '=', u.id)
        .where('m.managed_by', '=', `connector:${a.connector}`)
        .execute();
      out.push({ username: u.username, found: true, displayName: u.display_name, active: Number(u.active) === 1, groups: groups.map((g) => g.name).sort() });
    }
    return out;
  },

  /** directory groups by name, with their connector-managed member counts */
  groups: async (a: { connector: string; names: string[] }) => {
    const out = [];
    for (const name of a.names) {
      const g = await k.selectFrom('directory_groups').select(['id', 'name']).where('name', '=', name).executeTakeFirst();
      const members = g
        ? await one(k.selectFrom('directory_memberships').select((eb) => eb.fn.countAll().as('n')).where('group_id', '=', g.id).where('managed_by', '=', `connector:${a.connector}`))
        : 0;
      out.push({ name, found: !!g, members });
    }
    return out;
  },

  /** SQLite: the database files' size (main + WAL) */
  dbSize: async () => {
    if (db.dialect !== 'sqlite') return null;
    const r = await sql<{ page_count: number }>`PRAGMA page_count`.execute(k);
    const s = await sql<{ page_size: number }>`PRAGMA page_size`.execute(k);
    return Number(r.rows[0]?.page_count ?? 0) * Number(s.rows[0]?.page_size ?? 0);
  },

  /** statement timings since the last call (BENCH_SQL_TIMING=1), the costliest first */
  sqlTimes: (a: { top?: number }) => {
    const out = [...sqlTimes.entries()].map(([sql, e]) => ({ sql, ...e })).sort((x, y) => y.ms - x.ms);
    sqlTimes.clear();
    const slow = [...plans.entries()].map(([sql, p]) => ({ sql, ...p }));
    plans.clear();
    return { totalMs: out.reduce((s, e) => s + e.ms, 0), statements: out.slice(0, a.top ?? 15), plans: slow };
  },

  profileStart: (a: { intervalUs?: number }) => startProfiling(a.intervalUs ?? 500),
  profileStop: (a: { file: string }) => stopProfiling(a.file),
  memory: () => process.memoryUsage(),

  shutdown: shutdownAfter(async () => {
    await service.app.close();
    await db.close();
  }),
});

await service.app.listen({ host: '127.0.0.1', port: 0 });
const { port } = service.app.server.address() as AddressInfo;
process.stdout.write(`READY ${JSON.stringify({ port, token, pid: process.pid, dialect: db.dialect })}\n`);
