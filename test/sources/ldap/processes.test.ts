// An LDAP run in a real service process killed with SIGKILL while it reads (SQLite): the run is marked
// aborted, nothing read so far removed anybody, and the next run converges on the directory as the server
// has it, changes made meanwhile included.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/store/db.ts';
import { openStore } from '../../../src/store/db.ts';
import type { ServiceProcess } from '../../support/process.ts';
import { processApi as api, startServiceProcess, until } from '../../support/process.ts';
import { usersyncCli } from '../../support/cli.ts';
import type { CutProxy } from '../../support/cut-proxy.ts';
import { startCutProxy } from '../../support/cut-proxy.ts';
import type { Slapd } from '../../support/slapd/index.ts';
import { startSlapd } from '../../support/slapd/index.ts';
import { generateDirectoryLdif, userUid } from '../../support/slapd/ldif.ts';
import { slapdSource } from './support.ts';

describe('an LDAP run killed in a service process (SQLite)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-ldap-kill-'));
  const env = { DATABASE_URL: path.join(dir, 'usersync.db'), USERSYNC_SECRET_KEY: '' };
  let ldap: Slapd;
  let slow: CutProxy;
  let proc: ServiceProcess | undefined;
  let token: string;
  let db: Db;

  beforeAll(async () => {
    ldap = await startSlapd({ ldifOffline: generateDirectoryLdif({ users: 2000, groups: 30, memberships: 6000, nestedGroups: 4, disabledUsers: 20, seed: 5 }) });
    // a slow network: the full read takes seconds, so the kill lands in the middle of it
    slow = await startCutProxy({ port: ldap.port }, Infinity, { delayMs: 15 });
    const out = await usersyncCli({ ...process.env, ...env }, 'admin-token', 'create', 'kill test');
    token = /^(usa_\S+)$/m.exec(out.stdout)![1]!;
    db = await openStore({ url: env.DATABASE_URL });
    proc = await startServiceProcess(env);
    const created = await api(proc, token, '/connectors', { method: 'POST', body: { id: 'l', name: 'LDAP', kind: 'ldap', source: slapdSource(ldap, { url: `ldap://127.0.0.1:${slow.port}`, pageSize: 50 }) } });
    if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  }, 60_000);

  afterAll(async () => {
    await proc?.kill('SIGKILL');
    await db?.close();
    await slow?.close();
    await ldap?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL while reading: the run is aborted, and the next run converges', { timeout: 90_000 }, async () => {
    const started = await api(proc!, token, '/connectors/l/sync?wait=false', { method: 'POST', body: { mode: 'full' } });
    expect(started.status).toBe(202);
    const runId = started.body.runId as string;
    await until('the run to read some users', 30_000, async () => {
      const r = (await api(proc!, token, `/runs/${runId}`)).body;
      return r.status === 'running' && r.progress?.phase === 'users' && r.progress.done >= 100 && r;
    });
    expect(await proc!.kill('SIGKILL')).toBeNull();

    // the directory changes while nobody reads it
    await ldap.modify(`dn: uid=${userUid(1)},${ldap.peopleDn}\nchangetype: modify\nreplace: mail\nmail: moved@example.test\n`);
    await ldap.add(`dn: uid=latecomer,${ldap.peopleDn}\nobjectClass: inetOrgPerson\nuid: latecomer\ncn: Late Comer\nsn: Comer\n`);
    await ldap.modify(`dn: uid=${userUid(2)},${ldap.peopleDn}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n`);

    proc = await startServiceProcess({ ...env, RUN_STALE_SECONDS: '3' });
    const aborted = await until('the killed run to be aborted', 20_000, async () => {
      const r = (await api(proc!, token, `/runs/${runId}`)).body;
      return r.status !== 'running' && r;
    });
    expect(aborted.status).toBe('aborted');
    // what the killed run read is real, but it removed nobody: removals come only at the end of a full read
    const deactivated = await db.kysely.selectFrom('directory_users').select('username').where('owner_connector_id', '=', 'l').where('active', '=', 0).execute();
    expect(deactivated.length).toBeLessThanOrEqual(20);

    const next = await until('a new run to be accepted', 15_000, async () => {
      const r = await api(proc!, token, '/connectors/l/sync', { method: 'POST', body: { mode: 'auto' } });
      if (r.status === 200) return r.body;
      expect([r.status, r.body.error?.code]).toEqual([409, 'busy']);
      return undefined;
    });
    expect(next.status, JSON.stringify(next)).toBe('succeeded');

    const client = ldap.client();
    await client.bind(ldap.adminDn, ldap.adminPassword);
    const { searchEntries } = await client.search(ldap.peopleDn, { filter: '(objectClass=inetOrgPerson)', attributes: ['uid', 'mail', 'pwdAccountLockedTime'], paged: { pageSize: 500 } });
    await client.unbind();
    // ldapts answers [] for an attribute the entry lacks
    const values = (v: unknown) => ([] as unknown[]).concat(v ?? []).map(String);
    const server = searchEntries.map((e) => `${String(e.uid)} ${values(e.mail)[0] ?? '-'} ${values(e.pwdAccountLockedTime).length ? 'inactive' : 'active'}`).sort();
    const users = await db.kysely.selectFrom('directory_users').select(['username', 'email', 'active']).where('owner_connector_id', '=', 'l').execute();
    expect(users.map((u) => `${u.username} ${u.email ?? '-'} ${Number(u.active) === 1 ? 'active' : 'inactive'}`).sort()).toEqual(server);
    expect(server).toContain('latecomer - active');
    expect(server).toContain(`${userUid(1)} moved@example.test active`);
  });
});
