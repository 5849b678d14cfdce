// Settings of a target: how to reach the application, what it receives (connectors, groups, users), what
// happens to a user who leaves its scope, and the application's own options. Pure: the secret arrives in
// clear from an administrator and is sealed by the target store.

import type { SettingsIssue } from '../domain/settings-validate.ts';
import { SettingsError, fieldReaders, isPemCertificate } from '../domain/settings-validate.ts';
import type { ScheduleSettings } from '../domain/schedule.ts';
import { validateSchedule } from '../domain/schedule.ts';
import type { GroupScopeMode, TargetSettings } from './defaults.ts';
import { TARGET_SECRET_FIELD, defaultTargetSettings } from './defaults.ts';
import type { TargetKind } from './types.ts';

export type { CleanupPolicy, GroupScopeMode, TargetSettings } from './defaults.ts';
export { TARGET_SECRET_FIELD, defaultTargetSettings } from './defaults.ts';

function isRegexPattern(p: string): boolean {
  return p.length > 2 && p.startsWith('/') && p.endsWith('/');
}

/**
 * Validate settings from an administrator (a whole replacement merged over `previous` or the defaults).
 * The secret is kept from `previous` when left out.
 */
export function validateTargetSettings(kind: TargetKind, input: Record<string, unknown>, previous?: TargetSettings): TargetSettings {
  const issues: SettingsIssue[] = [];
  const bad = (path: string, message: string) => issues.push({ path, message });
  const base = previous ?? defaultTargetSettings(kind);
  const merged: Record<string, unknown> = { ...base, ...input };
  const known = new Set(Object.keys(defaultTargetSettings(kind)).concat(TARGET_SECRET_FIELD));
  for (const k of Object.keys(input)) if (!known.has(k)) bad(k, 'is not a target setting');
  const f = fieldReaders(merged, bad);

  const baseUrl = f.str('baseUrl', true) ?? '';
  if (baseUrl) {
    let url: URL | undefined;
    try {
      url = new URL(baseUrl);
    } catch {
      bad('baseUrl', 'must be a URL such as https://jira.example.com');
    }
    if (url && url.protocol !== 'https:' && url.protocol !== 'http:') bad('baseUrl', 'must be an http or https URL');
    if (url && (url.search || url.hash)) bad('baseUrl', 'must not have a query or fragment');
    if (url && url.username) bad('baseUrl', 'must not carry credentials; use username and secret');
    if (kind === 'atlassian-cloud' && url && !/\/scim\/directory\/[^/]+$/.test(url.pathname.replace(/\/+$/, ''))) {
      bad('baseUrl', 'must be the directory URL, https://api.atlassian.com/scim/directory/<directory id>');
    }
  }
  const authType = f.oneOf('authType', kind === 'atlassian-cloud' ? (['token'] as const) : (['token', 'basic'] as const));
  const username = authType === 'basic' ? (f.str('username', true) ?? null) : null;
  let secret: string | undefined;
  if (merged.secret !== undefined && merged.secret !== null && merged.secret !== '') {
    if (typeof merged.secret !== 'string') bad('secret', 'must be a string');
    else secret = merged.secret;
  }
  if (secret === undefined) bad('secret', authType === 'basic' ? 'the password is required' : 'the token is required');
  const caCertificate = f.str('caCertificate', false) ?? null;
  if (caCertificate && !isPemCertificate(caCertificate)) bad('caCertificate', 'must be a PEM certificate');

  const int = (k: string, min: number, max: number): number => {
    const v = merged[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      bad(k, `must be a whole number from ${min} to ${max}`);
      return min;
    }
    return v;
  };
  const timeoutSeconds = int('timeoutSeconds', 1, 600);
  const retries = int('retries', 0, 10);
  const concurrency = int('concurrency', 1, 64);
  const maxAttempts = int('maxAttempts', 1, 100);

  let connectors: 'all' | string[] = 'all';
  if (merged.connectors !== 'all') {
    if (!Array.isArray(merged.connectors) || merged.connectors.some((c) => typeof c !== 'string' || !c)) bad('connectors', "must be 'all' or a list of connector ids");
    else if (merged.connectors.length === 0) bad('connectors', "must name at least one connector, or be 'all'");
    else connectors = [...new Set(merged.connectors as string[])];
  }

  const groups = { mode: 'all' as GroupScopeMode, patterns: [] as string[] };
  const g = merged.groups;
  if (g === null || typeof g !== 'object' || Array.isArray(g)) bad('groups', "must be {mode: 'all' | 'only' | 'except', patterns: [...]}");
  else {
    const gr = g as Record<string, unknown>;
    if (gr.mode !== 'all' && gr.mode !== 'only' && gr.mode !== 'except') bad('groups.mode', "must be 'all', 'only' or 'except'");
    else groups.mode = gr.mode;
    const patterns = gr.patterns ?? [];
    if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== 'string' || !p.trim())) bad('groups.patterns', 'must be a list of group names or /regular expressions/');
    else {
      groups.patterns = (patterns as string[]).map((p) => p.trim());
      for (const [i, p] of groups.patterns.entries()) {
        if (!isRegexPattern(p)) continue;
        try {
          new RegExp(p.slice(1, -1), 'iu');
        } catch (e) {
          bad(`groups.patterns.${i}`, `is not a valid regular expression: ${(e as Error).message}`);
        }
      }
      if (groups.mode !== 'all' && groups.patterns.length === 0) bad('groups.patterns', `'${groups.mode}' needs at least one group name or pattern`);
    }
  }
  const users = f.oneOf('users', ['all', 'group-members'] as const);
  const bool = (k: string): boolean => {
    if (typeof merged[k] !== 'boolean') bad(k, 'must be true or false');
    return merged[k] === true;
  };
  const localUsers = bool('localUsers');
  const cleanup = f.oneOf('cleanup', ['deactivate', 'delete', 'remove-groups', 'none'] as const);
  const adoptExistingGroups = bool('adoptExistingGroups');
  const bitbucketInactive = f.oneOf('bitbucketInactive', ['remove-groups', 'delete'] as const);
  const names = (k: string): string[] => {
    const v = merged[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x.trim())) {
      bad(k, 'must be a list of names');
      return [];
    }
    return [...new Set((v as string[]).map((x) => x.trim()))];
  };
  const licenceGroups = names('licenceGroups');
  const defaultProjectLead = f.str('defaultProjectLead', false) ?? null;
  const defaultComponentLead = f.str('defaultComponentLead', false) ?? null;
  const verifiedDomains = names('verifiedDomains').map((d) => d.toLowerCase().replace(/^@/, ''));
  for (const [i, d] of verifiedDomains.entries()) if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d)) bad(`verifiedDomains.${i}`, `'${d}' is not a domain name`);
  if (kind === 'atlassian-cloud' && verifiedDomains.length === 0) bad('verifiedDomains', "list the organisation's verified domains (Atlassian refuses users of other domains)");
  let comparisonSchedule: ScheduleSettings = { kind: 'off' };
  try {
    comparisonSchedule = validateSchedule(merged.comparisonSchedule);
  } catch (e) {
    bad('comparisonSchedule', (e as Error).message);
  }
  const comparisonFix = bool('comparisonFix');

  if (issues.length) throw new SettingsError(issues);
  return {
    baseUrl: baseUrl.replace(/\/+$/, ''),
    authType,
    username,
    ...(secret !== undefined ? { secret } : {}),
    caCertificate,
    timeoutSeconds,
    retries,
    concurrency,
    maxAttempts,
    connectors,
    groups,
    users,
    localUsers,
    cleanup,
    adoptExistingGroups,
    bitbucketInactive,
    licenceGroups,
    defaultProjectLead,
    defaultComponentLead,
    verifiedDomains,
    comparisonSchedule,
    comparisonFix,
  };
}

/** Settings as the admin API shows them: the secret only said to be set. */
export function redactTargetSettings(s: TargetSettings): Record<string, unknown> {
  const { secret, ...rest } = s;
  return { ...rest, secret: { set: secret !== undefined } };
}
