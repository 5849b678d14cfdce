// The Graph emulator itself, over real HTTPS with its certificate trusted.

import { execFile } from 'node:child_process';
import { X509Certificate, constants, createHash, createPrivateKey, createPublicKey, randomUUID, sign, verify } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ClientCertificate, GraphEmulator, GraphResponse } from './graph-emulator/index.ts';
import { decodeJwt, generateClientCertificate, graphRequest, startGraphEmulator } from './graph-emulator/index.ts';

let emu: GraphEmulator;
let token: string;

async function getToken(e: GraphEmulator, secret = e.clientSecret): Promise<GraphResponse> {
  const body = new URLSearchParams({
    client_id: e.clientId,
    client_secret: secret,
    scope: 'https://graph.microsoft.com/.default',
    grant_type: 'client_credentials',
  }).toString();
  return graphRequest(`${e.authorityHost}/${e.tenantId}/oauth2/v2.0/token?client-request-id=abc`, {
    ca: e.caCert,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
}

/** GET a Graph path (relative to the base URL) or an absolute link */
function get(pathOrUrl: string, headers: Record<string, string> = {}, tok: string | null = token): Promise<GraphResponse> {
  const url = pathOrUrl.startsWith('https://') ? pathOrUrl : `${emu.url}${pathOrUrl}`;
  return graphRequest(url, { ca: emu.caCert, ...(tok !== null ? { token: tok } : {}), headers });
}

/** follow nextLinks to the end; returns items and pages */
async function all(first: string, headers: Record<string, string> = {}): Promise<{ items: Array<Record<string, unknown>>; pages: GraphResponse[] }> {
  const pages: GraphResponse[] = [];
  let link: string | undefined = first;
  while (link) {
    const r = await get(link, headers);
    expect(r.status, r.text).toBe(200);
    pages.push(r);
    link = r.body['@odata.nextLink'];
  }
  return { items: pages.flatMap((p) => p.body.value as Array<Record<string, unknown>>), pages };
}

function expectGraphError(r: GraphResponse, status: number, code: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.body.error.code).toBe(code);
  expect(typeof r.body.error.message).toBe('string');
  expect(r.body.error.innerError['request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.body.error.innerError.date).toMatch(/^\d{4}-\d\d-\d\dT/);
}

beforeAll(async () => {
  emu = await startGraphEmulator({ tenantDomain: 'contoso.onmicrosoft.com' });
  const r = await getToken(emu);
  token = r.body.access_token;
});

afterAll(async () => {
  await emu.close();
});

beforeEach(() => {
  emu.faults.clear();
});

describe('login side', () => {
  it('issues RS256 JWT access tokens with the claims of an Entra app-only token, signed with the published key', async () => {
    const r = await getToken(emu);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 3599 });
    const tok = r.body.access_token as string;
    expect(tok).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const jwt = decodeJwt(tok)!;
    expect(jwt.header).toMatchObject({ typ: 'JWT', alg: 'RS256', kid: expect.any(String), x5t: jwt.header.kid });
    const p = jwt.payload as Record<string, unknown> & { iat: number; exp: number; nbf: number };
    expect(p).toMatchObject({
      aud: 'https://graph.microsoft.com',
      iss: `https://sts.windows.net/${emu.tenantId}/`,
      idp: `https://sts.windows.net/${emu.tenantId}/`,
      appid: emu.clientId,
      appidacr: '1',
      app_displayname: 'usersync',
      tid: emu.tenantId,
      oid: emu.servicePrincipal.id,
      sub: emu.servicePrincipal.id,
      idtyp: 'app',
      ver: '1.0',
      roles: ['User.Read.All', 'Group.Read.All', 'Application.Read.All'],
    });
    expect(p.exp - p.iat).toBe(3599);
    expect(p.nbf).toBe(p.iat);
    expect(Math.abs(p.iat - emu.state.now() / 1000)).toBeLessThan(5);

    // the JWKS endpoint publishes the key (with its certificate, as Entra's do) and the signature verifies
    const keys = await graphRequest(`${emu.authorityHost}/${emu.tenantId}/discovery/v2.0/keys`, { ca: emu.caCert });
    expect(keys.status).toBe(200);
    expect(keys.body).toEqual({ keys: [expect.objectContaining({ kty: 'RSA', use: 'sig', kid: jwt.header.kid, x5t: jwt.header.kid, e: 'AQAB' })] });
    const jwk = keys.body.keys[0];
    const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
    expect(verify('sha256', Buffer.from(jwt.signingInput), key, jwt.signature)).toBe(true);
    const x5c = new X509Certificate(Buffer.from(jwk.x5c[0], 'base64'));
    expect(x5c.publicKey.export({ format: 'jwk' })).toMatchObject({ n: jwk.n, e: jwk.e });
    expect(createHash('sha1').update(x5c.raw).digest('base64url')).toBe(jwk.kid);
    expect(emu.auth.jwks.keys[0]).toMatchObject({ kid: jwk.kid });
    // tokens are still looked up server-side: a forged one (same header, other claims) is refused
    const [h, , sig] = tok.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...p, roles: ['Directory.ReadWrite.All'] })).toString('base64url')}.${sig}`;
    expectGraphError(await get('/users', {}, forged), 401, 'InvalidAuthenticationToken');

    expect((await get('/users?$top=1', {}, tok)).status).toBe(200);
    expectGraphError(await get('/users', {}, null), 401, 'InvalidAuthenticationToken');
    expectGraphError(await get('/users', {}, 'not-a-token'), 401, 'InvalidAuthenticationToken');
  });

  it('rejects a wrong secret with invalid_client / AADSTS7000215, and other AAD errors', async () => {
    const bad = await getToken(emu, 'wrong');
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    expect(bad.body.error_codes).toEqual([7000215]);
    expect(bad.body.error_description).toMatch(/^AADSTS7000215: Invalid client secret provided/);
    expect(bad.body.correlation_id).toBe('abc');

    const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<GraphResponse> =>
      graphRequest(`${emu.authorityHost}${path}`, { ca: emu.caCert, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
    const base = { client_id: emu.clientId, client_secret: emu.clientSecret, grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' };
    expect((await post(`/nope/oauth2/v2.0/token`, base)).body.error_codes).toEqual([90002]);
    expect((await post(`/${emu.tenantId}/oauth2/v2.0/token`, { ...base, client_id: 'other' })).body.error_codes).toEqual([700016]);
    expect((await post(`/${emu.tenantId}/oauth2/v2.0/token`, { ...base, scope: 'User.Read' })).body.error).toBe('invalid_scope');
    // the tenant's domain and HTTP Basic client authentication are accepted too
    const basic = Buffer.from(`${encodeURIComponent(emu.clientId)}:${encodeURIComponent(emu.clientSecret)}`).toString('base64');
    const ok = await post(`/contoso.onmicrosoft.com/oauth2/v2.0/token`, { grant_type: 'client_credentials', scope: base.scope }, { authorization: `Basic ${basic}` });
    expect(ok.status, ok.text).toBe(200);
  });

  it('serves the OpenID metadata msal-node reads', async () => {
    const r = await graphRequest(`${emu.authorityHost}/${emu.tenantId}/v2.0/.well-known/openid-configuration`, { ca: emu.caCert });
    expect(r.status).toBe(200);
    expect(r.body.token_endpoint).toBe(`${emu.authorityHost}/${emu.tenantId}/oauth2/v2.0/token`);
    for (const k of ['authorization_endpoint', 'issuer', 'end_session_endpoint', 'jwks_uri']) expect(typeof r.body[k]).toBe('string');
    expect(JSON.parse(emu.authorityMetadata).token_endpoint).toBe(r.body.token_endpoint);
  });

  it('expires tokens: by lifetime on the emulator clock, by expireAll and by a fault', async () => {
    emu.auth.tokenLifetimeSeconds = 60;
    const short = (await getToken(emu)).body;
    expect(short.expires_in).toBe(60);
    emu.auth.tokenLifetimeSeconds = 3599;
    expect((await get('/users?$top=1', {}, short.access_token)).status).toBe(200);
    emu.state.advanceClock(61_000);
    const expired = await get('/users?$top=1', {}, short.access_token);
    expectGraphError(expired, 401, 'InvalidAuthenticationToken');
    expect(expired.body.error.message).toBe('Access token has expired or is not yet valid.');
    expect(expired.headers['www-authenticate']).toMatch(/^Bearer /);

    const t2 = (await getToken(emu)).body.access_token as string;
    emu.faults.expireTokenOnNextCall('/v1.0/users');
    expectGraphError(await get('/users?$top=1', {}, t2), 401, 'InvalidAuthenticationToken');
    expect((await get('/users?$top=1', {}, t2)).status).toBe(401); // that token stays expired
    const before = emu.auth.issued;
    token = (await getToken(emu)).body.access_token;
    expect(emu.auth.issued).toBe(before + 1);
    expect((await get('/users?$top=1')).status).toBe(200);
  });
});

describe('users and groups', () => {
  let ada: string;
  let groupA: string;
  let groupB: string;
  beforeAll(() => {
    emu.state.seed({ users: 2500, domain: 'contoso.com' });
    ada = emu.state.addUser({ userPrincipalName: 'ada@contoso.com', displayName: 'Ada Lovelace', mail: 'ada@contoso.com', employeeId: 'E1', accountEnabled: false }).id;
    groupA = emu.state.addGroup({ displayName: 'jira-users' }).id;
    groupB = emu.state.addGroup({ displayName: 'jira-admins' }).id;
    emu.state.addMember(groupA, ada);
    emu.state.addMember(groupA, groupB);
    emu.state.addMember(groupB, [...emu.state.users.keys()][0]!);
  });

  it('pages through 2,500+ users with $top=999 and opaque absolute nextLinks', async () => {
    const { items, pages } = await all('/users?$select=id,userPrincipalName,accountEnabled&$top=999');
    expect(pages.map((p) => (p.body.value as unknown[]).length)).toEqual([999, 999, 503]);
    expect(new Set(items.map((u) => u.id)).size).toBe(2501);
    const next = new URL(pages[0]!.body['@odata.nextLink']);
    expect(next.origin).toBe(emu.authorityHost);
    expect(next.searchParams.get('$top')).toBe('999');
    expect(next.searchParams.get('$skiptoken')).toBeTruthy();
    expect(Object.keys(items[0]!).sort()).toEqual(['accountEnabled', 'id', 'userPrincipalName']);
    expect(pages[0]!.body['@odata.context']).toBe(`${emu.url}/$metadata#users(id,userPrincipalName,accountEnabled)`);
    expect(pages[0]!.headers['x-ms-resource-unit']).toBe('1');
    // default page size and default property set (no accountEnabled unless selected)
    const first = await get('/users');
    expect(first.body.value).toHaveLength(100);
    expect(first.body.value[0]).not.toHaveProperty('accountEnabled');
    expect(first.body.value[0]).toHaveProperty('businessPhones');
    expectGraphError(await get('/users?$skiptoken=garbage'), 400, 'Directory_ExpiredPageToken');
  });

  it('validates $select and $top with Graph error bodies', async () => {
    const r = await get('/users?$select=id,bogusProp');
    expectGraphError(r, 400, 'Request_BadRequest');
    expect(r.body.error.message).toBe("Could not find a property named 'bogusProp' on type 'microsoft.graph.user'.");
    for (const top of ['1000', '0', 'x']) {
      const t = await get(`/users?$top=${top}`);
      expectGraphError(t, 400, 'Request_UnsupportedQuery');
      expect(t.body.error.message).toBe(`Invalid page size specified: '${top}'. Must be between 1 and 999 inclusive.`);
    }
    expectGraphError(await get('/users?$skip=10'), 400, 'Request_BadRequest');
    expectGraphError(await get('/users?$select=skills'), 501, 'NotImplemented');
  });

  it('filters: eq / startsWith by default, ne only as an advanced query', async () => {
    const byUpn = await get(`/users?$filter=${encodeURIComponent("userPrincipalName eq 'ADA@contoso.com'")}&$select=id,employeeId`);
    expect(byUpn.body.value).toEqual([{ id: ada, employeeId: 'E1' }]);
    const starts = await get(`/groups?$filter=${encodeURIComponent("startswith(displayName,'jira-')")}&$select=id,displayName`);
    expect(starts.body.value.map((g: { id: string }) => g.id).sort()).toEqual([groupA, groupB].sort());
    const ne = `/users?$filter=${encodeURIComponent('accountEnabled ne true')}&$select=id`;
    expectGraphError(await get(ne), 400, 'Request_UnsupportedQuery');
    const adv = await get(`${ne}&$count=true`, { ConsistencyLevel: 'eventual' });
    expect(adv.status, adv.text).toBe(200);
    expect(adv.body['@odata.count']).toBe(adv.body.value.length);
    expect(adv.body.value.map((u: { id: string }) => u.id)).toContain(ada);
    expectGraphError(await get(`/users?$filter=${encodeURIComponent("nope eq 'x'")}`), 400, 'Request_BadRequest');
    expectGraphError(await get('/users/$count'), 400, 'Request_BadRequest');
    expect((await get('/users/$count', { ConsistencyLevel: 'eventual' })).text).toBe('2501');
    expect((await get('/users/ada@contoso.com?$select=id')).body).toMatchObject({ id: ada });
    expectGraphError(await get('/users/00000000-0000-0000-0000-000000000001'), 404, 'Request_ResourceNotFound');
  });

  it('lists members and transitiveMembers with @odata.type', async () => {
    const direct = await get(`/groups/${groupA}/members?$select=id,userPrincipalName,displayName&$top=999`);
    expect(direct.body.value).toEqual([
      { '@odata.type': '#microsoft.graph.user', id: ada, userPrincipalName: 'ada@contoso.com', displayName: 'Ada Lovelace' },
      { '@odata.type': '#microsoft.graph.group', id: groupB, displayName: 'jira-admins' },
    ]);
    const trans = await get(`/groups/${groupA}/transitiveMembers?$select=id`);
    expect(trans.body.value.map((m: Record<string, string>) => m['@odata.type'])).toEqual(['#microsoft.graph.user', '#microsoft.graph.group', '#microsoft.graph.user']);
    expect(trans.headers['x-ms-resource-unit']).toBe('4');
    const users = await get(`/groups/${groupA}/transitiveMembers/microsoft.graph.user?$select=id`);
    expect(users.body.value).toHaveLength(2);
    expect((await get(`/groups/${groupA}/members/$count`, { ConsistencyLevel: 'eventual' })).text).toBe('2');
    const paged = await all(`/groups/${groupA}/transitiveMembers?$top=1`);
    expect(paged.pages).toHaveLength(3);
  });
});

describe('delta', () => {
  it('users: initial round, then only changes, with @removed changed/deleted', async () => {
    const e = await startGraphEmulator({ deltaPageSize: 40 });
    try {
      const t = (await getToken(e)).body.access_token as string;
      const g = (u: string, h: Record<string, string> = {}): Promise<GraphResponse> => graphRequest(u, { ca: e.caCert, token: t, headers: h });
      const round = async (first: string, h: Record<string, string> = {}): Promise<{ items: Array<Record<string, unknown>>; deltaLink: string; pages: number }> => {
        const items: Array<Record<string, unknown>> = [];
        let link = first;
        for (let pages = 1; ; pages++) {
          const r = await g(link, h);
          expect(r.status, r.text).toBe(200);
          items.push(...r.body.value);
          if (r.body['@odata.deltaLink']) return { items, deltaLink: r.body['@odata.deltaLink'], pages };
          expect(r.body['@odata.nextLink']).toContain('$skiptoken=');
          link = r.body['@odata.nextLink'];
        }
      };
      const { userIds } = e.state.seed({ users: 100 });
      const [u1, u2, u3, u4] = userIds as [string, string, string, string];
      const init = await round(`${e.url}/users/delta?$select=id,userPrincipalName,accountEnabled,employeeId`);
      expect(init.pages).toBe(3);
      expect(init.items).toHaveLength(100);
      expect(Object.keys(init.items[0]!).sort()).toEqual(['accountEnabled', 'employeeId', 'id', 'userPrincipalName']);

      e.state.updateUser(u1, { accountEnabled: false });
      e.state.updateUser(u2, { jobTitle: 'not selected' });
      e.state.softDeleteUser(u3);
      e.state.hardDeleteUser(u4);
      const added = e.state.addUser({ userPrincipalName: 'new@contoso.example' }).id;
      const inc = await round(init.deltaLink);
      expect(new URL(init.deltaLink).searchParams.get('$deltatoken')).toBeTruthy();
      const byId = new Map(inc.items.map((x) => [x.id as string, x]));
      expect(byId.size).toBe(4);
      expect(byId.get(u1)).toMatchObject({ accountEnabled: false, userPrincipalName: expect.any(String) });
      expect(byId.has(u2)).toBe(false); // a change to an unselected property is not tracked
      expect(byId.get(u3)!['@removed']).toEqual({ reason: 'changed' });
      expect(byId.get(u4)!['@removed']).toEqual({ reason: 'deleted' });
      expect(byId.get(added)).toMatchObject({ userPrincipalName: 'new@contoso.example', accountEnabled: true });

      // nothing changed: an empty round; restore + minimal representation
      const quiet = await round(inc.deltaLink);
      expect(quiet.items).toEqual([]);
      e.state.restoreUser(u3);
      e.state.updateUser(u1, { employeeId: 'X9' });
      const minimal = await round(quiet.deltaLink, { Prefer: 'return=minimal' });
      expect(minimal.items).toContainEqual({ id: u1, employeeId: 'X9' });
      expect(minimal.items.find((x) => x.id === u3)).toMatchObject({ userPrincipalName: expect.any(String) });

      // long form and "latest"
      const latest = await g(`${e.url}/users/microsoft.graph.delta?$deltatoken=latest`);
      expect(latest.body.value).toEqual([]);
      expect(latest.body['@odata.deltaLink']).toContain('$deltatoken=');
      expect(e.requests.some((r) => r.path.endsWith('/users/microsoft.graph.delta'))).toBe(true);
      expectGraphError(await g(`${e.url}/users/delta?$top=10`), 400, 'Request_UnsupportedQuery');

      // 410 after invalidation, after 7 days, and as a fault
      e.state.invalidateDeltaTokens();
      const gone = await g(minimal.deltaLink);
      expectGraphError(gone, 410, 'syncStateNotFound');
      expect(gone.headers.location).toBe(`${e.url}/users/delta?$deltatoken=`);
      const fresh = await round(`${e.url}/users/delta?$select=id`);
      expect(fresh.items.length).toBe(100); // 100 seeded - 1 hard-deleted + 1 added
      e.state.advanceClock(8 * 24 * 3600 * 1000);
      const t2 = (await getToken(e)).body.access_token as string;
      const stale = await graphRequest(fresh.deltaLink, { ca: e.caCert, token: t2 });
      expect(stale.status).toBe(410);
      e.faults.goneOnNextDelta();
      expect((await graphRequest(`${e.url}/users/delta`, { ca: e.caCert, token: t2 })).status).toBe(410);
      expect((await graphRequest(`${e.url}/users/delta`, { ca: e.caCert, token: t2 })).status).toBe(200);
    } finally {
      await e.close();
    }
  });

  it('groups: members@delta with additions, removals and a large group split over entries', async () => {
    const e = await startGraphEmulator({ deltaMemberSlice: 10, deltaPageSize: 3 });
    try {
      const t = (await getToken(e)).body.access_token as string;
      const round = async (first: string): Promise<{ items: Array<Record<string, unknown>>; deltaLink: string }> => {
        const items: Array<Record<string, unknown>> = [];
        let link = first;
        for (;;) {
          const r = await graphRequest(link, { ca: e.caCert, token: t });
          expect(r.status, r.text).toBe(200);
          items.push(...r.body.value);
          if (r.body['@odata.deltaLink']) return { items, deltaLink: r.body['@odata.deltaLink'] };
          link = r.body['@odata.nextLink'];
        }
      };
      const { userIds } = e.state.seed({ users: 30 });
      const big = e.state.addGroup({ displayName: 'big' }).id;
      const small = e.state.addGroup({ displayName: 'small' }).id;
      const empty = e.state.addGroup({ displayName: 'empty' }).id;
      for (const u of userIds.slice(0, 25)) e.state.addMember(big, u);
      e.state.addMember(small, userIds[29]!);
      e.state.addMember(small, big);

      const init = await round(`${e.url}/groups/delta?$select=id,displayName,members`);
      const bigEntries = init.items.filter((x) => x.id === big);
      expect(bigEntries).toHaveLength(3);
      expect(bigEntries[0]!.displayName).toBe('big');
      const merged = bigEntries.flatMap((x) => x['members@delta'] as Array<{ id: string }>);
      expect(new Set(merged.map((m) => m.id))).toEqual(new Set(userIds.slice(0, 25)));
      expect(init.items.find((x) => x.id === empty)).toEqual({ id: empty, displayName: 'empty' });
      expect(init.items.find((x) => x.id === small)!['members@delta']).toContainEqual({ '@odata.type': '#microsoft.graph.group', id: big });

      e.state.removeMember(big, userIds[0]!);
      e.state.addMember(small, userIds[1]!);
      e.state.hardDeleteUser(userIds[29]!);
      e.state.renameGroup(empty, 'renamed');
      e.state.deleteGroup(big);
      const inc = await round(init.deltaLink);
      const byId = new Map(inc.items.map((x) => [x.id as string, x]));
      expect(byId.get(big)).toEqual({ '@odata.type': '#microsoft.graph.group', id: big, '@removed': { reason: 'deleted' } });
      expect(byId.get(empty)).toEqual({ id: empty, displayName: 'renamed' });
      const sm = byId.get(small)!['members@delta'] as unknown[];
      expect(sm).toEqual(
        expect.arrayContaining([
          { '@odata.type': '#microsoft.graph.user', id: userIds[1] },
          { '@odata.type': '#microsoft.graph.user', id: userIds[29], '@removed': { reason: 'deleted' } },
          { '@odata.type': '#microsoft.graph.group', id: big, '@removed': { reason: 'deleted' } },
        ]),
      );
      expect(sm).toHaveLength(3);

      // without members in $select membership changes are not tracked
      const noMembers = await round(`${e.url}/groups/delta?$select=displayName`);
      e.state.addMember(small, userIds[2]!);
      expect((await round(noMembers.deltaLink)).items).toEqual([]);
    } finally {
      await e.close();
    }
  });
});

describe('faults and assignments', () => {
  it('throttles with a fractional Retry-After, count-limited, and 503/504', async () => {
    const f = emu.faults.throttle('/v1.0/users', { count: 2, retryAfter: 2.128 });
    for (let i = 0; i < 2; i++) {
      const r = await get('/users?$top=1');
      expectGraphError(r, 429, 'TooManyRequests');
      expect(r.headers['retry-after']).toBe('2.128');
      expect(r.body.error.innerError.status).toBe('429');
    }
    expect(f.hits).toBe(2);
    expect((await get('/users?$top=1')).status).toBe(200);
    expect((await get('/groups?$top=1')).status).toBe(200);
    emu.faults.unavailable(/\/groups$/, { retryAfter: 3 });
    const u = await get('/groups?$top=1');
    expectGraphError(u, 503, 'serviceNotAvailable');
    expect(u.headers['retry-after']).toBe('3');
    emu.faults.unavailable(undefined, { status: 504 });
    expect((await get('/groups?$top=1')).status).toBe(504);
    emu.faults.throttle(undefined, { retryAfter: null });
    const noHeader = await get('/groups?$top=1');
    expect(noHeader.status).toBe(429);
    expect(noHeader.headers['retry-after']).toBeUndefined();
  });

  it('drops connections mid-response and before the headers', async () => {
    emu.faults.drop('/v1.0/users');
    await expect(get('/users?$top=5')).rejects.toThrow();
    emu.faults.drop('/v1.0/users', { phase: 'beforeHeaders' });
    await expect(get('/users?$top=5')).rejects.toThrow();
    expect((await get('/users?$top=5')).status).toBe(200);
    // a retried page (same nextLink) still works after a drop
    const p1 = await get('/users?$top=5');
    emu.faults.drop();
    await expect(get(p1.body['@odata.nextLink'])).rejects.toThrow();
    expect((await get(p1.body['@odata.nextLink'])).body.value).toHaveLength(5);
    emu.faults.add({ kind: 'emptyPage', match: '/v1.0/users' });
    const empty = await get(p1.body['@odata.nextLink']);
    expect(empty.body.value).toEqual([]);
    expect((await get(empty.body['@odata.nextLink'])).body.value).toHaveLength(5);
  });

  it('lists appRoleAssignedTo with paging and resolves the service principal by appId', async () => {
    const sp = emu.servicePrincipal;
    const users = [...emu.state.users.keys()].slice(0, 5);
    for (const u of users) emu.state.assign(sp.id, u);
    const grp = emu.state.addGroup({ displayName: 'assigned' }).id;
    emu.state.assign(sp.id, grp);
    const byFilter = await get(`/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${emu.clientId}'`)}&$select=id,appId,appRoleAssignmentRequired`);
    expect(byFilter.body.value).toEqual([{ id: sp.id, appId: emu.clientId, appRoleAssignmentRequired: true }]);
    expect((await get(`/servicePrincipals(appId='${emu.clientId}')?$select=id`)).body).toMatchObject({ id: sp.id });
    const { items, pages } = await all(`/servicePrincipals/${sp.id}/appRoleAssignedTo?$top=4`);
    expect(pages).toHaveLength(2);
    expect(items).toHaveLength(6);
    expect(items[5]).toMatchObject({ principalId: grp, principalType: 'Group', principalDisplayName: 'assigned', resourceId: sp.id, appRoleId: '00000000-0000-0000-0000-000000000000' });
    const viaAppId = await get(`/servicePrincipals(appId='${emu.clientId}')/appRoleAssignedTo?$select=principalId,principalType`);
    expect(viaAppId.body.value).toHaveLength(6);
    expect(Object.keys(viaAppId.body.value[0]).sort()).toEqual(['id', 'principalId', 'principalType']);
    emu.state.unassign(sp.id, grp);
    expect((await get(`/servicePrincipals/${sp.id}/appRoleAssignedTo`)).body.value).toHaveLength(5);
  });

  it('logs requests with path, query and headers', async () => {
    emu.clearRequests();
    await get('/groups?$select=id&$top=7', { ConsistencyLevel: 'eventual' });
    expect(emu.requests).toEqual([
      expect.objectContaining({ method: 'GET', path: '/v1.0/groups', query: { $select: 'id', $top: '7' }, status: 200, headers: expect.objectContaining({ consistencyLevel: 'eventual', authorization: 'bearer' }) }),
    ]);
  });

  it('is reachable with plain fetch when NODE_EXTRA_CA_CERTS names its certificate', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'graph-emu-ca-'));
    try {
      const ca = path.join(dir, 'ca.pem');
      await fs.writeFile(ca, emu.caCert);
      const script = `
        const form = new URLSearchParams({ client_id: process.env.CID, client_secret: process.env.SECRET, scope: 'https://graph.microsoft.com/.default', grant_type: 'client_credentials' });
        const t = await (await fetch(process.env.AUTHORITY + '/oauth2/v2.0/token', { method: 'POST', body: form })).json();
        const r = await fetch(process.env.GRAPH + '/users?$top=2&$select=id', { headers: { authorization: 'Bearer ' + t.access_token } });
        const body = await r.json();
        console.log(JSON.stringify({ status: r.status, n: body.value.length, next: typeof body['@odata.nextLink'] }));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: ca, CID: emu.clientId, SECRET: emu.clientSecret, AUTHORITY: `${emu.authorityHost}/${emu.tenantId}`, GRAPH: emu.url },
      });
      expect(JSON.parse(stdout)).toEqual({ status: 200, n: 2, next: 'string' });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('seeds a large tenant quickly', async () => {
    const e = await startGraphEmulator();
    try {
      const t0 = performance.now();
      const r = e.state.seed({ users: 20_000, groups: 1_000, memberships: 100_000, nestedGroups: 200 });
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(r.memberships).toBe(100_000);
      expect(e.state.users.size).toBe(20_000);
    } finally {
      await e.close();
    }
  });
});

describe('memberOf and transitiveMemberOf', () => {
  let e: GraphEmulator;
  let t: string;
  const ids: Record<string, string> = {};
  const g = (path: string, headers: Record<string, string> = {}): Promise<GraphResponse> => graphRequest(path.startsWith('https://') ? path : `${e.url}${path}`, { ca: e.caCert, token: t, headers });

  beforeAll(async () => {
    e = await startGraphEmulator();
    t = (await getToken(e)).body.access_token;
    const st = e.state;
    ids.u = st.addUser({ userPrincipalName: 'grace@contoso.com', displayName: 'Grace Hopper' }).id;
    ids.gone = st.addUser({ userPrincipalName: 'gone@contoso.com' }).id;
    for (const n of ['eng', 'rnd', 'staff', 'jira', 'deleted', 'above-deleted', 'unrelated']) ids[n] = st.addGroup({ displayName: n, description: `${n} group` }).id;
    st.addMember(ids.eng!, ids.u);
    st.addMember(ids.jira!, ids.u);
    st.addMember(ids.deleted!, ids.u);
    st.addMember(ids.rnd!, ids.eng!); // eng ⊂ rnd ⊂ staff ⊂ eng: a cycle
    st.addMember(ids.staff!, ids.rnd!);
    st.addMember(ids.eng!, ids.staff!);
    st.addMember(ids['above-deleted']!, ids.deleted!);
    st.addMember(ids.deleted!, ids.gone);
    st.softDeleteGroup(ids.deleted!);
    st.softDeleteUser(ids.gone);
  });
  afterAll(async () => e.close());

  it('lists direct groups with @odata.type, by id or userPrincipalName, without soft-deleted groups', async () => {
    const r = await g(`/users/${ids.u}/memberOf?$select=id,displayName`);
    expect(r.status, r.text).toBe(200);
    expect(r.body['@odata.context']).toBe(`${e.url}/$metadata#directoryObjects(id,displayName)`);
    expect(r.body.value).toEqual([
      { '@odata.type': '#microsoft.graph.group', id: ids.eng, displayName: 'eng' },
      { '@odata.type': '#microsoft.graph.group', id: ids.jira, displayName: 'jira' },
    ]);
    const byUpn = await g('/users/GRACE@contoso.com/memberOf');
    expect(byUpn.body.value.map((x: { id: string }) => x.id)).toEqual([ids.eng, ids.jira]);
    // default group properties without $select
    expect(byUpn.body.value[0]).toMatchObject({ '@odata.type': '#microsoft.graph.group', description: 'eng group', securityEnabled: true, groupTypes: [] });
    const cast = await g(`/users/${ids.u}/memberOf/microsoft.graph.group?$select=displayName`);
    expect(cast.body['@odata.context']).toBe(`${e.url}/$metadata#directoryObjects/microsoft.graph.group(id,displayName)`);
    expect(cast.body.value).toHaveLength(2);
    expect((await g(`/users/${ids.u}/memberOf/$count`, { ConsistencyLevel: 'eventual' })).text).toBe('2');
    expectGraphError(await g(`/users/${ids.u}/memberOf/$count`), 400, 'Request_BadRequest');
    // the emulator has no directory roles: the cast is valid and empty
    expect((await g(`/users/${ids.u}/memberOf/microsoft.graph.directoryRole`)).body.value).toEqual([]);
    expectGraphError(await g(`/users/${ids.u}/memberOf/microsoft.graph.user`), 400, 'Request_UnsupportedQuery');
  });

  it('follows nested groups transitively, cycle-safe, and not through a soft-deleted group', async () => {
    const r = await g(`/users/${ids.u}/transitiveMemberOf?$select=id,displayName`);
    expect(r.status, r.text).toBe(200);
    const names = (r.body.value as Array<{ displayName: string }>).map((x) => x.displayName);
    expect(names.sort()).toEqual(['eng', 'jira', 'rnd', 'staff']);
    expect(r.body.value.every((x: Record<string, unknown>) => x['@odata.type'] === '#microsoft.graph.group')).toBe(true);
    expect((await g(`/users/${ids.u}/transitiveMemberOf/microsoft.graph.group/$count`, { ConsistencyLevel: 'eventual' })).text).toBe('4');
    // groups have memberships too
    const ofGroup = await g(`/groups/${ids.eng}/transitiveMemberOf?$select=displayName`);
    expect(ofGroup.body.value.map((x: { displayName: string }) => x.displayName).sort()).toEqual(['rnd', 'staff']);
    expect((await g(`/groups/${ids.rnd}/memberOf?$select=displayName`)).body.value).toEqual([{ '@odata.type': '#microsoft.graph.group', id: ids.staff, displayName: 'staff' }]);
    // restoring the group brings it (and the group above it) back
    e.state.restoreGroup(ids.deleted!);
    try {
      const back = await g(`/users/${ids.u}/transitiveMemberOf?$select=displayName`);
      expect(back.body.value.map((x: { displayName: string }) => x.displayName).sort()).toEqual(['above-deleted', 'deleted', 'eng', 'jira', 'rnd', 'staff']);
    } finally {
      e.state.softDeleteGroup(ids.deleted!);
    }
  });

  it('pages with $top and nextLinks, checks $top and $select, and needs advanced queries for $filter', async () => {
    const pages: GraphResponse[] = [];
    for (let link: string | undefined = `/users/${ids.u}/transitiveMemberOf?$top=1&$select=id`; link; ) {
      const r = await g(link);
      expect(r.status, r.text).toBe(200);
      pages.push(r);
      link = r.body['@odata.nextLink'];
      if (link) expect(new URL(link).searchParams.get('$top')).toBe('1');
    }
    expect(pages.map((p) => p.body.value.length)).toEqual([1, 1, 1, 1]);
    expect(new Set(pages.map((p) => p.body.value[0].id)).size).toBe(4);
    for (const top of ['0', '1000']) expectGraphError(await g(`/users/${ids.u}/memberOf?$top=${top}`), 400, 'Request_UnsupportedQuery');
    expectGraphError(await g(`/users/${ids.u}/memberOf?$select=nope`), 400, 'Request_BadRequest');
    const f = `/users/${ids.u}/transitiveMemberOf/microsoft.graph.group?$filter=${encodeURIComponent("startswith(displayName,'r')")}&$select=displayName`;
    expectGraphError(await g(f), 400, 'Request_UnsupportedQuery');
    const adv = await g(`${f}&$count=true`, { ConsistencyLevel: 'eventual' });
    expect(adv.status, adv.text).toBe(200);
    expect(adv.body['@odata.count']).toBe(1);
    expect(adv.body.value).toEqual([{ '@odata.type': '#microsoft.graph.group', id: ids.rnd, displayName: 'rnd' }]);
  });

  it('answers 404 for a soft-deleted or unknown user and a soft-deleted group', async () => {
    expectGraphError(await g(`/users/${ids.gone}/memberOf`), 404, 'Request_ResourceNotFound');
    expectGraphError(await g('/users/gone@contoso.com/transitiveMemberOf'), 404, 'Request_ResourceNotFound');
    expectGraphError(await g('/users/00000000-0000-0000-0000-0000000000ff/memberOf'), 404, 'Request_ResourceNotFound');
    expectGraphError(await g(`/groups/${ids.deleted}/memberOf`), 404, 'Request_ResourceNotFound');
  });
});

describe('application permissions', () => {
  it('puts the granted permissions into new tokens and enforces them per endpoint with 403', async () => {
    const e = await startGraphEmulator({ permissions: [] });
    try {
      const u = e.state.addUser({ userPrincipalName: 'ada@contoso.com', displayName: 'Ada' }).id;
      const grp = e.state.addGroup({ displayName: 'devs' }).id;
      e.state.addMember(grp, u);
      e.state.assign(e.servicePrincipal.id, u);
      const newToken = async (): Promise<string> => (await getToken(e)).body.access_token;
      const status = async (tok: string, path: string): Promise<number> => (await graphRequest(`${e.url}${path}`, { ca: e.caCert, token: tok })).status;
      const sp = e.servicePrincipal.id;
      const paths = {
        users: '/users',
        user: `/users/${u}`,
        userDelta: '/users/delta',
        memberOf: `/users/${u}/memberOf`,
        groups: '/groups',
        members: `/groups/${grp}/members`,
        transitive: `/groups/${grp}/transitiveMembers`,
        groupDelta: '/groups/delta',
        sps: `/servicePrincipals?$filter=${encodeURIComponent(`appId eq '${e.clientId}'`)}`,
        assigned: `/servicePrincipals/${sp}/appRoleAssignedTo`,
        deletedUsers: '/directory/deletedItems/microsoft.graph.user',
      };
      const matrix = async (tok: string): Promise<Record<string, number>> => {
        const out: Record<string, number> = {};
        for (const [k, p] of Object.entries(paths)) out[k] = await status(tok, p);
        return out;
      };

      // no consent: a token without a roles claim, and 403 everywhere
      const none = await newToken();
      expect(decodeJwt(none)!.payload).not.toHaveProperty('roles');
      const denied = await graphRequest(`${e.url}/users`, { ca: e.caCert, token: none });
      expectGraphError(denied, 403, 'Authorization_RequestDenied');
      expect(denied.body.error.message).toBe('Insufficient privileges to complete the operation.');
      expect(Object.values(await matrix(none)).every((s) => s === 403)).toBe(true);

      // User.ReadBasic.All: users but not users/delta; a consent change needs a new token
      e.auth.permissions.add('User.ReadBasic.All');
      expect(await status(none, '/users')).toBe(403);
      const basic = await newToken();
      expect(decodeJwt(basic)!.payload.roles).toEqual(['User.ReadBasic.All']);
      expect(await matrix(basic)).toEqual({ users: 200, user: 200, userDelta: 403, memberOf: 200, groups: 403, members: 403, transitive: 403, groupDelta: 403, sps: 403, assigned: 403, deletedUsers: 200 });
      // memberOf without a group permission: the groups come back with limited information
      const limited = await graphRequest(`${e.url}/users/${u}/memberOf?$select=id,displayName`, { ca: e.caCert, token: basic });
      expect(limited.body.value).toEqual([{ '@odata.type': '#microsoft.graph.group', id: grp, displayName: null }]);

      // GroupMember.Read.All alone: groups, members and group delta; user members with limited information
      e.auth.permissions = ['GroupMember.Read.All'];
      const gm = await newToken();
      expect(await matrix(gm)).toEqual({ users: 403, user: 403, userDelta: 403, memberOf: 403, groups: 200, members: 200, transitive: 200, groupDelta: 200, sps: 403, assigned: 403, deletedUsers: 403 });
      const members = await graphRequest(`${e.url}/groups/${grp}/members?$select=id,userPrincipalName,displayName`, { ca: e.caCert, token: gm });
      expect(members.body.value).toEqual([{ '@odata.type': '#microsoft.graph.user', id: u, userPrincipalName: null, displayName: null }]);

      // the defaults cover everything a pull sync reads
      e.auth.permissions = ['User.Read.All', 'Group.Read.All', 'Application.Read.All'];
      const full = await newToken();
      expect(Object.values(await matrix(full)).every((s) => s === 200)).toBe(true);
      expect((await graphRequest(`${e.url}/users/${u}/memberOf?$select=displayName`, { ca: e.caCert, token: full })).body.value[0].displayName).toBe('devs');
      // Directory.Read.All alone covers all of it too; the older tokens keep what they had
      e.auth.permissions = new Set(['Directory.Read.All']);
      expect(Object.values(await matrix(await newToken())).every((s) => s === 200)).toBe(true);
      expect(await status(basic, '/groups')).toBe(403);
      // an unknown path is still a 400, not a 403
      expect(await status(full, '/nothing-here')).toBe(400);
    } finally {
      await e.close();
    }
  });
});

describe('certificate credentials (client assertions)', () => {
  let e: GraphEmulator;
  let good: ClientCertificate;
  let other: ClientCertificate;
  const tokenUrl = (): string => `${e.authorityHost}/${e.tenantId}/oauth2/v2.0/token`;

  /** a ConfidentialClientApplication configured like src/sources/graph/client.ts, trusting the emulator's CA */
  function msalApp(clientCertificate: { thumbprintSha256?: string; thumbprint?: string; privateKey: string; x5c?: string }): ConfidentialClientApplication {
    const send = async <T>(method: string, url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> => {
      const r = await graphRequest(url, { ca: e.caCert, method, ...(options?.headers ? { headers: options.headers } : {}), ...(options?.body !== undefined ? { body: options.body } : {}) });
      return { status: r.status, headers: r.headers as Record<string, string>, body: (r.body ?? {}) as T };
    };
    const networkClient: INetworkModule = {
      sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('GET', url, options),
      sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>('POST', url, options),
    };
    return new ConfidentialClientApplication({
      auth: { clientId: e.clientId, clientCertificate, authority: `${e.authorityHost}/${e.tenantId}`, knownAuthorities: [e.host] },
      system: { networkClient },
    });
  }

  /** a hand-made assertion, signed with a certificate's key */
  function assertion(cert: ClientCertificate, opts: { header?: Record<string, unknown>; claims?: Record<string, unknown>; alg?: 'RS256' | 'PS256'; key?: string } = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const alg = opts.alg ?? 'PS256';
    const header = { alg, typ: 'JWT', 'x5t#S256': Buffer.from(cert.thumbprintSha256Hex, 'hex').toString('base64url'), ...opts.header };
    const claims = { aud: tokenUrl(), iss: e.clientId, sub: e.clientId, jti: randomUUID(), nbf: now, iat: now, exp: now + 600, ...opts.claims };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const key = createPrivateKey(opts.key ?? cert.privateKeyPem);
    const sig = alg === 'PS256' ? sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }) : sign('sha256', Buffer.from(input), key);
    return `${input}.${sig.toString('base64url')}`;
  }

  function postAssertion(jwt: string, extra: Record<string, string> = {}, path = `/${e.tenantId}/oauth2/v2.0/token`): Promise<GraphResponse> {
    const form = { client_id: e.clientId, scope: 'https://graph.microsoft.com/.default', grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt, ...extra };
    return graphRequest(`${e.authorityHost}${path}`, { ca: e.caCert, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
  }

  function expectAad(r: GraphResponse, status: number, error: string, code: number, text?: RegExp): void {
    expect(r.status, r.text).toBe(status);
    expect(r.body.error).toBe(error);
    expect(r.body.error_codes).toEqual([code]);
    expect(r.body.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
    if (text) expect(r.body.error_description).toMatch(text);
  }

  beforeAll(async () => {
    [good, other] = await Promise.all([generateClientCertificate(), generateClientCertificate({ commonName: 'someone-else' })]);
    e = await startGraphEmulator({ certificates: [good.certPem] });
  });
  afterAll(async () => e.close());

  it('generates RSA client certificates with their SHA-256 thumbprint', () => {
    const x = new X509Certificate(good.certPem);
    expect(good.thumbprintSha256Hex).toBe(x.fingerprint256.replace(/:/g, ''));
    expect(good.thumbprintSha1Hex).toBe(x.fingerprint.replace(/:/g, ''));
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    expect(good.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(e.auth.certificates.map((c) => c.thumbprintSha256Hex)).toEqual([good.thumbprintSha256Hex]);
  });

  it('gives msal-node a token for clientCertificate {thumbprintSha256, privateKey} (PS256, x5t#S256)', async () => {
    const result = await msalApp({ thumbprintSha256: good.thumbprintSha256Hex, privateKey: good.privateKeyPem }).acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
    expect(result?.accessToken).toBeTruthy();
    const claims = decodeJwt(result!.accessToken)!.payload;
    expect(claims).toMatchObject({ appid: e.clientId, appidacr: '2', idtyp: 'app', roles: ['User.Read.All', 'Group.Read.All', 'Application.Read.All'] });
    const r = await graphRequest(`${e.url}/users?$top=1`, { ca: e.caCert, token: result!.accessToken });
    expect(r.status, r.text).toBe(200);
    // the deprecated SHA-1 form (RS256, x5t) and an x5c header are accepted too
    const sha1 = await msalApp({ thumbprint: good.thumbprintSha1Hex, privateKey: good.privateKeyPem, x5c: good.certPem }).acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
    expect(decodeJwt(sha1!.accessToken)!.payload.appidacr).toBe('2');
  });

  it('refuses msal-node with a certificate that is not registered (AADSTS700027, key not found)', async () => {
    const app = msalApp({ thumbprintSha256: other.thumbprintSha256Hex, privateKey: other.privateKeyPem });
    const err = await app.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] }).then(
      () => undefined,
      (x: unknown) => x as { errorCode?: string; errorMessage?: string },
    );
    expect(err?.errorCode).toBe('invalid_client');
    expect(err?.errorMessage).toMatch(/AADSTS700027: Client assertion contains an invalid signature\. \[Reason - The key was not found\., Thumbprint of key used by client: '[0-9A-F]{64}'/);
    // a registered thumbprint with the wrong key: the signature does not verify
    const wrongKey = await msalApp({ thumbprintSha256: good.thumbprintSha256Hex, privateKey: other.privateKeyPem })
      .acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] })
      .then(() => undefined, (x: unknown) => x as { errorCode?: string; errorMessage?: string });
    expect(wrongKey?.errorCode).toBe('invalid_client');
    expect(wrongKey?.errorMessage).toMatch(/AADSTS700027: .*The provided signature value did not match the expected signature value\./);
  });

  it('validates the assertion like Entra: audience, issuer/subject, time range, type, header, claims', async () => {
    expect((await postAssertion(assertion(good))).status).toBe(200);
    expect((await postAssertion(assertion(good, { alg: 'RS256' }))).status).toBe(200);
    // the audience may be the v1 token endpoint or the tenant's domain; client_id may be left out
    expect((await postAssertion(assertion(good, { claims: { aud: `${e.authorityHost}/${e.tenantId}/oauth2/token` } }))).status).toBe(200);
    expect((await postAssertion(assertion(good, { claims: { aud: `${e.authorityHost}/${e.tenantDomain}/oauth2/v2.0/token` } }))).status).toBe(200);
    expect((await postAssertion(assertion(good), { client_id: '' })).status).toBe(200);

    expectAad(await postAssertion(assertion(good, { claims: { aud: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' } })), 401, 'invalid_client', 700023, /audience claim does not match Realm issuer/);
    expectAad(await postAssertion(assertion(good, { claims: { aud: [tokenUrl()] } })), 401, 'invalid_client', 700023);
    expectAad(await postAssertion(assertion(good, { claims: { iss: 'someone-else' } })), 401, 'invalid_client', 700021, /doesn't match 'client_id'/);
    const old = Math.floor(Date.now() / 1000) - 3600;
    expectAad(await postAssertion(assertion(good, { claims: { nbf: old - 600, iat: old - 600, exp: old } })), 401, 'invalid_client', 700024, /not within its valid time range/);
    expectAad(await postAssertion(assertion(good, { claims: { nbf: old + 7200 + 600 } })), 401, 'invalid_client', 700024);
    expectAad(await postAssertion(assertion(good, { claims: { jti: undefined } })), 400, 'invalid_request', 50027);
    expectAad(await postAssertion(assertion(good, { header: { 'x5t#S256': undefined } })), 400, 'invalid_request', 50027, /No certificate thumbprint/);
    expectAad(await postAssertion(assertion(good, { header: { alg: 'HS256' } })), 400, 'invalid_request', 50027);
    expectAad(await postAssertion('not.a.jwt'), 400, 'invalid_request', 50027);
    expectAad(await postAssertion(assertion(good), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }), 400, 'invalid_request', 90011);
    expectAad(await postAssertion(assertion(good), { client_assertion_type: '' }), 400, 'invalid_request', 900144);
    // the client id is checked before the credential
    expectAad(await postAssertion(assertion(good), { client_id: 'another-app' }), 400, 'unauthorized_client', 700016);
  });

  it('adds and removes certificates at run time, and refuses a certificate past its end date', async () => {
    expectAad(await postAssertion(assertion(other)), 401, 'invalid_client', 700027, /The key was not found/);
    const info = e.auth.addCertificate(other.certPem);
    expect(info.thumbprintSha256Hex).toBe(other.thumbprintSha256Hex);
    expect((await postAssertion(assertion(other))).status).toBe(200);
    expect(e.auth.removeCertificate(other.thumbprintSha1Hex.toLowerCase())).toBe(true);
    expect(e.auth.removeCertificate(other.certPem)).toBe(false);
    expectAad(await postAssertion(assertion(other)), 401, 'invalid_client', 700027);

    const short = await generateClientCertificate({ days: 1 });
    const e2 = await startGraphEmulator({ certificates: [short.certPem], clientId: e.clientId, tenantId: e.tenantId });
    try {
      const post = (jwt: string): Promise<GraphResponse> =>
        graphRequest(`${e2.authorityHost}/${e2.tenantId}/oauth2/v2.0/token`, {
          ca: e2.caCert,
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ client_id: e2.clientId, scope: 'https://graph.microsoft.com/.default', grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt }).toString(),
        });
      const aud = { aud: `${e2.authorityHost}/${e2.tenantId}/oauth2/v2.0/token` };
      expect((await post(assertion(short, { claims: aud }))).status).toBe(200);
      e2.state.advanceClock(2 * 24 * 3600 * 1000);
      expectAad(await post(assertion(short, { claims: aud })), 401, 'invalid_client', 700027, /The key used is expired\..*Found key 'Start=\d\d\/\d\d\/\d{4} /);
      // the secret still works next to certificates
      expect((await getToken(e2)).status).toBe(200);
    } finally {
      await e2.close();
    }
    await expect(startGraphEmulator({ certificates: ['not a certificate'] })).rejects.toThrow();
  });
});
