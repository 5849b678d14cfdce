// Validation of user and group sync settings: defaults fill in per field, unknown keys and wrong types are
// refused, every expression is compiled when saved and a bad one is reported with its path and position.

import { describe, expect, it } from 'vitest';
import type { ConnectorSettings } from '../../src/domain/settings.ts';
import { DEFAULT_SETTINGS } from '../../src/domain/settings.ts';
import type { SettingsIssue } from '../../src/domain/settings-validate.ts';
import { SettingsError, settingsPatch, validateSettings } from '../../src/domain/settings-validate.ts';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** Every issue validateSettings reports for `input`; fails when it accepts it. */
function issues(input: unknown, current?: ConnectorSettings): SettingsIssue[] {
  try {
    if (current) settingsPatch(current, input);
    else validateSettings(input);
  } catch (e) {
    if (e instanceof SettingsError) return e.errors;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be refused`);
}

/** The one issue reported for `input`. */
function only(input: unknown): SettingsIssue {
  const list = issues(input);
  expect(list, JSON.stringify(list)).toHaveLength(1);
  return list[0]!;
}

const user = (u: Record<string, unknown>) => ({ user: u });
const group = (g: Record<string, unknown>) => ({ group: g });
const username = (m: unknown) => user({ username: m });
const transforms = (...t: unknown[]) => username({ source: 'userName', transforms: t });

describe('defaults', () => {
  it('an empty object, or nothing, gives the defaults', () => {
    expect(validateSettings({})).toEqual(DEFAULT_SETTINGS);
    expect(validateSettings(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(validateSettings({ user: {}, group: {}, safety: { deletionLimit: {} } })).toEqual(DEFAULT_SETTINGS);
  });

  it('the result is a copy: changing it leaves DEFAULT_SETTINGS alone', () => {
    const s = validateSettings({});
    s.group.defaultGroups.push('x');
    s.user.operations.create = false;
    expect(DEFAULT_SETTINGS.group.defaultGroups).toEqual([]);
    expect(DEFAULT_SETTINGS.user.operations.create).toBe(true);
  });

  it('the default settings are valid', () => {
    expect(validateSettings(DEFAULT_SETTINGS)).toEqual(DEFAULT_SETTINGS);
  });

  it('fills in per field, deep for sections and option objects', () => {
    const s = validateSettings({ user: { operations: { deactivate: false } }, safety: { deletionLimit: { count: 10 } } });
    expect(s.user.operations).toEqual({ create: true, update: true, activate: true, deactivate: false });
    expect(s.user.username).toEqual(DEFAULT_SETTINGS.user.username);
    expect(s.safety.deletionLimit).toEqual({ count: 10, percent: null });
    expect(s.group).toEqual(DEFAULT_SETTINGS.group);
  });

  it('replaces a mapping whole: source and transforms go together', () => {
    const s = validateSettings({ user: { email: { source: 'emails.value' } } });
    expect(s.user.email).toEqual({ source: 'emails.value' });
    expect(s.user.displayName).toEqual(DEFAULT_SETTINGS.user.displayName);
  });

  it('replaces lists whole', () => {
    const current = validateSettings(group({ defaultGroups: ['a', 'b'] }));
    expect(settingsPatch(current, group({ defaultGroups: ['c'] })).group.defaultGroups).toEqual(['c']);
  });

  it('a blank condition means every user and is stored as empty', () => {
    expect(validateSettings(user({ condition: '   ' })).user.condition).toBe('');
  });

  it('null is a value where the type allows it, and absent for optional mapping fields', () => {
    const s = validateSettings({
      group: { rename: null },
      safety: { deletionLimit: { count: null, percent: null } },
      user: { username: { source: 'userName', transforms: null }, email: { source: 'emails.value', transforms: [{ fn: 'regexReplace', pattern: 'a', replacement: 'b', flags: null }] } },
    });
    expect(s.group.rename).toBeNull();
    expect(s.user.username).toEqual({ source: 'userName' });
    expect(s.user.email.transforms).toEqual([{ fn: 'regexReplace', pattern: 'a', replacement: 'b' }]);
  });

  it('accepts a full, valid configuration as given', () => {
    const full: ConnectorSettings = {
      user: {
        operations: { create: true, update: false, activate: true, deactivate: false },
        username: { source: 'userName', transforms: [{ fn: 'regexReplace', pattern: '(.*)@.*', replacement: '$1', flags: 'i' }, { fn: 'lower' }] },
        email: { source: 'emails[type eq "work"].value', transforms: [{ fn: 'trim' }, { fn: 'firstNonEmpty', sources: ['emails.value', '${userName}@example.com'] }] },
        displayName: { transforms: [{ fn: 'template', template: '${name.givenName} ${name.familyName}' }, { fn: 'upper' }] },
        condition: 'active eq true and emails[type eq "work"].value ew "@example.com"',
        customAttributes: [
          { name: 'department', mapping: { source: `${ENT}:department` } },
          { name: 'manager.id', mapping: { source: 'manager' } },
          { name: 'cost_center-2', mapping: { transforms: [{ fn: 'firstNonEmpty', sources: ['costCenter', 'title'] }] } },
        ],
        copyBehaviour: true,
        cleanup: 'delete',
      },
      group: {
        defaultGroups: ['jira-software-users'],
        alwaysGroups: ['everyone'],
        mode: 'manual',
        rename: { pattern: 'sg-(.*)', replacement: '$1' },
        manualMappings: [{ source: 'Engineering', targets: ['jira-developers', 'confluence-users'] }],
        createEmptyGroups: false,
        onlyAssign: ['jira-.*', 'confluence-.*'],
        neverAssign: ['.*-administrators'],
        neverRemove: ['local-.*'],
        membershipAuthority: 'sourceOfTruth',
        deleteEmptyManagedGroups: true,
        licences: [{ group: 'jira-software-users', seats: 250 }],
      },
      safety: { deletionLimit: { count: 50, percent: 12.5 } },
    };
    expect(validateSettings(full)).toEqual(full);
  });
});

describe('unknown keys and wrong types', () => {
  it.each([
    [{ colour: 'red' }, 'colour'],
    [user({ nickname: 'x' }), 'user.nickname'],
    [user({ operations: { delete: true } }), 'user.operations.delete'],
    [username({ source: 'userName', default: 'x' }), 'user.username.default'],
    [transforms({ fn: 'lower', pattern: 'x' }), 'user.username.transforms[0].pattern'],
    [transforms({ fn: 'template', template: '${userName}', sources: [] }), 'user.username.transforms[0].sources'],
    [user({ customAttributes: [{ name: 'a', mapping: { source: 'userName' }, type: 'string' }] }), 'user.customAttributes[0].type'],
    [group({ mode: 'manual', extra: 1 }), 'group.extra'],
    [group({ rename: { pattern: 'a', replacement: 'b', flags: 'g' } }), 'group.rename.flags'],
    [group({ manualMappings: [{ source: 'a', targets: ['b'], note: '' }] }), 'group.manualMappings[0].note'],
    [group({ licences: [{ group: 'a', seats: 1, product: 'jira' }] }), 'group.licences[0].product'],
    [{ safety: { maxDeletes: 1 } }, 'safety.maxDeletes'],
    [{ safety: { deletionLimit: { count: 1, ratio: 1 } } }, 'safety.deletionLimit.ratio'],
  ])('%j: %s is an unknown setting', (input, path) => {
    expect(only(input)).toEqual({ path, message: 'unknown setting' });
  });

  it.each([
    [null, ''],
    ['settings', ''],
    [[], ''],
    [{ user: null }, 'user'],
    [{ group: [] }, 'group'],
    [{ safety: 1 }, 'safety'],
    [user({ operations: true }), 'user.operations'],
    [user({ operations: { create: 'yes' } }), 'user.operations.create'],
    [user({ copyBehaviour: 1 }), 'user.copyBehaviour'],
    [user({ cleanup: 'archive' }), 'user.cleanup'],
    [user({ condition: 5 }), 'user.condition'],
    [user({ condition: null }), 'user.condition'],
    [user({ customAttributes: {} }), 'user.customAttributes'],
    [user({ customAttributes: ['department'] }), 'user.customAttributes[0]'],
    [username('userName'), 'user.username'],
    [username({ source: 7 }), 'user.username.source'],
    [username({ source: 'userName', transforms: { fn: 'lower' } }), 'user.username.transforms'],
    [transforms('lower'), 'user.username.transforms[0]'],
    [transforms({ fn: 'regexReplace', pattern: /a/, replacement: 'b' }), 'user.username.transforms[0].pattern'],
    [transforms({ fn: 'regexReplace', pattern: 'a' }), 'user.username.transforms[0].replacement'],
    [transforms({ fn: 'regexReplace', pattern: 'a', replacement: 'b', flags: 1 }), 'user.username.transforms[0].flags'],
    [transforms({ fn: 'template' }), 'user.username.transforms[0].template'],
    [transforms({ fn: 'firstNonEmpty', sources: 'title' }), 'user.username.transforms[0].sources'],
    [transforms({ fn: 'firstNonEmpty', sources: [1] }), 'user.username.transforms[0].sources[0]'],
    [group({ mode: 'auto' }), 'group.mode'],
    [group({ membershipAuthority: 'provider' }), 'group.membershipAuthority'],
    [group({ createEmptyGroups: 'false' }), 'group.createEmptyGroups'],
    [group({ deleteEmptyManagedGroups: null }), 'group.deleteEmptyManagedGroups'],
    [group({ defaultGroups: 'jira-users' }), 'group.defaultGroups'],
    [group({ alwaysGroups: [1] }), 'group.alwaysGroups[0]'],
    [group({ onlyAssign: [null] }), 'group.onlyAssign[0]'],
    [group({ rename: 'sg-(.*)' }), 'group.rename'],
    [group({ rename: { pattern: 'a' } }), 'group.rename.replacement'],
    [group({ manualMappings: [{ source: 'a', targets: 'b' }] }), 'group.manualMappings[0].targets'],
    [group({ licences: [['a', 1]] }), 'group.licences[0]'],
    [{ safety: { deletionLimit: 5 } }, 'safety.deletionLimit'],
  ])('%j is refused at %j', (input, path) => {
    expect(only(input).path).toBe(path);
  });

  it('names the expected values of an enumeration', () => {
    expect(only(user({ cleanup: 'archive' })).message).toBe("must be one of 'deactivate', 'delete', 'leave'");
    expect(only(group({ mode: 'auto' })).message).toBe("must be one of 'onTheFly', 'manual'");
  });
});

describe('all errors at once', () => {
  it('reports every problem in one SettingsError whose message summarises them', () => {
    let error: unknown;
    try {
      validateSettings({
        colour: 'red',
        user: { condition: 'userName eq', username: { source: 'nope' } },
        group: { onlyAssign: ['('], licences: [{ group: 'g', seats: -1 }] },
        safety: { deletionLimit: { percent: 200 } },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect(error).toBeInstanceOf(Error);
    const e = error as SettingsError;
    expect(e.name).toBe('SettingsError');
    expect(e.errors.map((i) => i.path)).toEqual([
      'colour',
      'user.condition',
      'user.username.source',
      'group.onlyAssign[0]',
      'group.licences[0].seats',
      'safety.deletionLimit.percent',
    ]);
    expect(e.message).toMatch(/^6 invalid settings: colour: unknown setting; user\.condition: .* \(at position 11\); user\.username\.source: unknown attribute 'nope' \(at position 0\); .*; and 1 more$/);
  });

  it('a single error is summarised in the singular', () => {
    expect(() => validateSettings({ colour: 1 })).toThrow(/^1 invalid setting: colour: unknown setting$/);
  });
});

describe('regular expressions', () => {
  it('a regexReplace pattern that does not compile is refused with the JavaScript error', () => {
    const i = only(transforms({ fn: 'regexReplace', pattern: '(.*@', replacement: '$1' }));
    expect(i.path).toBe('user.username.transforms[0].pattern');
    expect(i.message).toMatch(/Invalid regular expression: \/\(\.\*@\/: Unterminated group/);
    expect(i.position).toBeUndefined();
  });

  it('a pattern invalid only with its flags is refused (u is stricter)', () => {
    expect(only(transforms({ fn: 'regexReplace', pattern: '\\-', replacement: '', flags: 'u' })).path).toBe('user.username.transforms[0].pattern');
    expect(validateSettings(transforms({ fn: 'regexReplace', pattern: '\\-', replacement: '' })).user.username.transforms).toHaveLength(1);
  });

  it.each([
    ['x', "unknown flag 'x'; flags are any of 'gimsuy'", 0],
    ['gd', "unknown flag 'd'; flags are any of 'gimsuy'", 1],
    ['giv', "unknown flag 'v'; flags are any of 'gimsuy'", 2],
    ['gig', "flag 'g' is repeated", 2],
  ])('flags %j are refused: %s at %i', (flags, message, position) => {
    expect(only(transforms({ fn: 'regexReplace', pattern: 'a', replacement: '', flags }))).toEqual({
      path: 'user.username.transforms[0].flags',
      message,
      position,
    });
  });

  it('all of gimsuy are accepted', () => {
    expect(validateSettings(transforms({ fn: 'regexReplace', pattern: 'a', replacement: '', flags: 'gimsuy' })).user.username.transforms?.[0]).toEqual({
      fn: 'regexReplace',
      pattern: 'a',
      replacement: '',
      flags: 'gimsuy',
    });
  });

  it.each(['onlyAssign', 'neverAssign', 'neverRemove'])('%s patterns must compile and not be empty', (field) => {
    const list = issues(group({ [field]: ['jira-.*', '[a-', '', 'a)|(b'] }));
    expect(list.map((i) => i.path)).toEqual([`group.${field}[1]`, `group.${field}[2]`, `group.${field}[3]`]);
    expect(list[0]!.message).toMatch(/^Invalid regular expression: .*Unterminated character class/);
    expect(list[1]!.message).toBe('a pattern cannot be empty');
    // wrapping for a whole-name match would have balanced the parentheses: checked on its own first
    expect(list[2]!.message).toMatch(/Unmatched '\)'/);
  });

  it('the rename pattern must compile', () => {
    const i = only(group({ rename: { pattern: '*', replacement: '' } }));
    expect(i.path).toBe('group.rename.pattern');
    expect(i.message).toMatch(/^Invalid regular expression: .*Nothing to repeat/);
  });
});

describe('conditions', () => {
  it.each([
    ['userName eq', 11],
    ['userName eq "a" and', 19],
    ['(userName eq "a"', 16],
    ['userName xx "a"', 9],
    ['emails[type eq "work" and emails[value pr]]', 32],
    ['userName eq "unterminated', 12],
  ])('%j does not parse: position %i', (condition, position) => {
    const i = only(user({ condition }));
    expect(i.path).toBe('user.condition');
    expect(i.position).toBe(position);
    expect(i.message).not.toMatch(/position/);
  });

  it.each([
    ['userName eq "a" and nickname2 eq "b"', "unknown attribute 'nickname2'", 20],
    ['emails[colour eq "red"]', "'colour' is not a sub-attribute of 'emails'", 7],
    ['active gt true', "'gt' is not defined for the boolean attribute 'active'", 7],
    ['password eq "x"', "'password' cannot be filtered on", 0],
  ])('%j does not compile: %s', (condition, message, position) => {
    expect(only(user({ condition }))).toEqual({ path: 'user.condition', message, position });
  });

  it('refuses conditions on group membership, which a rule cannot see', () => {
    expect(only(user({ condition: 'title pr and groups eq "g1"' }))).toEqual({
      path: 'user.condition',
      message: "conditions on group membership ('groups') are not supported",
      position: 13,
    });
  });

  it('accepts conditions on any user attribute, qualified or not', () => {
    for (const condition of ['userName sw "a"', `${ENT}:department eq "R&D"`, 'department eq "R&D"', 'not (emails[type eq "work"])', 'manager eq "m1"']) {
      expect(validateSettings(user({ condition })).user.condition).toBe(condition);
    }
  });
});

describe('source paths', () => {
  it.each([
    ['nope', "unknown attribute 'nope'", 0],
    ['name.nope', "unknown attribute 'name.nope'", 5],
    ['userName.value', "unknown attribute 'userName.value'", 9],
    [`${ENT}:nope`, `unknown attribute '${ENT}:nope'`, ENT.length + 1],
    ['urn:example:ext:department', "unknown schema 'urn:example:ext'", 0],
    ['emails[typo eq "work"].value', "'typo' is not a sub-attribute of 'emails'", 7],
    ['emails[type eq "work"].nope', "unknown attribute 'emails.nope'", 23],
    ['name', "'name' is complex; name a sub-attribute, e.g. 'name.formatted'", 0],
    ['password', "'password' is never stored and cannot be read", 0],
    ['meta.created', "'meta' is not kept in the mirror record", 0],
    ['displayName[value eq "x"]', "'displayName' is not a multi-valued complex attribute", 12],
  ])('%j: %s at %i', (source, message, position) => {
    expect(only(username({ source }))).toEqual({ path: 'user.username.source', message, position });
  });

  it.each([
    ['', 0],
    ['user name', 0],
    ['emails[type eq "work".value', 27],
    ['emails[type eq].value', 14],
    ['emails[type eq "x"]value', 19],
    ['a.b.c', 0],
  ])('%j does not parse: position %i', (source, position) => {
    const i = only(username({ source }));
    expect(i.path).toBe('user.username.source');
    expect(i.position).toBe(position);
  });

  it('a mapping needs a source unless its first transform is a template or firstNonEmpty', () => {
    expect(only(username({}))).toEqual({
      path: 'user.username.source',
      message: 'a source path is needed unless the first transform is a template or firstNonEmpty',
    });
    expect(only(username({ transforms: [{ fn: 'lower' }, { fn: 'template', template: '${userName}' }] })).path).toBe('user.username.source');
    expect(validateSettings(username({ transforms: [{ fn: 'template', template: '${userName}' }] })).user.username.source).toBeUndefined();
    expect(validateSettings(username({ transforms: [{ fn: 'firstNonEmpty', sources: ['userName'] }] })).user.username.source).toBeUndefined();
  });

  it('reports the path inside custom attributes', () => {
    expect(only(user({ customAttributes: [{ name: 'a', mapping: { source: 'userName' } }, { name: 'b', mapping: { source: 'nope' } }] }))).toEqual({
      path: 'user.customAttributes[1].mapping.source',
      message: "unknown attribute 'nope'",
      position: 0,
    });
  });
});

describe('templates', () => {
  it.each([
    ['${userName', "unterminated '${'", 0],
    ['Hello ${name.givenName} ${name.familyName', "unterminated '${'", 24],
    ['${name.givenName} ${name.nope}', "unknown attribute 'name.nope'", 25],
    ['x ${  nope }', "unknown attribute 'nope'", 6],
    ['${emails[type eq "work"].nope}', "unknown attribute 'emails.nope'", 25],
    ['${}', "empty '${}'", 0],
    ['a ${user name}', "invalid path 'user name'", 4],
  ])('%j: %s at %i', (template, message, position) => {
    expect(only(transforms({ fn: 'template', template }))).toEqual({ path: 'user.username.transforms[0].template', message, position });
  });

  it('accepts ${value}, paths with value filters holding braces, and a lone $', () => {
    for (const template of ['${value}@example.com', '${emails[type eq "}"].value}', 'cost $5 ${title}', 'no placeholders']) {
      expect(validateSettings(transforms({ fn: 'template', template })).user.username.transforms).toEqual([{ fn: 'template', template }]);
    }
  });
});

describe('transforms', () => {
  it.each([['capitalise'], ['Lower'], ['']])('unknown transform %j', (fn) => {
    expect(only(transforms({ fn }))).toEqual({
      path: 'user.username.transforms[0].fn',
      message: `unknown transform '${fn}'; one of regexReplace, lower, upper, trim, template, firstNonEmpty`,
    });
  });

  it('a transform without fn is refused', () => {
    expect(only(transforms({ pattern: 'a' }))).toEqual({
      path: 'user.username.transforms[0].fn',
      message: 'is required (one of regexReplace, lower, upper, trim, template, firstNonEmpty)',
    });
  });

  it('firstNonEmpty sources are paths, or templates when they contain ${', () => {
    const list = issues(transforms({ fn: 'firstNonEmpty', sources: ['title', 'nope', '${name.givenName} ${nope}', 'emails[', '${title'] }));
    expect(list).toEqual([
      { path: 'user.username.transforms[0].sources[1]', message: "unknown attribute 'nope'", position: 0 },
      { path: 'user.username.transforms[0].sources[2]', message: "unknown attribute 'nope'", position: 20 },
      { path: 'user.username.transforms[0].sources[3]', message: "expected ']'", position: 7 },
      { path: 'user.username.transforms[0].sources[4]', message: "unterminated '${'", position: 0 },
    ]);
  });

  it('firstNonEmpty needs at least one source', () => {
    expect(only(transforms({ fn: 'firstNonEmpty', sources: [] }))).toEqual({ path: 'user.username.transforms[0].sources', message: 'needs at least one source' });
  });

  it('reports the index of the faulty transform', () => {
    expect(only(transforms({ fn: 'lower' }, { fn: 'trim' }, { fn: 'template', template: '${x' })).path).toBe('user.username.transforms[2].template');
  });
});

describe('custom attributes', () => {
  const attrs = (...names: unknown[]) => user({ customAttributes: names.map((name) => ({ name, mapping: { source: 'title' } })) });

  it.each([
    ['', 'a custom attribute needs a name', undefined],
    ['  ', 'a custom attribute needs a name', undefined],
    ['1st', "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'", 0],
    ['_x', "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'", 0],
    ['cost center', "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'", 4],
    ['dept/no', "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'", 4],
    ['__proto__', "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'", 0],
  ])('%j is refused: %s', (name, message, position) => {
    const expected: SettingsIssue = { path: 'user.customAttributes[0].name', message };
    if (position !== undefined) expected.position = position;
    expect(only(attrs(name))).toEqual(expected);
  });

  it('names are unique, case-insensitively', () => {
    expect(issues(attrs('department', 'title', 'Department', 'TITLE'))).toEqual([
      { path: 'user.customAttributes[2].name', message: "'Department' is already the name of user.customAttributes[0] (names are case-insensitive)" },
      { path: 'user.customAttributes[3].name', message: "'TITLE' is already the name of user.customAttributes[1] (names are case-insensitive)" },
    ]);
  });

  it('accepts letters, digits, _ . -', () => {
    expect(validateSettings(attrs('a', 'Cost_Center.2-x')).user.customAttributes.map((a) => a.name)).toEqual(['a', 'Cost_Center.2-x']);
  });

  it('a custom attribute needs a mapping', () => {
    expect(only(user({ customAttributes: [{ name: 'a' }] }))).toEqual({ path: 'user.customAttributes[0].mapping', message: 'is required (an object)' });
  });
});

describe('group names, mappings, licences, limits', () => {
  const long = 'g'.repeat(256);

  it.each([
    [group({ defaultGroups: ['ok', ''] }), 'group.defaultGroups[1]', 'a group name cannot be empty'],
    [group({ alwaysGroups: [' '] }), 'group.alwaysGroups[0]', 'a group name cannot be empty'],
    [group({ alwaysGroups: [long] }), 'group.alwaysGroups[0]', 'a group name is at most 255 characters (this one has 256)'],
    [group({ manualMappings: [{ source: '', targets: ['a'] }] }), 'group.manualMappings[0].source', 'a group name cannot be empty'],
    [group({ manualMappings: [{ source: 'a', targets: ['b', long] }] }), 'group.manualMappings[0].targets[1]', 'a group name is at most 255 characters (this one has 256)'],
    [group({ manualMappings: [{ source: 'a', targets: [] }] }), 'group.manualMappings[0].targets', 'a manual mapping needs at least one target group'],
    [group({ licences: [{ group: '', seats: 1 }] }), 'group.licences[0].group', 'a group name cannot be empty'],
  ])('%j: %s', (input, path, message) => {
    expect(only(input)).toEqual({ path, message });
  });

  it('a 255-character name is fine', () => {
    expect(validateSettings(group({ defaultGroups: ['g'.repeat(255)] })).group.defaultGroups[0]).toHaveLength(255);
  });

  it.each([[-1], [1.5], ['3'], [Number.NaN], [Infinity], [null]])('licence seats %j are refused', (seats) => {
    const i = only(group({ licences: [{ group: 'jira-users', seats }] }));
    expect(i.path).toBe('group.licences[0].seats');
    expect(i.message).toMatch(/^seats must be a whole number of 0 or more/);
  });

  it('a licence needs seats', () => {
    expect(only(group({ licences: [{ group: 'jira-users' }] })).path).toBe('group.licences[0].seats');
  });

  it('0 seats is a limit', () => {
    expect(validateSettings(group({ licences: [{ group: 'jira-users', seats: 0 }] })).group.licences).toEqual([{ group: 'jira-users', seats: 0 }]);
  });

  it('one seat limit per group, case-insensitively', () => {
    expect(only(group({ licences: [{ group: 'Jira-Users', seats: 1 }, { group: 'jira-users', seats: 2 }] }))).toEqual({
      path: 'group.licences[1].group',
      message: "'jira-users' already has a seat limit in group.licences[0] (names are case-insensitive)",
    });
  });

  it('a manual mapping may send one provider group to several targets, and several rows may share a source', () => {
    const g = validateSettings(group({ mode: 'manual', manualMappings: [{ source: 'Eng', targets: ['a', 'b'] }, { source: 'eng', targets: ['c'] }] })).group;
    expect(g.manualMappings).toHaveLength(2);
  });

  it.each([[-1], [2.5], ['10'], [Number.NaN]])('deletion limit count %j is refused', (count) => {
    const i = only({ safety: { deletionLimit: { count } } });
    expect(i.path).toBe('safety.deletionLimit.count');
    expect(i.message).toMatch(/^must be a whole number of 0 or more, or null for no limit/);
  });

  it.each([[-0.1], [100.5], ['5'], [Number.NaN], [Infinity]])('deletion limit percent %j is refused', (percent) => {
    const i = only({ safety: { deletionLimit: { percent } } });
    expect(i.path).toBe('safety.deletionLimit.percent');
    expect(i.message).toMatch(/^must be a number from 0 to 100, or null for no limit/);
  });

  it('deletion limits at the bounds are accepted', () => {
    expect(validateSettings({ safety: { deletionLimit: { count: 0, percent: 0 } } }).safety.deletionLimit).toEqual({ count: 0, percent: 0 });
    expect(validateSettings({ safety: { deletionLimit: { count: 1_000_000, percent: 100 } } }).safety.deletionLimit).toEqual({ count: 1_000_000, percent: 100 });
  });
});

describe('settingsPatch', () => {
  const current = validateSettings({
    user: { operations: { create: false }, condition: 'active eq true', customAttributes: [{ name: 'dept', mapping: { source: 'department' } }] },
    group: { mode: 'manual', manualMappings: [{ source: 'a', targets: ['b'] }], rename: { pattern: 'x-(.*)', replacement: '$1' } },
    safety: { deletionLimit: { count: 5, percent: 10 } },
  });
  const snapshot = structuredClone(current);

  it('applies fields onto the current settings, not onto the defaults', () => {
    const next = settingsPatch(current, { user: { operations: { update: false } }, safety: { deletionLimit: { percent: null } } });
    expect(next.user.operations).toEqual({ create: false, update: false, activate: true, deactivate: true });
    expect(next.user.condition).toBe('active eq true');
    expect(next.user.customAttributes).toEqual(current.user.customAttributes);
    expect(next.group).toEqual(current.group);
    expect(next.safety.deletionLimit).toEqual({ count: 5, percent: null });
    expect(current).toEqual(snapshot);
  });

  it('an empty patch gives the current settings', () => {
    expect(settingsPatch(current, {})).toEqual(current);
  });

  it('null clears what may be null', () => {
    expect(settingsPatch(current, group({ rename: null })).group.rename).toBeNull();
  });

  it('validates the patch as validateSettings does', () => {
    expect(issues(user({ condition: 'userName eq', colour: 1 }), current)).toEqual([
      { path: 'user.colour', message: 'unknown setting' },
      { path: 'user.condition', message: 'expected a comparison value', position: 11 },
    ]);
    expect(current).toEqual(snapshot);
  });

  it('validates what it keeps from the current settings, too', () => {
    const broken = structuredClone(current);
    broken.group.onlyAssign = ['('];
    expect(issues({ user: { copyBehaviour: true } }, broken).map((i) => i.path)).toEqual(['group.onlyAssign[0]']);
  });
});
