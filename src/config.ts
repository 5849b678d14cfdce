// Configuration from environment variables (documented in the README).

import path from 'node:path';

export interface Config {
  databaseUrl: string;
  /** PostgreSQL schema (default public) */
  databaseSchema?: string;
  /** a run whose instance stopped renewing it is taken over (aborted) after this long */
  runStaleMs: number;
  /** how much the JavaScript heap may grow after each full collection, in percent; 0: V8's own choice */
  heapGrowthPercent: number;
  /** days ended runs, change-feed rows and audit entries are kept; 0: for ever */
  retention: { runsDays: number; changeFeedDays: number; auditDays: number };
  /** where the secret key file lives (default: beside the SQLite database, else ./data) */
  dataDir: string;
  sqliteSynchronous: 'NORMAL' | 'FULL';
  host: string;
  port: number;
  publicBaseUrl?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  trustProxy: boolean | string | number;
  bodyLimit: number;
  logLevel: string;
  pushQuietPeriodMs: number;
  reconcileBatchSize: number;
  /** logins, lockout and browser sessions of admin accounts */
  auth: {
    lockoutAttempts: number;
    lockoutMs: number;
    loginRatePerMinute: number;
    sessionIdleMs: number;
    sessionMaxMs: number;
    cookieSecure: 'auto' | 'always' | 'never';
  };
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new Error(`${name} must be a whole number of at least ${min} (got '${raw}')`);
  return Number(raw);
}

function trustProxy(raw: string | undefined): boolean | string | number {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw; // a comma-separated list of addresses or CIDR ranges
}

function cookieSecure(raw: string | undefined): 'auto' | 'always' | 'never' {
  if (raw === undefined || raw === '' || raw === 'auto') return 'auto';
  if (raw === 'true' || raw === 'always') return 'always';
  if (raw === 'false' || raw === 'never') return 'never';
  throw new Error(`COOKIE_SECURE must be auto, true or false (got '${raw}')`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const sync = (env.SQLITE_SYNCHRONOUS ?? 'NORMAL').toUpperCase();
  if (sync !== 'NORMAL' && sync !== 'FULL') throw new Error(`SQLITE_SYNCHRONOUS must be NORMAL or FULL (got '${sync}')`);
  const publicBaseUrl = env.PUBLIC_BASE_URL?.replace(/\/+$/, '');
  if (publicBaseUrl && !/^https?:\/\/[^/]+(\/.*)?$/.test(publicBaseUrl)) throw new Error(`PUBLIC_BASE_URL must be an http(s) URL (got '${publicBaseUrl}')`);
  if ((env.TLS_CERT_FILE && !env.TLS_KEY_FILE) || (!env.TLS_CERT_FILE && env.TLS_KEY_FILE)) {
    throw new Error('TLS_CERT_FILE and TLS_KEY_FILE go together');
  }
  const cfg: Config = {
    databaseUrl: env.DATABASE_URL || path.join('data', 'usersync.db'),
    dataDir: '',
    runStaleMs: int(env, 'RUN_STALE_SECONDS', 30, 3) * 1000,
    heapGrowthPercent: int(env, 'HEAP_GROWTH_PERCENT', 10, 0),
    retention: { runsDays: int(env, 'RETENTION_RUNS_DAYS', 90, 0), changeFeedDays: int(env, 'RETENTION_CHANGE_FEED_DAYS', 90, 0), auditDays: int(env, 'RETENTION_AUDIT_DAYS', 365, 0) },
    sqliteSynchronous: sync,
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 8080),
    trustProxy: trustProxy(env.TRUST_PROXY),
    bodyLimit: int(env, 'BODY_LIMIT', 1024 * 1024, 1024),
    logLevel: env.LOG_LEVEL || 'info',
    pushQuietPeriodMs: int(env, 'PUSH_QUIET_PERIOD_SECONDS', 60) * 1000,
    reconcileBatchSize: int(env, 'RECONCILE_BATCH_SIZE', 500, 1),
    auth: {
      lockoutAttempts: int(env, 'LOGIN_LOCKOUT_ATTEMPTS', 5, 1),
      lockoutMs: int(env, 'LOGIN_LOCKOUT_MINUTES', 15, 1) * 60_000,
      loginRatePerMinute: int(env, 'LOGIN_RATE_PER_MINUTE', 10, 1),
      sessionIdleMs: int(env, 'SESSION_IDLE_MINUTES', 60, 1) * 60_000,
      sessionMaxMs: int(env, 'SESSION_MAX_HOURS', 12, 1) * 3_600_000,
      cookieSecure: cookieSecure(env.COOKIE_SECURE),
    },
  };
  cfg.dataDir = env.DATA_DIR || (/^postgres(ql)?:\/\//i.test(cfg.databaseUrl) || cfg.databaseUrl === ':memory:' ? 'data' : path.dirname(cfg.databaseUrl));
  if (env.DATABASE_SCHEMA) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(env.DATABASE_SCHEMA)) throw new Error(`DATABASE_SCHEMA must be a lower-case SQL name (got '${env.DATABASE_SCHEMA}')`);
    cfg.databaseSchema = env.DATABASE_SCHEMA;
  }
  if (publicBaseUrl) cfg.publicBaseUrl = publicBaseUrl;
  if (env.TLS_CERT_FILE) cfg.tlsCertFile = env.TLS_CERT_FILE;
  if (env.TLS_KEY_FILE) cfg.tlsKeyFile = env.TLS_KEY_FILE;
  return cfg;
}
