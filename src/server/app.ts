// The HTTP service: health endpoints and the SCIM endpoints of every connector.

import fs from 'node:fs';
import v8 from 'node:v8';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance } from 'fastify';
import { createMetrics, registerMetrics } from './metrics.ts';
import { prune } from '../store/retention.ts';
import { acquireLease, releaseLease } from '../sync/lease.ts';
import type { Config } from '../config.ts';
import { adminRoutes } from '../admin/routes.ts';
import { AdminTokenStore } from '../admin/tokens.ts';
import { AccountStore } from '../admin/accounts.ts';
import { SessionStore } from '../admin/sessions.ts';
import { registerWebUi } from './web.ts';
import { AlertMonitor } from '../alerts/monitor.ts';
import type { Logger } from 'pino';
import { TargetWorker } from '../targets/worker.ts';
import type { AppConnection, TargetApp, TargetKind } from '../targets/types.ts';
import { scimRoutes } from '../sources/scim/routes.ts';
import type { Db } from '../store/db.ts';
import { ConnectorStore } from '../store/connectors.ts';
import { MirrorStore } from '../store/mirror.ts';
import { Reconciler } from '../sync/reconciler.ts';
import { isPullKind, openSource, sourceSchedule } from '../sources/registry.ts';
import type { SecretBox } from '../store/secrets.ts';
import { loadSecretKeys } from '../store/secrets.ts';
import { PullRunner } from '../sync/pull.ts';
import { Scheduler } from '../sync/scheduler.ts';

export interface Service {
  app: FastifyInstance;
  db: Db;
  connectors: ConnectorStore;
  mirror: MirrorStore;
  reconciler: Reconciler;
  runner: PullRunner;
  scheduler: Scheduler;
  secrets: SecretBox;
  adminTokens: AdminTokenStore;
  accounts: AccountStore;
  sessions: SessionStore;
  alerts: AlertMonitor;
  targets: TargetWorker;
}

export interface ServiceOptions {
  /** run the reconciler loop and the scheduler (default true) */
  reconcile?: boolean;
  logger?: boolean;
  /** the key that seals secrets; default: USERSYNC_SECRET_KEY or the key file in the data directory */
  secrets?: SecretBox;
  /** how often the scheduler looks for due runs */
  schedulerTickMs?: number;
  /** see PullRunnerOptions.bulkMarkThreshold */
  bulkMarkThreshold?: number;
  /** how often the alert monitor looks and delivers (default 30 s) */
  alertIntervalMs?: number;
  /** how often the target worker looks for work when idle (default 1 s) */
  targetTickMs?: number;
  /** for tests and benchmarks: how target applications are opened */
  openTargetApp?: (kind: TargetKind, conn: AppConnection) => TargetApp;
}

/**
 * A full sync allocates a great deal that dies young; left to itself V8 lets the heap grow up to fourfold
 * between full collections, so a 50,000-user read peaked at 450 MB with under 80 MB live. Growing by a
 * small step keeps the peak near what is live, for a few percent more time spent collecting.
 */
function limitHeapGrowth(percent: number): void {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

export async function buildService(db: Db, config: Config, opts: ServiceOptions = {}): Promise<Service> {
  limitHeapGrowth(config.heapGrowthPercent);
  const https =
    config.tlsCertFile && config.tlsKeyFile
      ? { cert: fs.readFileSync(config.tlsCertFile), key: fs.readFileSync(config.tlsKeyFile), minVersion: 'TLSv1.2' as const }
      : undefined;
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie'] },
    // per-request lines cost more than the request at thousands per second; errors are logged where handled
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy as boolean | string,
    // long ids get a SCIM 401/404 from the handlers rather than a bare 414 from the router
    routerOptions: { maxParamLength: 1024 },
    bodyLimit: config.bodyLimit,
    ...(https ? { https } : {}),
  }) as unknown as FastifyInstance;

  const connectors = new ConnectorStore(db);
  const mirror = new MirrorStore(db);
  const reconciler = new Reconciler(db, {
    batchSize: config.reconcileBatchSize,
    quietPeriodMs: config.pushQuietPeriodMs,
    runStaleMs: config.runStaleMs,
    log: (level, msg, extra) => app.log[level](extra ?? {}, msg),
  });

  const secrets = opts.secrets ?? loadSecretKeys({ env: process.env, dataDir: config.dataDir, create: true });
  const runner = new PullRunner(db, reconciler, {
    holder: reconciler.holder,
    leaseTtlMs: config.runStaleMs,
    ...(opts.bulkMarkThreshold ? { bulkMarkThreshold: opts.bulkMarkThreshold } : {}),
    openSource: (c) => {
      if (!isPullKind(c.kind)) throw new Error(`connector ${c.id}: no pull source of kind '${c.kind}'`);
      return openSource(c.kind, c.id, c.source, secrets);
    },
    log: (level, msg, extra) => app.log[level](extra ?? {}, msg),
  });
  const scheduler = new Scheduler(db, runner, {
    scheduleOf: (c) => (isPullKind(c.kind) ? sourceSchedule(c.kind, c.source) : undefined),
    ...(opts.schedulerTickMs ? { tickMs: opts.schedulerTickMs } : {}),
    log: (level, msg, extra) => app.log[level](extra ?? {}, msg),
  });

  // Alerts: held runs, failing connectors, expiring Graph credentials; one instance delivers (lease 'alerts').
  const alerts = new AlertMonitor(db, {
    secrets,
    holder: reconciler.holder,
    ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl } : {}),
    ...(opts.alertIntervalMs ? { intervalMs: opts.alertIntervalMs } : {}),
    log: (level, msg, extra) => app.log[level](extra ?? {}, msg),
  });

  // Targets: each delivered by one instance at a time (a lease per target).
  const targets = new TargetWorker(db, secrets, {
    holder: reconciler.holder,
    logger: app.log as unknown as Logger,
    ...(opts.targetTickMs ? { tickMs: opts.targetTickMs } : {}),
    ...(opts.openTargetApp ? { openApp: opts.openTargetApp } : {}),
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await db.kysely.selectFrom('connectors').select('id').limit(1).execute();
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'database unavailable' });
    }
  });

  // before the routes it counts: a hook reaches only the routes registered after it
  const adminTokens = new AdminTokenStore(db);
  registerMetrics(app, createMetrics(db), (token) => adminTokens.verify(token));

  await app.register(scimRoutes, {
    prefix: '/scim/v2/:connectorId',
    connectors,
    mirror,
    bodyLimit: config.bodyLimit,
    ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl } : {}),
    onWrite: () => reconciler.poke(),
  });

  const accounts = new AccountStore(db, { attempts: config.auth.lockoutAttempts, lockMs: config.auth.lockoutMs });
  const sessions = new SessionStore(db, { idleMs: config.auth.sessionIdleMs, absoluteMs: config.auth.sessionMaxMs });
  await app.register(adminRoutes, {
    prefix: '/api',
    db,
    connectors,
    reconciler,
    runner,
    secrets,
    ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl } : {}),
    auth: { accounts, sessions, tokens: adminTokens, loginRatePerMinute: config.auth.loginRatePerMinute, cookieSecure: config.auth.cookieSecure },
    ...(opts.openTargetApp ? { openTargetApp: opts.openTargetApp } : {}),
    pokeTargets: () => targets.poke(),
  });

  await registerWebUi(app);

  // Retention, hourly, by one instance at a time (a lease); the first pass a minute after start.
  const retention = { timer: undefined as NodeJS.Timeout | undefined, closed: false };
  const pruneOnce = async () => {
    if (!(await acquireLease(db, 'retention', reconciler.holder, 10 * 60_000))) return;
    try {
      await sessions.prune();
      const r = await prune(db, config.retention);
      if (r.runs + r.changeFeed + r.audit > 0) app.log.info({ pruned: r }, 'retention: old runs, change-feed rows and audit entries deleted');
    } finally {
      await releaseLease(db, 'retention', reconciler.holder);
    }
  };
  const schedulePrune = (ms: number) => {
    if (retention.closed) return;
    retention.timer = setTimeout(() => {
      pruneOnce()
        .catch((e: unknown) => app.log.warn({ err: e }, 'retention pass failed; the next one retries'))
        .finally(() => schedulePrune(60 * 60_000));
    }, ms);
    retention.timer.unref();
  };

  app.addHook('onClose', async () => {
    retention.closed = true;
    if (retention.timer) clearTimeout(retention.timer);
    scheduler.stop();
    await targets.stop();
    await alerts.stop();
    await runner.stop();
    await reconciler.stop();
  });
  if (opts.reconcile !== false) {
    app.addHook('onReady', async () => {
      reconciler.start();
      scheduler.start();
      alerts.start();
      targets.start();
      schedulePrune(60_000);
    });
  }

  return { app, db, connectors, mirror, reconciler, runner, scheduler, secrets, adminTokens, accounts, sessions, alerts, targets };
}
