import fs from 'node:fs';
import { Client, InvalidCredentialsError, NoSuchObjectError, SizeLimitExceededError } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDirectoryLdif, startSlapd } from './slapd/index.ts';
import type { Slapd } from './slapd/index.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const asArray = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);

async function bound(s: Slapd, as: 'admin' | 'sync' = 'sync'): Promise<Client> {
  const c = s.client();
  if (as === 'admin') await c.bind(s.adminDn, s.adminPassword);
  else await c.bind(s.bindDn, s.bindPassword);
  return c;
}

const NESTED = (base: string): string => `
dn: uid=alice,ou=people,${base}
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
givenName: Alice
mail: alice@example.test

dn: uid=bob,ou=people,${base}
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@example.test

dn: cn=devs,ou=groups,${base}
objectClass: groupOfNames
cn: devs
member: uid=alice,ou=people,${base}

dn: cn=engineering,ou=groups,${base}
objectClass: groupOfNames
cn: engineering
member: cn=devs,ou=groups,${base}
member: uid=bob,ou=people,${base}

dn: cn=everyone,ou=groups,${base}
objectClass: groupOfNames
cn: everyone
member: cn=engineering,ou=groups,${base}
`;

describe('startSlapd', () => {
  let s: Slapd;
  let startMs = 0;

  beforeAll(async () => {
    const users = generateDirectoryLdif({ users: 60, groups: 0, memberships: 0, nestedGroups: 0, seed: 7 });
    const t0 = performance.now();
    s = await startSlapd({ sizeLimit: 25, ldifOffline: users, ldif: NESTED('dc=example,dc=test') });
    startMs = performance.now() - t0;
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('starts quickly on a random port and binds the admin; a wrong password is invalidCredentials', async () => {
    expect(startMs).toBeLessThan(3_000);
    expect(s.url).toMatch(/^ldap:\/\/127\.0\.0\.1:\d+$/);
    const c = await bound(s, 'admin');
    expect(await c.exop('1.3.6.1.4.1.4203.1.11.3')).toMatchObject({ value: `dn:${s.adminDn}` });
    await c.unbind();
    const wrong = s.client();
    await expect(wrong.bind(s.adminDn, 'not-the-password')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await expect(wrong.bind(s.bindDn, 'not-the-password')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await wrong.unbind();
  });

  it('pages past the size limit, while an unpaged search fails with sizeLimitExceeded', async () => {
    const c = await bound(s);
    const opts = { scope: 'one' as const, filter: '(objectClass=inetOrgPerson)', attributes: ['uid'] };
    const paged = await c.search(s.peopleDn, { ...opts, paged: { pageSize: 10 } });
    expect(paged.searchEntries).toHaveLength(62);
    await expect(c.search(s.peopleDn, opts)).rejects.toBeInstanceOf(SizeLimitExceededError);
    // under the limit, an unpaged search is fine
    expect((await c.search(s.peopleDn, { ...opts, filter: '(uid=user00000*)' })).searchEntries).toHaveLength(10);
    await c.unbind();
    // the rootdn is never limited
    const admin = await bound(s, 'admin');
    expect((await admin.search(s.peopleDn, opts)).searchEntries).toHaveLength(62);
    await admin.unbind();
  });

  it('returns entryUUID and modifyTimestamp, and entryUUID survives a rename (refint updates member)', async () => {
    const c = await bound(s, 'admin');
    const read = async (dn: string) =>
      (await c.search(dn, { scope: 'base', attributes: ['entryUUID', 'modifyTimestamp', 'uid'] })).searchEntries[0]!;
    const before = await read(`uid=alice,${s.peopleDn}`);
    expect(before.entryUUID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(before.modifyTimestamp).toMatch(/^\d{14}Z$/);

    await c.modifyDN(`uid=alice,${s.peopleDn}`, `uid=alice2,${s.peopleDn}`);
    const after = await read(`uid=alice2,${s.peopleDn}`);
    expect(after.entryUUID).toBe(before.entryUUID);
    expect(after.uid).toBe('alice2');
    await expect(read(`uid=alice,${s.peopleDn}`)).rejects.toBeInstanceOf(NoSuchObjectError);
    // refint rewrites member values in a background thread, just after the rename answers
    const members = async () =>
      asArray((await c.search(`cn=devs,${s.groupsDn}`, { scope: 'base', attributes: ['member'] })).searchEntries[0]!.member);
    await expect.poll(members).toEqual([`uid=alice2,${s.peopleDn}`]);

    await c.modifyDN(`uid=alice2,${s.peopleDn}`, `uid=alice,${s.peopleDn}`);
    expect((await read(`uid=alice,${s.peopleDn}`)).entryUUID).toBe(before.entryUUID);
    await expect.poll(members).toEqual([`uid=alice,${s.peopleDn}`]);
    await c.unbind();
  });

  it('dynlist gives users their nested memberOf, and memberOf filters work', async () => {
    const c = await bound(s);
    const { searchEntries } = await c.search(s.peopleDn, { filter: '(|(uid=alice)(uid=bob))', attributes: ['uid', 'memberOf'] });
    const byUid = Object.fromEntries(searchEntries.map((e) => [String(e.uid), asArray(e.memberOf).sort()]));
    const g = (cn: string): string => `cn=${cn},${s.groupsDn}`;
    expect(byUid.alice).toEqual([g('devs'), g('engineering'), g('everyone')]);
    expect(byUid.bob).toEqual([g('engineering'), g('everyone')]);

    const inEveryone = await c.search(s.peopleDn, { filter: `(memberOf=${g('everyone')})`, attributes: ['uid'] });
    expect(inEveryone.searchEntries.map((e) => e.uid).sort()).toEqual(['alice', 'bob']);
    // groups carry memberOf too; their member values stay as written (direct members only)
    const devs = await c.search(g('devs'), { scope: 'base', attributes: ['member', 'memberOf'] });
    expect(asArray(devs.searchEntries[0]!.memberOf).sort()).toEqual([g('engineering'), g('everyone')]);
    expect(asArray(devs.searchEntries[0]!.member)).toEqual([`uid=alice,${s.peopleDn}`]);
    await c.unbind();
  });

  it('adds, modifies and deletes through the LDIF helpers', async () => {
    const dn = `uid=carol,${s.peopleDn}`;
    await s.add(`dn: ${dn}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: Example\n`);
    await s.modify(`dn: ${dn}\nchangetype: modify\nreplace: mail\nmail: carol@example.test\n-\nadd: employeeNumber\nemployeeNumber: 42\n`);
    await s.modify(`dn: cn=devs,${s.groupsDn}\nchangetype: modify\nadd: member\nmember: ${dn}\n`);
    const c = await bound(s);
    const e = (await c.search(dn, { scope: 'base', attributes: ['mail', 'employeeNumber', 'memberOf'] })).searchEntries[0]!;
    expect(e).toMatchObject({ mail: 'carol@example.test', employeeNumber: '42' });
    expect(asArray(e.memberOf)).toContain(`cn=everyone,${s.groupsDn}`);

    await s.delete(dn);
    await expect(c.search(dn, { scope: 'base' })).rejects.toBeInstanceOf(NoSuchObjectError);
    // refint removes the deleted user from the group (in the background)
    await expect
      .poll(async () => asArray((await c.search(`cn=devs,${s.groupsDn}`, { scope: 'base', attributes: ['member'] })).searchEntries[0]!.member))
      .toEqual([`uid=alice,${s.peopleDn}`]);
    await c.unbind();
    await expect(s.add(`dn: uid=alice,${s.peopleDn}\nobjectClass: inetOrgPerson\nuid: alice\ncn: A\nsn: A\n`)).rejects.toThrow(
      /Already exists/i,
    );
  });

  it('ppolicy: pwdAccountLockedTime refuses the bind of a user with a password', async () => {
    const dn = `uid=locked,${s.peopleDn}`;
    await s.add(`dn: ${dn}\nobjectClass: inetOrgPerson\nuid: locked\ncn: L\nsn: L\nuserPassword: pw-locked\n`);
    const c = s.client();
    await c.bind(dn, 'pw-locked');
    await s.modify(`dn: ${dn}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n`);
    await expect(c.bind(dn, 'pw-locked')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await c.unbind();
    await s.delete(dn);
  });
});

describe('several servers and their lifecycle', () => {
  it('runs two servers at once on different ports with their own data, and stop() leaves nothing behind', async () => {
    const [a, b] = await Promise.all([startSlapd({ baseDn: 'dc=a,dc=test' }), startSlapd({ baseDn: 'o=b' })]);
    try {
      expect(a.port).not.toBe(b.port);
      await a.add(`dn: uid=only-a,${a.peopleDn}\nobjectClass: inetOrgPerson\nuid: only-a\ncn: A\nsn: A\n`);
      const cb = await bound(b, 'admin');
      const inB = await cb.search(b.baseDn, { filter: '(uid=only-a)' });
      expect(inB.searchEntries).toHaveLength(0);
      await cb.unbind();
      const ca = await bound(a);
      expect((await ca.search(a.baseDn, { filter: '(uid=only-a)' })).searchEntries).toHaveLength(1);
      await ca.unbind();
      expect(a.sizeLimit).toBe(500);
    } finally {
      await a.stop();
      b.kill();
    }
    expect(alive(a.pid)).toBe(false);
    expect(fs.existsSync(a.dataDir)).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(alive(b.pid)).toBe(false);
    expect(fs.existsSync(b.dataDir)).toBe(false);
    const late = new Client({ url: a.url, connectTimeout: 500 });
    await expect(late.bind(a.adminDn, a.adminPassword)).rejects.toThrow();
    await late.unbind().catch(() => {});
  });

  it('serves StartTLS and ldaps with a generated certificate', async () => {
    const s = await startSlapd({ tls: true });
    try {
      expect(s.ldapsUrl).toMatch(/^ldaps:\/\/127\.0\.0\.1:\d+$/);
      expect(s.caCert).toContain('BEGIN CERTIFICATE');
      const ldaps = s.client({ ldaps: true });
      await ldaps.bind(s.bindDn, s.bindPassword);
      await ldaps.unbind();
      const plain = s.client();
      await plain.startTLS({ ca: [s.caCert!] });
      await plain.bind(s.bindDn, s.bindPassword);
      await plain.unbind();
    } finally {
      await s.stop();
    }
  });
});

describe('generateDirectoryLdif', () => {
  it('is deterministic and shaped as asked', () => {
    const opts = { users: 200, groups: 20, memberships: 600, nestedGroups: 15, disabledUsers: 10, seed: 3 };
    const ldif = generateDirectoryLdif(opts);
    expect(generateDirectoryLdif(opts)).toBe(ldif);
    expect(generateDirectoryLdif({ ...opts, seed: 4 })).not.toBe(ldif);
    expect(ldif.match(/^objectClass: inetOrgPerson$/gm)).toHaveLength(200);
    expect(ldif.match(/^objectClass: groupOfNames$/gm)).toHaveLength(20);
    expect(ldif.match(/^pwdAccountLockedTime: /gm)).toHaveLength(10);
    const userMembers = ldif.match(/^member: uid=/gm)!.length;
    expect(userMembers).toBeGreaterThan(450); // duplicates are skipped
    expect(userMembers).toBeLessThanOrEqual(600);
    expect(ldif.match(/^member: cn=/gm)!.length).toBeGreaterThan(5);
  });

  it('makes 50,000 users and 5,000 groups quickly, and slapadd loads them before start', async () => {
    let t0 = performance.now();
    const ldif = generateDirectoryLdif({ users: 50_000, groups: 5_000, memberships: 150_000, nestedGroups: 2_000, disabledUsers: 500, seed: 1 });
    const genMs = performance.now() - t0;
    expect(genMs).toBeLessThan(5_000);

    t0 = performance.now();
    const s = await startSlapd({ ldifOffline: ldif });
    const startMs = performance.now() - t0;
    try {
      const c = await bound(s);
      t0 = performance.now();
      const users = await c.search(s.peopleDn, { scope: 'one', filter: '(objectClass=inetOrgPerson)', attributes: ['uid', 'entryUUID'], paged: { pageSize: 1000 } });
      const searchMs = performance.now() - t0;
      expect(users.searchEntries).toHaveLength(50_000);
      const groups = await c.search(s.groupsDn, { scope: 'one', filter: '(objectClass=groupOfNames)', attributes: ['cn'], paged: { pageSize: 1000 } });
      expect(groups.searchEntries).toHaveLength(5_000);
      const locked = await c.search(s.peopleDn, { filter: '(pwdAccountLockedTime=*)', attributes: ['uid'], paged: { pageSize: 1000 } });
      expect(locked.searchEntries).toHaveLength(500);
      await c.unbind();
      console.log(`generate ${genMs.toFixed(0)} ms, slapadd+start ${startMs.toFixed(0)} ms, paged read of 50,000 users ${searchMs.toFixed(0)} ms`);
    } finally {
      await s.stop();
    }
  }, 120_000);
});
