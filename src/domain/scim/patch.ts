// RFC 7644 §3.5.2 PATCH, in both of Entra ID's dialects (see shared/reference/entra-scim.md §5, §6, §9):
// case-insensitive `op`, string booleans, path-less add/replace with dotted and URN keys, filtered paths on
// missing entries (which create them), manager as a string, `Remove members` with a value list, and an
// empty Operations list as a no-op. Group memberships are returned as deltas for the store to apply as
// set operations; they never pass through the document.

import { badRequest } from './errors.ts';
import type { Filter } from './filter.ts';
import { FilterSyntaxError, parsePatchPath } from './filter.ts';
import { evaluate } from './evaluate.ts';
import type { Condition } from './query.ts';
import { compileFilter } from './query.ts';
import type { MemberRef, ScimDoc } from './resource.ts';
import { coreAttribute, memberRef, normaliseAttribute, normaliseValue, syncSchemas, unqualifiedExtensionAttribute } from './resource.ts';
import type { AttributeDef, ResourceTypeDef, SchemaDef } from './schema.ts';
import { extensionFor, PATCH_OP_SCHEMA, subAttribute } from './schema.ts';

export type MemberOp =
  | { k: 'add'; members: MemberRef[] }
  | { k: 'remove'; ids: string[] }
  | { k: 'removeAll' }
  | { k: 'replace'; members: MemberRef[] };

export interface PatchResult {
  doc: ScimDoc;
  memberOps: MemberOp[];
  /** true when the document itself changed (memberships aside) */
  changed: boolean;
}

type OpName = 'add' | 'replace' | 'remove';

export const MAX_PATCH_OPERATIONS = 1000;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isEmptyValue(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (isPlainObject(v) && Object.keys(v).length === 0);
}

/** JSON with object keys sorted: two values are the same whatever order their sub-attributes came in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * A complex reference (`manager`: value, $ref, displayName) that now points elsewhere is replaced
 * whole: the other sub-attributes described the previous target. Otherwise sub-attributes merge.
 */
function mergeComplex(def: AttributeDef, cur: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  if (subAttribute(def, 'value') && next.value !== undefined && cur.value !== undefined && next.value !== cur.value) return next;
  return { ...cur, ...next };
}

/** A remove that names what to remove (`"value": [...]`, or a single object): never "remove all". */
function isValueList(hasValue: boolean, value: unknown): boolean {
  return hasValue && (Array.isArray(value) || isPlainObject(value));
}

interface Operation {
  op: OpName;
  path?: string;
  value: unknown;
  hasValue: boolean;
}

/** Validate the PatchOp envelope and return its operations. */
export function readOperations(body: unknown): Operation[] {
  if (!isPlainObject(body)) throw badRequest('invalidSyntax', 'the request body must be a JSON object');
  let schemas: unknown;
  let ops: unknown;
  for (const [k, v] of Object.entries(body)) {
    const key = k.toLowerCase();
    if (key === 'schemas') schemas = v;
    else if (key === 'operations') ops = v;
    else throw badRequest('invalidSyntax', `unknown attribute '${k}' in a PatchOp request`);
  }
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_OP_SCHEMA.toLowerCase()))) {
    throw badRequest('invalidSyntax', `'schemas' must contain '${PATCH_OP_SCHEMA}'`);
  }
  if (ops === undefined || ops === null) throw badRequest('invalidSyntax', "'Operations' is required");
  if (!Array.isArray(ops)) throw badRequest('invalidSyntax', "'Operations' must be a list");
  if (ops.length > MAX_PATCH_OPERATIONS) throw badRequest('tooMany', `at most ${MAX_PATCH_OPERATIONS} operations per request`);
  return ops.map((raw, i) => {
    if (!isPlainObject(raw)) throw badRequest('invalidSyntax', `operation ${i + 1} must be an object`);
    let op: unknown;
    let path: unknown;
    let value: unknown;
    let hasValue = false;
    for (const [k, v] of Object.entries(raw)) {
      const key = k.toLowerCase();
      if (key === 'op') op = v;
      else if (key === 'path') path = v;
      else if (key === 'value') {
        value = v;
        hasValue = true;
      } else throw badRequest('invalidSyntax', `unknown member '${k}' in operation ${i + 1}`);
    }
    if (typeof op !== 'string' || !/^(add|replace|remove)$/i.test(op)) {
      throw badRequest('invalidSyntax', `operation ${i + 1}: 'op' must be add, replace or remove`);
    }
    if (path !== undefined && path !== null && (typeof path !== 'string' || path.trim() === '')) {
      throw badRequest('invalidPath', `operation ${i + 1}: 'path' must be a non-empty string`);
    }
    const out: Operation = { op: op.toLowerCase() as OpName, value, hasValue };
    if (typeof path === 'string') out.path = path.trim();
    return out;
  });
}

/** Resolution of a PATCH path against the resource type. */
interface Target {
  ext: SchemaDef | null;
  def: AttributeDef;
  sub?: AttributeDef;
  filter?: Filter;
  elementCond?: Condition;
}

function resolvePath(type: ResourceTypeDef, path: string): Target | { wholeExtension: SchemaDef } {
  const whole = extensionFor(type, path);
  if (whole) return { wholeExtension: whole };
  let parsed;
  try {
    parsed = parsePatchPath(path);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw badRequest('invalidPath', `invalid path '${path}': ${e.message}`);
    throw e;
  }
  let ext: SchemaDef | null = null;
  let def: AttributeDef | undefined;
  if (parsed.uri !== undefined && parsed.uri.toLowerCase() !== type.core.id.toLowerCase()) {
    ext = extensionFor(type, parsed.uri) ?? null;
    if (!ext) throw badRequest('invalidPath', `unknown schema in path '${path}'`);
    def = ext.attributes.find((a) => a.name.toLowerCase() === parsed.attr.toLowerCase());
  } else {
    def = coreAttribute(type, parsed.attr);
    if (!def) {
      // `manager` for `urn:…:enterprise:2.0:User:manager`, as older Entra ID traffic writes it
      const unqualified = unqualifiedExtensionAttribute(type, parsed.attr);
      if (unqualified) ({ ext, def } = unqualified);
    }
  }
  if (!def) throw badRequest('invalidPath', `unknown attribute in path '${path}'`);
  const target: Target = { ext, def };
  if (parsed.sub !== undefined) {
    const sub = subAttribute(def, parsed.sub);
    if (!sub) throw badRequest('invalidPath', `unknown sub-attribute in path '${path}'`);
    target.sub = sub;
  }
  if (parsed.valueFilter) {
    if (!def.multiValued || def.type !== 'complex') throw badRequest('invalidPath', `'${def.name}' is not multi-valued; it cannot have a filter`);
    target.filter = parsed.valueFilter;
    const elementType: ResourceTypeDef = {
      kind: type.kind,
      endpoint: type.endpoint,
      core: { id: 'element', name: def.name, description: '', attributes: def.subAttributes ?? [] },
      extensions: [],
    };
    target.elementCond = compileFilter(elementType, parsed.valueFilter);
  }
  return target;
}

/** The attribute-value pairs a filter pins down with `eq` (and `and`): used to create a missing entry. */
function equalities(f: Filter, out: Record<string, unknown> = {}): Record<string, unknown> {
  if (f.op === 'and') {
    equalities(f.left, out);
    equalities(f.right, out);
  } else if (f.op === 'eq' && !f.path.valueFilter && f.path.sub === undefined && f.value !== null) {
    out[f.path.attr] = f.value;
  }
  return out;
}

/** Member ids named by `members[value eq "a" or value eq "b"]`. */
function memberIdsFromFilter(f: Filter): string[] {
  if (f.op === 'or') return [...memberIdsFromFilter(f.left), ...memberIdsFromFilter(f.right)];
  if (f.op === 'eq' && f.path.attr.toLowerCase() === 'value' && !f.path.sub && !f.path.uri && f.value !== null) return [f.raw ?? String(f.value)];
  throw badRequest('invalidFilter', 'member filters must be of the form value eq "<id>" (optionally joined with or)');
}

function memberList(value: unknown): MemberRef[] {
  if (isEmptyValue(value)) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((m) => {
    if (!isPlainObject(m)) throw badRequest('invalidValue', "each member must be an object with a 'value'");
    return memberRef(m);
  });
}

class Patcher {
  readonly memberOps: MemberOp[] = [];
  constructor(
    private readonly type: ResourceTypeDef,
    readonly doc: ScimDoc,
  ) {}

  private container(ext: SchemaDef | null, create: boolean): Record<string, unknown> | undefined {
    if (!ext) return this.doc;
    let c = this.doc[ext.id];
    if (!isPlainObject(c)) {
      if (!create) return undefined;
      c = {};
      this.doc[ext.id] = c;
    }
    return c as Record<string, unknown>;
  }

  private cleanupExtension(ext: SchemaDef | null): void {
    if (ext && isPlainObject(this.doc[ext.id]) && Object.keys(this.doc[ext.id] as object).length === 0) delete this.doc[ext.id];
  }

  private checkWritable(def: AttributeDef, where: string): void {
    if (def.mutability === 'readOnly') throw badRequest('mutability', `'${where}' is read-only`);
  }

  private checkRemovable(def: AttributeDef, where: string): void {
    if (def.required) throw badRequest('mutability', `'${where}' is required and cannot be removed`);
  }

  apply(op: Operation): void {
    if (op.path === undefined) {
      if (op.op === 'remove') throw badRequest('noTarget', "a remove operation needs a 'path'");
      if (!isPlainObject(op.value)) throw badRequest('invalidValue', "an operation without 'path' needs an object 'value'");
      for (const [key, v] of Object.entries(op.value)) this.applyKey(op.op, key, v);
      return;
    }
    const target = resolvePath(this.type, op.path);
    if ('wholeExtension' in target) {
      if (op.op === 'remove' || isEmptyValue(op.value)) {
        delete this.doc[target.wholeExtension.id];
        return;
      }
      if (!isPlainObject(op.value)) throw badRequest('invalidValue', `'${target.wholeExtension.id}' needs an object value`);
      for (const [key, v] of Object.entries(op.value)) this.applyKey(op.op, `${target.wholeExtension.id}:${key}`, v);
      return;
    }
    this.applyTarget(op.op, target, op.value, op.hasValue, op.path);
  }

  /** A key of a path-less value: `displayName`, `name.givenName`, `urn:…:User:department`, `urn:…:User`. */
  private applyKey(op: OpName, key: string, v: unknown): void {
    const lower = key.toLowerCase();
    if (lower === 'schemas' || lower === 'id' || lower === 'meta') return;
    const ext = extensionFor(this.type, key);
    if (ext) {
      if (isEmptyValue(v)) {
        delete this.doc[ext.id];
        return;
      }
      if (!isPlainObject(v)) throw badRequest('invalidValue', `'${ext.id}' needs an object value`);
      for (const [k, x] of Object.entries(v)) this.applyKey(op, `${ext.id}:${k}`, x);
      return;
    }
    const target = resolvePath(this.type, key);
    if ('wholeExtension' in target) return;
    this.applyTarget(op, target, v, true, key);
  }

  private applyTarget(op: OpName, t: Target, value: unknown, hasValue: boolean, where: string): void {
    const { def } = t;
    if (this.type.kind === 'Group' && !t.ext && def.name === 'members') return this.applyMembers(op, t, value, hasValue);
    this.checkWritable(def, where);
    if (t.sub) this.checkWritable(t.sub, where);
    if (t.filter) return this.applyFiltered(op, t, value, where);

    const holder = this.container(t.ext, op !== 'remove');
    const remove = op === 'remove' || isEmptyValue(value);

    if (!t.sub) {
      if (remove) {
        if (op === 'remove' && def.multiValued && isValueList(hasValue, value)) {
          // remove listed values from a multi-valued attribute (the Entra shape, applied generally);
          // an empty list removes nothing
          const drop = (normaliseAttribute(def, value, where) as unknown[] | undefined) ?? [];
          const cur = holder?.[def.name];
          if (Array.isArray(cur) && drop.length) {
            const keys = new Set(drop.map((d) => canonical(d)));
            const values = new Set<unknown>(drop.map((d) => (isPlainObject(d) ? d.value : d)).filter((x) => x !== undefined));
            const kept = cur.filter((e) => !keys.has(canonical(e)) && !(isPlainObject(e) && values.has(e.value)));
            if (kept.length) holder![def.name] = kept;
            else delete holder![def.name];
          }
        } else {
          this.checkRemovable(def, where);
          if (holder) delete holder[def.name];
        }
        this.cleanupExtension(t.ext);
        return;
      }
      const val = normaliseAttribute(def, value, where, { ignoreReadOnly: true });
      if (def.multiValued && op === 'add') {
        const cur = Array.isArray(holder![def.name]) ? (holder![def.name] as unknown[]) : [];
        const seen = new Set(cur.map((e) => canonical(e)));
        const merged = [...cur];
        for (const e of val as unknown[]) {
          const key = canonical(e);
          if (seen.has(key)) continue;
          seen.add(key);
          merged.push(e);
        }
        holder![def.name] = merged;
      } else if (def.type === 'complex' && !def.multiValued && isPlainObject(holder![def.name]) && isPlainObject(val)) {
        holder![def.name] = mergeComplex(def, holder![def.name] as Record<string, unknown>, val);
      } else {
        holder![def.name] = val;
      }
      return;
    }

    // attr.sub
    const sub = t.sub;
    if (def.multiValued) {
      // no filter: applies to every element (creating one on add/replace when there is none)
      const cur = holder?.[def.name];
      const list = Array.isArray(cur) ? (cur as Record<string, unknown>[]) : [];
      if (remove) {
        for (const e of list) delete e[sub.name];
        this.setList(holder, def, list.filter((e) => Object.keys(e).length > 0));
      } else {
        const val = normaliseValue(sub, value, where, { ignoreReadOnly: true });
        if (list.length === 0) this.setList(holder, def, [{ [sub.name]: val }]);
        else for (const e of list) e[sub.name] = val;
      }
      this.cleanupExtension(t.ext);
      return;
    }
    if (remove) {
      const cur = holder?.[def.name];
      if (isPlainObject(cur)) {
        delete cur[sub.name];
        if (Object.keys(cur).length === 0) delete holder![def.name];
      }
      this.cleanupExtension(t.ext);
      return;
    }
    const val = normaliseValue(sub, value, where, { ignoreReadOnly: true });
    const cur = holder![def.name];
    holder![def.name] = mergeComplex(def, isPlainObject(cur) ? cur : {}, { [sub.name]: val });
  }

  private setList(holder: Record<string, unknown> | undefined, def: AttributeDef, list: unknown[]): void {
    if (!holder) return;
    if (list.length) holder[def.name] = list;
    else delete holder[def.name];
  }

  /** `emails[type eq "work"].value`: matching elements are changed; none matching on add/replace creates one. */
  private applyFiltered(op: OpName, t: Target, value: unknown, where: string): void {
    const { def, sub } = t;
    const holder = this.container(t.ext, op !== 'remove');
    const cur = holder?.[def.name];
    const list = Array.isArray(cur) ? (cur as Record<string, unknown>[]) : [];
    const matches = (e: Record<string, unknown>): boolean => evaluate(t.elementCond!, e);
    const remove = op === 'remove' || isEmptyValue(value);
    if (remove) {
      let next: Record<string, unknown>[];
      if (sub) {
        // Removing `emails[type eq "work"].value` leaves {type: "work"} behind: drop such husks.
        const pinned = equalities(t.filter!);
        next = list.filter((e) => {
          if (!matches(e)) return true;
          delete e[sub.name];
          return Object.keys(e).some((k) => !(k in pinned));
        });
      } else {
        next = list.filter((e) => !matches(e));
      }
      this.setList(holder, def, next);
      this.cleanupExtension(t.ext);
      return;
    }
    const hits = list.filter(matches);
    if (sub) {
      const val = normaliseValue(sub, value, where, { ignoreReadOnly: true });
      if (hits.length === 0) {
        const created = normaliseValue(def, { ...equalities(t.filter!), [sub.name]: value }, where, { ignoreReadOnly: true }) as Record<string, unknown>;
        list.push(created);
      } else for (const e of hits) e[sub.name] = val;
    } else {
      const val = normaliseValue(def, value, where, { ignoreReadOnly: true }) as Record<string, unknown>;
      if (hits.length === 0) {
        list.push(normaliseValue(def, { ...equalities(t.filter!), ...val }, where, { ignoreReadOnly: true }) as Record<string, unknown>);
      } else for (const e of hits) Object.assign(e, val);
    }
    this.setList(holder, def, list);
  }

  private applyMembers(op: OpName, t: Target, value: unknown, hasValue: boolean): void {
    if (t.sub) throw badRequest('invalidPath', "only whole members can be changed; use 'members' or 'members[value eq \"<id>\"]'");
    if (t.filter) {
      if (op !== 'remove') throw badRequest('invalidPath', "use 'add' on 'members' with a value list to add members");
      this.memberOps.push({ k: 'remove', ids: memberIdsFromFilter(t.filter) });
      return;
    }
    if (op === 'add') {
      const members = memberList(value);
      if (members.length) this.memberOps.push({ k: 'add', members });
      return;
    }
    if (op === 'replace') {
      this.memberOps.push({ k: 'replace', members: memberList(value) });
      return;
    }
    // remove: with a value list (Entra's default dialect) only those, none for an empty list;
    // without a value, all members.
    if (isValueList(hasValue, value)) {
      const ids = memberList(value).map((m) => m.value);
      if (ids.length) this.memberOps.push({ k: 'remove', ids });
    } else {
      this.memberOps.push({ k: 'removeAll' });
    }
  }
}

/** Apply a PatchOp body to a stored document. Throws ScimError (400) on anything invalid; never mutates `doc`. */
export function applyPatch(type: ResourceTypeDef, doc: ScimDoc, body: unknown): PatchResult {
  const ops = readOperations(body);
  const patcher = new Patcher(type, structuredClone(doc));
  for (const op of ops) patcher.apply(op);
  const next = syncSchemas(type, patcher.doc);
  for (const def of type.core.attributes) {
    if (def.required && (typeof next[def.name] !== 'string' || (next[def.name] as string).trim() === '')) {
      throw badRequest('mutability', `'${def.name}' is required and cannot be removed`);
    }
  }
  const changed = JSON.stringify(next) !== JSON.stringify(syncSchemas(type, doc));
  return { doc: next, memberOps: patcher.memberOps, changed };
}
