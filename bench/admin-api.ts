// `npm run bench -- admin`: the admin API and web UI as an administrator of a 50,000-person directory uses
// them. The directory (50,000 users, 5,000 groups, 270,000 memberships, one group of 20,000, 2,000 runs,
// 50,000 audit entries, a change feed of 320,000 rows) is written straight into a SQLite store; the service runs as its own process
// (`usersync serve`), loaded by autocannon from this process over loopback with 10 connections.
//
// Each page's endpoint is measured in slices interleaved with `GET /healthz` (the framework's floor on this
// machine at this moment), so its cost reads as a ratio that the shared machine's drift does not move.
// Logins are timed one at a time (scrypt is meant to be slow). The UI's size is read from web/dist.
//
//   BENCH_DURATION=5 (s per slice)  BENCH_ROUNDS=2 (slices per variant)  BENCH_USERS=50000

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { openStore } from '../src/store/db.ts';
import { directoryKey } from '../src/domain/rules.ts';
import type { Slice } from './lib/load.ts';
import { combine, runLoad } from './lib/load.ts';
import { ROOT } from './lib/driver.ts';
import { f0, f1, f2, loadText, log, nowUtc } from './lib/format.ts';
import { machine } from './lib/machine.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const USERS = Number(process.env.BENCH_USERS ?? 50_000);
const GROUPS = USERS / 10;
const BIG_GROUP = Math.min(20_000, USERS);
const PASSWORD = 'a bench password, long enough';

async function seed(file: string): Promise<{ userIds: string[]; groupIds: string[]; bigGroupId: string; memberships: number }> {
  const db = await openStore({ url: file });
  const at = new Date().toISOString();
  const userIds: string[] = [];
  const groupIds: string[] = [];
  let memberships = 0;
  await db.transaction(async (trx) => {
    await trx.insertInto('connectors').values({ id: 'entra', name: 'Entra ID', kind: 'scim', enabled: 1, settings: '{}', created_at: at, updated_at: at }).execute();
    for (let i = 0; i < USERS; i += 500) {
      const rows = [];
      for (let j = i; j < Math.min(USERS, i + 500); j++) {
        const username = `user${String(j).padStart(6, '0')}@contoso.com`;
        userIds.push(`u${j}`);
        rows.push({ id: `u${j}`, username, username_key: directoryKey(username), email: username, display_name: `User ${j}`, active: 1, attributes: JSON.stringify({ department: `Dept ${j % 50}`, title: 'Engineer' }), owner_connector_id: 'entra', source_id: `s${j}`, in_scope: 1, created_at: at, updated_at: at });
      }
      await trx.insertInto('directory_users').values(rows).execute();
    }
    for (let g = 0; g < GROUPS; g += 500) {
      const rows = [];
      for (let k = g; k < Math.min(GROUPS, g + 500); k++) {
        groupIds.push(`g${k}`);
        rows.push({ id: `g${k}`, name: `Team ${String(k).padStart(5, '0')}`, name_key: directoryKey(`Team ${String(k).padStart(5, '0')}`), owner_connector_id: 'entra', source_id: `sg${k}`, created_at: at, updated_at: at });
      }
      await trx.insertInto('directory_groups').values(rows).execute();
    }
    // every user in 5 groups; the first BIG_GROUP users also in group 0
    // each membership also as its change-feed row, as a first sync leaves them (a user's history reads them)
    let batch: { group_id: string; user_id: string; managed_by: string; created_at: string }[] = [];
    const flush = async () => {
      if (batch.length) {
        await trx.insertInto('directory_memberships').values(batch).onConflict((oc) => oc.doNothing()).execute();
        const feed = batch.map((m) => ({ at, connector_id: 'entra', run_id: 'run1', entity: 'membership' as const, entity_id: `${m.group_id}:${m.user_id}`, op: 'add', data: JSON.stringify({ groupId: m.group_id, userId: m.user_id, managedBy: 'connector:entra' }) }));
        for (let i = 0; i < feed.length; i += 500) await trx.insertInto('change_feed').values(feed.slice(i, i + 500)).execute();
      }
      memberships += batch.length;
      batch = [];
    };
    for (let u = 0; u < USERS; u++) {
      for (let k = 0; k < 5; k++) batch.push({ group_id: `g${1 + ((u * 7 + k * 997) % (GROUPS - 1))}`, user_id: `u${u}`, managed_by: 'entra', created_at: at });
      if (u < BIG_GROUP) batch.push({ group_id: 'g0', user_id: `u${u}`, managed_by: 'entra', created_at: at });
      if (batch.length >= 1000) await flush();
    }
    await flush();
    for (let r = 0; r < 2000; r += 500) {
      const rows = [];
      for (let k = r; k < r + 500; k++) rows.push({ id: `run${k}`, connector_id: 'entra', trigger: 'push', status: 'succeeded', started_at: new Date(Date.now() - (2000 - k) * 3_600_000).toISOString(), ended_at: at, counters: JSON.stringify({ created: k % 7, updated: k % 13 }), peak_rss: 100_000_000, error: null, last_activity_at: at, holder: '' });
      await trx.insertInto('runs').values(rows).execute();
    }
    for (let a = 0; a < 50_000; a += 1000) {
      const rows = [];
      for (let k = a; k < a + 1000; k++) rows.push({ at, actor: 'token:automation', action: 'connector.sync', target: 'entra', details: '{}' });
      await trx.insertInto('audit_log').values(rows).execute();
    }
    // each user's history: a create in the change feed
    for (let u = 0; u < USERS; u += 1000) {
      const rows = [];
      for (let k = u; k < Math.min(USERS, u + 1000); k++) rows.push({ at, connector_id: 'entra', run_id: 'run1', entity: 'user' as const, entity_id: `u${k}`, op: 'create', data: JSON.stringify({ after: { username: `user${k}` } }) });
      await trx.insertInto('change_feed').values(rows).execute();
    }
  });
  await db.close();
  return { userIds, groupIds, bigGroupId: 'g0', memberships };
}

interface Scenario {
  name: string;
  what: string;
  path: () => string;
}

function dirSize(dir: string): { files: number; raw: number; gzip: number } {
  let files = 0;
  let raw = 0;
  let gzip = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const buf = fs.readFileSync(p);
        files++;
        raw += buf.length;
        gzip += zlib.gzipSync(buf).length;
      }
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return { files, raw, gzip };
}

export async function runAdminApi(): Promise<void> {
  const started = Date.now();
  const mach = machine();
  const loadBefore = os.loadavg();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-bench-admin-'));
  const file = path.join(dir, 'usersync.db');
  log(`seeding ${f0(USERS)} users, ${f0(GROUPS)} groups …`);
  const seedStart = Date.now();
  const seeded = await seed(file);
  log(`seeded in ${f1((Date.now() - seedStart) / 1000)} s (${f0(seeded.memberships)} memberships)`);

  execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: ROOT, stdio: 'ignore' });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: file, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', USERSYNC_ADMIN_PASSWORD: PASSWORD, LOGIN_RATE_PER_MINUTE: '100000', NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const origin = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${origin}/healthz`)).ok) break;
      } catch {
        // not yet listening
      }
      if (i > 300) throw new Error('the service did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    // logins, one at a time
    const loginMs: number[] = [];
    let cookie = '';
    let csrf = '';
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const res = await fetch(`${origin}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
      loginMs.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`login: ${res.status}`);
      cookie = res.headers.get('set-cookie')!.split(';')[0]!;
      csrf = ((await res.json()) as { csrfToken: string }).csrfToken;
    }
    const wrongMs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      await fetch(`${origin}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `nobody${i}`, password: 'wrong password' }) });
      wrongMs.push(performance.now() - t);
    }
    loginMs.sort((a, b) => a - b);
    wrongMs.sort((a, b) => a - b);

    let n = 0;
    const pick = <T>(xs: T[]) => xs[(n++ * 7919) % xs.length]!;
    const scenarios: Scenario[] = [
      { name: 'session', what: 'GET /api/session (the cookie checked against the store)', path: () => '/api/session' },
      { name: 'connectors', what: 'GET /api/connectors (with each latest run)', path: () => '/api/connectors' },
      { name: 'user search', what: 'GET /api/users?search=<5 digits> (substring of 50,000 usernames)', path: () => `/api/users?search=${String(n++ % USERS).padStart(5, '0')}` },
      { name: 'user page', what: 'GET /api/users/{id} (attributes, 5–6 groups, history of the user and its memberships)', path: () => `/api/users/${pick(seeded.userIds)}` },
      { name: 'group list', what: 'GET /api/groups (first 100 by name, with member counts)', path: () => '/api/groups' },
      { name: 'group search', what: 'GET /api/groups?search=<4 digits>', path: () => `/api/groups?search=${String(n++ % GROUPS).padStart(4, '0')}` },
      { name: 'group page', what: 'GET /api/groups/{id} (a group of about 50 members)', path: () => `/api/groups/${pick(seeded.groupIds.slice(1))}` },
      { name: 'big group page', what: `GET /api/groups/{id} (${f0(BIG_GROUP)} members; the first 1,000 listed)`, path: () => `/api/groups/${seeded.bigGroupId}` },
      { name: 'runs', what: 'GET /api/runs (latest 50 of 2,000)', path: () => '/api/runs' },
      { name: 'audit', what: 'GET /api/audit (latest 100 of 50,000)', path: () => '/api/audit' },
      { name: 'ui page', what: 'GET /connectors (the UI page: index.html)', path: () => '/connectors' },
    ];
    const headers = { cookie, 'x-csrf-token': csrf };
    const floor: Slice[] = [];
    const rows: string[] = [];
    for (const s of scenarios) {
      await runLoad({ url: origin, headers, next: () => ({ method: 'GET', path: s.path() }) }, { durationS: 1, connections: 10 });
      const mine: Slice[] = [];
      const base: Slice[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const a = () => runLoad({ url: origin, headers, next: () => ({ method: 'GET', path: s.path() }) }, { durationS: DURATION, connections: 10 });
        const b = () => runLoad({ url: origin, headers: {}, next: () => ({ method: 'GET', path: '/healthz' }) }, { durationS: DURATION, connections: 10 });
        if (r % 2 === 0) {
          mine.push(await a());
          base.push(await b());
        } else {
          base.push(await b());
          mine.push(await a());
        }
      }
      floor.push(...base);
      const m = combine(mine);
      const h = combine(base);
      const bad = Object.entries(m.statusCodes).filter(([c]) => !c.startsWith('2'));
      log(`${s.name}: ${f0(m.rps)} req/s, p50 ${f2(m.p50)} ms, p99 ${f2(m.p99)} ms; /healthz ${f0(h.rps)} req/s${bad.length ? `; non-2xx ${JSON.stringify(bad)}` : ''}`);
      rows.push(`| ${s.what} | ${f0(m.rps)} | ${f2(m.p50)} | ${f2(m.p99)} | ${f0(h.rps)} | ${f2(m.rps / h.rps)} | ${bad.length ? bad.map(([c, k]) => `${k}× ${c}`).join(', ') : 'all 2xx'} |`);
    }
    const ui = dirSize(path.join(ROOT, 'web', 'dist'));
    const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    const L = [
      `# Admin API and web UI — ${new Date().toISOString().slice(0, 10)} — ${mach.host}`,
      '',
      `- Date (UTC): ${nowUtc()}`,
      `- Machine: ${mach.host} — ${mach.model}, ${mach.cores} cores, ${f1(mach.memGb)} GB memory (shared with other work), ${mach.platform}`,
      `- Node ${mach.node}; code measured: ${mach.code}`,
      `- Load average (1/5/15 min) before: ${loadText(loadBefore)}, after: ${loadText(os.loadavg())}; whole run ${f0((Date.now() - started) / 1000)} s`,
      `- Directory (SQLite, written directly): ${f0(USERS)} users, ${f0(GROUPS)} groups, ${f0(seeded.memberships)} memberships (one group of ${f0(BIG_GROUP)}), 2,000 runs, 50,000 audit entries, ${f0(USERS + seeded.memberships)} change-feed rows (each user's creation and each membership's).`,
      `- The service is \`usersync serve\` in its own process; autocannon in this process, 10 connections, loopback, logged in with a session cookie. Each endpoint: ${ROUNDS} slices of ${DURATION} s interleaved with as many of \`GET /healthz\`; "ratio" is the endpoint's rate over /healthz's in the same slices.`,
      '',
      '## Pages',
      '',
      '| endpoint | req/s | p50 ms | p99 ms | /healthz req/s | ratio | answers |',
      '|---|---:|---:|---:|---:|---:|---|',
      ...rows,
      '',
      '## Logins (one at a time)',
      '',
      `| | median ms | p90 ms | n |`,
      '|---|---:|---:|---:|',
      `| right password (scrypt N=2^15, then a session row) | ${f1(q(loginMs, 0.5))} | ${f1(q(loginMs, 0.9))} | ${loginMs.length} |`,
      `| unknown username (compared against a dummy hash, so it costs the same) | ${f1(q(wrongMs, 0.5))} | ${f1(q(wrongMs, 0.9))} | ${wrongMs.length} |`,
      '',
      '## The web UI as built',
      '',
      `${ui.files} files in web/dist, ${f0(ui.raw / 1024)} KB, ${f0(ui.gzip / 1024)} KB gzip-compressed (the service sends them uncompressed; hashed assets are cached for a year).`,
      '',
    ];
    const text = L.join('\n');
    const out = path.join(ROOT, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-${os.hostname()}-admin.md`);
    fs.writeFileSync(out, text + '\n');
    log(`\n${text}\nwritten to ${out}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
