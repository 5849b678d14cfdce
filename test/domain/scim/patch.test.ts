// applyPatch as a pure function: RFC 7644 §3.5.2 and both of Entra ID's PATCH dialects
// (shared/reference/entra-scim.md §5, §6, §9).

import { describe, expect, it } from 'vitest';
import { ScimError } from '../../../src/domain/scim/errors.ts';
import type { PatchResult } from '../../../src/domain/scim/patch.ts';
import { applyPatch } from '../../../src/domain/scim/patch.ts';
import type { ScimDoc } from '../../../src/domain/scim/resource.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, RESOURCE_TYPES, USER_SCHEMA } from '../../../src/domain/scim/schema.ts';

const USER = RESOURCE_TYPES.User;
const GROUP = RESOURCE_TYPES.Group;
const ENT = ENTERPRISE_USER_SCHEMA;

const body = (...ops: unknown[]) => ({ schemas: [PATCH_OP_SCHEMA], Operations: ops });

function user(extra: ScimDoc = {}): ScimDoc {
  return {
    schemas: [USER_SCHEMA],
    userName: 'jdoe@contoso.com',
    active: true,
    name: { givenName: 'John', familyName: 'Doe', formatted: 'John Doe' },
    emails: [{ value: 'jdoe@contoso.com', type: 'work', primary: true }],
    ...extra,
  };
}

function group(extra: ScimDoc = {}): ScimDoc {
  return { schemas: [GROUP_SCHEMA], displayName: 'Engineering', ...extra };
}

const patchUser = (doc: ScimDoc, ...ops: unknown[]): PatchResult => applyPatch(USER, doc, body(...ops));
const patchGroup = (doc: ScimDoc, ...ops: unknown[]): PatchResult => applyPatch(GROUP, doc, body(...ops));

/** The ScimError an operation throws (fails the test when it does not throw one). */
function scimError(fn: () => unknown): ScimError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ScimError) return e;
    throw e;
  }
  throw new Error('expected a ScimError');
}

function expect400(fn: () => unknown, scimType: string): ScimError {
  const err = scimError(fn);
  expect(err.status).toBe(400);
  expect(err.scimType).toBe(scimType);
  expect(err.toJSON()).toMatchObject({ status: '400', scimType });
  return err;
}

describe('applyPatch: envelope', () => {
  it('never mutates the stored document', () => {
    const doc = user();
    const before = structuredClone(doc);
    patchUser(doc, { op: 'Replace', path: 'name.familyName', value: 'Smith' }, { op: 'Remove', path: 'emails' });
    expect(doc).toEqual(before);
  });

  it('treats an empty Operations list as a no-op (Microsoft SCIM Validator)', () => {
    const doc = user();
    const r = applyPatch(USER, doc, { schemas: [PATCH_OP_SCHEMA], Operations: [] });
    expect(r.changed).toBe(false);
    expect(r.memberOps).toEqual([]);
    expect(r.doc).toEqual(doc);
  });

  it('reads Operations and op members case-insensitively', () => {
    const r = applyPatch(USER, user(), { SCHEMAS: [PATCH_OP_SCHEMA.toUpperCase()], operations: [{ OP: 'REPLACE', Path: 'title', Value: 'CTO' }] });
    expect(r.doc.title).toBe('CTO');
  });

  it('reads attribute names, sub-attribute names and schema URNs in paths case-insensitively', () => {
    const r = patchUser(
      user(),
      { op: 'Replace', path: 'NAME.FAMILYNAME', value: 'Smith' },
      { op: 'Replace', path: 'Emails[Type eq "WORK"].Value', value: 'new@contoso.com' },
      { op: 'Add', path: `${ENT.toUpperCase()}:EMPLOYEENUMBER`, value: '42' },
      { op: 'Add', value: { DisplayName: 'John Smith', 'Name.GivenName': 'Jon' } },
    );
    expect(r.doc).toMatchObject({
      displayName: 'John Smith',
      name: { givenName: 'Jon', familyName: 'Smith' },
      emails: [{ value: 'new@contoso.com', type: 'work', primary: true }],
      [ENT]: { employeeNumber: '42' },
    });
  });

  it.each(['Add', 'add', 'ADD', 'Replace', 'replace', 'Remove', 'remove'])('accepts op %s', (op) => {
    const r = patchUser(user({ title: 'Dev' }), { op, path: 'title', ...(op.toLowerCase() === 'remove' ? {} : { value: 'CTO' }) });
    expect(r.doc.title).toBe(op.toLowerCase() === 'remove' ? undefined : 'CTO');
  });

  it.each([['delete'], ['move'], [''], [42], [null]])('rejects op %j with 400 invalidSyntax', (op) => {
    expect400(() => patchUser(user(), { op, path: 'title', value: 'x' }), 'invalidSyntax');
  });

  it('rejects a missing op, a missing Operations list and a wrong message schema with 400 invalidSyntax', () => {
    expect400(() => patchUser(user(), { path: 'title', value: 'x' }), 'invalidSyntax');
    expect400(() => applyPatch(USER, user(), { schemas: [PATCH_OP_SCHEMA] }), 'invalidSyntax');
    expect400(() => applyPatch(USER, user(), { schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'], Operations: [] }), 'invalidSyntax');
    expect400(() => applyPatch(USER, user(), [{ op: 'add' }]), 'invalidSyntax');
    expect400(() => patchUser(user(), { op: 'add', path: 'title', value: 'x', extra: 1 }), 'invalidSyntax');
  });
});

describe('applyPatch: RFC 7644 §3.5.2 basics', () => {
  it('add to a multi-valued attribute appends, without duplicates (whatever the key order)', () => {
    const r = patchUser(user(), {
      op: 'add',
      path: 'emails',
      value: [
        { type: 'work', primary: true, value: 'jdoe@contoso.com' }, // the existing entry, keys reordered
        { value: 'john@home.example', type: 'home' },
        { value: 'john@home.example', type: 'home' },
      ],
    });
    expect(r.doc.emails).toEqual([
      { value: 'jdoe@contoso.com', type: 'work', primary: true },
      { value: 'john@home.example', type: 'home' },
    ]);
  });

  it('add to a multi-valued attribute that is absent creates it; a single object is one value', () => {
    const r = patchUser(user(), { op: 'add', path: 'phoneNumbers', value: { value: '+1 555 0100', type: 'work' } });
    expect(r.doc.phoneNumbers).toEqual([{ value: '+1 555 0100', type: 'work' }]);
  });

  it('replace of a multi-valued attribute replaces the whole list', () => {
    const r = patchUser(user(), { op: 'replace', path: 'emails', value: [{ value: 'new@contoso.com', type: 'work' }] });
    expect(r.doc.emails).toEqual([{ value: 'new@contoso.com', type: 'work' }]);
  });

  it('replace of a complex attribute merges sub-attributes', () => {
    const r = patchUser(user(), { op: 'replace', path: 'name', value: { familyName: 'Smith', middleName: 'Q' } });
    expect(r.doc.name).toEqual({ givenName: 'John', familyName: 'Smith', formatted: 'John Doe', middleName: 'Q' });
  });

  it('replace of a sub-attribute keeps its siblings; on an absent complex attribute it creates it', () => {
    expect(patchUser(user(), { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' }).doc.name).toEqual({
      givenName: 'John',
      familyName: 'updatedFamilyName',
      formatted: 'John Doe',
    });
    const { name: _name, ...noName } = user();
    expect(patchUser(noName, { op: 'add', path: 'name.givenName', value: 'Joy' }).doc.name).toEqual({ givenName: 'Joy' });
  });

  it('remove with a value filter removes only the matching entries', () => {
    const doc = user({
      emails: [
        { value: 'a@contoso.com', type: 'work' },
        { value: 'b@home.example', type: 'home' },
        { value: 'c@other.example', type: 'other' },
      ],
    });
    const r = patchUser(doc, { op: 'remove', path: 'emails[type eq "home" or value eq "c@other.example"]' });
    expect(r.doc.emails).toEqual([{ value: 'a@contoso.com', type: 'work' }]);
    const none = patchUser(doc, { op: 'remove', path: 'emails[type eq "pager"]' });
    expect(none.changed).toBe(false);
  });

  it('remove of the last entry removes the attribute', () => {
    const r = patchUser(user(), { op: 'remove', path: 'emails[type eq "work"]' });
    expect(r.doc).not.toHaveProperty('emails');
  });

  it('remove of a whole extension drops it from the document and from schemas', () => {
    const doc = user({ schemas: [USER_SCHEMA, ENT], [ENT]: { department: 'R&D', employeeNumber: '42' } });
    const r = patchUser(doc, { op: 'remove', path: ENT });
    expect(r.doc).not.toHaveProperty(ENT);
    expect(r.doc.schemas).toEqual([USER_SCHEMA]);
  });

  it('path-less add merges attributes into the resource', () => {
    const r = patchUser(user(), { op: 'add', value: { title: 'CTO', nickName: 'Jo', emails: [{ value: 'j@home.example', type: 'home' }] } });
    expect(r.doc).toMatchObject({ title: 'CTO', nickName: 'Jo' });
    expect(r.doc.emails).toHaveLength(2);
  });

  it('path-less replace ignores schemas, id and meta in the value', () => {
    const r = patchUser(user(), { op: 'replace', value: { id: 'other', meta: { resourceType: 'User' }, schemas: [USER_SCHEMA], title: 'CTO' } });
    expect(r.doc).not.toHaveProperty('id');
    expect(r.doc).not.toHaveProperty('meta');
    expect(r.doc.title).toBe('CTO');
  });

  it('rejects an unknown path with 400 invalidPath', () => {
    for (const path of ['nope', 'name.nope', 'urn:example:unknown:2.0:User:x', 'emails[type eq "work"].nope', 'title[value eq "x"]', 'emails[type eq', 'a b']) {
      expect400(() => patchUser(user(), { op: 'replace', path, value: 'x' }), 'invalidPath');
    }
    expect400(() => patchUser(user(), { op: 'replace', value: { 'name.nope': 'x' } }), 'invalidPath');
  });

  it('rejects remove without a path with 400 noTarget', () => {
    expect400(() => patchUser(user(), { op: 'remove' }), 'noTarget');
    expect400(() => patchUser(user(), { op: 'Remove', value: { title: 'x' } }), 'noTarget');
  });

  it('rejects changes to read-only attributes with 400 mutability', () => {
    expect400(() => patchUser(user(), { op: 'replace', path: 'id', value: 'x' }), 'mutability');
    expect400(() => patchUser(user(), { op: 'add', path: 'groups', value: [{ value: 'g1' }] }), 'mutability');
  });

  it('rejects removing a required attribute with 400 mutability, also by an empty value', () => {
    expect400(() => patchUser(user(), { op: 'Remove', path: 'userName' }), 'mutability');
    expect400(() => patchUser(user(), { op: 'Replace', path: 'userName', value: '' }), 'mutability');
    expect400(() => patchUser(user(), { op: 'replace', value: { userName: null } }), 'mutability');
    expect400(() => patchGroup(group(), { op: 'Remove', path: 'displayName' }), 'mutability');
  });

  it('rejects values of the wrong type with 400 invalidValue', () => {
    expect400(() => patchUser(user(), { op: 'replace', path: 'active', value: 'maybe' }), 'invalidValue');
    expect400(() => patchUser(user(), { op: 'replace', path: 'title', value: { a: 1 } }), 'invalidValue');
    expect400(() => patchUser(user(), { op: 'replace', value: 'not an object' }), 'invalidValue');
  });

  it('reports whether the document changed', () => {
    expect(patchUser(user(), { op: 'replace', path: 'title', value: 'CTO' }).changed).toBe(true);
    expect(patchUser(user(), { op: 'replace', path: 'active', value: true }).changed).toBe(false);
  });
});

describe('applyPatch: Entra default dialect', () => {
  it('disables with the string "False" and re-enables with "True" (any case)', () => {
    const off = patchUser(user(), { op: 'Replace', path: 'active', value: 'False' });
    expect(off.doc.active).toBe(false);
    expect(patchUser(off.doc, { op: 'Replace', path: 'active', value: 'True' }).doc.active).toBe(true);
    expect(patchUser(user(), { op: 'Replace', path: 'active', value: 'false' }).doc.active).toBe(false);
    expect(patchUser(off.doc, { op: 'Replace', path: 'active', value: 'TRUE' }).doc.active).toBe(true);
  });

  it('sends one op per attribute (§6 "replace several attributes")', () => {
    const doc = user({ displayName: 'John Doe', externalId: 'jdoe' });
    const r = patchUser(
      doc,
      { op: 'Replace', path: 'displayName', value: 'Bjfe' },
      { op: 'Replace', path: 'emails[type eq "work"].value', value: 'bjfe@contoso.com' },
      { op: 'Replace', path: 'name.givenName', value: 'Kkom' },
      { op: 'Replace', path: 'name.familyName', value: 'Unua' },
      { op: 'Replace', path: 'externalId', value: 'bjfe' },
      { op: 'Replace', path: `${ENT}:employeeNumber`, value: 'Aklq' },
    );
    expect(r.doc).toMatchObject({
      displayName: 'Bjfe',
      externalId: 'bjfe',
      name: { givenName: 'Kkom', familyName: 'Unua', formatted: 'John Doe' },
      emails: [{ value: 'bjfe@contoso.com', type: 'work', primary: true }],
      [ENT]: { employeeNumber: 'Aklq' },
    });
    expect(r.doc.schemas).toEqual([USER_SCHEMA, ENT]);
  });

  it('adds a single-valued string', () => {
    expect(patchUser(user(), { op: 'Add', path: 'nickName', value: 'Babs' }).doc.nickName).toBe('Babs');
  });

  it('U4: replaces the work e-mail through a filtered path and a name sub-attribute', () => {
    const r = patchUser(
      user(),
      { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
      { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
    );
    expect(r.doc.emails).toEqual([{ value: 'updatedEmail@microsoft.com', type: 'work', primary: true }]);
    expect((r.doc.name as ScimDoc).familyName).toBe('updatedFamilyName');
  });

  it('G6: Remove members with a value list removes only those members, never all', () => {
    const r = patchGroup(group(), { op: 'Remove', path: 'members', value: [{ $ref: null, value: 'u1' }, { value: 'u2' }] });
    expect(r.memberOps).toEqual([{ k: 'remove', ids: ['u1', 'u2'] }]);
    expect(r.changed).toBe(false);
  });

  it('Remove members with an empty value list removes nothing', () => {
    expect(patchGroup(group(), { op: 'Remove', path: 'members', value: [] }).memberOps).toEqual([]);
  });

  it('Remove members without a value removes all members (RFC 7644)', () => {
    expect(patchGroup(group(), { op: 'Remove', path: 'members' }).memberOps).toEqual([{ k: 'removeAll' }]);
  });

  it('G5: Add members with $ref null, several at once', () => {
    const r = patchGroup(group(), {
      op: 'Add',
      path: 'members',
      value: [
        { $ref: null, value: 'f648f8d5ea4e4cd38e9c' },
        { value: 'u2', display: 'Someone', type: 'User' },
      ],
    });
    expect(r.memberOps).toEqual([{ k: 'add', members: [{ value: 'f648f8d5ea4e4cd38e9c' }, { value: 'u2', type: 'User' }] }]);
    expect(r.changed).toBe(false);
  });

  it('G4: replaces displayName of a group; members never enter the document', () => {
    const r = patchGroup(group(), { op: 'Replace', path: 'displayName', value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' }, { op: 'Add', path: 'members', value: [{ value: 'u1' }] });
    expect(r.doc.displayName).toBe('1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName');
    expect(r.doc).not.toHaveProperty('members');
  });

  it('rejects a member without a value', () => {
    expect400(() => patchGroup(group(), { op: 'Add', path: 'members', value: [{ display: 'x' }] }), 'invalidValue');
  });

  it('Replace members gives a replace delta', () => {
    expect(patchGroup(group(), { op: 'Replace', path: 'members', value: [{ value: 'u1' }] }).memberOps).toEqual([{ k: 'replace', members: [{ value: 'u1' }] }]);
  });
});

describe('applyPatch: Entra flagged dialect (aadOptscim062020)', () => {
  it('disables with a boolean', () => {
    expect(patchUser(user(), { op: 'replace', path: 'active', value: false }).doc.active).toBe(false);
  });

  it('removes one member with members[value eq "…"]', () => {
    const r = patchGroup(group(), { op: 'remove', path: 'members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]' });
    expect(r.memberOps).toEqual([{ k: 'remove', ids: ['7f4bc1a3-285e-48ae-8202-5accb43efb0e'] }]);
  });

  it('removes several members with members[value eq "a" or value eq "b"]', () => {
    expect(patchGroup(group(), { op: 'remove', path: 'members[value eq "a" or value eq "b"]' }).memberOps).toEqual([{ k: 'remove', ids: ['a', 'b'] }]);
  });

  it('rejects add on a filtered members path and filters it cannot read', () => {
    expect400(() => patchGroup(group(), { op: 'add', path: 'members[value eq "a"]', value: [{ value: 'a' }] }), 'invalidPath');
    expect400(() => patchGroup(group(), { op: 'remove', path: 'members[type eq "User"]' }), 'invalidFilter');
  });

  it('path-less replace with dotted keys and full-URN keys, filtered paths separate (§6)', () => {
    const doc = user({ displayName: 'John Doe' });
    const r = patchUser(
      doc,
      { op: 'replace', path: 'emails[type eq "work"].value', value: 'bjfe@contoso.com' },
      {
        op: 'replace',
        value: {
          displayName: 'Bjfe',
          'name.givenName': 'Kkom',
          'name.familyName': 'Unua',
          [`${ENT}:employeeNumber`]: 'Aklq',
        },
      },
    );
    expect(r.doc).toMatchObject({
      displayName: 'Bjfe',
      name: { givenName: 'Kkom', familyName: 'Unua', formatted: 'John Doe' },
      emails: [{ value: 'bjfe@contoso.com', type: 'work', primary: true }],
      [ENT]: { employeeNumber: 'Aklq' },
    });
    expect(r.doc.schemas).toEqual([USER_SCHEMA, ENT]);
  });

  it('path-less add with dotted keys (pond/scimitar#123)', () => {
    const { name: _n, ...doc } = user();
    const r = patchUser(doc, {
      op: 'add',
      value: { displayName: 'Joy Young', title: 'Engineer', 'name.givenName': 'Joy', 'name.familyName': 'Young', 'name.formatted': 'Joy Young' },
    });
    expect(r.doc).toMatchObject({ displayName: 'Joy Young', title: 'Engineer', name: { givenName: 'Joy', familyName: 'Young', formatted: 'Joy Young' } });
  });

  it('path-less replace mixing userName with dotted keys (pond/scimitar#69)', () => {
    const r = patchUser(user(), { op: 'replace', value: { userName: 'joy@contoso.com', 'name.givenName': 'Joy', active: false } });
    expect(r.doc).toMatchObject({ userName: 'joy@contoso.com', active: false, name: { givenName: 'Joy', familyName: 'Doe' } });
  });

  it('path-less replace with an extension object and a URN-qualified core key', () => {
    const r = patchUser(user(), { op: 'replace', value: { [ENT]: { department: 'R&D' }, [`${USER_SCHEMA}:title`]: 'CTO' } });
    expect(r.doc).toMatchObject({ title: 'CTO', [ENT]: { department: 'R&D' } });
  });

  it('path-less replace with an empty value for a key clears it', () => {
    const r = patchUser(user({ title: 'CTO', [ENT]: { department: 'R&D' } }), { op: 'replace', value: { title: '', [`${ENT}:department`]: null } });
    expect(r.doc).not.toHaveProperty('title');
    expect(r.doc).not.toHaveProperty(ENT);
  });
});

describe('applyPatch: filtered paths on missing entries (§9)', () => {
  it.each(['Add', 'Replace', 'add', 'replace'])('%s emails[type eq "work"].value creates the work e-mail', (op) => {
    const { emails: _e, ...doc } = user();
    const r = patchUser(doc, { op, path: 'emails[type eq "work"].value', value: 'new@contoso.com' });
    expect(r.doc.emails).toEqual([{ type: 'work', value: 'new@contoso.com' }]);
  });

  it('creates a work e-mail next to other types', () => {
    const r = patchUser(user({ emails: [{ value: 'h@home.example', type: 'home' }] }), { op: 'Replace', path: 'emails[type eq "work"].value', value: 'w@contoso.com' });
    expect(r.doc.emails).toEqual([
      { value: 'h@home.example', type: 'home' },
      { type: 'work', value: 'w@contoso.com' },
    ]);
  });

  it('creates ONE work address from several sub-attribute operations', () => {
    const r = patchUser(
      user(),
      { op: 'Add', path: 'addresses[type eq "work"].streetAddress', value: '1 Main St' },
      { op: 'Add', path: 'addresses[type eq "work"].postalCode', value: '98052' },
      { op: 'Replace', path: 'addresses[type eq "work"].country', value: 'US' },
      { op: 'Add', path: 'addresses[type eq "other"].formatted', value: 'Building 4' },
    );
    expect(r.doc.addresses).toEqual([
      { type: 'work', streetAddress: '1 Main St', postalCode: '98052', country: 'US' },
      { type: 'other', formatted: 'Building 4' },
    ]);
  });

  it('creates phone numbers per type', () => {
    const r = patchUser(
      user(),
      { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0101' },
      { op: 'Add', path: 'phoneNumbers[type eq "work"].value', value: '+1 555 0102' },
      { op: 'Replace', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0103' },
    );
    expect(r.doc.phoneNumbers).toEqual([
      { type: 'mobile', value: '+1 555 0103' },
      { type: 'work', value: '+1 555 0102' },
    ]);
  });

  it('removing a filtered sub-attribute drops the entry it leaves empty', () => {
    const r = patchUser(user({ emails: [{ value: 'w@contoso.com', type: 'work' }] }), { op: 'Remove', path: 'emails[type eq "work"].value' });
    expect(r.doc).not.toHaveProperty('emails');
    const kept = patchUser(user(), { op: 'Remove', path: 'emails[type eq "work"].value' });
    expect(kept.doc.emails).toEqual([{ type: 'work', primary: true }]);
  });

  it('a Replace with "" on a filtered path removes the value', () => {
    const r = patchUser(user({ addresses: [{ type: 'work', country: 'US' }] }), { op: 'Replace', path: 'addresses[type eq "work"].country', value: '' });
    expect(r.doc).not.toHaveProperty('addresses');
  });
});

describe('applyPatch: manager (§5 U7)', () => {
  const MANAGER = `${ENT}:manager`;

  it('Add with the full URN path and a plain string id stores the complex form', () => {
    const r = patchUser(user(), { op: 'Add', path: MANAGER, value: '2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2' });
    expect(r.doc[ENT]).toEqual({ manager: { value: '2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2' } });
    expect(r.doc.schemas).toEqual([USER_SCHEMA, ENT]);
  });

  it('accepts the complex form and the old documented list form on the unqualified path', () => {
    expect(patchUser(user(), { op: 'replace', path: MANAGER, value: { value: 'm1' } }).doc[ENT]).toEqual({ manager: { value: 'm1' } });
    const old = patchUser(user(), { op: 'Add', path: 'manager', value: [{ $ref: 'http://example.test/scim/Users/m2', value: 'm2' }] });
    expect(old.doc[ENT]).toEqual({ manager: { $ref: 'http://example.test/scim/Users/m2', value: 'm2' } });
    expect(patchUser(user(), { op: 'replace', path: `${MANAGER}.value`, value: 'm3' }).doc[ENT]).toEqual({ manager: { value: 'm3' } });
  });

  it('a change of manager replaces the reference whole (no stale $ref)', () => {
    const doc = user({ schemas: [USER_SCHEMA, ENT], [ENT]: { manager: { value: 'm1', $ref: 'http://example.test/scim/Users/m1' } } });
    expect(patchUser(doc, { op: 'Replace', path: MANAGER, value: 'm2' }).doc[ENT]).toEqual({ manager: { value: 'm2' } });
    expect(patchUser(doc, { op: 'Replace', path: `${MANAGER}.value`, value: 'm2' }).doc[ENT]).toEqual({ manager: { value: 'm2' } });
    expect(patchUser(doc, { op: 'Replace', path: MANAGER, value: 'm1' }).doc[ENT]).toEqual({ manager: { value: 'm1', $ref: 'http://example.test/scim/Users/m1' } });
  });

  it.each([
    ['Replace with an empty string', { op: 'Replace', path: MANAGER, value: '' }],
    ['Replace with null', { op: 'Replace', path: MANAGER, value: null }],
    ['Replace with an empty object', { op: 'Replace', path: MANAGER, value: {} }],
    ['Remove', { op: 'Remove', path: MANAGER }],
    ['remove of the unqualified path', { op: 'remove', path: 'manager' }],
    ['path-less replace with an empty key', { op: 'replace', value: { [MANAGER]: '' } }],
  ])('removes the manager by %s', (_label, op) => {
    const doc = user({ schemas: [USER_SCHEMA, ENT], [ENT]: { manager: { value: 'm1' } } });
    const r = patchUser(doc, op);
    expect(r.doc).not.toHaveProperty(ENT);
    expect(r.doc.schemas).toEqual([USER_SCHEMA]);
  });

  it('keeps the other enterprise attributes when the manager goes', () => {
    const doc = user({ schemas: [USER_SCHEMA, ENT], [ENT]: { manager: { value: 'm1' }, department: 'R&D' } });
    expect(patchUser(doc, { op: 'Remove', path: MANAGER }).doc[ENT]).toEqual({ department: 'R&D' });
  });
});

describe('applyPatch: clearing values (Gallery null/empty check)', () => {
  it.each([
    ['Replace ""', { op: 'Replace', path: 'title', value: '' }],
    ['Replace null', { op: 'Replace', path: 'title', value: null }],
    ['Add ""', { op: 'Add', path: 'title', value: '' }],
    ['Replace [] on a list', { op: 'Replace', path: 'phoneNumbers', value: [] }],
  ])('%s clears the attribute', (_label, op) => {
    const doc = user({ title: 'CTO', phoneNumbers: [{ value: '1', type: 'work' }] });
    const path = (op as { path: string }).path;
    expect(patchUser(doc, op).doc).not.toHaveProperty(path);
  });

  it('"" then null on an extension attribute clears it and then stays cleared', () => {
    const doc = user({ schemas: [USER_SCHEMA, ENT], [ENT]: { employeeNumber: '42', department: 'R&D' } });
    const a = patchUser(doc, { op: 'Replace', path: `${ENT}:employeeNumber`, value: '' });
    expect(a.doc[ENT]).toEqual({ department: 'R&D' });
    const b = patchUser(a.doc, { op: 'Replace', path: `${ENT}:employeeNumber`, value: null });
    expect(b.doc[ENT]).toEqual({ department: 'R&D' });
    expect(b.changed).toBe(false);
  });

  it('Remove of a multi-valued attribute with an empty value list removes nothing', () => {
    const doc = user();
    const r = patchUser(doc, { op: 'Remove', path: 'emails', value: [] });
    expect(r.doc.emails).toEqual(doc.emails);
  });

  it('Remove of a multi-valued attribute with a value list removes only the listed values', () => {
    const doc = user({ emails: [{ value: 'a@x.example', type: 'work' }, { value: 'b@x.example', type: 'home' }] });
    const r = patchUser(doc, { op: 'Remove', path: 'emails', value: [{ value: 'b@x.example' }] });
    expect(r.doc.emails).toEqual([{ value: 'a@x.example', type: 'work' }]);
  });
});
