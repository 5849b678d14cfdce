// `npm run bench -- graph`: the Microsoft Graph pull source against the issue's figures, on a tenant of
// 100,000 users, 5,000 groups and 500,000 direct memberships (with 500 groups nested in others, flattened
// by the connector's default `nestedGroups: 'flatten'`).
//
//   1. a full sync into the directory (POST /api/connectors/:id/sync {mode:'full'}, which answers when the
//      run has ended, reconciled) in under 30 s, with the service's peak RSS under 400 MB — the run's
//      own peakRss and the service process's RSS sampled from outside (/proc: VmRSS every 50 ms, and
//      VmHWM after resetting it through clear_refs);
//   2. a second full sync with no changes writes nothing: no change-feed rows, the directory's
//      updated_at/created_at high-water marks and the mirror's versions unchanged, no mirror counters;
//   3. a delta round (mode 'auto') carrying 100 changes in under 2 s, and the directory then matches
//      the tenant for every user touched, every user deleted and every group renamed;
//   4. sync of one user on demand (POST …/sync-user) in under a second: 30 calls for different users,
//      one of them created in the tenant just before (never synced);
//   5. the bare store's floor in the same run: the directory rows of figure 1 inserted into a fresh
//      SQLite file with prepared statements in one transaction; figure 1 as a ratio of it.
//
// Three processes: this driver; the Graph emulator (bench/lib/graph-emulator.ts: the tenant in memory,
// HTTPS, its own process so it does not count against the service's memory); the service
// (bench/lib/graph-service.ts: the production service with the reconciler and scheduler, admin API on
// HTTP). Every sync goes over the admin API; IPC carries only seeding, changes in the tenant, read-only
// checks of the store and profiling. The service trusts the emulator through `caCertificate`.
//
//   npm run bench -- graph                 SQLite (the default store); writes bench/results/<date>-<host>-graph.md
//   npm run bench -- graph --pg            SQLite, then PostgreSQL (BENCH_PG_URL, default
//                                          postgres://postgres@127.0.0.1:5432/test; a fresh schema, dropped after)
//   npm run bench -- graph --pg-only       PostgreSQL only
//   npm run bench -- graph --profile       the same steps with a CPU profile of the service (and SQL timings):
//                                          prints it and puts it under "## CPU profile — <store>" in that day's
//                                          results file, whose figures it leaves alone (profiled figures are slower)
//   BENCH_GRAPH_USERS=100000 BENCH_GRAPH_GROUPS=5000 BENCH_GRAPH_MEMBERSHIPS=500000 BENCH_GRAPH_NESTED=500
//   (other sizes are printed, not recorded)   BENCH_KEEP=1 (keep the temp dir: databases, profiles)

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { IpcClient, stopChildProcess } from './lib/ipc.ts';
import type { CpuProfile, ProfileSummary } from './lib/profile.ts';
import { summarise } from './lib/profile.ts';
import { bareDirectoryInsert } from './lib/graph-bare.ts';
import type { BareResult } from './lib/graph-bare.ts';
import { machine, revision } from './lib/machine.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const CONNECTOR = 'graph';
const SIZE = {
  users: Number(process.env.BENCH_GRAPH_USERS ?? 100_000),
  groups: Number(process.env.BENCH_GRAPH_GROUPS ?? 5_000),
  memberships: Number(process.env.BENCH_GRAPH_MEMBERSHIPS ?? 500_000),
  nestedGroups: Number(process.env.BENCH_GRAPH_NESTED ?? 500),
  randomSeed: 42,
};
const ISSUE_SIZE = SIZE.users === 100_000 && SIZE.groups === 5_000 && SIZE.memberships === 500_000;
/** the ~100 changes of figure 3 (a new user in a group counts as two) */
const CHANGES = { updates: 40, disables: 10, newUsers: 10, adds: 15, removals: 10, deletions: 3, renames: 2 };
const ON_DEMAND_CALLS = 30;
const TARGET = { fullS: 30, rssMb: 400, deltaS: 2, userS: 1 };
const PROFILE = process.argv.includes('--profile');
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const log = (s: string) => process.stdout.write(`${s}\n`);
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const mb = (bytes: number) => bytes / 1024 / 1024;
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const check = (ok: boolean) => (ok ? 'ok' : '**wrong**');

// ---------------------------------------------------------------------------------------------------
// processes

interface Child<R> {
  name: string;
  child: ChildProcess;
  ipc: IpcClient;
  ready: R;
}

async function startChild<R>(name: string, script: string, env: Record<string, string>): Promise<Child<R>> {
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

async function stopChild(c: Child<unknown> | undefined): Promise<void> {
  if (c) await stopChildProcess(c.child, c.ipc);
}

/** The RSS of a process from outside: VmRSS sampled, and VmHWM (the kernel's own peak) after a reset. */
class RssWatch {
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

  stop(): { sampledMb: number; hwmMb: number | null; samples: number; nowMb: number } {
    clearInterval(this.timer);
    const now = this.field('VmRSS');
    this.peakKb = Math.max(this.peakKb, now);
    return { sampledMb: this.peakKb / 1024, hwmMb: this.hwmReset ? this.field('VmHWM') / 1024 : null, samples: this.samples, nowMb: now / 1024 };
  }

  now(): number {
    return this.field('VmRSS') / 1024;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
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
type Json = any;

function api(port: number, token: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: Json }> {
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
// one store

interface EmulatorReady {
  pid: number;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  authorityHost: string;
  graphUrl: string;
  caCert: string;
}
interface ServiceReady {
  port: number;
  token: string;
  pid: number;
  dialect: string;
}
interface Seeded {
  seedMs: number;
  users: number;
  activeUsers: number;
  groups: number;
  directMemberships: number;
  nestedLinks: number;
  transitiveMemberships: number;
}
interface Stats {
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
interface ExpectedUser {
  id: string;
  username: string;
  exists: boolean;
  displayName?: string;
  active?: boolean;
  groups?: string[];
}
interface DirectoryUser {
  username: string;
  found: boolean;
  displayName?: string;
  active?: boolean;
  groups?: string[];
}
interface Run {
  id: string;
  status: string;
  startedAt: string;
  endedAt: string;
  counters: Record<string, number>;
  peakRss: number;
  error: string | null;
  log: { at: string; level: string; message: string }[];
}
interface SyncFigure {
  wallS: number;
  run: Run;
  runS: number;
  readingS: number | null;
  rss: ReturnType<RssWatch['stop']>;
  requests: number;
  /** CPU seconds used meanwhile by the service and by the emulator */
  cpu: { service: number; emulator: number };
  /** the run's phases (reading: users, groups, members, removals; then reconciling) and when each was first seen, s after the POST */
  phases: { phase: string; atS: number }[];
}
interface ProfileSection {
  label: string;
  summary: ProfileSummary;
  sql: { totalMs: number; statements: { sql: string; n: number; ms: number; rows: number }[]; plans: { sql: string; ms: number; plan: string }[] };
}

interface StoreResult {
  store: string;
  storeNote: string;
  seeded: Seeded;
  emulatorRssMb: number;
  serviceIdleRssMb: number;
  full: SyncFigure;
  afterFull: Stats;
  second: SyncFigure & { before: Stats; after: Stats; feed: { entity: string; op: string; n: number }[] };
  delta: SyncFigure & { changes: number; checked: number; wrong: string[]; deleted: number; renamed: number; how: string };
  onDemand: { ms: number[]; newUserMs: number; newUserOk: boolean; wrong: string[]; outcomes: Record<string, number> };
  bare?: BareResult;
  profiles: ProfileSection[];
  dbBytes: number | null;
}

const sortedEq = (a: string[] | undefined, b: string[] | undefined) => JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());

function compareUser(e: ExpectedUser, d: DirectoryUser | undefined): string | undefined {
  if (!d?.found) return `${e.username}: not in the directory`;
  if (!e.exists) return d.active ? `${e.username}: deleted in the tenant but still active` : undefined;
  const wrong: string[] = [];
  if (d.displayName !== e.displayName) wrong.push(`display name '${d.displayName}' ≠ '${e.displayName}'`);
  if (d.active !== e.active) wrong.push(`active ${d.active} ≠ ${e.active}`);
  if (!sortedEq(d.groups, e.groups)) {
    const missing = (e.groups ?? []).filter((g) => !d.groups?.includes(g));
    const extra = (d.groups ?? []).filter((g) => !e.groups?.includes(g));
    wrong.push(`groups: missing [${missing.join(', ')}], extra [${extra.join(', ')}]`);
  }
  return wrong.length ? `${e.username}: ${wrong.join('; ')}` : undefined;
}

async function runStore(store: 'sqlite' | 'postgres', tmpDir: string): Promise<StoreResult> {
  const profiles: ProfileSection[] = [];
  let emu: Child<EmulatorReady> | undefined;
  let svc: Child<ServiceReady> | undefined;
  const schema = `bench_graph_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    USERSYNC_SECRET_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    PORT: '0',
    DATA_DIR: tmpDir,
    ...(store === 'sqlite' ? { DATABASE_URL: path.join(tmpDir, 'usersync.db') } : { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema }),
    ...(PROFILE ? { BENCH_SQL_TIMING: '1' } : {}),
  };
  try {
    // --- the tenant
    const t = performance.now();
    emu = await startChild<EmulatorReady>('emulator', 'lib/graph-emulator.ts', {});
    const seeded = await emu.ipc.call<Seeded>('seed', SIZE);
    const emuWatch = new RssWatch(emu.ready.pid);
    log(
      `  tenant: ${f0(seeded.users)} users (${f0(seeded.activeUsers)} enabled), ${f0(seeded.groups)} groups, ${f0(seeded.directMemberships)} direct memberships, ` +
        `${f0(seeded.nestedLinks)} groups nested in others → ${f0(seeded.transitiveMemberships)} memberships flattened; emulator ready in ${f0(performance.now() - t)} ms, RSS ${f0(emuWatch.now())} MB`,
    );

    // --- the service, and a Graph connector pointed at the emulator
    svc = await startChild<ServiceReady>('service', 'lib/graph-service.ts', env);
    const { port, token } = svc.ready;
    const call = (method: string, p: string, body?: unknown) => api(port, token, method, p, body);
    const watch = new RssWatch(svc.ready.pid);
    const created = await call('POST', '/connectors', {
      id: CONNECTOR,
      name: 'Contoso Entra ID (bench)',
      kind: 'graph',
      source: {
        tenantId: emu.ready.tenantId,
        clientId: emu.ready.clientId,
        clientSecret: emu.ready.clientSecret,
        cloud: 'custom',
        authorityHost: emu.ready.authorityHost,
        graphUrl: emu.ready.graphUrl,
        caCertificate: emu.ready.caCert,
        schedule: { kind: 'off' },
      },
    });
    if (created.status !== 201) throw new Error(`creating the connector: ${created.status} ${JSON.stringify(created.body)}`);
    const serviceIdleRssMb = watch.now();
    const stats = () => svc!.ipc.call<Stats>('stats', { connector: CONNECTOR });
    const profileStart = async () => {
      if (!PROFILE) return;
      await svc!.ipc.call('sqlTimes', {}); // only the step's own statements
      await svc!.ipc.call('profileStart', { intervalUs: 500 });
    };
    const profileStop = async (label: string) => {
      if (!PROFILE) return;
      const file = path.join(tmpDir, `${store}-${label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
      await svc!.ipc.call('profileStop', { file });
      const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
      const sql = await svc!.ipc.call<ProfileSection['sql']>('sqlTimes', { top: 15 });
      profiles.push({ label, summary: summarise([profile], ROOT, 25), sql });
    };

    const sync = async (mode: 'full' | 'auto', label: string): Promise<SyncFigure> => {
      await emu!.ipc.call('requests');
      await profileStart();
      watch.start();
      const cpu0 = { service: cpuSeconds(svc!.ready.pid), emulator: cpuSeconds(emu!.ready.pid) };
      const t0 = performance.now();
      const pending = call('POST', `/connectors/${CONNECTOR}/sync`, { mode });
      // The run's phases as they go, polled every 250 ms: when each was first seen. The run's detail (for
      // the reading sub-phase) only while reading: later it would also list the run's change-feed rows.
      const phases: { phase: string; atS: number }[] = [];
      let ended = false;
      void pending.finally(() => (ended = true));
      const currentPhase = async (): Promise<string | undefined> => {
        const r = (await call('GET', `/runs?connector=${CONNECTOR}&limit=1`)).body?.runs?.[0] as { id: string; status: string; phase: string | null } | undefined;
        if (!r || r.status !== 'running' || !r.phase) return undefined;
        if (r.phase !== 'reading') return r.phase;
        const detail = (await call('GET', `/runs/${r.id}`)).body as { progress?: { phase?: string } };
        return detail.progress?.phase ? `reading ${detail.progress.phase}` : 'reading (delta links, counts)';
      };
      const poll = (async () => {
        while (!ended) {
          const phase = await currentPhase().catch(() => undefined);
          if (phase && phases.at(-1)?.phase !== phase) phases.push({ phase, atS: (performance.now() - t0) / 1000 });
          await new Promise((res) => setTimeout(res, 250));
        }
      })();
      const res = await pending;
      const wallS = (performance.now() - t0) / 1000;
      await poll;
      const rss = watch.stop();
      const cpu = { service: cpuSeconds(svc!.ready.pid) - cpu0.service, emulator: cpuSeconds(emu!.ready.pid) - cpu0.emulator };
      await profileStop(label);
      if (res.status !== 200) throw new Error(`${label}: POST sync answered ${res.status} ${JSON.stringify(res.body)}`);
      const run = (await call('GET', `/runs/${res.body.runId}`)).body as Run;
      if (run.status !== 'succeeded') throw new Error(`${label}: the run ended ${run.status}: ${run.error ?? ''}\n${run.log.map((l) => `  ${l.level} ${l.message}`).join('\n')}`);
      const read = run.log.map((l) => /(?:full read|delta round): .* in ([\d.]+) s$/.exec(l.message)).find(Boolean);
      const requests = await emu!.ipc.call<number>('requests');
      return { wallS, run, runS: (Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000, readingS: read ? Number(read[1]) : null, rss, requests, phases, cpu };
    };

    // --- 1. full sync
    log('  1. full sync …');
    const full = await sync('full', '1. full sync');
    const afterFull = await stats();
    log(
      `     ${f1(full.wallS)} s (reading ${f1(full.readingS ?? NaN)} s), run peakRss ${f0(mb(full.run.peakRss))} MB, sampled ${f0(full.rss.sampledMb)} MB, VmHWM ${full.rss.hwmMb === null ? 'n/a' : f0(full.rss.hwmMb)} MB; ` +
        `directory ${f0(afterFull.users)} users, ${f0(afterFull.groups)} groups, ${f0(afterFull.memberships)} memberships; ${f0(full.requests)} Graph requests; ` +
        `CPU: service ${f1(full.cpu.service)} s, emulator ${f1(full.cpu.emulator)} s; phases: ${full.phases.map((p, i) => `${p.phase} ${f1((full.phases[i + 1]?.atS ?? full.wallS) - p.atS)} s`).join(', ')}`,
    );

    // --- 2. a second full sync with nothing changed
    log('  2. second full sync, nothing changed …');
    const before = await stats();
    const second = await sync('full', '2. second full sync');
    const after = await stats();
    const feed = await svc.ipc.call<{ entity: string; op: string; n: number }[]>('feedOfRun', { runId: second.run.id });
    log(`     ${f1(second.wallS)} s; change feed ${f0(before.changeFeed)} → ${f0(after.changeFeed)} rows (${f0(feed.reduce((s, r) => s + r.n, 0))} of this run); counters ${JSON.stringify(second.run.counters)}`);

    // --- 3. a delta round with ~100 changes
    const applied = await emu.ipc.call<{ changes: number; users: ExpectedUser[]; deleted: ExpectedUser[]; renamed: { id: string; from: string; to: string; transitiveUsers: number }[] }>('applyChanges', CHANGES);
    log(`  3. delta round with ${applied.changes} changes …`);
    const d = await sync('auto', '3. delta round');
    const how = d.run.log.some((l) => /^delta round:/.test(l.message)) ? 'delta round' : 'full read (no usable delta state)';
    const wrong: string[] = [];
    const seen = await svc.ipc.call<DirectoryUser[]>('users', { connector: CONNECTOR, usernames: [...applied.users, ...applied.deleted].map((u) => u.username) });
    const byName = new Map(seen.map((u) => [u.username.toLowerCase(), u]));
    for (const e of [...applied.users, ...applied.deleted]) {
      const w = compareUser(e, byName.get(e.username.toLowerCase()));
      if (w) wrong.push(w);
    }
    const groupsSeen = await svc.ipc.call<{ name: string; found: boolean; members: number }[]>('groups', { connector: CONNECTOR, names: applied.renamed.flatMap((r) => [r.from, r.to]) });
    for (const r of applied.renamed) {
      const old = groupsSeen.find((g) => g.name === r.from)!;
      const now = groupsSeen.find((g) => g.name === r.to)!;
      if (old.found) wrong.push(`group '${r.from}' still has its old name`);
      if (!now.found) wrong.push(`group '${r.to}' (renamed) is not in the directory`);
      else if (now.members !== r.transitiveUsers) wrong.push(`group '${r.to}': ${now.members} members in the directory, ${r.transitiveUsers} in the tenant`);
    }
    const delta = { ...d, changes: applied.changes, checked: applied.users.length + applied.deleted.length, wrong, deleted: applied.deleted.length, renamed: applied.renamed.length, how };
    log(`     ${f2(d.wallS)} s (${how}), counters ${JSON.stringify(d.run.counters)}; ${delta.checked} users and ${delta.renamed} renamed groups checked: ${wrong.length ? `${wrong.length} wrong` : 'all as in the tenant'}`);
    for (const w of wrong.slice(0, 10)) log(`       ${w}`);

    // --- 4. one user on demand
    log(`  4. sync-user × ${ON_DEMAND_CALLS} …`);
    const picked = await emu.ipc.call<{ existing: string[]; brandNew: string }>('onDemandUsers', { count: ON_DEMAND_CALLS - 1 });
    const names = [...picked.existing];
    names.splice(Math.floor(names.length / 2), 0, picked.brandNew);
    const ms: number[] = [];
    const answers: Json[] = [];
    await profileStart();
    for (const username of names) {
      const t0 = performance.now();
      const res = await call('POST', `/connectors/${CONNECTOR}/sync-user`, { username });
      ms.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`sync-user ${username}: ${res.status} ${JSON.stringify(res.body)}`);
      answers.push(res.body);
    }
    await profileStop('4. sync-user');
    const expected = await emu.ipc.call<ExpectedUser[]>('expect', { usernames: names });
    const odWrong: string[] = [];
    const outcomes: Record<string, number> = {};
    names.forEach((name, i) => {
      const a = answers[i];
      outcomes[a.outcome] = (outcomes[a.outcome] ?? 0) + 1;
      const w = compareUser(expected[i]!, a.user ? { ...a.user, found: true } : undefined);
      if (w) odWrong.push(w);
    });
    const newIdx = names.indexOf(picked.brandNew);
    const onDemand = { ms, newUserMs: ms[newIdx]!, newUserOk: !odWrong.some((w) => w.startsWith(`${picked.brandNew}:`)), wrong: odWrong, outcomes };
    const sorted = [...ms].sort((a, b) => a - b);
    log(`     median ${f0(quantile(sorted, 0.5))} ms, p95 ${f0(quantile(sorted, 0.95))} ms, max ${f0(sorted.at(-1)!)} ms; the new user ${f0(onDemand.newUserMs)} ms; ${odWrong.length ? `${odWrong.length} wrong` : 'all as in the tenant'}`);
    for (const w of odWrong.slice(0, 10)) log(`       ${w}`);

    const dbBytes = await svc.ipc.call<number | null>('dbSize');
    const emulatorRssMb = emuWatch.now();
    return {
      store,
      storeNote: store === 'sqlite' ? 'SQLite (WAL, synchronous=NORMAL), a file on local disk' : `PostgreSQL (${PG_URL.replace(/\/\/[^@]*@/, '//…@')}, schema ${schema}, dropped afterwards)`,
      seeded,
      emulatorRssMb,
      serviceIdleRssMb,
      full,
      afterFull,
      second: { ...second, before, after, feed },
      delta,
      onDemand,
      profiles,
      dbBytes,
    };
  } finally {
    await Promise.allSettled([stopChild(svc), stopChild(emu)]);
    if (store === 'postgres') {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    }
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

// ---------------------------------------------------------------------------------------------------
// the report



function storeSection(r: StoreResult, bare: BareResult | undefined): string[] {
  const L: string[] = [];
  const s = r.seeded;
  const a = r.afterFull;
  const full = r.full;
  const runRss = mb(full.run.peakRss);
  const extRss = Math.max(full.rss.sampledMb, full.rss.hwmMb ?? 0);
  const countsOk = a.users === s.users && a.groups === s.groups && a.memberships === s.transitiveMemberships && a.activeUsers === s.activeUsers;
  const sec = r.second;
  const runFeed = sec.feed.reduce((n, x) => n + x.n, 0);
  const dirUnchanged =
    sec.before.usersUpdatedAt === sec.after.usersUpdatedAt &&
    sec.before.groupsUpdatedAt === sec.after.groupsUpdatedAt &&
    sec.before.membershipsCreatedAt === sec.after.membershipsCreatedAt &&
    sec.before.users === sec.after.users &&
    sec.before.groups === sec.after.groups &&
    sec.before.memberships === sec.after.memberships;
  const mirrorWrites = ['mirrorCreated', 'mirrorUpdated', 'mirrorDeleted', 'mirrorMembershipsAdded', 'mirrorMembershipsRemoved'].map((k) => sec.run.counters[k] ?? 0);
  const mirrorUnchanged = sec.before.mirrorUserVersions === sec.after.mirrorUserVersions && sec.before.mirrorGroupVersions === sec.after.mirrorGroupVersions && sec.before.mirrorUsersUpdatedAt === sec.after.mirrorUsersUpdatedAt && sec.before.mirrorMembers === sec.after.mirrorMembers;
  const dl = r.delta;
  const od = r.onDemand;
  const sorted = [...od.ms].sort((x, y) => x - y);
  const p50 = quantile(sorted, 0.5);
  const p95 = quantile(sorted, 0.95);
  const max = sorted.at(-1)!;
  const counters = (c: Record<string, number>) =>
    Object.entries(c)
      .map(([k, v]) => `${k} ${f0(v)}`)
      .join(', ') || 'none';

  L.push(`## ${r.storeNote}`, '');
  L.push(
    `Tenant (emulator, its own process, RSS ${f0(r.emulatorRssMb)} MB at the end): ${f0(s.users)} users (${f0(s.activeUsers)} enabled), ${f0(s.groups)} groups, ` +
      `${f0(s.directMemberships)} direct user memberships, ${f0(s.nestedLinks)} groups nested in other groups; flattened (the connector's default \`nestedGroups: 'flatten'\`) ` +
      `that is ${f0(s.transitiveMemberships)} user memberships. The service's RSS before the first sync: ${f0(r.serviceIdleRssMb)} MB.`,
    '',
  );
  L.push('| # | Figure | Measured | Target | Verdict |', '|---|---|---|---|---|');
  L.push(
    `| 1 | Full sync (POST …/sync \`{"mode":"full"}\`, answered when the run ended \`${full.run.status}\`) | **${f1(full.wallS)} s** (run ${f1(full.runS)} s: reading into the mirror ${f1(full.readingS ?? NaN)} s, reconciling ${f1(full.runS - (full.readingS ?? NaN))} s) | < ${TARGET.fullS} s | ${verdict(full.wallS < TARGET.fullS)} |`,
  );
  L.push(`| 1 | Peak RSS of the service, the run's own \`peakRss\` | ${f0(runRss)} MB | < ${TARGET.rssMb} MB | ${verdict(runRss < TARGET.rssMb)} |`);
  L.push(
    `| 1 | Peak RSS of the service process, from outside (/proc: VmRSS every 50 ms, ${f0(full.rss.samples)} samples; VmHWM reset before the sync) | ${f0(full.rss.sampledMb)} MB sampled; VmHWM ${full.rss.hwmMb === null ? 'n/a' : `${f0(full.rss.hwmMb)} MB`} | < ${TARGET.rssMb} MB | ${verdict(extRss < TARGET.rssMb)} |`,
  );
  L.push(
    `| 1 | Directory afterwards: users / active / groups / memberships | ${f0(a.users)} / ${f0(a.activeUsers)} / ${f0(a.groups)} / ${f0(a.memberships)} | ${f0(s.users)} / ${f0(s.activeUsers)} / ${f0(s.groups)} / ${f0(s.transitiveMemberships)} (the tenant) | ${check(countsOk)} |`,
  );
  L.push(`| 1 | Graph requests; change-feed rows | ${f0(full.requests)}; ${f0(a.changeFeed)} | | |`);
  L.push(`| 2 | Second full sync, nothing changed: time | ${f1(sec.wallS)} s (reading ${f1(sec.readingS ?? NaN)} s) | (reported) | |`);
  L.push(`| 2 | … change-feed rows of the run (whole feed before → after) | **${f0(runFeed)}** (${f0(sec.before.changeFeed)} → ${f0(sec.after.changeFeed)}) | 0 | ${verdict(runFeed === 0 && sec.before.changeFeed === sec.after.changeFeed)} |`);
  L.push(
    `| 2 | … directory rows written (latest users.updated_at, groups.updated_at, memberships.created_at and row counts, before vs after) | ${dirUnchanged ? 'none: all unchanged' : `changed: users ${sec.before.usersUpdatedAt} → ${sec.after.usersUpdatedAt}, groups ${sec.before.groupsUpdatedAt} → ${sec.after.groupsUpdatedAt}, memberships ${sec.before.membershipsCreatedAt} → ${sec.after.membershipsCreatedAt}`} | none | ${verdict(dirUnchanged)} |`,
  );
  L.push(
    `| 2 | … mirror writes (run counters mirrorCreated / Updated / Deleted / MembershipsAdded / Removed; sum of mirror versions, latest updated_at, member rows) | ${mirrorWrites.map(f0).join(' / ')}; ${mirrorUnchanged ? 'unchanged' : 'changed'} | 0; unchanged | ${verdict(mirrorWrites.every((x) => x === 0) && mirrorUnchanged)} |`,
  );
  L.push(`| 2 | … run counters | ${counters(sec.run.counters)} | | |`);
  L.push(`| 3 | Delta round carrying ${dl.changes} changes (POST …/sync \`{"mode":"auto"}\`; ${dl.how}) | **${f2(dl.wallS)} s** (run ${f2(dl.runS)} s) | < ${TARGET.deltaS} s | ${verdict(dl.wallS < TARGET.deltaS && dl.how === 'delta round')} |`);
  L.push(
    `| 3 | … directory matches the tenant afterwards (${dl.checked - dl.deleted} users changed or added: display name, active, groups with nesting; ${dl.deleted} deleted users deactivated; ${dl.renamed} renamed groups with their member counts) | ${dl.wrong.length ? `${dl.wrong.length} differences` : 'all match'} | all match | ${check(dl.wrong.length === 0)} |`,
  );
  L.push(`| 3 | … run counters; Graph requests | ${counters(dl.run.counters)}; ${f0(dl.requests)} | | |`);
  L.push(
    `| 4 | On-demand sync of one user (POST …/sync-user), ${od.ms.length} different users: median / p95 / max | **${f0(p50)} / ${f0(p95)} / ${f0(max)} ms** | < 1,000 ms each | ${verdict(max < TARGET.userS * 1000)} |`,
  );
  L.push(
    `| 4 | … of which a brand-new user (created in the tenant after the delta round, in 2 groups, one nested) | ${f0(od.newUserMs)} ms, ${od.newUserOk ? 'in the directory with its groups' : '**not as in the tenant**'} | < 1,000 ms | ${verdict(od.newUserMs < 1000 && od.newUserOk)} |`,
  );
  L.push(`| 4 | … answers match the tenant (outcomes: ${Object.entries(od.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}) | ${od.wrong.length ? `${od.wrong.length} differences` : 'all match'} | all match | ${check(od.wrong.length === 0)} |`);
  if (bare) {
    const ratio = full.wallS / (bare.ms / 1000);
    L.push(
      `| 5 | Bare store (same run): ${f0(bare.users)} users, ${f0(bare.groups)} groups, ${f0(bare.memberships)} memberships into a fresh SQLite file, prepared statements, one transaction | ${f1(bare.ms / 1000)} s | (issue: about 3 s) | |`,
    );
    L.push(`| 5 | Full sync / bare store | **${f1(ratio)}×** | | |`);
  }
  L.push('');
  const notes: string[] = [];
  if (r.dbBytes) notes.push(`Database size at the end: ${f0(mb(r.dbBytes))} MB.`);
  const spans = (f: SyncFigure) => f.phases.map((p, i) => `${p.phase} ${f1((f.phases[i + 1]?.atS ?? f.wallS) - p.atS)} s`).join(', ');
  notes.push(`Full sync phases (polled every 250 ms): ${spans(full)}; second full sync: ${spans(sec)}.`);
  const cpuOf = (f: SyncFigure) => `service ${f1(f.cpu.service)} s, emulator ${f1(f.cpu.emulator)} s of CPU in ${f1(f.wallS)} s`;
  notes.push(`CPU time (/proc/<pid>/stat) — full sync: ${cpuOf(full)}; second full sync: ${cpuOf(sec)}; delta round: ${cpuOf(dl)}.`);
  notes.push(`Full sync run log: ${full.run.log.map((l) => `"${l.message}"`).join('; ')}.`);
  notes.push(`Full sync counters: ${counters(full.run.counters)}.`);
  if (dl.wrong.length) notes.push(`Delta differences (first 10): ${dl.wrong.slice(0, 10).join(' | ')}`);
  if (od.wrong.length) notes.push(`On-demand differences (first 10): ${od.wrong.slice(0, 10).join(' | ')}`);
  notes.push(`On-demand times in call order (ms): ${od.ms.map((x) => f0(x)).join(', ')}.`);
  L.push(...notes.map((n) => `- ${n}`), '');
  return L;
}

const PROFILE_HEADING = '## CPU profile — ';

function profileSection(r: StoreResult, load: number[]): string[] {
  const L: string[] = [`${PROFILE_HEADING}${r.store}`, ''];
  L.push(
    `A separate run with \`--profile\` (${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, code: ${revision()}, load average after it ${load.map((x) => x.toFixed(2)).join(' / ')}): ` +
      'node:inspector sampling (500 µs) in the service process for each step, and every SQL statement timed by its text ' +
      '(IN- and VALUES-lists folded). Profiled figures are slower than the figures above and are not the result. ' +
      "Frames in bench/lib/graph-service.ts are that SQL timer's wrapper: their self time is the timer's overhead plus native statement time V8 attributes to the caller. " +
      "On PostgreSQL a statement's time is the wall time until its result arrived (waiting for a pool connection included), and the service's CPU profile shows mostly idle time while it waits.",
    '',
    `Profiled: full sync ${f1(r.full.wallS)} s (service CPU ${f1(r.full.cpu.service)} s, emulator CPU ${f1(r.full.cpu.emulator)} s; ` +
      `phases ${r.full.phases.map((p, i) => `${p.phase} ${f1((r.full.phases[i + 1]?.atS ?? r.full.wallS) - p.atS)} s`).join(', ')}; ` +
      `run log: ${r.full.run.log.map((l) => `"${l.message}"`).join('; ')}); second full sync ${f1(r.second.wallS)} s; delta round ${f2(r.delta.wallS)} s; ` +
      `sync-user median ${f0(quantile([...r.onDemand.ms].sort((a, b) => a - b), 0.5))} ms.`,
    '',
  );
  for (const p of r.profiles) {
    L.push(`### ${r.store}: ${p.label}`, '', `${f0(p.summary.totalSamples)} samples over ${f0(p.summary.durationMs)} ms.`, '');
    L.push('Self time by area:', '', '| Area | self % |', '|---|---:|');
    for (const x of p.summary.byArea.slice(0, 12)) L.push(`| ${x.area} | ${x.selfPct} |`);
    L.push('', 'Top functions by self time:', '', '| Function | Where | self % |', '|---|---|---:|');
    for (const x of p.summary.bySelf.slice(0, 15)) L.push(`| ${x.fn} | ${x.where} | ${x.selfPct} |`);
    L.push('', 'Top functions by inclusive time:', '', '| Function | Where | total % |', '|---|---|---:|');
    for (const x of p.summary.byInclusive.slice(0, 25)) L.push(`| ${x.fn} | ${x.where} | ${x.totalPct} |`);
    L.push('', `SQL statements by total time (all statements: ${f0(p.sql.totalMs)} ms):`, '', '| Statement | calls | total ms | rows |', '|---|---:|---:|---:|');
    for (const x of p.sql.statements.slice(0, 12)) L.push(`| \`${x.sql.replace(/\|/g, '\\|').replace(/`/g, "'")}\` | ${f0(x.n)} | ${f0(x.ms)} | ${f0(x.rows)} |`);
    L.push('');
    for (const x of p.sql.plans) {
      L.push(`Plan of a statement that took ${f0(x.ms)} ms (EXPLAIN on another connection right after it): \`${x.sql.slice(0, 200).replace(/`/g, "'")}…\``, '', '```', x.plan, '```', '');
    }
  }
  return L;
}

// ---------------------------------------------------------------------------------------------------

export async function runGraphSync(): Promise<void> {
  const started = Date.now();
  const date = new Date().toISOString().slice(0, 10);
  const mach = machine();
  const stores: ('sqlite' | 'postgres')[] = process.argv.includes('--pg-only') ? ['postgres'] : process.argv.includes('--pg') ? ['sqlite', 'postgres'] : ['sqlite'];
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-graph-bench-'));
  const loadBefore = os.loadavg();
  log(`usersync Graph sync bench — ${date}, ${mach.host}, ${mach.model}, ${mach.cores} cores, ${f1(mach.memGb)} GB, Node ${mach.node}${PROFILE ? ' — PROFILING (figures not comparable)' : ''}`);
  log(`  stores: ${stores.join(', ')}; temp dir ${tmpDir}`);
  const results: StoreResult[] = [];
  let bare: BareResult | undefined;
  try {
    for (const store of stores) {
      log(`${store}:`);
      const r = await runStore(store, tmpDir);
      results.push(r);
      if (!bare && !PROFILE) {
        // 5. the bare store, with the row counts figure 1 produced (every other process has exited)
        log('  5. bare store baseline …');
        bare = bareDirectoryInsert(path.join(tmpDir, 'bare.db'), r.afterFull.users, r.afterFull.groups, r.afterFull.memberships);
        log(`     ${f0(bare.users)} users, ${f0(bare.groups)} groups, ${f0(bare.memberships)} memberships in ${f2(bare.ms / 1000)} s (commit ${f0(bare.commitMs)} ms); full sync / bare = ${f1(r.full.wallS / (bare.ms / 1000))}×`);
      }
    }
  } finally {
    if (process.env.BENCH_KEEP) log(`kept ${tmpDir}`);
    else fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  const totalS = (Date.now() - started) / 1000;
  const loadAfter = os.loadavg();
  const out = path.join(ROOT, 'bench', 'results', `${date}-${mach.host}-graph.md`);

  if (PROFILE) {
    const sections = results.map((r) => profileSection(r, loadAfter).join('\n'));
    log('');
    log(sections.join('\n'));
    if (ISSUE_SIZE && fs.existsSync(out)) {
      // the day's results keep their figures; this run's stores' profile sections replace older ones
      const parts = fs.readFileSync(out, 'utf8').split(new RegExp(`\n(?=${PROFILE_HEADING})`));
      const kept = parts.filter((p, i) => i === 0 || !results.some((r) => p.startsWith(`${PROFILE_HEADING}${r.store}\n`)));
      fs.writeFileSync(out, `${[...kept.map((p) => p.trimEnd()), ...sections.map((x) => x.trimEnd())].join('\n\n')}\n`);
      log(`CPU profile written into ${path.relative(ROOT, out)}`);
    }
    return;
  }

  const L: string[] = [];
  L.push(`# Graph pull sync benchmark — ${date} — ${mach.host}`, '');
  L.push(
    `- Date (UTC): ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- Machine: ${mach.host} — ${mach.model}, ${mach.cores} cores, ${f1(mach.memGb)} GB memory (shared with other work), ${mach.platform}`,
    `- Node ${mach.node}; code measured: ${mach.code}`,
    `- Load average (1/5/15 min) before: ${loadBefore.map((x) => x.toFixed(2)).join(' / ')}, after: ${loadAfter.map((x) => x.toFixed(2)).join(' / ')}; whole run ${totalS.toFixed(0)} s`,
    '- Processes: the bench driver; the Graph emulator (`test/support/graph-emulator`, HTTPS, the tenant in memory) in its own process; the service ' +
      '(`bench/lib/graph-service.ts`: `buildService` as `usersync serve` builds it — admin API, PullRunner, reconciler and scheduler running, LOG_LEVEL=warn) in its own process. ' +
      "Every sync goes over the admin API on loopback; the connector's source settings point at the emulator (`cloud: 'custom'`, `caCertificate`), schedule off, other settings default " +
      '(directory scope, `nestedGroups: flatten`, concurrency 4, default user and group rules).',
    '- Times are wall-clock times of the admin API call as the client sees them; POST …/sync answers when the run has ended (read into the mirror and reconciled into the directory).',
    '',
  );
  if (!ISSUE_SIZE) L.push(`**Reduced size (${f0(SIZE.users)} users, ${f0(SIZE.groups)} groups, ${f0(SIZE.memberships)} memberships): not the issue's figures.**`, '');
  for (const r of results) L.push(...storeSection(r, bare));
  if (bare) {
    L.push(
      '## Baseline',
      '',
      `\`bench/lib/graph-bare.ts\`, in the driver process after the service and the emulator had exited: the directory rows figure 1 produced (${f0(bare.users)} users, ${f0(bare.groups)} groups, ` +
        `${f0(bare.memberships)} memberships) inserted into a fresh SQLite file with the directory tables' columns, keys and indexes, WAL, synchronous=NORMAL, foreign keys on, ` +
        `UUIDv7 ids, better-sqlite3 prepared statements, one transaction (commit ${f0(bare.commitMs)} ms): **${f2(bare.ms / 1000)} s**. No mirror, dirty marks, rules, change feed, HTTP or Graph; ` +
        'the ratio says how far a full sync is from the bare cost of the rows it must leave behind.',
      '',
    );
  }
  L.push('Run with `npm run bench -- graph` (add `--pg` for PostgreSQL too, `--profile` for a CPU profile of the service); benchmarks are not part of `npm test`.', '');
  const report = L.join('\n');
  log('');
  log(report);
  if (ISSUE_SIZE) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, report);
    log(`written to ${path.relative(ROOT, out)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runGraphSync().catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
