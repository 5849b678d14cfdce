// Mirror records as SCIM responses: id, meta and members added, attributes/excludedAttributes applied.

import { badRequest } from '../../domain/scim/errors.ts';
import type { ScimDoc } from '../../domain/scim/resource.ts';
import type { ResourceKind } from '../../domain/scim/schema.ts';
import { RESOURCE_TYPES, resolveAttribute, splitUri } from '../../domain/scim/schema.ts';
import type { MemberRow, MirrorRecord } from '../../store/mirror.ts';

/** A parsed attributes / excludedAttributes list: top-level key → sub-attributes (empty set: whole). */
export type Projection = Map<string, Set<string>>;

export interface ProjectionRequest {
  attributes?: Projection;
  excluded?: Projection;
}

/** Parse a comma-separated attribute list into canonical keys (extension attributes under their URN). */
export function parseAttributeList(kind: ResourceKind, list: string | undefined): Projection | undefined {
  if (list === undefined || list.trim() === '') return undefined;
  const type = RESOURCE_TYPES[kind];
  const out: Projection = new Map();
  for (const raw of list.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const whole = type.extensions.find((e) => e.id.toLowerCase() === item.toLowerCase());
    if (whole) {
      out.set(whole.id, new Set());
      continue;
    }
    const { uri, rest } = splitUri(item);
    const [attr, sub, extra] = rest.split('.');
    if (!attr || extra !== undefined) throw badRequest('invalidValue', `invalid attribute '${item}'`);
    const owners = uri === undefined && !resolveAttribute(type, undefined, attr) ? type.extensions.filter((e) => !e.open && resolveAttribute(type, e.id, attr)) : [];
    // an extension attribute named without its URN (`manager`), as in filters and PATCH paths
    const resolved = resolveAttribute(type, owners.length === 1 ? owners[0]!.id : uri, attr, sub);
    if (!resolved) {
      if (attr.toLowerCase() === 'schemas') continue;
      throw badRequest('invalidValue', `unknown attribute '${item}'`);
    }
    const key = resolved.extension ? `${resolved.extension}\u0000${resolved.def.name}` : resolved.def.name;
    const set = out.get(key) ?? new Set<string>();
    if (resolved.sub) set.add(resolved.sub.name);
    else set.add('*');
    out.set(key, set);
  }
  return out;
}

export function wants(p: ProjectionRequest, key: string): boolean {
  if (p.attributes) return p.attributes.has(key);
  if (p.excluded) {
    const ex = p.excluded.get(key);
    return !(ex && ex.has('*'));
  }
  return true;
}

function pickSubs(value: unknown, subs: Set<string>, keep: boolean): unknown {
  if (subs.has('*')) return keep ? value : undefined;
  const pick = (o: Record<string, unknown>) => {
    const r: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) if (subs.has(k) === keep) r[k] = v;
    return Object.keys(r).length ? r : undefined;
  };
  if (Array.isArray(value)) {
    const arr = value.map((e) => (e && typeof e === 'object' ? pick(e as Record<string, unknown>) : e)).filter((e) => e !== undefined);
    return arr.length ? arr : undefined;
  }
  if (value && typeof value === 'object') return pick(value as Record<string, unknown>);
  return keep ? value : undefined;
}

/** Apply attributes / excludedAttributes to a rendered resource. `id` and `schemas` always stay. */
export function project(kind: ResourceKind, resource: ScimDoc, p: ProjectionRequest): ScimDoc {
  if (!p.attributes && !p.excluded) return resource;
  const type = RESOURCE_TYPES[kind];
  const out: ScimDoc = {};
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'id' || key === 'schemas') {
      out[key] = value;
      continue;
    }
    const ext = type.extensions.find((e) => e.id === key);
    if (ext) {
      const inner: Record<string, unknown> = {};
      for (const [ek, ev] of Object.entries(value as Record<string, unknown>)) {
        const v = select(p, `${ext.id}\u0000${ek}`, ev, p.attributes?.has(ext.id) === true, p.excluded?.has(ext.id) === true);
        if (v !== undefined) inner[ek] = v;
      }
      if (Object.keys(inner).length) out[key] = inner;
      continue;
    }
    const v = select(p, key, value, false, false);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function select(p: ProjectionRequest, key: string, value: unknown, parentIncluded: boolean, parentExcluded: boolean): unknown {
  if (p.attributes) {
    if (parentIncluded) return value;
    const subs = p.attributes.get(key);
    return subs ? pickSubs(value, subs, true) : undefined;
  }
  if (parentExcluded) return undefined;
  const subs = p.excluded!.get(key);
  return subs ? pickSubs(value, subs, false) : value;
}

export interface RenderOptions {
  location: string;
  members?: MemberRow[];
  groups?: string[];
}

/** A mirror record as the SCIM resource the client sees. */
export function render(record: MirrorRecord, opts: RenderOptions): ScimDoc {
  const { schemas, ...rest } = record.doc as { schemas?: string[] } & ScimDoc;
  const out: ScimDoc = {
    schemas: schemas ?? [RESOURCE_TYPES[record.kind].core.id],
    id: record.id,
    ...rest,
  };
  if (record.kind === 'Group' && opts.members) {
    out.members = opts.members.map((m) => ({ value: m.memberId, type: m.memberType }));
  }
  if (record.kind === 'User' && opts.groups) {
    out.groups = opts.groups.map((g) => ({ value: g, type: 'direct' }));
  }
  out.meta = {
    resourceType: record.kind,
    created: record.created,
    lastModified: record.lastModified,
    location: opts.location,
    version: `W/"${record.version}"`,
  };
  return out;
}
