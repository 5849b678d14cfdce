// What the pull-source bench drivers (bench/graph-sync.ts, bench/ldap-sync.ts) share, and bench/run.ts in
// part: child processes that say READY, the RSS and CPU of a process read from /proc, the admin API, the
// service with one connector (timed syncs, stats, CPU profile), figures 1 and 2 (full sync, then one with
// nothing changed), the stores, a run's machine, load and temp dir. Number formatting is in ./format.ts, the
// shared parts of the results file in ./report.ts.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { IpcClient, stopChildProcess } from './ipc.ts';
import type { CpuProfile, ProfileSummary } from './profile.ts';
import { summarise } from './profile.ts';
import { f0, f1, log, mb, spans } from './format.ts';
import { machine } from './machine.ts';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const PROFILE = process.argv.includes('--profile');
export const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

// ---------------------------------------------------------------------------------------------------
// processes

export interface Child<R> {
  name: string;
  child: ChildProcess;
  ipc: IpcClient;
  ready: R;
}

/** Start bench/<script> with an IPC channel; it is ready when it prints `READY <json>` (its other lines are passed on). */
export async function startChild<R>(name: string, script: string, env: Record<string, string>): Promise<Child<R>> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', script)], {
    cwd: ROOT,
    env: { ...process.env, ...env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const ipc = new IpcClient(child);
  const lines = readline.createInterface({ input: child.stdout! });
  const ready = await new Promise<R>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited before it was ready (code ${code})`)));
    lines.on('line', (line) => {
      if (line.startsWith('READY ')) resolve(JSON.parse(line.slice(6)) as R);
      else process.stdout.write(`[${name}] ${line}\n`);
    });
  });
  return { name, child, ipc, ready };
}

export async function stopChild(c: Child<unknown> | undefined): Promise<void> {
  if (c) await stopChildProcess(c.child, c.ipc);
}

/** The RSS of a process from outside: VmRSS sampled, and VmHWM (the kernel's own peak) after a reset. */
export class RssWatch {
  private timer: NodeJS.Timeout | undefined;
  private peakKb = 0;
  private samples = 0;
  private hwmReset = false;
  constructor(private readonly pid: number) {}

  private field(name: 'VmRSS' | 'VmHWM'): number {
    try {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : NaN;
    } catch {
      return NaN;
    }
  }

  start(everyMs = 50): void {
    this.peakKb = 0;
    this.samples = 0;
    try {
      fs.writeFileSync(`/proc/${this.pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
      this.hwmReset = true;
    } catch {
      this.hwmReset = false;
    }
    const sample = () => {
      const kb = this.field('VmRSS');
      if (Number.isFinite(kb)) {
        this.peakKb = Math.max(this.peakKb, kb);
        this.samples++;
      }
    };
    sample();
    this.timer = setInterval(sample, everyMs);
  }

  stop(): RssPeak {
    clearInterval(this.timer);
    const now = this.field('VmRSS');
    this.peakKb = Math.max(this.peakKb, now);
    return { sampledMb: this.peakKb / 1024, hwmMb: this.hwmReset ? this.field('VmHWM') / 1024 : null, samples: this.samples, nowMb: now / 1024 };
  }

  now(): number {
    return this.field('VmRSS') / 1024;
  }
}
export interface RssPeak {
  sampledMb: number;
  hwmMb: number | null;
  samples: number;
  nowMb: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ---------------------------------------------------------------------------------------------------
// the admin API (node:http: no client-side timeout on a long synchronous sync)

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;
export type Call = (method: string, p: string, body?: unknown) => Promise<{ status: number; body: Json }>;

export function api(port: number, token: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port, method, path: `/api${p}`, headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------
// the service (bench/lib/graph-service.ts) and what it answers

export interface ServiceReady {
  port: number;
  token: string;
  pid: number;
  dialect: string;
}
export interface Stats {
  users: number;
  activeUsers: number;
  groups: number;
  memberships: number;
  changeFeed: number;
  changeFeedMaxSeq: number;
  mirrorUsers: number;
  mirrorGroups: number;
  mirrorMembers: number;
  dirtyMarks: number;
  usersUpdatedAt: string;
  groupsUpdatedAt: string;
  membershipsCreatedAt: string;
  mirrorUserVersions: number;
  mirrorGroupVersions: number;
  mirrorUsersUpdatedAt: string;
}
export interface DirectoryUser {
  username: string;
  found: boolean;
  displayName?: string;
  active?: boolean;
  groups?: string[];
}
export interface Run {
  id: string;
  status: string;
  startedAt: string;
  endedAt: string;
  counters: Record<string, number>;
  peakRss: number;
  error: string | null;
  log: { at: string; level: string; message: string }[];
}
export interface Phase {
  phase: string;
  atS: number;
}
export interface MemoryRow {
  phase: string;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}
export interface ProfileSection {
  label: string;
  summary: ProfileSummary;
  sql: { totalMs: number; statements: { sql: string; n: number; ms: number; rows: number }[]; plans: { sql: string; ms: number; plan: string }[] };
}

/** The service's CPU profile and SQL timings of one step at a time (nothing unless --profile). */
export class ServiceProfiler {
  readonly sections: ProfileSection[] = [];
  constructor(
    private readonly ipc: IpcClient,
    private readonly tmpDir: string,
    private readonly store: string,
  ) {}

  async start(): Promise<void> {
    if (!PROFILE) return;
    await this.ipc.call('sqlTimes', {}); // only the step's own statements
    await this.ipc.call('profileStart', { intervalUs: 500 });
  }

  async stop(label: string): Promise<void> {
    if (!PROFILE) return;
    const file = path.join(this.tmpDir, `${this.store}-${label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
    await this.ipc.call('profileStop', { file });
    const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
    const sql = await this.ipc.call<ProfileSection['sql']>('sqlTimes', { top: 15 });
    this.sections.push({ label, summary: summarise([profile], ROOT, 25), sql });
  }
}

export interface SyncTiming<K extends string> {
  wallS: number;
  run: Run;
  runS: number;
  readingS: number | null;
  rss: RssPeak;
  /** CPU seconds used meanwhile by the service and by each other process watched */
  cpu: Record<'service' | K, number>;
  /** the run's phases (reading: users, groups, members, removals; then reconciling) and when each was first seen, s after the POST */
  phases: Phase[];
  /** the service's process.memoryUsage() (IPC, with each phase poll): the largest of each field while a phase ran, MB; empty unless asked for */
  memory: MemoryRow[];
}

/** The service (bench/lib/graph-service.ts, started) with one connector, created over its admin API. */
export class ConnectorService {
  /** the admin API */
  readonly call: Call;
  /** the service's RSS from outside */
  readonly watch: RssWatch;
  readonly profiler: ServiceProfiler;
  /** the service's RSS once the connector was created */
  idleRssMb = NaN;

  private constructor(
    readonly svc: Child<ServiceReady>,
    readonly connector: string,
    tmpDir: string,
    store: string,
  ) {
    const { port, token } = svc.ready;
    this.call = (method, p, body) => api(port, token, method, p, body);
    this.watch = new RssWatch(svc.ready.pid);
    this.profiler = new ServiceProfiler(svc.ipc, tmpDir, store);
  }

  static async create(svc: Child<ServiceReady>, tmpDir: string, store: string, connector: { id: string; name: string; kind: string; source: unknown }): Promise<ConnectorService> {
    const s = new ConnectorService(svc, connector.id, tmpDir, store);
    const created = await s.call('POST', '/connectors', connector);
    if (created.status !== 201) throw new Error(`creating the connector: ${created.status} ${JSON.stringify(created.body)}`);
    s.idleRssMb = s.watch.now();
    return s;
  }

  stats(): Promise<Stats> {
    return this.svc.ipc.call<Stats>('stats', { connector: this.connector });
  }

  /**
   * One sync (POST …/sync answers when the run has ended), timed, with the service's RSS watched, the CPU
   * time of the service and of `o.pids`, the run's phases polled every 250 ms (and the service's memory with
   * them, with `o.memory`), profiled under `label` with --profile; throws unless the run succeeded.
   */
  async sync<K extends string>(mode: string, label: string, o: { pids: Record<K, number>; readingFallback: string; memory?: boolean }): Promise<SyncTiming<K>> {
    const { call, connector } = this;
    const pids = { service: this.svc.ready.pid, ...o.pids } as Record<'service' | K, number>;
    const cpuNow = () => Object.fromEntries(Object.entries<number>(pids).map(([k, pid]) => [k, cpuSeconds(pid)])) as Record<'service' | K, number>;
    await this.profiler.start();
    this.watch.start();
    const cpu0 = cpuNow();
    const t0 = performance.now();
    const pending = call('POST', `/connectors/${connector}/sync`, { mode });
    // The run's phases as they go, polled every 250 ms: when each was first seen. The run's detail (for
    // the reading sub-phase) only while reading: later it would also list the run's change-feed rows.
    const phases: Phase[] = [];
    let ended = false;
    void pending.finally(() => (ended = true));
    const currentPhase = async (): Promise<string | undefined> => {
      const r = (await call('GET', `/runs?connector=${connector}&limit=1`)).body?.runs?.[0] as { id: string; status: string; phase: string | null } | undefined;
      if (!r || r.status !== 'running' || !r.phase) return undefined;
      if (r.phase !== 'reading') return r.phase;
      const detail = (await call('GET', `/runs/${r.id}`)).body as { progress?: { phase?: string } };
      return detail.progress?.phase ? `reading ${detail.progress.phase}` : o.readingFallback;
    };
    const memory: MemoryRow[] = [];
    const poll = (async () => {
      while (!ended) {
        const [phase, m] = await Promise.all([currentPhase().catch(() => undefined), o.memory ? this.svc.ipc.call<NodeJS.MemoryUsage>('memory').catch(() => undefined) : undefined]);
        if (phase && phases.at(-1)?.phase !== phase) phases.push({ phase, atS: (performance.now() - t0) / 1000 });
        const at = phase ?? phases.at(-1)?.phase;
        if (m && at) {
          let row = memory.find((x) => x.phase === at);
          if (!row) memory.push((row = { phase: at, rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }));
          row.rss = Math.max(row.rss, mb(m.rss));
          row.heapTotal = Math.max(row.heapTotal, mb(m.heapTotal));
          row.heapUsed = Math.max(row.heapUsed, mb(m.heapUsed));
          row.external = Math.max(row.external, mb(m.external + m.arrayBuffers));
        }
        await new Promise((res) => setTimeout(res, 250));
      }
    })();
    const res = await pending;
    const wallS = (performance.now() - t0) / 1000;
    await poll;
    const rss = this.watch.stop();
    const cpu1 = cpuNow();
    const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, cpu1[k as K] - cpu0[k as K]])) as Record<'service' | K, number>;
    await this.profiler.stop(label);
    if (res.status !== 200) throw new Error(`${label}: POST sync answered ${res.status} ${JSON.stringify(res.body)}`);
    const run = (await call('GET', `/runs/${res.body.runId}`)).body as Run;
    if (run.status !== 'succeeded') throw new Error(`${label}: the run ended ${run.status}: ${run.error ?? ''}\n${run.log.map((l) => `  ${l.level} ${l.message}`).join('\n')}`);
    const read = run.log.map((l) => /(?:full read|delta round): .* in ([\d.]+) s$/.exec(l.message)).find(Boolean);
    return { wallS, run, runS: (Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000, readingS: read ? Number(read[1]) : null, rss, cpu, phases, memory };
  }
}

/**
 * Figures 1 and 2, as the drivers log them: a full sync, then a second full sync with nothing changed; the
 * directory's stats after the first, and before and after the second. `describe` says what the log line
 * after the full sync tells besides its time, peak RSS and phases: the directory, and the CPU times.
 */
export async function fullSyncs<F extends SyncTiming<string>>(
  sync: (mode: 'full', label: string) => Promise<F>,
  stats: () => Promise<Stats>,
  describe: (full: F, afterFull: Stats) => { directory: string; cpu: string },
): Promise<{ full: F; afterFull: Stats; second: F; before: Stats; after: Stats }> {
  log('  1. full sync …');
  const full = await sync('full', '1. full sync');
  const afterFull = await stats();
  const d = describe(full, afterFull);
  log(
    `     ${f1(full.wallS)} s (reading ${f1(full.readingS ?? NaN)} s), run peakRss ${f0(mb(full.run.peakRss))} MB, sampled ${f0(full.rss.sampledMb)} MB, VmHWM ${full.rss.hwmMb === null ? 'n/a' : f0(full.rss.hwmMb)} MB; ` +
      `${d.directory}; CPU: ${d.cpu}; phases: ${spans(full)}`,
  );

  log('  2. second full sync, nothing changed …');
  const before = await stats();
  const second = await sync('full', '2. second full sync');
  const after = await stats();
  return { full, afterFull, second, before, after };
}

// ---------------------------------------------------------------------------------------------------
// stores

export type Store = 'sqlite' | 'postgres';

/** `--pg-only`, `--pg` (SQLite, then PostgreSQL) or SQLite alone */
export const storesFromArgs = (): Store[] => (process.argv.includes('--pg-only') ? ['postgres'] : process.argv.includes('--pg') ? ['sqlite', 'postgres'] : ['sqlite']);

export interface StoreSetup {
  /** the PostgreSQL schema (a fresh one), unused on SQLite */
  schema: string;
  /** the service's environment: SQLite in dataDir, or PostgreSQL in the schema */
  env: Record<string, string>;
  /** the store as the results file names it */
  note: string;
  /** drop the schema (PostgreSQL) */
  drop(): Promise<void>;
}

export function storeSetup(store: Store, dataDir: string, schemaPrefix: string): StoreSetup {
  const schema = `${schemaPrefix}_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    USERSYNC_SECRET_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    PORT: '0',
    DATA_DIR: dataDir,
    ...(store === 'sqlite' ? { DATABASE_URL: path.join(dataDir, 'usersync.db') } : { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema }),
    ...(PROFILE ? { BENCH_SQL_TIMING: '1' } : {}),
  };
  const note = store === 'sqlite' ? 'SQLite (WAL, synchronous=NORMAL), a file on local disk' : `PostgreSQL (${PG_URL.replace(/\/\/[^@]*@/, '//…@')}, schema ${schema}, dropped afterwards)`;
  const drop = async () => {
    if (store !== 'postgres') return;
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  };
  return { schema, env, note, drop };
}

// ---------------------------------------------------------------------------------------------------
// a run of a driver

export interface BenchRun {
  started: number;
  date: string;
  mach: ReturnType<typeof machine>;
  stores: Store[];
  tmpDir: string;
  loadBefore: number[];
  /** the temp dir removed, unless BENCH_KEEP */
  removeTmpDir(): void;
  /** at the end: how long it took, the load average now, and the day's results file bench/results/<date>-<host>-<kind>.md */
  finished(kind: string): { totalS: number; loadAfter: number[]; out: string };
}

/** The machine, the stores asked for and a temp dir; says so on stdout. */
export function beginRun(title: string, tmpPrefix: string): BenchRun {
  const started = Date.now();
  const date = new Date().toISOString().slice(0, 10);
  const mach = machine();
  const stores = storesFromArgs();
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  const loadBefore = os.loadavg();
  log(`usersync ${title} bench — ${date}, ${mach.host}, ${mach.model}, ${mach.cores} cores, ${f1(mach.memGb)} GB, Node ${mach.node}${PROFILE ? ' — PROFILING (figures not comparable)' : ''}`);
  log(`  stores: ${stores.join(', ')}; temp dir ${tmpDir}`);
  return {
    started,
    date,
    mach,
    stores,
    tmpDir,
    loadBefore,
    removeTmpDir: () => removeTmpDir(tmpDir),
    finished: (kind) => ({ totalS: (Date.now() - started) / 1000, loadAfter: os.loadavg(), out: path.join(ROOT, 'bench', 'results', `${date}-${mach.host}-${kind}.md`) }),
  };
}

function removeTmpDir(tmpDir: string): void {
  if (process.env.BENCH_KEEP) log(`kept ${tmpDir}`);
  else fs.rmSync(tmpDir, { recursive: true, force: true });
}

/** Run a driver's main when the file is the script node was started with. */
export function runIfMain(url: string, main: () => Promise<void>): void {
  if (url !== `file://${process.argv[1]}`) return;
  main().catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
