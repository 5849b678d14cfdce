// Rules: pure functions from mirror records (SCIM-shaped, for every kind of source) to the desired
// directory state, driven by a connector's user sync and group sync settings. Each settings object is
// compiled once (conditions, mappings, regular expressions) and the compiled form cached with it: treat
// settings as immutable once they are in use, and pass a new object to change them.

import type { GroupSyncSettings, LicenceGroup, UserSyncSettings } from './settings.ts';
import { DEFAULT_SETTINGS } from './settings.ts';
import { evaluate } from './scim/evaluate.ts';
import { FilterSyntaxError, parseFilter } from './scim/filter.ts';
import type { Condition } from './scim/query.ts';
import { compileFilter } from './scim/query.ts';
import type { ScimDoc } from './scim/resource.ts';
import { foldCase, RESOURCE_TYPES } from './scim/schema.ts';
import type { PathReader } from './transforms.ts';
import { compileMapping, ExpressionError } from './transforms.ts';

export interface DesiredUser {
  username: string;
  email: string | null;
  displayName: string;
  active: boolean;
  attributes: Record<string, string>;
}

export interface DesiredGroup {
  name: string;
}

export type UserEvaluation = { inScope: true; desired: DesiredUser } | { inScope: false; reason: string };

/** Directory group names are at most this long (Jira, Confluence and Crowd alike). */
export const MAX_GROUP_NAME_LENGTH = 255;

// ---------------------------------------------------------------------------------------------- users

function usesMembership(c: Condition): boolean {
  switch (c.k) {
    case 'and':
    case 'or':
      return usesMembership(c.a) || usesMembership(c.b);
    case 'not':
      return usesMembership(c.c);
    case 'elem':
      return usesMembership(c.c);
    case 'member':
      return true;
    default:
      return false;
  }
}

/**
 * Compile a user condition (SCIM filter syntax, resolved against the User schema); an empty or blank
 * condition is null (every user). Throws ExpressionError, with the position for syntax errors and, for an
 * unknown or unusable attribute, where its name occurs.
 */
export function compileCondition(condition: string): Condition | null {
  if (condition.trim() === '') return null;
  let compiled: Condition;
  try {
    compiled = compileFilter(RESOURCE_TYPES.User, parseFilter(condition));
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new ExpressionError(e.message.replace(/ at position \d+$/, ''), e.position);
    if (!(e instanceof Error)) throw e;
    const quoted = /'([^']+)'/.exec(e.message)?.[1];
    const at = quoted === undefined ? -1 : condition.toLowerCase().indexOf(quoted.toLowerCase());
    throw new ExpressionError(e.message, at < 0 ? undefined : at);
  }
  // A rule sees one record, not the memberships: such a condition would leave every user out.
  if (usesMembership(compiled)) {
    const at = condition.search(/\bgroups\b/i);
    throw new ExpressionError("conditions on group membership ('groups') are not supported", at < 0 ? undefined : at);
  }
  return compiled;
}

interface CompiledUser {
  condition: Condition | null;
  username: PathReader;
  email: PathReader;
  displayName: PathReader;
  /** sorted by name, so that the attributes object has one key order whatever the settings' order */
  custom: [string, PathReader][];
}

const userCache = new WeakMap<UserSyncSettings, CompiledUser>();

function compiledUser(settings: UserSyncSettings): CompiledUser {
  let c = userCache.get(settings);
  if (!c) {
    c = {
      condition: compileCondition(settings.condition),
      username: compileMapping(settings.username),
      email: compileMapping(settings.email),
      displayName: compileMapping(settings.displayName),
      custom: settings.customAttributes
        .map((a): [string, PathReader] => [a.name, compileMapping(a.mapping)])
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    };
    userCache.set(settings, c);
  }
  return c;
}

/** Everything but the username, which the caller has settled. */
function desiredUser(c: CompiledUser, doc: ScimDoc, username: string): DesiredUser {
  const attributes: Record<string, string> = {};
  for (const [name, read] of c.custom) {
    const v = read(doc);
    if (v !== undefined) attributes[name] = v;
  }
  return {
    username,
    email: c.email(doc) ?? null,
    // a display name is required: the username stands in when the mapping gives nothing
    displayName: c.displayName(doc) ?? username,
    active: doc.active !== false,
    attributes,
  };
}

/**
 * Apply user sync settings to one mirror record. Out of scope when the condition does not match, or when
 * the username mapping gives an empty value. Custom attributes hold only non-empty values.
 */
export function evaluateUser(settings: UserSyncSettings, doc: ScimDoc): UserEvaluation {
  const c = compiledUser(settings);
  if (c.condition !== null && !evaluate(c.condition, doc)) return { inScope: false, reason: 'left out by the condition' };
  const username = c.username(doc);
  if (username === undefined) return { inScope: false, reason: 'the username mapping gives an empty value' };
  return { inScope: true, desired: desiredUser(c, doc, username) };
}

/**
 * The default settings' user rule: userName → username; work e-mail, else the primary, else the first →
 * email; displayName, else name.formatted, else "given family", else the username → display name.
 */
export function defaultUserRule(doc: ScimDoc): DesiredUser {
  const result = evaluateUser(DEFAULT_SETTINGS.user, doc);
  if (result.inScope) return result.desired;
  // Only a record without a userName gets here; the mirror never holds one, but stay total.
  return desiredUser(compiledUser(DEFAULT_SETTINGS.user), doc, String(doc.userName));
}

/** Groups as sent: the provider group becomes the directory group of the same name. */
export function defaultGroupRule(doc: ScimDoc): DesiredGroup {
  return { name: String(doc.displayName) };
}

/** The key that makes directory usernames and group names unique regardless of case. */
export const directoryKey = foldCase;

export type UserField = 'username' | 'email' | 'displayName' | 'active' | 'attributes';

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

/** Field-level differences between the directory's current user and the desired one. */
export function userDiff(current: DesiredUser, desired: DesiredUser): Partial<Record<UserField, { from: unknown; to: unknown }>> {
  const diff: Partial<Record<UserField, { from: unknown; to: unknown }>> = {};
  if (current.username !== desired.username) diff.username = { from: current.username, to: desired.username };
  if (current.email !== desired.email) diff.email = { from: current.email, to: desired.email };
  if (current.displayName !== desired.displayName) diff.displayName = { from: current.displayName, to: desired.displayName };
  if (current.active !== desired.active) diff.active = { from: current.active, to: desired.active };
  if (!sameAttributes(current.attributes, desired.attributes)) diff.attributes = { from: current.attributes, to: desired.attributes };
  return diff;
}

// --------------------------------------------------------------------------------------------- groups

/** A regular expression matching a whole group name, case-insensitively. Throws SyntaxError when invalid. */
export function wholeNameRegex(pattern: string): RegExp {
  new RegExp(pattern, 'i'); // on its own first: wrapping could balance a stray parenthesis, `a)|(b`
  return new RegExp(`^(?:${pattern})$`, 'i');
}

interface NamedRegex {
  pattern: string;
  re: RegExp;
}

interface CompiledGroup {
  rename: { re: RegExp; replacement: string } | null;
  /** folded provider group name → targets of every matching row, in order */
  manual: Map<string, string[]>;
  only: NamedRegex[];
  never: NamedRegex[];
  neverRemove: RegExp[];
  licences: Map<string, LicenceGroup>;
}

const groupCache = new WeakMap<GroupSyncSettings, CompiledGroup>();

function compiledGroup(settings: GroupSyncSettings): CompiledGroup {
  let c = groupCache.get(settings);
  if (!c) {
    const manual = new Map<string, string[]>();
    for (const row of settings.manualMappings) {
      const key = foldCase(row.source);
      manual.set(key, [...(manual.get(key) ?? []), ...row.targets]);
    }
    const licences = new Map<string, LicenceGroup>();
    for (const l of settings.licences) if (!licences.has(foldCase(l.group))) licences.set(foldCase(l.group), l);
    const named = (list: string[]): NamedRegex[] => list.map((pattern) => ({ pattern, re: wholeNameRegex(pattern) }));
    c = {
      rename: settings.rename ? { re: wholeNameRegex(settings.rename.pattern), replacement: settings.rename.replacement } : null,
      manual,
      only: named(settings.onlyAssign),
      never: named(settings.neverAssign),
      neverRemove: settings.neverRemove.map(wholeNameRegex),
      licences,
    };
    groupCache.set(settings, c);
  }
  return c;
}

/** Why a directory group name may not be assigned, or undefined when it may. */
function refusal(c: CompiledGroup, name: string): string | undefined {
  if (name.trim() === '') return 'empty group name';
  if (name.length > MAX_GROUP_NAME_LENGTH) return `group name longer than ${MAX_GROUP_NAME_LENGTH} characters`;
  if (c.only.length > 0 && !c.only.some((r) => r.re.test(name))) return 'matches no onlyAssign pattern';
  const never = c.never.find((r) => r.re.test(name));
  if (never) return `matches neverAssign pattern '${never.pattern}'`;
  return undefined;
}

/**
 * The directory groups a provider group maps to. On the fly: the provider group's name, renamed when the
 * rename pattern matches the whole name (case-insensitively; `$1`… refer to its groups). Manual: the targets
 * of every row whose source is the provider group's name (case-insensitively). Targets are deduplicated
 * case-insensitively (first spelling kept), then filtered by onlyAssign, then neverAssign. `excluded` says
 * why a name was left out; its `name` is the directory group name, or the provider group's name when there
 * is none (manual mode without a matching row).
 */
export function groupTargets(
  settings: GroupSyncSettings,
  providerGroupName: string,
): { targets: string[]; excluded: { name: string; reason: string }[] } {
  const c = compiledGroup(settings);
  const excluded: { name: string; reason: string }[] = [];
  let candidates: string[];
  if (settings.mode === 'manual') {
    candidates = c.manual.get(foldCase(providerGroupName)) ?? [];
    if (candidates.length === 0) excluded.push({ name: providerGroupName, reason: 'no manual mapping for this group' });
  } else if (c.rename && c.rename.re.test(providerGroupName)) {
    candidates = [providerGroupName.replace(c.rename.re, c.rename.replacement)];
  } else {
    candidates = [providerGroupName];
  }
  const targets: string[] = [];
  const seen = new Set<string>();
  for (const name of candidates) {
    const key = foldCase(name);
    if (seen.has(key)) continue;
    seen.add(key);
    const reason = refusal(c, name);
    if (reason === undefined) targets.push(name);
    else excluded.push({ name, reason });
  }
  return { targets, excluded };
}

/** onlyAssign (when not empty) lets the group through and neverAssign does not stop it. */
export function isAssignable(settings: GroupSyncSettings, groupName: string): boolean {
  const c = compiledGroup(settings);
  return (c.only.length === 0 || c.only.some((r) => r.re.test(groupName))) && !c.never.some((r) => r.re.test(groupName));
}

/** Memberships of this group are never removed. */
export function isNeverRemove(settings: GroupSyncSettings, groupName: string): boolean {
  return compiledGroup(settings).neverRemove.some((re) => re.test(groupName));
}

/** The licence-granting entry for a directory group (case-insensitive), if any. */
export function licenceFor(settings: GroupSyncSettings, groupName: string): LicenceGroup | undefined {
  return compiledGroup(settings).licences.get(foldCase(groupName));
}

// ----------------------------------------------------------------------------------- one user, explained

export interface UserPreview {
  inScope: boolean;
  /** why the user is not synced */
  reason?: string;
  user?: DesiredUser;
  /** directory groups the user would be in, and why */
  groups: { name: string; because: string }[];
  /** groups the rules leave out, and why */
  excluded: { name: string; reason: string }[];
}

/**
 * What the rules make of one provider user and its provider groups (the test user search): the directory
 * user, its groups with the reason for each, and what is left out. `isNew`: the directory has no such user
 * yet, so the default groups apply too. Licence seats are counted only by a real run.
 */
export function previewUser(settings: { user: UserSyncSettings; group: GroupSyncSettings }, doc: ScimDoc, providerGroups: string[], isNew: boolean): UserPreview {
  const evaluation = evaluateUser(settings.user, doc);
  if (!evaluation.inScope) return { inScope: false, reason: evaluation.reason, groups: [], excluded: [] };
  const groups = new Map<string, { name: string; because: string }>();
  const excluded: { name: string; reason: string }[] = [];
  const add = (name: string, because: string) => {
    const key = foldCase(name);
    if (!groups.has(key)) groups.set(key, { name, because });
  };
  for (const provider of providerGroups) {
    const t = groupTargets(settings.group, provider);
    for (const name of t.targets) add(name, foldCase(name) === foldCase(provider) ? `member of '${provider}'` : `member of '${provider}', mapped to '${name}'`);
    excluded.push(...t.excluded);
  }
  const ruleGroup = (name: string, because: string) => {
    if (isAssignable(settings.group, name)) add(name, because);
    else excluded.push({ name, reason: `${because}, but onlyAssign/neverAssign leave it out` });
  };
  for (const name of settings.group.alwaysGroups) ruleGroup(name, 'always group');
  if (isNew) for (const name of settings.group.defaultGroups) ruleGroup(name, 'default group for new users');
  return { inScope: true, user: evaluation.desired, groups: [...groups.values()], excluded };
}
