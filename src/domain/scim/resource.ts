// Normalisation of SCIM resources as identity providers send them, into the one shape the mirror keeps:
// canonical attribute names, booleans as booleans, `manager` as {"value": …}, no nulls, no empty values.
// Also: the case-folded search document that SQL filters read, and attribute projection for responses.

import { badRequest } from './errors.ts';
import type { AttributeDef, ResourceTypeDef, SchemaDef } from './schema.ts';
import { COMMON_ATTRIBUTES, ENTERPRISE_USER_SCHEMA, extensionAttribute, extensionFor, foldCase, MS_ADSCIM_GROUP_SCHEMA, subAttribute } from './schema.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type ScimDoc = Record<string, unknown>;

export interface MemberRef {
  value: string;
  type?: 'User' | 'Group';
}

export interface NormalisedResource {
  /** the stored document: no id, no meta, no members */
  doc: ScimDoc;
  /** group members given in the request body (POST/PUT), undefined when the body has none */
  members?: MemberRef[];
}

const READ_ONLY_TOP = new Set(['id', 'meta']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === '' ||
    (Array.isArray(v) && v.length === 0) ||
    (isPlainObject(v) && Object.keys(v).length === 0)
  );
}

/** Accept Entra's "True"/"False" strings (any case) as booleans. */
export function coerceBoolean(v: unknown, where: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  throw badRequest('invalidValue', `'${where}' must be a boolean`);
}

function normaliseSimple(def: AttributeDef, v: unknown, where: string): unknown {
  switch (def.type) {
    case 'boolean':
      return coerceBoolean(v, where);
    case 'string':
    case 'reference':
    case 'binary':
      // PostgreSQL cannot store U+0000 in text or jsonb; refuse it here rather than fail in the store
      if (typeof v === 'string' && v.includes('\u0000')) throw badRequest('invalidValue', `'${where}' contains a NUL character`);
      if (typeof v === 'string') return v;
      throw badRequest('invalidValue', `'${where}' must be a string`);
    case 'integer':
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      throw badRequest('invalidValue', `'${where}' must be an integer`);
    case 'decimal':
      if (typeof v === 'number') return v;
      throw badRequest('invalidValue', `'${where}' must be a number`);
    case 'dateTime':
      if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return v;
      throw badRequest('invalidValue', `'${where}' must be an ISO 8601 date-time`);
    default:
      throw badRequest('invalidValue', `'${where}' has an unsupported type`);
  }
}

/** Normalise one (single) value of an attribute; returns undefined for an empty value (which clears). */
export function normaliseValue(def: AttributeDef, v: unknown, where: string, opts: { ignoreReadOnly: boolean }): unknown {
  if (isEmpty(v)) return undefined;
  if (def.type !== 'complex') return normaliseSimple(def, v, where);
  // Entra sends manager as a plain id string.
  if (typeof v === 'string' && !def.multiValued && subAttribute(def, 'value')) return v === '' ? undefined : { value: v };
  if (!isPlainObject(v)) throw badRequest('invalidValue', `'${where}' must be an object`);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(v)) {
    const sub = subAttribute(def, key);
    if (!sub) throw badRequest('invalidSyntax', `unknown attribute '${where}.${key}'`);
    if (sub.mutability === 'readOnly' && opts.ignoreReadOnly) continue;
    const val = normaliseValue(sub, raw, `${where}.${sub.name}`, opts);
    if (val !== undefined) out[sub.name] = val;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Normalise an attribute value, single or multi-valued. */
export function normaliseAttribute(def: AttributeDef, v: unknown, where: string, opts = { ignoreReadOnly: true }): unknown {
  if (isEmpty(v)) return undefined;
  if (!def.multiValued) {
    if (Array.isArray(v)) {
      // Old Entra documentation sends manager as a one-element list.
      if (v.length === 1 && def.type === 'complex') return normaliseValue(def, v[0], where, opts);
      throw badRequest('invalidValue', `'${where}' is single-valued`);
    }
    return normaliseValue(def, v, where, opts);
  }
  const list = Array.isArray(v) ? v : [v];
  const out: unknown[] = [];
  for (const item of list) {
    const val = normaliseValue(def, item, where, opts);
    if (val !== undefined) out.push(val);
  }
  return out.length === 0 ? undefined : out;
}

function findAttr(list: AttributeDef[], key: string): AttributeDef | undefined {
  const lower = key.toLowerCase();
  return list.find((a) => a.name.toLowerCase() === lower);
}

/** A top-level attribute of the core schema, including the common `id` and `externalId`. */
export function coreAttribute(type: ResourceTypeDef, key: string): AttributeDef | undefined {
  return findAttr(COMMON_ATTRIBUTES, key) ?? findAttr(type.core.attributes, key);
}

/**
 * An extension attribute written without its schema URN: a name the core schema does not define but
 * exactly one of the type's extensions does (`manager`, `department`). Older Entra ID traffic writes
 * enterprise attributes this way: `"department":null,"manager":null` in a create, the PATCH path
 * `manager`, the filter `manager eq "…"`.
 */
export function unqualifiedExtensionAttribute(type: ResourceTypeDef, key: string): { ext: SchemaDef; def: AttributeDef } | undefined {
  if (coreAttribute(type, key)) return undefined;
  const hits: { ext: SchemaDef; def: AttributeDef }[] = [];
  for (const ext of type.extensions) {
    const def = findAttr(ext.attributes, key);
    if (def) hits.push({ ext, def });
  }
  return hits.length === 1 ? hits[0] : undefined;
}

function normaliseExtension(ext: SchemaDef, v: unknown): Record<string, unknown> | undefined {
  if (isEmpty(v)) return undefined;
  if (!isPlainObject(v)) throw badRequest('invalidValue', `'${ext.id}' must be an object`);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(v)) {
    const def = extensionAttribute(ext, key);
    if (!def) throw badRequest('invalidSyntax', `unknown attribute '${ext.id}:${key}'`);
    const val = normaliseAttribute(def, raw, `${ext.id}:${def.name}`);
    if (val !== undefined) out[def.name] = val;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function parseMembers(v: unknown): MemberRef[] {
  if (isEmpty(v)) return [];
  if (!Array.isArray(v)) throw badRequest('invalidValue', "'members' must be a list");
  const out: MemberRef[] = [];
  for (const m of v) {
    if (!isPlainObject(m)) throw badRequest('invalidValue', "each member must be an object with a 'value'");
    const ref = memberRef(m);
    out.push(ref);
  }
  return out;
}

/** One member object `{"value": id, "type"?: "User"|"Group", "$ref"?, "display"?}`. */
export function memberRef(m: Record<string, unknown>): MemberRef {
  let value: unknown;
  let type: unknown;
  for (const [k, raw] of Object.entries(m)) {
    const key = k.toLowerCase();
    if (key === 'value') value = raw;
    else if (key === 'type') type = raw;
    else if (key !== '$ref' && key !== 'display') throw badRequest('invalidSyntax', `unknown attribute 'members.${k}'`);
  }
  if (typeof value !== 'string' || value === '') throw badRequest('invalidValue', "a member needs a non-empty string 'value'");
  if (value.length > 256) throw badRequest('invalidValue', 'a member value is too long');
  const ref: MemberRef = { value };
  if (type !== undefined && type !== null) {
    if (typeof type !== 'string' || !/^(user|group)$/i.test(type)) throw badRequest('invalidValue', "a member 'type' must be 'User' or 'Group'");
    ref.type = type.toLowerCase() === 'user' ? 'User' : 'Group';
  }
  return ref;
}

/**
 * Normalise a POST or PUT body. Read-only attributes are ignored (RFC 7643 §2.2), unknown attributes
 * are a 400, required attributes must be present.
 */
export function normaliseResource(type: ResourceTypeDef, body: unknown): NormalisedResource {
  if (!isPlainObject(body)) throw badRequest('invalidSyntax', 'the request body must be a JSON object');
  const doc: ScimDoc = {};
  let members: MemberRef[] | undefined;
  const schemas = new Set<string>([type.core.id]);
  for (const [key, raw] of Object.entries(body)) {
    const lower = key.toLowerCase();
    if (lower === 'schemas') {
      if (raw === null || raw === undefined) continue;
      if (!Array.isArray(raw) || raw.some((s) => typeof s !== 'string')) throw badRequest('invalidSyntax', "'schemas' must be a list of URIs");
      for (const s of raw as string[]) {
        if (s.toLowerCase() === type.core.id.toLowerCase() || s.toLowerCase() === MS_ADSCIM_GROUP_SCHEMA.toLowerCase()) continue;
        const ext = extensionFor(type, s) ?? (/^urn:ietf:params:scim:schemas:extension:enterprise:2\.0user$/i.test(s) ? extensionFor(type, ENTERPRISE_USER_SCHEMA) : undefined);
        if (!ext) throw badRequest('invalidSyntax', `unsupported schema '${s}'`);
      }
      continue;
    }
    if (READ_ONLY_TOP.has(lower)) continue;
    const ext = extensionFor(type, key);
    if (ext) {
      const val = normaliseExtension(ext, raw);
      if (val !== undefined) {
        // the qualified object wins over unqualified names of the same attributes
        doc[ext.id] = { ...(doc[ext.id] as Record<string, unknown> | undefined), ...val };
        schemas.add(ext.id);
      }
      continue;
    }
    if (type.kind === 'Group' && lower === 'members') {
      members = parseMembers(raw);
      continue;
    }
    const def = coreAttribute(type, key);
    if (!def) {
      const unqualified = unqualifiedExtensionAttribute(type, key);
      if (!unqualified) throw badRequest('invalidSyntax', `unknown attribute '${key}'`);
      const { ext: owner, def: extDef } = unqualified;
      const val = normaliseAttribute(extDef, raw, `${owner.id}:${extDef.name}`);
      const holder = (doc[owner.id] as Record<string, unknown> | undefined) ?? {};
      if (val !== undefined && holder[extDef.name] === undefined) {
        doc[owner.id] = { ...holder, [extDef.name]: val };
        schemas.add(owner.id);
      }
      continue;
    }
    if (def.mutability === 'readOnly') continue;
    if (def.mutability === 'writeOnly') continue; // passwords are never stored: people sign in through SSO
    const val = normaliseAttribute(def, raw, def.name);
    if (val !== undefined) doc[def.name] = val;
  }
  checkRequired(type, doc);
  checkLengths(doc);
  return { doc: { schemas: [...schemas], ...doc }, ...(members !== undefined ? { members } : {}) };
}

export function checkRequired(type: ResourceTypeDef, doc: ScimDoc): void {
  for (const def of type.core.attributes) {
    if (def.required && (typeof doc[def.name] !== 'string' || (doc[def.name] as string).trim() === '')) {
      throw badRequest('invalidValue', `'${def.name}' is required`);
    }
  }
}

const MAX_KEY_LENGTH = 1024;

function checkLengths(doc: ScimDoc): void {
  for (const key of ['userName', 'displayName', 'externalId']) {
    const v = doc[key];
    if (typeof v === 'string' && v.length > MAX_KEY_LENGTH) throw badRequest('invalidValue', `'${key}' is longer than ${MAX_KEY_LENGTH} characters`);
  }
}

/** Keep the `schemas` list in step with the extensions the document holds. */
export function syncSchemas(type: ResourceTypeDef, doc: ScimDoc): ScimDoc {
  const schemas = [type.core.id, ...type.extensions.filter((e) => doc[e.id] !== undefined).map((e) => e.id)];
  return { ...doc, schemas };
}

function foldValue(def: AttributeDef, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => foldValue(def, x));
  if (def.type === 'complex' && isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const sub = subAttribute(def, k);
      out[k] = sub ? foldValue(sub, x) : x;
    }
    return out;
  }
  if (typeof v === 'string' && !def.caseExact && def.type !== 'dateTime') return foldCase(v);
  return v;
}

/** The document SQL filters read: every string that compares case-insensitively, folded in JavaScript. */
export function searchDocument(type: ResourceTypeDef, doc: ScimDoc): ScimDoc {
  const out: ScimDoc = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'schemas') continue;
    const ext = extensionFor(type, k);
    if (ext) {
      const inner: Record<string, unknown> = {};
      for (const [ek, ev] of Object.entries(v as Record<string, unknown>)) {
        const def = extensionAttribute(ext, ek);
        inner[ek] = def ? foldValue(def, ev) : ev;
      }
      out[k] = inner;
      continue;
    }
    const def = coreAttribute(type, k);
    out[k] = def ? foldValue(def, v) : v;
  }
  return out;
}

/** The work e-mail (or the primary, or the first) of a user document. */
export function workEmail(doc: ScimDoc): string | undefined {
  const emails = doc.emails;
  if (!Array.isArray(emails)) return undefined;
  const list = emails as { value?: string; type?: string; primary?: boolean }[];
  return (
    list.find((e) => e.type?.toLowerCase() === 'work')?.value ??
    list.find((e) => e.primary)?.value ??
    list[0]?.value
  );
}
