// Prometheus metrics at /metrics (prom-client): SCIM requests by connector, operation and status, counted
// as they are answered by this instance; and, read from the store at scrape time so that every instance
// on one database reports the same, the reconciler's backlog, the change feed's position, runs with the
// last run's duration and counters per connector, and the directory's users. The process's own metrics
// (memory, CPU, event-loop lag) come with them.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'kysely';
import type { Db } from '../store/db.ts';

const CONNECTOR_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface Metrics {
  registry: Registry;
  /** count a SCIM request: `route` is Fastify's route pattern, e.g. /scim/v2/:connectorId/Users/:id */
  observeScim(connectorId: string | undefined, method: string, route: string, status: number, seconds: number): Promise<void>;
}

/** `/scim/v2/:connectorId/Users/:id` → `/Users/{id}`: few values, whatever the ids. */
function operationOf(route: string): string {
  return route.replace(/^\/scim\/v2\/:connectorId/, '').replace(/:([A-Za-z]+)/g, '{$1}') || '/';
}

export function createMetrics(db: Db): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'usersync_' });

  // label values come only from connectors that exist: an unknown id in a URL must not add a series
  let known = new Set<string>();
  let knownAt = 0;
  const refreshKnown = async () => {
    known = new Set((await db.kysely.selectFrom('connectors').select('id').execute()).map((r) => r.id));
    knownAt = Date.now();
  };
  // a connector created since the last look is found by looking again, at most once a second
  const connectorLabel = async (id: string | undefined) => {
    if (id === undefined || !CONNECTOR_ID.test(id)) return 'unknown';
    if (!known.has(id) && Date.now() - knownAt > 1000) await refreshKnown().catch(() => {});
    return known.has(id) ? id : 'unknown';
  };

  const scimRequests = new Counter({
    name: 'usersync_scim_requests_total',
    help: 'SCIM requests answered, by connector, operation (method and resource) and HTTP status',
    labelNames: ['connector', 'operation', 'status'] as const,
    registers: [registry],
  });
  const scimDuration = new Histogram({
    name: 'usersync_scim_request_duration_seconds',
    help: 'time to answer a SCIM request, by operation',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  new Gauge({
    name: 'usersync_reconcile_backlog',
    help: 'changes in the mirror the reconciler has not taken yet (dirty marks)',
    registers: [registry],
    async collect() {
      const r = await db.kysely.selectFrom('dirty_marks').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst();
      this.set(Number(r?.n ?? 0));
    },
  });
  new Gauge({
    name: 'usersync_change_feed_last_seq',
    help: 'the sequence number of the newest change-feed row (targets read up to it)',
    registers: [registry],
    async collect() {
      const r = await db.kysely.selectFrom('change_feed').select((eb) => eb.fn.max('seq').as('n')).executeTakeFirst();
      this.set(Number(r?.n ?? 0));
    },
  });
  new Gauge({
    name: 'usersync_target_backlog',
    help: 'per target: change-feed rows not yet taken in (feed), users and groups waiting to be delivered (pending), and parked ones (parked)',
    labelNames: ['target', 'kind'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const last = await db.kysely.selectFrom('change_feed').select((eb) => eb.fn.max('seq').as('n')).executeTakeFirst();
      const targets = await db.kysely.selectFrom('targets').select(['id', 'cursor_seq']).execute();
      const work = await db.kysely
        .selectFrom('target_work')
        .select(['target_id', sql<number>`CASE WHEN parked_at IS NULL THEN 0 ELSE 1 END`.as('parked'), (eb) => eb.fn.countAll<number | string>().as('n')])
        .groupBy(['target_id', sql`CASE WHEN parked_at IS NULL THEN 0 ELSE 1 END`])
        .execute();
      for (const t of targets) {
        this.set({ target: t.id, kind: 'feed' }, Math.max(0, Number(last?.n ?? 0) - Number(t.cursor_seq)));
        this.set({ target: t.id, kind: 'pending' }, 0);
        this.set({ target: t.id, kind: 'parked' }, 0);
      }
      for (const w of work) this.set({ target: w.target_id, kind: Number(w.parked) === 1 ? 'parked' : 'pending' }, Number(w.n));
    },
  });
  new Gauge({
    name: 'usersync_directory_users',
    help: 'directory users by owning connector and state',
    labelNames: ['connector', 'active'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db.kysely
        .selectFrom('directory_users')
        .select(['owner_connector_id', 'active', (eb) => eb.fn.countAll<number | string>().as('n')])
        .groupBy(['owner_connector_id', 'active'])
        .execute();
      for (const r of rows) this.set({ connector: r.owner_connector_id ?? 'local', active: Number(r.active) === 1 ? 'true' : 'false' }, Number(r.n));
    },
  });
  new Gauge({
    name: 'usersync_runs',
    help: 'sync runs recorded, by connector and status (running, succeeded, held, failed, aborted)',
    labelNames: ['connector', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db.kysely.selectFrom('runs').select(['connector_id', 'status', (eb) => eb.fn.countAll<number | string>().as('n')]).groupBy(['connector_id', 'status']).execute();
      for (const r of rows) this.set({ connector: r.connector_id, status: r.status }, Number(r.n));
    },
  });
  // the last ended run of each connector: how long it took, when it ended, and what it changed
  const lastRuns = async () =>
    db.kysely
      .selectFrom('runs as r')
      .select(['r.connector_id', 'r.status', 'r.started_at', 'r.ended_at', 'r.counters'])
      .where('r.ended_at', 'is not', null)
      .where(({ eb, selectFrom }) => eb('r.ended_at', '=', selectFrom('runs as x').select((x) => x.fn.max('x.ended_at').as('m')).whereRef('x.connector_id', '=', 'r.connector_id')))
      .execute();
  new Gauge({
    name: 'usersync_last_run_duration_seconds',
    help: "the duration of each connector's last ended run",
    labelNames: ['connector', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await lastRuns()) this.set({ connector: r.connector_id, status: r.status }, (Date.parse(r.ended_at!) - Date.parse(r.started_at)) / 1000);
    },
  });
  new Gauge({
    name: 'usersync_last_run_end_timestamp_seconds',
    help: "when each connector's last run ended (alert when it is too long ago)",
    labelNames: ['connector', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await lastRuns()) this.set({ connector: r.connector_id, status: r.status }, Date.parse(r.ended_at!) / 1000);
    },
  });
  new Gauge({
    name: 'usersync_last_run_changes',
    help: "counters of each connector's last ended run (created, updated, deactivated, membershipsAdded, …)",
    labelNames: ['connector', 'counter'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await lastRuns()) {
        for (const [counter, n] of Object.entries(JSON.parse(r.counters) as Record<string, number>)) if (typeof n === 'number') this.set({ connector: r.connector_id, counter }, n);
      }
    },
  });

  return {
    registry,
    async observeScim(connectorId, method, route, status, seconds) {
      const operation = `${method} ${operationOf(route)}`;
      scimRequests.inc({ connector: await connectorLabel(connectorId), operation, status: String(status) });
      scimDuration.observe({ operation }, seconds);
    },
  };
}

/**
 * /metrics for Prometheus, behind an admin API token (Prometheus sends it with `authorization:
 * credentials`), and the hook that counts SCIM requests.
 */
export function registerMetrics(app: FastifyInstance, metrics: Metrics, verify: (token: string) => Promise<{ scope: string } | undefined>): void {
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (!route?.startsWith('/scim/v2/')) return;
    // after the answer went out: the request does not wait for this
    await metrics.observeScim((req.params as { connectorId?: string } | undefined)?.connectorId, req.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (req, reply) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const token = match ? await verify(match[1]!) : undefined;
    // a read-only (auditor) token is what a Prometheus scrape should carry
    if (!token || (token.scope !== 'admin' && token.scope !== 'auditor')) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: { code: 'unauthenticated', message: 'an API token of scope admin or auditor is required (Authorization: Bearer <token>)' } });
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
