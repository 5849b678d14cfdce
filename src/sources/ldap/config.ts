// Settings of an LDAP / Active Directory pull connector: where the server is and how to reach it safely,
// where users and groups live, which attributes mean what, how memberships, nesting, disabled accounts
// and changes are read, and when to run. Two presets fill the attribute names and filters that Active
// Directory and OpenLDAP use; every one can be overridden. Pure: the bind password arrives in clear and
// is sealed by the store (src/sources/registry.ts).

import { createHash } from 'node:crypto';
import { FilterParser } from 'ldapts';
import type { SettingsIssue } from '../../domain/settings-validate.ts';
import { SettingsError, fieldReaders, isPemCertificate } from '../../domain/settings-validate.ts';
import type { ScheduleSettings } from '../../domain/schedule.ts';
import { validateSchedule } from '../../domain/schedule.ts';
import type { DisabledRule, LdapAttributeNames, LdapPreset } from './presets.ts';
import { AD_ATTRIBUTES, LDAP_PRESETS } from './presets.ts';

export type { DisabledRule, LdapAttributeNames, LdapPreset } from './presets.ts';
export { AD_ATTRIBUTES, OPENLDAP_ATTRIBUTES } from './presets.ts';

export interface LdapSourceSettings {
  preset: LdapPreset;
  /** ldap://host[:port] or ldaps://host[:port] */
  url: string;
  /** more servers of the same directory (other domain controllers), tried in order when the URL cannot be reached */
  failoverUrls: string[];
  /** ldap:// upgraded with StartTLS before binding */
  startTls: boolean;
  /** PEM CA certificate(s) to trust for ldaps:// and StartTLS; the system's when null */
  caCertificate: string | null;
  /** the name the server's certificate must carry, when it differs from the URL's host */
  tlsServerName: string | null;
  bindDn: string;
  /** sealed at rest */
  bindPassword?: string;
  baseDn: string;
  /** where users are searched; the base DN when null */
  userBaseDn: string | null;
  userFilter: string;
  groupBaseDn: string | null;
  groupFilter: string;
  /** a subtree, or only the entries right under the base */
  searchScope: 'sub' | 'one';
  attributes: LdapAttributeNames;
  /** more user attributes, under urn:usersync:…:source:2.0:User for mappings and conditions */
  extraAttributes: string[];
  /** memberships from the group's member list, or from the user's memberOf */
  membership: 'member' | 'memberOf';
  /** members of nested groups count as members of the outer group (`flatten`), or only direct members */
  nestedGroups: 'flatten' | 'direct';
  /** how nested groups are flattened: AD's in-chain matching rule, or by walking the groups read */
  nestedMethod: 'inChain' | 'client';
  /** how a disabled account is recognised; null: every account is active */
  disabled: DisabledRule | null;
  /** how changes are found between full reads: AD's uSNChanged, modifyTimestamp, or none (every run reads everything) */
  changeTracking: 'usn' | 'modifyTimestamp' | 'none';
  /** entries per page (RFC 2696); AD allows up to 1000 by default */
  pageSize: number;
  /** values per slice when asking for large member lists (AD range retrieval); null: as the server sends them */
  rangeSize: number | null;
  timeoutSeconds: number;
  connectTimeoutSeconds: number;
  schedule: ScheduleSettings;
  /** a full read at least this often (hours), which also finds deleted entries */
  fullSyncHours: number;
  /** searches in flight at once (reading groups again, in-chain queries) */
  concurrency: number;
}

export const LDAP_SECRET_FIELDS = ['bindPassword'] as const;

type PresetFields = Pick<LdapSourceSettings, 'userFilter' | 'groupFilter' | 'attributes' | 'nestedMethod' | 'disabled' | 'changeTracking' | 'pageSize' | 'rangeSize'>;

/** The Active Directory and OpenLDAP presets (presets.ts), as the settings they fill in. */
export const PRESETS: Record<LdapPreset, PresetFields> = LDAP_PRESETS;

const COMMON_DEFAULTS = {
  failoverUrls: [] as string[],
  startTls: false,
  caCertificate: null,
  tlsServerName: null,
  userBaseDn: null,
  groupBaseDn: null,
  searchScope: 'sub' as const,
  extraAttributes: [] as string[],
  membership: 'member' as const,
  nestedGroups: 'flatten' as const,
  timeoutSeconds: 60,
  connectTimeoutSeconds: 10,
  schedule: { kind: 'interval', minutes: 15 } as ScheduleSettings,
  fullSyncHours: 24,
  concurrency: 4,
};

/** An attribute description: a name or OID, with options (`member;range=…` is not one users give). */
const ATTRIBUTE = /^([A-Za-z][A-Za-z0-9-]{0,127}|[0-9]+(\.[0-9]+)+)$/;
/** One RDN or more, attribute=value, separated by commas; values may hold escaped characters. */
const DN = /^\s*[A-Za-z0-9.-]+\s*=\s*(?:[^,\\]|\\.)+(?:\s*,\s*[A-Za-z0-9.-]+\s*=\s*(?:[^,\\]|\\.)+)*\s*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkFilter(filter: string): string | undefined {
  if (!/^\(.*\)$/s.test(filter.trim())) return 'must be an LDAP filter in parentheses, e.g. (objectClass=person)';
  // values escape parentheses (\28, \29), so the bare ones must balance; the parser lets a missing one pass
  let depth = 0;
  for (const c of filter) {
    depth += c === '(' ? 1 : c === ')' ? -1 : 0;
    if (depth < 0) break;
  }
  if (depth !== 0) return 'is not a valid LDAP filter: its parentheses do not balance';
  try {
    FilterParser.parseString(filter.trim());
    return undefined;
  } catch (e) {
    return `is not a valid LDAP filter: ${(e as Error).message}`;
  }
}

/**
 * Validate settings for an LDAP connector. `previous`: the stored settings (a sealed password kept when the
 * input leaves it out); a change of preset starts its attribute names and filters from the new preset.
 * Every problem is reported at once, with its path.
 */
export function validateLdapSource(input: unknown, previous?: LdapSourceSettings): LdapSourceSettings {
  const issues: SettingsIssue[] = [];
  const bad = (path: string, message: string) => issues.push({ path, message });
  if (!isObject(input)) throw new SettingsError([{ path: '', message: 'the source settings must be a JSON object' }]);
  const presetInput = input.preset ?? previous?.preset ?? 'activeDirectory';
  let preset: LdapPreset = 'activeDirectory';
  if (presetInput !== 'activeDirectory' && presetInput !== 'openldap') bad('preset', "must be 'activeDirectory' or 'openldap'");
  else preset = presetInput;
  const keep: Partial<LdapSourceSettings> | undefined =
    previous && previous.preset === preset ? previous : previous ? { bindPassword: previous.bindPassword, bindDn: previous.bindDn, url: previous.url, baseDn: previous.baseDn } : undefined;

  const known = new Set([...Object.keys(COMMON_DEFAULTS), ...Object.keys(PRESETS.openldap), 'preset', 'url', 'bindDn', 'bindPassword', 'baseDn']);
  for (const k of Object.keys(input)) if (!known.has(k)) bad(k, `unknown setting '${k}'`);
  const merged: Record<string, unknown> = { ...COMMON_DEFAULTS, ...PRESETS[preset], ...(keep ?? {}), ...input };

  const { str, oneOf } = fieldReaders(merged, bad);
  const whole = (k: string, min: number, max: number, fallback: number): number => {
    const v = merged[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      bad(k, `must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return v;
  };
  const dn = (k: string, required: boolean): string | null => {
    const v = str(k, required);
    if (v === undefined) return null;
    if (!DN.test(v)) {
      bad(k, 'must be a distinguished name such as OU=People,DC=example,DC=com');
      return null;
    }
    return v;
  };

  const ldapUrl = (path: string, value: string) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch {
      /* reported below */
    }
    if (!parsed || !['ldap:', 'ldaps:'].includes(parsed.protocol) || !parsed.hostname || (parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search) {
      bad(path, 'must be ldap://host[:port] or ldaps://host[:port]');
    }
  };
  const url = str('url', true) ?? '';
  if (url) ldapUrl('url', url);
  const failover = merged.failoverUrls;
  let failoverUrls: string[] = [];
  if (!Array.isArray(failover) || failover.some((u) => typeof u !== 'string')) bad('failoverUrls', 'must be a list of ldap:// or ldaps:// URLs');
  else {
    failover.forEach((u: string, i) => ldapUrl(`failoverUrls[${i}]`, u.trim()));
    if (failover.length > 10) bad('failoverUrls', 'at most 10 failover URLs');
    failoverUrls = failover.map((u: string) => u.trim().replace(/\/+$/, ''));
  }
  const out: LdapSourceSettings = {
    preset,
    url: url.replace(/\/+$/, ''),
    failoverUrls,
    startTls: merged.startTls === true,
    caCertificate: null,
    tlsServerName: null,
    bindDn: '',
    baseDn: '',
    userBaseDn: null,
    userFilter: PRESETS[preset].userFilter,
    groupBaseDn: null,
    groupFilter: PRESETS[preset].groupFilter,
    searchScope: oneOf('searchScope', ['sub', 'one'] as const),
    attributes: { ...PRESETS[preset].attributes },
    extraAttributes: [],
    membership: oneOf('membership', ['member', 'memberOf'] as const),
    nestedGroups: oneOf('nestedGroups', ['flatten', 'direct'] as const),
    nestedMethod: oneOf('nestedMethod', ['inChain', 'client'] as const),
    disabled: PRESETS[preset].disabled,
    changeTracking: oneOf('changeTracking', ['usn', 'modifyTimestamp', 'none'] as const),
    pageSize: whole('pageSize', 10, 5000, 500),
    rangeSize: null,
    timeoutSeconds: whole('timeoutSeconds', 1, 3600, 60),
    connectTimeoutSeconds: whole('connectTimeoutSeconds', 1, 300, 10),
    schedule: COMMON_DEFAULTS.schedule,
    fullSyncHours: whole('fullSyncHours', 1, 24 * 30, 24),
    concurrency: whole('concurrency', 1, 16, 4),
  };
  if (typeof merged.startTls !== 'boolean') bad('startTls', 'must be true or false');
  if (out.startTls && [url, ...failoverUrls].some((u) => u.startsWith('ldaps:'))) bad('startTls', 'StartTLS upgrades an ldap:// connection; an ldaps:// URL is encrypted already');

  const ca = str('caCertificate', false);
  if (ca !== undefined) {
    if (isPemCertificate(ca)) out.caCertificate = ca;
    else bad('caCertificate', 'must be a PEM certificate (-----BEGIN CERTIFICATE-----) or null');
  }
  const servername = str('tlsServerName', false);
  if (servername !== undefined) {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(servername)) bad('tlsServerName', 'must be a host name');
    else out.tlsServerName = servername;
  }

  // An anonymous bind is refused on purpose: a sync account should be named, and its reads audited.
  out.bindDn = str('bindDn', true) ?? '';
  if (out.bindDn && !DN.test(out.bindDn) && !/^[^@\s]+@[^@\s]+$/.test(out.bindDn) && !/^[^\\\s]+\\[^\\\s]+$/.test(out.bindDn)) {
    bad('bindDn', 'must be a distinguished name, user@domain or DOMAIN\\user');
  }
  const password = str('bindPassword', true);
  if (password !== undefined) out.bindPassword = password;

  out.baseDn = dn('baseDn', true) ?? '';
  out.userBaseDn = dn('userBaseDn', false);
  out.groupBaseDn = dn('groupBaseDn', false);
  for (const k of ['userFilter', 'groupFilter'] as const) {
    const f = str(k, true);
    if (f === undefined) continue;
    const problem = checkFilter(f);
    if (problem) bad(k, problem);
    else out[k] = f;
  }

  const attrs = merged.attributes;
  if (!isObject(attrs)) bad('attributes', 'must be an object of attribute names');
  else {
    const base: Record<string, unknown> = { ...PRESETS[preset].attributes, ...(keep?.attributes ?? {}), ...attrs };
    for (const k of Object.keys(attrs)) if (!(k in AD_ATTRIBUTES)) bad(`attributes.${k}`, `unknown attribute role '${k}'`);
    for (const k of Object.keys(AD_ATTRIBUTES) as (keyof LdapAttributeNames)[]) {
      const v = base[k];
      if (typeof v !== 'string' || !ATTRIBUTE.test(v)) bad(`attributes.${k}`, 'must be an attribute name (letters, digits, -) or OID');
      else out.attributes[k] = v;
    }
  }
  const extra = merged.extraAttributes;
  if (!Array.isArray(extra)) bad('extraAttributes', 'must be a list of attribute names');
  else {
    extra.forEach((a, i) => {
      if (typeof a !== 'string' || !ATTRIBUTE.test(a)) bad(`extraAttributes[${i}]`, 'must be an attribute name (letters, digits, -) or OID');
    });
    if (extra.length > 100) bad('extraAttributes', 'at most 100 extra attributes');
    out.extraAttributes = [...new Set(extra.filter((a): a is string => typeof a === 'string' && ATTRIBUTE.test(a)))];
  }

  const disabled = merged.disabled;
  if (disabled === null) out.disabled = null;
  else if (!isObject(disabled)) bad('disabled', 'must be {attribute, match, value} or null');
  else {
    const attribute = disabled.attribute;
    const match = disabled.match;
    const value = disabled.value ?? null;
    if (typeof attribute !== 'string' || !ATTRIBUTE.test(attribute)) bad('disabled.attribute', 'must be an attribute name');
    else if (match !== 'bit' && match !== 'present' && match !== 'equals') bad('disabled.match', "must be 'bit', 'present' or 'equals'");
    else if (match === 'bit' && (typeof value !== 'string' || !/^[1-9][0-9]{0,9}$/.test(value))) bad('disabled.value', "'bit' needs the bit mask as a number, e.g. '2'");
    else if (match === 'equals' && (typeof value !== 'string' || value === '')) bad('disabled.value', "'equals' needs the value that means disabled, e.g. 'TRUE'");
    else out.disabled = { attribute, match, value: match === 'present' ? null : (value as string) };
  }

  const range = merged.rangeSize;
  if (range !== null && (typeof range !== 'number' || !Number.isInteger(range) || range < 10 || range > 100_000)) bad('rangeSize', 'must be a whole number from 10 to 100000, or null');
  else out.rangeSize = range;
  if (out.changeTracking === 'usn' && preset !== 'activeDirectory') bad('changeTracking', "'usn' (uSNChanged) is Active Directory's; use 'modifyTimestamp' for other servers");
  if (out.nestedMethod === 'inChain' && preset !== 'activeDirectory') bad('nestedMethod', "'inChain' is Active Directory's matching rule; other servers ignore it: use 'client'");

  try {
    out.schedule = validateSchedule(merged.schedule);
  } catch (e) {
    bad('schedule', (e as Error).message);
  }
  if (issues.length) throw new SettingsError(issues);
  return out;
}

/** The user attributes every read asks for. */
export function userAttributes(s: LdapSourceSettings): string[] {
  const a = s.attributes;
  const names = new Set([a.id, a.username, a.email, a.displayName, a.givenName, a.familyName, a.employeeNumber, a.title, a.department, 'cn', 'telephoneNumber', 'mobile', 'preferredLanguage', 'userPrincipalName', ...s.extraAttributes]);
  if (s.disabled) names.add(s.disabled.attribute);
  if (s.membership === 'memberOf') names.add(a.memberOf);
  return [...names];
}

export function groupAttributes(s: LdapSourceSettings): string[] {
  const a = s.attributes;
  const names = new Set([a.id, a.groupName, 'description']);
  names.add(s.membership === 'member' ? a.member : a.memberOf);
  return [...names];
}

/** A key that changes when what a run reads changes: the stored change marker is then of no use. */
export function readKey(s: LdapSourceSettings): string {
  const what = [s.url, s.baseDn, s.userBaseDn, s.userFilter, s.groupBaseDn, s.groupFilter, s.searchScope, s.attributes, [...s.extraAttributes].sort(), s.membership, s.nestedGroups, s.nestedMethod, s.disabled, s.changeTracking];
  return createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 16);
}

/** The settings as an administrator may see them: the password is only said to be set. */
export function redactLdapSource(s: LdapSourceSettings): Record<string, unknown> {
  const { bindPassword, ...rest } = s;
  return { ...rest, bindPassword: bindPassword ? { set: true } : null };
}
