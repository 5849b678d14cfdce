// The LDAP pull source end to end against a real slapd (Debian's), on both stores: the service over HTTP,
// the server read as the limited sync account with a size limit below the directory's size. What an
// administrator checks: who is in the directory, in which groups, active or not, after full reads and
// change rounds, when the server fails, and what the test actions say.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../support/store.ts';
import { generateDirectoryLdif, userUid, groupCn } from '../../support/slapd/ldif.ts';
import { startCutProxy } from '../../support/cut-proxy.ts';
import type { LdapRig } from './support.ts';
import { startLdapRig } from './support.ts';

const USERS = 300;
const GROUPS = 25;

async function changeFeedCount(rig: LdapRig): Promise<number> {
  const r = await rig.server.store.db.kysely.selectFrom('change_feed').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function byUsername(rig: LdapRig, connector: string) {
  return new Map([...(await rig.directoryUsers(connector)).values()].map((u) => [u.username, u]));
}

/** every user's groups as the directory has them, against what the server says (dynlist's nested memberOf) */
async function expectDirectoryMatchesServer(rig: LdapRig, connector: string): Promise<void> {
  const server = await rig.serverView();
  const users = await byUsername(rig, connector);
  // a user the server no longer has stays in the directory, deactivated (the default cleanup)
  for (const [username, u] of users) if (!server.has(username)) expect(u.active, `${username} is gone from the server`).toBe(false);
  for (const uid of server.keys()) expect(users.has(uid), uid).toBe(true);
  for (const [uid, s] of server) {
    expect(users.get(uid)!.active, uid).toBe(!s.disabled);
    expect(users.get(uid)!.email, uid).toBe(s.mail ?? null);
  }
  const rows = await rig.server.store.db.kysely
    .selectFrom('directory_memberships as m')
    .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
    .innerJoin('directory_users as u', 'u.id', 'm.user_id')
    .select(['u.username', 'g.name'])
    .where('u.owner_connector_id', '=', connector)
    .execute();
  const actual = new Map<string, string[]>();
  for (const r of rows) actual.set(r.username, [...(actual.get(r.username) ?? []), r.name]);
  for (const [uid, s] of server) expect((actual.get(uid) ?? []).sort(), uid).toEqual(s.groups);
}

describe.each(DIALECTS)('LDAP pull from slapd on %s', (dialect) => {
  let rig: LdapRig;

  beforeAll(async () => {
    rig = await startLdapRig(dialect, {
      sizeLimit: 50,
      tls: true,
      ldifOffline: generateDirectoryLdif({ users: USERS, groups: GROUPS, memberships: 1200, nestedGroups: 6, disabledUsers: 10, seed: 11 }),
    });
    // pages of 40 under a size limit of 50: an unpaged search would stop at 50 of 300
    await rig.createConnector('corp', { pageSize: 40 });
  }, 120_000);
  afterAll(async () => rig?.close());

  it('a full read brings every user into the directory, paging past the size limit, with nested groups flattened and locked accounts inactive', async () => {
    const out = await rig.sync('corp');
    expect(out.status).toBe('succeeded');
    await expectDirectoryMatchesServer(rig, 'corp');
    const users = await byUsername(rig, 'corp');
    expect(users.size).toBe(USERS);
    expect([...users.values()].filter((u) => !u.active)).toHaveLength(10);
    // some user is in a group only through nesting (the server's memberOf is nested; direct member lists are not)
    const run = await rig.api(`/runs/${out.runId}`);
    expect(run.body.counters.created).toBe(USERS);
    expect(run.body.log.map((l: { message: string }) => l.message).join('\n')).toMatch(/full read: \d+ objects read/);
  });

  it('a second full read with nothing changed writes nothing', async () => {
    const before = await changeFeedCount(rig);
    const out = await rig.sync('corp', 'full');
    expect(out.status).toBe('succeeded');
    expect(out.counters.mirrorCreated ?? 0).toBe(0);
    expect(out.counters.mirrorUpdated ?? 0).toBe(0);
    expect(out.counters.mirrorDeleted ?? 0).toBe(0);
    expect(await changeFeedCount(rig)).toBe(before);
  });

  it('a change round applies edits, a new user, a rename (same entryUUID), a deletion, a lock and a nested membership change', async () => {
    const l = rig.ldap;
    const before = await rig.directoryUsers('corp');
    const renamedId = [...before.entries()].find(([, u]) => u.username === userUid(5))![0];
    await l.modify(`dn: uid=${userUid(1)},${l.peopleDn}\nchangetype: modify\nreplace: mail\nmail: changed@example.test\n`);
    await l.add(`dn: uid=newcomer,${l.peopleDn}\nobjectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\nmail: newcomer@example.test\n`);
    // the last group contains no groups, and (nested) may sit inside others: its members reach the outer groups too
    await l.modify(`dn: cn=${groupCn(GROUPS - 1)},${l.groupsDn}\nchangetype: modify\nadd: member\nmember: uid=newcomer,${l.peopleDn}\n`);
    await l.modify(`dn: uid=${userUid(5)},${l.peopleDn}\nchangetype: modrdn\nnewrdn: uid=renamed5\ndeleteoldrdn: 1\n`);
    await l.delete(`uid=${userUid(7)},${l.peopleDn}`);
    // an entry that comes into the user base from elsewhere keeps its groups, which do not change
    await l.add(`dn: ou=contractors,${l.baseDn}\nobjectClass: organizationalUnit\nou: contractors\n`);
    await l.modify(`dn: uid=${userUid(9)},${l.peopleDn}\nchangetype: modrdn\nnewrdn: uid=${userUid(9)}\ndeleteoldrdn: 0\nnewsuperior: ou=contractors,${l.baseDn}\n`);
    await l.modify(`dn: uid=${userUid(8)},${l.peopleDn}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n`);
    // refint rewrites member values after a rename or delete asynchronously: wait until the server settled
    for (let i = 0; i < 50; i++) {
      const view = await rig.serverView();
      if (view.has('renamed5') && !view.has(userUid(7))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const prepared = await rig.sync('corp');
    expect(prepared.status).toBe('succeeded');
    expect((await byUsername(rig, 'corp')).get(userUid(9))!.active).toBe(false);
    await l.modify(`dn: uid=${userUid(9)},ou=contractors,${l.baseDn}\nchangetype: modrdn\nnewrdn: uid=${userUid(9)}\ndeleteoldrdn: 0\nnewsuperior: ${l.peopleDn}\n`);
    const out = await rig.sync('corp');
    expect(out.status).toBe('succeeded');
    const run = await rig.api(`/runs/${out.runId}`);
    expect(run.body.log.map((x: { message: string }) => x.message).join('\n')).toMatch(/delta round/);
    // in the mirror (the directory kept the deactivated user's groups anyway)
    const id9 = [...before.entries()].find(([, u]) => u.username === userUid(9))![0];
    const rows9 = await rig.server.store.db.kysely
      .selectFrom('mirror_members as m')
      .innerJoin('mirror_groups as g', (j) => j.onRef('g.id', '=', 'm.group_id').onRef('g.connector_id', '=', 'm.connector_id'))
      .select('g.resource')
      .where('m.connector_id', '=', 'corp')
      .where('m.member_id', '=', id9)
      .execute();
    const server9 = (await rig.serverView()).get(userUid(9))!.groups;
    expect(server9.length).toBeGreaterThan(0);
    expect(rows9.map((r) => String(JSON.parse(r.resource).displayName)).sort()).toEqual(server9);
    await expectDirectoryMatchesServer(rig, 'corp');
    const after = await rig.directoryUsers('corp');
    expect(after.get(renamedId)?.username).toBe('renamed5');
    const users = await byUsername(rig, 'corp');
    expect(users.get(userUid(1))!.email).toBe('changed@example.test');
    expect(users.get(userUid(8))!.active).toBe(false);
    // deleted on the server: out of every group in the mirror, deactivated in the directory (the default cleanup)
    expect(users.get(userUid(7))!.active).toBe(false);
    const deletedId = [...before.entries()].find(([, u]) => u.username === userUid(7))![0];
    const left = await rig.server.store.db.kysely.selectFrom('mirror_members').select('group_id').where('connector_id', '=', 'corp').where('member_id', '=', deletedId).execute();
    expect(left).toEqual([]);
    expect(await rig.groupsOf('newcomer')).toContain(groupCn(GROUPS - 1));
  });

  it('test user search shows the entry, the mirror record and the directory result under the current rules, and writes nothing', async () => {
    const feed = await changeFeedCount(rig);
    await rig.api('/connectors/corp/settings', { method: 'PATCH', body: { group: { rename: { pattern: 'group(.*)', replacement: 'jira-$1' }, alwaysGroups: ['everyone'] } } });
    const feedAfterSettings = await changeFeedCount(rig);
    const res = await rig.api('/connectors/corp/search-user', { method: 'POST', body: { username: userUid(2) } });
    expect(res.status).toBe(200);
    expect(res.body.found).toBe(true);
    expect(res.body.entry.dn).toBe(`uid=${userUid(2)},${rig.ldap.peopleDn}`);
    expect(res.body.entry.attributes.uid).toEqual([userUid(2)]);
    expect(res.body.entry.attributes.entryUUID[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.record.id).toBe(res.body.entry.attributes.entryUUID[0]);
    expect(res.body.record.doc.userName).toBe(userUid(2));
    const server = (await rig.serverView()).get(userUid(2))!;
    expect(res.body.groups.map((g: { name: string }) => g.name).sort()).toEqual(server.groups);
    expect(res.body.directory.user.username).toBe(userUid(2));
    const names = res.body.directory.groups.map((g: { name: string }) => g.name).sort();
    expect(names).toEqual([...server.groups.map((g) => g.replace(/^group/, 'jira-')), 'everyone'].sort());
    expect(res.body.directory.existing.sameRecord).toBe(true);
    expect(await changeFeedCount(rig)).toBe(feedAfterSettings);
    expect(feedAfterSettings).toBeGreaterThan(feed);

    const missing = await rig.api('/connectors/corp/search-user', { method: 'POST', body: { username: 'nobody*)(uid=*' } });
    expect(missing.status).toBe(200);
    expect(missing.body).toMatchObject({ found: false, groups: [] });
    await rig.api('/connectors/corp/settings', { method: 'PATCH', body: { group: { rename: null, alwaysGroups: [] } } });
  });

  it('answers several logins at once (OpenLDAP allows one paged search per connection)', async () => {
    const names = [10, 11, 12, 13, 14, 15].map(userUid);
    const answers = await Promise.all(names.map((username) => rig.api('/connectors/corp/search-user', { method: 'POST', body: { username } })));
    expect(answers.map((a) => [a.status, a.body.record?.doc.userName])).toEqual(names.map((n) => [200, n]));
    const server = await rig.serverView();
    for (const [i, a] of answers.entries()) expect(a.body.groups.map((g: { name: string }) => g.name).sort()).toEqual(server.get(names[i]!)!.groups);
  });

  it('syncs one user on demand, with its groups', async () => {
    await rig.ldap.modify(`dn: uid=${userUid(3)},${rig.ldap.peopleDn}\nchangetype: modify\nreplace: displayName\ndisplayName: On Demand\n`);
    const res = await rig.api('/connectors/corp/sync-user', { method: 'POST', body: { username: userUid(3) } });
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('synced');
    expect(res.body.user.displayName).toBe('On Demand');
    expect(res.body.user.groups).toEqual((await rig.serverView()).get(userUid(3))!.groups);
  });

  it('sync on login survives the server dropping its kept connection', async () => {
    const proxy = await startCutProxy({ port: rig.ldap.port }, Infinity);
    try {
      await rig.createConnector('via-proxy', { url: `ldap://127.0.0.1:${proxy.port}` });
      const first = await rig.api('/connectors/via-proxy/search-user', { method: 'POST', body: { username: userUid(3) } });
      expect(first.body.found).toBe(true);
      proxy.drop();
      const again = await rig.api('/connectors/via-proxy/search-user', { method: 'POST', body: { username: userUid(4) } });
      expect(again.status).toBe(200);
      expect(again.body.found).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('keeps the bind password sealed and shows it only as set', async () => {
    const shown = await rig.api('/connectors/corp/source');
    expect(shown.body.bindPassword).toEqual({ set: true });
    const row = await rig.server.store.db.kysely.selectFrom('connectors').select('source').where('id', '=', 'corp').executeTakeFirstOrThrow();
    expect(row.source).not.toContain(rig.ldap.bindPassword);
    expect(JSON.parse(row.source).bindPassword).toMatch(/^enc:/);
  });

  it('a server that goes away in the middle of a read fails the run and leaves the directory as it was', async () => {
    const proxy = await startCutProxy({ port: rig.ldap.port }, 40_000);
    try {
      await rig.ldap.modify(`dn: uid=${userUid(20)},${rig.ldap.peopleDn}\nchangetype: modify\nreplace: sn\nsn: Halfway\n`);
      const before = await rig.directoryUsers('corp');
      const feed = await changeFeedCount(rig);
      expect((await rig.api('/connectors/corp/source', { method: 'PATCH', body: { url: `ldap://127.0.0.1:${proxy.port}` } })).status).toBe(200);
      const out = await rig.sync('corp', 'full');
      expect(out.status).toBe('failed');
      expect(out.error).toMatch(/cannot reach|closed|connection/i);
      expect(proxy.passed()).toBeGreaterThan(40_000);
      const after = await rig.directoryUsers('corp');
      expect(after.size).toBe(before.size);
      expect([...after.values()].filter((u) => !u.active).length).toBe([...before.values()].filter((u) => !u.active).length);
      // nothing was removed: at most the records read before the cut were updated
      const removals = await rig.server.store.db.kysely.selectFrom('change_feed').select('op').where('seq', '>', feed).where('op', 'in', ['deactivate', 'delete', 'remove']).execute();
      expect(removals).toEqual([]);
    } finally {
      await proxy.close();
    }
    expect((await rig.api('/connectors/corp/source', { method: 'PATCH', body: { url: rig.ldap.url } })).status).toBe(200);
    const out = await rig.sync('corp');
    expect(out.status).toBe('succeeded');
    await expectDirectoryMatchesServer(rig, 'corp');
  });

  it('takes memberships from memberOf as well as from member', async () => {
    await rig.createConnector('by-memberof', { membership: 'memberOf' });
    const out = await rig.sync('by-memberof', 'full');
    expect(out.status).toBe('succeeded');
    // both connectors read the same server: their mirrors hold the same memberships (by entryUUID); the
    // directory keeps the users of the connector that had them first
    const members = async (connector: string) =>
      (await rig.server.store.db.kysely.selectFrom('mirror_members').select(['group_id', 'member_id']).where('connector_id', '=', connector).execute()).map((r) => `${r.group_id}|${r.member_id}`).sort();
    const viaMember = await members('corp');
    expect(viaMember.length).toBeGreaterThan(1000);
    expect(await members('by-memberof')).toEqual(viaMember);
  });
});

describe('LDAP connection problems, each named', () => {
  let rig: LdapRig;
  beforeAll(async () => {
    rig = await startLdapRig('sqlite', { tls: true, ldif: `dn: uid=solo,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nuid: solo\ncn: Solo\nsn: Solo\n` });
  }, 60_000);
  afterAll(async () => rig?.close());

  async function test(id: string, extra: Record<string, unknown>) {
    await rig.createConnector(id, extra);
    const res = await rig.api(`/connectors/${id}/test`, { method: 'POST' });
    expect(res.status).toBe(200);
    return res.body;
  }

  it('a working connection over StartTLS and over ldaps:// with the CA', async () => {
    const starttls = await test('starttls', { startTls: true, caCertificate: rig.ldap.caCert });
    expect(starttls.ok).toBe(true);
    expect(starttls.checks.map((c: { message: string }) => c.message).join('\n')).toMatch(/StartTLS[\s\S]*found 1 users/);
    const ldaps = await test('ldaps', { url: rig.ldap.ldapsUrl, caCertificate: rig.ldap.caCert });
    expect(ldaps.ok).toBe(true);
    expect((await rig.sync('ldaps')).status).toBe('succeeded');
    expect((await byUsername(rig, 'ldaps')).has('solo')).toBe(true);
  });

  it('a wrong password is "bind refused", and a run with it fails saying so', async () => {
    const r = await test('wrong-password', { bindPassword: 'not-the-password' });
    expect(r).toMatchObject({ ok: false, failure: 'bind' });
    expect(r.checks[0].message).toMatch(/refused the bind DN and password/);
    const out = await rig.sync('wrong-password');
    expect(out.status).toBe('failed');
    expect(out.error).toMatch(/invalid credentials/);
  });

  it('a closed port is "cannot reach"', async () => {
    const r = await test('unreachable', { url: 'ldap://127.0.0.1:1', connectTimeoutSeconds: 2 });
    expect(r).toMatchObject({ ok: false, failure: 'unreachable' });
    expect(r.checks[0].message).toMatch(/cannot reach ldap:\/\/127\.0\.0\.1:1/);
  });

  it('a server that accepts the connection but never answers is a timeout, after timeoutSeconds', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const r = await test('silent', { url: `ldap://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, timeoutSeconds: 1 });
      expect(r).toMatchObject({ ok: false, failure: 'timeout' });
      expect(r.checks[0].message).toMatch(/did not answer in time/);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      silent.close();
    }
  });

  it('fails over to the next server when the first cannot be reached, and names every server when none answers', async () => {
    const r = await test('failover', { url: 'ldap://127.0.0.1:1', failoverUrls: [rig.ldap.url], connectTimeoutSeconds: 2 });
    expect(r.ok).toBe(true);
    expect(r.checks[0].message).toBe(`connected to ${rig.ldap.url} without encryption: the bind password crosses the network in clear (use ldaps:// or StartTLS) (failover: ldap://127.0.0.1:1 did not answer)`);
    expect((await rig.sync('failover')).status).toBe('succeeded');
    const none = await test('no-server', { url: 'ldap://127.0.0.1:1', failoverUrls: ['ldap://127.0.0.1:2'], connectTimeoutSeconds: 2 });
    expect(none).toMatchObject({ ok: false, failure: 'unreachable' });
    expect(none.checks[0].message).toMatch(/^no server answered: ldap:\/\/127\.0\.0\.1:1, ldap:\/\/127\.0\.0\.1:2 \(last: cannot reach ldap:\/\/127\.0\.0\.1:2/);
    // a refused bind is the same on every server: no failover
    const refused = await test('refused-no-failover', { bindPassword: 'wrong', failoverUrls: ['ldap://127.0.0.1:2'] });
    expect(refused).toMatchObject({ ok: false, failure: 'bind' });
  });

  it('a certificate the settings do not trust is "TLS failed"', async () => {
    const r = await test('untrusted', { url: rig.ldap.ldapsUrl });
    expect(r).toMatchObject({ ok: false, failure: 'tls' });
    expect(r.checks[0].message).toMatch(/TLS failed/);
  });

  it('a base DN the server does not have is "base DN not found"', async () => {
    const r = await test('no-base', { userBaseDn: 'ou=nowhere,dc=example,dc=test' });
    expect(r).toMatchObject({ ok: false, failure: 'base-dn' });
    expect(r.checks.find((c: { name: string }) => c.name === 'user base DN').message).toMatch(/ou=nowhere,dc=example,dc=test was not found/);
  });

  it('settings are validated, every problem named with its path', async () => {
    const res = await rig.api('/connectors', {
      method: 'POST',
      body: { id: 'bad', name: 'bad', kind: 'ldap', source: { url: 'http://x', bindDn: 'nonsense', baseDn: 'not a dn', userFilter: '(uid=', attributes: { username: 'bad attr' }, pageSize: 0, colour: 'red' } },
    });
    expect(res.status).toBe(400);
    const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(['attributes.username', 'baseDn', 'bindDn', 'bindPassword', 'colour', 'pageSize', 'url', 'userFilter'].sort());
  });
});
