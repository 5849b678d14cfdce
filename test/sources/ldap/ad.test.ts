// The LDAP source against a real Active Directory domain controller (Samba 4 from Debian's packages), over
// ldaps with the DC's own CA: what slapd cannot show — objectGUID as the id, userAccountControl, uSNChanged
// change rounds, the in-chain rule, ranged member retrieval asked for by the client, and a domain
// controller that is not the one the last run read. The server itself is the reference: its in-chain
// search says who is in each group, its `<GUID=…>` lookup says what a GUID names.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Change, Attribute } from 'ldapts';
import type { SambaDc } from '../../support/samba/index.ts';
import { startSambaDc, UAC_DISABLED, UAC_ENABLED } from '../../support/samba/index.ts';
import type { ServiceRig } from '../../support/service-rig.ts';
import { startServiceRig } from '../../support/service-rig.ts';
import { guidToString } from '../../../src/sources/ldap/map.ts';

const IN_CHAIN = '1.2.840.113556.1.4.1941';
const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('LDAP pull from Active Directory (Samba AD DC)', { timeout: 120_000 }, () => {
  let dc: SambaDc;
  let rig: ServiceRig;

  const source = (extra: Record<string, unknown> = {}) => ({
    preset: 'activeDirectory',
    url: dc.ldapsUrl,
    caCertificate: dc.caCert,
    // the DC's certificate names dc1.example.test (and no IP address)
    tlsServerName: dc.tlsServername,
    bindDn: dc.bindDn,
    bindPassword: dc.bindPassword,
    baseDn: dc.baseDn,
    userBaseDn: dc.peopleDn,
    groupBaseDn: dc.groupsDn,
    pageSize: 100,
    // the 350-member group comes in slices of 100, asked for by us (Samba does not split on its own)
    rangeSize: 100,
    schedule: { kind: 'off' },
    ...extra,
  });

  async function create(id: string, extra: Record<string, unknown> = {}) {
    const res = await rig.api('/connectors', { method: 'POST', body: { id, name: `AD ${id}`, kind: 'ldap', source: source(extra) } });
    if (res.status !== 201) throw new Error(`creating ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** what the DC says: group name → sAMAccountNames of its users at any depth (the in-chain rule) */
  async function serverGroups(): Promise<Map<string, string[]>> {
    // Samba answers an in-chain search in about a third of a second: four at a time
    const clients = await Promise.all([1, 2, 3, 4].map(() => dc.client()));
    try {
      const { searchEntries: groups } = await clients[0]!.search(dc.groupsDn, { filter: '(objectClass=group)', attributes: ['cn'] });
      const out = new Map<string, string[]>();
      let next = 0;
      await Promise.all(
        clients.map(async (client) => {
          while (next < groups.length) {
            const g = groups[next++]!;
            const { searchEntries } = await client.search(dc.peopleDn, { filter: `(&(objectCategory=person)(memberOf:${IN_CHAIN}:=${g.dn}))`, attributes: ['sAMAccountName'], paged: { pageSize: 500 } });
            out.set(String(g.cn), searchEntries.map((e) => String(e.sAMAccountName)).sort());
          }
        }),
      );
      return out;
    } finally {
      await Promise.all(clients.map((c) => c.unbind()));
    }
  }

  async function directoryGroups(connector: string): Promise<Map<string, string[]>> {
    const rows = await rig.server.store.db.kysely
      .selectFrom('directory_memberships as m')
      .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
      .innerJoin('directory_users as u', 'u.id', 'm.user_id')
      .select(['g.name', 'u.username'])
      .where('m.managed_by', '=', `connector:${connector}`)
      .execute();
    const out = new Map<string, string[]>();
    for (const r of rows) out.set(r.name, [...(out.get(r.name) ?? []), r.username]);
    for (const [k, v] of out) out.set(k, v.sort());
    return out;
  }

  /** the directory's groups against the DC's, for the users the DC still has (a deleted user stays, deactivated, with its groups) */
  async function expectGroupsMatchServer(connector: string) {
    const server = await serverGroups();
    const client = await dc.client();
    const { searchEntries } = await client.search(dc.peopleDn, { filter: '(objectCategory=person)', attributes: ['sAMAccountName'], paged: { pageSize: 500 } });
    await client.unbind();
    const present = new Set(searchEntries.map((e) => String(e.sAMAccountName)));
    const directory = await directoryGroups(connector);
    for (const [name, members] of server) expect((directory.get(name) ?? []).filter((u) => present.has(u)), name).toEqual(members);
  }

  beforeAll(async () => {
    dc = await startSambaDc();
    rig = await startServiceRig('sqlite');
    await create('ad');
  }, 180_000);
  afterAll(async () => {
    await rig?.close();
    await dc?.stop();
  });

  it('tests the connection over ldaps and recognises Active Directory', async () => {
    const res = await rig.api('/connectors/ad/test', { method: 'POST' });
    expect(res.body.ok, JSON.stringify(res.body.checks)).toBe(true);
    const text = res.body.checks.map((c: { message: string }) => c.message).join('\n');
    expect(text).toMatch(/over TLS \(ldaps\)/);
    expect(text).toMatch(/Active Directory; paged results supported/);
    expect(text).toMatch(/found at least 100 users/);
  });

  it('a full read keys users by objectGUID, marks userAccountControl-disabled users inactive, and flattens nested groups as the in-chain rule does', async () => {
    const out = await rig.sync('ad');
    expect(out.status).toBe('succeeded');
    const users = await rig.directoryUsers('ad');
    expect(users.size).toBe(dc.data.users.length);
    // each id is the canonical GUID string: the DC finds the same user by it
    const client = await dc.client();
    for (const [id, u] of [...users].slice(0, 5)) {
      const { searchEntries } = await client.search(`<GUID=${id}>`, { scope: 'base', filter: '(objectClass=*)', attributes: ['sAMAccountName'] });
      expect(String(searchEntries[0]?.sAMAccountName)).toBe(u.username);
    }
    await client.unbind();
    for (const u of dc.data.users) expect(users.get([...users].find(([, x]) => x.username === u.sAMAccountName)![0])!.active, u.sAMAccountName).toBe(!u.disabled);
    expect([...users.values()].filter((u) => !u.active)).toHaveLength(dc.data.users.filter((u) => u.disabled).length);
    await expectGroupsMatchServer('ad');
    // the large group arrived whole through ranges of 100
    expect((await directoryGroups('ad')).get(dc.data.largeGroup)).toHaveLength(dc.data.group(dc.data.largeGroup).memberUsers.length);
  });

  it('a change round by uSNChanged applies edits, a renamed account, a disabled one, a deletion, a new user and a nested membership change', async () => {
    const data = dc.data;
    const [edited, renamed, disabled, deleted] = [data.users[1]!, data.users[2]!, data.users[3]!, data.users[4]!];
    const inner = data.group('group0004');
    const leaving = inner.memberUsers[0]!;
    const before = await rig.directoryUsers('ad');
    const idOf = (sam: string) => [...before].find(([, u]) => u.username === sam)![0];
    await dc.modify(edited.dn, { mail: 'edited@example.test', displayName: 'Edited Person' });
    await dc.modify(renamed.dn, { sAMAccountName: 'renamed-user' });
    await dc.modify(disabled.dn, { userAccountControl: String(UAC_DISABLED) });
    await dc.delete(deleted.dn);
    const freshDn = `CN=Fresh Person,${dc.peopleDn}`;
    await dc.add(freshDn, { objectClass: ['top', 'person', 'organizationalPerson', 'user'], sAMAccountName: 'fresh', userPrincipalName: 'fresh@example.test', mail: 'fresh@example.test', userAccountControl: String(UAC_ENABLED) });
    const client = await dc.client();
    await client.modify(data.group('group0003').dn, new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [freshDn] }) }));
    await client.modify(inner.dn, new Change({ operation: 'delete', modification: new Attribute({ type: 'member', values: [data.user(leaving).dn] }) }));
    await client.unbind();

    const out = await rig.sync('ad');
    expect(out.status).toBe('succeeded');
    const run = await rig.api(`/runs/${out.runId}`);
    expect(run.body.log.map((l: { message: string }) => l.message).join('\n')).toMatch(/delta round/);
    // a change round reads only what changed (and the ids in scope), not every user again
    expect(out.counters.fetched).toBeLessThan(50);
    const users = await rig.directoryUsers('ad');
    expect(users.get(idOf(edited.sAMAccountName))).toMatchObject({ email: 'edited@example.test', displayName: 'Edited Person' });
    expect(users.get(idOf(renamed.sAMAccountName))!.username).toBe('renamed-user');
    expect(users.get(idOf(disabled.sAMAccountName))!.active).toBe(false);
    expect(users.get(idOf(deleted.sAMAccountName))!.active).toBe(false);
    expect([...users.values()].find((u) => u.username === 'fresh')?.active).toBe(true);
    await expectGroupsMatchServer('ad');
    // group0003 holds group0004 and sits in group0002: the new member reaches both outer groups
    expect(await rig.groupsOf('fresh')).toEqual(expect.arrayContaining(['group0002', 'group0003']));
  });

  it('reads everything when the domain controller is not the one the last run read', async () => {
    const db = rig.server.store.db.kysely;
    const row = await db.selectFrom('source_state').select('value').where('connector_id', '=', 'ad').where('name', '=', 'ldap').executeTakeFirstOrThrow();
    const state = JSON.parse(row.value);
    expect(state.marker).toMatchObject({ kind: 'usn', usn: expect.stringMatching(/^\d+$/), server: expect.stringMatching(/^CN=NTDS Settings,CN=DC1,/), invocationId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    state.marker.invocationId = '00000000-0000-0000-0000-000000000000';
    await db.updateTable('source_state').set({ value: JSON.stringify(state) }).where('connector_id', '=', 'ad').where('name', '=', 'ldap').execute();
    const out = await rig.sync('ad');
    expect(out.status).toBe('succeeded');
    const log = (await rig.api(`/runs/${out.runId}`)).body.log.map((l: { message: string }) => l.message).join('\n');
    expect(log).toMatch(/domain controller changed .* or was restored/);
    expect(log).toMatch(/full read/);
  });

  it('walking the groups read gives the same memberships as the in-chain rule', async () => {
    await create('ad-walk', { nestedMethod: 'client', rangeSize: null });
    expect((await rig.sync('ad-walk', 'full')).status).toBe('succeeded');
    const members = async (connector: string) =>
      (await rig.server.store.db.kysely.selectFrom('mirror_members').select(['group_id', 'member_id']).where('connector_id', '=', connector).execute()).map((r) => `${r.group_id}|${r.member_id}`).sort();
    expect(await members('ad-walk')).toEqual(await members('ad'));
  });

  it('test user search shows the AD entry with its GUID and flags, and the groups by the in-chain rule', async () => {
    const user = dc.data.users.find((u) => u.disabled)!;
    const res = await rig.api('/connectors/ad/search-user', { method: 'POST', body: { username: user.sAMAccountName } });
    expect(res.status).toBe(200);
    expect(res.body.entry.attributes.userAccountControl).toEqual([String(UAC_DISABLED)]);
    const client = await dc.client();
    const { searchEntries } = await client.search(user.dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['objectGUID'], explicitBufferAttributes: ['objectGUID'] });
    await client.unbind();
    const guid = guidToString(searchEntries[0]!.objectGUID as Buffer);
    expect(res.body.entry.attributes.objectGUID).toEqual([guid]);
    expect(res.body.record).toMatchObject({ id: guid, doc: { userName: user.sAMAccountName, active: false } });
    // the connector's groups were compared with the DC's in-chain answers above
    expect(res.body.groups.map((g: { name: string }) => g.name).sort()).toEqual(await rig.groupsOf(user.sAMAccountName));
    expect(res.body.groups.length).toBeGreaterThan(0);
    expect(res.body.directory.user.active).toBe(false);
  });
});
