// The usersync command line: connectors and tokens, as an administrator uses them.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectorStore, tokenMatches } from '../../src/store/connectors.ts';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import { openStore } from '../../src/store/db.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

describe('usersync CLI', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-cli-'));
  const env = { ...process.env, DATABASE_URL: path.join(dir, 'cli.db'), PUBLIC_BASE_URL: 'https://sync.example.com/' };

  async function usersync(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), ...args], { env, cwd: ROOT });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }

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
