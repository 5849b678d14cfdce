// The rules: attribute paths and transforms, user evaluation under user sync settings, and the group
// targets, filters and licences of group sync settings. Table tests for every setting, then properties.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DesiredUser } from '../../src/domain/rules.ts';
import {
  defaultGroupRule,
  defaultUserRule,
  directoryKey,
  evaluateUser,
  groupTargets,
  isAssignable,
  isNeverRemove,
  licenceFor,
  userDiff,
} from '../../src/domain/rules.ts';
import type { ScimDoc } from '../../src/domain/scim/resource.ts';
import { normaliseResource, workEmail } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import type { AttributeMapping, GroupSyncSettings, Transform, UserSyncSettings } from '../../src/domain/settings.ts';
import { DEFAULT_SETTINGS } from '../../src/domain/settings.ts';
import { validateSettings } from '../../src/domain/settings-validate.ts';
import { applyMapping, ExpressionError, readPath, renderTemplate } from '../../src/domain/transforms.ts';

const User = RESOURCE_TYPES.User;
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

const doc = (body: Record<string, unknown>): ScimDoc => normaliseResource(User, body).doc;

const ada = doc({
  userName: 'Ada.Lovelace@Example.com',
  externalId: 'e-1',
  displayName: 'Ada Lovelace',
  name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Augusta Ada King' },
  title: '  Countess  ',
  emails: [
    { value: 'ada@home.example', type: 'home' },
    { value: 'ada@example.com', type: 'Work' },
    { value: 'countess@example.com', type: 'work', primary: true },
  ],
  phoneNumbers: [{ value: '+44 1', type: 'mobile' }],
  active: 'True',
  [ENT]: { department: 'Analytical Engines', employeeNumber: '1815', manager: { value: 'babbage' } },
});

const users = (u: Partial<Record<keyof UserSyncSettings, unknown>>): UserSyncSettings => validateSettings({ user: u }).user;
const groups = (g: Partial<Record<keyof GroupSyncSettings, unknown>>): GroupSyncSettings => validateSettings({ group: g }).group;
const map = (source: string | undefined, ...transforms: Transform[]): AttributeMapping => ({
  ...(source !== undefined ? { source } : {}),
  ...(transforms.length ? { transforms } : {}),
});

describe('readPath', () => {
  it.each([
    ['userName', 'Ada.Lovelace@Example.com'],
    ['USERNAME', 'Ada.Lovelace@Example.com'],
    ['externalId', 'e-1'],
    ['name.givenName', 'Ada'],
    ['name.middleName', undefined],
    ['title', '  Countess  '],
    ['active', 'true'],
    ['emails.value', 'ada@home.example'],
    ['emails', 'ada@home.example'],
    ['emails.type', 'home'],
    ['emails[type eq "work"].value', 'ada@example.com'],
    ['emails[type eq "work"]', 'ada@example.com'],
    ['emails[primary eq true].value', 'countess@example.com'],
    ['emails[primary eq true].primary', 'true'],
    ['emails[type eq "work" and value sw "countess"].value', 'countess@example.com'],
    ['emails[type eq "other"].value', undefined],
    ['phoneNumbers[type eq "mobile"].value', '+44 1'],
    ['addresses.locality', undefined],
    [`${ENT}:department`, 'Analytical Engines'],
    ['department', 'Analytical Engines'],
    [`${ENT}:manager`, 'babbage'],
    ['manager.value', 'babbage'],
    [`${ENT}:costCenter`, undefined],
    [`${User.core.id}:userName`, 'Ada.Lovelace@Example.com'],
  ])('%s → %j', (path, expected) => {
    expect(readPath(ada, path)).toBe(expected);
  });

  it('the first matching element decides, even when it lacks the sub-attribute', () => {
    const d = doc({ userName: 'u', emails: [{ type: 'work' }, { type: 'work', value: 'second@x' }] });
    expect(readPath(d, 'emails[type eq "work"].value')).toBeUndefined();
    expect(readPath(d, 'emails.type')).toBe('work');
  });

  it('reads numbers and booleans as strings, and nothing from records without the attribute', () => {
    expect(readPath({ userName: 7 }, 'userName')).toBe('7');
    expect(readPath({ active: false }, 'active')).toBe('false');
    expect(readPath({}, 'emails[type eq "work"].value')).toBeUndefined();
    expect(readPath({ emails: 'not a list' }, 'emails.value')).toBeUndefined();
    expect(readPath({ name: 'not an object' }, 'name.givenName')).toBeUndefined();
    expect(readPath({ [ENT]: 'x' }, 'department')).toBeUndefined();
  });

  it('throws an ExpressionError with a position for a bad path', () => {
    expect(() => readPath(ada, 'name.nope')).toThrow(ExpressionError);
    try {
      readPath(ada, 'name.nope');
    } catch (e) {
      expect((e as ExpressionError).position).toBe(5);
    }
  });
});

describe('renderTemplate', () => {
  it.each([
    ['${name.givenName} ${name.familyName}', 'Ada Lovelace'],
    ['${name.familyName}, ${name.givenName} (${department})', 'Lovelace, Ada (Analytical Engines)'],
    ['${ name.givenName }', 'Ada'],
    ['${name.givenName} ${name.middleName}', 'Ada'],
    ['${name.middleName}', ''],
    ['${title}', 'Countess'],
    ['$${userName}$', '$Ada.Lovelace@Example.com$'],
    ['${emails[type eq "work"].value}', 'ada@example.com'],
    ['plain', 'plain'],
  ])('%s → %j', (template, expected) => {
    expect(renderTemplate(template, ada)).toBe(expected);
  });

  it('${value} is the current value, empty when there is none', () => {
    expect(renderTemplate('<${value}>', ada, 'x')).toBe('<x>');
    expect(renderTemplate('<${VALUE}>', ada)).toBe('<>');
  });
});

describe('applyMapping: each transform', () => {
  it.each<[string, AttributeMapping, string | undefined]>([
    ['source only', map('name.familyName'), 'Lovelace'],
    ['absent source', map('nickName'), undefined],
    ['lower', map('userName', { fn: 'lower' }), 'ada.lovelace@example.com'],
    ['upper', map('name.givenName', { fn: 'upper' }), 'ADA'],
    ['trim', map('title', { fn: 'trim' }), 'Countess'],
    ['no trim: values are kept as read', map('title'), '  Countess  '],
    ['regexReplace with a capture group', map('userName', { fn: 'regexReplace', pattern: '(.*)@.*', replacement: '$1' }), 'Ada.Lovelace'],
    ['regexReplace replaces the first match without g', map('userName', { fn: 'regexReplace', pattern: 'a', replacement: '_' }), 'Ad_.Lovelace@Example.com'],
    ['regexReplace with g', map('userName', { fn: 'regexReplace', pattern: 'a', replacement: '_', flags: 'g' }), 'Ad_.Lovel_ce@Ex_mple.com'],
    ['regexReplace with gi', map('userName', { fn: 'regexReplace', pattern: 'a', replacement: '_', flags: 'gi' }), '_d_.Lovel_ce@Ex_mple.com'],
    ['regexReplace with named groups and $&', map('name.givenName', { fn: 'regexReplace', pattern: '(?<first>A)', replacement: '[$<first>|$&]' }), '[A|A]da'],
    ['regexReplace that does not match', map('userName', { fn: 'regexReplace', pattern: 'zzz', replacement: 'y' }), 'Ada.Lovelace@Example.com'],
    ['regexReplace to nothing is empty', map('name.givenName', { fn: 'regexReplace', pattern: '.*', replacement: '' }), undefined],
    ['regexReplace on an absent value stays absent', map('nickName', { fn: 'regexReplace', pattern: '^', replacement: 'x' }), undefined],
    ['template without source', map(undefined, { fn: 'template', template: '${name.givenName} ${name.familyName}' }), 'Ada Lovelace'],
    ['template with ${value}', map('employeeNumber', { fn: 'template', template: 'EMP-${value}' }), 'EMP-1815'],
    ['template that renders nothing is empty', map(undefined, { fn: 'template', template: '${nickName} ${name.middleName}' }), undefined],
    ['firstNonEmpty keeps a present value', map('displayName', { fn: 'firstNonEmpty', sources: ['name.formatted'] }), 'Ada Lovelace'],
    ['firstNonEmpty falls back in order', map('nickName', { fn: 'firstNonEmpty', sources: ['name.middleName', 'name.formatted', 'displayName'] }), 'Augusta Ada King'],
    ['firstNonEmpty with a template source', map('nickName', { fn: 'firstNonEmpty', sources: ['${name.middleName}', '${name.givenName}!'] }), 'Ada!'],
    ['firstNonEmpty without source', map(undefined, { fn: 'firstNonEmpty', sources: ['externalId'] }), 'e-1'],
    ['firstNonEmpty with nothing anywhere', map('nickName', { fn: 'firstNonEmpty', sources: ['name.middleName'] }), undefined],
  ])('%s', (_, mapping, expected) => {
    expect(applyMapping(mapping, ada)).toBe(expected);
  });

  it('firstNonEmpty treats a value of only whitespace as empty', () => {
    const d = doc({ userName: 'u', nickName: '   ', title: 'Dr' });
    expect(applyMapping(map('nickName', { fn: 'firstNonEmpty', sources: ['title'] }), d)).toBe('Dr');
    expect(applyMapping(map('nickName'), d)).toBeUndefined();
  });
});

describe('applyMapping: compositions', () => {
  it.each<[string, Transform[], string | undefined]>([
    ['(.*)@.* → $1, then lower', [{ fn: 'regexReplace', pattern: '(.*)@.*', replacement: '$1' }, { fn: 'lower' }], 'ada.lovelace'],
    ['lower, then (.*)@.* → $1', [{ fn: 'lower' }, { fn: 'regexReplace', pattern: '(.*)@.*', replacement: '$1' }], 'ada.lovelace'],
    ['strip the domain, then template', [{ fn: 'regexReplace', pattern: '@.*$', replacement: '' }, { fn: 'template', template: '${value}@corp.example' }, { fn: 'lower' }], 'ada.lovelace@corp.example'],
    ['upper then regex with i', [{ fn: 'upper' }, { fn: 'regexReplace', pattern: '\\.lovelace', replacement: '-L', flags: 'i' }], 'ADA-L@EXAMPLE.COM'],
    ['regex empties it, firstNonEmpty refills it', [{ fn: 'regexReplace', pattern: '.*', replacement: '' }, { fn: 'firstNonEmpty', sources: ['externalId'] }, { fn: 'upper' }], 'E-1'],
    ['template, then trim is idempotent', [{ fn: 'template', template: '  ${name.givenName}  ' }, { fn: 'trim' }], 'Ada'],
  ])('%s', (_, transforms, expected) => {
    expect(applyMapping({ source: 'userName', transforms }, ada)).toBe(expected);
  });

  it('a sticky expression gives the same answer every time', () => {
    const m = map('userName', { fn: 'regexReplace', pattern: 'A', replacement: 'a', flags: 'y' });
    expect(applyMapping(m, ada)).toBe('ada.Lovelace@Example.com');
    expect(applyMapping(m, ada)).toBe('ada.Lovelace@Example.com');
  });
});

describe('evaluateUser', () => {
  it('maps username, email, display name and active through the settings', () => {
    const s = users({
      username: map('userName', { fn: 'regexReplace', pattern: '(.*)@.*', replacement: '$1' }, { fn: 'lower' }),
      email: map('emails[primary eq true].value'),
      displayName: map(undefined, { fn: 'template', template: '${name.familyName}, ${name.givenName}' }),
    });
    expect(evaluateUser(s, ada)).toEqual({
      inScope: true,
      desired: { username: 'ada.lovelace', email: 'countess@example.com', displayName: 'Lovelace, Ada', active: true, attributes: {} },
    });
  });

  it.each([
    ['', true],
    ['active eq true', true],
    ['active eq false', false],
    ['emails[type eq "work"].value ew "@example.com"', true],
    ['emails[type eq "work"].value ew "@other.example"', false],
    ['department eq "analytical engines"', true],
    [`${ENT}:department sw "Chem"`, false],
    ['not (userName sw "ada")', false],
    ['title pr and name.familyName eq "LOVELACE"', true],
    ['manager eq "babbage"', true],
  ])('condition %j: in scope %s', (condition, inScope) => {
    const result = evaluateUser(users({ condition }), ada);
    expect(result.inScope).toBe(inScope);
    if (!result.inScope) expect(result.reason).toBe('left out by the condition');
  });

  it('a user whose username maps to nothing is out of scope', () => {
    const s = users({ username: map('userName', { fn: 'regexReplace', pattern: '@.*|^[^@]*$', replacement: '', flags: 'g' }) });
    expect(evaluateUser(s, doc({ userName: 'no-at-sign' }))).toEqual({ inScope: false, reason: 'the username mapping gives an empty value' });
    expect(evaluateUser(users({ username: map('nickName') }), ada)).toEqual({ inScope: false, reason: 'the username mapping gives an empty value' });
    expect(evaluateUser(users({ username: map('title', { fn: 'regexReplace', pattern: '\\w', replacement: ' ', flags: 'g' }) }), ada).inScope).toBe(false);
  });

  it('the condition is checked before the username', () => {
    expect(evaluateUser(users({ condition: 'active eq false', username: map('nickName') }), ada)).toEqual({ inScope: false, reason: 'left out by the condition' });
  });

  it('custom attributes hold the non-empty values, keyed in name order', () => {
    const s = users({
      customAttributes: [
        { name: 'title', mapping: map('title', { fn: 'trim' }) },
        { name: 'department', mapping: map(`${ENT}:department`, { fn: 'upper' }) },
        { name: 'nick', mapping: map('nickName') },
        { name: 'employee.number', mapping: map('employeeNumber', { fn: 'template', template: 'E${value}' }) },
        { name: 'blank', mapping: map(undefined, { fn: 'template', template: '${name.middleName}' }) },
        { name: 'mobile', mapping: map('phoneNumbers[type eq "mobile"].value') },
      ],
    });
    const result = evaluateUser(s, ada);
    expect(result.inScope && result.desired.attributes).toEqual({ department: 'ANALYTICAL ENGINES', 'employee.number': 'E1815', mobile: '+44 1', title: 'Countess' });
    expect(result.inScope && Object.keys(result.desired.attributes)).toEqual(['department', 'employee.number', 'mobile', 'title']);
  });

  it('active is false only when the record says so', () => {
    expect(evaluateUser(DEFAULT_SETTINGS.user, doc({ userName: 'u', active: false }))).toMatchObject({ desired: { active: false } });
    expect(evaluateUser(DEFAULT_SETTINGS.user, doc({ userName: 'u', active: 'False' }))).toMatchObject({ desired: { active: false } });
    expect(evaluateUser(DEFAULT_SETTINGS.user, doc({ userName: 'u' }))).toMatchObject({ desired: { active: true } });
  });

  it('the display name falls back to the mapped username', () => {
    const s = users({ username: map('userName', { fn: 'lower' }), displayName: map('nickName') });
    expect(evaluateUser(s, doc({ userName: 'ADA' }))).toMatchObject({ desired: { username: 'ada', displayName: 'ada' } });
  });

  it('no email is null', () => {
    expect(evaluateUser(DEFAULT_SETTINGS.user, doc({ userName: 'u' }))).toMatchObject({ desired: { email: null } });
  });

  it('operations, copyBehaviour and cleanup do not change the evaluation (the reconciler applies them)', () => {
    const s = users({ operations: { create: false, update: false, activate: false, deactivate: false }, copyBehaviour: true, cleanup: 'leave' });
    expect(evaluateUser(s, ada)).toEqual(evaluateUser(DEFAULT_SETTINGS.user, ada));
  });
});

/** The rule as it was before settings existed, kept here to prove the defaults reproduce it. */
function legacyDefaultUserRule(d: ScimDoc): DesiredUser {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
  const name = (d.name ?? {}) as Record<string, unknown>;
  const username = String(d.userName);
  const given = [str(name.givenName), str(name.familyName)].filter(Boolean).join(' ');
  return {
    username,
    email: workEmail(d) ?? null,
    displayName: str(d.displayName) ?? str(name.formatted) ?? (given || username),
    active: d.active !== false,
    attributes: {},
  };
}

describe('defaultUserRule', () => {
  it.each([
    [{ userName: 'ada', displayName: 'Ada L', name: { formatted: 'F', givenName: 'G' } }, 'Ada L'],
    [{ userName: 'ada', displayName: '  ', name: { formatted: 'Formatted', givenName: 'G' } }, 'Formatted'],
    [{ userName: 'ada', name: { formatted: ' ', givenName: 'Given', familyName: 'Family' } }, 'Given Family'],
    [{ userName: 'ada', name: { givenName: 'Given' } }, 'Given'],
    [{ userName: 'ada', name: { familyName: 'Family' } }, 'Family'],
    [{ userName: 'ada', name: { givenName: '  ', familyName: 'Family' } }, 'Family'],
    [{ userName: 'ada', name: { givenName: ' ', familyName: ' ' } }, 'ada'],
    [{ userName: 'ada' }, 'ada'],
    [{ userName: ' padded ', displayName: ' Shown as is ' }, ' Shown as is '],
  ])('display name of %j is %j', (body, displayName) => {
    const d = doc(body);
    expect(defaultUserRule(d).displayName).toBe(displayName);
    expect(defaultUserRule(d)).toEqual(legacyDefaultUserRule(d));
  });

  it.each([
    [[{ value: 'h@x', type: 'home' }, { value: 'w@x', type: 'WORK' }, { value: 'p@x', primary: true }], 'w@x'],
    [[{ value: 'h@x', type: 'home' }, { value: 'p@x', primary: 'True' }], 'p@x'],
    [[{ value: 'h@x', type: 'home' }, { value: 'o@x', type: 'other' }], 'h@x'],
    [[{ type: 'work' }, { value: 'p@x', primary: true }], 'p@x'],
    [[{ type: 'work' }, { type: 'home' }], null],
    [[], null],
  ])('email of %j is %j', (emails, email) => {
    const d = doc({ userName: 'u', emails });
    expect(defaultUserRule(d).email).toBe(email);
    expect(defaultUserRule(d)).toEqual(legacyDefaultUserRule(d));
  });

  it('is evaluateUser with the default settings', () => {
    expect(defaultUserRule(ada)).toEqual({ username: 'Ada.Lovelace@Example.com', email: 'ada@example.com', displayName: 'Ada Lovelace', active: true, attributes: {} });
    expect(evaluateUser(DEFAULT_SETTINGS.user, ada)).toEqual({ inScope: true, desired: defaultUserRule(ada) });
  });

  // Where the settings' semantics (empty means blank; a template's result is trimmed) part from the old code.
  it('differs from the old rule only for blank e-mail values and padded given or family names', () => {
    const blankWork = doc({ userName: 'u', emails: [{ value: '  ', type: 'work' }, { value: 'p@x', primary: true }] });
    expect(legacyDefaultUserRule(blankWork).email).toBe('  ');
    expect(defaultUserRule(blankWork).email).toBe('p@x');
    const padded = doc({ userName: 'u', name: { givenName: ' Ada ', familyName: 'Lovelace ' } });
    expect(legacyDefaultUserRule(padded).displayName).toBe(' Ada  Lovelace ');
    expect(defaultUserRule(padded).displayName).toBe('Ada  Lovelace');
  });

  it('stays total for a record without a userName, as before', () => {
    expect(defaultUserRule({ displayName: 'x' })).toEqual(legacyDefaultUserRule({ displayName: 'x' }));
  });

  it('defaultGroupRule and directoryKey are unchanged', () => {
    expect(defaultGroupRule({ displayName: 'Jira Users' })).toEqual({ name: 'Jira Users' });
    expect(directoryKey('Jira-USERS')).toBe('jira-users');
  });
});

describe('userDiff', () => {
  const base: DesiredUser = { username: 'a', email: null, displayName: 'A', active: true, attributes: { x: '1', y: '2' } };

  it('attributes compare by content, not key order', () => {
    expect(userDiff(base, { ...base, attributes: { y: '2', x: '1' } })).toEqual({});
    expect(userDiff(base, { ...base, attributes: { x: '1' } })).toEqual({ attributes: { from: base.attributes, to: { x: '1' } } });
    expect(userDiff(base, { ...base, attributes: { x: '1', y: '3' } })).toHaveProperty('attributes');
    expect(userDiff(base, { ...base, attributes: { x: '1', z: '2' } })).toHaveProperty('attributes');
  });

  it('reports each changed field', () => {
    expect(userDiff(base, { ...base, username: 'b', email: 'e', displayName: 'B', active: false })).toEqual({
      username: { from: 'a', to: 'b' },
      email: { from: null, to: 'e' },
      displayName: { from: 'A', to: 'B' },
      active: { from: true, to: false },
    });
  });
});

describe('groupTargets: on the fly', () => {
  it('the provider group becomes the application group of the same name', () => {
    expect(groupTargets(groups({}), 'Engineering')).toEqual({ targets: ['Engineering'], excluded: [] });
  });

  it.each([
    ['sg-(.*)', '$1', 'sg-Engineering', 'Engineering'],
    ['sg-(.*)', '$1', 'SG-Engineering', 'Engineering'],
    ['sg-(.*)', '$1', 'my-sg-Engineering', 'my-sg-Engineering'],
    ['(.*)-(dev|prod)', '$2-$1', 'jira-prod', 'prod-jira'],
    ['.*', 'jira-$&', 'users', 'jira-users'],
    ['azure_(?<app>[a-z]+)_users', '$<app>-users', 'AZURE_jira_USERS', 'jira-users'],
  ])('rename %j → %j: %j becomes %j', (pattern, replacement, name, renamed) => {
    expect(groupTargets(groups({ rename: { pattern, replacement } }), name).targets).toEqual([renamed]);
  });

  it('a rename to nothing, or to a name too long, is excluded with the reason', () => {
    expect(groupTargets(groups({ rename: { pattern: 'tmp-.*', replacement: '' } }), 'tmp-x')).toEqual({
      targets: [],
      excluded: [{ name: '', reason: 'empty group name' }],
    });
    const long = groupTargets(groups({ rename: { pattern: '(.*)', replacement: '$1$1' } }), 'g'.repeat(200));
    expect(long.targets).toEqual([]);
    expect(long.excluded[0]!.reason).toBe('group name longer than 255 characters');
  });

  it('manual mappings and onlyAssign-free settings do not matter on the fly', () => {
    expect(groupTargets(groups({ manualMappings: [{ source: 'A', targets: ['B'] }] }), 'A').targets).toEqual(['A']);
  });
});

describe('groupTargets: manual', () => {
  const manual = groups({
    mode: 'manual',
    rename: { pattern: '(.*)', replacement: 'renamed-$1' }, // on-the-fly only: ignored
    manualMappings: [
      { source: 'Developers', targets: ['jira-software-users'] },
      { source: 'Testers', targets: ['jira-software-users'] },
      { source: 'Engineering', targets: ['jira-developers', 'confluence-users', 'bitbucket-users'] },
      { source: 'engineering', targets: ['Confluence-Users', 'jira-admins'] },
    ],
  });

  it('two provider groups merge into one application group', () => {
    expect(groupTargets(manual, 'Developers').targets).toEqual(['jira-software-users']);
    expect(groupTargets(manual, 'Testers').targets).toEqual(['jira-software-users']);
  });

  it('one provider group goes to several, across every matching row, deduplicated case-insensitively', () => {
    expect(groupTargets(manual, 'ENGINEERING')).toEqual({
      targets: ['jira-developers', 'confluence-users', 'bitbucket-users', 'jira-admins'],
      excluded: [],
    });
  });

  it('an unmapped provider group maps to nothing', () => {
    expect(groupTargets(manual, 'Sales')).toEqual({ targets: [], excluded: [{ name: 'Sales', reason: 'no manual mapping for this group' }] });
  });
});

describe('groupTargets: onlyAssign, then neverAssign', () => {
  const s = groups({
    mode: 'manual',
    manualMappings: [{ source: 'g', targets: ['jira-users', 'jira-administrators', 'confluence-users', 'bitbucket-users', 'JIRA-x'] }],
    onlyAssign: ['jira-.*', 'confluence-users'],
    neverAssign: ['.*-administrators', 'jira-x'],
  });

  it('keeps only what onlyAssign lets through and neverAssign does not stop, saying why', () => {
    expect(groupTargets(s, 'g')).toEqual({
      targets: ['jira-users', 'confluence-users'],
      excluded: [
        { name: 'jira-administrators', reason: "matches neverAssign pattern '.*-administrators'" },
        { name: 'bitbucket-users', reason: 'matches no onlyAssign pattern' },
        { name: 'JIRA-x', reason: "matches neverAssign pattern 'jira-x'" },
      ],
    });
  });

  it('onlyAssign is checked first: a name failing both is reported as not in onlyAssign', () => {
    const both = groups({ onlyAssign: ['a.*'], neverAssign: ['b.*'] });
    expect(groupTargets(both, 'bx').excluded).toEqual([{ name: 'bx', reason: 'matches no onlyAssign pattern' }]);
  });

  it('patterns match the whole name, case-insensitively', () => {
    const t = groups({ onlyAssign: ['jira'] });
    expect(groupTargets(t, 'JIRA').targets).toEqual(['JIRA']);
    expect(groupTargets(t, 'jira-users').targets).toEqual([]);
    expect(groupTargets(groups({ neverAssign: ['a|b'] }), 'a-b').targets).toEqual(['a-b']);
  });

  it('filters apply after the rename', () => {
    const t = groups({ rename: { pattern: 'sg-(.*)', replacement: 'jira-$1' }, onlyAssign: ['jira-.*'] });
    expect(groupTargets(t, 'sg-users').targets).toEqual(['jira-users']);
  });

  it.each([
    ['jira-users', true],
    ['JIRA-USERS', true],
    ['jira-administrators', false],
    ['bitbucket-users', false],
    ['confluence-users', true],
  ])('isAssignable(%j) is %s (also for default and always groups)', (name, expected) => {
    expect(isAssignable(s, name)).toBe(expected);
  });

  it('with no filters everything is assignable', () => {
    expect(isAssignable(groups({}), 'anything')).toBe(true);
  });
});

describe('neverRemove and licences', () => {
  const s = groups({
    neverRemove: ['local-.*', 'jira-administrators'],
    licences: [
      { group: 'Jira-Software-Users', seats: 100 },
      { group: 'confluence-users', seats: 0 },
    ],
  });

  it.each([
    ['local-admins', true],
    ['LOCAL-x', true],
    ['jira-administrators', true],
    ['jira-administrators-2', false],
    ['my-local-admins', false],
  ])('isNeverRemove(%j) is %s', (name, expected) => {
    expect(isNeverRemove(s, name)).toBe(expected);
  });

  it('nothing is protected by default', () => {
    expect(isNeverRemove(groups({}), 'jira-administrators')).toBe(false);
  });

  it('finds the licence of a group case-insensitively', () => {
    expect(licenceFor(s, 'jira-software-users')).toEqual({ group: 'Jira-Software-Users', seats: 100 });
    expect(licenceFor(s, 'CONFLUENCE-USERS')).toEqual({ group: 'confluence-users', seats: 0 });
    expect(licenceFor(s, 'bitbucket-users')).toBeUndefined();
  });
});

describe('settings objects are compiled per object', () => {
  it('a new settings object with other values gives other answers', () => {
    const a = groups({ neverAssign: ['x'] });
    const b = groups({ neverAssign: ['y'] });
    expect(groupTargets(a, 'x').targets).toEqual([]);
    expect(groupTargets(b, 'x').targets).toEqual(['x']);
    expect(evaluateUser(users({ condition: 'active eq false' }), ada).inScope).toBe(false);
    expect(evaluateUser(users({ condition: 'active eq true' }), ada).inScope).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------ properties

const text = fc.string({ unit: fc.constantFrom('a', 'B', 'z', 'é', ' ', '@', '.', '-', '1', '\u00a0', '$', '{', '}'), maxLength: 8 });
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const bool = fc.oneof(fc.boolean(), fc.constantFrom('True', 'false', 'FALSE'));

/** Request bodies as identity providers send them, normalised as the mirror keeps them. */
const userDocs: fc.Arbitrary<ScimDoc> = fc
  .record(
    {
      userName: text.filter((s) => s.trim() !== ''),
      externalId: opt(text),
      displayName: opt(text),
      nickName: opt(text),
      title: opt(text),
      name: opt(fc.record({ givenName: opt(text), familyName: opt(text), formatted: opt(text), middleName: opt(text) }, { requiredKeys: [] })),
      emails: opt(
        fc.array(
          fc.record({ value: opt(text), type: opt(fc.constantFrom('work', 'Work', 'home', 'other')), primary: opt(bool) }, { requiredKeys: [] }),
          { maxLength: 4 },
        ),
      ),
      phoneNumbers: opt(fc.array(fc.record({ value: text, type: fc.constantFrom('work', 'mobile') }), { maxLength: 2 })),
      active: opt(bool),
      [ENT]: opt(fc.record({ department: opt(text), employeeNumber: opt(text), manager: opt(text), costCenter: opt(text) }, { requiredKeys: [] })),
    },
    { requiredKeys: ['userName'] },
  )
  .map((body) => normaliseResource(User, body).doc);

const SOURCES = [
  'userName',
  'displayName',
  'nickName',
  'title',
  'externalId',
  'active',
  'name.givenName',
  'name.familyName',
  'emails',
  'emails.value',
  'emails.type',
  'emails[type eq "work"].value',
  'emails[primary eq true].value',
  'emails[type eq "home" or value co "@"].value',
  'phoneNumbers[type eq "mobile"].value',
  `${ENT}:department`,
  'employeeNumber',
  'manager',
];

const transformArb: fc.Arbitrary<Transform> = fc.oneof(
  fc.constantFrom<Transform>({ fn: 'lower' }, { fn: 'upper' }, { fn: 'trim' }),
  fc.record({
    fn: fc.constant('regexReplace' as const),
    pattern: fc.constantFrom('(.*)@.*', 'a', '\\s+', '^', '$', '(?<x>[a-z])', '.', 'é|B'),
    replacement: fc.constantFrom('$1', '', '-', '$<x>$&', '$$'),
    flags: fc.constantFrom('', 'g', 'gi', 'y', 'iy', 'gy', 'u', 's', 'm', 'gimsuy'),
  }),
  fc.record({ fn: fc.constant('template' as const), template: fc.constantFrom('${value}', '${name.givenName} ${name.familyName}', 'x${value}y${emails[type eq "work"].value}', '$') }),
  fc.record({ fn: fc.constant('firstNonEmpty' as const), sources: fc.array(fc.constantFrom(...SOURCES, '${userName}-${title}'), { minLength: 1, maxLength: 3 }) }),
);

const mappingArb: fc.Arbitrary<AttributeMapping> = fc.record({ source: fc.constantFrom(...SOURCES), transforms: fc.array(transformArb, { maxLength: 4 }) });

const userSettingsArb: fc.Arbitrary<UserSyncSettings> = fc
  .record({
    username: mappingArb,
    email: mappingArb,
    displayName: mappingArb,
    condition: fc.constantFrom('', 'userName sw "a"', 'emails[type eq "work"].value ew "@"', 'active eq true', 'not (displayName pr)', 'department eq "a"', 'name.givenName co "a" or title pr'),
    customAttributes: fc.uniqueArray(fc.record({ name: fc.constantFrom('a', 'b', 'dept', 'x.y'), mapping: mappingArb }), { selector: (a) => a.name, maxLength: 3 }),
  })
  .map((user) => validateSettings({ user }).user);

describe('properties: users', () => {
  it('evaluateUser never throws and is deterministic for any normalised record', () => {
    fc.assert(
      fc.property(userSettingsArb, fc.array(userDocs, { minLength: 1, maxLength: 5 }), (settings, docs) => {
        const first = docs.map((d) => evaluateUser(settings, d));
        const again = docs.map((d) => evaluateUser(settings, structuredClone(d)));
        expect(again).toEqual(first);
        // and a fresh copy of the settings (compiled anew) agrees
        expect(docs.map((d) => evaluateUser(structuredClone(settings), d))).toEqual(first);
        for (const r of first) {
          if (r.inScope) {
            expect(r.desired.username.trim()).not.toBe('');
            expect(r.desired.displayName.trim()).not.toBe('');
            for (const v of Object.values(r.desired.attributes)) expect(v.trim()).not.toBe('');
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('defaultUserRule is evaluateUser with DEFAULT_SETTINGS', () => {
    fc.assert(
      fc.property(userDocs, (d) => {
        const r = evaluateUser(DEFAULT_SETTINGS.user, d);
        expect(r.inScope).toBe(true);
        expect(r.inScope && r.desired).toEqual(defaultUserRule(d));
      }),
      { numRuns: 300 },
    );
  });

  it('defaultUserRule gives what the rule gave before settings, outside the two documented differences', () => {
    const padded = (v: unknown) => typeof v === 'string' && v.trim() !== '' && v.trim() !== v;
    fc.assert(
      fc.property(userDocs, (d) => {
        const emails = (d.emails ?? []) as { value?: string }[];
        const name = (d.name ?? {}) as Record<string, unknown>;
        fc.pre(!emails.some((e) => e.value !== undefined && e.value.trim() === ''));
        fc.pre(!padded(name.givenName) && !padded(name.familyName));
        expect(defaultUserRule(d)).toEqual(legacyDefaultUserRule(d));
      }),
      { numRuns: 500 },
    );
  });
});

const groupName = fc.string({ unit: fc.constantFrom('a', 'A', 'b', 'x', '-', '1', 'é'), minLength: 1, maxLength: 6 });
const PATTERNS = ['a.*', 'b', '.*-.*', 'x|y', '[ab]+', 'A1', '.*', '.*é.*', '(a)(b)?'];

const groupSettingsArb: fc.Arbitrary<GroupSyncSettings> = fc
  .record({
    mode: fc.constantFrom('onTheFly' as const, 'manual' as const),
    rename: fc.option(fc.record({ pattern: fc.constantFrom('(.*)-x', 'a(.*)', '.*'), replacement: fc.constantFrom('$1', 'b$1', 'x-$&') }), { nil: null }),
    manualMappings: fc.array(fc.record({ source: groupName, targets: fc.array(groupName, { minLength: 1, maxLength: 4 }) }), { maxLength: 5 }),
    onlyAssign: fc.array(fc.constantFrom(...PATTERNS), { maxLength: 3 }),
    neverAssign: fc.array(fc.constantFrom(...PATTERNS), { maxLength: 3 }),
  })
  .map((group) => validateSettings({ group }).group);

const whole = (p: string) => new RegExp(`^(?:${p})$`, 'i');

describe('properties: groups', () => {
  it('no target matches neverAssign; with onlyAssign every target matches it; targets are distinct and assignable', () => {
    fc.assert(
      fc.property(groupSettingsArb, fc.oneof(groupName, fc.constantFrom('a-x', 'ab', 'A1')), (settings, provider) => {
        const { targets, excluded } = groupTargets(settings, provider);
        for (const t of targets) {
          expect(settings.neverAssign.some((p) => whole(p).test(t))).toBe(false);
          if (settings.onlyAssign.length > 0) expect(settings.onlyAssign.some((p) => whole(p).test(t))).toBe(true);
          expect(isAssignable(settings, t)).toBe(true);
        }
        expect(new Set(targets.map(directoryKey)).size).toBe(targets.length);
        for (const e of excluded) expect(targets.map(directoryKey)).not.toContain(directoryKey(e.name));
        expect(groupTargets(settings, provider)).toEqual({ targets, excluded });
      }),
      { numRuns: 500 },
    );
  });

  it('in manual mode the targets are the mapped names that pass the filters', () => {
    fc.assert(
      fc.property(groupSettingsArb, groupName, (settings, provider) => {
        fc.pre(settings.mode === 'manual');
        const mapped = settings.manualMappings.filter((m) => directoryKey(m.source) === directoryKey(provider)).flatMap((m) => m.targets);
        const { targets } = groupTargets(settings, provider);
        for (const t of targets) expect(mapped).toContain(t);
        for (const m of mapped) {
          if (isAssignable(settings, m)) expect(targets.map(directoryKey)).toContain(directoryKey(m));
        }
      }),
      { numRuns: 300 },
    );
  });
});
