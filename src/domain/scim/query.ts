// A parsed filter checked against a resource type: every path resolved to its schema definition,
// every literal converted to the attribute's type and case-folded where the attribute is not caseExact.
// The SQL translator and the in-memory evaluator both work from this, so they validate alike and agree.

import { badRequest } from './errors.ts';
import type { AttrPath, CompareOp, Filter, Literal } from './filter.ts';
import { FilterSyntaxError, parseFilter } from './filter.ts';
import type { AttributeDef, ResourceTypeDef } from './schema.ts';
import { foldCase, resolveAttribute, subAttribute } from './schema.ts';

/** Where a value lives in the stored document: top-level or under an extension URN, then names. */
export interface DocPath {
  extension: string | null;
  names: string[]; // canonical attribute names, e.g. ['name', 'givenName']
}

export type ValueKind = 'string' | 'boolean' | 'dateTime' | 'number';

export type Condition =
  | { k: 'and' | 'or'; a: Condition; b: Condition }
  | { k: 'not'; c: Condition }
  | { k: 'const'; value: boolean }
  /** a single-valued leaf (relative to the resource, or to an element inside `elem`) */
  | { k: 'cmp'; path: DocPath; kind: ValueKind; caseExact: boolean; op: CompareOp; value: string | boolean | number }
  | { k: 'pr'; path: DocPath }
  /** some element of a multi-valued attribute satisfies `c` (whose paths are relative to the element) */
  | { k: 'elem'; path: DocPath; c: Condition }
  /** a membership test: group has member / user is in group (ids compared exactly) */
  | { k: 'member'; side: 'groupHasMember' | 'userInGroup'; value: string | null };

function pathOf(extension: string | null, ...names: string[]): DocPath {
  return { extension, names };
}

function valueKind(def: AttributeDef): ValueKind | undefined {
  switch (def.type) {
    case 'string':
    case 'reference':
    case 'binary':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'dateTime':
      return 'dateTime';
    case 'integer':
    case 'decimal':
      return 'number';
    default:
      return undefined;
  }
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO 8601 literal in the form timestamps are stored in (UTC, milliseconds), so that they compare as
 * strings. Without an offset a time is UTC, whatever the server's time zone. Undefined when invalid
 * (`2024-02-30`), or beyond year 9999, where the stored form would no longer order as a string.
 */
function isoDateTime(value: string): string | undefined {
  const m = ISO_DATE.exec(value);
  if (!m) return undefined;
  const [, year, month, day, time, zone] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  if (date.getUTCMonth() !== Number(month) - 1 || date.getUTCDate() !== Number(day)) return undefined;
  const t = Date.parse(time !== undefined && zone === undefined ? `${value}Z` : value);
  if (Number.isNaN(t)) return undefined;
  const iso = new Date(t).toISOString();
  return /^\d{4}-/.test(iso) ? iso : undefined;
}

function invalid(detail: string): never {
  throw badRequest('invalidFilter', detail);
}

/**
 * Build a leaf comparison, converting the literal; `null` compares as absence. `raw` is the text of an
 * unquoted number or true/false: a string attribute compares with it as written (`externalId eq 1.50`).
 */
function leaf(path: DocPath, def: AttributeDef, op: CompareOp | 'pr', value: Literal | undefined, where: string, raw?: string): Condition {
  if (op === 'pr') return { k: 'pr', path };
  const kind = valueKind(def);
  if (!kind) invalid(`'${where}' cannot be compared; name a sub-attribute`);
  if (value === null) {
    if (op === 'eq') return { k: 'not', c: { k: 'pr', path } };
    if (op === 'ne') return { k: 'pr', path };
    invalid(`'${op}' cannot compare with null`);
  }
  switch (kind) {
    case 'boolean': {
      if (op !== 'eq' && op !== 'ne') invalid(`'${op}' is not defined for the boolean attribute '${where}'`);
      let b: boolean;
      if (typeof value === 'boolean') b = value;
      else if (typeof value === 'string' && /^(true|false)$/i.test(value)) b = value.toLowerCase() === 'true';
      else invalid(`'${where}' is boolean; compare it with true or false`);
      return { k: 'cmp', path, kind, caseExact: true, op, value: b };
    }
    case 'dateTime': {
      if (op === 'co' || op === 'sw' || op === 'ew') invalid(`'${op}' is not defined for the dateTime attribute '${where}'`);
      const iso = typeof value === 'string' ? isoDateTime(value) : undefined;
      if (iso === undefined) invalid(`'${where}' is a dateTime; compare it with an ISO 8601 value`);
      return { k: 'cmp', path, kind, caseExact: true, op, value: iso };
    }
    case 'number': {
      if (typeof value !== 'number') invalid(`'${where}' is a number`);
      if (op === 'co' || op === 'sw' || op === 'ew') invalid(`'${op}' is not defined for the number attribute '${where}'`);
      return { k: 'cmp', path, kind, caseExact: true, op, value };
    }
    case 'string': {
      const s = typeof value === 'string' ? value : (raw ?? String(value));
      return { k: 'cmp', path, kind, caseExact: def.caseExact, op, value: def.caseExact ? s : foldCase(s) };
    }
  }
}

function describe(p: AttrPath): string {
  return `${p.uri ? p.uri + ':' : ''}${p.attr}${p.sub ? '.' + p.sub : ''}`;
}

/**
 * Resolve a filter path. An unqualified name the core schema lacks falls back to the one extension that
 * defines it: Entra ID's manager check reads `id eq "…" and manager eq "…"`.
 */
function resolvePath(type: ResourceTypeDef, p: AttrPath): ReturnType<typeof resolveAttribute> {
  const resolved = resolveAttribute(type, p.uri, p.attr, p.sub);
  if (resolved || p.uri !== undefined) return resolved;
  const lower = p.attr.toLowerCase();
  const owners = type.extensions.filter((e) => e.attributes.some((a) => a.name.toLowerCase() === lower));
  return owners.length === 1 ? resolveAttribute(type, owners[0]!.id, p.attr, p.sub) : undefined;
}

/**
 * `sub op value` over the elements of a multi-valued attribute at `base` (only those `filter` selects, when
 * given): some element compares true. As everywhere, `ne` is `not eq` and null is absence, so a resource
 * with no such element is "not equal" (`emails ne "x"`) and "equal to null" (`emails.value eq null`).
 */
function someElement(
  base: DocPath,
  filter: Condition | undefined,
  subDef: AttributeDef,
  op: CompareOp | 'pr',
  value: Literal | undefined,
  where: string,
  raw?: string,
): Condition {
  const sub = pathOf(null, subDef.name);
  const some = (c: Condition): Condition => ({ k: 'elem', path: base, c: filter ? { k: 'and', a: filter, b: c } : c });
  if (value === null && (op === 'eq' || op === 'ne')) {
    const present = some({ k: 'pr', path: sub });
    return op === 'eq' ? { k: 'not', c: present } : present;
  }
  if (op === 'ne') return { k: 'not', c: some(leaf(sub, subDef, 'eq', value, where, raw)) };
  return some(leaf(sub, subDef, op, value, where, raw));
}

function compileLeaf(type: ResourceTypeDef, p: AttrPath, op: CompareOp | 'pr', value: Literal | undefined, raw?: string): Condition {
  const where = describe(p);
  const resolved = resolvePath(type, p);
  if (!resolved) invalid(`unknown attribute '${where}'`);
  const { extension, def } = resolved;
  if (def.returned === 'never') invalid(`'${where}' cannot be filtered on`);

  // Membership references are answered from the membership table, never from a member list.
  if (extension === null && (def.name === 'members' || def.name === 'groups') && type.core.attributes.includes(def)) {
    const subName = resolved.sub?.name ?? 'value';
    if (subName !== 'value') invalid(`only '${def.name}.value' can be filtered on`);
    const side = def.name === 'members' ? 'groupHasMember' : 'userInGroup';
    if (op === 'pr') return { k: 'member', side, value: null };
    if (op !== 'eq' && op !== 'ne') invalid(`'${def.name}' supports only eq, ne and pr`);
    if (value === null) return op === 'eq' ? { k: 'not', c: { k: 'member', side, value: null } } : { k: 'member', side, value: null };
    const cond: Condition = { k: 'member', side, value: typeof value === 'string' ? value : (raw ?? String(value)) };
    return op === 'eq' ? cond : { k: 'not', c: cond };
  }
  if (extension === null && def.name === 'meta' && resolved.sub?.name === 'resourceType') {
    if (op === 'pr') return { k: 'const', value: true };
    const matches = value === type.kind;
    if (op === 'eq') return { k: 'const', value: matches };
    if (op === 'ne') return { k: 'const', value: !matches };
    invalid(`'${op}' is not defined for meta.resourceType`);
  }
  if (extension === null && def.name === 'meta' && !resolved.sub) invalid(`'meta' needs a sub-attribute`);
  // made up when a resource is rendered (from the request's base URL and the row version): not stored
  if (extension === null && def.name === 'meta' && (resolved.sub?.name === 'location' || resolved.sub?.name === 'version')) {
    invalid(`'${where}' cannot be filtered on`);
  }

  if (def.multiValued) {
    const subDef = resolved.sub ?? subAttribute(def, 'value');
    if (!subDef) invalid(`'${where}' cannot be compared; name a sub-attribute`);
    const base = pathOf(extension, def.name);
    if (op === 'pr' && !resolved.sub) return { k: 'pr', path: base };
    return someElement(base, undefined, subDef, op, value, where, raw);
  }
  if (resolved.sub) return leaf(pathOf(extension, def.name, resolved.sub.name), resolved.sub, op, value, where, raw);
  if (def.type === 'complex' && op !== 'pr') {
    // A single-valued reference (`manager`) compares by its `value`, as multi-valued attributes do:
    // `manager eq "<id>"` means `manager.value eq "<id>"`.
    const valueDef = subAttribute(def, 'value');
    if (!valueDef) invalid(`'${where}' is complex; name a sub-attribute`);
    return leaf(pathOf(extension, def.name, valueDef.name), valueDef, op, value, `${where}.value`, raw);
  }
  return leaf(pathOf(extension, def.name), def, op, value, where, raw);
}

/** Compile a filter found inside `attr[…]`: paths are sub-attributes of the element. */
function compileElement(elemDef: AttributeDef, f: Filter): Condition {
  switch (f.op) {
    case 'and':
    case 'or':
      return { k: f.op, a: compileElement(elemDef, f.left), b: compileElement(elemDef, f.right) };
    case 'not':
      return { k: 'not', c: compileElement(elemDef, f.filter) };
    case 'has':
      invalid('nested value filters are not allowed');
      break;
    default: {
      const p = f.path;
      if (p.uri !== undefined || p.sub !== undefined || p.valueFilter) invalid(`'${describe(p)}' is not a sub-attribute of '${elemDef.name}'`);
      const subDef = subAttribute(elemDef, p.attr);
      if (!subDef) invalid(`'${p.attr}' is not a sub-attribute of '${elemDef.name}'`);
      if (f.op === 'pr') return leaf(pathOf(null, subDef.name), subDef, 'pr', undefined, `${elemDef.name}.${p.attr}`);
      return leaf(pathOf(null, subDef.name), subDef, f.op, f.value, `${elemDef.name}.${p.attr}`, f.raw);
    }
  }
}

function compileValuePath(type: ResourceTypeDef, p: AttrPath, inner: Filter, op?: CompareOp | 'pr', value?: Literal, raw?: string): Condition {
  const resolved = resolveAttribute(type, p.uri, p.attr);
  if (!resolved) invalid(`unknown attribute '${describe(p)}'`);
  const { extension, def } = resolved;
  if (!def.multiValued || def.type !== 'complex') invalid(`'${def.name}' is not a multi-valued complex attribute`);
  if (extension === null && (def.name === 'members' || def.name === 'groups')) {
    invalid(`value filters on '${def.name}' are not supported; use '${def.name} eq "<id>"'`);
  }
  const elementCond = compileElement(def, inner);
  if (op === undefined) return { k: 'elem', path: pathOf(extension, def.name), c: elementCond };
  const subDef = subAttribute(def, p.sub!);
  if (!subDef) invalid(`'${p.sub}' is not a sub-attribute of '${def.name}'`);
  return someElement(pathOf(extension, def.name), elementCond, subDef, op, value, `${def.name}.${subDef.name}`, raw);
}

export function compileFilter(type: ResourceTypeDef, f: Filter): Condition {
  switch (f.op) {
    case 'and':
    case 'or':
      return { k: f.op, a: compileFilter(type, f.left), b: compileFilter(type, f.right) };
    case 'not':
      return { k: 'not', c: compileFilter(type, f.filter) };
    case 'has':
      return compileValuePath(type, f.path, f.filter);
    case 'pr':
      if (f.path.valueFilter) return compileValuePath(type, f.path, f.path.valueFilter, 'pr');
      return compileLeaf(type, f.path, 'pr', undefined);
    default:
      if (f.path.valueFilter) return compileValuePath(type, f.path, f.path.valueFilter, f.op, f.value, f.raw);
      return compileLeaf(type, f.path, f.op, f.value, f.raw);
  }
}

/** Parse and compile in one step, mapping syntax errors to 400 invalidFilter. */
export function parseQuery(type: ResourceTypeDef, filter: string): Condition {
  try {
    return compileFilter(type, parseFilter(filter));
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw badRequest('invalidFilter', `invalid filter: ${e.message}`);
    throw e;
  }
}
