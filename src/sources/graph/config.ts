// Settings of a Microsoft Graph pull connector: the app registration (tenant, client id, secret or
// certificate), the cloud, what to read (the scope), how to name users, and when to run. Pure: the secret
// fields arrive in clear from an administrator and are sealed by the store (see src/sources/registry.ts).

import { X509Certificate, createHash } from 'node:crypto';
import type { SettingsIssue } from '../../domain/settings-validate.ts';
import { SettingsError, fieldReaders, isPemCertificate } from '../../domain/settings-validate.ts';
import type { ScheduleSettings } from '../../domain/schedule.ts';
import { validateSchedule } from '../../domain/schedule.ts';
import type { NationalCloud } from './client.ts';

export type GraphScope = 'directory' | 'application' | 'groups';

export interface GraphSourceSettings {
  tenantId: string;
  clientId: string;
  credential: 'secret' | 'certificate';
  /** sealed at rest */
  clientSecret?: string;
  /** PEM certificate registered on the app (public) */
  certificate?: string;
  /** PEM private key of the certificate; sealed at rest */
  privateKey?: string;
  /** when the secret or certificate expires (a certificate's own date is read from it); for alerts */
  credentialExpiresAt: string | null;
  /** a national cloud, or `custom` with explicit hosts (a proxy, a sovereign cloud not listed) */
  cloud: NationalCloud | 'custom';
  authorityHost: string | null;
  graphUrl: string | null;
  /** custom cloud: the resource tokens are asked for (default https://graph.microsoft.com/.default, as a proxy of the global cloud keeps it) */
  tokenScope: string | null;
  /** extra CA certificates (PEM) to trust, e.g. of a TLS-inspecting proxy */
  caCertificate: string | null;
  /** the whole directory; the users and groups assigned to an enterprise application; these groups */
  scope: GraphScope;
  /** application scope: the application (client) id of the enterprise app; default: this app's */
  applicationId: string | null;
  /** groups scope: group object ids or display names */
  groups: string[];
  /** members of nested groups count as members of the outer group (`flatten`), or only direct members */
  nestedGroups: 'flatten' | 'direct';
  /** the Graph property that becomes the SCIM userName */
  usernameAttribute: string;
  /** more user properties to read, under urn:usersync:…:source:2.0:User for mappings and conditions */
  extraAttributes: string[];
  /** guests (userType Guest, or #EXT# in the userPrincipalName): synced under their e-mail address, or left out */
  guests: 'include' | 'exclude';
  /** all groups, or security groups only */
  groupTypes: 'all' | 'security';
  schedule: ScheduleSettings;
  /** a full read at least this often (hours); delta rounds in between */
  fullSyncHours: number;
  /** requests to Graph in flight at once */
  concurrency: number;
}

export const GRAPH_SECRET_FIELDS = ['clientSecret', 'privateKey'] as const;

/** Properties every run selects (the mapping in map.ts reads them). */
export const BASE_USER_PROPERTIES = [
  'id',
  'userPrincipalName',
  'mail',
  'displayName',
  'givenName',
  'surname',
  'accountEnabled',
  'userType',
  'employeeId',
  'jobTitle',
  'department',
  'companyName',
  'mobilePhone',
  'businessPhones',
  'preferredLanguage',
  'onPremisesSamAccountName',
  'onPremisesImmutableId',
] as const;

export const GROUP_PROPERTIES = ['id', 'displayName', 'description', 'securityEnabled', 'groupTypes', 'mailEnabled'] as const;

const USERNAME_ATTRIBUTES = ['userPrincipalName', 'mail', 'onPremisesSamAccountName', 'employeeId', 'mailNickname', 'onPremisesUserPrincipalName', 'id'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
const PROPERTY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const GRAPH_DEFAULTS: Omit<GraphSourceSettings, 'tenantId' | 'clientId'> = {
  credential: 'secret',
  credentialExpiresAt: null,
  cloud: 'global',
  authorityHost: null,
  graphUrl: null,
  tokenScope: null,
  caCertificate: null,
  scope: 'directory',
  applicationId: null,
  groups: [],
  nestedGroups: 'flatten',
  usernameAttribute: 'userPrincipalName',
  extraAttributes: [],
  guests: 'include',
  groupTypes: 'all',
  schedule: { kind: 'interval', minutes: 15 },
  fullSyncHours: 24,
  concurrency: 4,
};

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Validate settings for a Graph connector. `previous`: the stored settings (sealed secrets kept when the
 * input leaves a secret out). Every problem is reported at once, with its path.
 */
export function validateGraphSource(input: unknown, previous?: GraphSourceSettings): GraphSourceSettings {
  const issues: SettingsIssue[] = [];
  const bad = (path: string, message: string) => issues.push({ path, message });
  if (!isObject(input)) throw new SettingsError([{ path: '', message: 'the source settings must be a JSON object' }]);
  const known = new Set([...Object.keys(GRAPH_DEFAULTS), 'tenantId', 'clientId', 'clientSecret', 'certificate', 'privateKey']);
  for (const k of Object.keys(input)) if (!known.has(k)) bad(k, `unknown setting '${k}'`);
  const merged: Record<string, unknown> = { ...GRAPH_DEFAULTS, ...(previous ?? {}), ...input };

  const { str, oneOf } = fieldReaders(merged, bad);

  const tenantId = str('tenantId', true) ?? '';
  if (tenantId && !GUID.test(tenantId) && !DOMAIN.test(tenantId)) bad('tenantId', 'must be the directory (tenant) id, a GUID, or a domain such as contoso.onmicrosoft.com');
  const clientId = str('clientId', true) ?? '';
  if (clientId && !GUID.test(clientId)) bad('clientId', 'must be the application (client) id, a GUID');

  const credential = oneOf('credential', ['secret', 'certificate'] as const);
  const out: GraphSourceSettings = {
    tenantId,
    clientId,
    credential,
    credentialExpiresAt: null,
    cloud: oneOf('cloud', ['global', 'usgov', 'usgov-dod', 'china', 'custom'] as const),
    authorityHost: null,
    graphUrl: null,
    tokenScope: null,
    caCertificate: null,
    scope: oneOf('scope', ['directory', 'application', 'groups'] as const),
    applicationId: null,
    groups: [],
    nestedGroups: oneOf('nestedGroups', ['flatten', 'direct'] as const),
    usernameAttribute: 'userPrincipalName',
    extraAttributes: [],
    guests: oneOf('guests', ['include', 'exclude'] as const),
    groupTypes: oneOf('groupTypes', ['all', 'security'] as const),
    schedule: GRAPH_DEFAULTS.schedule,
    fullSyncHours: 24,
    concurrency: 4,
  };

  if (credential === 'secret') {
    const secret = str('clientSecret', true);
    if (secret !== undefined) out.clientSecret = secret;
  } else {
    const cert = str('certificate', true);
    const key = str('privateKey', true);
    if (cert !== undefined) {
      try {
        const x = new X509Certificate(cert);
        out.certificate = cert;
        out.credentialExpiresAt = new Date(x.validTo).toISOString();
      } catch {
        bad('certificate', 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)');
      }
    }
    if (key !== undefined) {
      if (!key.startsWith('enc:') && !/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(key)) bad('privateKey', 'must be a PEM private key');
      else out.privateKey = key;
    }
  }
  const expires = merged.credentialExpiresAt;
  if (credential === 'secret' && expires !== undefined && expires !== null) {
    if (typeof expires !== 'string' || Number.isNaN(Date.parse(expires))) bad('credentialExpiresAt', 'must be a date (YYYY-MM-DD or ISO 8601) or null');
    else out.credentialExpiresAt = new Date(expires).toISOString();
  }

  if (out.cloud === 'custom') {
    for (const k of ['authorityHost', 'graphUrl'] as const) {
      const v = str(k, true);
      if (v === undefined) continue;
      if (!/^https:\/\/[^/\s]+(\/[^\s]*)?$/i.test(v)) bad(k, 'must be an https:// URL');
      else out[k] = v.replace(/\/+$/, '');
    }
    const scope = str('tokenScope', false);
    if (scope !== undefined) {
      if (!/^https:\/\/\S+\/\.default$/i.test(scope)) bad('tokenScope', 'must be a resource followed by /.default, e.g. https://graph.microsoft.com/.default');
      else out.tokenScope = scope;
    }
  }
  const ca = str('caCertificate', false);
  if (ca !== undefined) {
    if (isPemCertificate(ca)) out.caCertificate = ca;
    else bad('caCertificate', 'must be a PEM certificate or null');
  }

  const appId = str('applicationId', false);
  if (appId !== undefined) {
    if (!GUID.test(appId)) bad('applicationId', 'must be an application (client) id, a GUID');
    else out.applicationId = appId;
  }
  const groups = merged.groups;
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || g.trim() === '')) bad('groups', 'must be a list of group ids or names');
  else out.groups = [...new Set(groups.map((g: string) => g.trim()))];
  if (out.scope === 'groups' && out.groups.length === 0) bad('groups', "the 'groups' scope needs at least one group");
  if (out.groups.length > 500) bad('groups', 'at most 500 groups');

  const username = str('usernameAttribute', true);
  if (username !== undefined) {
    if (!USERNAME_ATTRIBUTES.includes(username) && !PROPERTY.test(username)) bad('usernameAttribute', `must be a user property such as ${USERNAME_ATTRIBUTES.join(', ')}`);
    else out.usernameAttribute = username;
  }
  const extra = merged.extraAttributes;
  if (!Array.isArray(extra)) bad('extraAttributes', 'must be a list of user property names');
  else {
    extra.forEach((a, i) => {
      if (typeof a !== 'string' || !PROPERTY.test(a)) bad(`extraAttributes[${i}]`, 'must be a user property name (letters, digits, _)');
    });
    if (extra.length > 100) bad('extraAttributes', 'at most 100 extra attributes');
    out.extraAttributes = [...new Set(extra.filter((a): a is string => typeof a === 'string' && PROPERTY.test(a)))];
  }

  try {
    out.schedule = validateSchedule(merged.schedule);
  } catch (e) {
    bad('schedule', (e as Error).message);
  }
  const hours = merged.fullSyncHours;
  if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 1 || hours > 24 * 30) bad('fullSyncHours', 'must be a whole number of hours from 1 to 720');
  else out.fullSyncHours = hours;
  const conc = merged.concurrency;
  if (typeof conc !== 'number' || !Number.isInteger(conc) || conc < 1 || conc > 16) bad('concurrency', 'must be a whole number from 1 to 16');
  else out.concurrency = conc;

  if (issues.length) throw new SettingsError(issues);
  return out;
}

/** The Graph properties to $select for users. */
export function userSelect(s: GraphSourceSettings): string[] {
  const names = new Set<string>(BASE_USER_PROPERTIES);
  if (s.usernameAttribute !== 'id') names.add(s.usernameAttribute);
  for (const a of s.extraAttributes) names.add(a);
  return [...names];
}

/** A key that changes when what a run reads changes: the stored delta links are then of no use. */
export function readKey(s: GraphSourceSettings): string {
  const what = [s.tenantId, s.clientId, s.cloud, s.graphUrl, s.scope, s.applicationId, [...s.groups].sort(), s.nestedGroups, s.usernameAttribute, userSelect(s).sort(), s.guests, s.groupTypes];
  return createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 16);
}

/** The settings as an administrator may see them: secrets are only said to be set. */
export function redactGraphSource(s: GraphSourceSettings): Record<string, unknown> {
  const { clientSecret, privateKey, ...rest } = s;
  return { ...rest, clientSecret: clientSecret ? { set: true } : null, privateKey: privateKey ? { set: true } : null };
}
