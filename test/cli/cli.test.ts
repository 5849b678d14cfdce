// The usersync command line: connectors and tokens, as an administrator uses them; Graph connectors created,
// synced, tested and synced one user at a time against the Graph emulator.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectorStore, tokenMatches } from '../../src/store/connectors.ts';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import type { Db } from '../../src/store/db.ts';
import { openStore } from '../../src/store/db.ts';
import { acquireLease, releaseLease } from '../../src/sync/lease.ts';
import { leaseName } from '../../src/sync/pull.ts';
import type { GraphEmulator, SeedResult } from '../support/graph-emulator/index.ts';
import { DEFAULT_PERMISSIONS, startGraphEmulator } from '../support/graph-emulator/index.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import { emulatorSource } from '../sources/graph/support.ts';
import { ROOT, usersyncCli } from '../support/cli.ts';


// every command is a child process (about 3 s to start under tsx, much more on a busy two-core machine)
describe('usersync CLI', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-cli-'));
  const env = { ...process.env, DATABASE_URL: path.join(dir, 'cli.db'), PUBLIC_BASE_URL: 'https://sync.example.com/' };

  const usersync = (...args: string[]) => usersyncCli(env, ...args);

  async function credentials(id: string) {
    const db = await openStore({ url: env.DATABASE_URL });
    try {
      return await new ConnectorStore(db).credentials(id);
    } finally {
      await db.close();
    }
  }

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates a SCIM connector and prints its base URL and a token once', async () => {
    const res = await usersync('connector', 'create', 'Contoso Entra', '--id', 'contoso');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('SCIM Base URL: https://sync.example.com/scim/v2/contoso');
    const token = /Bearer token:\s+(usy_\S+)/.exec(res.stdout)![1]!;
    expect(tokenMatches(token, (await credentials('contoso'))!.hashes)).toBe(true);

    const list = await usersync('connector', 'list');
    expect(list.stdout).toMatch(/contoso\s+Contoso Entra\s+scim\s+yes/);
    const tokens = await usersync('token', 'list', 'contoso');
    expect(tokens.stdout).not.toContain(token);
  });

  it('rotates tokens: a second token works alongside the first until it is revoked', async () => {
    const created = await usersync('token', 'create', 'contoso', '--label', 'rotation');
    expect(created.code).toBe(0);
    const [, tokenId] = /token (\S+) created/.exec(created.stdout)!;
    const second = created.stdout.split('\n').find((l) => l.startsWith('usy_'))!;
    expect((await credentials('contoso'))!.hashes).toHaveLength(2);
    expect(tokenMatches(second, (await credentials('contoso'))!.hashes)).toBe(true);

    const revoked = await usersync('token', 'revoke', 'contoso', tokenId!);
    expect(revoked.code).toBe(0);
    expect(tokenMatches(second, (await credentials('contoso'))!.hashes)).toBe(false);
    expect((await credentials('contoso'))!.hashes).toHaveLength(1);
    const again = await usersync('token', 'revoke', 'contoso', tokenId!);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('no valid token');
  });

  it('disables and deletes connectors, and says clearly what is wrong', async () => {
    expect((await usersync('connector', 'disable', 'contoso')).code).toBe(0);
    expect((await credentials('contoso'))!.enabled).toBe(false);
    const missing = await usersync('connector', 'disable', 'nope');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("usersync: no connector 'nope'\n");
    const bad = await usersync('connector', 'create', 'Bad', '--id', 'Not Valid!');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('must be lower-case letters, digits and dashes');
    expect((await usersync('connector', 'delete', 'contoso')).code).toBe(0);
    expect(await credentials('contoso')).toBeUndefined();
    const unknown = await usersync('frobnicate');
    expect(unknown.code).not.toBe(0);
  });

  it('previews and saves settings from a file, refusing bad expressions with their position', async () => {
    expect((await usersync('connector', 'create', 'Rules', '--id', 'rules')).code).toBe(0);
    const db = await openStore({ url: env.DATABASE_URL });
    const mirror = new MirrorStore(db);
    for (const userName of ['ann@example.com', 'bob@example.com']) {
      await mirror.create('rules', 'User', normaliseResource(RESOURCE_TYPES.User, { userName, userType: userName.startsWith('a') ? 'Member' : 'Guest' }).doc);
    }
    await new Reconciler(db).drain();
    await db.close();
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ user: { condition: 'userType eq' } }));
    const refused = await usersync('settings', 'rules', '--set', bad);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('user.condition');
    expect(refused.stderr).toContain('at position 11');

    const good = path.join(dir, 'good.json');
    fs.writeFileSync(good, JSON.stringify({ user: { condition: 'userType eq "Member"' } }));
    const preview = await usersync('preview', 'rules', '--settings', good);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain('deactivated 1');
    expect(preview.stdout).toMatch(/user deactivate bob@example\.com/);
    const saved = await usersync('settings', 'rules', '--set', good);
    expect(saved.stdout).toMatch(/re-evaluation run \S+: succeeded/);
    const shown = await usersync('settings', 'rules');
    expect(JSON.parse(shown.stdout).user.condition).toBe('userType eq "Member"');
  });

  it('creates, lists and revokes admin API tokens', async () => {
    const created = await usersync('admin-token', 'create', '--label', 'ci');
    const [, id] = /admin token (\S+) created/.exec(created.stdout)!;
    expect(created.stdout).toMatch(/^usa_/m);
    expect((await usersync('admin-token', 'list')).stdout).toMatch(/ci/);
    expect((await usersync('admin-token', 'revoke', id!)).code).toBe(0);
    expect((await usersync('admin-token', 'revoke', id!)).code).toBe(2);
  });

  it('records every change in the audit log with the operating-system user', async () => {
    const db = await openStore({ url: env.DATABASE_URL });
    const rows = await db.kysely.selectFrom('audit_log').select(['actor', 'action', 'target']).orderBy('seq').execute();
    await db.close();
    expect(rows.map((r) => r.action)).toEqual([
      'connector.create',
      'token.create',
      'token.create',
      'token.revoke',
      'connector.disable',
      'connector.delete',
      'connector.create',
      'token.create',
      'settings.update',
      'admin-token.create',
      'admin-token.revoke',
    ]);
    expect(rows.every((r) => r.actor === `cli:${os.userInfo().username}`)).toBe(true);
  });
});

describe('usersync CLI with a Microsoft Graph connector', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-cli-graph-'));
  // no USERSYNC_SECRET_KEY: the commands use the key file beside the database, created by the first that needs it
  const env = { ...process.env, DATABASE_URL: path.join(dir, 'cli.db'), USERSYNC_SECRET_KEY: '', LOG_LEVEL: 'warn' };
  let emu: GraphEmulator;
  let seeded: SeedResult;

  /** the CLI as a child process; `input` goes to its standard input */
  function usersync(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), ...args], { env, cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(input ?? '');
    });
  }

  // the child process trusts the emulator's self-signed certificate through the settings, not NODE_EXTRA_CA_CERTS
  const sourceSettings = (extra: Record<string, unknown> = {}) => emulatorSource(emu, extra);

  function writeJson(name: string, value: unknown): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(value));
    return file;
  }

  async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const db = await openStore({ url: env.DATABASE_URL });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  const directoryUsers = (connectorId: string) =>
    withDb((db) => db.kysely.selectFrom('directory_users').select(['source_id', 'username', 'active']).where('owner_connector_id', '=', connectorId).execute());

  beforeAll(async () => {
    emu = await startGraphEmulator();
    seeded = emu.state.seed({ users: 250, groups: 12, memberships: 600, randomSeed: 7 });
  });

  afterAll(async () => {
    await emu?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a Graph connector from a source file: validated, the secret sealed, never shown again', async () => {
    const res = await usersync(['connector', 'create', 'Contoso Graph', '--kind', 'graph', '--id', 'graph', '--source', writeJson('source.json', sourceSettings())]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^created connector graph \(graph\)$/m);
    expect(fs.existsSync(path.join(dir, 'secret.key'))).toBe(true);

    const stored = await withDb(async (db) => (await new ConnectorStore(db).getSource('graph'))!);
    expect(stored.clientSecret).toMatch(/^enc:v1:/);
    expect(JSON.stringify(stored)).not.toContain(emu.clientSecret);

    const shown = await usersync(['source', 'graph']);
    expect(shown.code).toBe(0);
    const source = JSON.parse(shown.stdout);
    expect(source).toMatchObject({ tenantId: emu.tenantId, clientId: emu.clientId, clientSecret: { set: true }, cloud: 'custom', graphUrl: emu.url });
    expect(shown.stdout).not.toContain(emu.clientSecret);
  });

  it('reads the source settings from standard input with --source -', async () => {
    const res = await usersync(['connector', 'create', 'From stdin', '--kind', 'graph', '--source', '-'], JSON.stringify(sourceSettings()));
    expect(res.code).toBe(0);
    const [, id] = /created connector (\S+) \(graph\)/.exec(res.stdout)!;
    expect((await usersync(['source', id!])).stdout).toContain(emu.tenantId);
    expect((await usersync(['connector', 'delete', id!])).code).toBe(0);
  });

  it('refuses bad source settings with exit code 1, naming every path, and creates nothing', async () => {
    const bad = writeJson('bad-source.json', { ...sourceSettings(), tenantId: 'not a tenant!', clientId: 'nope', concurrency: 99, colour: 'blue' });
    const res = await usersync(['connector', 'create', 'Bad', '--kind', 'graph', '--id', 'bad', '--source', bad]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('usersync: invalid source settings:');
    expect(res.stderr).toMatch(/^ {2}tenantId: must be the directory \(tenant\) id/m);
    expect(res.stderr).toMatch(/^ {2}clientId: must be the application \(client\) id/m);
    expect(res.stderr).toMatch(/^ {2}concurrency: must be a whole number from 1 to 16/m);
    expect(res.stderr).toMatch(/^ {2}colour: unknown setting 'colour'/m);
    expect(await withDb((db) => new ConnectorStore(db).get('bad'))).toBeUndefined();

    const notJson = path.join(dir, 'not.json');
    fs.writeFileSync(notJson, '{"tenantId": ');
    const broken = await usersync(['connector', 'create', 'Bad', '--kind', 'graph', '--id', 'bad', '--source', notJson]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`${notJson} is not JSON`);
    const missing = await usersync(['connector', 'create', 'Bad', '--kind', 'graph', '--id', 'bad']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('needs its source settings: --source');
    const exists = await usersync(['connector', 'create', 'Again', '--kind', 'graph', '--id', 'graph', '--source', writeJson('again.json', sourceSettings())]);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toContain("a connector 'graph' exists already");
  });

  it('syncs a Graph connector in the CLI process: progress on stderr, the outcome on stdout, the users in the directory', async () => {
    const res = await usersync(['sync', 'graph', '--full']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^run \S+: succeeded$/m);
    expect(res.stdout).toMatch(/created 250\b/);
    // stderr is a pipe here: plain progress lines, no bar
    expect(res.stderr).toMatch(/^run \S+ started \(full read\)$/m);
    expect(res.stderr).toMatch(/^users: \d+\/250$/m);
    expect(res.stderr).toMatch(/^reconciling: 0$/m);
    expect(res.stderr).not.toContain('\u001b[');

    const users = await directoryUsers('graph');
    expect(new Set(users.map((u) => u.source_id))).toEqual(new Set(seeded.userIds));
    const groups = await withDb((db) => db.kysely.selectFrom('directory_groups').select('name').where('owner_connector_id', '=', 'graph').execute());
    expect(groups).toHaveLength(12);
    const runId = /^run (\S+): succeeded$/m.exec(res.stdout)![1]!;
    const run = await withDb((db) => db.kysely.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow());
    expect(run).toMatchObject({ connector_id: 'graph', trigger: 'manual', status: 'succeeded' });
  });

  it('syncs what changed with --delta, and says when a run holds deactivations (exit code 2)', async () => {
    const added = emu.state.addUser({ userPrincipalName: 'newcomer@contoso.example', displayName: 'New Comer' });
    const delta = await usersync(['sync', 'graph', '--delta']);
    expect(delta.code, delta.stderr).toBe(0);
    expect(delta.stdout).toMatch(/succeeded/);
    expect((await directoryUsers('graph')).some((u) => u.source_id === added.id)).toBe(true);

    expect((await usersync(['settings', 'graph', '--set', writeJson('limit.json', { safety: { deletionLimit: { count: 2 } } })])).code).toBe(0);
    for (const id of seeded.userIds.slice(0, 5)) emu.state.hardDeleteUser(id);
    const held = await usersync(['sync', 'graph']);
    expect(held.code, held.stderr).toBe(2);
    const [, runId] = /^run (\S+): held$/m.exec(held.stdout)!;
    expect(held.stdout).toContain(`usersync approve ${runId}`);
    expect((await usersync(['approve', runId!])).code).toBe(0);
    const users = await directoryUsers('graph');
    expect(users.filter((u) => Number(u.active) === 0).map((u) => u.source_id)).toEqual(expect.arrayContaining(seeded.userIds.slice(0, 5)));
  });

  it('refuses to sync while another run of the connector holds its lease, naming that run (exit code 1)', async () => {
    const otherRun = 'run-elsewhere';
    await withDb(async (db) => {
      const at = new Date().toISOString();
      await db.kysely.insertInto('runs').values({ id: otherRun, connector_id: 'graph', trigger: 'schedule', status: 'running', phase: 'reading', progress: '{}', started_at: at, ended_at: null, last_activity_at: at, counters: '{}', peak_rss: 0, holder: 'another-instance', error: null }).execute();
      expect(await acquireLease(db, leaseName('graph'), 'another-instance', 60_000)).toBe(true);
    });
    try {
      const res = await usersync(['sync', 'graph']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`connector graph is already running: run ${otherRun}`);
    } finally {
      await withDb(async (db) => {
        await releaseLease(db, leaseName('graph'), 'another-instance');
        await db.kysely.updateTable('runs').set({ status: 'aborted', phase: '', ended_at: new Date().toISOString() }).where('id', '=', otherRun).execute();
      });
    }
  });

  it('syncs one user on demand and prints the result as JSON', async () => {
    const upn = emu.state.users.get(seeded.userIds[10]!)!.props.userPrincipalName as string;
    const res = await usersync(['sync-user', 'graph', upn]);
    expect(res.code, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout);
    expect(result).toMatchObject({ outcome: 'synced', user: { username: upn } });
    expect(Array.isArray(result.user.groups)).toBe(true);
    const missing = JSON.parse((await usersync(['sync-user', 'graph', 'nobody@contoso.example'])).stdout);
    expect(missing.outcome).toBe('not-found');
  });

  it('tests the connection: a wrong secret fails at the token with exit code 1; a secret left out of --set is kept', async () => {
    const good = await usersync(['test', 'graph']);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toMatch(/^✓ token: /m);
    expect(good.stdout).not.toContain('✗');

    const wrong = await usersync(['source', 'graph', '--set', writeJson('wrong.json', sourceSettings({ clientSecret: 'not-the-secret' }))]);
    expect(wrong.code, wrong.stderr).toBe(0);
    expect(JSON.parse(wrong.stdout).clientSecret).toEqual({ set: true });
    const failed = await usersync(['test', 'graph']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^✗ token: the token service refused the credentials: .*AADSTS7000215/m);
    expect(failed.stdout).toContain('connection not ok');

    // the whole settings again without the secret: the stored (wrong) one stays
    const { clientSecret: _omit, ...withoutSecret } = sourceSettings();
    expect((await usersync(['source', 'graph', '--set', writeJson('nosecret.json', withoutSecret)])).code).toBe(0);
    expect((await usersync(['test', 'graph'])).code).toBe(1);
    expect((await usersync(['source', 'graph', '--set', '-'], JSON.stringify(sourceSettings()))).code).toBe(0);
    expect((await usersync(['test', 'graph'])).code).toBe(0);
  });

  it('tests the connection: names the permissions the app lacks', async () => {
    emu.auth.permissions = ['User.Read.All'];
    try {
      const partial = await usersync(['test', 'graph']);
      expect(partial.code).toBe(1);
      expect(partial.stdout).toMatch(/^✗ .*permission missing: /m);
      expect(partial.stdout).toMatch(/^missing permissions: .*Group/m);
    } finally {
      emu.auth.permissions = DEFAULT_PERMISSIONS;
    }
  });

  it('refuses bad source settings on --set, and source commands on SCIM connectors', async () => {
    const res = await usersync(['source', 'graph', '--set', writeJson('bad-set.json', { ...sourceSettings(), scope: 'everything' })]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^ {2}scope: must be one of 'directory', 'application', 'groups'/m);
    expect((await usersync(['connector', 'create', 'Push', '--id', 'push'])).code).toBe(0);
    const scim = await usersync(['source', 'push']);
    expect(scim.code).toBe(1);
    expect(scim.stderr).toContain("connector 'push' is a scim connector");
    expect((await usersync(['test', 'push'])).code).toBe(1);
    // a SCIM connector's sync is still a full pass over its mirror
    const sync = await usersync(['sync', 'push']);
    expect(sync.code).toBe(0);
    expect(sync.stdout).toMatch(/^run \S+: succeeded$/m);
    expect((await usersync(['sync', 'push', '--delta'])).code).toBe(1);
    expect((await usersync(['sync', 'nope'])).code).toBe(1);
  });

  it('creates admin tokens with a scope', async () => {
    const res = await usersync(['admin-token', 'create', 'login hook', '--scope', 'sync-user']);
    expect(res.code).toBe(0);
    const [, id] = /admin token (\S+) created \(scope sync-user\)/.exec(res.stdout)!;
    expect(res.stdout).toMatch(/^usa_/m);
    const row = await withDb((db) => db.kysely.selectFrom('admin_tokens').select(['label', 'scope']).where('id', '=', id!).executeTakeFirstOrThrow());
    expect(row).toEqual({ label: 'login hook', scope: 'sync-user' });
    expect((await usersync(['admin-token', 'list'])).stdout).toMatch(/login hook\s+sync-user/);
    const bad = await usersync(['admin-token', 'create', 'x', '--scope', 'root']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("Allowed choices are admin, auditor, sync, sync-user");
  });
});
