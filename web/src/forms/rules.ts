// What the page can check and show of the rules without asking the service: the group-name matching of
// src/domain/rules.ts (whole name, case-insensitive), and the checks of src/domain/settings-validate.ts
// that need no parser (regular expressions, names). The service checks everything again when saving.

import type { ConnectorSettings, GroupSyncSettings, SettingsIssue, Transform } from '../api.ts';

export const MAX_GROUP_NAME_LENGTH = 255;
const REGEX_FLAGS = 'dgimsuvy';

/** As wholeNameRegex in src/domain/rules.ts: the pattern must match the whole name, case-insensitively. */
export function wholeNameRegex(pattern: string): RegExp {
  new RegExp(pattern, 'i'); // on its own first: wrapping could balance a stray parenthesis
  return new RegExp(`^(?:${pattern})$`, 'i');
}

/** The problem with a group-name pattern, or undefined. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'a pattern cannot be empty';
  try {
    wholeNameRegex(pattern);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

const fold = (s: string) => s.toLowerCase();

export interface GroupOutcome {
  /** the provider group's name */
  name: string;
  /** directory groups it feeds */
  targets: string[];
  /** names left out, and why */
  excluded: { name: string; reason: string }[];
  /** directory groups whose memberships are never removed */
  neverRemove: string[];
}

function safe(pattern: string): RegExp | undefined {
  try {
    return wholeNameRegex(pattern);
  } catch {
    return undefined;
  }
}

/** What the group settings do with one provider group (groupTargets in src/domain/rules.ts). */
export function groupOutcome(settings: GroupSyncSettings, providerGroupName: string): GroupOutcome {
  const excluded: { name: string; reason: string }[] = [];
  let candidates: string[];
  if (settings.mode === 'manual') {
    candidates = settings.manualMappings.filter((m) => fold(m.source) === fold(providerGroupName)).flatMap((m) => m.targets);
    if (candidates.length === 0) excluded.push({ name: providerGroupName, reason: 'no manual mapping for this group' });
  } else {
    const rename = settings.rename ? safe(settings.rename.pattern) : undefined;
    candidates = [rename && settings.rename && rename.test(providerGroupName) ? providerGroupName.replace(rename, settings.rename.replacement) : providerGroupName];
  }
  const only = settings.onlyAssign.map((p) => ({ p, re: safe(p) }));
  const never = settings.neverAssign.map((p) => ({ p, re: safe(p) }));
  const targets: string[] = [];
  const seen = new Set<string>();
  for (const name of candidates) {
    if (seen.has(fold(name))) continue;
    seen.add(fold(name));
    let reason: string | undefined;
    if (name.trim() === '') reason = 'empty group name';
    else if (name.length > MAX_GROUP_NAME_LENGTH) reason = `group name longer than ${MAX_GROUP_NAME_LENGTH} characters`;
    else if (only.length > 0 && !only.some((r) => r.re?.test(name))) reason = 'matches no "only assign" pattern';
    else {
      const n = never.find((r) => r.re?.test(name));
      if (n) reason = `matches "never assign" pattern '${n.p}'`;
    }
    if (reason === undefined) targets.push(name);
    else excluded.push({ name, reason });
  }
  const keep = settings.neverRemove.map(safe).filter((r): r is RegExp => !!r);
  return { name: providerGroupName, targets, excluded, neverRemove: targets.filter((t) => keep.some((r) => r.test(t))) };
}

// ------------------------------------------------------------------------------------------- checks

const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

function transformIssues(transforms: Transform[] | undefined, path: string, out: SettingsIssue[]): void {
  (transforms ?? []).forEach((t, i) => {
    const p = `${path}.transforms[${i}]`;
    if (t.fn === 'regexReplace') {
      const flags = t.flags ?? '';
      const bad = [...flags].findIndex((f, j) => !REGEX_FLAGS.includes(f) || flags.indexOf(f) !== j);
      if (bad >= 0) out.push({ path: `${p}.flags`, message: `flag '${flags[bad]}' is unknown or repeated; flags are any of '${REGEX_FLAGS}'`, position: bad });
      else {
        try {
          new RegExp(t.pattern, flags);
        } catch (e) {
          out.push({ path: `${p}.pattern`, message: (e as Error).message });
        }
      }
    }
    if (t.fn === 'firstNonEmpty' && t.sources.length === 0) out.push({ path: `${p}.sources`, message: 'needs at least one source' });
  });
}

/** The problems the page can see by itself, with the paths the service uses. */
export function localIssues(s: ConnectorSettings): SettingsIssue[] {
  const out: SettingsIssue[] = [];
  for (const k of ['username', 'email', 'displayName'] as const) transformIssues(s.user[k].transforms, `user.${k}`, out);
  const names = new Map<string, number>();
  s.user.customAttributes.forEach((a, i) => {
    const p = `user.customAttributes[${i}]`;
    if (a.name.trim() === '') out.push({ path: `${p}.name`, message: 'a custom attribute needs a name' });
    else if (!ATTRIBUTE_NAME.test(a.name)) out.push({ path: `${p}.name`, message: "a custom attribute name starts with a letter and holds only letters, digits, '_', '.' and '-'" });
    else if (names.has(a.name.toLowerCase())) out.push({ path: `${p}.name`, message: `'${a.name}' is already the name of user.customAttributes[${names.get(a.name.toLowerCase())}] (names are case-insensitive)` });
    else names.set(a.name.toLowerCase(), i);
    transformIssues(a.mapping.transforms, `${p}.mapping`, out);
  });
  const g = s.group;
  const groupNames = (list: string[], path: string) =>
    list.forEach((n, i) => {
      if (n.trim() === '') out.push({ path: `${path}[${i}]`, message: 'a group name cannot be empty' });
      else if (n.length > MAX_GROUP_NAME_LENGTH) out.push({ path: `${path}[${i}]`, message: `a group name is at most ${MAX_GROUP_NAME_LENGTH} characters (this one has ${n.length})` });
    });
  groupNames(g.defaultGroups, 'group.defaultGroups');
  groupNames(g.alwaysGroups, 'group.alwaysGroups');
  for (const k of ['onlyAssign', 'neverAssign', 'neverRemove'] as const) {
    g[k].forEach((p, i) => {
      const problem = patternProblem(p);
      if (problem) out.push({ path: `group.${k}[${i}]`, message: problem });
    });
  }
  if (g.rename) {
    const problem = patternProblem(g.rename.pattern);
    if (problem) out.push({ path: 'group.rename.pattern', message: problem });
  }
  g.manualMappings.forEach((m, i) => {
    if (m.source.trim() === '') out.push({ path: `group.manualMappings[${i}].source`, message: 'a group name cannot be empty' });
    if (m.targets.length === 0) out.push({ path: `group.manualMappings[${i}].targets`, message: 'a manual mapping needs at least one target group' });
  });
  const licensed = new Set<string>();
  g.licences.forEach((l, i) => {
    if (l.group.trim() === '') out.push({ path: `group.licences[${i}].group`, message: 'a group name cannot be empty' });
    else if (licensed.has(l.group.toLowerCase())) out.push({ path: `group.licences[${i}].group`, message: `'${l.group}' already has a seat limit` });
    licensed.add(l.group.toLowerCase());
    if (!Number.isSafeInteger(l.seats) || l.seats < 0) out.push({ path: `group.licences[${i}].seats`, message: 'seats must be a whole number of 0 or more' });
  });
  const { count, percent } = s.safety.deletionLimit;
  if (count !== null && (!Number.isSafeInteger(count) || count < 0)) out.push({ path: 'safety.deletionLimit.count', message: 'must be a whole number of 0 or more, or empty for no limit' });
  if (percent !== null && (!Number.isFinite(percent) || percent < 0 || percent > 100)) out.push({ path: 'safety.deletionLimit.percent', message: 'must be a number from 0 to 100, or empty for no limit' });
  return out;
}
