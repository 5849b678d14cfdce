// `npm run bench -- ldap`: the LDAP pull source against the issue's figures, on a real OpenLDAP (Debian's
// slapd, test/support/slapd) on loopback holding 50,000 users (500 of them locked with ppolicy's
// pwdAccountLockedTime) and 5,000 groups with about 250,000 direct user memberships and 500 groups nested in
// others (flattened by the connector's default `nestedGroups: 'flatten'`). The connector reads as the limited
// sync account, whose size limit (500) is the page size: an unpaged search would stop at 500 entries.
//
//   1. a full sync into the directory (POST /api/connectors/:id/sync {mode:'full'}, which answers when the
//      run has ended, reconciled) in under 30 s, with the service's peak RSS under 300 MB — the run's own
//      peakRss and the service process's RSS sampled from outside (/proc: VmRSS every 50 ms, and VmHWM after
//      resetting it through clear_refs); the directory then holds every user, as many active as the server
//      has unlocked, every group and the flattened memberships;
//   2. a second full sync with no changes writes nothing: no change-feed rows, the directory's high-water
//      marks and the mirror's versions unchanged, no mirror counters;
//   3. an incremental sync (mode 'delta': modifyTimestamp since the last marker) after 100 changed entries
//      (60 users' mail and displayName replaced, 10 group members added and 10 removed, 10 new users, 10
//      users locked) in under 2 s — three rounds, each with fresh changes: median and every value; then the
//      directory matches the server (as its rootdn reads it: dynlist's nested memberOf) for every user
//      touched: e-mail, display name, active, groups; and one incremental sync with no changes;
//   4. the bare LDAP read in the same run: ldapts `searchPaginated` (pages of 500, as the sync account, the
//      same bases, filters and attributes the source asks for) through every user and group, writing
//      nothing — before the service starts and again after it has stopped; figure 1 as a ratio of it.
//
// Three processes: this driver (which also runs figure 4); slapd (its own process, started by
// test/support/slapd with the LDIF loaded offline by slapadd); the service (bench/lib/graph-service.ts: the
// production service with the reconciler and scheduler, admin API on HTTP — it knows nothing of Graph).
// Every sync goes over the admin API; IPC carries only read-only checks of the store and profiling. Changes
// are made on the server with ldapmodify as its rootdn (the harness's modify()/add()).
//
// The generated entries carry createTimestamp/modifyTimestamp of 2025-01-01 (slapadd keeps supplied
// operational attributes): a directory that has existed for a while. Loaded with the current time, every
// entry would be newer than the full sync's marker (taken 5 minutes before the read, TIMESTAMP_MARGIN_MS in
// src/sources/ldap/source.ts) and the first incremental sync would read the whole directory again.
//
//   npm run bench -- ldap                  SQLite (the default store); writes bench/results/<date>-<host>-ldap.md
//   npm run bench -- ldap --pg             SQLite, then PostgreSQL (BENCH_PG_URL, default
//                                          postgres://postgres@127.0.0.1:5432/test; a fresh schema, dropped after)
//   npm run bench -- ldap --pg-only        PostgreSQL only
//   npm run bench -- ldap --profile        the same steps with a CPU profile of the service (and SQL timings):
//                                          prints it and puts it under "## CPU profile — <store>" in that day's
//                                          results file, whose figures it leaves alone (profiled figures are slower)
//   BENCH_LDAP_USERS=50000 BENCH_LDAP_GROUPS=5000 BENCH_LDAP_MEMBERSHIPS=250000 BENCH_LDAP_NESTED=500
//   BENCH_LDAP_DISABLED=500 (other sizes are printed, not recorded)   BENCH_KEEP=1 (keep the temp dir)
//   BENCH_SERVICE_NODE_OPTIONS='--max-old-space-size=160'   NODE_OPTIONS for the service process only: a variant,
//                                          written under "## Variant: …" in that day's results file, figures left alone

import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'ldapts';
import type { Child, DirectoryUser, ProfileSection, ServiceReady, Stats, Store, SyncTiming } from './lib/driver.ts';
import { ConnectorService, PROFILE, ROOT, RssWatch, beginRun, fullSyncs, cpuSeconds, runIfMain, startChild, stopChild, storeSetup } from './lib/driver.ts';
import { check, counters, f0, f1, f2, loadText, log, mb, median, nowUtc, runLog, spans, verdict } from './lib/format.ts';
import { PROFILE_HEADING, fullSyncRows, profileSection, putSections, reportHead, secondSyncRows } from './lib/report.ts';
import { revision } from './lib/machine.ts';
import { groupAttributes, userAttributes, validateLdapSource } from '../src/sources/ldap/config.ts';
import { BINARY_ATTRIBUTES } from '../src/sources/ldap/map.ts';
import type { Slapd } from '../test/support/slapd/index.ts';
import { startSlapd } from '../test/support/slapd/index.ts';
import { generateDirectoryLdif, groupCn, userUid } from '../test/support/slapd/ldif.ts';
import { mulberry32 } from '../test/support/random.ts';
import { slapdSource } from '../test/sources/ldap/support.ts';

const CONNECTOR = 'ldap';
const SIZE = {
  users: Number(process.env.BENCH_LDAP_USERS ?? 50_000),
  groups: Number(process.env.BENCH_LDAP_GROUPS ?? 5_000),
  memberships: Number(process.env.BENCH_LDAP_MEMBERSHIPS ?? 250_000),
  nestedGroups: Number(process.env.BENCH_LDAP_NESTED ?? 500),
  disabledUsers: Number(process.env.BENCH_LDAP_DISABLED ?? 500),
  seed: 42,
};
const ISSUE_SIZE = SIZE.users === 50_000 && SIZE.groups === 5_000 && SIZE.memberships === 250_000 && SIZE.nestedGroups === 500 && SIZE.disabledUsers === 500;
const SIZE_LIMIT = 500;
const PAGE_SIZE = 500;
/** the 100 changed entries of one incremental round */
const CHANGES = { modified: 60, memberAdds: 10, memberRemovals: 10, newUsers: 10, locked: 10 };
const DELTA_ROUNDS = 3;
const TARGET = { fullS: 30, rssMb: 300, deltaS: 2 };
/** what the generated entries say they were created and last modified at */
const LOADED_AT = '20250101000000Z';
/** NODE_OPTIONS for the service alone (e.g. --max-old-space-size=160): a variant, recorded under its own heading */
const SERVICE_NODE_OPTIONS = process.env.BENCH_SERVICE_NODE_OPTIONS ?? '';

// ---------------------------------------------------------------------------------------------------
// the directory on the server: generated once, tracked through the changes

/** Direct user members and nested groups of every group, as the LDIF has them (indexes). */
interface Structure {
  users: Set<number>[];
  children: Set<number>[];
}

function parseStructure(ldif: string, groups: number): Structure {
  const s: Structure = { users: Array.from({ length: groups }, () => new Set<number>()), children: Array.from({ length: groups }, () => new Set<number>()) };
  let current = -1;
  for (const line of ldif.split('\n')) {
    if (line.startsWith('dn: ')) {
      const m = /^dn: cn=group(\d+),/.exec(line);
      current = m ? Number(m[1]) : -1;
    } else if (current >= 0 && line.startsWith('member: ')) {
      const u = /^member: uid=user(\d+),/.exec(line);
      const g = /^member: cn=group(\d+),/.exec(line);
      if (u) s.users[current]!.add(Number(u[1]));
      else if (g) s.children[current]!.add(Number(g[1]));
    }
  }
  return s;
}

/** Flattened user memberships (a user in a group directly or through nested groups counts once). */
function flattenedCount(s: Structure): number {
  let total = 0;
  for (let g = 0; g < s.users.length; g++) {
    const seen = new Set<number>([g]);
    const out = new Set<number>(s.users[g]);
    const queue = [...s.children[g]!];
    while (queue.length) {
      const c = queue.pop()!;
      if (seen.has(c)) continue;
      seen.add(c);
      for (const u of s.users[c]!) out.add(u);
      queue.push(...s.children[c]!);
    }
    total += out.size;
  }
  return total;
}

/** createTimestamp/modifyTimestamp on every generated entry (slapadd keeps supplied operational attributes). */
function backdate(ldif: string): string {
  return ldif.replace(/\n\n(?=dn: |$)/g, `\ncreateTimestamp: ${LOADED_AT}\nmodifyTimestamp: ${LOADED_AT}\n\n`);
}

interface Generated {
  file: string;
  genMs: number;
  bytes: number;
  structure: Structure;
  directMemberships: number;
  nestedLinks: number;
  transitiveMemberships: number;
}

function generate(tmpDir: string): Generated {
  const t = performance.now();
  const ldif = backdate(generateDirectoryLdif({ users: SIZE.users, groups: SIZE.groups, memberships: SIZE.memberships, nestedGroups: SIZE.nestedGroups, disabledUsers: SIZE.disabledUsers, seed: SIZE.seed }));
  const genMs = performance.now() - t;
  const file = path.join(tmpDir, 'directory.ldif');
  fs.writeFileSync(file, ldif);
  // slapd runs as nobody when we are root; slapadd runs as us, but the file must stay readable
  fs.chmodSync(file, 0o644);
  const structure = parseStructure(ldif, SIZE.groups);
  return {
    file,
    genMs,
    bytes: Buffer.byteLength(ldif),
    structure,
    directMemberships: structure.users.reduce((n, s) => n + s.size, 0),
    nestedLinks: structure.children.reduce((n, s) => n + s.size, 0),
    transitiveMemberships: flattenedCount(structure),
  };
}

const cnOf = (dn: string) => /^cn=([^,]+)/i.exec(dn)?.[1] ?? dn;
const one = (v: unknown): string | undefined => (Array.isArray(v) ? (v[0] === undefined ? undefined : String(v[0])) : v === undefined ? undefined : String(v));
const many = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

interface ServerUser {
  uid: string;
  displayName: string;
  mail: string | null;
  active: boolean;
  groups: string[];
}

/** What the server says about these users, read as its rootdn: nested groups by dynlist's memberOf. */
async function serverUsers(l: Slapd, uids: string[]): Promise<Map<string, ServerUser>> {
  const client = l.client();
  const out = new Map<string, ServerUser>();
  try {
    await client.bind(l.adminDn, l.adminPassword);
    for (let i = 0; i < uids.length; i += 100) {
      const filter = `(|${uids
        .slice(i, i + 100)
        .map((u) => `(uid=${u})`)
        .join('')})`;
      const { searchEntries } = await client.search(l.peopleDn, { filter, attributes: ['uid', 'displayName', 'cn', 'mail', 'pwdAccountLockedTime', 'memberOf'] });
      for (const e of searchEntries) {
        const uid = one(e.uid)!;
        out.set(uid, {
          uid,
          displayName: one(e.displayName) ?? one(e.cn) ?? uid,
          mail: one(e.mail) ?? null,
          active: many(e.pwdAccountLockedTime).length === 0,
          groups: many(e.memberOf).map(cnOf).sort(),
        });
      }
    }
  } finally {
    await client.unbind().catch(() => {});
  }
  return out;
}

interface Changes {
  round: number;
  changed: number;
  /** every user whose directory view the round should have changed */
  touched: string[];
  applyMs: number;
}

/**
 * One round of 100 changed entries, made on the server with ldapmodify as the rootdn: users' mail and
 * displayName replaced, members added to and removed from groups, new users, users locked. Users are picked
 * at random (seeded by the round), each at most once a round; locked ones stay locked.
 */
async function applyChanges(l: Slapd, s: Structure, round: number, locked: Set<number>): Promise<Changes> {
  const random = mulberry32(1000 + round);
  const used = new Set<number>();
  const pickUser = (ok: (i: number) => boolean = () => true): number => {
    for (;;) {
      const i = Math.floor(random() * SIZE.users);
      if (used.has(i) || !ok(i)) continue;
      used.add(i);
      return i;
    }
  };
  const disabledEvery = SIZE.disabledUsers ? Math.max(1, Math.floor(SIZE.users / SIZE.disabledUsers)) : 0;
  const isLocked = (i: number) => locked.has(i) || (disabledEvery > 0 && i % disabledEvery === 0 && i / disabledEvery < SIZE.disabledUsers);
  const userDn = (i: number) => `uid=${userUid(i)},${l.peopleDn}`;
  const groupDn = (g: number) => `cn=${groupCn(g)},${l.groupsDn}`;
  const records: string[] = [];
  const touched: string[] = [];
  for (let k = 0; k < CHANGES.modified; k++) {
    const i = pickUser();
    records.push(`dn: ${userDn(i)}\nchangetype: modify\nreplace: mail\nmail: ${userUid(i)}.r${round}@changed.example.test\n-\nreplace: displayName\ndisplayName: Changed r${round} ${userUid(i)}\n-`);
    touched.push(userUid(i));
  }
  for (let k = 0; k < CHANGES.locked; k++) {
    const i = pickUser((x) => !isLocked(x));
    locked.add(i);
    records.push(`dn: ${userDn(i)}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n-`);
    touched.push(userUid(i));
  }
  for (let k = 0; k < CHANGES.memberAdds; k++) {
    const g = Math.floor(random() * SIZE.groups);
    const i = pickUser((x) => !s.users[g]!.has(x));
    s.users[g]!.add(i);
    records.push(`dn: ${groupDn(g)}\nchangetype: modify\nadd: member\nmember: ${userDn(i)}\n-`);
    touched.push(userUid(i));
  }
  for (let k = 0; k < CHANGES.memberRemovals; k++) {
    let g: number;
    let i: number;
    for (;;) {
      g = Math.floor(random() * SIZE.groups);
      const members = [...s.users[g]!].filter((x) => !used.has(x));
      // groupOfNames must keep a member
      if (members.length + s.children[g]!.size < 2 || members.length === 0) continue;
      i = members[Math.floor(random() * members.length)]!;
      used.add(i);
      break;
    }
    s.users[g]!.delete(i);
    records.push(`dn: ${groupDn(g)}\nchangetype: modify\ndelete: member\nmember: ${userDn(i)}\n-`);
    touched.push(userUid(i));
  }
  const adds: string[] = [];
  for (let k = 0; k < CHANGES.newUsers; k++) {
    const uid = `new${round}x${String(k).padStart(3, '0')}`;
    adds.push(`dn: uid=${uid},${l.peopleDn}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: New User ${round}-${k}\nsn: User\ngivenName: New\nmail: ${uid}@example.test\nemployeeNumber: ${900000 + round * 100 + k}`);
    touched.push(uid);
  }
  const t = performance.now();
  await l.modify(`${records.join('\n\n')}\n`);
  await l.add(`${adds.join('\n\n')}\n`);
  return { round, changed: records.length + adds.length, touched, applyMs: performance.now() - t };
}

// ---------------------------------------------------------------------------------------------------
// the bare LDAP read

interface BareRead {
  ms: number;
  usersMs: number;
  groupsMs: number;
  users: number;
  groups: number;
  memberValues: number;
  pages: number;
  cpu: { driver: number; slapd: number };
  /**
   * the LDAP part of an incremental sync: the changed users and groups (modifyTimestamp since 5 minutes ago,
   * the source's filters and attributes) and the ids of every user and group (how the source finds deletions)
   */
  delta: { changedMs: number; changedUsers: number; changedGroups: number; idsMs: number; ids: number; slapdCpu: number };
}

/** Page through every user and group as the source does (same account, bases, filters, attributes, page size), writing nothing. */
async function bareRead(l: Slapd, source: Record<string, unknown>): Promise<BareRead> {
  const settings = validateLdapSource(source);
  const userAttrs = userAttributes(settings);
  const groupAttrs = groupAttributes(settings);
  const client = new Client({ url: l.url, timeout: 60_000 });
  const cpu0 = { driver: process.cpuUsage(), slapd: cpuSeconds(l.pid) };
  const t0 = performance.now();
  let users = 0;
  let groups = 0;
  let memberValues = 0;
  let pages = 0;
  try {
    await client.bind(settings.bindDn, settings.bindPassword!);
    const opts = (filter: string, attributes: string[]) => ({ scope: settings.searchScope, filter, attributes, explicitBufferAttributes: [...BINARY_ATTRIBUTES], paged: { pageSize: settings.pageSize } });
    for await (const r of client.searchPaginated(settings.userBaseDn ?? settings.baseDn, opts(settings.userFilter, userAttrs))) {
      pages++;
      users += r.searchEntries.length;
    }
    const t1 = performance.now();
    for await (const r of client.searchPaginated(settings.groupBaseDn ?? settings.baseDn, opts(settings.groupFilter, groupAttrs))) {
      pages++;
      groups += r.searchEntries.length;
      for (const e of r.searchEntries) memberValues += many(e[settings.attributes.member]).length;
    }
    const t2 = performance.now();
    const cpu = process.cpuUsage(cpu0.driver);
    const slapdCpu = cpuSeconds(l.pid) - cpu0.slapd;

    const d0 = { t: performance.now(), slapd: cpuSeconds(l.pid) };
    const since = new Date(Date.now() - 5 * 60_000).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
    const count = async (base: string, filter: string, attributes: string[]) => {
      let n = 0;
      for await (const r of client.searchPaginated(base, opts(filter, attributes))) n += r.searchEntries.length;
      return n;
    };
    const a = settings.attributes;
    const changedUsers = await count(settings.userBaseDn ?? settings.baseDn, `(&${settings.userFilter}(modifyTimestamp>=${since}))`, userAttrs);
    const changedGroups = await count(settings.groupBaseDn ?? settings.baseDn, `(&${settings.groupFilter}(modifyTimestamp>=${since}))`, [a.id, a.groupName, 'description']);
    const d1 = performance.now();
    const ids = (await count(settings.userBaseDn ?? settings.baseDn, settings.userFilter, [a.id])) + (await count(settings.groupBaseDn ?? settings.baseDn, settings.groupFilter, [a.id]));
    const d2 = performance.now();
    return {
      ms: t2 - t0,
      usersMs: t1 - t0,
      groupsMs: t2 - t1,
      users,
      groups,
      memberValues,
      pages,
      cpu: { driver: (cpu.user + cpu.system) / 1e6, slapd: slapdCpu },
      delta: { changedMs: d1 - d0.t, changedUsers, changedGroups, idsMs: d2 - d1, ids, slapdCpu: cpuSeconds(l.pid) - d0.slapd },
    };
  } finally {
    await client.unbind().catch(() => {});
  }
}

const bareDelta = (b: BareRead) =>
  `${f0(b.delta.changedUsers)} changed users and ${f0(b.delta.changedGroups)} changed groups in ${f2(b.delta.changedMs / 1000)} s, ` +
  `ids of ${f0(b.delta.ids)} users and groups in ${f2(b.delta.idsMs / 1000)} s (slapd CPU ${f2(b.delta.slapdCpu)} s)`;

// ---------------------------------------------------------------------------------------------------
// one store

type SyncFigure = SyncTiming<'slapd'> & { how: string; feedRows: number };
interface DeltaFigure extends SyncFigure {
  changes: Changes;
  checked: number;
  wrong: string[];
  after: Stats;
  expectUsers: number;
  expectActive: number;
  expectMemberships: number;
}
interface StoreResult {
  store: string;
  storeNote: string;
  slapdStartMs: number;
  slapdRssMb: number;
  serviceIdleRssMb: number;
  bareBefore?: BareRead;
  bareAfter?: BareRead;
  full: SyncFigure;
  afterFull: Stats;
  second: SyncFigure & { before: Stats; after: Stats };
  deltas: DeltaFigure[];
  zero: SyncFigure & { before: Stats; after: Stats };
  profiles: ProfileSection[];
  dbBytes: number | null;
}

async function runStore(store: Store, tmpDir: string, gen: Generated): Promise<StoreResult> {
  let ldap: Slapd | undefined;
  let svc: Child<ServiceReady> | undefined;
  const dataDir = fs.mkdtempSync(path.join(tmpDir, `${store}-`));
  const st = storeSetup(store, dataDir, 'bench_ldap');
  const env: Record<string, string> = {
    ...st.env,
    ...(SERVICE_NODE_OPTIONS ? { NODE_OPTIONS: SERVICE_NODE_OPTIONS } : {}),
  };
  // the server's copy of the structure: changes are tracked on it
  const structure: Structure = { users: gen.structure.users.map((s) => new Set(s)), children: gen.structure.children.map((s) => new Set(s)) };
  try {
    // --- the server
    const t = performance.now();
    ldap = await startSlapd({ ldifOffline: { file: gen.file }, sizeLimit: SIZE_LIMIT });
    const slapdStartMs = performance.now() - t;
    const slapdWatch = new RssWatch(ldap.pid);
    log(`  slapd: slapadd and start ${f1(slapdStartMs / 1000)} s, ${ldap.url}, size limit ${SIZE_LIMIT} for ${ldap.bindDn}`);
    const source = slapdSource(ldap, { pageSize: PAGE_SIZE });

    // --- 4a. the bare read, before the service exists (it also warms slapd's caches for figure 1)
    let bareBefore: BareRead | undefined;
    if (!PROFILE) {
      log('  4. bare LDAP read (before) …');
      bareBefore = await bareRead(ldap, source);
      log(`     ${f0(bareBefore.users)} users in ${f2(bareBefore.usersMs / 1000)} s, ${f0(bareBefore.groups)} groups (${f0(bareBefore.memberValues)} member values) in ${f2(bareBefore.groupsMs / 1000)} s; ${bareBefore.pages} pages; CPU driver ${f1(bareBefore.cpu.driver)} s, slapd ${f1(bareBefore.cpu.slapd)} s; incremental part: ${bareDelta(bareBefore)}`);
    }

    // --- the service, and an LDAP connector pointed at slapd
    svc = await startChild<ServiceReady>('service', 'lib/graph-service.ts', env);
    const service = await ConnectorService.create(svc, tmpDir, store, { id: CONNECTOR, name: 'Example OpenLDAP (bench)', kind: 'ldap', source });
    const { call } = service;
    const stats = () => service.stats();
    const feedOf = async (runId: string) => (await svc!.ipc.call<{ entity: string; op: string; n: number }[]>('feedOfRun', { runId })).reduce((n, r) => n + r.n, 0);

    const sync = async (mode: 'full' | 'delta', label: string): Promise<SyncFigure> => {
      const figure = await service.sync(mode, label, { pids: { slapd: ldap!.pid }, readingFallback: 'reading (marker, state)', memory: true });
      const { run } = figure;
      const how = run.log.some((l) => /^delta round:/.test(l.message)) ? 'delta round' : run.log.some((l) => /no usable delta state/.test(l.message)) ? 'full read (no usable delta state)' : 'full read';
      return { ...figure, how, feedRows: await feedOf(run.id) };
    };

    // --- 1. full sync; 2. a second full sync with nothing changed
    const { full, afterFull, second, before, after } = await fullSyncs(sync, stats, (f, a) => ({
      directory: `directory ${f0(a.users)} users (${f0(a.activeUsers)} active), ${f0(a.groups)} groups, ${f0(a.memberships)} memberships`,
      cpu: `service ${f1(f.cpu.service)} s, slapd ${f1(f.cpu.slapd)} s`,
    }));
    log(`     ${f1(second.wallS)} s; change feed ${f0(before.changeFeed)} → ${f0(after.changeFeed)} rows (${f0(second.feedRows)} of this run); counters ${JSON.stringify(second.run.counters)}`);

    // --- 3. incremental syncs after 100 changed entries, three rounds
    const deltas: DeltaFigure[] = [];
    const locked = new Set<number>();
    for (let round = 1; round <= DELTA_ROUNDS; round++) {
      const changes = await applyChanges(ldap, structure, round, locked);
      log(`  3. incremental sync ${round}/${DELTA_ROUNDS} after ${changes.changed} changed entries (made in ${f0(changes.applyMs)} ms) …`);
      const d = await sync('delta', `3. incremental sync ${round}`);
      const statsAfter = await stats();
      const wrong: string[] = [];
      const server = await serverUsers(ldap, changes.touched);
      const seen = await svc.ipc.call<DirectoryUser[]>('users', { connector: CONNECTOR, usernames: changes.touched });
      const byName = new Map(seen.map((u) => [u.username.toLowerCase(), u]));
      for (const uid of changes.touched) {
        const e = server.get(uid);
        const dir = byName.get(uid.toLowerCase());
        if (!e) {
          wrong.push(`${uid}: not on the server (bench error)`);
          continue;
        }
        if (!dir?.found) {
          wrong.push(`${uid}: not in the directory`);
          continue;
        }
        const w: string[] = [];
        if (dir.displayName !== e.displayName) w.push(`display name '${dir.displayName}' ≠ '${e.displayName}'`);
        if (dir.active !== e.active) w.push(`active ${dir.active} ≠ ${e.active}`);
        const dg = [...(dir.groups ?? [])].sort();
        if (JSON.stringify(dg) !== JSON.stringify(e.groups)) {
          w.push(`groups: missing [${e.groups.filter((g) => !dg.includes(g)).join(', ')}], extra [${dg.filter((g) => !e.groups.includes(g)).join(', ')}]`);
        }
        const listed = (await call('GET', `/users?search=${encodeURIComponent(uid)}&limit=10`)).body?.users as { username: string; email: string | null }[] | undefined;
        const email = listed?.find((u) => u.username.toLowerCase() === uid.toLowerCase())?.email ?? null;
        if (email !== e.mail) w.push(`e-mail '${email}' ≠ '${e.mail}'`);
        if (w.length) wrong.push(`${uid}: ${w.join('; ')}`);
      }
      const expectUsers = SIZE.users + round * CHANGES.newUsers;
      const expectActive = SIZE.users - SIZE.disabledUsers - round * CHANGES.locked + round * CHANGES.newUsers;
      const expectMemberships = flattenedCount(structure);
      if (statsAfter.users !== expectUsers) wrong.push(`directory users ${statsAfter.users} ≠ ${expectUsers}`);
      if (statsAfter.activeUsers !== expectActive) wrong.push(`active users ${statsAfter.activeUsers} ≠ ${expectActive}`);
      if (statsAfter.memberships !== expectMemberships) wrong.push(`memberships ${statsAfter.memberships} ≠ ${expectMemberships}`);
      deltas.push({ ...d, changes, checked: changes.touched.length, wrong, after: statsAfter, expectUsers, expectActive, expectMemberships });
      log(`     ${f2(d.wallS)} s (${d.how}; phases ${spans(d)}), counters ${JSON.stringify(d.run.counters)}; ${changes.touched.length} users checked: ${wrong.length ? `${wrong.length} wrong` : 'all as on the server'}`);
      for (const w of wrong.slice(0, 10)) log(`       ${w}`);
    }

    // --- 3b. an incremental sync with no changes
    log('  3. incremental sync with no changes …');
    const zBefore = await stats();
    const zero = await sync('delta', '3b. incremental sync, no changes');
    const zAfter = await stats();
    log(`     ${f2(zero.wallS)} s (${zero.how}), counters ${JSON.stringify(zero.run.counters)}; change feed ${f0(zBefore.changeFeed)} → ${f0(zAfter.changeFeed)}`);

    const dbBytes = await svc.ipc.call<number | null>('dbSize');
    const slapdRssMb = slapdWatch.now();
    await stopChild(svc);
    svc = undefined;

    // --- 4b. the bare read again, with only slapd running
    let bareAfter: BareRead | undefined;
    if (!PROFILE) {
      log('  4. bare LDAP read (after, the service stopped) …');
      bareAfter = await bareRead(ldap, source);
      log(`     ${f0(bareAfter.users)} users in ${f2(bareAfter.usersMs / 1000)} s, ${f0(bareAfter.groups)} groups in ${f2(bareAfter.groupsMs / 1000)} s; CPU driver ${f1(bareAfter.cpu.driver)} s, slapd ${f1(bareAfter.cpu.slapd)} s; incremental part: ${bareDelta(bareAfter)}`);
    }
    return {
      store,
      storeNote: st.note,
      slapdStartMs,
      slapdRssMb,
      serviceIdleRssMb: service.idleRssMb,
      ...(bareBefore ? { bareBefore } : {}),
      ...(bareAfter ? { bareAfter } : {}),
      full,
      afterFull,
      second: { ...second, before, after },
      deltas,
      zero: { ...zero, before: zBefore, after: zAfter },
      profiles: service.profiler.sections,
      dbBytes,
    };
  } finally {
    await stopChild(svc).catch(() => {});
    await ldap?.stop().catch(() => {});
    await st.drop();
  }
}

// ---------------------------------------------------------------------------------------------------
// the report

/** the bare read's floor: the faster of its two runs */
const bareFloor = (r: StoreResult) => Math.min(r.bareBefore?.ms ?? Infinity, r.bareAfter?.ms ?? Infinity) / 1000;

function storeSection(r: StoreResult, gen: Generated): string[] {
  const L: string[] = [];
  const a = r.afterFull;
  const full = r.full;
  const activeExpected = SIZE.users - SIZE.disabledUsers;
  const countsOk = a.users === SIZE.users && a.activeUsers === activeExpected && a.groups === SIZE.groups && a.memberships === gen.transitiveMemberships;
  const sec = r.second;
  const dWall = r.deltas.map((d) => d.wallS);
  const dMed = median(dWall);
  const allDelta = r.deltas.every((d) => d.how === 'delta round');
  const dWrong = r.deltas.reduce((n, d) => n + d.wrong.length, 0);
  const z = r.zero;
  const floor = bareFloor(r);

  L.push(`## ${r.storeNote}`, '');
  L.push(
    `Server: slapd (Debian's OpenLDAP 2.5, its own process; slapadd of the LDIF and start ${f1(r.slapdStartMs / 1000)} s; RSS ${f0(r.slapdRssMb)} MB at the end): ` +
      `${f0(SIZE.users)} users (${f0(activeExpected)} not locked), ${f0(SIZE.groups)} groups, ${f0(gen.directMemberships)} direct user memberships, ` +
      `${f0(gen.nestedLinks)} groups nested in other groups; flattened that is ${f0(gen.transitiveMemberships)} user memberships. The service's RSS before the first sync: ${f0(r.serviceIdleRssMb)} MB.`,
    '',
  );
  L.push(...fullSyncRows(full, TARGET));
  L.push(
    `| 1 | Directory afterwards: users / active / groups / memberships | ${f0(a.users)} / ${f0(a.activeUsers)} / ${f0(a.groups)} / ${f0(a.memberships)} | ${f0(SIZE.users)} / ${f0(activeExpected)} / ${f0(SIZE.groups)} / ${f0(gen.transitiveMemberships)} (the server) | ${check(countsOk)} |`,
  );
  L.push(`| 1 | LDAP entries read; change-feed rows | ${f0(full.run.counters.fetched ?? 0)}; ${f0(a.changeFeed)} | | |`);
  L.push(...secondSyncRows(sec, sec.feedRows));
  L.push(
    `| 3 | Incremental sync (POST …/sync \`{"mode":"delta"}\`) after ${r.deltas[0]?.changes.changed ?? 100} changed entries, ${r.deltas.length} rounds with fresh changes: median (every round) | **${f2(dMed)} s** (${dWall.map(f2).join(', ')} s; ${allDelta ? 'each a delta round' : `**${r.deltas.map((d) => d.how).join(', ')}**`}) | < ${TARGET.deltaS} s | ${verdict(dMed < TARGET.deltaS && allDelta)} |`,
  );
  L.push(`| 3 | … slowest round | ${f2(Math.max(...dWall))} s | < ${TARGET.deltaS} s | ${verdict(Math.max(...dWall) < TARGET.deltaS)} |`);
  L.push(
    `| 3 | … directory matches the server afterwards (${r.deltas.map((d) => d.checked).join(' + ')} users touched: e-mail, display name, active, groups with nesting; directory users / active / memberships against the server) | ${dWrong ? `${dWrong} differences` : 'all match'} | all match | ${check(dWrong === 0)} |`,
  );
  for (const d of r.deltas) L.push(`| 3 | … round ${d.changes.round}: run counters; change-feed rows | ${counters(d.run.counters)}; ${f0(d.feedRows)} | | |`);
  L.push(`| 3 | Incremental sync with no changes | **${f2(z.wallS)} s** (${z.how}) | (reported) | |`);
  L.push(`| 3 | … run counters; change-feed rows of the run | ${counters(z.run.counters)}; ${f0(z.feedRows)} | 0 rows | ${verdict(z.feedRows === 0)} |`);
  if (Number.isFinite(floor)) {
    L.push(
      `| 4 | Bare LDAP read (same run, ldapts \`searchPaginated\`, pages of ${PAGE_SIZE}, the source's account, bases, filters and attributes; nothing written): before the service started / after it stopped | ${f2((r.bareBefore?.ms ?? NaN) / 1000)} s / ${f2((r.bareAfter?.ms ?? NaN) / 1000)} s | | |`,
    );
    L.push(`| 4 | Full sync / bare read (the faster one) | **${f1(full.wallS / floor)}×** | | |`);
  }
  if (r.bareAfter) {
    const d = r.bareAfter.delta;
    const bareDeltaS = (d.changedMs + d.idsMs) / 1000;
    L.push(
      `| 4 | Bare LDAP searches of an incremental sync, after the rounds (the changed entries by \`modifyTimestamp\`, ${f0(d.changedUsers)} users and ${f0(d.changedGroups)} groups; the ids of all ${f0(d.ids)} users and groups) | ${f2(bareDeltaS)} s (${f2(d.changedMs / 1000)} + ${f2(d.idsMs / 1000)} s) | | |`,
    );
    L.push(`| 4 | Incremental sync (median) / its bare LDAP searches | **${f1(dMed / bareDeltaS)}×** | | |`);
  }
  L.push('');

  const notes: string[] = [];
  if (r.dbBytes) notes.push(`Database size at the end: ${f0(mb(r.dbBytes))} MB.`);
  notes.push(`Full sync phases (polled every 250 ms): ${spans(full)}; second full sync: ${spans(sec)}.`);
  notes.push(`Incremental sync phases: ${r.deltas.map((d) => `round ${d.changes.round}: ${spans(d)}`).join('; ')}; no changes: ${spans(z)}.`);
  const cpuOf = (f: SyncFigure) => `service ${f1(f.cpu.service)} s, slapd ${f1(f.cpu.slapd)} s of CPU in ${f1(f.wallS)} s`;
  notes.push(`CPU time (/proc/<pid>/stat) — full sync: ${cpuOf(full)}; second full sync: ${cpuOf(sec)}; incremental rounds: ${r.deltas.map((d) => cpuOf(d)).join('; ')}; no changes: ${cpuOf(z)}.`);
  for (const [name, b] of [
    ['before', r.bareBefore],
    ['after', r.bareAfter],
  ] as const) {
    if (b) {
      notes.push(
        `Bare read ${name}: ${f0(b.users)} users in ${f2(b.usersMs / 1000)} s, ${f0(b.groups)} groups with ${f0(b.memberValues)} member values in ${f2(b.groupsMs / 1000)} s, ${b.pages} pages; CPU: ldapts (driver) ${f1(b.cpu.driver)} s, slapd ${f1(b.cpu.slapd)} s. ` +
          `The LDAP searches of an incremental sync, bare: ${bareDelta(b)}.`,
      );
    }
  }
  if (Number.isFinite(floor)) {
    const reading = full.phases.filter((p) => p.phase === 'reading users' || p.phase === 'reading groups');
    const readS = reading.reduce((s, p) => {
      const i = full.phases.indexOf(p);
      return s + ((full.phases[i + 1]?.atS ?? full.wallS) - p.atS);
    }, 0);
    notes.push(
      `Where the full sync's ${f1(full.wallS)} s go: the bare LDAP read of the same entries takes ${f2(floor)} s (${f0((100 * floor) / full.wallS)} %); the source's user and group read phases, which page the same searches and write the mirror a page at a time, took ${f1(readS)} s; ` +
        `the rest (member lists resolved and flattened, mirror memberships written, removals, then the reconciler) ${f1(full.wallS - readS)} s. slapd used ${f1(full.cpu.slapd)} s of CPU during the full sync, ${f1(Math.min(r.bareBefore?.cpu.slapd ?? Infinity, r.bareAfter?.cpu.slapd ?? Infinity))} s during a bare read.`,
    );
  }
  const memOf = (f: SyncFigure) => f.memory.map((m) => `${m.phase} ${f0(m.rss)} / ${f0(m.heapTotal)} / ${f0(m.heapUsed)} / ${f0(m.external)}`).join('; ');
  notes.push(
    `The service's memory by phase, MB (process.memoryUsage() asked over IPC every 250 ms; the largest of each while the phase ran: rss / V8 heap total / heap used / external + array buffers) — full sync: ${memOf(full)}; second full sync: ${memOf(sec)}.`,
  );
  notes.push(`Full sync run log: ${runLog(full.run)}.`);
  notes.push(`Full sync counters: ${counters(full.run.counters)}.`);
  for (const d of r.deltas) {
    notes.push(
      `Incremental round ${d.changes.round} (changes made in ${f0(d.changes.applyMs)} ms with ldapmodify): run log ${runLog(d.run)}; directory afterwards ${f0(d.after.users)} users (${f0(d.after.activeUsers)} active), ${f0(d.after.memberships)} memberships (server: ${f0(d.expectUsers)}, ${f0(d.expectActive)}, ${f0(d.expectMemberships)}); peak RSS sampled ${f0(d.rss.sampledMb)} MB.`,
    );
    if (d.wrong.length) notes.push(`Round ${d.changes.round} differences (first 10): ${d.wrong.slice(0, 10).join(' | ')}`);
  }
  notes.push(
    `The incremental rounds read \`(modifyTimestamp>=marker)\`, the marker being taken 5 minutes before the previous run started (the source's clock margin): round k also reads again the entries changed in earlier rounds within those 5 minutes, and the sync with no changes reads those of the last rounds (its \`fetched\` counter). ` +
      'Each round also pages through the ids (entryUUID) of every user and group to find deletions (modifyTimestamp cannot see them).',
  );
  L.push(...notes.map((n) => `- ${n}`), '');
  return L;
}

const VARIANT_HEADING = '## Variant: the service with NODE_OPTIONS=';
/** a hand-written section of conclusions: kept when the figures are measured again */
const NOTES_HEADING = '## Findings';
const KEPT_HEADINGS = [PROFILE_HEADING, VARIANT_HEADING, NOTES_HEADING];
const KEPT_SECTIONS = `\n(?=${KEPT_HEADINGS.join('|')})`;

function profileSectionOf(r: StoreResult, load: number[]): string[] {
  return profileSection(r.store, r.profiles, {
    load,
    pgNote: "On PostgreSQL a statement's time is the wall time until its result arrived, and the service's CPU profile shows mostly idle time while it waits.",
    profiled:
      `Profiled: full sync ${f1(r.full.wallS)} s (service CPU ${f1(r.full.cpu.service)} s, slapd CPU ${f1(r.full.cpu.slapd)} s; phases ${spans(r.full)}; ` +
      `run log: ${runLog(r.full.run)}); second full sync ${f1(r.second.wallS)} s; incremental rounds ${r.deltas.map((d) => f2(d.wallS)).join(', ')} s; no changes ${f2(r.zero.wallS)} s.`,
  });
}

/** the results file's line on what ran in which process */
const PROCESSES =
  '- Processes: the bench driver (which also runs the bare read); slapd (`test/support/slapd`: Debian\'s OpenLDAP, mdb, dynlist for nested memberOf, refint, ppolicy; ' +
  `the LDIF of \`generateDirectoryLdif\` loaded offline with slapadd, entries dated ${LOADED_AT}) on loopback in its own process; the service ` +
  '(`bench/lib/graph-service.ts`: `buildService` as `usersync serve` builds it — admin API, PullRunner, reconciler and scheduler running, LOG_LEVEL=warn) in its own process. ' +
  `Every sync goes over the admin API on loopback; the connector reads as slapd's ordinary sync account (size limit ${SIZE_LIMIT}: an unpaged search would stop at ${SIZE_LIMIT}), ` +
  `preset \`openldap\`, user base ou=people, group base ou=groups, pageSize ${PAGE_SIZE}, schedule off, other settings default ` +
  "(membership from the groups' `member`, `nestedGroups: flatten` walked in the client, locked = `pwdAccountLockedTime` present, changes by `modifyTimestamp`, concurrency 4, default user and group rules).";

// ---------------------------------------------------------------------------------------------------

export async function runLdapSync(): Promise<void> {
  const b = beginRun('LDAP sync', 'usersync-ldap-bench-');
  const { stores, tmpDir } = b;
  fs.chmodSync(tmpDir, 0o755);
  const results: StoreResult[] = [];
  let gen: Generated;
  try {
    gen = generate(tmpDir);
    log(
      `  LDIF: ${f0(SIZE.users)} users, ${f0(SIZE.groups)} groups, ${f0(gen.directMemberships)} direct memberships, ${f0(gen.nestedLinks)} nested groups → ${f0(gen.transitiveMemberships)} flattened; ` +
        `${f0(mb(gen.bytes))} MB in ${f1(gen.genMs / 1000)} s`,
    );
    for (const store of stores) {
      log(`${store}:`);
      results.push(await runStore(store, tmpDir, gen));
    }
  } finally {
    b.removeTmpDir();
  }
  const { totalS, loadAfter, out } = b.finished('ldap');

  if (PROFILE) {
    // the day's results keep their figures; this run's stores' profile sections replace older ones
    const sections = results.map((r) => profileSectionOf(r, loadAfter).join('\n'));
    putSections(out, sections, { record: ISSUE_SIZE, headings: KEPT_HEADINGS, what: 'CPU profile' });
    return;
  }
  if (SERVICE_NODE_OPTIONS) {
    const sections = results.map((r) => {
      const body = storeSection(r, gen!);
      body[0] = `${VARIANT_HEADING}${SERVICE_NODE_OPTIONS} — ${r.store}`;
      body.splice(1, 0, '', `A separate run (${nowUtc()}, code: ${revision()}, load average after it ${loadText(loadAfter)}, whole run ${totalS.toFixed(0)} s) with \`NODE_OPTIONS=${SERVICE_NODE_OPTIONS}\` for the service process only; everything else as above. ${r.storeNote}.`);
      return body.join('\n');
    });
    putSections(out, sections, { record: ISSUE_SIZE, headings: KEPT_HEADINGS, what: 'variant' });
    return;
  }

  const L: string[] = reportHead('LDAP pull sync benchmark', b, { loadAfter, totalS, processes: PROCESSES, reduced: ISSUE_SIZE ? undefined : SIZE });
  for (const r of results) L.push(...storeSection(r, gen!));
  L.push('Run with `npm run bench -- ldap` (add `--pg` for PostgreSQL too, `--profile` for a CPU profile of the service); benchmarks are not part of `npm test`.', '');
  const report = L.join('\n');
  log('');
  log(report);
  if (ISSUE_SIZE) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    // the day's findings, profile and variant sections stay (each says when and on what code it was taken)
    const kept = fs.existsSync(out)
      ? fs
          .readFileSync(out, 'utf8')
          .split(new RegExp(KEPT_SECTIONS))
          .slice(1)
          .map((p) => p.trimEnd())
      : [];
    fs.writeFileSync(out, kept.length ? `${[report.trimEnd(), ...kept].join('\n\n')}\n` : report);
    log(`written to ${path.relative(ROOT, out)}${kept.length ? ` (kept ${kept.length} findings, profile or variant sections)` : ''}`);
  }
}

runIfMain(import.meta.url, runLdapSync);
