// LDAP entries as SCIM documents for the mirror (pure). The mirror id is the entry's immutable id
// (objectGUID in its canonical string form, entryUUID), so a renamed or moved entry stays the same record.
// Attribute names are matched case-insensitively, as LDAP does. Attributes SCIM has no name for go under
// the source extension, by their LDAP names, so that rules can read them.

import type { ScimDoc } from '../../domain/scim/resource.ts';
import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, SOURCE_USER_SCHEMA, USER_SCHEMA } from '../../domain/scim/schema.ts';
import type { DisabledRule, LdapSourceSettings } from './config.ts';

/** An entry's attributes by lower-case name, every value as text (binary ids converted). */
export interface LdapEntry {
  dn: string;
  values: Map<string, string[]>;
}

export type UserMapping = { id: string; doc: ScimDoc } | { skip: 'no-id' | 'no-username'; reason: string };

const MAX_KEY = 1024;
const BINARY_IDS = new Set(['objectguid', 'ms-ds-consistencyguid', 'invocationid']);
/** attributes whose values are always asked for as bytes, as AD spells them */
export const BINARY_ATTRIBUTES = ['objectGUID', 'objectSid', 'invocationId', 'mS-DS-ConsistencyGuid'];

export function isBinaryId(name: string): boolean {
  return BINARY_IDS.has(name.toLowerCase());
}

/** AD objectGUID bytes (mixed-endian: the first three fields little-endian) → the canonical string. */
export function guidToString(b: Buffer): string {
  if (b.length !== 16) return b.toString('hex');
  const hex = (idx: number[]) => idx.map((i) => b[i]!.toString(16).padStart(2, '0')).join('');
  return [hex([3, 2, 1, 0]), hex([5, 4]), hex([7, 6]), hex([8, 9]), hex([10, 11, 12, 13, 14, 15])].join('-');
}

/** A binary SID → S-1-5-21-… */
export function sidToString(b: Buffer): string {
  if (b.length < 8) return b.toString('hex');
  const count = b[1]!;
  const authority = b.readUIntBE(2, 6);
  const subs: number[] = [];
  for (let i = 0; i < count && 8 + i * 4 + 4 <= b.length; i++) subs.push(b.readUInt32LE(8 + i * 4));
  return `S-${b[0]}-${authority}${subs.map((s) => `-${s}`).join('')}`;
}

/**
 * The comparison key of a DN: LDAP compares attribute types and (for the usual string syntaxes) values
 * without regard to case, and ignores spaces around separators. Both sides of every comparison go
 * through this, so the few DNs it cannot normalise (hex-escaped values) still compare consistently.
 */
export function dnKey(dn: string): string {
  return dn.toLowerCase().replace(/\s*([,=+])\s*/g, '$1').trim();
}

function valueText(name: string, v: string | Buffer): string {
  if (typeof v === 'string') return v;
  const lower = name.toLowerCase();
  if (BINARY_IDS.has(lower)) return guidToString(v);
  if (lower === 'objectsid') return sidToString(v);
  return v.toString('base64');
}

/** Convert an ldapts entry (string or Buffer values, ranged member keys as sent) to text values by lower-case name. */
export function toEntry(raw: Record<string, unknown> & { dn: string }): LdapEntry {
  const values = new Map<string, string[]>();
  for (const [name, v] of Object.entries(raw)) {
    if (name === 'dn' || name === 'controls') continue;
    const list = Array.isArray(v) ? (v as (string | Buffer)[]) : [v as string | Buffer];
    const key = name.toLowerCase();
    const text = list.map((x) => valueText(name, x));
    const before = values.get(key);
    values.set(key, before ? before.concat(text) : text);
  }
  return { dn: raw.dn, values };
}

/** The entry as an administrator reads it (test user search): server spellings, binary values converted. */
export function displayEntry(raw: Record<string, unknown> & { dn: string }): { dn: string; attributes: Record<string, string[]> } {
  const attributes: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(raw)) {
    if (name === 'dn' || name === 'controls') continue;
    const list = Array.isArray(v) ? (v as (string | Buffer)[]) : [v as string | Buffer];
    if (list.length) attributes[name] = list.map((x) => valueText(name, x));
  }
  return { dn: raw.dn, attributes };
}

export function first(e: LdapEntry, name: string): string | undefined {
  const v = e.values.get(name.toLowerCase())?.[0];
  return v === undefined || v.trim() === '' ? undefined : v;
}

export function all(e: LdapEntry, name: string): string[] {
  return e.values.get(name.toLowerCase()) ?? [];
}

export function isDisabled(e: LdapEntry, rule: DisabledRule | null): boolean {
  if (!rule) return false;
  const values = all(e, rule.attribute);
  switch (rule.match) {
    case 'present':
      return values.length > 0;
    case 'equals':
      return values.some((v) => v.toLowerCase() === rule.value!.toLowerCase());
    case 'bit': {
      const mask = BigInt(rule.value!);
      return values.some((v) => /^-?[0-9]+$/.test(v) && (BigInt.asUintN(64, BigInt(v)) & mask) !== 0n);
    }
  }
}

export function mapUser(e: LdapEntry, s: LdapSourceSettings): UserMapping {
  const a = s.attributes;
  const id = first(e, a.id);
  if (id === undefined || id.length > MAX_KEY) return { skip: 'no-id', reason: `no ${a.id}` };
  const userName = first(e, a.username);
  if (userName === undefined || userName.length > MAX_KEY) return { skip: 'no-username', reason: `no usable ${a.username}` };
  const doc: ScimDoc = { schemas: [USER_SCHEMA], userName };
  const given = first(e, a.givenName);
  const family = first(e, a.familyName);
  if (given !== undefined || family !== undefined) doc.name = { ...(given !== undefined ? { givenName: given } : {}), ...(family !== undefined ? { familyName: family } : {}) };
  const displayName = first(e, a.displayName) ?? first(e, 'cn');
  if (displayName !== undefined) doc.displayName = displayName;
  const title = first(e, a.title);
  if (title !== undefined) doc.title = title;
  const language = first(e, 'preferredLanguage');
  if (language !== undefined) doc.preferredLanguage = language;
  const mail = first(e, a.email);
  if (mail !== undefined) doc.emails = [{ value: mail, type: 'work', primary: true }];
  const phones: Record<string, unknown>[] = [];
  const work = first(e, 'telephoneNumber');
  if (work !== undefined) phones.push({ value: work, type: 'work' });
  const mobile = first(e, 'mobile');
  if (mobile !== undefined) phones.push({ value: mobile, type: 'mobile' });
  if (phones.length) doc.phoneNumbers = phones;
  doc.active = !isDisabled(e, s.disabled);
  const enterprise: Record<string, unknown> = {};
  const employee = first(e, a.employeeNumber);
  if (employee !== undefined) enterprise.employeeNumber = employee;
  const department = first(e, a.department);
  if (department !== undefined) enterprise.department = department;
  if (Object.keys(enterprise).length) {
    doc[ENTERPRISE_USER_SCHEMA] = enterprise;
    (doc.schemas as string[]).push(ENTERPRISE_USER_SCHEMA);
  }
  const source: Record<string, unknown> = { dn: e.dn };
  for (const name of new Set([a.username, 'userPrincipalName', ...s.extraAttributes])) {
    const values = all(e, name).filter((v) => v.trim() !== '');
    if (values.length) source[name] = values.join(',');
  }
  doc[SOURCE_USER_SCHEMA] = source;
  (doc.schemas as string[]).push(SOURCE_USER_SCHEMA);
  return { id, doc };
}

export function mapGroup(e: LdapEntry, s: LdapSourceSettings): { id: string; doc: ScimDoc } | undefined {
  const id = first(e, s.attributes.id);
  const displayName = first(e, s.attributes.groupName);
  if (id === undefined || displayName === undefined || displayName.length > MAX_KEY) return undefined;
  return { id, doc: { schemas: [GROUP_SCHEMA], displayName } };
}

/** `member;range=0-1499` → {low: 0, high: 1499}; `member;range=1500-*` → {low: 1500, high: null}. */
export function parseRange(key: string, attribute: string): { low: number; high: number | null } | undefined {
  const m = /^([^;]+);range=(\d+)-(\d+|\*)$/i.exec(key);
  if (!m || m[1]!.toLowerCase() !== attribute.toLowerCase()) return undefined;
  return { low: Number(m[2]), high: m[3] === '*' ? null : Number(m[3]) };
}
