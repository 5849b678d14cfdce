// The command line with an LDAP connector against a real slapd: created from a settings file (the bind
// password sealed), tested, synced, and one user looked up with the test user search.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.ts';
import type { Slapd } from '../support/slapd/index.ts';
import { startSlapd } from '../support/slapd/index.ts';
import { generateDirectoryLdif, userUid } from '../support/slapd/ldif.ts';
import { slapdSource } from '../sources/ldap/support.ts';
import { usersyncCli } from '../support/cli.ts';


describe('usersync CLI with an LDAP connector', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-cli-ldap-'));
  const env = { ...process.env, DATABASE_URL: path.join(dir, 'cli.db'), USERSYNC_SECRET_KEY: '', LOG_LEVEL: 'warn' };
  let ldap: Slapd;

  const usersync = (...args: string[]) => usersyncCli(env, ...args);

  beforeAll(async () => {
    ldap = await startSlapd({ ldifOffline: generateDirectoryLdif({ users: 40, groups: 5, memberships: 80, nestedGroups: 1, seed: 3 }) });
  }, 60_000);
  afterAll(async () => {
    await ldap?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates, tests and syncs an LDAP connector, then explains one user without changing anything', async () => {
    const file = path.join(dir, 'ldap.json');
    fs.writeFileSync(file, JSON.stringify(slapdSource(ldap)));
    const created = await usersync('connector', 'create', 'Corporate LDAP', '--kind', 'ldap', '--id', 'corp', '--source', file);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created connector corp \(ldap\)$/m);
    const shown = await usersync('source', 'corp');
    expect(JSON.parse(shown.stdout).bindPassword).toEqual({ set: true });
    expect(shown.stdout).not.toContain(ldap.bindPassword);

    const tested = await usersync('test', 'corp');
    expect(tested.code, tested.stdout).toBe(0);
    expect(tested.stdout).toMatch(/✓ users: found 40 users/);

    const synced = await usersync('sync', 'corp');
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toMatch(/created 40\b/);

    const db = await openStore({ url: env.DATABASE_URL });
    const feedBefore = await db.kysely.selectFrom('change_feed').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    await db.close();
    const found = await usersync('search-user', 'corp', userUid(4));
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain(`entry uid=${userUid(4)},${ldap.peopleDn}`);
    expect(found.stdout).toMatch(/^ {2}entryUUID: [0-9a-f-]{36}$/m);
    expect(found.stdout).toMatch(new RegExp(`^directory user: ${userUid(4)} <${userUid(4)}@example.test> .* active \\(exists, this record\\)$`, 'm'));
    expect(found.stdout).toMatch(/^directory groups \(\d+\):$/m);
    const json = JSON.parse((await usersync('search-user', 'corp', userUid(4), '--json')).stdout);
    expect(json.record.doc.userName).toBe(userUid(4));

    const missing = await usersync('search-user', 'corp', 'nobody');
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/no user 'nobody' at the provider/);
    const after = await openStore({ url: env.DATABASE_URL });
    const feedAfter = await after.kysely.selectFrom('change_feed').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const audit = await after.kysely.selectFrom('audit_log').select(['action', 'target']).where('action', '=', 'connector.search-user').execute();
    await after.close();
    expect(Number(feedAfter.n)).toBe(Number(feedBefore.n));
    expect(audit).toHaveLength(3);
  });
});
