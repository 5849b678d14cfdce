// The Samba AD DC harness, and the Active Directory behaviour the LDAP source relies on, read with ldapts.
// Needs root (Samba binds 389/636); installs Samba on first use. See test/support/samba/README.md.

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AndFilter, Attribute, Change, Client, Control, EqualityFilter, InvalidCredentialsError, NoSuchObjectError } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DC_HOSTNAME,
  DC_LOCK,
  DC_STATE,
  UAC_DISABLED,
  UAC_ENABLED,
  adUserAttributes,
  generateAdDirectory,
  guidToFilterValue,
  guidToString,
  startSambaDc,
  unicodePwd,
} from './samba/index.ts';
import type { SambaDc } from './samba/index.ts';

const SHOW_DELETED = '1.2.840.113556.1.4.417';
const IN_CHAIN = '1.2.840.113556.1.4.1941';
const BIT_AND = '1.2.840.113556.1.4.803';
const USERS = '(&(objectCategory=person)(objectClass=user))';

const asArray = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
const isRoot = process.getuid?.() === 0;

function deadPid(): number {
  return spawnSync('true').pid!;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('generateAdDirectory', () => {
  it('is deterministic, with disabled users, a large group and nested groups', () => {
    const opts = { users: 400, groups: 30, seed: 1 };
    const d = generateAdDirectory(opts);
    expect(JSON.stringify(generateAdDirectory(opts).groups)).toBe(JSON.stringify(d.groups));
    expect(JSON.stringify(generateAdDirectory({ ...opts, seed: 2 }).users)).not.toBe(JSON.stringify(d.users));
    expect(d.users).toHaveLength(400);
    expect(d.users.filter((u) => u.disabled)).toHaveLength(40);
    expect(d.users[0]).toMatchObject({ sAMAccountName: 'user00001', userPrincipalName: 'user00001@example.test', disabled: false });
    expect(d.users.every((u) => u.userAccountControl === (u.disabled ? UAC_DISABLED : UAC_ENABLED))).toBe(true);
    expect(d.group(d.largeGroup).memberUsers).toHaveLength(350);
    expect(d.group('group0002').memberGroups).toContain('group0003');
    expect(d.group('group0003').memberGroups).toContain('group0004');
    const chain = d.transitiveMembers('group0002');
    for (const u of [...d.group('group0003').memberUsers, ...d.group('group0004').memberUsers]) expect(chain).toContain(u);
  });
});

describe.runIf(isRoot)('startSambaDc', () => {
  let dc: SambaDc;
  let admin: Client;
  let sync: Client;
  let staleDir: string | undefined;
  let staleLockWritten = false;

  beforeAll(async () => {
    // a lock and a state file left by a crashed run: startSambaDc takes them over and removes the directory
    try {
      fs.writeFileSync(DC_LOCK, JSON.stringify({ pid: deadPid() }), { flag: 'wx' });
      staleLockWritten = true;
      staleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-samba-dc-'));
      fs.writeFileSync(DC_STATE, JSON.stringify({ owner: deadPid(), sambaPid: deadPid(), dir: staleDir }));
    } catch {
      // another test run holds the DC right now: we wait for it instead
    }
    dc = await startSambaDc();
    console.log('samba DC timings (ms):', JSON.stringify(dc.timings, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v)));
    admin = await dc.client();
    sync = await dc.client({ as: 'sync' });
  }, 420_000);

  afterAll(async () => {
    await admin?.unbind().catch(() => {});
    await sync?.unbind().catch(() => {});
    await dc?.stop();
  }, 60_000);

  it('starts within the time budget, took over a stale lock, and binds the admin and the sync account', async () => {
    expect(dc.timings.totalMs - dc.timings.lockWaitMs).toBeLessThan(dc.timings.fromTemplate ? 30_000 : 120_000);
    if (staleLockWritten) expect(fs.existsSync(staleDir!)).toBe(false);
    expect(JSON.parse(fs.readFileSync(DC_LOCK, 'utf8'))).toMatchObject({ pid: process.pid });
    expect(dc.url).toBe('ldap://127.0.0.1:389');
    // the Administrator binds by DN and by UPN; a wrong password is invalidCredentials
    for (const dn of [dc.adminDn, dc.adminUpn]) {
      const c = new Client({ url: dc.url });
      await c.bind(dn, dc.adminPassword);
      await c.unbind();
    }
    const wrong = new Client({ url: dc.url });
    await expect(wrong.bind(dc.bindDn, 'not-the-password')).rejects.toBeInstanceOf(InvalidCredentialsError);
    await wrong.unbind();
    // an ordinary user: only the primary group Domain Users (RID 513), which memberOf leaves out
    const me = (await sync.search(dc.bindDn, { scope: 'base', attributes: ['memberOf', 'primaryGroupID', 'userAccountControl'] })).searchEntries[0]!;
    expect(me).toMatchObject({ memberOf: [], primaryGroupID: '513', userAccountControl: '66048' });
    // Samba has no WhoAmI extended operation
    await expect(sync.exop('1.3.6.1.4.1.4203.1.11.3')).rejects.toThrow(/not supported/);
  });

  it('serves ldaps with the generated CA, for the host name dc1.example.test (no IP in the certificate)', async () => {
    const cert = new crypto.X509Certificate(dc.caCert);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=DC1.example.test');
    const c = await dc.client({ as: 'sync', ldaps: true });
    await c.unbind();
    const byIp = new Client({ url: dc.ldapsUrl, tlsOptions: { ca: [dc.caCert] } });
    await expect(byIp.bind(dc.bindDn, dc.bindPassword)).rejects.toThrow(/IP: 127\.0\.0\.1 is not in the cert's list/);
    await byIp.unbind().catch(() => {});
    const byName = new Client({ url: dc.ldapsUrl, tlsOptions: { ca: [dc.caCert], servername: DC_HOSTNAME } });
    await byName.bind(dc.bindUpn, dc.bindPassword);
    await byName.unbind();
  });

  it('paged search returns every user and group, with the loaded attributes', async () => {
    const attributes = ['sAMAccountName', 'userPrincipalName', 'givenName', 'sn', 'displayName', 'mail', 'employeeID', 'userAccountControl', 'cn'];
    const { searchEntries } = await sync.search(dc.peopleDn, { filter: USERS, attributes, paged: { pageSize: 50 } });
    expect(searchEntries).toHaveLength(dc.data.users.length);
    const bySam = new Map(searchEntries.map((e) => [String(e.sAMAccountName), e]));
    for (const u of dc.data.users) {
      expect(bySam.get(u.sAMAccountName)).toEqual({ dn: u.dn, cn: u.cn, ...adUserAttributes(u) });
    }
    const groups = await sync.search(dc.groupsDn, { filter: '(objectClass=group)', attributes: ['sAMAccountName', 'description'], paged: { pageSize: 10 } });
    expect(groups.searchEntries.map((e) => e.sAMAccountName).sort()).toEqual(dc.data.groups.map((g) => g.sAMAccountName).sort());
    // a subtree search from the domain root also returns a referral to the configuration partition
    const fromRoot = await sync.search(dc.baseDn, { filter: '(sAMAccountName=user00001)', attributes: ['sAMAccountName'], paged: { pageSize: 50 } });
    expect(fromRoot.searchEntries).toHaveLength(1);
    expect(fromRoot.searchReferences).toEqual(['ldap://example.test/CN=Configuration,DC=example,DC=test']);
  });

  it('returns objectGUID as a 16-byte Buffer, under its schema spelling whatever the request spelled', async () => {
    const u = dc.data.users[0]!;
    const e = (await sync.search(u.dn, { scope: 'base', attributes: ['objectguid', 'SAMACCOUNTNAME', 'objectSid'], explicitBufferAttributes: ['objectGUID', 'objectSid'] }))
      .searchEntries[0]!;
    expect(Object.keys(e).sort()).toEqual(['dn', 'objectGUID', 'objectSid', 'sAMAccountName']);
    expect(Buffer.isBuffer(e.objectSid) && (e.objectSid as Buffer).length).toBe(28); // S-1-5-21-a-b-c-RID
    const guid = e.objectGUID as Buffer;
    expect(Buffer.isBuffer(guid) && guid.length).toBe(16);
    expect(guidToString(guid)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // ldapts' filter parser turns \xx into the character U+00xx and sends it as UTF-8: an escaped GUID with a
    // byte >= 0x80 then matches nothing. A Filter object with the Buffer works, and so does a <GUID=…> base.
    const escaped = await sync.search(dc.baseDn, { filter: `(objectGUID=${guidToFilterValue(guid)})`, attributes: ['sAMAccountName'] });
    expect(escaped.searchEntries.length).toBe(guid.every((b) => b < 0x80) ? 1 : 0);
    const byFilter = await sync.search(dc.baseDn, { filter: new EqualityFilter({ attribute: 'objectGUID', value: guid }), attributes: ['sAMAccountName'] });
    expect(byFilter.searchEntries.map((x) => x.sAMAccountName)).toEqual([u.sAMAccountName]);
    for (const base of [`<GUID=${guidToString(guid)}>`, `<GUID=${guid.toString('hex')}>`]) {
      const byBase = await sync.search(base, { scope: 'base', attributes: ['sAMAccountName'] });
      expect(byBase.searchEntries).toEqual([{ dn: u.dn, sAMAccountName: u.sAMAccountName }]);
    }
  });

  it('has highestCommittedUSN and dsServiceName on the RootDSE, and invocationId on the NTDS Settings object', async () => {
    const root = (await sync.search('', { scope: 'base', attributes: ['highestCommittedUSN', 'dsServiceName', 'dnsHostName', 'invocationId'] }))
      .searchEntries[0]!;
    expect(Number(root.highestCommittedUSN)).toBeGreaterThan(3000);
    expect(root.dsServiceName).toBe('CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=example,DC=test');
    expect(root.dnsHostName).toBe(DC_HOSTNAME);
    expect(root.invocationId).toEqual([]); // not on the RootDSE: ldapts fills a requested, missing attribute with []
    const ntds = (await sync.search(String(root.dsServiceName), { scope: 'base', attributes: ['invocationId'], explicitBufferAttributes: ['invocationId'] }))
      .searchEntries[0]!;
    expect(Buffer.isBuffer(ntds.invocationId) && (ntds.invocationId as Buffer).length).toBe(16);
  });

  it('uSNChanged grows on a modify and (uSNChanged>=N) returns only the changed entries; memberOf changes leave the user alone', async () => {
    const usnOf = async (dn: string): Promise<number> =>
      Number((await sync.search(dn, { scope: 'base', attributes: ['uSNChanged'] })).searchEntries[0]!.uSNChanged);
    const highest = async (): Promise<number> =>
      Number((await sync.search('', { scope: 'base', attributes: ['highestCommittedUSN'] })).searchEntries[0]!.highestCommittedUSN);
    const user = dc.data.users[1]!;
    const other = dc.data.users.find((u) => !dc.data.group('group0010').memberUsers.includes(u.sAMAccountName))!;
    const group = dc.data.group('group0010');
    const start = await highest();
    const userBefore = await usnOf(user.dn);
    const otherBefore = await usnOf(other.dn);

    await dc.modify(user.dn, { title: 'Engineer' });
    await dc.modify(group.dn, new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [other.dn] }) }));
    expect(await usnOf(user.dn)).toBeGreaterThan(Math.max(userBefore, start));
    expect(await usnOf(other.dn)).toBe(otherBefore); // memberOf is a back link: the member's uSNChanged does not move
    expect(await highest()).toBe(start + 2);

    const changed = await sync.search(dc.baseDn, { filter: `(uSNChanged>=${start + 1})`, attributes: ['uSNChanged'], paged: { pageSize: 100 } });
    expect(changed.searchEntries.map((e) => e.dn).sort()).toEqual([group.dn, user.dn].sort());
    const memberOf = (await sync.search(other.dn, { scope: 'base', attributes: ['memberOf'] })).searchEntries[0]!.memberOf;
    expect(asArray(memberOf)).toContain(group.dn);
    await dc.modify(group.dn, new Change({ operation: 'delete', modification: new Attribute({ type: 'member', values: [other.dn] }) }));
  });

  it('memberOf holds the direct groups; the in-chain rule returns transitive members', async () => {
    const { searchEntries } = await sync.search(dc.peopleDn, { filter: USERS, attributes: ['sAMAccountName', 'memberOf'], paged: { pageSize: 200 } });
    const dnToSam = new Map(dc.data.groups.map((g) => [g.dn, g.sAMAccountName]));
    for (const e of searchEntries) {
      const direct = asArray(e.memberOf).map((dn) => dnToSam.get(dn)).sort();
      expect(direct).toEqual(dc.data.directGroups(String(e.sAMAccountName)));
    }
    for (const g of ['group0002', 'group0003', dc.data.largeGroup]) {
      const filter = `(&${USERS}(memberOf:${IN_CHAIN}:=${dc.data.group(g).dn}))`;
      const r = await sync.search(dc.peopleDn, { filter, attributes: ['sAMAccountName'], paged: { pageSize: 200 } });
      expect(r.searchEntries.map((x) => String(x.sAMAccountName)).sort()).toEqual(dc.data.transitiveMembers(g));
    }
    // without the object class, nested groups match too
    const all = await sync.search(dc.baseDn, { filter: `(memberOf:${IN_CHAIN}:=${dc.data.group('group0002').dn})`, attributes: ['objectClass'], paged: { pageSize: 200 } });
    expect(all.searchEntries.filter((x) => asArray(x.objectClass).includes('group')).map((x) => x.dn)).toContain(dc.data.group('group0003').dn);
    // and the groups a user is in, transitively
    const u = dc.data.group('group0004').memberUsers[0]!;
    const groupsOfU = await sync.search(dc.groupsDn, { filter: `(&(objectClass=group)(member:${IN_CHAIN}:=${dc.data.user(u).dn}))`, attributes: ['sAMAccountName'] });
    expect(groupsOfU.searchEntries.map((x) => x.sAMAccountName)).toEqual(expect.arrayContaining(['group0002', 'group0003', 'group0004']));
  });

  it('the bit-AND rule finds the disabled users (userAccountControl 546)', async () => {
    const r = await sync.search(dc.peopleDn, { filter: `(&${USERS}(userAccountControl:${BIT_AND}:=2))`, attributes: ['sAMAccountName', 'userAccountControl'], paged: { pageSize: 200 } });
    expect(r.searchEntries.map((e) => String(e.sAMAccountName)).sort()).toEqual(dc.data.users.filter((u) => u.disabled).map((u) => u.sAMAccountName));
    expect(new Set(r.searchEntries.map((e) => e.userAccountControl))).toEqual(new Set(['546']));
  });

  it('ranged retrieval: member;range=<low>-<high> slices, the last one named <low>-*', async () => {
    const large = dc.data.group(dc.data.largeGroup);
    const got: string[] = [];
    const keys: string[] = [];
    let low = 0;
    for (;;) {
      const want = `member;range=${low}-${low + 99}`;
      const e = (await sync.search(large.dn, { scope: 'base', attributes: [want] })).searchEntries[0]!;
      const key = Object.keys(e).find((k) => k.startsWith('member;range=') && asArray(e[k]).length > 0)!;
      keys.push(key);
      got.push(...asArray(e[key]));
      const m = /^member;range=(\d+)-(\d+|\*)$/.exec(key)!;
      if (m[2] === '*') {
        // the server named the last slice 300-*, and ldapts added the requested name with no values
        expect(e).toHaveProperty(want, []);
        break;
      }
      low = Number(m[2]) + 1;
    }
    expect(keys).toEqual(['member;range=0-99', 'member;range=100-199', 'member;range=200-299', 'member;range=300-*']);
    expect(got.sort()).toEqual([...large.member].sort());
    // Samba does not split on its own: plain member returns all 350 values
    const plain = (await sync.search(large.dn, { scope: 'base', attributes: ['member'] })).searchEntries[0]!;
    expect(asArray(plain.member)).toHaveLength(350);
    // a group smaller than the range: the values come as member;range=0-*, the requested name as []
    const small = dc.data.groups.find((g) => g.member.length > 0 && g.member.length < 100)!;
    const s = (await sync.search(small.dn, { scope: 'base', attributes: ['member;range=0-99'] })).searchEntries[0]!;
    expect(s).toEqual({ dn: small.dn, 'member;range=0-*': small.member.length === 1 ? small.member[0] : expect.any(Array), 'member;range=0-99': [] });
  });

  it('a deleted user is a tombstone with its objectGUID, visible to the Administrator with Show Deleted only', async () => {
    const victim = dc.data.users.filter((u) => dc.data.directGroups(u.sAMAccountName).length >= 2).at(-1)!;
    const groups = dc.data.directGroups(victim.sAMAccountName).map((g) => dc.data.group(g));
    const guidOf = async (c: Client, dn: string): Promise<Buffer> =>
      (await c.search(dn, { scope: 'base', attributes: ['objectGUID'], explicitBufferAttributes: ['objectGUID'] })).searchEntries[0]!.objectGUID as Buffer;
    const usnOf = async (dn: string): Promise<string> => String((await sync.search(dn, { scope: 'base', attributes: ['uSNChanged'] })).searchEntries[0]!.uSNChanged);
    const guid = await guidOf(sync, victim.dn);
    const groupUsns = await Promise.all(groups.map((g) => usnOf(g.dn)));

    await dc.delete(victim.dn);
    await expect(sync.search(victim.dn, { scope: 'base' })).rejects.toBeInstanceOf(NoSuchObjectError);
    // the user left its groups, but the groups' uSNChanged did not move
    for (const g of groups) expect(asArray((await sync.search(g.dn, { scope: 'base', attributes: ['member'] })).searchEntries[0]!.member)).not.toContain(victim.dn);
    expect(await Promise.all(groups.map((g) => usnOf(g.dn)))).toEqual(groupUsns);

    const showDeleted = new Control(SHOW_DELETED, { critical: true });
    const filter = new AndFilter({
      filters: [new EqualityFilter({ attribute: 'isDeleted', value: 'TRUE' }), new EqualityFilter({ attribute: 'objectGUID', value: guid })],
    });
    const attributes = ['objectGUID', 'isDeleted', 'lastKnownParent', 'sAMAccountName', 'cn', 'uSNChanged'];
    const seen = await admin.search(dc.baseDn, { filter, attributes, explicitBufferAttributes: ['objectGUID'] }, showDeleted);
    expect(seen.searchEntries).toHaveLength(1);
    const t = seen.searchEntries[0]!;
    expect(t.dn).toBe(`${victim.dn.split(',')[0]}\\0ADEL:${guidToString(guid)},CN=Deleted Objects,${dc.baseDn}`);
    expect(t.cn).toBe(`${victim.cn}\nDEL:${guidToString(guid)}`);
    expect(t).toMatchObject({ isDeleted: 'TRUE', lastKnownParent: dc.peopleDn, sAMAccountName: victim.sAMAccountName });
    expect((t.objectGUID as Buffer).equals(guid)).toBe(true);
    // without the control, or as an ordinary user, the tombstone is invisible
    expect((await admin.search(dc.baseDn, { filter, attributes: ['cn'] })).searchEntries).toEqual([]);
    expect((await sync.search(dc.baseDn, { filter, attributes: ['cn'] }, showDeleted)).searchEntries).toEqual([]);
    // the tombstone is found by its GUID too, and polling uSNChanged (as the Administrator) sees it
    const byGuid = await admin.search(`<GUID=${guidToString(guid)}>`, { scope: 'base', attributes: ['isDeleted'] }, showDeleted);
    expect(byGuid.searchEntries).toEqual([{ dn: t.dn, isDeleted: 'TRUE' }]);
    const changed = await admin.search(dc.baseDn, { filter: `(uSNChanged>=${String(t.uSNChanged)})`, attributes: ['isDeleted'] }, showDeleted);
    expect(changed.searchEntries.map((e) => e.dn)).toEqual([t.dn]);
  });

  it('a renamed or moved user keeps its objectGUID, and the group member values follow', async () => {
    const u = dc.data.users.find((x) => dc.data.directGroups(x.sAMAccountName).length >= 1 && x.sAMAccountName !== 'user00001')!;
    const g = dc.data.group(dc.data.directGroups(u.sAMAccountName)[0]!);
    const read = async (dn: string) =>
      (await sync.search(dn, { scope: 'base', attributes: ['objectGUID', 'sAMAccountName', 'cn', 'name', 'uSNChanged'], explicitBufferAttributes: ['objectGUID'] })).searchEntries[0]!;
    const before = await read(u.dn);

    const renamed = await dc.rename(u.dn, 'CN=Renamed Person');
    expect(renamed).toBe(`CN=Renamed Person,${dc.peopleDn}`);
    const after = await read(renamed);
    expect((after.objectGUID as Buffer).equals(before.objectGUID as Buffer)).toBe(true);
    expect(after).toMatchObject({ cn: 'Renamed Person', name: 'Renamed Person', sAMAccountName: u.sAMAccountName });
    expect(Number(after.uSNChanged)).toBeGreaterThan(Number(before.uSNChanged));
    expect(asArray((await sync.search(g.dn, { scope: 'base', attributes: ['member'] })).searchEntries[0]!.member)).toContain(renamed);

    await dc.modify(renamed, { sAMAccountName: 'renamed01', userPrincipalName: 'renamed01@example.test' });
    const moved = await dc.rename(renamed, 'CN=Renamed Person', `CN=Users,${dc.baseDn}`);
    const last = await read(moved);
    expect((last.objectGUID as Buffer).equals(before.objectGUID as Buffer)).toBe(true);
    expect(last.sAMAccountName).toBe('renamed01');
  });

  it('accepts userAccountControl 512, 544, 546 and 514 without a password; none means 546', async () => {
    const uacOf = async (dn: string): Promise<string> =>
      String((await sync.search(dn, { scope: 'base', attributes: ['userAccountControl'] })).searchEntries[0]!.userAccountControl);
    for (const uac of ['512', '544', '546', '514', undefined]) {
      const sam = `uac-${uac ?? 'none'}`;
      const dn = `CN=${sam},${dc.peopleDn}`;
      await dc.add(dn, { objectClass: 'user', sAMAccountName: sam, ...(uac ? { userAccountControl: uac } : {}) });
      expect(await uacOf(dn)).toBe(uac ?? '546');
      await dc.delete(dn);
    }
  });

  it('sets a password over ldaps (and, with strong auth off, over plain ldap too)', async () => {
    const dn = `CN=pw-user,${dc.peopleDn}`;
    await dc.add(dn, { objectClass: 'user', sAMAccountName: 'pw-user', userAccountControl: '512' });
    await dc.setPassword(dn, 'First-Passw0rd!');
    const c = new Client({ url: dc.url });
    await c.bind(dn, 'First-Passw0rd!');
    await c.unbind();
    await admin.modify(dn, new Change({ operation: 'replace', modification: new Attribute({ type: 'unicodePwd', values: [unicodePwd('Second-Passw0rd!')] }) }));
    await c.bind('pw-user@example.test', 'Second-Passw0rd!');
    await c.unbind();
    await dc.delete(dn);
  });

  it('lets only one DC run: a second start waits for the lock', async () => {
    await expect(startSambaDc({ lockTimeoutMs: 300, data: false })).rejects.toThrow(/lock .* still held by pid/);
  });

  it('stop() ends every samba process, frees the ports, removes the directory and releases the lock', async () => {
    await admin.unbind();
    await sync.unbind();
    await dc.stop();
    expect(alive(dc.pid)).toBe(false);
    expect(spawnSync('pgrep', ['-g', String(dc.pid)]).stdout.toString().trim()).toBe('');
    expect(await portOpen(389)).toBe(false);
    expect(await portOpen(636)).toBe(false);
    expect(fs.existsSync(dc.dataDir)).toBe(false);
    const lock = fs.existsSync(DC_LOCK) ? (JSON.parse(fs.readFileSync(DC_LOCK, 'utf8')) as { pid: number }) : undefined;
    expect(lock?.pid).not.toBe(process.pid);
  });
});
