// Bad input gets the SCIM error shape with the right status, and never changes or crashes anything.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../support/server.ts';
import { scimFetch, startTestServer } from '../../support/server.ts';

const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

function expectScimError(res: { status: number; headers: Headers; body: unknown }, status: number, scimType?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
  expect(res.body).toMatchObject({ schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}) });
  expect(typeof (res.body as { detail: unknown }).detail).toBe('string');
}

describe('bad input to the SCIM endpoints', () => {
  let server: TestServer;
  let otherToken: string;
  let userId: string;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { BODY_LIMIT: '4096' } });
    await server.service.connectors.create({ id: 'second', name: 'Second', kind: 'scim' }, 'test');
    otherToken = (await server.service.connectors.createToken('second', '', 'test')).token;
    const res = await server.scim('/Users', { method: 'POST', body: { userName: 'existing@example.com' } });
    userId = res.body.id;
  });
  afterAll(async () => server.close());

  const userCount = async () => (await server.scim('/Users?count=0')).body.totalResults as number;

  describe('authentication', () => {
    it('answers 401 with WWW-Authenticate when there is no or a wrong token', async () => {
      for (const token of [null, '', 'usy_wrong', server.token + 'x']) {
        const res = await server.scim('/Users', { token });
        expectScimError(res, 401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      const basic = await scimFetch(`${server.base}/Users`, null, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
      expectScimError(basic, 401);
    });

    it('answers an unknown connector exactly like a wrong token', async () => {
      const unknown = await scimFetch(`${server.origin}/scim/v2/does-not-exist/Users`, server.token);
      const wrong = await server.scim('/Users', { token: 'usy_wrong' });
      expectScimError(unknown, 401);
      expect(unknown.body).toEqual(wrong.body);
      const weird = await scimFetch(`${server.origin}/scim/v2/${'x'.repeat(500)}/Users`, server.token);
      expectScimError(weird, 401);
    });

    it("never lets one connector's token reach another connector's data", async () => {
      const res = await scimFetch(`${server.origin}/scim/v2/second/Users`, server.token);
      expectScimError(res, 401);
      const own = await scimFetch(`${server.origin}/scim/v2/second/Users/${userId}`, otherToken);
      expectScimError(own, 404);
      const cross = await server.scim(`/Users/${userId}`, { token: otherToken });
      expectScimError(cross, 401);
    });

    it('answers 403 for a valid token of a disabled connector', async () => {
      await server.service.connectors.setEnabled('second', false, 'test');
      await new Promise((r) => setTimeout(r, 2100)); // credentials are cached for two seconds
      const res = await scimFetch(`${server.origin}/scim/v2/second/Users`, otherToken);
      expectScimError(res, 403);
      await server.service.connectors.setEnabled('second', true, 'test');
    });
  });

  describe('bodies', () => {
    it('refuses malformed JSON with 400 invalidSyntax', async () => {
      for (const body of ['{"userName": ', '{userName: "x"}', '[1,2', 'nul']) {
        expectScimError(await server.scim('/Users', { method: 'POST', body }), 400, 'invalidSyntax');
      }
    });

    it('refuses other content types with 415', async () => {
      const res = await server.scim('/Users', { method: 'POST', body: 'userName=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expectScimError(res, 415);
      const xml = await server.scim('/Users', { method: 'POST', body: '<user/>', headers: { 'content-type': 'text/xml' } });
      expectScimError(xml, 415);
    });

    it('accepts application/json and application/scim+json with a charset', async () => {
      const a = await server.scim('/Users', { method: 'POST', body: { userName: 'ct1' }, headers: { 'content-type': 'application/json' } });
      const b = await server.scim('/Users', { method: 'POST', body: { userName: 'ct2' }, headers: { 'content-type': 'application/scim+json; charset=utf-8' } });
      expect([a.status, b.status]).toEqual([201, 201]);
    });

    it('refuses an oversized body with 413', async () => {
      const res = await server.scim('/Users', { method: 'POST', body: { userName: 'big', title: 'x'.repeat(10_000) } });
      expectScimError(res, 413);
    });

    it('refuses unknown attributes and wrong types, changing nothing', async () => {
      const before = await userCount();
      const cases: [Record<string, unknown>, string][] = [
        [{ userName: 'u1', favouriteColour: 'blue' }, 'invalidSyntax'],
        [{ userName: 'u2', name: { givenName: 'A', nickname: 'B' } }, 'invalidSyntax'],
        [{ userName: 42 }, 'invalidValue'],
        [{ userName: 'u3', active: 'maybe' }, 'invalidValue'],
        [{ userName: 'u4', emails: 'a@b.c' }, 'invalidValue'],
        [{ userName: 'u5', name: 'Ada' }, 'invalidValue'],
        [{ userName: '' }, 'invalidValue'],
        [{ displayName: 'no user name' }, 'invalidValue'],
        [{ userName: 'u6', schemas: ['urn:example:unknown'] }, 'invalidSyntax'],
        [{ userName: 'u7', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': 'not an object' }, 'invalidValue'],
      ];
      for (const [body, scimType] of cases) {
        expectScimError(await server.scim('/Users', { method: 'POST', body }), 400, scimType);
      }
      expectScimError(await server.scim('/Users', { method: 'POST', body: [] }), 400, 'invalidSyntax');
      expectScimError(await server.scim('/Users', { method: 'POST', body: 'null' }), 400, 'invalidSyntax');
      expectScimError(await server.scim('/Users', { method: 'POST' }), 400, 'invalidSyntax');
      expect(await userCount()).toBe(before);
    });

    it('refuses malformed PATCH requests without changing the resource', async () => {
      const before = (await server.scim(`/Users/${userId}`)).body;
      const bodies = [
        {},
        { Operations: 'replace' },
        { Operations: [{ op: 'explode', path: 'title', value: 'x' }] },
        { Operations: [{ op: 'replace', path: 'noSuchAttribute', value: 'x' }] },
        { Operations: [{ op: 'replace', path: 'emails[type eq', value: 'x' }] },
        { Operations: [{ op: 'replace', path: 'title', value: 'ok' }, { op: 'remove' }] },
        { Operations: [{ op: 'replace', path: 'active', value: 'perhaps' }] },
        { Operations: [{ op: 'replace', path: 'id', value: 'mine' }] },
      ];
      for (const body of bodies) {
        const res = await server.scim(`/Users/${userId}`, { method: 'PATCH', body });
        expect(res.status).toBe(400);
        expect(res.body.schemas).toEqual([ERROR]);
      }
      expect((await server.scim(`/Users/${userId}`)).body).toEqual(before);
    });
  });

  describe('queries', () => {
    it('treats SQL-looking filter values as plain strings', async () => {
      const values = [`' OR 1=1 --`, `"; DROP TABLE mirror_users; --`, `%`, `_`, `\\`, `existing@example.com' --`];
      for (const v of values) {
        const res = await server.scim(`/Users?filter=${encodeURIComponent(`userName eq ${JSON.stringify(v)}`)}`);
        expect(res.status).toBe(200);
        expect(res.body.totalResults).toBe(0);
        const co = await server.scim(`/Users?filter=${encodeURIComponent(`userName co ${JSON.stringify(v)}`)}`);
        expect(co.status).toBe(200);
        expect(co.body.totalResults).toBe(0);
      }
      expect(await userCount()).toBeGreaterThan(0);
    });

    it('answers invalid filters with 400 invalidFilter, never 500', async () => {
      const filters = [
        'userName eq',
        'userName zz "x"',
        'emails[type eq "work"] eq "x"',
        'userName eq "unterminated',
        '(userName eq "x"',
        'noSuchAttribute eq "x"',
        'active gt true',
        'meta.created co "2020"',
        'name eq "x"',
        'x'.repeat(12_000),
        `${'('.repeat(4000)}userName eq "x"${')'.repeat(4000)}`,
        `${'not ('.repeat(60)}userName eq "x"${')'.repeat(60)}`,
      ];
      for (const f of filters) {
        expectScimError(await server.scim(`/Users?filter=${encodeURIComponent(f)}`), 400, 'invalidFilter');
      }
    });

    it('validates paging and attribute parameters', async () => {
      expectScimError(await server.scim('/Users?startIndex=abc'), 400, 'invalidValue');
      expectScimError(await server.scim('/Users?count=1.5'), 400, 'invalidValue');
      expectScimError(await server.scim('/Users?attributes=noSuch'), 400, 'invalidValue');
      const neg = await server.scim('/Users?startIndex=-5&count=-1');
      expect(neg.status).toBe(200);
      expect(neg.body).toMatchObject({ startIndex: 1, Resources: [] });
      const big = await server.scim('/Users?count=100000');
      expect(big.status).toBe(200);
    });

    it('answers unknown ids and endpoints with 404 after authentication', async () => {
      expectScimError(await server.scim('/Users/00000000-0000-0000-0000-000000000000'), 404);
      expectScimError(await server.scim('/Groups/nope', { method: 'PATCH', body: { Operations: [] } }), 404);
      expectScimError(await server.scim('/Users/nope', { method: 'DELETE' }), 404);
      expectScimError(await server.scim('/Bulk', { method: 'POST', body: {} }), 404);
      expectScimError(await server.scim('/Nothing'), 404);
      expectScimError(await server.scim('/Nothing', { token: null }), 401);
    });

    it('keeps serving after all of the above', async () => {
      const res = await server.scim('/ServiceProviderConfig');
      expect(res.status).toBe(200);
      expect(res.body.patch.supported).toBe(true);
    });
  });
});

describe('values the stores cannot hold', () => {
  it.each(['sqlite', 'postgres'] as const)('refuses a NUL character with 400 on %s, not 500', async (dialect) => {
    const server = await startTestServer(dialect);
    try {
      const res = await server.scim('/Users', { method: 'POST', body: { userName: 'nul\u0000byte' } });
      expectScimError(res, 400, 'invalidValue');
      const user = await server.scim('/Users', { method: 'POST', body: { userName: 'fine' } });
      const patch = await server.scim(`/Users/${user.body.id}`, { method: 'PATCH', body: { Operations: [{ op: 'replace', path: 'title', value: 'a\u0000b' }] } });
      expectScimError(patch, 400, 'invalidValue');
    } finally {
      await server.close();
    }
  });
});
