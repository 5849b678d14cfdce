// Graph users and groups as SCIM documents for the mirror (pure). The mirror id is the Graph object id,
// which never changes; the userName comes from the property the administrator chose. Properties SCIM has
// no name for go under the source extension, by their Graph names, so that rules can read them.

import type { ScimDoc } from '../../domain/scim/resource.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, SOURCE_USER_SCHEMA, USER_SCHEMA } from '../../domain/scim/schema.ts';
import type { GraphSourceSettings } from './config.ts';

export type GraphObject = Record<string, unknown> & { id: string };

export type UserMapping = { doc: ScimDoc } | { skip: 'guest' | 'no-username'; reason: string };

const MAX_KEY = 1024;

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** A guest's userPrincipalName is `alice_fabrikam.com#EXT#@contoso.onmicrosoft.com`: alice@fabrikam.com. */
export function externalAddress(upn: string): string | undefined {
  const m = /^(.+)#EXT#@/i.exec(upn);
  if (!m) return undefined;
  const local = m[1]!;
  const at = local.lastIndexOf('_');
  return at > 0 ? `${local.slice(0, at)}@${local.slice(at + 1)}` : undefined;
}

export function isGuest(u: GraphObject): boolean {
  return u.userType === 'Guest' || (typeof u.userPrincipalName === 'string' && /#EXT#@/i.test(u.userPrincipalName));
}

export function mapUser(u: GraphObject, s: GraphSourceSettings): UserMapping {
  const guest = isGuest(u);
  if (guest && s.guests === 'exclude') return { skip: 'guest', reason: 'guests are left out' };
  let userName = s.usernameAttribute === 'id' ? u.id : text(u[s.usernameAttribute]);
  // A guest's own address, not the #EXT# name the tenant gave it.
  if (guest && userName !== undefined && /#EXT#@/i.test(userName)) userName = text(u.mail) ?? externalAddress(userName);
  if (userName === undefined || userName.length > MAX_KEY) {
    return { skip: 'no-username', reason: `no usable ${s.usernameAttribute}` };
  }
  const doc: ScimDoc = { schemas: [USER_SCHEMA], userName };
  const given = text(u.givenName);
  const family = text(u.surname);
  if (given !== undefined || family !== undefined) doc.name = { ...(given !== undefined ? { givenName: given } : {}), ...(family !== undefined ? { familyName: family } : {}) };
  const displayName = text(u.displayName);
  if (displayName !== undefined) doc.displayName = displayName;
  const title = text(u.jobTitle);
  if (title !== undefined) doc.title = title;
  const language = text(u.preferredLanguage);
  if (language !== undefined) doc.preferredLanguage = language;
  const mail = text(u.mail);
  if (mail !== undefined) doc.emails = [{ value: mail, type: 'work', primary: true }];
  const phones: Record<string, unknown>[] = [];
  const mobile = text(u.mobilePhone);
  if (mobile !== undefined) phones.push({ value: mobile, type: 'mobile' });
  const business = Array.isArray(u.businessPhones) ? text(u.businessPhones[0]) : undefined;
  if (business !== undefined) phones.push({ value: business, type: 'work' });
  if (phones.length) doc.phoneNumbers = phones;
  // An account Graph did not say is disabled is active (accountEnabled is always selected).
  doc.active = u.accountEnabled !== false;
  const enterprise: Record<string, unknown> = {};
  const employeeId = text(u.employeeId);
  if (employeeId !== undefined) enterprise.employeeNumber = employeeId;
  const department = text(u.department);
  if (department !== undefined) enterprise.department = department;
  const company = text(u.companyName);
  if (company !== undefined) enterprise.organization = company;
  if (Object.keys(enterprise).length) {
    doc[ENTERPRISE_USER_SCHEMA] = enterprise;
    (doc.schemas as string[]).push(ENTERPRISE_USER_SCHEMA);
  }
  const source: Record<string, unknown> = {};
  for (const name of ['userPrincipalName', 'userType', 'onPremisesSamAccountName', 'onPremisesImmutableId', ...s.extraAttributes]) {
    const v = u[name];
    const value = Array.isArray(v) ? (v.map(text).filter((x) => x !== undefined) as string[]).join(',') || undefined : text(v);
    if (value !== undefined) source[name] = value;
  }
  if (Object.keys(source).length) {
    doc[SOURCE_USER_SCHEMA] = source;
    (doc.schemas as string[]).push(SOURCE_USER_SCHEMA);
  }
  return { doc };
}

export function groupIncluded(g: GraphObject, s: GraphSourceSettings): boolean {
  return s.groupTypes === 'all' || g.securityEnabled === true;
}

export function mapGroup(g: GraphObject): ScimDoc | undefined {
  const displayName = text(g.displayName);
  if (displayName === undefined || displayName.length > MAX_KEY) return undefined;
  return { schemas: [GROUP_SCHEMA], displayName };
}

/** `@odata.type` of a directory object, without the namespace: user, group, device, … */
export function objectType(o: Record<string, unknown>): string {
  const t = o['@odata.type'];
  return typeof t === 'string' ? t.replace(/^#?microsoft\.graph\./, '') : '';
}
