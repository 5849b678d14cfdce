// Entra sends membership PATCHes for one group concurrently; they must all land, on both stores.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../support/server.ts';
import { startTestServer } from '../../support/server.ts';
import { DIALECTS } from '../../support/store.ts';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe.each(DIALECTS)('concurrent SCIM writes on %s', (dialect) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(dialect);
  });
  afterAll(async () => server.close());

  async function createUsers(prefix: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await server.scim('/Users', { method: 'POST', body: { userName: `${prefix}-${i}@example.com`, active: true } });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    return ids;
  }

  it('50 concurrent PATCHes adding and removing members of one group land exactly', async () => {
    const users = await createUsers('conc', 75);
    const g = await server.scim('/Groups', { method: 'POST', body: { displayName: 'Concurrent' } });
    expect(g.status).toBe(201);
    // 25 users are members from the start; 25 of those are removed concurrently with 50 adds of others
    const initial = users.slice(0, 25);
    const put = await server.scim(`/Groups/${g.body.id}`, { method: 'PUT', body: { displayName: 'Concurrent', members: initial.map((value) => ({ value })) } });
    expect(put.status).toBe(200);
    const adds = users.slice(25); // 50 users
    const removes = initial.slice(0, 20);
    const requests = [
      // Entra's default dialect for adds, both dialects for removes
      ...adds.map((id) => ({ Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: id }] }] })),
      ...removes.map((id, i) =>
        i % 2 === 0
          ? { Operations: [{ op: 'Remove', path: 'members', value: [{ value: id }] }] }
          : { Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }] },
      ),
    ];
    const results = await Promise.all(
      requests.map((r) => server.scim(`/Groups/${g.body.id}`, { method: 'PATCH', body: { schemas: [PATCH_OP], ...r } })),
    );
    expect(results.map((r) => r.status)).toEqual(requests.map(() => 204));
    const got = await server.scim(`/Groups/${g.body.id}`);
    const members = (got.body.members as { value: string }[]).map((m) => m.value).sort();
    const expected = [...initial.slice(20), ...adds].sort();
    expect(members).toEqual(expected);

    // the directory ends up with exactly the same members
    await server.service.reconciler.drain();
    const dir = await server.service.db.kysely
      .selectFrom('directory_memberships as m')
      .innerJoin('directory_groups as dg', 'dg.id', 'm.group_id')
      .innerJoin('directory_users as du', 'du.id', 'm.user_id')
      .select('du.source_id')
      .where('dg.name', '=', 'Concurrent')
      .execute();
    expect(dir.map((r) => r.source_id).sort()).toEqual(expected);
  });

  it('20 concurrent POSTs of the same userName give one 201 and 409s', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.scim('/Users', { method: 'POST', body: { userName: i % 2 ? 'Same.Person@example.com' : 'same.person@EXAMPLE.com', active: true } }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(19).fill(409)]);
    for (const r of results.filter((x) => x.status === 409)) {
      expect(r.body).toMatchObject({ status: '409', scimType: 'uniqueness' });
    }
    const list = await server.scim('/Users?filter=userName+eq+%22same.person@example.com%22');
    expect(list.body.totalResults).toBe(1);
  });

  it('keeps the directory up to date while requests never stop', async () => {
    let stop = false;
    let sent = 0;
    const writer = async () => {
      while (!stop) {
        await server.scim('/Users', { method: 'POST', body: { userName: `steady-${sent++}@example.com` } });
      }
    };
    const writers = [writer(), writer(), writer()];
    await new Promise((r) => setTimeout(r, 1500));
    // still writing: the reconciler must have made progress meanwhile, not wait for a pause
    const reconciled = await server.service.db.kysely
      .selectFrom('directory_users')
      .select('id')
      .where('username', 'like', 'steady-%')
      .execute();
    stop = true;
    await Promise.all(writers);
    expect(sent).toBeGreaterThan(50);
    expect(reconciled.length).toBeGreaterThan(sent / 4);
  });

  it('concurrent PATCHes of one user all apply (no lost update)', async () => {
    const [id] = await createUsers('patchy', 1);
    const attrs = ['title', 'nickName', 'displayName', 'locale', 'timezone', 'userType', 'preferredLanguage', 'profileUrl'];
    const results = await Promise.all(
      attrs.map((a) => server.scim(`/Users/${id}`, { method: 'PATCH', body: { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: a, value: `v-${a}` }] } })),
    );
    expect(results.map((r) => r.status)).toEqual(attrs.map(() => 200));
    const got = await server.scim(`/Users/${id}`);
    for (const a of attrs) expect(got.body[a]).toBe(`v-${a}`);
    expect(got.body.meta.version).toBe(`W/"${attrs.length + 1}"`);
  });
});
