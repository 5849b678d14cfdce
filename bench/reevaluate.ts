// Re-evaluating a connector after a settings change: 100,000 users with 1,000,000 memberships.
// Measures the initial pass (everything created), a settings change that touches every user, and a
// pass with nothing to change (which must write nothing), with the peak RSS of this process.
//
//   npm run bench -- reevaluate            (or: node --import tsx bench/reevaluate.ts [users] [groupsPerUser])

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { normaliseResource, searchDocument } from '../src/domain/scim/resource.ts';
import { foldCase, RESOURCE_TYPES } from '../src/domain/scim/schema.ts';
import { DEFAULT_SETTINGS } from '../src/domain/settings.ts';
import { settingsPatch } from '../src/domain/settings-validate.ts';
import type { Db } from '../src/store/db.ts';
import { now, openStore } from '../src/store/db.ts';
import { ConnectorStore } from '../src/store/connectors.ts';
import { newId } from '../src/store/ids.ts';
import { Reconciler } from '../src/sync/reconciler.ts';

const numberArg = (i: number) => (/^\d+$/.test(process.argv[i] ?? '') ? Number(process.argv[i]) : undefined);
const USERS = numberArg(2) ?? 100_000;
const GROUPS_PER_USER = numberArg(3) ?? 10;
const GROUPS = Math.max(1, Math.round(USERS / 50)); // 2,000 groups of ~500 members for 100,000 users
const CONNECTOR = 'bench';

async function seed(db: Db): Promise<void> {
  const type = RESOURCE_TYPES.User;
  const at = now();
  const userIds: string[] = [];
  for (let start = 0; start < USERS; start += 10_000) {
    await db.transaction(async (trx) => {
      for (let s = start; s < Math.min(USERS, start + 10_000); s += 400) {
        const rows = [];
        for (let i = s; i < Math.min(USERS, s + 400); i++) {
          const userName = `user${i}@example.com`;
          const { doc } = normaliseResource(type, {
            userName,
            active: true,
            title: i % 3 ? 'Engineer' : 'Manager',
            emails: [{ type: 'work', value: userName, primary: true }],
            name: { givenName: `Given${i}`, familyName: `Family${i}` },
          });
          const id = newId();
          userIds.push(id);
          rows.push({ connector_id: CONNECTOR, id, user_name: userName, user_name_key: foldCase(userName), external_id: null, resource: JSON.stringify(doc), search: JSON.stringify(searchDocument(type, doc)), version: 1, created_at: at, updated_at: at });
        }
        await trx.insertInto('mirror_users').values(rows).execute();
      }
    });
  }
  const groupIds: string[] = [];
  await db.transaction(async (trx) => {
    for (let g = 0; g < GROUPS; g += 400) {
      const rows = [];
      for (let i = g; i < Math.min(GROUPS, g + 400); i++) {
        const doc = { schemas: [RESOURCE_TYPES.Group.core.id], displayName: `group-${i}` };
        const id = newId();
        groupIds.push(id);
        rows.push({ connector_id: CONNECTOR, id, display_name: doc.displayName, display_name_key: foldCase(doc.displayName), external_id: null, resource: JSON.stringify(doc), search: JSON.stringify(searchDocument(RESOURCE_TYPES.Group, doc)), version: 1, created_at: at, updated_at: at });
      }
      await trx.insertInto('mirror_groups').values(rows).execute();
    }
  });
  // each user in GROUPS_PER_USER groups, spread evenly
  for (let start = 0; start < USERS; start += 20_000) {
    await db.transaction(async (trx) => {
      const rows: { connector_id: string; group_id: string; member_id: string; member_type: 'User' }[] = [];
      for (let u = start; u < Math.min(USERS, start + 20_000); u++) {
        for (let k = 0; k < GROUPS_PER_USER; k++) rows.push({ connector_id: CONNECTOR, group_id: groupIds[(u * 7 + k * 13) % GROUPS]!, member_id: userIds[u]!, member_type: 'User' });
      }
      const unique = [...new Map(rows.map((r) => [`${r.group_id}|${r.member_id}`, r])).values()];
      for (let i = 0; i < unique.length; i += 500) await trx.insertInto('mirror_members').values(unique.slice(i, i + 500)).execute();
    });
  }
}

async function count(db: Db, table: 'directory_users' | 'directory_memberships' | 'change_feed' | 'mirror_members'): Promise<number> {
  const r = await db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function measure<T>(label: string, fn: () => Promise<T>): Promise<{ label: string; seconds: number; peakRssMb: number; result: T }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { label, seconds, peakRssMb: Math.round(peak / 1024 / 1024), result };
}

export async function runReevaluate(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-reeval-'));
  const db = await openStore({ url: path.join(dir, 'bench.db') });
  try {
    await new ConnectorStore(db).create({ id: CONNECTOR, name: CONNECTOR, kind: 'scim' }, 'bench');
    const seeded = await measure('seed the mirror (direct SQL)', () => seed(db));
    const memberships = await count(db, 'mirror_members');
    const reconciler = new Reconciler(db, { holder: 'bench' });
    const initial = await measure('initial full pass (creates every user, group, membership)', () => reconciler.fullPass(CONNECTOR, 'manual'));
    const changed = settingsPatch(DEFAULT_SETTINGS, { user: { displayName: { transforms: [{ fn: 'template', template: '${name.familyName}, ${name.givenName}' }] } } });
    await db.kysely.updateTable('connectors').set({ settings: JSON.stringify(changed) }).where('id', '=', CONNECTOR).execute();
    const change = await measure('settings change: display name of every user', () => reconciler.fullPass(CONNECTOR, 'settings-change', changed));
    const feedBefore = await count(db, 'change_feed');
    const noop = await measure('re-evaluation with nothing to change', () => reconciler.fullPass(CONNECTOR, 'manual', changed));
    const feedAfter = await count(db, 'change_feed');
    const rows = [seeded, initial, change, noop];
    const phases = (r: { result: { log: { message: string }[] } }) => r.result.log.filter((l) => /evaluated|compared/.test(l.message)).map((l) => l.message).join('; ');
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const lines = [
      `# Re-evaluation after a settings change — ${new Date().toISOString().slice(0, 10)} — ${os.hostname()}`,
      '',
      `- Machine: ${os.hostname()} — ${cpu}, ${os.cpus().length} cores, Node ${process.version}; SQLite (WAL, synchronous=NORMAL) on local disk`,
      `- Data: ${USERS.toLocaleString('en')} users, ${GROUPS.toLocaleString('en')} groups, ${memberships.toLocaleString('en')} memberships in the mirror; the reconciler's full pass in this process`,
      '',
      '| step | seconds | peak RSS (MB) | changes written |',
      '|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.label} | ${r.seconds.toFixed(1)} | ${r.peakRssMb} | ${r.result && typeof r.result === 'object' && 'totalChanges' in r.result ? (r.result as { totalChanges: number }).totalChanges.toLocaleString('en') : '—'} |`),
      '',
      `- Phases of the settings change: ${phases(change)}; of the pass with nothing to change: ${phases(noop)}.`,
      `- Directory after the passes: ${(await count(db, 'directory_users')).toLocaleString('en')} users, ${(await count(db, 'directory_memberships')).toLocaleString('en')} memberships.`,
      `- The re-evaluation with nothing to change added ${feedAfter - feedBefore} change-feed entries (it must add none).`,
      `- Requirement: re-evaluating 100,000 users with 1,000,000 memberships after a settings change in under 15 s, memory bounded: ${change.seconds < 15 ? 'met' : '**not met**'} (${change.seconds.toFixed(1)} s, peak RSS ${change.peakRssMb} MB).`,
    ];
    return lines.join('\n');
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = await runReevaluate();
  console.log(text);
  const out = path.join(import.meta.dirname, 'results', `${new Date().toISOString().slice(0, 10)}-${os.hostname()}-reevaluate.md`);
  fs.writeFileSync(out, text + '\n');
  console.log(`\nwritten to ${out}`);
}
