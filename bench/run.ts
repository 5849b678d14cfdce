// `npm run bench`: the service under test and the bare Fastify + better-sqlite3 baseline, each in its own
// process, loaded by autocannon from this process on loopback with 10 connections. Every figure is
// stated as a ratio against a baseline measured in the same run, and measured interleaved with it: the
// machine is shared and absolute numbers drift, so each comparison runs its variants in alternating
// slices (A B, B A, A B, B A: a steady drift cancels, a sudden one hits both sides alike) and adds the
// slices of each variant up. Results: bench/results/<date>-<hostname>.md (and stdout).
//
//   npm run bench                       the full run (about 4 minutes)
//   npm run bench -- reevaluate         instead: 100,000 users and 1,000,000 memberships re-evaluated
//                                       after a settings change (bench/reevaluate.ts)
//   npm run bench -- graph              instead: the Microsoft Graph pull source against the emulator — full
//                                       sync, unchanged re-sync, delta round, sync of one user, bare-store
//                                       baseline (bench/graph-sync.ts; `--pg` adds PostgreSQL, `--profile`)
//   npm run bench -- ldap               instead: the LDAP pull source against slapd (50,000 users, 5,000 groups) —
//                                       full sync, unchanged re-sync, incremental rounds, bare ldapts read
//                                       baseline (bench/ldap-sync.ts; `--pg` adds PostgreSQL, `--profile`)
//   npm run bench -- admin              instead: the admin API's pages over a 50,000-user directory, logins,
//                                       the web UI's size (bench/admin-api.ts)
//   npm run bench -- targets            instead: the initial delivery of 10,000 users and 50,000 memberships to
//                                       one target (a Jira fake in its own process) at several concurrencies
//                                       and latencies, with our CPU per second (bench/targets.ts)
//   npm run bench -- --profile          the same scenarios with a CPU profile of the server processes
//                                       (and of ours while the reconciler catches up after a slice);
//                                       writes bench/results/<date>-<hostname>-profile.md (figures
//                                       from a profiled run are slowed down: not the benchmark result)
//   BENCH_ONLY=a (one comparison, printed only)  BENCH_DURATION=10 (s per variant)  BENCH_ROUNDS=4 (slices per variant)  BENCH_WARMUP=2 (s)
//   BENCH_BIG_GROUP=100000  BENCH_POOL_EXTRA=50000  BENCH_KEEP=1 (keep the databases and profiles)

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IpcClient } from './lib/ipc.ts';
import { stopChildProcess } from './lib/ipc.ts';
import type { LoadSpec, Measurement, RequestShape, Slice } from './lib/load.ts';
import { combine, runLoad } from './lib/load.ts';
import type { CpuProfile, ProfileSummary } from './lib/profile.ts';
import { summarise } from './lib/profile.ts';
import { userBody } from './lib/seed.ts';
import { runReevaluate } from './reevaluate.ts';
import { runGraphSync } from './graph-sync.ts';
import { runLdapSync } from './ldap-sync.ts';
import { runAdminApi } from './admin-api.ts';
import { runTargetsBench } from './targets.ts';
import { machine } from './lib/machine.ts';
import { PROFILE, ROOT, startChild } from './lib/driver.ts';
import { f0, f2, log } from './lib/format.ts';

/** `BENCH_ONLY=a`: one comparison only, printed, not recorded (for working on one figure) */
const ONLY = process.env.BENCH_ONLY;
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 4));
const CONNECTIONS = 10;
const LOOKUP_USERS = 10_000;
const POOL_EXTRA = Number(process.env.BENCH_POOL_EXTRA ?? 50_000);
const BIG_GROUP = Number(process.env.BENCH_BIG_GROUP ?? 100_000);
const SCIM_CT = 'application/scim+json';
const WRAPPED = '**the user pool ran out: later PATCHes re-added existing members (raise BENCH_POOL_EXTRA)**';

// ---------------------------------------------------------------------------------------------------
// processes

interface Server {
  name: string;
  child: ChildProcess;
  ipc: IpcClient;
  url: string;
  token?: string;
}

async function startServer(name: string, script: string, env: Record<string, string>): Promise<Server> {
  const { child, ipc, ready } = await startChild<{ port: number; token?: string }>(name, script, env);
  return { name, child, ipc, url: `http://127.0.0.1:${ready.port}`, ...(ready.token ? { token: ready.token } : {}) };
}

function stopServer(s: Server): Promise<void> {
  return stopChildProcess(s.child, s.ipc);
}

// ---------------------------------------------------------------------------------------------------
// results

interface Row {
  id: string;
  label: string;
  target: 'bare' | 'ours';
  m: Measurement;
  note: string;
  /** successful requests / (time under load + the time the reconciler then needed to catch up) */
  sustainedRps: number;
  /** a run of ours whose every request leaves one dirty mark */
  writes?: boolean;
}

const rows: Row[] = [];
const profiles: { label: string; summary: ProfileSummary; unit: string; units: number }[] = [];
const ratio = (a: number, b: number) => a / b;

function rowOf(id: string): Row {
  const r = rows.find((x) => x.id === id);
  if (!r) throw new Error(`no measurement '${id}'`);
  return r;
}
const meanRps = (...ids: string[]) => ids.reduce((s, id) => s + rowOf(id).m.rps, 0) / ids.length;
const sustained = (id: string) => rowOf(id).sustainedRps;

// ---------------------------------------------------------------------------------------------------
// measuring

let tmpDir = '';
let ours: Server;
let bare: Server;
const poolWrapped = new Set<string>();

async function reconcilerIdle(): Promise<{ ms: number; dirty: number }> {
  return ours.ipc.call<{ ms: number; dirty: number }>('idle');
}

interface Variant {
  id: string;
  label: string;
  server: Server;
  /** called once per comparison: one request generator across all of the variant's slices */
  make: () => () => RequestShape;
  /** warm-up requests (default: the variant's own) */
  warm?: () => RequestShape;
  /** every request leaves one dirty mark */
  writes?: boolean;
  /** PATCH target, whose size is reported */
  groupId?: string;
}

function headersFor(server: Server): Record<string, string> {
  return server === ours ? { authorization: `Bearer ${ours.token}`, 'content-type': SCIM_CT, accept: SCIM_CT } : { 'content-type': 'application/json' };
}

async function readProfile(server: Server, name: string): Promise<CpuProfile> {
  const file = path.join(tmpDir, `${name}.cpuprofile`);
  await server.ipc.call('profileStop', { file });
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
}

/**
 * Measure variants against each other: a warm-up of each, then ROUNDS rounds in which each variant
 * runs DURATION/ROUNDS seconds, in alternating order. Before every slice the reconciler has caught up;
 * after a slice of ours, what it still had to do is timed.
 */
async function compare(title: string, variants: Variant[]): Promise<Row[]> {
  if (ONLY && !title.startsWith(`${ONLY}.`)) return [];
  log(title);
  const gens = variants.map((v) => v.make());
  const spec = (v: Variant, next: () => RequestShape): LoadSpec => ({ url: v.server.url, headers: headersFor(v.server), next });
  const sizeOf = (v: Variant) => (v.groupId ? ours.ipc.call<number>('groupSize', { groupId: v.groupId }) : Promise.resolve(0));
  for (const [i, v] of variants.entries()) {
    if (WARMUP <= 0) break;
    await reconcilerIdle();
    await runLoad(spec(v, v.warm ?? gens[i]!), { durationS: WARMUP, connections: CONNECTIONS });
  }
  const before = await Promise.all(variants.map(sizeOf));
  const acc = variants.map(() => ({ slices: [] as Slice[], backlog: 0, drainMs: 0, unprocessed: 0, load: [] as CpuProfile[], catchUp: [] as CpuProfile[], catchUpMarks: 0 }));
  for (let r = 0; r < ROUNDS; r++) {
    const order = variants.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const v = variants[i]!;
      const a = acc[i]!;
      await reconcilerIdle();
      if (PROFILE) await v.server.ipc.call('profileStart');
      a.slices.push(await runLoad(spec(v, gens[i]!), { durationS: DURATION / ROUNDS, connections: CONNECTIONS }));
      if (PROFILE) a.load.push(await readProfile(v.server, `${v.id}.${r}`));
      if (v.server === ours) {
        // what is still pending was not reconciled while the load ran
        const backlog = (await ours.ipc.call<{ dirtyMarks: number }>('stats')).dirtyMarks;
        // (a profile of a short catch-up would show little but the reconciler's own scheduling delays)
        const profileCatchUp = PROFILE && backlog >= 500;
        if (profileCatchUp) await ours.ipc.call('profileStart');
        const idle = await reconcilerIdle();
        if (profileCatchUp) {
          a.catchUp.push(await readProfile(ours, `${v.id}.${r}.catch-up`));
          a.catchUpMarks += backlog;
        }
        a.backlog += backlog;
        if (backlog > 0) a.drainMs += idle.ms;
        a.unprocessed = idle.dirty;
      }
    }
  }
  const after = await Promise.all(variants.map(sizeOf));
  return variants.map((v, i) => {
    const a = acc[i]!;
    const m = combine(a.slices);
    const notes: string[] = [];
    if (v.groupId) notes.push(`group ${f0(before[i]!)} → ${f0(after[i]!)} members`);
    if (v.groupId && poolWrapped.has(v.groupId)) notes.push(WRAPPED);
    const row: Row = { id: v.id, label: v.label, target: v.server === ours ? 'ours' : 'bare', m, note: '', sustainedRps: m.rps };
    if (v.writes) {
      row.writes = true;
      row.sustainedRps = m.ok / (m.durationS + a.drainMs / 1000);
      const during = Math.max(0, m.ok - a.backlog);
      const pct = (100 * during) / Math.max(1, m.ok);
      notes.push(
        `reconciled while the load ran: ${f0(during)} of ${f0(m.ok)} writes (${pct > 99 && pct < 100 ? '>99' : f0(pct)}%)` +
          (a.backlog > 0 ? `, the other ${f0(a.backlog)} after it, in ${f0(a.drainMs)} ms` : ''),
      );
    }
    if (a.unprocessed > 0) notes.push(`**${a.unprocessed} marks left unprocessed**`);
    const bad = Object.entries(m.statusCodes).filter(([c]) => !c.startsWith('2'));
    if (bad.length || m.errors) notes.push(`**non-2xx: ${bad.map(([c, n]) => `${c}×${n}`).join(', ') || 0}, errors: ${m.errors}**`);
    row.note = notes.join('; ');
    rows.push(row);
    if (PROFILE) {
      profiles.push({ label: v.label, summary: summarise(a.load, ROOT), unit: 'request', units: m.ok });
      if (a.catchUp.length) profiles.push({ label: `${v.label} — reconciler catching up after each slice`, summary: summarise(a.catchUp, ROOT), unit: 'mark', units: a.catchUpMarks });
    }
    log(`  ${v.label.padEnd(58)} ${f0(m.rps).padStart(7)} req/s  p50 ${f2(m.p50)} ms  p99 ${f2(m.p99)} ms${row.note ? `  (${row.note})` : ''}`);
    return row;
  });
}

/** A cursor over a fixed list; flags when it wraps (a PATCH would then re-add an existing member). */
function cycle<T>(list: T[], stride = 1): { next: () => T; used: () => number } {
  let i = 0;
  return {
    next: () => list[(i++ * stride) % list.length]!,
    used: () => i,
  };
}

async function scim<T>(method: string, p: string, body?: unknown): Promise<T> {
  const res = await fetch(`${ours.url}/scim/v2/bench${p}`, {
    method,
    headers: { authorization: `Bearer ${ours.token}`, 'content-type': SCIM_CT },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

function patchAdd(groupId: string, userId: string): RequestShape {
  return {
    method: 'PATCH',
    path: `/scim/v2/bench/Groups/${groupId}`,
    body: JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Add', path: 'members', value: [{ value: userId }] }] }),
  };
}

// ---------------------------------------------------------------------------------------------------
// machine



// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv.includes('graph')) return runGraphSync();
  if (process.argv.includes('ldap')) return runLdapSync();
  if (process.argv.includes('admin')) return runAdminApi();
  if (process.argv.includes('targets')) return runTargetsBench();
  if (process.argv.includes('reevaluate')) {
    // the rules benchmark: 100,000 users with 1,000,000 memberships re-evaluated after a settings change
    const text = await runReevaluate();
    const out = path.join(ROOT, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-${os.hostname()}-reevaluate.md`);
    fs.writeFileSync(out, text + '\n');
    process.stdout.write(`${text}\n\nwritten to ${out}\n`);
    return;
  }
  const started = Date.now();
  const date = new Date().toISOString().slice(0, 10);
  const mach = machine();
  const loadBefore = os.loadavg();
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-bench-'));
  log(`usersync bench — ${date}, ${mach.host}, ${mach.model}, ${mach.cores} cores, Node ${mach.node}${PROFILE ? ' — PROFILING (figures not comparable)' : ''}`);
  log(`  databases in ${tmpDir}; ${CONNECTIONS} connections; per variant ${WARMUP} s warm-up, then ${DURATION} s in ${ROUNDS} alternating slices`);

  bare = await startServer('bare', 'bare-handler.ts', { BENCH_DB: path.join(tmpDir, 'bare.db'), BARE_SEED: String(LOOKUP_USERS), BARE_PREFIX: 'seed.' });
  ours = await startServer('usersync', 'scim-server.ts', { BENCH_DB: path.join(tmpDir, 'usersync.db') });
  const extra: string[] = [];
  try {
    // --- set-up: 10,000 users, through the reconciler into the directory
    let t = Date.now();
    const seeded = await ours.ipc.call<{ ids: string[]; userNames: string[] }>('seedUsers', { prefix: 'seed.', count: LOOKUP_USERS, marks: true });
    const idle1 = await reconcilerIdle();
    log(`  seeded ${f0(LOOKUP_USERS)} users (reconciled into the directory in ${f0(idle1.ms)} ms) in ${f0(Date.now() - t)} ms`);

    // sanity: one lookup of each kind finds its row
    const probe = await scim<{ totalResults: number }>('GET', `/Users?filter=${encodeURIComponent(`userName eq "${seeded.userNames[42]}"`)}`);
    if (probe.totalResults !== 1) throw new Error('the filter lookup does not find a seeded user');
    const bareProbe = await fetch(`${bare.url}/items?name=${encodeURIComponent(seeded.userNames[42]!)}`);
    if (bareProbe.status !== 200) throw new Error('the bare lookup does not find a seeded row');

    // --- a. lookups: bare indexed GET vs GET /Users?filter=userName eq "…"
    const names = seeded.userNames;
    const bareGet = () => {
      const c = cycle(names, 7919);
      return (): RequestShape => ({ method: 'GET', path: `/items?name=${encodeURIComponent(c.next())}` });
    };
    const oursGet = () => {
      const c = cycle(names, 7919);
      return (): RequestShape => ({ method: 'GET', path: `/scim/v2/bench/Users?filter=${encodeURIComponent(`userName eq "${c.next()}"`).replace(/%20/g, '+')}` });
    };
    await compare('a. lookup', [
      { id: 'a.bare', label: 'a. bare GET indexed lookup', server: bare, make: bareGet },
      { id: 'a.ours', label: 'a. ours GET /Users?filter=userName eq', server: ours, make: oursGet },
    ]);

    // --- b. inserts: bare POST vs POST /Users (unique userName per request)
    let postSeq = 0;
    const post = (target: 'bare' | 'ours') => () => (): RequestShape => {
      const n = postSeq++;
      const userName = `post.${n}@example.com`;
      return { method: 'POST', path: target === 'bare' ? '/items' : '/scim/v2/bench/Users', body: JSON.stringify(userBody(userName, n)) };
    };
    const bareInsert = (id: string) => ({ id, label: `${id[0]}. bare POST durable insert`, server: bare, make: post('bare') });
    await compare('b. create', [bareInsert('b.bare'), { id: 'b.ours', label: 'b. ours POST /Users', server: ours, make: post('ours'), writes: true }]);

    // --- set-up for c and d: a pool of users to add (reconciled into the directory) and the groups
    t = Date.now();
    const more = await ours.ipc.call<{ ids: string[] }>('seedUsers', { prefix: 'pool.', count: POOL_EXTRA, marks: true });
    const pool = [...seeded.ids, ...more.ids];
    const group = async (displayName: string) => (await scim<{ id: string }>('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName })).id;
    const shared = await group('Bench shared group');
    const warmGroup = await group('Bench warm-up group');
    const empty0 = await group('Bench empty group 0');
    const empty1 = await group('Bench empty group 1');
    const big = await group(`Bench ${BIG_GROUP} group`);
    const idle2 = await reconcilerIdle();
    log(`  seeded ${f0(POOL_EXTRA)} more users (pool ${f0(pool.length)}) and 5 groups in ${f0(Date.now() - t)} ms (reconciler ${f0(idle2.ms)} ms)`);

    // Each PATCH adds a different pool user (reconciled, not yet a member) to the group. Warm-ups go to
    // a group of their own, so an "empty" group is empty when its measurement starts.
    const patches = (groupId: string) => () => {
      const c = cycle(pool);
      return (): RequestShape => {
        if (c.used() >= pool.length) poolWrapped.add(groupId);
        return patchAdd(groupId, c.next());
      };
    };
    let warmCursor = 0;
    const warm = (): RequestShape => patchAdd(warmGroup, pool[warmCursor++ % pool.length]!);
    const patchVariant = (id: string, label: string, groupId: string): Variant => ({ id, label, server: ours, make: patches(groupId), warm, writes: true, groupId });

    // --- c. PATCH add-member to one shared group vs bare durable insert; with it, an empty group in
    // the store that does not hold the big group yet (a second baseline for d)
    await compare('c. add member to one shared group (store without the big group yet)', [
      bareInsert('c.bare'),
      patchVariant('c.ours', 'c. ours PATCH add-member, one shared group', shared),
      patchVariant('d.empty0', 'd. ours PATCH add-member, empty group, store without the big group', empty0),
    ]);

    // --- set-up for d: BIG_GROUP users made members of one group, and the reconciler left to catch up
    t = Date.now();
    const bigMembers = await ours.ipc.call<{ ids: string[] }>('seedUsers', { prefix: 'member.', count: BIG_GROUP, marks: true });
    const usersMs = Date.now() - t;
    t = Date.now();
    await ours.ipc.call('seedMembers', { groupId: big, memberIds: bigMembers.ids, marks: true });
    const membersMs = Date.now() - t;
    const idle3 = await reconcilerIdle();
    const stats = await ours.ipc.call<Record<string, number>>('stats');
    const bigSize = await ours.ipc.call<number>('groupSize', { groupId: big });
    log(
      `  seeded ${f0(BIG_GROUP)} users in ${f0(usersMs)} ms and ${f0(bigSize)} memberships of one group in ${f0(membersMs)} ms; the reconciler caught up in ${f0(idle3.ms)} ms ` +
        `(directory: ${f0(stats.directoryUsers!)} users, ${f0(stats.directoryMemberships!)} memberships; ${stats.dirtyMarks} marks pending)`,
    );
    extra.push(
      `Set-up for d: ${f0(BIG_GROUP)} users (${f0(usersMs)} ms) and then their ${f0(bigSize)} memberships of one group (${f0(membersMs)} ms) written directly ` +
        `with Kysely, one transaction each, with the dirty marks a SCIM write leaves; the reconciler (running, as in production) was then left to catch up ` +
        `(${f0(idle3.ms)} ms; directory afterwards: ${f0(stats.directoryUsers!)} users, ${f0(stats.directoryMemberships!)} memberships, ${stats.dirtyMarks} marks pending), ` +
        'so the big group exists in the mirror and in the directory, and nothing was pending when measuring started. Before every slice the bench ' +
        'also waits until a reconciler pass finds nothing to do.',
    );

    // --- d. PATCH add-member: an empty group vs the BIG_GROUP-member group, interleaved, with bare
    // inserts to relate them to d.empty0, measured before the big group existed
    await compare(`d. add member: empty group vs ${f0(BIG_GROUP)} members`, [
      bareInsert('d.bare'),
      patchVariant('d.empty1', 'd. ours PATCH add-member, empty group', empty1),
      patchVariant('d.big', `d. ours PATCH add-member, ${f0(BIG_GROUP)}-member group`, big),
    ]);
  } finally {
    await Promise.allSettled([stopServer(ours), stopServer(bare)]);
  }

  const loadAfter = os.loadavg();
  const totalS = (Date.now() - started) / 1000;
  if (ONLY) {
    for (const r of rows) log(`${r.label}: ${f0(r.m.rps)} req/s, p50 ${f2(r.m.p50)} ms, p99 ${f2(r.m.p99)} ms`);
    return;
  }
  const report = PROFILE ? profileReport(date, mach, totalS) : resultsReport(date, mach, loadBefore, loadAfter, totalS, extra);
  const out = path.join(ROOT, 'bench', 'results', `${date}-${mach.host}${PROFILE ? '-profile' : ''}.md`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  log('');
  log(report);
  log(`written to ${path.relative(ROOT, out)}`);
  if (process.env.BENCH_KEEP) log(`databases and profiles kept in ${tmpDir}`);
  else fs.rmSync(tmpDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------
// reports

function header(date: string, mach: ReturnType<typeof machine>): string[] {
  return [
    `- Date (UTC): ${date}`,
    `- Machine: ${mach.host} — ${mach.model}, ${mach.cores} cores (shared with other work), ${mach.platform}`,
    `- Code measured: ${mach.code}`,
    `- Node ${mach.node}; autocannon 8 on loopback, ${CONNECTIONS} connections; per variant ${WARMUP} s warm-up, then ${DURATION} s measured in ${ROUNDS} slices alternating with the variants it is compared with`,
  ];
}

function resultsReport(date: string, mach: ReturnType<typeof machine>, before: number[], after: number[], totalS: number, extra: string[]): string {
  const L: string[] = [];
  L.push(`# usersync benchmark — ${date} — ${mach.host}`, '');
  L.push(...header(date, mach));
  L.push(`- Load average (1/5/15 min) before: ${before.map((x) => x.toFixed(2)).join(' / ')}, after: ${after.map((x) => x.toFixed(2)).join(' / ')}; whole run ${totalS.toFixed(0)} s`);
  L.push(
    '- Service: `bench/scim-server.ts` — the production service (`buildService`), SQLite store (WAL, synchronous=NORMAL) in a file on disk, reconciler running in-process; its own process.',
    '- Baseline: `bench/bare-handler.ts` — plain Fastify + better-sqlite3 (WAL, synchronous=NORMAL), one table with a unique index on a text column; GET = indexed lookup, POST = one autocommitted insert; its own process.',
    `- Lookups hit ${f0(LOOKUP_USERS)} seeded users/rows in a scattered order; every POST has a unique userName; every PATCH adds a different existing (reconciled) user.`,
    '- Each comparison runs its variants in alternating slices (A B, B A, …) and adds up the slices of each, so drift on the shared machine hits both sides alike. Latencies are per request (sub-millisecond), 2xx only.',
    '',
  );
  L.push('## Figures', '');
  L.push('| Run | req/s | p50 ms | p99 ms | req/s incl. reconciler catch-up | Notes |', '|---|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const incl = r.writes ? f0(r.sustainedRps) : '';
    L.push(`| ${r.label} | ${f0(r.m.rps)} | ${f2(r.m.p50)} | ${f2(r.m.p99)} | ${incl} | ${r.note} |`);
  }
  L.push(
    '',
    '"req/s incl. reconciler catch-up" = successful requests / (time under load + the time the reconciler needed after each slice to process the marks still pending): ' +
      'the rate at which the service can take writes *and* push them to the directory, as it must when the load is sustained.',
    '',
  );

  const rps = (id: string) => rowOf(id).m.rps;
  const aR = ratio(rps('a.ours'), rps('a.bare'));
  const bR = ratio(rps('b.ours'), rps('b.bare'));
  const cR = ratio(rps('c.ours'), rps('c.bare'));
  const bS = ratio(sustained('b.ours'), rps('b.bare'));
  const cS = ratio(sustained('c.ours'), rps('c.bare'));
  const dR = ratio(rps('d.big'), rps('d.empty1'));
  const dS = ratio(sustained('d.big'), sustained('d.empty1'));
  const dP50 = ratio(rowOf('d.big').m.p50, rowOf('d.empty1').m.p50);
  const dP99 = ratio(rowOf('d.big').m.p99, rowOf('d.empty1').m.p99);
  // across the two stores: each PATCH figure relative to the bare inserts measured with it
  const dX = ratio(rps('d.big') / rps('d.bare'), rps('d.empty0') / rps('c.bare'));
  const dStore = ratio(rps('d.empty1') / rps('d.bare'), rps('d.empty0') / rps('c.bare'));
  const dXp50 = ratio(rowOf('d.big').m.p50, rowOf('d.empty0').m.p50);
  const within = (x: number) => x >= 0.8 && x <= 1.2;
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  L.push('## Ratios (same run)', '');
  L.push('| Comparison | Ratio | Requirement | Verdict |', '|---|---:|---|---|');
  L.push(`| a. GET by filter / bare indexed GET (req/s) | ${f2(aR)} | ≥ 0.50 | ${verdict(aR >= 0.5)} |`);
  L.push(`| b. POST /Users / bare insert (req/s) | ${f2(bR)} | ≥ 0.50 | ${verdict(bR >= 0.5)} |`);
  L.push(`| b. same, counting the reconciler's catch-up | ${f2(bS)} | ≥ 0.50 | ${verdict(bS >= 0.5)} |`);
  L.push(`| c. PATCH add-member (shared group) / bare insert (req/s) | ${f2(cR)} | ≥ 0.50 | ${verdict(cR >= 0.5)} |`);
  L.push(`| c. same, counting the reconciler's catch-up | ${f2(cS)} | ≥ 0.50 | ${verdict(cS >= 0.5)} |`);
  L.push(`| d. PATCH add-member: ${f0(BIG_GROUP)}-member group / empty group, same store (req/s) | ${f2(dR)} | 0.80 – 1.20 | ${verdict(within(dR))} |`);
  L.push(`| d. same, p50 latency | ${f2(dP50)} | 0.80 – 1.20 | ${verdict(within(dP50))} |`);
  L.push(`| d. same, p99 latency | ${f2(dP99)} | (reported) | |`);
  L.push(`| d. same, counting the reconciler's catch-up (req/s) | ${f2(dS)} | 0.80 – 1.20 | ${verdict(within(dS))} |`);
  L.push(`| d. PATCH add-member: ${f0(BIG_GROUP)}-member group / empty group in the store before the big group existed (req/s, each relative to the bare inserts measured with it) | ${f2(dX)} | 0.80 – 1.20 | ${verdict(within(dX))} |`);
  L.push(`| d. same, p50 latency (raw) | ${f2(dXp50)} | (reported) | |`);
  L.push(`| d. empty group, store with / without the ${f0(BIG_GROUP)}-member group (req/s, each relative to bare) | ${f2(dStore)} | (diagnostic) | |`);
  L.push('');
  L.push(
    'For reference only (not measured in this run): the issue\'s figures from an earlier session on this machine — bare handler ~8,800 lookups/s and ~4,800 inserts/s; ' +
      'the open-source in-memory SCIM gateway ~1,800 req/s (filter lookup), 500–760 req/s (create), 160 req/s (add member to a shared group). ' +
      `This run: ours ${f0(rps('a.ours'))} / ${f0(rps('b.ours'))} / ${f0(rps('c.ours'))} req/s, ` +
      `bare ${f0(rps('a.bare'))} lookups/s and ${f0(meanRps('b.bare', 'c.bare', 'd.bare'))} inserts/s; ` +
      `ours against those gateway figures (different sessions, so indicative only): lookup ${f2(rps('a.ours') / 1800)}×, ` +
      `create ${f2(rps('b.ours') / 760)}–${f2(rps('b.ours') / 500)}×, add member ${f2(rps('c.ours') / 160)}×.`,
    '',
  );
  if (extra.length) L.push('## Notes', '', ...extra.map((e) => `- ${e}`), '');
  L.push('Run with `npm run bench` (3–4 minutes; benchmarks are not part of `npm test`).', '');
  return L.join('\n');
}

function profileReport(date: string, mach: ReturnType<typeof machine>, totalS: number): string {
  const L: string[] = [];
  L.push(`# usersync benchmark CPU profiles — ${date} — ${mach.host}`, '');
  L.push(...header(date, mach));
  L.push(`- Whole run ${totalS.toFixed(0)} s. Sampling profiler (node:inspector, 200 µs) in the server process (ours and the bare handler) during every measured slice, and in ours while the reconciler catches up after a slice; figures below are slowed by profiling and are not the benchmark result.`, '');
  L.push('| Run | req/s (profiled) | p50 ms | p99 ms |', '|---|---:|---:|---:|');
  for (const r of rows) L.push(`| ${r.label} | ${f0(r.m.rps)} | ${f2(r.m.p50)} | ${f2(r.m.p99)} |`);
  L.push('');
  for (const p of profiles) {
    const perUnit = (pct: number) => ((pct / 100) * p.summary.durationMs * 1000) / Math.max(1, p.units);
    L.push(
      `## ${p.label}`,
      '',
      `${f0(p.summary.totalSamples)} samples over ${f0(p.summary.durationMs)} ms, ${f0(p.units)} ${p.unit}s: ${perUnit(100).toFixed(0)} µs of the process's time per ${p.unit}.`,
      '',
    );
    L.push('Self time by area:', '', `| Area | self % | µs per ${p.unit} |`, '|---|---:|---:|');
    for (const a of p.summary.byArea.slice(0, 15)) L.push(`| ${a.area} | ${a.selfPct} | ${perUnit(a.selfPct).toFixed(1)} |`);
    L.push('', 'Top functions by self time:', '', `| Function | Where | self % | µs per ${p.unit} |`, '|---|---|---:|---:|');
    for (const s of p.summary.bySelf.slice(0, 20)) L.push(`| ${s.fn} | ${s.where} | ${s.selfPct} | ${perUnit(s.selfPct).toFixed(1)} |`);
    L.push('', 'Top functions by inclusive time:', '', '| Function | Where | total % |', '|---|---|---:|');
    for (const s of p.summary.byInclusive.slice(0, 25)) L.push(`| ${s.fn} | ${s.where} | ${s.totalPct} |`);
    L.push('');
  }
  return L.join('\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
