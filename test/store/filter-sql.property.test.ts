// The SQL translation of SCIM filters against the in-memory evaluator, on SQLite and PostgreSQL alike.
// A random directory is stored once per database; random filters (grammatical ones over its attributes
// and values, and junk) must either be refused with 400 invalidFilter before any SQL runs, or select
// exactly the resources the evaluator accepts.

import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScimError } from '../../src/domain/scim/errors.ts';
import { evaluate } from '../../src/domain/scim/evaluate.ts';
import type { Condition } from '../../src/domain/scim/query.ts';
import { parseQuery } from '../../src/domain/scim/query.ts';
import type { ScimDoc } from '../../src/domain/scim/resource.ts';
import { normaliseResource } from '../../src/domain/scim/resource.ts';
import type { ResourceKind } from '../../src/domain/scim/schema.ts';
import { ENTERPRISE_USER_SCHEMA, foldCase, RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import { render } from '../../src/sources/scim/render.ts';
import type { Dialect } from '../../src/store/db.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import type { MirrorRecord } from '../../src/store/mirror.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';

const ENT = ENTERPRISE_USER_SCHEMA;
const RUNS = Number(process.env.FILTER_PROPERTY_RUNS ?? 300);
const DATA_SEED = Number(process.env.FILTER_DATA_SEED ?? 7_340_211);

// Few characters, so that values collide, prefix one another and differ only in case; with the
// characters that break naive folding (İ → i̇, ǅ → ǆ, ß), LIKE patterns (% _), SQL and JSON quoting
// (' " \), a supplementary-plane character, one above the surrogates (U+FF21, which UTF-16 orders
// after the emoji and code points before it), U+FFFD (what an unpaired surrogate becomes) and a space.
const ALPHABET = ['a', 'A', 'b', 'B', 'i', 'I', 'z', 'É', 'é', 'ß', 'İ', 'ı', 'ǅ', 'ǆ', '😀', '\uff21', '\ufffd', '%', '_', "'", '"', '\\', ' ', '.', ':'];

const chars = (min: number, max: number) =>
  fc.array(fc.constantFrom(...ALPHABET), { minLength: min, maxLength: max }).map((a) => a.join(''));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

// ---------------------------------------------------------------------------------------------------
// The directory

const userBody = fc.record({
  displayName: maybe(chars(0, 4)),
  title: maybe(chars(0, 3)),
  nickName: maybe(chars(0, 3)),
  active: maybe(fc.constantFrom<boolean | string>(true, false, 'True', 'False')),
  name: maybe(fc.record({ givenName: maybe(chars(0, 3)), familyName: maybe(chars(0, 3)) })),
  externalId: maybe(chars(0, 3)),
  emails: maybe(
    fc.array(
      fc.record({
        type: maybe(fc.constantFrom('work', 'home', 'Work', 'HOME')),
        value: chars(0, 4),
        primary: maybe(fc.boolean()),
      }),
      { maxLength: 3 },
    ),
  ),
  [ENT]: maybe(fc.record({ department: maybe(chars(0, 3)), employeeNumber: maybe(fc.oneof(chars(0, 3), fc.integer({ min: 0, max: 99 }).map(String))) })),
});

const directoryArb = fc.record({
  userNames: fc.uniqueArray(
    chars(1, 5).filter((s) => s.trim() !== ''),
    { selector: foldCase, minLength: 60, maxLength: 60 },
  ),
  users: fc.array(userBody, { minLength: 60, maxLength: 60 }),
  groupNames: fc.uniqueArray(
    chars(1, 4).filter((s) => s.trim() !== ''),
    { selector: foldCase, minLength: 8, maxLength: 8 },
  ),
  groupExternalIds: fc.array(maybe(chars(0, 3)), { minLength: 8, maxLength: 8 }),
  // which users (by index) are in which group
  memberships: fc.array(fc.uniqueArray(fc.nat(59), { maxLength: 12 }), { minLength: 8, maxLength: 8 }),
});

const directory = fc.sample(directoryArb, { numRuns: 1, seed: DATA_SEED })[0]!;

function userDocs(): { id: string; doc: ScimDoc }[] {
  return directory.users.map((body, i) => ({
    // ids are caseExact: mix the case so that eq/gt on them is not trivially case-blind
    id: `${i % 3 === 0 ? 'U' : 'u'}-${String(i).padStart(2, '0')}`,
    doc: normaliseResource(RESOURCE_TYPES.User, { userName: directory.userNames[i], ...body }).doc,
  }));
}

interface Stored {
  id: string;
  rendered: ScimDoc;
  /** for users: the groups they are in; for groups: their members */
  related: Set<string>;
}

/** Every string (and number) the directory holds, for literals that hit something. */
function valuesOf(v: unknown, out: Set<string>): void {
  if (typeof v === 'string') out.add(v);
  else if (typeof v === 'number') out.add(String(v));
  else if (Array.isArray(v)) v.forEach((x) => valuesOf(x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== 'schemas') valuesOf(x, out);
}

// ---------------------------------------------------------------------------------------------------
// Filters

const kw = (word: string) => fc.constantFrom(word, word.toUpperCase(), word[0]!.toUpperCase() + word.slice(1));
const spaced = (parts: fc.Arbitrary<string>[]) => fc.tuple(...parts).map((p) => p.join(' '));

/** Attribute names in random case: the compiler resolves them case-insensitively. */
function anyCase(name: string): fc.Arbitrary<string> {
  return fc.constantFrom(name, name.toLowerCase(), name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1));
}

type Kind = 'string' | 'boolean' | 'dateTime' | 'resourceType' | 'member' | 'invalid';

/** Literals as written in a filter, by the kind of attribute they are meant for. */
function literalArbs(pool: string[], dates: string[], relatedIds: string[]): Record<Kind, fc.Arbitrary<string>> {
  const existing = fc.constantFrom(...pool);
  // substrings and case variants of existing values, for co / sw / ew / gt / lt
  const derived = fc.tuple(existing, fc.nat(6), fc.nat(6), fc.constantFrom('same', 'upper', 'lower')).map(([s, a, b, c]) => {
    const cps = [...s];
    const part = cps.slice(Math.min(a, cps.length), Math.max(a, cps.length - b)).join('');
    return c === 'upper' ? part.toUpperCase() : c === 'lower' ? part.toLowerCase() : part;
  });
  const text = fc.oneof({ weight: 3, arbitrary: existing }, { weight: 3, arbitrary: derived }, { weight: 2, arbitrary: chars(0, 4) });
  const quote = (t: fc.Arbitrary<string>) =>
    fc.tuple(t, fc.nat(4)).map(([s, escape]) =>
      escape === 0
        ? '"' + [...s].map((ch) => [...ch].map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')).join('') + '"'
        : JSON.stringify(s),
    );
  // unquoted values are read as strings (or numbers, or true/false/null)
  const unquoted = text.filter((s) => /^[^\s()[\]"]+$/.test(s) && !/^(and|or|not)$/i.test(s));
  const keyword = fc.constantFrom('true', 'false', 'null', 'True', 'FALSE', 'Null');
  const number = fc.oneof(fc.integer({ min: -5, max: 120 }).map(String), fc.constantFrom('1.50', '1e1', '-0', '007'));
  const date = fc.oneof(
    fc.constantFrom(...dates),
    fc.constantFrom(...dates).map((d) => d.slice(0, 10)),
    fc.constantFrom(...dates).map((d) => new Date(Date.parse(d) + 1).toISOString()),
    fc.constantFrom(...dates).map((d) => new Date(Date.parse(d) - 1).toISOString().replace('Z', '+00:00')),
    fc.constantFrom(...dates).map((d) => d.replace('.', ',')),
    fc.constantFrom('2001-01-01T00:00:00Z', '2999-12-31', 'yesterday', '2024-02-30T00:00:00Z', '2024-01-01T25:00:00Z'),
  );
  // what no database can hold: U+0000 and unpaired surrogates (as escapes or raw), to be refused
  const unholdable = fc
    .tuple(text, fc.constantFrom('\\u0000', '\\ud800', '\\udfff', '\\ude00\\ud83d', '\u0000', '\ud800', '\udc00'), fc.boolean())
    .map(([s, bad, quoted]) => (quoted ? `"${JSON.stringify(s).slice(1, -1)}${bad}"` : `a${bad}`));
  const any = fc.oneof(quote(text), unquoted, keyword, number, quote(date), unholdable);
  const typed = (arb: fc.Arbitrary<string>) => fc.oneof({ weight: 9, arbitrary: arb }, { weight: 1, arbitrary: any });
  return {
    string: typed(
      fc.oneof(
        { weight: 8, arbitrary: quote(text) },
        { weight: 2, arbitrary: unquoted },
        { weight: 1, arbitrary: fc.oneof(keyword, number) },
        { weight: 1, arbitrary: unholdable },
      ),
    ),
    boolean: typed(fc.oneof(keyword, fc.constantFrom('"True"', '"false"'))),
    dateTime: typed(quote(date)),
    resourceType: typed(fc.constantFrom('"User"', '"Group"', '"user"', 'User')),
    member: typed(fc.oneof(relatedIds.length ? fc.constantFrom(...relatedIds).map((s) => JSON.stringify(s)) : quote(text), quote(text), fc.constant('null'))),
    invalid: any,
  };
}

const OPS = ['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le'];

const CORE = 'urn:ietf:params:scim:schemas:core:2.0';
const USER_ATTRS: [string, Kind][] = [
  ['userName', 'string'], ['displayName', 'string'], ['title', 'string'], ['nickName', 'string'], ['externalId', 'string'],
  ['id', 'string'], ['name.givenName', 'string'], ['name.familyName', 'string'], ['name.formatted', 'string'],
  ['emails', 'string'], ['emails.value', 'string'], ['emails.type', 'string'], ['emails.display', 'string'],
  [`${ENT}:department`, 'string'], [`${ENT}:employeeNumber`, 'string'], [`${ENT}:manager`, 'string'], [`${ENT}:manager.value`, 'string'],
  ['department', 'string'], ['manager', 'string'], [`${CORE}:User:userName`, 'string'], [`${CORE}:User:name.givenName`, 'string'],
  ['phoneNumbers.value', 'string'], ['active', 'boolean'], ['emails.primary', 'boolean'],
  ['meta.created', 'dateTime'], ['meta.lastModified', 'dateTime'], ['meta.resourceType', 'resourceType'],
  ['groups', 'member'], ['groups.value', 'member'],
];
const USER_INVALID = ['name', 'meta', 'meta.location', 'meta.version', 'groups.display', 'password', 'members', 'foo', 'schemas', `${CORE}:Group:displayName`];
const GROUP_ATTRS: [string, Kind][] = [
  ['displayName', 'string'], ['externalId', 'string'], ['id', 'string'], [`${CORE}:Group:displayName`, 'string'],
  ['members', 'member'], ['members.value', 'member'], ['meta.created', 'dateTime'], ['meta.lastModified', 'dateTime'],
  ['meta.resourceType', 'resourceType'],
];
const GROUP_INVALID = ['members.display', 'userName', 'foo', `${ENT}:department`, 'groups'];
const EMAIL_SUBS: [string, Kind][] = [['value', 'string'], ['type', 'string'], ['display', 'string'], ['primary', 'boolean']];

/** `attr op value` / `attr pr`, mostly over attributes that exist, with literals that fit them. */
function comparisonArb(attrs: [string, Kind][], invalid: string[], literals: Record<Kind, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const typed = fc.constantFrom(...attrs).chain(([name, kind]) => {
    const ops = kind === 'boolean' || kind === 'member' || kind === 'resourceType' ? fc.oneof({ weight: 6, arbitrary: fc.constantFrom('eq', 'ne') }, { weight: 1, arbitrary: fc.constantFrom(...OPS) }) : fc.constantFrom(...OPS);
    return fc.oneof(
      { weight: 6, arbitrary: spaced([anyCase(name), ops.chain(kw), literals[kind]]) },
      { weight: 1, arbitrary: spaced([anyCase(name), kw('pr')]) },
    );
  });
  const wrong = fc.oneof(spaced([fc.constantFrom(...invalid).chain(anyCase), fc.constantFrom(...OPS), literals.invalid]), spaced([fc.constantFrom(...invalid), kw('pr')]));
  return fc.oneof({ weight: 30, arbitrary: typed }, { weight: 1, arbitrary: wrong });
}

function filterArb(kind: ResourceKind, literals: Record<Kind, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const comparison = kind === 'User' ? comparisonArb(USER_ATTRS, USER_INVALID, literals) : comparisonArb(GROUP_ATTRS, GROUP_INVALID, literals);

  // `emails[…]` and `emails[…].sub op value`
  const elementCmp = comparisonArb(EMAIL_SUBS, ['foo', 'value.x', 'emails'], literals);
  const sub = fc.constantFrom('value', 'type', 'display', 'primary').chain(anyCase);
  const { inner } = fc.letrec<{ inner: string }>((tie) => ({
    inner: fc.oneof(
      { depthSize: 'small' },
      elementCmp,
      spaced([tie('inner'), kw('and'), tie('inner')]),
      spaced([tie('inner'), kw('or'), tie('inner')]),
      tie('inner').map((f) => `not (${f})`),
    ),
  }));
  const valuePath = fc.oneof(
    fc.tuple(anyCase('emails'), inner).map(([a, f]) => `${a}[${f}]`),
    fc.tuple(anyCase('emails'), inner, elementCmp).map(([a, f, c]) => `${a}[${f}].${c}`),
    fc.tuple(anyCase('emails'), inner, sub).map(([a, f, s]) => `${a}[${f}].${s} pr`),
  );
  const atom = kind === 'User' ? fc.oneof({ weight: 4, arbitrary: comparison }, { weight: 2, arbitrary: valuePath }) : comparison;

  const { filter } = fc.letrec<{ filter: string }>((tie) => ({
    filter: fc.oneof(
      { depthSize: 'small' },
      atom,
      spaced([tie('filter'), kw('and'), tie('filter')]),
      spaced([tie('filter'), kw('or'), tie('filter')]),
      fc.tuple(kw('not'), tie('filter')).map(([n, f]) => `${n} (${f})`),
      tie('filter').map((f) => `(${f})`),
    ),
  }));
  return filter;
}

/** Text that is mostly not a filter: token soup, character soup, and damaged valid filters. */
function junkArb(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const tokens = [
    'userName', 'emails', 'emails[type eq "work"]', '.value', 'title', 'eq', 'EQ', 'ne', 'co', 'pr', 'gt', 'and', 'or', 'not',
    '(', ')', '[', ']', '"x"', '"', "'x'", 'null', 'true', '12', '-', '.', ':', `${ENT}:department`, 'urn:', '\\', '""',
  ];
  const soup = fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 7 }).chain((ts) =>
    fc.array(fc.constantFrom(' ', '', '  '), { minLength: ts.length, maxLength: ts.length }).map((seps) => ts.map((t, i) => t + seps[i]).join('')),
  );
  const junkChars = ['(', ')', '[', ']', '"', '\\', ' ', 'a', 'e', 'q', 'o', 'r', 'n', 't', 'p', '.', ':', '0', '-', 'ı', '😀', '\t', '\u0000', '\ud800', '\u00a0', '\u000b', 'u', '1'];
  const charSoup = fc.array(fc.constantFrom(...junkChars), { maxLength: 20 }).map((a) => a.join(''));
  const damaged = fc.tuple(valid, fc.nat(), fc.nat(4), fc.constantFrom(...junkChars, '', '"', ']', ')')).map(([f, at, len, ins]) => {
    const i = at % (f.length + 1);
    return f.slice(0, i) + ins + f.slice(i + len);
  });
  return fc.oneof(soup, charSoup, damaged, fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 12 }));
}

// ---------------------------------------------------------------------------------------------------

interface Stats {
  rejected: number;
  accepted: number;
  /** accepted filters that selected some but not all resources */
  discriminating: number;
}

async function check(
  mirror: MirrorStore,
  connectorId: string,
  kind: ResourceKind,
  stored: Stored[],
  filter: string,
  stats: Stats,
): Promise<void> {
  let cond: Condition;
  try {
    cond = parseQuery(RESOURCE_TYPES[kind], filter);
  } catch (e) {
    // refused before any SQL is built: 400 invalidFilter and nothing else
    if (!(e instanceof ScimError)) throw new Error(`${JSON.stringify(filter)} threw ${String(e)}`);
    expect({ filter, status: e.status, scimType: e.scimType }).toEqual({ filter, status: 400, scimType: 'invalidFilter' });
    stats.rejected++;
    return;
  }
  stats.accepted++;
  const membership = (s: Stored) => (kind === 'User' ? { groupIds: s.related } : { memberIds: s.related });
  const expected = stored.filter((s) => evaluate(cond, s.rendered, membership(s))).map((s) => s.id);
  const { total, records } = await mirror.list(connectorId, kind, cond, 1, 10_000);
  const got = records.map((r) => r.id).sort();
  expect({ filter, ids: got }).toEqual({ filter, ids: expected.sort() });
  expect(total).toBe(got.length);
  if (got.length > 0 && got.length < stored.length) stats.discriminating++;
}

describe.each(DIALECTS)('SCIM filters in SQL agree with the evaluator, on %s', (dialect: Dialect) => {
  let store: TestStore;
  let mirror: MirrorStore;
  const users: Stored[] = [];
  const groups: Stored[] = [];
  const pool = new Set<string>();
  const dates: string[] = [];

  beforeAll(async () => {
    store = await openTestStore(dialect);
    mirror = new MirrorStore(store.db);
    await new ConnectorStore(store.db).create({ id: 'c1', name: 'x', kind: 'scim' }, 'test');
    const docs = userDocs();
    for (const { id, doc } of docs) await mirror.create('c1', 'User', doc, undefined, id);
    const groupsOf = new Map<string, Set<string>>(docs.map((d) => [d.id, new Set<string>()]));
    for (let g = 0; g < directory.groupNames.length; g++) {
      const id = `g-${g}`;
      const members = [...new Set(directory.memberships[g]!)].map((i) => docs[i]!.id);
      const doc = normaliseResource(RESOURCE_TYPES.Group, { displayName: directory.groupNames[g], externalId: directory.groupExternalIds[g] }).doc;
      await mirror.create('c1', 'Group', doc, members.map((value) => ({ value, type: 'User' as const })), id);
      for (const m of members) groupsOf.get(m)!.add(id);
    }
    const location = (r: MirrorRecord) => `https://usersync.example/scim/v2/c1/${r.kind}s/${r.id}`;
    const members = await mirror.members('c1', directory.groupNames.map((_, g) => `g-${g}`));
    for (const r of (await mirror.list('c1', 'User', undefined, 1, 10_000)).records) {
      users.push({ id: r.id, rendered: render(r, { location: location(r) }), related: groupsOf.get(r.id)! });
      valuesOf(r.doc, pool);
      pool.add(r.id);
      dates.push(r.created, r.lastModified);
    }
    for (const r of (await mirror.list('c1', 'Group', undefined, 1, 10_000)).records) {
      groups.push({ id: r.id, rendered: render(r, { location: location(r) }), related: new Set(members.get(r.id)!.map((m) => m.memberId)) });
      valuesOf(r.doc, pool);
      pool.add(r.id);
    }
    expect(users).toHaveLength(60);
    expect(groups).toHaveLength(8);
  });
  afterAll(async () => store?.cleanup());

  it('on users: every filter is either refused with 400 invalidFilter or selects what the evaluator selects', async () => {
    const stats: Stats = { rejected: 0, accepted: 0, discriminating: 0 };
    const valid = filterArb('User', literalArbs([...pool], dates, groups.map((g) => g.id)));
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: junkArb(valid) }), (filter) =>
        check(mirror, 'c1', 'User', users, filter, stats),
      ),
      { numRuns: RUNS },
    );
    // the run exercised the SQL, and with filters that tell users apart (loose bounds: the filters are
    // random on every run, and these only guard against a generator that degenerates)
    expect(stats.accepted).toBeGreaterThan(RUNS / 5);
    expect(stats.rejected).toBeGreaterThan(RUNS / 20);
    expect(stats.discriminating).toBeGreaterThan(RUNS / 20);
  });

  it('on groups: the same, with membership filters answered from the membership table', async () => {
    const stats: Stats = { rejected: 0, accepted: 0, discriminating: 0 };
    const valid = filterArb('Group', literalArbs([...pool], dates, users.map((u) => u.id)));
    const runs = Math.ceil(RUNS / 3);
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: junkArb(valid) }), (filter) =>
        check(mirror, 'c1', 'Group', groups, filter, stats),
      ),
      { numRuns: runs },
    );
    expect(stats.accepted).toBeGreaterThan(runs / 5);
    expect(stats.discriminating).toBeGreaterThan(runs / 40);
  });

  it('Entra ID lookups', async () => {
    const stats: Stats = { rejected: 0, accepted: 0, discriminating: 0 };
    const some = users.find((u) => Array.isArray(u.rendered.emails))!;
    const email = (some.rendered.emails as { value?: string }[])[0]!.value ?? 'x';
    const userName = String(some.rendered.userName);
    for (const filter of [
      `userName eq ${JSON.stringify(userName)}`,
      `userName eq ${JSON.stringify(userName.toUpperCase())}`,
      'userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"',
      `emails[type eq "work"].value eq ${JSON.stringify(email)}`,
      `emails[type eq "work"].value eq ${JSON.stringify(email.toUpperCase())}`,
      `externalId eq ${JSON.stringify(String(some.rendered.externalId ?? 'x'))}`,
      `id eq ${JSON.stringify(some.id)} and manager eq "nobody"`,
      `userName eq ${JSON.stringify(userName)} and active eq true`,
    ]) {
      await check(mirror, 'c1', 'User', users, filter, stats);
    }
    expect(stats.rejected).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------
// Ordering and pattern characters, checked against an oracle that does not share the evaluator's code

/** Code point order of well-formed strings is the byte order of their UTF-8. */
const utf8Compare = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

const ORDER_VALUES = [
  'A', 'Z', 'a', 'z', 'ab', 'aB', 'É', 'é', 'ß', 'İ', 'ı', 'ǅ', 'ǆ', 'ÿ', '😀', '😀a', '\uff21', '\ue000', '~', 'zz',
  '100%', '%', 'a%b', 'a_b', 'axb', '_', 'a\\b', "o'k", 'say "x"', 'a b',
];
const PATTERNS = ['%', '_', 'a%', 'a_', '%b', '_b', '\\', '\\b', "'", '"', ' ', 'a%b', '%%', '__', 'x'];

type Getter = { attr: string; caseExact: boolean; get: (i: number) => string };

describe.each(DIALECTS)('string order and LIKE characters on %s', (dialect: Dialect) => {
  let store: TestStore;
  let mirror: MirrorStore;
  const stored: Stored[] = [];
  let icu = false;

  const GETTERS: Getter[] = [
    { attr: 'externalId', caseExact: true, get: (i) => ORDER_VALUES[i]! }, // a key column
    { attr: 'userName', caseExact: false, get: (i) => `${ORDER_VALUES[i]!}#${i}` }, // a folded key column
    { attr: 'title', caseExact: false, get: (i) => ORDER_VALUES[i]! }, // the search document
    { attr: `${ENT}:employeeNumber`, caseExact: false, get: (i) => ORDER_VALUES[i]! }, // an extension
    { attr: 'emails.value', caseExact: false, get: (i) => ORDER_VALUES[i]! }, // inside an array element
  ];

  beforeAll(async () => {
    store = await openTestStore(dialect);
    mirror = new MirrorStore(store.db);
    if (dialect === 'postgres') {
      // A database whose default collation is a language's (en_US.UTF-8 is common) orders 'a' < 'B' and
      // ignores punctuation at first; the filter must still order by code point. Simulate it on the key
      // columns, where the column's collation is what PostgreSQL would use.
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_collation WHERE collname = 'en-x-icu'`.execute(store.db.kysely);
      icu = rows[0]!.n > 0;
      if (icu) {
        for (const column of ['external_id', 'user_name_key']) {
          await sql`ALTER TABLE mirror_users ALTER COLUMN ${sql.ref(column)} TYPE text COLLATE "en-x-icu"`.execute(store.db.kysely);
        }
      }
    }
    await new ConnectorStore(store.db).create({ id: 'c1', name: 'x', kind: 'scim' }, 'test');
    for (let i = 0; i < ORDER_VALUES.length; i++) {
      const v = ORDER_VALUES[i]!;
      const doc = normaliseResource(RESOURCE_TYPES.User, {
        userName: `${v}#${i}`,
        externalId: v,
        title: v,
        emails: [{ type: 'work', value: v }],
        [ENT]: { employeeNumber: v },
      }).doc;
      const r = await mirror.create('c1', 'User', doc, undefined, `u-${String(i).padStart(2, '0')}`);
      stored.push({ id: r.id, rendered: render(r, { location: 'x' }), related: new Set() });
    }
  });
  afterAll(async () => store?.cleanup());

  it('really runs on a non-code-point collation on PostgreSQL', () => {
    if (dialect === 'postgres') expect(icu).toBe(true);
  });

  async function agree(filter: string, oracle: (i: number) => boolean): Promise<void> {
    const cond = parseQuery(RESOURCE_TYPES.User, filter);
    const want = stored.filter((_, i) => oracle(i)).map((s) => s.id);
    const viaEvaluator = stored.filter((s) => evaluate(cond, s.rendered)).map((s) => s.id);
    const viaSql = (await mirror.list('c1', 'User', cond, 1, 1000)).records.map((r) => r.id).sort();
    expect({ filter, viaEvaluator }).toEqual({ filter, viaEvaluator: want });
    expect({ filter, viaSql }).toEqual({ filter, viaSql: want });
  }

  it('gt / ge / lt / le order by code point', async () => {
    const ops: [string, (c: number) => boolean][] = [
      ['gt', (c) => c > 0],
      ['ge', (c) => c >= 0],
      ['lt', (c) => c < 0],
      ['le', (c) => c <= 0],
    ];
    for (const g of GETTERS) {
      for (const literal of [...ORDER_VALUES, '', 'b', 'A#', 'z#9']) {
        const lit = g.caseExact ? literal : foldCase(literal);
        for (const [op, holds] of ops) {
          await agree(`${g.attr} ${op} ${JSON.stringify(literal)}`, (i) => {
            const v = g.caseExact ? g.get(i) : foldCase(g.get(i));
            return holds(utf8Compare(v, lit));
          });
        }
      }
    }
  });

  it('co / sw / ew take % _ \\ and quotes literally', async () => {
    const ops: [string, (v: string, p: string) => boolean][] = [
      ['co', (v, p) => v.includes(p)],
      ['sw', (v, p) => v.startsWith(p)],
      ['ew', (v, p) => v.endsWith(p)],
    ];
    for (const g of GETTERS) {
      for (const pattern of [...PATTERNS, 'É', 'é', 'İ', 'i\u0307', '😀', '']) {
        const p = g.caseExact ? pattern : foldCase(pattern);
        for (const [op, holds] of ops) {
          await agree(`${g.attr} ${op} ${JSON.stringify(pattern)}`, (i) => holds(g.caseExact ? g.get(i) : foldCase(g.get(i)), p));
        }
      }
    }
  });
});
