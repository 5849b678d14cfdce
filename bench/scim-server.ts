// The service under test, in a process of its own: the production service (Fastify, SCIM routes, the
// store on SQLite with WAL and synchronous=NORMAL) with the reconciler running in-process, as in
// production. Prints `READY {"port":…,"token":…}` on stdout once listening; the bench driver controls
// set-up (seeding, waiting for the reconciler, profiling) over the IPC channel, never over HTTP.
//
//   BENCH_DB=/path/to/file.db node --import tsx bench/scim-server.ts   (started by bench/run.ts)

import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config.ts';
import { buildService } from '../src/server/app.ts';
import { openStore } from '../src/store/db.ts';
import { serveIpc, shutdownAfter } from './lib/ipc.ts';
import { startProfiling, stopProfiling } from './lib/profile.ts';
import { seedMembers, seedUsers } from './lib/seed.ts';

const CONNECTOR = 'bench';

const file = process.env.BENCH_DB;
if (!file) throw new Error('BENCH_DB (the SQLite file) is required');

const config = loadConfig({ ...process.env, DATABASE_URL: file });
const db = await openStore({ url: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous });
const service = await buildService(db, config, { logger: false });
await service.connectors.create({ id: CONNECTOR, name: CONNECTOR, kind: 'scim' }, 'bench');
const { token } = await service.connectors.createToken(CONNECTOR, 'bench', 'bench');

async function count(table: 'dirty_marks' | 'mirror_users' | 'directory_users' | 'directory_memberships' | 'change_feed'): Promise<number> {
  const row = await db.kysely
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

serveIpc({
  seedUsers: (a: { prefix: string; count: number; marks: boolean }) => seedUsers(db, CONNECTOR, a),
  seedMembers: async (a: { groupId: string; memberIds: string[]; marks: boolean }) => {
    await seedMembers(db, CONNECTOR, a.groupId, a.memberIds, { marks: a.marks });
    return null;
  },
  /** wait until a reconciler pass finds nothing to do; returns how long that took and what is left */
  idle: async () => {
    const t0 = performance.now();
    await service.reconciler.idle();
    return { ms: performance.now() - t0, dirty: await count('dirty_marks') };
  },
  clearMarks: async () => {
    const res = await db.kysely.deleteFrom('dirty_marks').executeTakeFirst();
    return Number(res.numDeletedRows);
  },
  groupSize: async (a: { groupId: string }) => {
    const row = await db.kysely
      .selectFrom('mirror_members')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('connector_id', '=', CONNECTOR)
      .where('group_id', '=', a.groupId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  },
  stats: async () => ({
    mirrorUsers: await count('mirror_users'),
    directoryUsers: await count('directory_users'),
    directoryMemberships: await count('directory_memberships'),
    changeFeed: await count('change_feed'),
    dirtyMarks: await count('dirty_marks'),
  }),
  /** diagnostics only: how much of a write's cost is the reconciler's (the bench itself never pauses it) */
  reconcilerStop: async () => {
    await service.reconciler.stop();
    return null;
  },
  reconcilerStart: () => {
    service.reconciler.start();
    return null;
  },
  profileStart: () => startProfiling(),
  profileStop: (a: { file: string }) => stopProfiling(a.file),
  shutdown: shutdownAfter(async () => {
    await service.app.close();
    await db.close();
  }),
});

await service.app.listen({ host: '127.0.0.1', port: 0 });
const { port } = service.app.server.address() as AddressInfo;
process.stdout.write(`READY ${JSON.stringify({ port, token })}\n`);
