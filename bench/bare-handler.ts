// The bare baseline: plain Fastify + better-sqlite3 (WAL, synchronous=NORMAL, the same settings as the
// service's store), one table with an indexed text column, one GET route doing an indexed lookup and
// one POST route doing a durable insert. No SCIM logic, no authentication, no reconciler. Prints
// `READY {"port":…}` on stdout; seeded with BARE_SEED rows named `${BARE_PREFIX}${i}@example.com`.
//
//   BENCH_DB=/path/to/bare.db BARE_SEED=10000 node --import tsx bench/bare-handler.ts

import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { serveIpc, shutdownAfter } from './lib/ipc.ts';
import { startProfiling, stopProfiling } from './lib/profile.ts';
import { userBody } from './lib/seed.ts';

const file = process.env.BENCH_DB;
if (!file) throw new Error('BENCH_DB (the SQLite file) is required');
const seed = Number(process.env.BARE_SEED ?? 10_000);
const prefix = process.env.BARE_PREFIX ?? 'seed.';

const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 10000');
db.exec(`CREATE TABLE IF NOT EXISTS items (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS items_name ON items (name);`);

const insert = db.prepare('INSERT INTO items (id, name, data, created_at) VALUES (?, ?, ?, ?)');
const byName = db.prepare('SELECT id, name, data, created_at FROM items WHERE name = ?');

db.transaction(() => {
  const at = new Date().toISOString();
  for (let i = 0; i < seed; i++) {
    const name = `${prefix}${i}@example.com`;
    insert.run(randomUUID(), name, JSON.stringify(userBody(name, i)), at);
  }
})();

const app = Fastify({ logger: false });

app.get<{ Querystring: { name?: string } }>('/items', async (req, reply) => {
  const row = byName.get(req.query.name ?? '');
  if (!row) return reply.code(404).send({ error: 'not found' });
  return row;
});

app.post<{ Body: { userName?: unknown } }>('/items', async (req, reply) => {
  const name = req.body?.userName;
  if (typeof name !== 'string') return reply.code(400).send({ error: 'userName is required' });
  const id = randomUUID();
  const at = new Date().toISOString();
  // autocommit: one durable transaction per request, as the service commits one per write
  insert.run(id, name, JSON.stringify(req.body), at);
  return reply.code(201).send({ id, name, created_at: at });
});

serveIpc({
  profileStart: () => startProfiling(),
  profileStop: (a: { file: string }) => stopProfiling(a.file),
  shutdown: shutdownAfter(async () => {
    await app.close();
    db.close();
  }),
});

await app.listen({ host: '127.0.0.1', port: 0 });
const { port } = app.server.address() as AddressInfo;
process.stdout.write(`READY ${JSON.stringify({ port })}\n`);
