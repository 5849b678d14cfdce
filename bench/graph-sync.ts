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

import type { ExpectedUser } from './lib/graph-emulator.ts';
import fs from 'node:fs';
import path from 'node:path';
import { bareDirectoryInsert } from './lib/graph-bare.ts';
import type { BareResult } from './lib/graph-bare.ts';
import type { Child, DirectoryUser, Json, ProfileSection, ServiceReady, Stats, Store, SyncTiming } from './lib/driver.ts';
import { ConnectorService, PROFILE, ROOT, RssWatch, beginRun, fullSyncs, runIfMain, startChild, stopChild, storeSetup } from './lib/driver.ts';
import { check, counters, f0, f1, f2, log, mb, median, quantile, runLog, spans, verdict } from './lib/format.ts';
import { PROFILE_HEADING, fullSyncRows, profileSection, putSections, reportHead, secondSyncRows } from './lib/report.ts';

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
interface Seeded {
  seedMs: number;
  users: number;
  activeUsers: number;
  groups: number;
  directMemberships: number;
  nestedLinks: number;
  transitiveMemberships: number;
}
type SyncFigure = SyncTiming<'emulator'> & { requests: number };

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

async function runStore(store: Store, tmpDir: string): Promise<StoreResult> {
  let emu: Child<EmulatorReady> | undefined;
  let svc: Child<ServiceReady> | undefined;
  const { env, note, drop } = storeSetup(store, tmpDir, 'bench_graph');
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
    const service = await ConnectorService.create(svc, tmpDir, store, {
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
    const { call, profiler } = service;
    const stats = () => service.stats();

    const sync = async (mode: 'full' | 'auto', label: string): Promise<SyncFigure> => {
      await emu!.ipc.call('requests');
      const figure = await service.sync(mode, label, { pids: { emulator: emu!.ready.pid }, readingFallback: 'reading (delta links, counts)' });
      return { ...figure, requests: await emu!.ipc.call<number>('requests') };
    };

    // --- 1. full sync; 2. a second full sync with nothing changed
    const { full, afterFull, second, before, after } = await fullSyncs(sync, stats, (f, a) => ({
      directory: `directory ${f0(a.users)} users, ${f0(a.groups)} groups, ${f0(a.memberships)} memberships; ${f0(f.requests)} Graph requests`,
      cpu: `service ${f1(f.cpu.service)} s, emulator ${f1(f.cpu.emulator)} s`,
    }));
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
    await profiler.start();
    for (const username of names) {
      const t0 = performance.now();
      const res = await call('POST', `/connectors/${CONNECTOR}/sync-user`, { username });
      ms.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`sync-user ${username}: ${res.status} ${JSON.stringify(res.body)}`);
      answers.push(res.body);
    }
    await profiler.stop('4. sync-user');
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
      storeNote: note,
      seeded,
      emulatorRssMb,
      serviceIdleRssMb: service.idleRssMb,
      full,
      afterFull,
      second: { ...second, before, after, feed },
      delta,
      onDemand,
      profiles: profiler.sections,
      dbBytes,
    };
  } finally {
    await Promise.allSettled([stopChild(svc), stopChild(emu)]);
    await drop();
  }
}

// ---------------------------------------------------------------------------------------------------
// the report

function storeSection(r: StoreResult, bare: BareResult | undefined): string[] {
  const L: string[] = [];
  const s = r.seeded;
  const a = r.afterFull;
  const full = r.full;
  const countsOk = a.users === s.users && a.groups === s.groups && a.memberships === s.transitiveMemberships && a.activeUsers === s.activeUsers;
  const sec = r.second;
  const runFeed = sec.feed.reduce((n, x) => n + x.n, 0);
  const dl = r.delta;
  const od = r.onDemand;
  const sorted = [...od.ms].sort((x, y) => x - y);
  const p50 = quantile(sorted, 0.5);
  const p95 = quantile(sorted, 0.95);
  const max = sorted.at(-1)!;

  L.push(`## ${r.storeNote}`, '');
  L.push(
    `Tenant (emulator, its own process, RSS ${f0(r.emulatorRssMb)} MB at the end): ${f0(s.users)} users (${f0(s.activeUsers)} enabled), ${f0(s.groups)} groups, ` +
      `${f0(s.directMemberships)} direct user memberships, ${f0(s.nestedLinks)} groups nested in other groups; flattened (the connector's default \`nestedGroups: 'flatten'\`) ` +
      `that is ${f0(s.transitiveMemberships)} user memberships. The service's RSS before the first sync: ${f0(r.serviceIdleRssMb)} MB.`,
    '',
  );
  L.push(...fullSyncRows(full, TARGET));
  L.push(
    `| 1 | Directory afterwards: users / active / groups / memberships | ${f0(a.users)} / ${f0(a.activeUsers)} / ${f0(a.groups)} / ${f0(a.memberships)} | ${f0(s.users)} / ${f0(s.activeUsers)} / ${f0(s.groups)} / ${f0(s.transitiveMemberships)} (the tenant) | ${check(countsOk)} |`,
  );
  L.push(`| 1 | Graph requests; change-feed rows | ${f0(full.requests)}; ${f0(a.changeFeed)} | | |`);
  L.push(...secondSyncRows(sec, runFeed));
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
  notes.push(`Full sync phases (polled every 250 ms): ${spans(full)}; second full sync: ${spans(sec)}.`);
  const cpuOf = (f: SyncFigure) => `service ${f1(f.cpu.service)} s, emulator ${f1(f.cpu.emulator)} s of CPU in ${f1(f.wallS)} s`;
  notes.push(`CPU time (/proc/<pid>/stat) — full sync: ${cpuOf(full)}; second full sync: ${cpuOf(sec)}; delta round: ${cpuOf(dl)}.`);
  notes.push(`Full sync run log: ${runLog(full.run)}.`);
  notes.push(`Full sync counters: ${counters(full.run.counters)}.`);
  if (dl.wrong.length) notes.push(`Delta differences (first 10): ${dl.wrong.slice(0, 10).join(' | ')}`);
  if (od.wrong.length) notes.push(`On-demand differences (first 10): ${od.wrong.slice(0, 10).join(' | ')}`);
  notes.push(`On-demand times in call order (ms): ${od.ms.map((x) => f0(x)).join(', ')}.`);
  L.push(...notes.map((n) => `- ${n}`), '');
  return L;
}

function profileSectionOf(r: StoreResult, load: number[]): string[] {
  return profileSection(r.store, r.profiles, {
    load,
    pgNote: "On PostgreSQL a statement's time is the wall time until its result arrived (waiting for a pool connection included), and the service's CPU profile shows mostly idle time while it waits.",
    profiled:
      `Profiled: full sync ${f1(r.full.wallS)} s (service CPU ${f1(r.full.cpu.service)} s, emulator CPU ${f1(r.full.cpu.emulator)} s; ` +
      `phases ${spans(r.full)}; ` +
      `run log: ${runLog(r.full.run)}); second full sync ${f1(r.second.wallS)} s; delta round ${f2(r.delta.wallS)} s; ` +
      `sync-user median ${f0(median(r.onDemand.ms))} ms.`,
  });
}

/** the results file's line on what ran in which process */
const PROCESSES =
  '- Processes: the bench driver; the Graph emulator (`test/support/graph-emulator`, HTTPS, the tenant in memory) in its own process; the service ' +
  '(`bench/lib/graph-service.ts`: `buildService` as `usersync serve` builds it — admin API, PullRunner, reconciler and scheduler running, LOG_LEVEL=warn) in its own process. ' +
  "Every sync goes over the admin API on loopback; the connector's source settings point at the emulator (`cloud: 'custom'`, `caCertificate`), schedule off, other settings default " +
  '(directory scope, `nestedGroups: flatten`, concurrency 4, default user and group rules).';

// ---------------------------------------------------------------------------------------------------

export async function runGraphSync(): Promise<void> {
  const b = beginRun('Graph sync', 'usersync-graph-bench-');
  const { stores, tmpDir } = b;
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
    b.removeTmpDir();
  }
  const { totalS, loadAfter, out } = b.finished('graph');

  if (PROFILE) {
    // the day's results keep their figures; this run's stores' profile sections replace older ones
    const sections = results.map((r) => profileSectionOf(r, loadAfter).join('\n'));
    putSections(out, sections, { record: ISSUE_SIZE, headings: [PROFILE_HEADING], what: 'CPU profile' });
    return;
  }

  const L: string[] = reportHead('Graph pull sync benchmark', b, { loadAfter, totalS, processes: PROCESSES, reduced: ISSUE_SIZE ? undefined : SIZE });
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

runIfMain(import.meta.url, runGraphSync);
