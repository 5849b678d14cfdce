// `npm run bench -- targets`: the initial delivery of a directory of 10,000 users and 50,000 memberships
// (50 groups, 5 per user) to one target, an Atlassian fake in a process of its own (its CPU, validating
// every request against the OpenAPI document, is not ours), on loopback. The delivery runs in this process
// as the service runs it (the target worker: ingest, rounds, ledger), so our CPU is measured alone.
//
// For each setting (concurrency × the fake's added latency per request) it reports the wall time, users
// and requests per second, the rate as a share of the bound the setting allows (concurrency ÷ latency),
// and the CPU our process used per second of wall time: a share near 100 % with our CPU well under one
// core says the delivery is bounded by the concurrency and the application's latency, not by our CPU.
// The 0 ms setting shows what our CPU allows when the application answers at once.
//
//   BENCH_USERS=10000  BENCH_SETTINGS=8x10,16x10,32x10,16x0 (concurrency x latency ms)  BENCH_KIND=jira

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { directoryKey } from '../src/domain/rules.ts';
import { openStore } from '../src/store/db.ts';
import { SecretBox } from '../src/store/secrets.ts';
import { TargetStore } from '../src/store/targets.ts';
import { prepareTargetSettings } from '../src/targets/config.ts';
import type { TargetKind } from '../src/targets/types.ts';
import { TargetWorker } from '../src/targets/worker.ts';
import type { Child } from './lib/driver.ts';
import { cpuSeconds, runIfMain, startChild, stopChild } from './lib/driver.ts';
import { f0, f1, f2, loadText, log, nowUtc } from './lib/format.ts';
import { machine } from './lib/machine.ts';

const USERS = Number(process.env.BENCH_USERS ?? 10_000);
const GROUPS = 50;
const PER_USER = 5;
const KIND = (process.env.BENCH_KIND ?? 'jira') as TargetKind;
const SETTINGS = (process.env.BENCH_SETTINGS ?? '8x10,16x10,32x10,16x0').split(',').map((s) => {
  const [c, l] = s.split('x').map(Number);
  return { concurrency: c!, latencyMs: l! };
});

interface FakeReady {
  url: string;
  token: string;
  pid: number;
}
interface FakeStats {
  users: number;
  groups: number;
  memberships: number;
  requests: number;
  writes: number;
  maxInFlight: number;
  violations: string[];
  violationCount: number;
}

/** The directory, written straight into a SQLite store (the reconciler's cost is measured elsewhere). */
async function seed(file: string): Promise<void> {
  const db = await openStore({ url: file });
  const at = new Date().toISOString();
  await db.transaction(async (trx) => {
    await trx.insertInto('connectors').values({ id: 'entra', name: 'Entra ID', kind: 'scim', enabled: 1, settings: '{}', created_at: at, updated_at: at }).execute();
    for (let g = 0; g < GROUPS; g++) await trx.insertInto('directory_groups').values({ id: `g${g}`, name: `jira-group-${g}`, name_key: `jira-group-${g}`, owner_connector_id: 'entra', source_id: `sg${g}`, created_at: at, updated_at: at }).execute();
    for (let i = 0; i < USERS; i += 500) {
      const users = [];
      const members = [];
      for (let j = i; j < Math.min(USERS, i + 500); j++) {
        const username = `user${String(j).padStart(6, '0')}@example.com`;
        users.push({ id: `u${j}`, username, username_key: directoryKey(username), email: username, display_name: `User ${j}`, active: 1, attributes: '{}', owner_connector_id: 'entra', source_id: `s${j}`, in_scope: 1, created_at: at, updated_at: at });
        for (let k = 0; k < PER_USER; k++) members.push({ group_id: `g${(j + k * 7) % GROUPS}`, user_id: `u${j}`, managed_by: 'connector:entra', created_at: at });
      }
      await trx.insertInto('directory_users').values(users).execute();
      await trx.insertInto('directory_memberships').values(members).execute();
    }
  });
  await db.close();
}

interface Result {
  concurrency: number;
  latencyMs: number;
  wallS: number;
  ourCpuS: number;
  fakeCpuS: number;
  stats: FakeStats;
  parked: number;
  comparison: { s: number; cpuS: number; status: string; summary: Record<string, number>; requests: number; writes: number };
}

async function deliverOnce(template: string, dir: string, concurrency: number, latencyMs: number): Promise<Result> {
  const file = path.join(dir, `run-${concurrency}x${latencyMs}.db`);
  fs.copyFileSync(template, file);
  let fake: Child<FakeReady> | undefined;
  const db = await openStore({ url: file });
  try {
    fake = await startChild<FakeReady>('fake', 'lib/atlassian-fake.ts', { BENCH_FAKE_KIND: KIND, BENCH_FAKE_LATENCY_MS: String(latencyMs) });
    const box = SecretBox.forTests();
    const store = new TargetStore(db);
    const settings = prepareTargetSettings(KIND, 'bench', { baseUrl: fake.ready.url, secret: fake.ready.token, concurrency, retries: 4, ...(KIND === 'atlassian-cloud' ? { verifiedDomains: ['example.com'] } : {}) }, undefined, box, false);
    await db.transaction(async (trx) => {
      await store.insert(trx, { id: 'bench', name: 'bench', kind: KIND, settings, cursorSeq: 0 });
      await store.update(trx, 'bench', { phase: 'active' });
      await store.enqueueEverything(trx, 'bench');
    });
    const worker = new TargetWorker(db, box, { holder: 'bench' });
    const fakeCpu0 = cpuSeconds(fake.ready.pid);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (;;) {
      await worker.runOnce();
      const w = await store.workCounts('bench');
      if (w.pending === 0) break;
      const t = await store.get('bench');
      if (t?.status.unavailableUntil) throw new Error(`the fake became unavailable: ${t.status.lastError}`);
    }
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const fakeCpuS = cpuSeconds(fake.ready.pid) - fakeCpu0;
    const stats = await fake.ipc.call<FakeStats>('stats');
    const parked = (await store.workCounts('bench')).parked;
    // then a full comparison of what was delivered (a report: reads everything, changes nothing)
    const c0 = performance.now();
    const ccpu0 = process.cpuUsage();
    const comparisonId = 'bench-comparison';
    await db.transaction((trx) => store.queueComparison(trx, { id: comparisonId, targetId: 'bench', mode: 'report', requestedBy: 'bench' }));
    await worker.runOnce();
    const comparisonS = (performance.now() - c0) / 1000;
    const ccpu = process.cpuUsage(ccpu0);
    const c = await store.comparison(comparisonId);
    const after = await fake.ipc.call<FakeStats>('stats');
    await worker.stop();
    return {
      concurrency,
      latencyMs,
      wallS,
      ourCpuS: (cpu.user + cpu.system) / 1e6,
      fakeCpuS,
      stats,
      parked,
      comparison: { s: comparisonS, cpuS: (ccpu.user + ccpu.system) / 1e6, status: c?.status ?? 'missing', summary: JSON.parse(c?.summary ?? '{}') as Record<string, number>, requests: after.requests - stats.requests, writes: after.writes - stats.writes },
    };
  } finally {
    await stopChild(fake);
    await db.close();
  }
}

export async function runTargetsBench(): Promise<void> {
  const date = new Date().toISOString().slice(0, 10);
  const mach = machine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-bench-targets-'));
  const loadBefore = os.loadavg();
  log(`usersync targets bench — ${date}, ${mach.host}, ${mach.model}, ${mach.cores} cores, Node ${mach.node}; ${KIND}, ${f0(USERS)} users, ${f0(USERS * PER_USER)} memberships`);
  const template = path.join(dir, 'template.db');
  const s0 = performance.now();
  await seed(template);
  log(`  seeded in ${f1((performance.now() - s0) / 1000)} s`);
  const results: Result[] = [];
  try {
    for (const s of SETTINGS) {
      log(`  concurrency ${s.concurrency}, latency ${s.latencyMs} ms …`);
      const r = await deliverOnce(template, dir, s.concurrency, s.latencyMs);
      results.push(r);
      log(`    comparison: ${f1(r.comparison.s)} s (${r.comparison.status}), ${f0(r.comparison.requests)} requests, ${r.comparison.writes} writes, ${JSON.stringify(r.comparison.summary)}`);
      log(
        `    ${f1(r.wallS)} s, ${f0(USERS / r.wallS)} users/s, ${f0(r.stats.requests / r.wallS)} requests/s, our CPU ${f2(r.ourCpuS / r.wallS)} cores, fake ${f2(r.fakeCpuS / r.wallS)} cores; users ${f0(r.stats.users)}, memberships ${f0(r.stats.memberships)}, max in flight ${r.stats.maxInFlight}, parked ${r.parked}, violations ${r.stats.violationCount}`,
      );
    }
  } finally {
    if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg();
  const rows = results.map((r) => {
    const rps = r.stats.requests / r.wallS;
    const bound = r.latencyMs > 0 ? (r.concurrency * 1000) / r.latencyMs : NaN;
    return `| ${r.concurrency} | ${r.latencyMs} ms | ${f1(r.wallS)} s | ${f0(USERS / r.wallS)} | ${f0(r.stats.requests)} | ${f0(rps)} | ${Number.isFinite(bound) ? `${f0(bound)} (${f0((rps / bound) * 100)} %)` : 'none'} | ${f2(r.ourCpuS / r.wallS)} | ${f2((r.ourCpuS / r.stats.requests) * 1e6 / 1000)} ms | ${f2(r.fakeCpuS / r.wallS)} | ${f0(r.stats.users)} / ${f0(r.stats.memberships)} | ${r.stats.maxInFlight} | ${r.parked} | ${r.stats.violationCount} |`;
  });
  const text = [
    `# Targets bench — ${date}`,
    '',
    `Machine: ${mach.host}, ${mach.model}, ${mach.cores} cores, ${f1(mach.memGb)} GB, Node ${mach.node}, ${mach.platform}. Code: ${mach.code}. Finished ${nowUtc()}. Load average before ${loadText(loadBefore)}, after ${loadText(loadAfter)}.`,
    '',
    `Initial delivery of ${f0(USERS)} users, ${GROUPS} groups and ${f0(USERS * PER_USER)} memberships (${PER_USER} per user) from a SQLite store to one ${KIND} target: the fake (test/support/atlassian, every request and answer validated against Atlassian's OpenAPI document) in its own process with a fixed latency added to each answer; the target worker in this process. "Bound" is what the setting allows at most: concurrency ÷ latency requests per second. "Our CPU" is this process's CPU time per second of wall time (1.00 = one core busy).`,
    '',
    'Then a full comparison (report) of the delivered state: it reads every user, group and the members of every group from the fake (at the same latency; the members of the groups read at the target concurrency) and sets them against the directory and the ledger.',
    '',
    '| concurrency | latency | comparison | its requests | its writes | our CPU | found |',
    '|---:|---:|---:|---:|---:|---:|---|',
    ...results.map((r) => `| ${r.concurrency} | ${r.latencyMs} ms | ${f1(r.comparison.s)} s (${r.comparison.status}) | ${f0(r.comparison.requests)} | ${r.comparison.writes} | ${f2(r.comparison.cpuS)} s | ${Object.entries(r.comparison.summary).filter(([k]) => k !== 'queued').map(([k, v]) => `${k} ${f0(v)}`).join(', ')} |`),
    '',
    'The delivery:',
    '',
    '| concurrency | latency | wall | users/s | requests | requests/s | bound (share) | our CPU (cores) | our CPU per request | fake CPU (cores) | in the fake: users / memberships | max in flight | parked | contract violations |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
  const out = path.join(import.meta.dirname, 'results', `${date}-${mach.host}-targets.md`);
  fs.writeFileSync(out, text);
  log(`\n${text}\nwritten to ${out}`);
}

runIfMain(import.meta.url, runTargetsBench);
