// Validation of a connector's settings as they arrive from the admin API or a file: a partial object is
// completed from defaults (or, for a patch, from the current settings), unknown keys and wrong types are
// refused, and every expression (condition, source path, template, regular expression) is compiled, so
// that a bad one is rejected when saved, with where it is wrong. All problems are reported at once.
//
// Merging: the sections (`user`, `group`, `safety`) and the plain option objects inside them
// (`user.operations`, `safety.deletionLimit`) are merged field by field. Everything else is a value and is
// replaced whole when given: an attribute mapping (source and transforms together), `rename`, every list.
//
// Pure (no Node modules): the admin UI runs the same checks in the page before anything is sent.
// settings-validate.ts re-exports it, with the checks that source settings share.

import type {
  AttributeMapping,
  CleanupBehaviour,
  ConnectorSettings,
  CustomAttribute,
  GroupSyncSettings,
  LicenceGroup,
  ManualMapping,
  SafetySettings,
  Transform,
  UserSyncSettings,
} from './settings.ts';
import { DEFAULT_SETTINGS } from './settings.ts';
import { compileCondition, MAX_GROUP_NAME_LENGTH, wholeNameRegex } from './rules.ts';
import { compilePath, compileSource, compileTemplate, ExpressionError, REGEX_FLAGS, TRANSFORM_NAMES } from './transforms.ts';

export interface SettingsIssue {
  /** where in the settings: `user.username.transforms[1].pattern`; '' for the whole object */
  path: string;
  message: string;
  /** index into the expression at `path` (condition, source path, template, flags, name) */
  position?: number;
}

export class SettingsError extends Error {
  readonly errors: SettingsIssue[];
  constructor(errors: SettingsIssue[]) {
    super(summarise(errors));
    this.name = 'SettingsError';
    this.errors = errors;
  }
}

function describeIssue(i: SettingsIssue): string {
  const at = i.position !== undefined ? ` (at position ${i.position})` : '';
  return `${i.path || 'settings'}: ${i.message}${at}`;
}

function summarise(errors: SettingsIssue[]): string {
  const shown = errors.slice(0, 5).map(describeIssue).join('; ');
  const more = errors.length > 5 ? `; and ${errors.length - 5} more` : '';
  return `${errors.length} invalid setting${errors.length === 1 ? '' : 's'}: ${shown}${more}`;
}

/** Complete and validate settings from a partial object; missing fields come from DEFAULT_SETTINGS. */
export function validateSettings(input: unknown): ConnectorSettings {
  return build(DEFAULT_SETTINGS, input);
}

/** Apply a partial update to the current settings, validating the result as validateSettings does. */
export function settingsPatch(current: ConnectorSettings, input: unknown): ConnectorSettings {
  return build(current, input);
}

// ------------------------------------------------------------------------------------------ machinery

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const key = (path: string, k: string): string => (path ? `${path}.${k}` : k);
const index = (path: string, i: number): string => `${path}[${i}]`;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** The keys of T, checked complete by the compiler, so that a new setting cannot be forgotten here. */
type Keys<T> = Record<keyof T, true>;

class Checker {
  readonly errors: SettingsIssue[] = [];

  add(path: string, message: string, position?: number): void {
    this.errors.push(position === undefined ? { path, message } : { path, message, position });
  }

  /** `path` holds `v`, which is not what it should be. */
  wrong(path: string, expected: string, v: unknown): void {
    this.add(path, v === undefined ? `is required (${expected})` : `must be ${expected}, not ${typeName(v)}`);
  }

  expression(path: string, e: unknown): void {
    if (!(e instanceof ExpressionError)) throw e;
    this.add(path, e.message, e.position);
  }

  /** An object with only the given keys; reports the others. Undefined (reported) when not an object. */
  record(v: unknown, path: string, keys: Keys<object> | readonly string[]): Obj | undefined {
    if (!isObject(v)) {
      this.wrong(path, 'an object', v);
      return undefined;
    }
    const known = Array.isArray(keys) ? keys : Object.keys(keys);
    for (const k of Object.keys(v)) if (!known.includes(k)) this.add(key(path, k), 'unknown setting');
    return v;
  }

  /** A section merged field by field onto `base`: given fields win, absent (undefined) ones come from base. */
  merge(input: unknown, base: object, path: string, keys: Keys<object>): Obj | undefined {
    const given = input === undefined ? {} : this.record(input, path, keys);
    if (!given) return undefined;
    const out: Obj = {};
    for (const k of Object.keys(keys)) out[k] = given[k] !== undefined ? given[k] : (base as Obj)[k];
    return out;
  }

  bool(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.wrong(path, 'true or false', v);
    return v === true;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== 'string') {
      this.wrong(path, 'a string', v);
      return '';
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.add(path, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
      return allowed[0]!;
    }
    return v as T;
  }

  list<T>(v: unknown, path: string, item: (x: unknown, path: string, i: number) => T): T[] {
    if (!Array.isArray(v)) {
      this.wrong(path, 'a list', v);
      return [];
    }
    return v.map((x, i) => item(x, index(path, i), i));
  }

  groupName(v: unknown, path: string): string {
    const name = this.str(v, path);
    if (typeof v !== 'string') return name;
    if (name.trim() === '') this.add(path, 'a group name cannot be empty');
    else if (name.length > MAX_GROUP_NAME_LENGTH) this.add(path, `a group name is at most ${MAX_GROUP_NAME_LENGTH} characters (this one has ${name.length})`);
    return name;
  }

  /** A regular expression matched against whole group names, case-insensitively. */
  nameRegex(v: unknown, path: string): string {
    const pattern = this.str(v, path);
    if (typeof v !== 'string') return pattern;
    if (pattern === '') {
      this.add(path, 'a pattern cannot be empty');
      return pattern;
    }
    try {
      wholeNameRegex(pattern);
    } catch (e) {
      this.add(path, (e as Error).message);
    }
    return pattern;
  }
}

// ------------------------------------------------------------------------------------------- sections

const ROOT_KEYS: Keys<ConnectorSettings> = { user: true, group: true, safety: true };

function build(base: ConnectorSettings, input: unknown): ConnectorSettings {
  const ck = new Checker();
  const root = ck.merge(input, base, '', ROOT_KEYS);
  let result: ConnectorSettings | undefined;
  if (root) {
    result = {
      user: userSettings(ck, root.user, base.user),
      group: groupSettings(ck, root.group, base.group),
      safety: safetySettings(ck, root.safety, base.safety),
    };
  }
  if (ck.errors.length > 0 || !result) throw new SettingsError(ck.errors);
  return result;
}

const USER_KEYS: Keys<UserSyncSettings> = {
  operations: true,
  username: true,
  email: true,
  displayName: true,
  condition: true,
  customAttributes: true,
  copyBehaviour: true,
  cleanup: true,
};
const OPERATION_KEYS: Keys<UserSyncSettings['operations']> = { create: true, update: true, activate: true, deactivate: true };
const CLEANUP: readonly CleanupBehaviour[] = ['deactivate', 'delete', 'leave'];

function userSettings(ck: Checker, input: unknown, base: UserSyncSettings): UserSyncSettings {
  const u = ck.merge(input, base, 'user', USER_KEYS);
  if (!u) return base;
  const ops = ck.merge(u.operations === base.operations ? undefined : u.operations, base.operations, 'user.operations', OPERATION_KEYS);
  const operations = ops
    ? {
        create: ck.bool(ops.create, 'user.operations.create'),
        update: ck.bool(ops.update, 'user.operations.update'),
        activate: ck.bool(ops.activate, 'user.operations.activate'),
        deactivate: ck.bool(ops.deactivate, 'user.operations.deactivate'),
      }
    : base.operations;
  const conditionText = ck.str(u.condition, 'user.condition');
  let condition = conditionText;
  if (conditionText.trim() === '') condition = '';
  else {
    try {
      compileCondition(conditionText);
    } catch (e) {
      ck.expression('user.condition', e);
    }
  }
  return {
    operations,
    username: mapping(ck, u.username, 'user.username'),
    email: mapping(ck, u.email, 'user.email'),
    displayName: mapping(ck, u.displayName, 'user.displayName'),
    condition,
    customAttributes: customAttributes(ck, u.customAttributes, 'user.customAttributes'),
    copyBehaviour: ck.bool(u.copyBehaviour, 'user.copyBehaviour'),
    cleanup: ck.oneOf(u.cleanup, 'user.cleanup', CLEANUP),
  };
}

const MAPPING_KEYS: Keys<AttributeMapping> = { source: true, transforms: true };

function mapping(ck: Checker, v: unknown, path: string): AttributeMapping {
  const m = ck.record(v, path, MAPPING_KEYS);
  if (!m) return {};
  const out: AttributeMapping = {};
  if (m.source !== undefined && m.source !== null) {
    out.source = ck.str(m.source, key(path, 'source'));
    if (typeof m.source === 'string') {
      try {
        compilePath(m.source);
      } catch (e) {
        ck.expression(key(path, 'source'), e);
      }
    }
  }
  if (m.transforms !== undefined && m.transforms !== null) {
    out.transforms = ck.list(m.transforms, key(path, 'transforms'), (t, p) => transform(ck, t, p));
  }
  const first = Array.isArray(m.transforms) && isObject(m.transforms[0]) ? m.transforms[0].fn : undefined;
  if (out.source === undefined && first !== 'template' && first !== 'firstNonEmpty') {
    ck.add(key(path, 'source'), 'a source path is needed unless the first transform is a template or firstNonEmpty');
  }
  return out;
}

function transform(ck: Checker, v: unknown, path: string): Transform {
  if (!isObject(v)) {
    ck.wrong(path, 'an object with fn', v);
    return { fn: 'trim' };
  }
  const fn = v.fn;
  if (typeof fn !== 'string' || !(TRANSFORM_NAMES as readonly string[]).includes(fn)) {
    const names = TRANSFORM_NAMES.join(', ');
    if (fn === undefined) ck.add(key(path, 'fn'), `is required (one of ${names})`);
    else ck.add(key(path, 'fn'), `unknown transform ${typeof fn === 'string' ? `'${fn}'` : typeName(fn)}; one of ${names}`);
    return { fn: 'trim' };
  }
  switch (fn as Transform['fn']) {
    case 'regexReplace': {
      ck.record(v, path, ['fn', 'pattern', 'replacement', 'flags']);
      const pattern = ck.str(v.pattern, key(path, 'pattern'));
      const replacement = ck.str(v.replacement, key(path, 'replacement'));
      const t: Transform = { fn: 'regexReplace', pattern, replacement };
      let flagsOk = true;
      if (v.flags !== undefined && v.flags !== null) {
        const flags = ck.str(v.flags, key(path, 'flags'));
        t.flags = flags;
        flagsOk = typeof v.flags === 'string';
        [...flags].forEach((f, i) => {
          if (!REGEX_FLAGS.includes(f)) {
            ck.add(key(path, 'flags'), `unknown flag '${f}'; flags are any of '${REGEX_FLAGS}'`, i);
            flagsOk = false;
          } else if (flags.indexOf(f) !== i) {
            ck.add(key(path, 'flags'), `flag '${f}' is repeated`, i);
            flagsOk = false;
          }
        });
      }
      if (typeof v.pattern === 'string' && flagsOk) {
        try {
          new RegExp(pattern, t.flags ?? '');
        } catch (e) {
          ck.add(key(path, 'pattern'), (e as Error).message);
        }
      }
      return t;
    }
    case 'lower':
    case 'upper':
    case 'trim':
      ck.record(v, path, ['fn']);
      return { fn: fn as 'lower' | 'upper' | 'trim' };
    case 'template': {
      ck.record(v, path, ['fn', 'template']);
      const template = ck.str(v.template, key(path, 'template'));
      if (typeof v.template === 'string') {
        try {
          compileTemplate(template);
        } catch (e) {
          ck.expression(key(path, 'template'), e);
        }
      }
      return { fn: 'template', template };
    }
    case 'firstNonEmpty': {
      ck.record(v, path, ['fn', 'sources']);
      const sources = ck.list(v.sources, key(path, 'sources'), (s, p) => {
        const source = ck.str(s, p);
        if (typeof s === 'string') {
          try {
            compileSource(source);
          } catch (e) {
            ck.expression(p, e);
          }
        }
        return source;
      });
      if (Array.isArray(v.sources) && v.sources.length === 0) ck.add(key(path, 'sources'), 'needs at least one source');
      return { fn: 'firstNonEmpty', sources };
    }
  }
}

const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

function customAttributes(ck: Checker, v: unknown, path: string): CustomAttribute[] {
  const seen = new Map<string, number>();
  return ck.list(v, path, (a, p, i): CustomAttribute => {
    const o = ck.record(a, p, { name: true, mapping: true } satisfies Keys<CustomAttribute>);
    if (!o) return { name: '', mapping: {} };
    const name = ck.str(o.name, key(p, 'name'));
    if (typeof o.name === 'string') {
      if (name.trim() === '') ck.add(key(p, 'name'), 'a custom attribute needs a name');
      else if (!ATTRIBUTE_NAME.test(name)) {
        const bad = /^[^A-Za-z]/.test(name) ? 0 : [...name].findIndex((c) => !/[A-Za-z0-9_.-]/.test(c));
        ck.add(key(p, 'name'), "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'", bad);
      } else {
        const folded = name.toLowerCase();
        const first = seen.get(folded);
        if (first !== undefined) ck.add(key(p, 'name'), `'${name}' is already the name of ${index(path, first)} (names are case-insensitive)`);
        else seen.set(folded, i);
      }
    }
    return { name, mapping: mapping(ck, o.mapping, key(p, 'mapping')) };
  });
}

const GROUP_KEYS: Keys<GroupSyncSettings> = {
  defaultGroups: true,
  alwaysGroups: true,
  mode: true,
  rename: true,
  manualMappings: true,
  createEmptyGroups: true,
  onlyAssign: true,
  neverAssign: true,
  neverRemove: true,
  membershipAuthority: true,
  deleteEmptyManagedGroups: true,
  licences: true,
};
const MODES: readonly GroupSyncSettings['mode'][] = ['onTheFly', 'manual'];
const AUTHORITIES: readonly GroupSyncSettings['membershipAuthority'][] = ['keepUnmanaged', 'sourceOfTruth'];

function groupSettings(ck: Checker, input: unknown, base: GroupSyncSettings): GroupSyncSettings {
  const g = ck.merge(input, base, 'group', GROUP_KEYS);
  if (!g) return base;
  const names = (v: unknown, path: string): string[] => ck.list(v, path, (x, p) => ck.groupName(x, p));
  const regexes = (v: unknown, path: string): string[] => ck.list(v, path, (x, p) => ck.nameRegex(x, p));
  return {
    defaultGroups: names(g.defaultGroups, 'group.defaultGroups'),
    alwaysGroups: names(g.alwaysGroups, 'group.alwaysGroups'),
    mode: ck.oneOf(g.mode, 'group.mode', MODES),
    rename: rename(ck, g.rename, 'group.rename'),
    manualMappings: ck.list(g.manualMappings, 'group.manualMappings', (m, p): ManualMapping => {
      const o = ck.record(m, p, { source: true, targets: true } satisfies Keys<ManualMapping>);
      if (!o) return { source: '', targets: [] };
      const targets = names(o.targets, key(p, 'targets'));
      if (Array.isArray(o.targets) && o.targets.length === 0) ck.add(key(p, 'targets'), 'a manual mapping needs at least one target group');
      return { source: ck.groupName(o.source, key(p, 'source')), targets };
    }),
    createEmptyGroups: ck.bool(g.createEmptyGroups, 'group.createEmptyGroups'),
    onlyAssign: regexes(g.onlyAssign, 'group.onlyAssign'),
    neverAssign: regexes(g.neverAssign, 'group.neverAssign'),
    neverRemove: regexes(g.neverRemove, 'group.neverRemove'),
    membershipAuthority: ck.oneOf(g.membershipAuthority, 'group.membershipAuthority', AUTHORITIES),
    deleteEmptyManagedGroups: ck.bool(g.deleteEmptyManagedGroups, 'group.deleteEmptyManagedGroups'),
    licences: licences(ck, g.licences, 'group.licences'),
  };
}

function rename(ck: Checker, v: unknown, path: string): GroupSyncSettings['rename'] {
  if (v === null) return null;
  const o = ck.record(v, path, { pattern: true, replacement: true } satisfies Keys<NonNullable<GroupSyncSettings['rename']>>);
  if (!o) return null;
  return { pattern: ck.nameRegex(o.pattern, key(path, 'pattern')), replacement: ck.str(o.replacement, key(path, 'replacement')) };
}

function licences(ck: Checker, v: unknown, path: string): LicenceGroup[] {
  const seen = new Map<string, string>();
  return ck.list(v, path, (l, p): LicenceGroup => {
    const o = ck.record(l, p, { group: true, seats: true } satisfies Keys<LicenceGroup>);
    if (!o) return { group: '', seats: 0 };
    const group = ck.groupName(o.group, key(p, 'group'));
    if (typeof o.group === 'string' && group.trim() !== '') {
      const first = seen.get(group.toLowerCase());
      if (first !== undefined) ck.add(key(p, 'group'), `'${group}' already has a seat limit in ${first} (names are case-insensitive)`);
      else seen.set(group.toLowerCase(), p);
    }
    const seats = o.seats;
    if (typeof seats !== 'number' || !Number.isSafeInteger(seats) || seats < 0) {
      ck.add(key(p, 'seats'), `seats must be a whole number of 0 or more, not ${JSON.stringify(seats) ?? 'nothing'}`);
      return { group, seats: 0 };
    }
    return { group, seats };
  });
}

const SAFETY_KEYS: Keys<SafetySettings> = { deletionLimit: true };
const LIMIT_KEYS: Keys<SafetySettings['deletionLimit']> = { count: true, percent: true };

function safetySettings(ck: Checker, input: unknown, base: SafetySettings): SafetySettings {
  const s = ck.merge(input, base, 'safety', SAFETY_KEYS);
  if (!s) return base;
  const given = s.deletionLimit === base.deletionLimit ? undefined : s.deletionLimit;
  const l = ck.merge(given, base.deletionLimit, 'safety.deletionLimit', LIMIT_KEYS);
  if (!l) return base;
  let count: number | null = null;
  if (l.count !== null) {
    if (typeof l.count !== 'number' || !Number.isSafeInteger(l.count) || l.count < 0) {
      ck.add('safety.deletionLimit.count', `must be a whole number of 0 or more, or null for no limit, not ${JSON.stringify(l.count) ?? 'nothing'}`);
    } else count = l.count;
  }
  let percent: number | null = null;
  if (l.percent !== null) {
    if (typeof l.percent !== 'number' || !Number.isFinite(l.percent) || l.percent < 0 || l.percent > 100) {
      ck.add('safety.deletionLimit.percent', `must be a number from 0 to 100, or null for no limit, not ${JSON.stringify(l.percent) ?? 'nothing'}`);
    } else percent = l.percent;
  }
  return { deletionLimit: { count, percent } };
}
