// `usersync key rotate`: every stored secret sealed again with a new key, the old key retired from the key
// file only once nothing uses it, a running service (a box following the key file) keeping up by itself,
// and keys from USERSYNC_SECRET_KEY handled without writing anything the operator owns.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import { SecretBox, loadSecretKeys, secretKeyPath } from '../../src/store/secrets.ts';
import { usersyncCli } from '../support/cli.ts';

const PASSWORDS = { a: 'first-bind-password', b: 'second-bind-password' };

function ldapSource(password: string) {
  return { preset: 'openldap', url: 'ldap://127.0.0.1:1', bindDn: 'cn=sync,dc=example,dc=test', bindPassword: password, baseDn: 'dc=example,dc=test', schedule: { kind: 'off' } };
}

async function storedPasswords(dbUrl: string): Promise<Record<string, string>> {
  const db = await openStore({ url: dbUrl });
  try {
    const store = new ConnectorStore(db);
    return Object.fromEntries(await Promise.all(['a', 'b'].map(async (id) => [id, String((await store.getSource(id))!.bindPassword)])));
  } finally {
    await db.close();
  }
}

describe('usersync key rotate', { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  async function setUp(env: Record<string, string>) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-keys-'));
    dirs.push(dir);
    const full = { ...process.env, DATABASE_URL: path.join(dir, 'usersync.db'), LOG_LEVEL: 'warn', USERSYNC_SECRET_KEY: '', ...env };
    for (const [id, password] of Object.entries(PASSWORDS)) {
      const file = path.join(dir, `${id}.json`);
      fs.writeFileSync(file, JSON.stringify(ldapSource(password)));
      const res = await usersyncCli(full, 'connector', 'create', `LDAP ${id}`, '--kind', 'ldap', '--id', id, '--source', file);
      expect(res.code, res.stderr).toBe(0);
    }
    return { dir, env: full };
  }

  it('with the key file: seals everything with a new key, retires the old one, and a running service follows', async () => {
    const { dir, env } = await setUp({});
    const running = loadSecretKeys({ env: {}, dataDir: dir, create: false }); // as the service holds it
    const oldKey = running.currentKeyId;
    const before = await storedPasswords(env.DATABASE_URL!);
    expect(Object.values(before).map((v) => SecretBox.sealedWith(v))).toEqual([oldKey, oldKey]);

    const res = await usersyncCli(env, 'key', 'rotate');
    expect(res.code, res.stderr).toBe(0);
    const box = loadSecretKeys({ env: {}, dataDir: dir, create: false });
    expect(box.keyIds).toEqual([box.currentKeyId]);
    expect(box.currentKeyId).not.toBe(oldKey);
    expect(res.stdout).toContain(`sealed 2 stored secrets again with key ${box.currentKeyId}`);
    expect(res.stdout).toContain(`the key file now holds only the new key (${oldKey} retired)`);
    expect(fs.statSync(secretKeyPath(dir)).mode & 0o777).toBe(0o600);

    const after = await storedPasswords(env.DATABASE_URL!);
    for (const id of ['a', 'b'] as const) {
      expect(SecretBox.sealedWith(after[id]!)).toBe(box.currentKeyId);
      expect(box.decrypt(after[id]!, `connector:${id}:bindPassword`)).toBe(PASSWORDS[id]);
      // the service started before the rotation opens the new seals and seals with the new key
      expect(running.decrypt(after[id]!, `connector:${id}:bindPassword`)).toBe(PASSWORDS[id]);
    }
    expect(SecretBox.sealedWith(running.encrypt('x', 'connector:a:bindPassword'))).toBe(box.currentKeyId);

    const db = await openStore({ url: env.DATABASE_URL! });
    const audit = await db.kysely.selectFrom('audit_log').select(['action', 'target', 'details']).where('action', '=', 'key.rotate').execute();
    await db.close();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.details)).toMatchObject({ resealed: 2, source: 'key file', retired: [oldKey] });
    expect(audit[0]!.details).not.toContain(PASSWORDS.a);
  });

  it('--keep-old keeps the old key in the file', async () => {
    const { dir, env } = await setUp({});
    const oldKey = loadSecretKeys({ env: {}, dataDir: dir, create: false }).currentKeyId;
    const res = await usersyncCli(env, 'key', 'rotate', '--keep-old');
    expect(res.code, res.stderr).toBe(0);
    const box = loadSecretKeys({ env: {}, dataDir: dir, create: false });
    expect(box.keyIds).toEqual([box.currentKeyId, oldKey]);
    expect(res.stdout).toContain(`the old key ${oldKey} stay in the key file (--keep-old)`);
  });

  it('with USERSYNC_SECRET_KEY: seals with its first key and says which keys may go; one key alone is explained', async () => {
    const k1 = randomBytes(32).toString('base64');
    const k2 = randomBytes(32).toString('base64');
    const { dir, env } = await setUp({ USERSYNC_SECRET_KEY: k1 });
    const one = await usersyncCli(env, 'key', 'rotate');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain('sealed 0 stored secrets again');
    expect(one.stdout).toContain('holds one key: put a new key first');

    const both = { ...env, USERSYNC_SECRET_KEY: `${k2},${k1}` };
    const res = await usersyncCli(both, 'key', 'rotate');
    expect(res.code, res.stderr).toBe(0);
    const box = loadSecretKeys({ env: both, dataDir: dir, create: false });
    const [newId, oldId] = box.keyIds;
    expect(res.stdout).toContain(`sealed 2 stored secrets again with key ${newId}`);
    expect(res.stdout).toContain(`no stored secret uses ${oldId} any more: remove it from USERSYNC_SECRET_KEY`);
    const after = await storedPasswords(env.DATABASE_URL!);
    expect(new SecretBox([Buffer.from(k2, 'base64')]).decrypt(after.b!, 'connector:b:bindPassword')).toBe(PASSWORDS.b);
    expect(fs.existsSync(secretKeyPath(dir))).toBe(false);
  });
});
