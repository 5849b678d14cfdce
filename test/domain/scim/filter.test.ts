// The SCIM filter front end: parser (RFC 7644 §3.4.2.2 plus Entra's leniencies), PATCH paths, and the
// compiler that resolves attributes against the schema and turns literals into comparable values.

import { describe, expect, it } from 'vitest';
import { ScimError } from '../../../src/domain/scim/errors.ts';
import { evaluate } from '../../../src/domain/scim/evaluate.ts';
import type { AttrPath, Filter } from '../../../src/domain/scim/filter.ts';
import { FilterSyntaxError, parseFilter, parsePatchPath } from '../../../src/domain/scim/filter.ts';
import type { Condition } from '../../../src/domain/scim/query.ts';
import { compileFilter, parseQuery } from '../../../src/domain/scim/query.ts';
import { ENTERPRISE_USER_SCHEMA, RESOURCE_TYPES } from '../../../src/domain/scim/schema.ts';

const User = RESOURCE_TYPES.User;
const Group = RESOURCE_TYPES.Group;
const ENT = ENTERPRISE_USER_SCHEMA; // urn:ietf:params:scim:schemas:extension:enterprise:2.0:User

const p = (attr: string, extra: Partial<AttrPath> = {}): AttrPath => ({ attr, ...extra });
const eq = (attr: string, value: string): Filter => ({ op: 'eq', path: p(attr), value });
const pr = (attr: string): Filter => ({ op: 'pr', path: p(attr) });

/** The error parseFilter throws, or a failure when it parses. */
function syntaxError(input: string): FilterSyntaxError {
  try {
    parseFilter(input);
  } catch (e) {
    if (e instanceof FilterSyntaxError) return e;
    throw new Error(`expected a FilterSyntaxError for ${JSON.stringify(input).slice(0, 80)}, got ${String(e)}`);
  }
  throw new Error(`expected ${JSON.stringify(input)} not to parse`);
}

function patchPathError(input: string): FilterSyntaxError {
  try {
    parsePatchPath(input);
  } catch (e) {
    if (e instanceof FilterSyntaxError) return e;
    throw new Error(`expected a FilterSyntaxError for ${JSON.stringify(input)}, got ${String(e)}`);
  }
  throw new Error(`expected ${JSON.stringify(input)} not to parse as a PATCH path`);
}

/** The ScimError parseQuery throws (must be 400 invalidFilter), or a failure when it compiles. */
function queryError(filter: string, type = User): ScimError {
  try {
    parseQuery(type, filter);
  } catch (e) {
    if (!(e instanceof ScimError)) throw new Error(`expected a ScimError for ${JSON.stringify(filter).slice(0, 80)}, got ${String(e)}`);
    expect(e.status).toBe(400);
    expect(e.scimType).toBe('invalidFilter');
    return e;
  }
  throw new Error(`expected ${JSON.stringify(filter)} to be rejected`);
}

// ---------------------------------------------------------------------------------------------------
// Parser

describe('parseFilter: operators', () => {
  it.each(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le'] as const)('%s', (op) => {
    expect(parseFilter(`title ${op} "x"`)).toEqual({ op, path: p('title'), value: 'x' });
  });

  it('pr', () => {
    expect(parseFilter('title pr')).toEqual(pr('title'));
  });

  it.each([
    ['userName EQ "x"', { op: 'eq', path: p('userName'), value: 'x' }],
    ['userName Eq "x"', { op: 'eq', path: p('userName'), value: 'x' }],
    ['title PR', pr('title')],
    ['title pR', pr('title')],
    ['title SW "x"', { op: 'sw', path: p('title'), value: 'x' }],
    ['a pr AND b pr', { op: 'and', left: pr('a'), right: pr('b') }],
    ['a pr Or b pr', { op: 'or', left: pr('a'), right: pr('b') }],
    ['NOT (a pr)', { op: 'not', filter: pr('a') }],
    ['Not(a pr)', { op: 'not', filter: pr('a') }],
  ] as [string, Filter][])('operators are case-insensitive: %s', (input, expected) => {
    expect(parseFilter(input)).toEqual(expected);
  });

  it('keeps attribute names as written (the compiler resolves them case-insensitively)', () => {
    expect(parseFilter('USERNAME eq "x"')).toEqual(eq('USERNAME', 'x'));
    expect(parseFilter('Name.GivenName eq "x"')).toEqual({ op: 'eq', path: p('Name', { sub: 'GivenName' }), value: 'x' });
  });
});

describe('parseFilter: logical structure', () => {
  const a = eq('a', '1');
  const b = eq('b', '2');
  const c = eq('c', '3');

  it.each([
    ['a eq "1" and b eq "2"', { op: 'and', left: a, right: b }],
    ['a eq "1" or b eq "2"', { op: 'or', left: a, right: b }],
    // and binds tighter than or, on either side
    ['a eq "1" or b eq "2" and c eq "3"', { op: 'or', left: a, right: { op: 'and', left: b, right: c } }],
    ['a eq "1" and b eq "2" or c eq "3"', { op: 'or', left: { op: 'and', left: a, right: b }, right: c }],
    // left-associative chains
    ['a eq "1" and b eq "2" and c eq "3"', { op: 'and', left: { op: 'and', left: a, right: b }, right: c }],
    ['a eq "1" or b eq "2" or c eq "3"', { op: 'or', left: { op: 'or', left: a, right: b }, right: c }],
    // parentheses override precedence
    ['(a eq "1" or b eq "2") and c eq "3"', { op: 'and', left: { op: 'or', left: a, right: b }, right: c }],
    ['a eq "1" and (b eq "2" or c eq "3")', { op: 'and', left: a, right: { op: 'or', left: b, right: c } }],
    ['((a eq "1"))', a],
    ['(a eq "1")and(b eq "2")', { op: 'and', left: a, right: b }],
    ['not (a eq "1") and b eq "2"', { op: 'and', left: { op: 'not', filter: a }, right: b }],
    ['not (a eq "1" or b eq "2")', { op: 'not', filter: { op: 'or', left: a, right: b } }],
    ['not (not (a eq "1"))', { op: 'not', filter: { op: 'not', filter: a } }],
  ] as [string, Filter][])('%s', (input, expected) => {
    expect(parseFilter(input)).toEqual(expected);
  });

  it('accepts any amount of whitespace, tabs and newlines between tokens', () => {
    // `+` in a query string is decoded to a space by URLSearchParams before the parser sees it
    const decoded = new URLSearchParams('filter=userName+eq+%22a++b%22+and++title+pr').get('filter')!;
    expect(parseFilter(decoded)).toEqual({ op: 'and', left: eq('userName', 'a  b'), right: pr('title') });
    expect(parseFilter('   userName    eq   "a  b"   \t and \n\r  title   pr   ')).toEqual({
      op: 'and',
      left: eq('userName', 'a  b'),
      right: pr('title'),
    });
    expect(parseFilter('( userName eq "x" )')).toEqual(eq('userName', 'x'));
  });
});

describe('parseFilter: attribute paths', () => {
  it('a value path used as an expression', () => {
    expect(parseFilter('emails[type eq "work" and value co "@x"]')).toEqual({
      op: 'has',
      path: p('emails'),
      filter: { op: 'and', left: eq('type', 'work'), right: { op: 'co', path: p('value'), value: '@x' } },
    });
  });

  it('a value path with a sub-attribute is comparable (Entra matching on the work e-mail)', () => {
    expect(parseFilter('emails[type eq "work"].value eq "x"')).toEqual({
      op: 'eq',
      path: p('emails', { valueFilter: eq('type', 'work'), sub: 'value' }),
      value: 'x',
    });
    expect(parseFilter('emails[type eq "work"].value pr')).toEqual({
      op: 'pr',
      path: p('emails', { valueFilter: eq('type', 'work'), sub: 'value' }),
    });
  });

  it('a value path inside a larger expression', () => {
    expect(parseFilter('userName eq "u" and emails[type eq "work"].value eq "x" or emails[primary eq true]')).toEqual({
      op: 'or',
      left: {
        op: 'and',
        left: eq('userName', 'u'),
        right: { op: 'eq', path: p('emails', { valueFilter: eq('type', 'work'), sub: 'value' }), value: 'x' },
      },
      right: { op: 'has', path: p('emails'), filter: { op: 'eq', path: p('primary'), value: true, raw: 'true' } },
    });
  });

  it('URN-qualified paths keep the whole schema URN, dots and all', () => {
    expect(parseFilter(`${ENT}:employeeNumber eq "1"`)).toEqual({
      op: 'eq',
      path: { uri: ENT, attr: 'employeeNumber' },
      value: '1',
    });
    expect(parseFilter(`${ENT}:manager.value eq "m"`)).toEqual({
      op: 'eq',
      path: { uri: ENT, attr: 'manager', sub: 'value' },
      value: 'm',
    });
    expect(parseFilter('urn:ietf:params:scim:schemas:core:2.0:User:name.givenName pr')).toEqual({
      op: 'pr',
      path: { uri: 'urn:ietf:params:scim:schemas:core:2.0:User', attr: 'name', sub: 'givenName' },
    });
    expect(parseFilter(`${ENT.toUpperCase()}:DEPARTMENT eq "d"`)).toEqual({
      op: 'eq',
      path: { uri: ENT.toUpperCase(), attr: 'DEPARTMENT' },
      value: 'd',
    });
  });

  it('sub-attributes may start with $', () => {
    expect(parseFilter('members.$ref pr')).toEqual({ op: 'pr', path: p('members', { sub: '$ref' }) });
  });
});

describe('parseFilter: comparison values', () => {
  it.each([
    // Entra's old documentation: an unquoted value is a string
    ['externalId eq jyoung', 'jyoung'],
    ['externalId eq 5f3c-aa_01', '5f3c-aa_01'],
    ['externalId eq a:b.c', 'a:b.c'],
    ['externalId eq user@contoso.com', 'user@contoso.com'],
    ['externalId eq 007', '007'],
    // quoted values may contain anything the grammar uses
    ['userName eq "a:b"', 'a:b'],
    ['userName eq "a.b"', 'a.b'],
    ['userName eq "a]b"', 'a]b'],
    ['userName eq "a[b"', 'a[b'],
    ['userName eq "(a)"', '(a)'],
    ['userName eq "a and b or not c"', 'a and b or not c'],
    ['userName eq "urn:ietf:params:scim:schemas:core:2.0:User:userName"', 'urn:ietf:params:scim:schemas:core:2.0:User:userName'],
    ['userName eq "say \\"hi\\""', 'say "hi"'],
    ['userName eq "back\\\\slash"', 'back\\slash'],
    ['userName eq "\\u00e9t\\u00C9"', 'étÉ'],
    ['userName eq "\\ud83d\\ude00"', '😀'],
    ['userName eq "tab\\there"', 'tab\there'],
    ['userName eq "É ß İ ı ǅ 😀 % _ \'"', "É ß İ ı ǅ 😀 % _ '"],
    ['userName eq ""', ''],
    ['userName eq "  "', '  '],
  ])('%s', (input, value) => {
    const f = parseFilter(input) as { value: unknown };
    expect(f.value).toBe(value);
  });

  it('a bracket or colon inside a quoted value does not end a value path', () => {
    expect(parseFilter('emails[value eq "x]y:z.w"].type eq "work"')).toEqual({
      op: 'eq',
      path: p('emails', { valueFilter: eq('value', 'x]y:z.w'), sub: 'type' }),
      value: 'work',
    });
  });

  it.each([
    ['x eq 42', 42],
    ['x eq -1.5e3', -1500],
    ['x eq 0', 0],
    ['x eq true', true],
    ['x eq False', false],
    ['x eq TRUE', true],
    ['x eq null', null],
    ['x eq NULL', null],
  ])('literal %s', (input, value) => {
    expect((parseFilter(input) as { value: unknown }).value).toBe(value);
  });
});

describe('parseFilter: errors carry a position', () => {
  it.each([
    ['', 'empty filter', 0],
    ['   ', 'empty filter', 0],
    ['userName xx "a"', "unknown operator 'xx'", 9],
    ['userName equals "a"', "unknown operator 'equals'", 9],
    ['userName "a"', 'expected an operator', 9],
    ['userName', 'expected an operator', 8],
    ['userName eq', 'expected a comparison value', 11],
    ['userName eq ', 'expected a comparison value', 12],
    ['userName eq )', 'expected a comparison value', 12],
    ['userName eq and', 'expected a comparison value', 12],
    ['userName eq "abc', 'unterminated or invalid string', 12],
    ['userName eq "a\\x"', 'unterminated or invalid string', 12],
    ['userName eq "a\\u12"', 'unterminated or invalid string', 12],
    ['userName eq "a" and title eq "b', 'unterminated or invalid string', 29],
    // the old, invalid Entra documentation form
    ['emails[type eq "work"] eq "x"', 'a value filter cannot be compared directly', 23],
    ['emails[type eq "work"] pr', 'a value filter cannot be compared directly', 23],
    ['emails[value[type eq "x"] eq "y"]', 'nested value filters are not allowed', 12],
    ['emails[type eq "work"', "expected ']'", 21],
    ['emails[type eq "work")', "expected ']'", 21],
    ['emails[]', 'expected an attribute path', 7],
    ['name.givenName[type eq "x"]', 'a value filter must follow the attribute name', 14],
    ['emails[type eq "work"].', "invalid sub-attribute ''", 23],
    ['emails[type eq "work"].value.x eq "y"', "invalid sub-attribute 'value.x'", 23],
    ['userName eq "a" foo', 'unexpected input', 16],
    ['userName eq "a")', 'unexpected input', 15],
    ['userName eq "a" title pr', 'unexpected input', 16],
    ['userName eq "a" and', 'expected an attribute path', 19],
    ['and userName eq "a"', "unknown operator 'userName'", 4],
    ['userName eq "a" or or title pr', "unknown operator 'title'", 22],
    ['(userName eq "a"', "expected ')'", 16],
    ['userName eq "a" and (title pr', "expected ')'", 29],
    ['()', 'expected an attribute path', 1],
    ['not userName eq "a"', "expected '(' after 'not'", 4],
    ['not', "expected '(' after 'not'", 3],
    ['name.givenName.x eq "a"', "invalid attribute path 'name.givenName.x'", 0],
    ['user name eq "a"', "unknown operator 'name'", 5],
    ['9lives eq "a"', "invalid attribute path '9lives'", 0],
    ['urn:x eq "a"', "invalid schema URN in 'urn:x'", 0],
    ['userName eq "a" and élan pr', "invalid attribute path 'élan'", 20],
  ])('%j → %s at %i', (input, message, position) => {
    const e = syntaxError(input);
    expect(e.message).toContain(message);
    expect(e.position).toBe(position);
    expect(e.message).toMatch(new RegExp(`at position ${position}$`));
  });

  it('parseQuery maps a syntax error to 400 invalidFilter with the position in the detail', () => {
    const e = queryError('userName xx "a"');
    expect(e.message).toBe("invalid filter: unknown operator 'xx' at position 9");
  });

  it('rejects absurdly deep nesting as a syntax error, not a stack overflow', () => {
    const deepParens = '('.repeat(4990) + 'userName pr' + ')'.repeat(4990);
    expect(syntaxError(deepParens).message).toContain('nested too deeply');
    const deepNot = 'not('.repeat(1500) + 'userName pr' + ')'.repeat(1500);
    expect(syntaxError(deepNot).message).toContain('nested too deeply');
    const longChain = Array.from({ length: 60 }, () => 'title pr').join(' and ');
    expect(syntaxError(longChain).message).toContain('nested too deeply');
    expect(syntaxError('userName eq "' + 'x'.repeat(10_000) + '"').message).toContain('filter too long');
    queryError(deepParens);
  });

  it('accepts reasonable nesting', () => {
    const nested = '('.repeat(20) + 'userName pr' + ')'.repeat(20);
    expect(parseFilter(nested)).toEqual(pr('userName'));
    const chain = Array.from({ length: 20 }, () => 'title pr').join(' or ');
    expect(() => parseFilter(chain)).not.toThrow();
  });

  it.each([
    // neither database can hold these, so a literal containing one can never match honestly
    ['userName eq "a\\u0000b"', 12],
    ['userName eq "\\ud800"', 12],
    ['userName eq "x\\udc00y"', 12],
    ['userName eq "\\ude00\\ud83d"', 12],
    ['userName eq a\u0000b', 13],
    ['userName eq a\ud800', 13],
    ['userName eq "a\ud800"', 14],
    ['userName eq "a" and title eq "\u0000"', 30],
  ])('rejects NUL and unpaired surrogates in a literal: %j', (input, position) => {
    const e = syntaxError(input);
    expect(e.position).toBe(position);
  });

  it('rejects raw control characters', () => {
    expect(syntaxError('userName eq "a\u0001"').position).toBe(14);
    expect(syntaxError('userName eq a\u0001').position).toBe(13);
    expect(syntaxError('userName\u000beq "a"').position).toBe(8);
  });
});

// ---------------------------------------------------------------------------------------------------
// PATCH paths

describe('parsePatchPath', () => {
  it.each([
    ['userName', p('userName')],
    [' userName ', p('userName')],
    ['name.familyName', p('name', { sub: 'familyName' })],
    ['members[value eq "x"]', p('members', { valueFilter: eq('value', 'x') })],
    ['members[value eq "a]b"]', p('members', { valueFilter: eq('value', 'a]b') })],
    [
      'members[value eq "a" or value eq "b"]',
      p('members', { valueFilter: { op: 'or', left: eq('value', 'a'), right: eq('value', 'b') } }),
    ],
    ['emails[type eq "work"].value', p('emails', { valueFilter: eq('type', 'work'), sub: 'value' })],
    ['addresses[type eq "work"].country', p('addresses', { valueFilter: eq('type', 'work'), sub: 'country' })],
    ['emails[value eq "x].y"].display', p('emails', { valueFilter: eq('value', 'x].y'), sub: 'display' })],
    [`${ENT}:manager`, { uri: ENT, attr: 'manager' }],
    [`${ENT}:manager.value`, { uri: ENT, attr: 'manager', sub: 'value' }],
    [`${ENT}:employeeNumber`, { uri: ENT, attr: 'employeeNumber' }],
    ['urn:ietf:params:scim:schemas:core:2.0:User:name.givenName', { uri: 'urn:ietf:params:scim:schemas:core:2.0:User', attr: 'name', sub: 'givenName' }],
  ] as [string, AttrPath][])('%s', (input, expected) => {
    expect(parsePatchPath(input)).toEqual(expected);
  });

  it.each([
    ['', 0],
    ['user name', 0],
    ['name.givenName.x', 0],
    ['members[value eq "x"', 20],
    ['members[]', 8],
    ['members[value eq]', 16],
    ['members[value xx "x"]', 14],
    ['name.givenName[value eq "x"]', 14],
    ['emails[type eq "work"]value', 22],
    ['emails[type eq "work"].', 22],
    ['emails[type eq "work"]]', 21],
    // a value filter inside a value filter is no more valid in a path than in a filter
    ['members[emails[type eq "x"]]', 14],
    ['members[value eq "x" and emails[type eq "y"].value eq "z"]', 31],
  ])('rejects %j (position %i)', (input, position) => {
    expect(patchPathError(input).position).toBe(position);
  });
});

// ---------------------------------------------------------------------------------------------------
// Compiler

const path = (...names: string[]) => ({ extension: null, names });
const str = (names: string[], op: string, value: string, caseExact = false): Condition =>
  ({ k: 'cmp', path: path(...names), kind: 'string', caseExact, op, value }) as Condition;

describe('compileFilter / parseQuery', () => {
  it.each([
    // case-insensitive attributes get a folded literal; caseExact ones keep it as written
    ['userName eq "BJensen"', str(['userName'], 'eq', 'bjensen')],
    ['USERNAME eq "BJensen"', str(['userName'], 'eq', 'bjensen')],
    ['urn:ietf:params:scim:schemas:core:2.0:User:userName eq "X"', str(['userName'], 'eq', 'x')],
    ['externalId eq "AbC"', str(['externalId'], 'eq', 'AbC', true)],
    ['externalId eq jYoung', str(['externalId'], 'eq', 'jYoung', true)],
    ['id eq "A-1"', str(['id'], 'eq', 'A-1', true)],
    ['Name.GivenName sw "Bar"', str(['name', 'givenName'], 'sw', 'bar')],
    ['title ne "\u0130"', str(['title'], 'ne', 'i\u0307')],
    ['title gt "\u01c5"', str(['title'], 'gt', '\u01c6')],
    ['title eq null', { k: 'not', c: { k: 'pr', path: path('title') } }],
    ['title ne null', { k: 'pr', path: path('title') }],
    ['name pr', { k: 'pr', path: path('name') }],
    ['emails pr', { k: 'pr', path: path('emails') }],
    ['active eq true', { k: 'cmp', path: path('active'), kind: 'boolean', caseExact: true, op: 'eq', value: true }],
    // Entra's string booleans
    ['active eq "False"', { k: 'cmp', path: path('active'), kind: 'boolean', caseExact: true, op: 'eq', value: false }],
    ['active ne TRUE', { k: 'cmp', path: path('active'), kind: 'boolean', caseExact: true, op: 'ne', value: true }],
    [
      'meta.created gt "2024-01-02T03:04:05Z"',
      { k: 'cmp', path: path('meta', 'created'), kind: 'dateTime', caseExact: true, op: 'gt', value: '2024-01-02T03:04:05.000Z' },
    ],
    [
      'meta.lastModified le "2024-01-02"',
      { k: 'cmp', path: path('meta', 'lastModified'), kind: 'dateTime', caseExact: true, op: 'le', value: '2024-01-02T00:00:00.000Z' },
    ],
    ['meta.resourceType eq "User"', { k: 'const', value: true }],
    ['meta.resourceType eq "Group"', { k: 'const', value: false }],
    ['meta.resourceType ne "Group"', { k: 'const', value: true }],
    ['meta.resourceType pr', { k: 'const', value: true }],
    [
      `${ENT}:employeeNumber eq "1"`,
      { k: 'cmp', path: { extension: ENT, names: ['employeeNumber'] }, kind: 'string', caseExact: false, op: 'eq', value: '1' },
    ],
    [
      `${ENT.toLowerCase()}:Department co "Sales"`,
      { k: 'cmp', path: { extension: ENT, names: ['department'] }, kind: 'string', caseExact: false, op: 'co', value: 'sales' },
    ],
    [`${ENT}:manager.value eq "M-1"`, { k: 'cmp', path: { extension: ENT, names: ['manager', 'value'] }, kind: 'string', caseExact: true, op: 'eq', value: 'M-1' }],
    [`${ENT}:manager pr`, { k: 'pr', path: { extension: ENT, names: ['manager'] } }],
    // a single-valued complex attribute with a `value` compares by it (Entra's `manager eq "<id>"` check)
    [`${ENT}:manager eq "M-1"`, { k: 'cmp', path: { extension: ENT, names: ['manager', 'value'] }, kind: 'string', caseExact: true, op: 'eq', value: 'M-1' }],
    ['manager eq "M-1"', { k: 'cmp', path: { extension: ENT, names: ['manager', 'value'] }, kind: 'string', caseExact: true, op: 'eq', value: 'M-1' }],
    ['Department eq "Sales"', { k: 'cmp', path: { extension: ENT, names: ['department'] }, kind: 'string', caseExact: false, op: 'eq', value: 'sales' }],
    // multi-valued attributes: some element matches
    ['emails co "@X"', { k: 'elem', path: path('emails'), c: str(['value'], 'co', '@x') }],
    ['emails.type eq "Work"', { k: 'elem', path: path('emails'), c: str(['type'], 'eq', 'work') }],
    ['emails.value pr', { k: 'elem', path: path('emails'), c: { k: 'pr', path: path('value') } }],
    [
      'emails[type eq "work" and value co "@X"]',
      { k: 'elem', path: path('emails'), c: { k: 'and', a: str(['type'], 'eq', 'work'), b: str(['value'], 'co', '@x') } },
    ],
    [
      'EMAILS[TYPE eq "work"].VALUE eq "User@Contoso.com"',
      { k: 'elem', path: path('emails'), c: { k: 'and', a: str(['type'], 'eq', 'work'), b: str(['value'], 'eq', 'user@contoso.com') } },
    ],
    [
      'emails[not (type eq "work")].value pr',
      { k: 'elem', path: path('emails'), c: { k: 'and', a: { k: 'not', c: str(['type'], 'eq', 'work') }, b: { k: 'pr', path: path('value') } } },
    ],
    ['groups eq "g1"', { k: 'member', side: 'userInGroup', value: 'g1' }],
    ['groups.value ne "g1"', { k: 'not', c: { k: 'member', side: 'userInGroup', value: 'g1' } }],
    ['groups pr', { k: 'member', side: 'userInGroup', value: null }],
    [
      'userName eq "a" or title pr and not (active eq false)',
      {
        k: 'or',
        a: str(['userName'], 'eq', 'a'),
        b: {
          k: 'and',
          a: { k: 'pr', path: path('title') },
          b: { k: 'not', c: { k: 'cmp', path: path('active'), kind: 'boolean', caseExact: true, op: 'eq', value: false } },
        },
      },
    ],
  ] as [string, Condition][])('User: %s', (filter, expected) => {
    expect(parseQuery(User, filter)).toEqual(expected);
  });

  it.each([
    ['displayName eq "Admins"', str(['displayName'], 'eq', 'admins')],
    ['members eq "u1"', { k: 'member', side: 'groupHasMember', value: 'u1' }],
    ['members.value eq "u1"', { k: 'member', side: 'groupHasMember', value: 'u1' }],
    ['members ne "u1"', { k: 'not', c: { k: 'member', side: 'groupHasMember', value: 'u1' } }],
    ['members pr', { k: 'member', side: 'groupHasMember', value: null }],
    ['members eq null', { k: 'not', c: { k: 'member', side: 'groupHasMember', value: null } }],
    ['meta.resourceType eq "Group"', { k: 'const', value: true }],
  ] as [string, Condition][])('Group: %s', (filter, expected) => {
    expect(parseQuery(Group, filter)).toEqual(expected);
  });

  it('compiles a parsed AST the same way', () => {
    expect(compileFilter(User, parseFilter('userName eq "X"'))).toEqual(parseQuery(User, 'userName eq "X"'));
  });

  it('an unquoted value compares as the text written, for a string attribute', () => {
    // an externalId that looks like a number must not be rounded or reformatted
    expect(parseQuery(User, 'externalId eq 12345678901234567890')).toEqual(str(['externalId'], 'eq', '12345678901234567890', true));
    expect(parseQuery(User, 'externalId eq 1.50')).toEqual(str(['externalId'], 'eq', '1.50', true));
    expect(parseQuery(User, 'externalId eq 1e3')).toEqual(str(['externalId'], 'eq', '1e3', true));
    expect(parseQuery(User, 'externalId eq -0')).toEqual(str(['externalId'], 'eq', '-0', true));
    expect(parseQuery(User, 'externalId eq True')).toEqual(str(['externalId'], 'eq', 'True', true));
    expect(parseQuery(User, 'title eq 42')).toEqual(str(['title'], 'eq', '42'));
    // a quoted value is the string itself
    expect(parseQuery(User, 'externalId eq "1.50"')).toEqual(str(['externalId'], 'eq', '1.50', true));
    // and null still means absence
    expect(parseQuery(User, 'externalId eq null')).toEqual({ k: 'not', c: { k: 'pr', path: path('externalId') } });
  });

  it.each([
    ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05.000Z'],
    ['2024-01-02T03:04:05.1239Z', '2024-01-02T03:04:05.123Z'],
    ['2024-01-02T03:04:05+01:00', '2024-01-02T02:04:05.000Z'],
    ['2024-01-02T03:04:05-0130', '2024-01-02T04:34:05.000Z'],
    ['2024-01-02', '2024-01-02T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['0000-02-29T00:00Z', '0000-02-29T00:00:00.000Z'],
    // no offset: UTC, as stored, whatever the server's time zone
    ['2024-01-02T03:04', '2024-01-02T03:04:00.000Z'],
    ['2024-01-02T03:04:05.5', '2024-01-02T03:04:05.500Z'],
  ])('a dateTime literal %s compares as %s', (literal, stored) => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(parseQuery(User, `meta.created ge "${literal}"`)).toMatchObject({ kind: 'dateTime', value: stored });
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it.each([
    // unknown attributes
    ['foo eq "x"', "unknown attribute 'foo'"],
    ['name.foo eq "x"', "unknown attribute 'name.foo'"],
    ['userName.foo eq "x"', "unknown attribute 'userName.foo'"],
    [`${ENT}:foo eq "x"`, 'unknown attribute'],
    ['urn:example:params:scim:schemas:extension:acme:2.0:User:foo eq "x"', 'unknown attribute'],
    ['members eq "x"', "unknown attribute 'members'"],
    ['emails.foo eq "x"', "unknown attribute 'emails.foo'"],
    ['emails[foo eq "x"]', "'foo' is not a sub-attribute of 'emails'"],
    ['emails[type eq "work"].foo eq "x"', "'foo' is not a sub-attribute of 'emails'"],
    ['emails[value.x eq "x"]', 'is not a sub-attribute'],
    ['schemas eq "x"', 'unknown attribute'],
    // type rules
    ['active gt true', "'gt' is not defined for the boolean attribute 'active'"],
    ['active ge false', "'ge' is not defined for the boolean attribute"],
    ['active co "t"', "'co' is not defined for the boolean attribute"],
    ['emails[primary lt true]', "'lt' is not defined for the boolean attribute"],
    ['active eq "yes"', "'active' is boolean"],
    ['active eq 1', "'active' is boolean"],
    ['meta.created co "2024"', "'co' is not defined for the dateTime attribute 'meta.created'"],
    ['meta.created sw "2024"', "'sw' is not defined for the dateTime attribute"],
    ['meta.lastModified ew "Z"', "'ew' is not defined for the dateTime attribute"],
    ['meta.created gt "yesterday"', "'meta.created' is a dateTime"],
    ['meta.created gt "2024-13-45"', "'meta.created' is a dateTime"],
    ['meta.created gt "2023-02-29"', "'meta.created' is a dateTime"],
    ['meta.created gt "2024-04-31T00:00:00Z"', "'meta.created' is a dateTime"],
    ['meta.created gt "2024-01-01T25:00:00Z"', "'meta.created' is a dateTime"],
    ['meta.created gt "2024-01-01 10:00:00Z"', "'meta.created' is a dateTime"],
    // beyond 9999 the stored form (+010000-…) would order before every real timestamp
    ['meta.created lt "9999-12-31T23:59:59-01:00"', "'meta.created' is a dateTime"],
    ['meta.created gt 2024', "'meta.created' is a dateTime"],
    ['title gt null', "'gt' cannot compare with null"],
    ['title co null', "'co' cannot compare with null"],
    // complex attributes need a sub-attribute
    ['name eq "x"', "'name' is complex; name a sub-attribute"],
    ['name co "x"', "'name' is complex"],
    ['meta eq "x"', "'meta' needs a sub-attribute"],
    ['meta pr', "'meta' needs a sub-attribute"],
    ['name[givenName eq "x"]', "'name' is not a multi-valued complex attribute"],
    ['title[value eq "x"]', "'title' is not a multi-valued complex attribute"],
    // never returned, so never filtered on
    ['password eq "x"', "'password' cannot be filtered on"],
    ['password pr', "'password' cannot be filtered on"],
    // membership
    ['groups.display eq "x"', "only 'groups.value' can be filtered on"],
    ['groups co "x"', "'groups' supports only eq, ne and pr"],
    ['groups[value eq "x"]', "value filters on 'groups' are not supported"],
    ['meta.resourceType gt "User"', "'gt' is not defined for meta.resourceType"],
    // attributes the store does not hold
    ['meta.location pr', "'meta.location' cannot be filtered on"],
    ['meta.version eq "W/\\"1\\""', "'meta.version' cannot be filtered on"],
  ])('User: %s → 400 invalidFilter (%s)', (filter, detail) => {
    expect(queryError(filter).message).toContain(detail);
  });

  it.each([
    ['userName eq "x"', "unknown attribute 'userName'"],
    ['members[value eq "x"]', "value filters on 'members' are not supported"],
    ['members.display eq "x"', "only 'members.value' can be filtered on"],
    ['members gt "x"', "'members' supports only eq, ne and pr"],
    [`${ENT}:department eq "x"`, 'unknown attribute'],
  ])('Group: %s → 400 invalidFilter (%s)', (filter, detail) => {
    expect(queryError(filter, Group).message).toContain(detail);
  });
});

// ---------------------------------------------------------------------------------------------------
// What a compiled filter means (the evaluator is the reference the SQL translation is checked against)

describe('filter semantics', () => {
  const created = '2024-05-01T10:00:00.000Z';
  const doc = (extra: Record<string, unknown>) => ({
    id: 'u-1',
    userName: 'BJensen',
    meta: { resourceType: 'User', created, lastModified: created },
    ...extra,
  });
  const withEmails = doc({
    title: 'Tour Guide',
    externalId: 'Ext-1',
    active: false,
    emails: [
      { value: 'B@Work.example', type: 'work', primary: true },
      { value: 'b@home.example', type: 'home' },
    ],
    name: { givenName: 'Barbara' },
    [ENT]: { department: 'Sales', employeeNumber: '701984' },
  });
  const bare = doc({});
  const matches = (filter: string, d: Record<string, unknown>) => evaluate(parseQuery(User, filter), d);

  it.each([
    ['userName eq "bjensen"', true, true],
    ['userName eq "BJENSEN"', true, true],
    ['externalId eq "ext-1"', false, false],
    ['externalId eq "Ext-1"', true, false],
    ['externalId eq Ext-1', true, false],
    ['title co "GUIDE"', true, false],
    ['title sw "tour"', true, false],
    ['title ew "Guide"', true, false],
    ['title pr', true, false],
    ['title eq null', false, true],
    ['title ne null', true, false],
    // ne is not(eq): an absent attribute is "not equal"
    ['title ne "x"', true, true],
    ['title ne "tour guide"', false, true],
    ['active eq false', true, false],
    ['active ne false', false, true],
    ['active eq "False"', true, false],
    ['active pr', true, false],
    ['emails[type eq "work"].value eq "b@work.example"', true, false],
    ['emails[type eq "home"].value eq "b@work.example"', false, false],
    ['emails[type eq "work" and value co "@WORK"]', true, false],
    ['emails[type eq "work" and value co "@home"]', false, false],
    ['emails co "@home"', true, false],
    ['emails.type eq "home"', true, false],
    ['emails[primary eq true].type eq "work"', true, false],
    ['emails pr', true, false],
    ['emails.value pr', true, false],
    // ne is not(eq) on multi-valued attributes too: "no element equals"
    ['emails ne "b@home.example"', false, true],
    ['emails.value ne "nobody@example"', true, true],
    ['emails.type ne "work"', false, true],
    ['emails[type eq "work"].value ne "b@work.example"', false, true],
    ['emails[type eq "work"].value ne "x@y"', true, true],
    ['not (emails.type eq "work")', false, true],
    // eq null on a multi-valued sub-attribute: no element has it
    ['emails.value eq null', false, true],
    ['emails.value ne null', true, false],
    ['emails[type eq "work"].value eq null', false, true],
    ['emails[type eq "work"].value ne null', true, false],
    ['emails[type eq "work"].display eq null', true, true],
    ['name.givenName sw "bar"', true, false],
    [`${ENT}:department eq "sales"`, true, false],
    [`${ENT}:employeeNumber gt "7"`, true, false],
    [`${ENT}:employeeNumber ne "1"`, true, true],
    ['meta.created eq "2024-05-01T10:00:00Z"', true, true],
    ['meta.created ge "2024-05-01T10:00:00.000Z"', true, true],
    ['meta.created gt "2024-05-01T10:00:00Z"', false, false],
    ['meta.lastModified lt "2024-05-02"', true, true],
    ['meta.resourceType eq "User"', true, true],
    ['id eq "u-1"', true, true],
    ['id eq "U-1"', false, false],
    ['userName eq "bjensen" and (title pr or emails pr)', true, false],
    ['not (userName eq "bjensen") or title eq "tour guide"', true, false],
  ])('%s → %s (full), %s (bare)', (filter, onFull, onBare) => {
    expect(matches(filter, withEmails)).toBe(onFull);
    expect(matches(filter, bare)).toBe(onBare);
  });

  it('a work-address lookup only matches an element that is both work and equal', () => {
    const d = doc({ emails: [{ value: 'x@y', type: 'home' }, { value: 'z@y', type: 'work' }] });
    expect(matches('emails[type eq "work"].value eq "x@y"', d)).toBe(false);
    expect(matches('emails[type eq "work" and value eq "z@y"]', d)).toBe(true);
    // the unbracketed combination is satisfied by different elements
    expect(matches('emails.type eq "work" and emails.value eq "x@y"', d)).toBe(true);
  });

  it('membership filters read the membership context', () => {
    expect(evaluate(parseQuery(User, 'groups eq "g1"'), bare, { groupIds: new Set(['g1']) })).toBe(true);
    expect(evaluate(parseQuery(User, 'groups eq "G1"'), bare, { groupIds: new Set(['g1']) })).toBe(false);
    expect(evaluate(parseQuery(User, 'groups ne "g1"'), bare, { groupIds: new Set(['g2']) })).toBe(true);
    expect(evaluate(parseQuery(User, 'groups pr'), bare, { groupIds: new Set() })).toBe(false);
    expect(evaluate(parseQuery(Group, 'members eq "u1"'), { id: 'g', displayName: 'G' }, { memberIds: new Set(['u1']) })).toBe(true);
  });

  it('orders strings by code point, not UTF-16 unit', () => {
    // U+FF21 (fullwidth A) is a single UTF-16 unit above the surrogates, but below U+1F600
    const d = doc({ title: '\uff21' });
    expect(matches('title lt "😀"', d)).toBe(true);
    expect(matches('title gt "😀"', d)).toBe(false);
  });
});
