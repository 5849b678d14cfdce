// Entra ID replay: every request of the catalogue in shared/reference/entra-scim.md (§5 C1–C3, U1–U8,
// G1–G7), in both of Entra's PATCH dialects (§6: the default one and the `aadOptscim062020` one), with
// Entra's transport details (§5: `+`-encoded filters, `ADSCIMVersion: 6.0`, SCIM content type), sent over
// HTTP to the running service on SQLite and PostgreSQL. Each Entra dialect is its own enterprise app
// (connector). After the traffic the reconciler runs and the directory must reflect it.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScimResponse, TestServer } from '../../support/server.ts';
import { scimFetch, startTestServer } from '../../support/server.ts';
import { DIALECTS } from '../../support/store.ts';

const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const MANAGER = `${ENT}:manager`;
const MS_GROUP_SCHEMA = 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group';

/** Headers of real Entra traffic (§5 transport details); the bearer token is added by scimFetch. */
const ENTRA_HEADERS = { 'content-type': 'application/scim+json; charset=utf-8', adscimversion: '6.0' };

type OpName = 'Add' | 'Replace' | 'Remove';
type Op = { op: string; path?: string; value?: unknown };

/** What differs between Entra's two PATCH dialects (§6). */
interface EntraDialect {
  name: 'default' | 'flagged';
  /** the Tenant URL's query flag, appended to every request */
  flag?: string;
  op(name: OpName): string;
  /** how `active` is written */
  bool(b: boolean): boolean | string;
  /** removal of one group member */
  removeMember(id: string): Op;
  /** "replace several attributes" (§6 table): the ops, and what the resource looks like afterwards */
  replaceSeveral(v: { displayName: string; email: string; givenName: string; familyName: string; externalId: string; employeeNumber: string }): Op[];
}

const ENTRA_DIALECTS: EntraDialect[] = [
  {
    name: 'default',
    op: (name) => name,
    bool: (b) => (b ? 'True' : 'False'),
    removeMember: (id) => ({ op: 'Remove', path: 'members', value: [{ value: id }] }),
    replaceSeveral: (v) => [
      { op: 'Replace', path: 'displayName', value: v.displayName },
      { op: 'Replace', path: 'emails[type eq "work"].value', value: v.email },
      { op: 'Replace', path: 'name.givenName', value: v.givenName },
      { op: 'Replace', path: 'name.familyName', value: v.familyName },
      { op: 'Replace', path: 'externalId', value: v.externalId },
      { op: 'Replace', path: `${ENT}:employeeNumber`, value: v.employeeNumber },
    ],
  },
  {
    name: 'flagged',
    flag: 'aadOptscim062020',
    op: (name) => name.toLowerCase(),
    bool: (b) => b,
    removeMember: (id) => ({ op: 'remove', path: `members[value eq "${id}"]` }),
    replaceSeveral: (v) => [
      { op: 'replace', path: 'emails[type eq "work"].value', value: v.email },
      {
        op: 'replace',
        value: {
          displayName: v.displayName,
          'name.givenName': v.givenName,
          'name.familyName': v.familyName,
          externalId: v.externalId,
          [`${ENT}:employeeNumber`]: v.employeeNumber,
        },
      },
    ],
  },
];

/** A filter as Entra encodes it in the query string: `userName+eq+%22…%22`. */
const plus = (expr: string): string => encodeURIComponent(expr).replace(/%20/g, '+');

const patchBody = (...ops: Op[]) => ({ schemas: [PATCH_OP], Operations: ops });

function expectScim(res: ScimResponse, status: number): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
}

function expectNoContent(res: ScimResponse): void {
  expect(res.status, res.text).toBe(204);
  expect(res.text).toBe('');
}

function expectScimError(res: ScimResponse, status: number, scimType?: string): void {
  expectScim(res, status);
  expect(res.body).toMatchObject({ schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}) });
}

function expectList(res: ScimResponse, total: number): Record<string, unknown>[] {
  expectScim(res, 200);
  expect(res.body).toMatchObject({ schemas: [LIST], totalResults: total, startIndex: 1 });
  expect(res.body.Resources).toHaveLength(total);
  expect(res.body.itemsPerPage).toBe(total);
  return res.body.Resources;
}

/** Paths of null values anywhere in a JSON document (Entra's deserialiser and §5 C3 want none). */
function nullsIn(v: unknown, at = '$'): string[] {
  if (v === null) return [at];
  if (Array.isArray(v)) return v.flatMap((x, i) => nullsIn(x, `${at}[${i}]`));
  if (typeof v === 'object') return Object.entries(v as object).flatMap(([k, x]) => nullsIn(x, `${at}.${k}`));
  return [];
}

describe.each(DIALECTS)('Entra ID replay on %s', (db) => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer(db, { reconcile: false });
  });
  afterAll(async () => srv?.close());

  describe.each(ENTRA_DIALECTS)('$name dialect', (d) => {
    const connectorId = `entra-${d.name}`;
    let token: string;
    const tag = randomUUID().slice(0, 8);

    /** One Entra request: Tenant URL flag, Entra headers, bearer token. */
    function entra(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ScimResponse> {
      let url = path;
      if (d.flag) {
        const [p, q] = path.split('?', 2) as [string, string | undefined];
        url = `${p}?${d.flag}${q ? `&${q}` : ''}`;
      }
      return scimFetch(`${srv.origin}/scim/v2/${connectorId}${url}`, token, {
        method,
        headers: { ...ENTRA_HEADERS, ...headers },
        ...(body !== undefined ? { body } : {}),
      });
    }
    const get = (path: string) => entra('GET', path);
    const patch = (path: string, ...ops: Op[]) => entra('PATCH', path, patchBody(...ops));
    const op = (name: OpName, path: string | undefined, value?: unknown): Op => ({
      op: d.op(name),
      ...(path !== undefined ? { path } : {}),
      ...(value !== undefined || name !== 'Remove' ? { value } : {}),
    });

    async function directoryUser(sourceId: string) {
      return srv.service.db.kysely
        .selectFrom('directory_users')
        .selectAll()
        .where('owner_connector_id', '=', connectorId)
        .where('source_id', '=', sourceId)
        .executeTakeFirst();
    }
    async function directoryGroup(sourceId: string) {
      return srv.service.db.kysely
        .selectFrom('directory_groups')
        .selectAll()
        .where('owner_connector_id', '=', connectorId)
        .where('source_id', '=', sourceId)
        .executeTakeFirst();
    }
    async function directoryMembers(groupId: string): Promise<string[]> {
      const rows = await srv.service.db.kysely.selectFrom('directory_memberships').select('user_id').where('group_id', '=', groupId).execute();
      return rows.map((r) => r.user_id).sort();
    }

    // the documented values carry test GUIDs; fresh ones keep the two dialects' users apart in the directory
    const userName = `Test_User_${randomUUID()}`;
    const workEmail = `Test_User_${randomUUID()}@testuser.com`;
    const renamed = `${randomUUID()}@testuser.com`;
    const joyUserName = `jyoung-${tag}@contoso.com`;
    const groupName = `displayName-${tag}`;
    const groupRenamed = `${randomUUID()}updatedDisplayName`;

    let userId: string; // U2's user: renamed, in the group, disabled at the end
    let joyId: string; // the documented create with explicit nulls: the manager
    let reportId: string; // a user created with a manager
    let groupId: string;
    let goneId: string; // a user deleted with DELETE

    beforeAll(async () => {
      await srv.service.connectors.create({ id: connectorId, name: `Entra ID (${d.name})`, kind: 'scim' }, 'test');
      token = (await srv.service.connectors.createToken(connectorId, 'entra', 'test')).token;
    });

    describe('§5.1 connection and discovery', () => {
      it('C1: Test Connection / keep-alive looks up a random GUID and gets 200 with an empty ListResponse', async () => {
        const res = await get(`/Users?filter=${plus(`userName eq "${randomUUID()}"`)}`);
        expectScim(res, 200);
        expect(res.body).toEqual({ schemas: [LIST], totalResults: 0, Resources: [], startIndex: 1, itemsPerPage: 0 });
        // %20 instead of + and the IBM spelling of the flag are accepted as well
        const pct = await get(`/Users?filter=${encodeURIComponent(`userName eq "${randomUUID()}"`)}&aadOptscim062020=true`);
        expectList(pct, 0);
      });

      it('C2: the random group check gets 200 with an empty ListResponse', async () => {
        expectList(await get(`/Groups?excludedAttributes=members&filter=${plus(`displayName eq "${randomUUID()}"`)}`), 0);
      });

      it('C3: /Schemas is a ListResponse of Schema resources, camelCase values, no nulls', async () => {
        const res = await get('/Schemas');
        expectScim(res, 200);
        expect(res.body.schemas).toEqual([LIST]);
        expect(nullsIn(res.body)).toEqual([]);
        const ids = (res.body.Resources as { id: string }[]).map((s) => s.id);
        expect(ids).toEqual(expect.arrayContaining([USER_SCHEMA, GROUP_SCHEMA, ENT]));
        expect(res.body.totalResults).toBe(ids.length);
        const user = (res.body.Resources as { id: string; attributes: { name: string; mutability: string; subAttributes?: { name: string }[] }[] }[]).find(
          (s) => s.id === USER_SCHEMA,
        )!;
        for (const a of user.attributes) expect(['readOnly', 'readWrite', 'immutable', 'writeOnly']).toContain(a.mutability);
        // every mapped attribute is discoverable, `emails[type eq "work"].value` included
        const emails = user.attributes.find((a) => a.name === 'emails')!;
        expect(emails.subAttributes!.map((s) => s.name)).toEqual(expect.arrayContaining(['value', 'type']));
        const one = await get(`/Schemas/${ENT}`);
        expectScim(one, 200);
        expect(one.body.attributes.map((a: { name: string }) => a.name)).toEqual(expect.arrayContaining(['manager', 'department', 'employeeNumber']));
      });

      it('ServiceProviderConfig advertises PATCH and filtering; ResourceTypes lists User and Group', async () => {
        const spc = await get('/ServiceProviderConfig');
        expectScim(spc, 200);
        expect(spc.body).toMatchObject({ patch: { supported: true }, filter: { supported: true } });
        const rt = await get('/ResourceTypes');
        expectScim(rt, 200);
        expect(rt.body.Resources.map((r: { id: string }) => r.id).sort()).toEqual(['Group', 'User']);
      });

      it('answers a wrong Secret Token with 401 and a SCIM error', async () => {
        const res = await scimFetch(`${srv.origin}/scim/v2/${connectorId}/Users?filter=${plus('userName eq "x"')}`, 'usy_wrong', { headers: ENTRA_HEADERS });
        expectScimError(res, 401);
      });
    });

    describe('§5.2 users', () => {
      it('U1: the lookup before a create finds nothing', async () => {
        expectList(await get(`/Users?filter=${plus(`userName eq "${userName}"`)}`), 0);
        expectList(await get(`/Users?filter=${plus('userName eq "non-existent user"')}`), 0);
      });

      it('U2: create answers 201 with id, externalId, meta and the values sent', async () => {
        const res = await entra('POST', '/Users', {
          schemas: [USER_SCHEMA, ENT],
          externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
          userName,
          active: true,
          emails: [{ primary: true, type: 'work', value: workEmail }],
          meta: { resourceType: 'User' },
          name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
          roles: [],
        });
        expectScim(res, 201);
        userId = res.body.id;
        expect(userId).toEqual(expect.any(String));
        expect(res.headers.get('location')).toBe(`${srv.origin}/scim/v2/${connectorId}/Users/${userId}`);
        expect(res.body).toMatchObject({
          schemas: [USER_SCHEMA],
          id: userId,
          externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
          userName,
          active: true,
          name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
          emails: [{ primary: true, type: 'work', value: workEmail }],
          meta: { resourceType: 'User', created: expect.any(String), lastModified: expect.any(String) },
        });
        expect(res.body).not.toHaveProperty('roles');
        expect(nullsIn(res.body)).toEqual([]);
      });

      it('U2: a duplicate create answers 409 uniqueness', async () => {
        const res = await entra('POST', '/Users', { schemas: [USER_SCHEMA], userName: userName.toUpperCase(), active: true });
        expectScimError(res, 409, 'uniqueness');
      });

      it('U2: the documented create with explicit nulls (and the 2.0User schema typo) is accepted', async () => {
        const res = await entra('POST', '/Users', {
          schemas: [USER_SCHEMA, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0User'],
          externalId: 'jyoung',
          userName: joyUserName,
          active: true,
          addresses: null,
          displayName: 'Joy Young',
          emails: [{ type: 'work', value: 'jyoung@Contoso.com', primary: true }],
          meta: { resourceType: 'User' },
          name: { familyName: 'Young', givenName: 'Joy' },
          phoneNumbers: null,
          preferredLanguage: null,
          title: null,
          department: null,
          manager: null,
        });
        expectScim(res, 201);
        joyId = res.body.id;
        expect(res.body).toMatchObject({ schemas: [USER_SCHEMA], externalId: 'jyoung', userName: joyUserName, displayName: 'Joy Young', active: true });
        expect(nullsIn(res.body)).toEqual([]);
        for (const k of ['addresses', 'phoneNumbers', 'preferredLanguage', 'title', 'department', 'manager', ENT]) expect(res.body).not.toHaveProperty(k);
      });

      it('U1: finds the user by userName, case-insensitively, in the documented response shape', async () => {
        for (const name of [userName, userName.toLowerCase(), userName.toUpperCase()]) {
          const [found] = expectList(await get(`/Users?filter=${plus(`userName eq "${name}"`)}`), 1);
          expect(found).toMatchObject({
            schemas: [USER_SCHEMA],
            id: userId,
            externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
            userName,
            name: { familyName: 'familyName', givenName: 'givenName' },
            active: true,
            emails: [{ value: workEmail, type: 'work', primary: true }],
            meta: { resourceType: 'User', created: expect.any(String), lastModified: expect.any(String) },
          });
        }
      });

      it('U1: finds the user by the unquoted `externalId eq jyoung` of old documentation', async () => {
        const [found] = expectList(await get(`/Users?filter=${plus('externalId eq jyoung')}`), 1);
        expect(found!.id).toBe(joyId);
        expectList(await get(`/Users?filter=${plus('externalId eq "jyoung"')}`), 1);
      });

      it('U1: finds the user by `emails[type eq "work"].value eq "…"`, case-insensitively', async () => {
        const [found] = expectList(await get(`/Users?filter=${plus('emails[type eq "work"].value eq "JYOUNG@contoso.com"')}`), 1);
        expect(found!.id).toBe(joyId);
        expectList(await get(`/Users?filter=${plus('emails[type eq "home"].value eq "jyoung@contoso.com"')}`), 0);
      });

      it('U1: filter values with #EXT#, dots and colons (B2B guests) are found', async () => {
        const guest = `alias_their.domain#EXT#@contoso-${tag}.onmicrosoft.com`;
        const created = await entra('POST', '/Users', { schemas: [USER_SCHEMA], userName: guest, externalId: `urn:guest:${tag}`, active: 'True' });
        expectScim(created, 201);
        expect(created.body.active).toBe(true);
        const [found] = expectList(await get(`/Users?filter=${plus(`userName eq "${guest}"`)}`), 1);
        expect(found!.id).toBe(created.body.id);
        expectList(await get(`/Users?filter=${plus(`externalId eq "urn:guest:${tag}"`)}`), 1);
      });

      it('U3: gets the user by id; an unknown id is a 404 with status "404"', async () => {
        const res = await get(`/Users/${userId}`);
        expectScim(res, 200);
        expect(res.body).toMatchObject({ id: userId, userName, active: true });
        expectScimError(await get('/Users/5171a35d82074e068ce2'), 404);
      });

      it('U4: replaces the work e-mail through a filtered path and name.familyName; 200 with the resource', async () => {
        const res = await patch(
          `/Users/${userId}`,
          op('Replace', 'emails[type eq "work"].value', 'updatedEmail@microsoft.com'),
          op('Replace', 'name.familyName', 'updatedFamilyName'),
        );
        expectScim(res, 200);
        expect(res.body).toMatchObject({
          id: userId,
          userName,
          name: { formatted: 'givenName familyName', familyName: 'updatedFamilyName', givenName: 'givenName' },
          active: true,
          emails: [{ value: 'updatedEmail@microsoft.com', type: 'work', primary: true }],
        });
        expect(res.body.emails).toHaveLength(1);
      });

      it('U5: renames the user (userName); the old name no longer matches', async () => {
        const res = await patch(`/Users/${userId}`, op('Replace', 'userName', renamed));
        expectScim(res, 200);
        expect(res.body).toMatchObject({ id: userId, userName: renamed });
        expectList(await get(`/Users?filter=${plus(`userName eq "${userName}"`)}`), 0);
        const [found] = expectList(await get(`/Users?filter=${plus(`userName eq "${renamed}"`)}`), 1);
        expect(found!.id).toBe(userId);
        // a rename onto another user's userName (in any case) is a 409
        expectScimError(await patch(`/Users/${userId}`, op('Replace', 'userName', joyUserName.toUpperCase())), 409, 'uniqueness');
        expect((await get(`/Users/${userId}`)).body.userName).toBe(renamed);
      });

      it('§6: replaces several attributes in the dialect\'s shape', async () => {
        const v = { displayName: 'Bjfe', email: `bjfe-${tag}@contoso.com`, givenName: 'Kkom', familyName: 'Unua', externalId: `bjfe-${tag}`, employeeNumber: 'Aklq' };
        const res = await patch(`/Users/${joyId}`, ...d.replaceSeveral(v));
        expectScim(res, 200);
        expect(res.body).toMatchObject({
          schemas: [USER_SCHEMA, ENT],
          displayName: 'Bjfe',
          externalId: v.externalId,
          name: { givenName: 'Kkom', familyName: 'Unua' },
          emails: [{ type: 'work', value: v.email, primary: true }],
          [ENT]: { employeeNumber: 'Aklq' },
        });
        // undo the externalId and e-mail change so the documented lookups keep working
        const back = await patch(`/Users/${joyId}`, op('Replace', 'externalId', 'jyoung'), op('Replace', 'emails[type eq "work"].value', 'jyoung@Contoso.com'));
        expectScim(back, 200);
      });

      it('§6: adds a single-valued string', async () => {
        const res = await patch(`/Users/${joyId}`, op('Add', 'nickName', 'Babs'));
        expectScim(res, 200);
        expect(res.body.nickName).toBe('Babs');
      });

      it('§9: a filtered path on a missing work e-mail creates it (add and replace)', async () => {
        for (const name of ['Add', 'Replace'] as const) {
          const created = await entra('POST', '/Users', { schemas: [USER_SCHEMA], userName: `nomail-${name}-${tag}@contoso.com`, active: true });
          expectScim(created, 201);
          expect(created.body).not.toHaveProperty('emails');
          const res = await patch(`/Users/${created.body.id}`, op(name, 'emails[type eq "work"].value', `nomail-${name}-${tag}@contoso.com`));
          expectScim(res, 200);
          expect(res.body.emails).toEqual([{ type: 'work', value: `nomail-${name}-${tag}@contoso.com` }]);
          expectList(await get(`/Users?filter=${plus(`emails[type eq "work"].value eq "nomail-${name}-${tag}@contoso.com"`)}`), 1);
        }
      });

      it('§9: address sub-attributes on a missing work address create ONE address', async () => {
        const res = await patch(
          `/Users/${joyId}`,
          op('Add', 'addresses[type eq "work"].streetAddress', '1 Microsoft Way'),
          op('Add', 'addresses[type eq "work"].postalCode', '98052'),
          op('Replace', 'addresses[type eq "work"].country', 'US'),
          op('Add', 'addresses[type eq "other"].formatted', 'Building 4'),
          op('Add', 'phoneNumbers[type eq "mobile"].value', '+1 555 0100'),
        );
        expectScim(res, 200);
        expect(res.body.addresses).toEqual([
          { type: 'work', streetAddress: '1 Microsoft Way', postalCode: '98052', country: 'US' },
          { type: 'other', formatted: 'Building 4' },
        ]);
        expect(res.body.phoneNumbers).toEqual([{ type: 'mobile', value: '+1 555 0100' }]);
        // a second cycle with the same values changes nothing
        const again = await patch(`/Users/${joyId}`, op('Replace', 'addresses[type eq "work"].country', 'US'));
        expect(again.body.addresses).toHaveLength(2);
        expect(again.body.meta.version).toBe(res.body.meta.version);
      });

      it('Gallery: a PATCH with "" and then with null clears an attribute', async () => {
        for (const empty of ['', null]) {
          const set = await patch(`/Users/${joyId}`, op('Replace', 'title', 'Engineer'), op('Replace', `${ENT}:department`, 'R&D'));
          expectScim(set, 200);
          expect(set.body).toMatchObject({ title: 'Engineer', [ENT]: { department: 'R&D' } });
          const cleared = await patch(`/Users/${joyId}`, op('Replace', 'title', empty), op('Replace', `${ENT}:department`, empty));
          expectScim(cleared, 200);
          expect(cleared.body).not.toHaveProperty('title');
          expect(cleared.body[ENT] ?? {}).not.toHaveProperty('department');
          const read = await get(`/Users/${joyId}`);
          expect(read.body).not.toHaveProperty('title');
          expect(nullsIn(read.body)).toEqual([]);
        }
      });

      it('U7: manager as a plain string in POST, returned in the complex form', async () => {
        const res = await entra('POST', '/Users', {
          schemas: [USER_SCHEMA, ENT],
          userName: `report-${tag}@contoso.com`,
          active: true,
          [ENT]: { manager: joyId, department: 'R&D' },
        });
        expectScim(res, 201);
        reportId = res.body.id;
        expect(res.body.schemas).toEqual([USER_SCHEMA, ENT]);
        expect(res.body[ENT]).toEqual({ manager: { value: joyId }, department: 'R&D' });
      });

      it('U7: the pre-check `id eq X and manager eq Y&attributes=id` compares manager.value', async () => {
        for (const expr of [`id eq "${reportId}" and manager eq "${joyId}"`, `id eq ${reportId} and manager eq ${joyId}`, `id eq "${reportId}" and ${MANAGER} eq "${joyId}"`]) {
          const [found] = expectList(await get(`/Users?filter=${plus(expr)}&attributes=id`), 1);
          expect(found).toEqual({ schemas: [USER_SCHEMA, ENT], id: reportId });
        }
        expectList(await get(`/Users?filter=${plus(`id eq "${reportId}" and manager eq "${userId}"`)}&attributes=id`), 0);
        expectList(await get(`/Users?filter=${plus(`id eq "${joyId}" and manager eq "${joyId}"`)}&attributes=id`), 0);
        expectList(await get(`/Users?filter=${plus(`manager eq "${joyId}"`)}`), 1);
        // the manager can be asked for by its short name as well
        for (const attributes of ['manager', MANAGER]) {
          const one = await get(`/Users/${reportId}?attributes=${encodeURIComponent(attributes)}`);
          expectScim(one, 200);
          expect(one.body).toEqual({ schemas: [USER_SCHEMA, ENT], id: reportId, [ENT]: { manager: { value: joyId } } });
        }
      });

      it('U7: manager set (Add, full URN path, plain string), changed (Replace), removed (Replace with empty value)', async () => {
        const set = await patch(`/Users/${userId}`, op('Add', MANAGER, joyId));
        expectScim(set, 200);
        expect(set.body[ENT]).toEqual({ manager: { value: joyId } });
        expectList(await get(`/Users?filter=${plus(`id eq "${userId}" and manager eq "${joyId}"`)}&attributes=id`), 1);

        const changed = await patch(`/Users/${userId}`, op('Replace', MANAGER, reportId));
        expectScim(changed, 200);
        expect(changed.body[ENT]).toEqual({ manager: { value: reportId } });
        expectList(await get(`/Users?filter=${plus(`id eq "${userId}" and manager eq "${joyId}"`)}&attributes=id`), 0);

        const removed = await patch(`/Users/${userId}`, op('Replace', MANAGER, ''));
        expectScim(removed, 200);
        expect(removed.body).not.toHaveProperty(ENT);
        expect(removed.body.schemas).toEqual([USER_SCHEMA]);
        expect((await get(`/Users/${userId}`)).body).not.toHaveProperty(ENT);
      });

      it('U7: manager removed by Remove; the old documented form (path `manager`, list with $ref) sets it', async () => {
        const old = await patch(`/Users/${userId}`, op('Add', 'manager', [{ $ref: `${srv.origin}/scim/v2/${connectorId}/Users/${joyId}`, value: joyId }]));
        expectScim(old, 200);
        expect(old.body[ENT]).toEqual({ manager: { $ref: `${srv.origin}/scim/v2/${connectorId}/Users/${joyId}`, value: joyId } });
        // a new manager replaces the reference whole: no $ref of the previous manager left behind
        const changed = await patch(`/Users/${userId}`, op('Replace', MANAGER, reportId));
        expect(changed.body[ENT]).toEqual({ manager: { value: reportId } });
        const removed = await patch(`/Users/${userId}`, op('Remove', MANAGER));
        expectScim(removed, 200);
        expect(removed.body).not.toHaveProperty(ENT);
      });

      it('an empty Operations list is a 200 no-op', async () => {
        const before = await get(`/Users/${userId}`);
        const res = await entra('PATCH', `/Users/${userId}`, { schemas: [PATCH_OP], Operations: [] });
        expectScim(res, 200);
        expect(res.body).toEqual(before.body);
      });

      it('removing userName is a 400 mutability and changes nothing', async () => {
        const before = await get(`/Users/${userId}`);
        expectScimError(await patch(`/Users/${userId}`, op('Remove', 'userName')), 400, 'mutability');
        expectScimError(await patch(`/Users/${userId}`, op('Replace', 'userName', '')), 400, 'mutability');
        expect((await get(`/Users/${userId}`)).body).toEqual(before.body);
      });

      it('PATCH of an unknown user is a 404; an unknown attribute is a 400', async () => {
        expectScimError(await patch('/Users/6764549bef60420686bc', op('Replace', 'displayName', 'x')), 404);
        expectScimError(await patch(`/Users/${userId}`, op('Replace', 'favouriteColour', 'blue')), 400, 'invalidPath');
        expectScimError(await entra('POST', '/Users', { schemas: [USER_SCHEMA], userName: `x-${tag}`, favouriteColour: 'blue' }), 400);
      });
    });

    describe('§5.3 groups', () => {
      it('G1: the lookup before a create finds nothing', async () => {
        expectList(await get(`/Groups?excludedAttributes=members&filter=${plus(`displayName eq "${groupName}"`)}`), 0);
      });

      it('G2: create with the extra Microsoft schema and no members answers 201 with members []', async () => {
        const res = await entra('POST', '/Groups', {
          schemas: [GROUP_SCHEMA, MS_GROUP_SCHEMA],
          externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
          displayName: groupName,
          meta: { resourceType: 'Group' },
        });
        expectScim(res, 201);
        groupId = res.body.id;
        expect(res.body).toEqual({
          schemas: [GROUP_SCHEMA],
          id: groupId,
          externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
          displayName: groupName,
          members: [],
          meta: expect.objectContaining({ resourceType: 'Group', created: expect.any(String), lastModified: expect.any(String) }),
        });
        expectScimError(await entra('POST', '/Groups', { schemas: [GROUP_SCHEMA, MS_GROUP_SCHEMA], displayName: groupName.toUpperCase() }), 409, 'uniqueness');
      });

      it('G1: finds the group by displayName, without members', async () => {
        const [found] = expectList(await get(`/Groups?excludedAttributes=members&filter=${plus(`displayName eq "${groupName}"`)}`), 1);
        expect(found).toMatchObject({ schemas: [GROUP_SCHEMA], id: groupId, displayName: groupName, externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159' });
        expect(found).not.toHaveProperty('members');
        expectList(await get(`/Groups?excludedAttributes=members&filter=${plus(`displayName eq "${groupName.toUpperCase()}"`)}`), 1);
      });

      it('G3: gets the group without members', async () => {
        const res = await get(`/Groups/${groupId}?excludedAttributes=members`);
        expectScim(res, 200);
        expect(res.body).toMatchObject({ id: groupId, displayName: groupName });
        expect(res.body).not.toHaveProperty('members');
        expectScimError(await get('/Groups/40734ae655284ad3abcc?excludedAttributes=members'), 404);
      });

      it('G5: adds members ($ref null, one and several per PATCH): 204 with no body', async () => {
        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ $ref: null, value: userId }])));
        expectNoContent(
          await patch(
            `/Groups/${groupId}`,
            op('Add', 'members', [
              { $ref: null, value: joyId },
              { $ref: null, value: reportId },
            ]),
          ),
        );
        const res = await get(`/Groups/${groupId}`);
        expect(res.body.members.map((m: { value: string }) => m.value).sort()).toEqual([userId, joyId, reportId].sort());
      });

      it('adding an existing member succeeds and changes nothing', async () => {
        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ $ref: null, value: userId }])));
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(3);
      });

      it('the reference check `id eq G and members eq U&attributes=id` answers membership', async () => {
        const [found] = expectList(await get(`/Groups?filter=${plus(`id eq "${groupId}" and members eq "${userId}"`)}&attributes=id`), 1);
        expect(found).toEqual({ schemas: [GROUP_SCHEMA], id: groupId });
        expectList(await get(`/Groups?filter=${plus(`id eq "${groupId}" and members eq "${randomUUID()}"`)}&attributes=id`), 0);
      });

      it('G6: removes one member in the dialect\'s form: 204, the other members stay', async () => {
        expectNoContent(await patch(`/Groups/${groupId}`, d.removeMember(reportId)));
        const res = await get(`/Groups/${groupId}`);
        expect(res.body.members.map((m: { value: string }) => m.value).sort()).toEqual([userId, joyId].sort());
        expectList(await get(`/Groups?filter=${plus(`id eq "${groupId}" and members eq "${reportId}"`)}&attributes=id`), 0);
      });

      it('removing a member that is not there succeeds and removes nobody', async () => {
        expectNoContent(await patch(`/Groups/${groupId}`, d.removeMember(reportId)));
        expectNoContent(await patch(`/Groups/${groupId}`, d.removeMember(randomUUID())));
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(2);
      });

      it('Remove members with a value list removes only the listed members, never all', async () => {
        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ $ref: null, value: reportId }])));
        expectNoContent(await patch(`/Groups/${groupId}`, { op: 'Remove', path: 'members', value: [{ $ref: null, value: reportId }, { value: randomUUID() }] }));
        expectNoContent(await patch(`/Groups/${groupId}`, { op: 'Remove', path: 'members', value: [] }));
        const res = await get(`/Groups/${groupId}`);
        expect(res.body.members.map((m: { value: string }) => m.value).sort()).toEqual([userId, joyId].sort());
      });

      it('a nested group is added and removed as a single member value', async () => {
        const sub = await entra('POST', '/Groups', { schemas: [GROUP_SCHEMA, MS_GROUP_SCHEMA], displayName: `nested-${tag}`, meta: { resourceType: 'Group' } });
        expectScim(sub, 201);
        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ $ref: null, value: sub.body.id }])));
        const res = await get(`/Groups/${groupId}`);
        expect(res.body.members).toEqual(expect.arrayContaining([{ value: sub.body.id, type: 'Group' }]));
        expectNoContent(await patch(`/Groups/${groupId}`, d.removeMember(sub.body.id)));
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(2);
      });

      it('a PATCH sent as application/json is accepted too', async () => {
        const res = await entra('PATCH', `/Groups/${groupId}`, patchBody(op('Add', 'members', [{ $ref: null, value: userId }])), { 'content-type': 'application/json' });
        expectNoContent(res);
      });

      it('G4: replaces displayName: 204; the group is found by its new name only', async () => {
        expectNoContent(await patch(`/Groups/${groupId}`, op('Replace', 'displayName', groupRenamed)));
        expectList(await get(`/Groups?excludedAttributes=members&filter=${plus(`displayName eq "${groupName}"`)}`), 0);
        const [found] = expectList(await get(`/Groups?excludedAttributes=members&filter=${plus(`displayName eq "${groupRenamed}"`)}`), 1);
        expect(found!.id).toBe(groupId);
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(2);
      });

      it('an empty Operations list on a group is a 204 no-op', async () => {
        expectNoContent(await entra('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [] }));
        expect((await get(`/Groups/${groupId}`)).body).toMatchObject({ displayName: groupRenamed, members: expect.any(Array) });
      });

      it('a group PATCH Entra cannot apply is a 400 or 404 with a SCIM error, never a 405', async () => {
        expectScimError(await patch(`/Groups/${groupId}`, op('Remove', 'displayName')), 400, 'mutability');
        expectScimError(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ value: randomUUID() }])), 400);
        expectScimError(await patch('/Groups/fa2ce26709934589afc5', op('Replace', 'displayName', 'x')), 404);
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(2);
      });

      it('G7: deletes a group: 204 with no body, then 404', async () => {
        const tmp = await entra('POST', '/Groups', { schemas: [GROUP_SCHEMA, MS_GROUP_SCHEMA], displayName: `tmp-${tag}`, meta: { resourceType: 'Group' } });
        expectScim(tmp, 201);
        expectNoContent(await patch(`/Groups/${tmp.body.id}`, op('Add', 'members', [{ $ref: null, value: joyId }])));
        expectNoContent(await entra('DELETE', `/Groups/${tmp.body.id}`));
        expectScimError(await get(`/Groups/${tmp.body.id}`), 404);
        expectScimError(await entra('DELETE', `/Groups/${tmp.body.id}`), 404);
      });
    });

    describe('disable, delete, pagination', () => {
      it('U6: disables the user in the dialect\'s form; it stays readable with active:false and keeps its memberships', async () => {
        const res = await patch(`/Users/${userId}`, op('Replace', 'active', d.bool(false)));
        expectScim(res, 200);
        expect(res.body).toMatchObject({ id: userId, active: false });
        const read = await get(`/Users/${userId}`);
        expectScim(read, 200);
        expect(read.body.active).toBe(false);
        const [found] = expectList(await get(`/Users?filter=${plus(`userName eq "${renamed}"`)}`), 1);
        expect(found!.active).toBe(false);
        expectList(await get(`/Groups?filter=${plus(`id eq "${groupId}" and members eq "${userId}"`)}&attributes=id`), 1);
      });

      it('U6: re-enables and disables again (the documented boolean body works in both dialects)', async () => {
        const on = await patch(`/Users/${userId}`, op('Replace', 'active', d.bool(true)));
        expect(on.body.active).toBe(true);
        const off = await entra('PATCH', `/Users/${userId}`, { Operations: [{ op: 'Replace', path: 'active', value: false }], schemas: [PATCH_OP] });
        expectScim(off, 200);
        expect(off.body.active).toBe(false);
      });

      it('U8: deletes a user: 204 with no body, then 404; it leaves its groups', async () => {
        const tmp = await entra('POST', '/Users', { schemas: [USER_SCHEMA], userName: `gone-${tag}@contoso.com`, active: true });
        expectScim(tmp, 201);
        goneId = tmp.body.id;
        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ $ref: null, value: tmp.body.id }])));
        await srv.service.reconciler.drain(); // the directory knows the user and its membership before the delete
        expect(await directoryUser(goneId)).toMatchObject({ active: 1 });
        expectNoContent(await entra('DELETE', `/Users/${tmp.body.id}`));
        expectScimError(await get(`/Users/${tmp.body.id}`), 404);
        expectScimError(await entra('DELETE', `/Users/${tmp.body.id}`), 404);
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(2);
      });

      it('Gallery: at least 11 users read in pages of 5 with startIndex = page*5+1', async () => {
        for (let i = 0; i < 11; i++) {
          expectScim(await entra('POST', '/Users', { schemas: [USER_SCHEMA], userName: `page-${i}-${tag}@contoso.com`, active: true }), 201);
        }
        const all = await get('/Users?count=1000');
        const total = all.body.totalResults as number;
        expect(total).toBeGreaterThanOrEqual(11);
        const seen: string[] = [];
        for (let page = 0; page * 5 < total; page++) {
          const res = await get(`/Users?startIndex=${page * 5 + 1}&count=5`);
          expectScim(res, 200);
          expect(res.body).toMatchObject({ schemas: [LIST], totalResults: total, startIndex: page * 5 + 1 });
          expect(res.body.Resources.length).toBe(Math.min(5, total - page * 5));
          expect(res.body.itemsPerPage).toBe(res.body.Resources.length);
          seen.push(...res.body.Resources.map((r: { id: string }) => r.id));
        }
        expect(new Set(seen).size).toBe(total);
        expect(seen.sort()).toEqual(all.body.Resources.map((r: { id: string }) => r.id).sort());
        const past = await get(`/Users?startIndex=${total + 1}&count=5`);
        expect(past.body).toMatchObject({ totalResults: total, Resources: [] });
      });

      it('Gallery: many members in one PATCH, added and removed in the dialect\'s form', async () => {
        const page = await get(`/Users?filter=${plus(`userName sw "page-"`)}&count=100`);
        const ids = (page.body.Resources as { id: string }[]).map((r) => r.id);
        expect(ids.length).toBeGreaterThanOrEqual(11);
        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', ids.map((value) => ({ $ref: null, value })))));
        expect((await get(`/Groups/${groupId}`)).body.members).toHaveLength(2 + ids.length);
        const removal = d.name === 'default' ? [op('Remove', 'members', ids.map((value) => ({ value })))] : ids.map((id) => d.removeMember(id));
        expectNoContent(await patch(`/Groups/${groupId}`, ...removal));
        const left = (await get(`/Groups/${groupId}`)).body.members.map((m: { value: string }) => m.value).sort();
        expect(left).toEqual([userId, joyId].sort());
      });
    });

    describe('the directory after the traffic', () => {
      it('reflects users (created, renamed, deactivated), the renamed group and its memberships', async () => {
        await srv.service.reconciler.drain();
        const user = await directoryUser(userId);
        expect(user).toMatchObject({ username: renamed, email: 'updatedEmail@microsoft.com', active: 0 });
        const joy = await directoryUser(joyId);
        expect(joy).toMatchObject({ username: joyUserName, email: 'jyoung@Contoso.com', active: 1 });
        const report = await directoryUser(reportId);
        expect(report).toMatchObject({ active: 1 });
        const group = await directoryGroup(groupId);
        expect(group).toMatchObject({ name: groupRenamed });
        // the disabled user keeps its membership; the removed member is gone
        const members = await directoryMembers(group!.id);
        expect(members).toEqual(expect.arrayContaining([user!.id, joy!.id]));
        expect(members).not.toContain(report!.id);

        const feed = await srv.service.db.kysely.selectFrom('change_feed').select(['entity', 'entity_id', 'op']).where('connector_id', '=', connectorId).execute();
        const ops = (entity: string, id: string) => feed.filter((f) => f.entity === entity && f.entity_id === id).map((f) => f.op);
        expect(ops('user', user!.id)).toContain('create');
        expect(ops('group', group!.id)).toContain('create');
      });

      it('follows a rename, a disable and a re-enable step by step', async () => {
        await srv.service.reconciler.drain();
        const before = (await directoryUser(reportId))!;
        const newName = `report-renamed-${tag}@contoso.com`;
        expectScim(await patch(`/Users/${reportId}`, op('Replace', 'userName', newName)), 200);
        await srv.service.reconciler.drain();
        expect(await directoryUser(reportId)).toMatchObject({ id: before.id, username: newName, active: 1 });

        expectNoContent(await patch(`/Groups/${groupId}`, op('Add', 'members', [{ $ref: null, value: reportId }])));
        expectScim(await patch(`/Users/${reportId}`, op('Replace', 'active', d.bool(false))), 200);
        await srv.service.reconciler.drain();
        const group = (await directoryGroup(groupId))!;
        expect(await directoryUser(reportId)).toMatchObject({ id: before.id, active: 0 });
        expect(await directoryMembers(group.id)).toContain(before.id);

        expectScim(await patch(`/Users/${reportId}`, op('Replace', 'active', d.bool(true))), 200);
        await srv.service.reconciler.drain();
        expect(await directoryUser(reportId)).toMatchObject({ id: before.id, active: 1 });
        expect(await directoryMembers(group.id)).toContain(before.id);

        const feed = await srv.service.db.kysely
          .selectFrom('change_feed')
          .select(['op'])
          .where('connector_id', '=', connectorId)
          .where('entity', '=', 'user')
          .where('entity_id', '=', before.id)
          .orderBy('seq')
          .execute();
        expect(feed.map((f) => f.op)).toEqual(['create', 'update', 'deactivate', 'activate']);
      });

      it('follows a group rename, keeping the directory group and its memberships', async () => {
        const before = (await directoryGroup(groupId))!;
        const members = await directoryMembers(before.id);
        const newName = `${randomUUID()}updatedDisplayName`;
        expectNoContent(await patch(`/Groups/${groupId}`, op('Replace', 'displayName', newName)));
        await srv.service.reconciler.drain();
        expect(await directoryGroup(groupId)).toMatchObject({ id: before.id, name: newName });
        expect(await directoryMembers(before.id)).toEqual(members);
        const feed = await srv.service.db.kysely
          .selectFrom('change_feed')
          .select(['op', 'data'])
          .where('connector_id', '=', connectorId)
          .where('entity', '=', 'group')
          .where('entity_id', '=', before.id)
          .orderBy('seq')
          .execute();
        expect(feed.map((f) => f.op)).toEqual(['create', 'rename']);
        expect(JSON.parse(feed[1]!.data)).toEqual({ from: groupRenamed, to: newName });
      });

      it('a user deleted with DELETE is deactivated in the directory', async () => {
        await srv.service.reconciler.drain();
        // (its directory memberships are the reconciler's business: deactivation keeps them)
        expect(await directoryUser(goneId)).toMatchObject({ username: `gone-${tag}@contoso.com`, active: 0 });
      });
    });
  });
});
