// Graph pull runs across real service processes: two instances on one PostgreSQL schema never run a
// connector twice at once (manual or scheduled); a SIGKILL mid-run is detected and the next run converges;
// a SIGTERM mid-run ends the run as failed at once and frees the connector for the next process.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/store/db.ts';
import { openStore } from '../../../src/store/db.ts';
import type { GraphEmulator, SeedResult } from '../../support/graph-emulator/index.ts';
import { startGraphEmulator } from '../../support/graph-emulator/index.ts';
import type { ServiceProcess } from '../../support/process.ts';
import { processApi, startServiceProcess, until } from '../../support/process.ts';
import { dropSchema, PG_URL, uniqueName } from '../../support/store.ts';
import { prepareSource } from '../../../src/sources/registry.ts';
import { ConnectorStore } from '../../../src/store/connectors.ts';
import { loadSecretKeys } from '../../../src/store/secrets.ts';
import { emulatorSource } from './support.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const exec = promisify(execFile);

const api = processApi;

/** `usersync <args>` as a child process on the given database. */
async function cli(env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), ...args], { env: { ...process.env, ...env }, cwd: ROOT });
  return stdout;
}

async function adminToken(env: Record<string, string>): Promise<string> {
  const out = await cli(env, 'admin-token', 'create', 'processes test');
  return /^(usa_\S+)$/m.exec(out)![1]!;
}


const sourceSettings = emulatorSource;

/** Make a full read last a few seconds: each of these groups' member reads is throttled five times (within the client's six attempts). */
function slowDown(emu: GraphEmulator, groupIds: string[], groups = 16): void {
  emu.faults.clear();
  for (const id of groupIds.slice(0, groups)) emu.faults.throttle(`/v1.0/groups/${id}`, { count: 5, retryAfter: 0.3 });
}

interface Snapshot {
  users: string[];
  groups: string[];
  memberships: string[];
}

/** The tenant as the directory should show it: users (id, name, active), groups, direct user memberships. */
function tenantSnapshot(emu: GraphEmulator): Snapshot {
  const users = [...emu.state.users.values()].filter((u) => u.deletedSeq === null);
  const groups = [...emu.state.groups.values()].filter((g) => g.deletedSeq === null);
  const live = new Set(users.map((u) => u.id));
  return {
    users: users.map((u) => `${u.id} ${String(u.props.userPrincipalName)} ${u.props.accountEnabled === false ? 'inactive' : 'active'}`).sort(),
    groups: groups.map((g) => String(g.props.displayName)).sort(),
    memberships: groups.flatMap((g) => [...g.members.keys()].filter((m) => live.has(m)).map((m) => `${String(g.props.displayName)} ${m}`)).sort(),
  };
}

async function directorySnapshot(db: Db, connectorId: string): Promise<Snapshot> {
  const users = await db.kysely.selectFrom('directory_users').select(['source_id', 'username', 'active']).where('owner_connector_id', '=', connectorId).execute();
  const groups = await db.kysely.selectFrom('directory_groups').select('name').where('owner_connector_id', '=', connectorId).execute();
  const memberships = await db.kysely
    .selectFrom('directory_memberships as m')
    .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
    .innerJoin('directory_users as u', 'u.id', 'm.user_id')
    .select(['g.name', 'u.source_id'])
    .where('m.managed_by', '=', `connector:${connectorId}`)
    .execute();
  return {
    users: users.map((u) => `${u.source_id} ${u.username} ${Number(u.active) === 1 ? 'active' : 'inactive'}`).sort(),
    groups: groups.map((g) => g.name).sort(),
    memberships: memberships.map((m) => `${m.name} ${m.source_id}`).sort(),
  };
}

interface RunRow {
  id: string;
  trigger: string;
  status: string;
  started_at: string;
  ended_at: string | null;
}

async function runsOf(db: Db, connectorId: string): Promise<RunRow[]> {
  return db.kysely.selectFrom('runs').select(['id', 'trigger', 'status', 'started_at', 'ended_at']).where('connector_id', '=', connectorId).where('trigger', '!=', 'on-demand').orderBy('started_at').execute();
}

/** No run of the connector started before the previous one had ended. */
function expectNoOverlap(runs: RunRow[]): void {
  for (let i = 1; i < runs.length; i++) {
    const prev = runs[i - 1]!;
    expect(prev.ended_at, `run ${prev.id} has not ended`).not.toBeNull();
    expect(runs[i]!.started_at >= prev.ended_at!, `run ${runs[i]!.id} started at ${runs[i]!.started_at}, before run ${prev.id} ended at ${prev.ended_at}`).toBe(true);
  }
}

describe('two service processes on one PostgreSQL schema', () => {
  const schema = uniqueName('procs').toLowerCase();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-procs-pg-'));
  const env = { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema, USERSYNC_SECRET_KEY: randomBytes(32).toString('base64'), DATA_DIR: dataDir, RUN_STALE_SECONDS: '5' };
  let emu: GraphEmulator;
  let seeded: SeedResult;
  let token: string;
  let a: ServiceProcess | undefined;
  let b: ServiceProcess | undefined;
  let db: Db;

  beforeAll(async () => {
    emu = await startGraphEmulator();
    seeded = emu.state.seed({ users: 3000, groups: 40, memberships: 9000, randomSeed: 11 });
    token = await adminToken(env);
    db = await openStore({ url: PG_URL, pgSchema: schema });
    // both at once on a schema without connectors: both race to create the first-start connector
    [a, b] = await Promise.all([startServiceProcess(env), startServiceProcess(env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.kill('SIGKILL'), b?.kill('SIGKILL')]);
    await db?.close();
    await emu?.close();
    await dropSchema(schema);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts one run when both instances are asked at the same moment; the other answers busy with its run id', { timeout: 90_000 }, async () => {
    const created = await api(a!, token, '/connectors', { method: 'POST', body: { id: 'g', name: 'Graph', kind: 'graph', source: sourceSettings(emu) } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    slowDown(emu, seeded.groupIds, 8);

    const answers = await Promise.all([a!, b!].map((p) => api(p, token, '/connectors/g/sync?wait=false', { method: 'POST', body: { mode: 'full' } })));
    const started = answers.filter((r) => r.status === 202);
    const busy = answers.filter((r) => r.status === 409);
    expect(started, JSON.stringify(answers)).toHaveLength(1);
    expect(busy, JSON.stringify(answers)).toHaveLength(1);
    const runId = started[0]!.body.runId as string;
    expect(busy[0]!.body.error.code).toBe('busy');
    expect(busy[0]!.body.error.details.runId, JSON.stringify(busy[0]!.body)).toBe(runId);

    // while it runs, both instances keep answering busy with the same run
    const again = await Promise.all([a!, b!, a!, b!].map((p) => api(p, token, '/connectors/g/sync?wait=false', { method: 'POST' })));
    for (const r of again) expect([r.status, r.body.error?.code, r.body.error?.details?.runId]).toEqual([409, 'busy', runId]);

    let last: Awaited<ReturnType<typeof api>>["body"];
    const run = await until(() => `the run to end: ${JSON.stringify(last)}\n${a!.output()}\n${b!.output()}`, 45_000, async () => {
      last = (await api(b!, token, `/runs/${runId}`)).body;
      return last.status !== 'running' && last;
    });
    expect(run.status, JSON.stringify(run)).toBe('succeeded');
    expect(run.counters.created).toBe(3000);

    const runs = await runsOf(db, 'g');
    expect(runs.map((r) => r.id)).toEqual([runId]);
    expectNoOverlap(runs);
    expect(await directorySnapshot(db, 'g')).toEqual(tenantSnapshot(emu));
  });

  it("runs a scheduled connector once when both instances' schedulers find it due", { timeout: 90_000 }, async () => {
    await Promise.all([a!.kill('SIGTERM'), b!.kill('SIGTERM')]);
    // A new connector with a schedule, created while no scheduler runs (through a store, sealed with the
    // instances' key); then both instances start at once and find it due. It reads four groups of the
    // tenant, each slowed down, so that its run lasts while the later instance comes up.
    const scoped = { scope: 'groups', groups: seeded.groupIds.slice(0, 4), schedule: { kind: 'interval', minutes: 1 } };
    const box = loadSecretKeys({ env: { USERSYNC_SECRET_KEY: env.USERSYNC_SECRET_KEY }, dataDir, create: false });
    await new ConnectorStore(db).create({ id: 'sched', name: 'Scheduled', kind: 'graph', source: prepareSource('graph', 'sched', sourceSettings(emu, scoped), undefined, box) }, 'test');
    slowDown(emu, seeded.groupIds, 4);
    [a, b] = await Promise.all([startServiceProcess(env), startServiceProcess(env)]);

    const first = await until('a scheduled run', 20_000, async () => (await runsOf(db, 'sched'))[0]);
    expect(first.trigger).toBe('schedule');
    const ended = await until('the scheduled run to end', 40_000, async () => {
      const r = await api(a!, token, `/runs/${first.id}`);
      return r.body.status !== 'running' && r.body;
    });
    expect(ended.status, JSON.stringify(ended)).toBe('succeeded');
    // both schedulers ticked as they started (the later one found the run started, or its lease taken);
    // the next ticks (every 15 s) find the interval not yet over. A moment for a late second run to show:
    await new Promise((r) => setTimeout(r, 1500));
    const runs = await runsOf(db, 'sched');
    expect(runs.map((r) => `${r.trigger} ${r.status}`)).toEqual(['schedule succeeded']);
    expectNoOverlap(await runsOf(db, 'g'));
    // the same tenant as connector g: its users are g's in the directory (conflicts), but the mirror has the four groups' members
    const members = new Set(seeded.groupIds.slice(0, 4).flatMap((id) => [...emu.state.groups.get(id)!.members.keys()]));
    const mirrored = await db.kysely.selectFrom('mirror_users').select('id').where('connector_id', '=', 'sched').execute();
    expect(new Set(mirrored.map((u) => u.id))).toEqual(members);
  });
});

describe('a service process stopped in the middle of a run (SQLite)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-procs-sqlite-'));
  // the key file beside the database, created by the first command that needs it
  // The first process keeps the default lease time (30 s); the ones started after a kill take over after
  // 3 s, and aborting the run frees its connector whatever lease time the killed process used.
  const env = { DATABASE_URL: path.join(dir, 'usersync.db'), USERSYNC_SECRET_KEY: '' };
  const restartEnv = { ...env, RUN_STALE_SECONDS: '3' };
  let emu: GraphEmulator;
  let seeded: SeedResult;
  let token: string;
  let proc: ServiceProcess | undefined;
  let db: Db;

  beforeAll(async () => {
    emu = await startGraphEmulator();
    seeded = emu.state.seed({ users: 3000, groups: 40, memberships: 9000, randomSeed: 23 });
    token = await adminToken(env);
    db = await openStore({ url: env.DATABASE_URL });
    proc = await startServiceProcess(env);
    const created = await api(proc, token, '/connectors', { method: 'POST', body: { id: 'g', name: 'Graph', kind: 'graph', source: sourceSettings(emu) } });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  });

  afterAll(async () => {
    await proc?.kill('SIGKILL');
    await db?.close();
    await emu?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** start a full read and wait until it is reading with some progress recorded */
  async function startAndWaitForProgress(): Promise<string> {
    slowDown(emu, seeded.groupIds);
    const res = await api(proc!, token, '/connectors/g/sync?wait=false', { method: 'POST', body: { mode: 'full' } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const runId = res.body.runId as string;
    const run = await until('progress of the run', 20_000, async () => {
      const r = await api(proc!, token, `/runs/${runId}`);
      expect(r.body.status).toBe('running');
      return r.body.phase === 'reading' && r.body.progress?.done > 0 && r.body;
    });
    expect(['users', 'groups', 'members']).toContain(run.progress.phase);
    return runId;
  }

  it('SIGKILL: the run is aborted within seconds, and the next run converges on the tenant', { timeout: 90_000 }, async () => {
    const runId = await startAndWaitForProgress();
    expect(await proc!.kill('SIGKILL')).toBeNull();
    const killedAt = Date.now();
    // the tenant changes while nobody reads it
    const added = emu.state.addUser({ userPrincipalName: 'late@contoso.example', displayName: 'Late Comer' });
    emu.state.addMember(seeded.groupIds[1]!, added.id);
    emu.state.removeMember(seeded.groupIds[2]!, [...emu.state.groups.get(seeded.groupIds[2]!)!.members.keys()][0]!);
    emu.state.updateUser(seeded.userIds[3]!, { accountEnabled: false });
    emu.state.renameGroup(seeded.groupIds[4]!, 'renamed-group');
    emu.faults.clear();

    proc = await startServiceProcess(restartEnv);
    const aborted = await until('the killed run to be aborted', 15_000, async () => {
      const r = await api(proc!, token, `/runs/${runId}`);
      return r.body.status !== 'running' && r.body;
    });
    expect(aborted.status).toBe('aborted');
    expect(aborted.error).toMatch(/stopped/);
    expect(aborted.endedAt).toBeTruthy();
    expect(Date.now() - killedAt).toBeLessThan(20_000);

    const next = await until('a new run to be accepted', 10_000, async () => {
      const r = await api(proc!, token, '/connectors/g/sync', { method: 'POST' });
      if (r.status === 200) return r.body;
      expect([r.status, r.body.error?.code]).toEqual([409, 'busy']);
      return undefined;
    });
    expect(next.status, JSON.stringify(next)).toBe('succeeded');
    expect(await directorySnapshot(db, 'g')).toEqual(tenantSnapshot(emu));
    expectNoOverlap(await runsOf(db, 'g'));
  });

  it('SIGTERM: the run ends failed at once, saying the service stopped, and the next process syncs at once', { timeout: 90_000 }, async () => {
    const runId = await startAndWaitForProgress();
    const t0 = Date.now();
    expect(await proc!.kill('SIGTERM')).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const [run] = await db.kysely.selectFrom('runs').select(['status', 'error', 'ended_at']).where('id', '=', runId).execute();
    expect(run).toMatchObject({ status: 'failed' });
    expect(run!.error).toMatch(/service .*stop/);
    expect(run!.ended_at).toBeTruthy();

    emu.faults.clear();
    proc = await startServiceProcess(env);
    const next = await api(proc, token, '/connectors/g/sync', { method: 'POST' });
    expect(next.status, JSON.stringify(next.body)).toBe(200);
    expect(next.body.status).toBe('succeeded');
    expect(await directorySnapshot(db, 'g')).toEqual(tenantSnapshot(emu));
    expectNoOverlap(await runsOf(db, 'g'));
  });
});
