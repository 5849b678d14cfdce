// The first administrator, as someone installing usersync meets it: a password printed once at the first
// start (to be changed at the first login), or the one given in the environment; and the command line
// way back in when it is lost.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServiceProcess } from '../support/process.ts';
import { startServiceProcess } from '../support/process.ts';
import { usersyncCli } from '../support/cli.ts';

async function login(proc: ServiceProcess, username: string, password: string) {
  const res = await fetch(`${proc.origin}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, body: (await res.json()) as any };
}

describe('the first administrator', () => {
  const dirs: string[] = [];
  let proc: ServiceProcess | undefined;
  afterEach(async () => {
    await proc?.kill('SIGTERM');
    proc = undefined;
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const env = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-first-'));
    dirs.push(dir);
    return { DATABASE_URL: path.join(dir, 'usersync.db') };
  };

  it('is created at the first start with a password printed once, which must be changed at the first login', async () => {
    const e = env();
    proc = await startServiceProcess(e);
    const [, password] = await proc.waitFor(/Password: (\S+)/);
    expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(proc.output()).toContain('created the administrator account "admin"');
    const first = await login(proc, 'admin', password!);
    expect(first.status).toBe(200);
    expect(first.body.account).toMatchObject({ username: 'admin', role: 'administrator', mustChangePassword: true });
    await proc.kill('SIGTERM');

    // a second start makes no other account and prints no password
    proc = await startServiceProcess(e);
    await new Promise((r) => setTimeout(r, 300));
    expect(proc.output()).not.toMatch(/Password:/);
    await proc.kill('SIGTERM');
    proc = undefined;

    // lost: the command line gives a new one (and unlocks)
    const reset = await usersyncCli({ ...process.env, ...e }, 'account', 'reset-password', 'admin');
    expect(reset.code).toBe(0);
    const fresh = /shown only now\): (\S+)/.exec(reset.stdout)![1]!;
    proc = await startServiceProcess(e);
    expect((await login(proc, 'admin', password!)).status).toBe(401);
    expect((await login(proc, 'admin', fresh)).body.account.mustChangePassword).toBe(true);
    const list = await usersyncCli({ ...process.env, ...e }, 'account', 'list');
    expect(list.stdout).toMatch(/admin\s+administrator/);
  }, 90_000); // three service starts and two commands: slow on a loaded machine

  it('takes its name and password from the environment when given, without asking to change it', async () => {
    proc = await startServiceProcess({ ...env(), USERSYNC_ADMIN_USERNAME: 'root-admin', USERSYNC_ADMIN_PASSWORD: 'a password from the vault' });
    await proc.waitFor(/created the administrator account "root-admin"/);
    expect(proc.output()).toContain('USERSYNC_ADMIN_PASSWORD');
    expect(proc.output()).not.toContain('a password from the vault');
    const res = await login(proc, 'root-admin', 'a password from the vault');
    expect([res.status, res.body.account.mustChangePassword]).toEqual([200, false]);
  });

  it('refuses to start with a weak password in the environment, saying why', async () => {
    await expect(startServiceProcess({ ...env(), USERSYNC_ADMIN_PASSWORD: 'short' })).rejects.toThrow(/USERSYNC_ADMIN_PASSWORD.*at least 12 characters/);
  });
});
