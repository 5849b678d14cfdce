// Attribute mappings: read a value from a mirror record by SCIM attribute path, then pass it through the
// mapping's transforms in order. Paths, templates and mappings are compiled once and cached, since the
// reconciler evaluates every user of a connector whenever its settings change.
//
// Semantics shared by every step:
// - A value is a string or absent. Numbers and booleans read from the record become strings (String).
// - "Empty" means absent or only whitespace; a mapping that ends empty gives undefined.
// - A template is rendered with absent values as '' and the result trimmed, so that the separators around
//   a missing part do not dangle (`${name.givenName} ${name.familyName}` without a family name: "Ada").

import type { AttributeMapping, Transform } from './settings.ts';
import { evaluate } from './scim/evaluate.ts';
import type { AttrPath } from './scim/filter.ts';
import { FilterSyntaxError, parsePatchPath } from './scim/filter.ts';
import type { Condition } from './scim/query.ts';
import { compileFilter } from './scim/query.ts';
import type { ResolvedAttribute } from './scim/schema.ts';
import { RESOURCE_TYPES, resolveAttribute, subAttribute } from './scim/schema.ts';
import type { ScimDoc } from './scim/resource.ts';

/** A path, template or transform that cannot be compiled; `position` is an index into the expression. */
export class ExpressionError extends Error {
  constructor(
    message: string,
    public readonly position?: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

export type PathReader = (doc: ScimDoc) => string | undefined;
export type TemplateRenderer = (doc: ScimDoc, value: string | undefined) => string;
export type TransformStep = (value: string | undefined, doc: ScimDoc) => string | undefined;

const User = RESOURCE_TYPES.User;

/** Absent, or nothing but whitespace. */
function isEmptyValue(v: string | undefined): v is undefined {
  return v === undefined || v.trim() === '';
}

function scalar(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'boolean':
      return String(v);
    default:
      return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Where a quoted name from a compiler message occurs in `text` (case-insensitively), else `fallback`. */
function locate(message: string, text: string, base: number, fallback: number): number {
  const quoted = /'([^']+)'/.exec(message)?.[1];
  if (quoted === undefined) return fallback;
  const at = text.toLowerCase().indexOf(quoted.toLowerCase());
  return at < 0 ? fallback : base + at;
}

// Bounded so that callers passing arbitrary strings cannot grow it without limit; settings use a few paths.
const CACHE_LIMIT = 1000;

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

const pathCache = new Map<string, PathReader>();

/**
 * Compile a source path (PATCH path syntax): `userName`, `name.givenName`, `emails[type eq "work"].value`,
 * `emails.value`, `urn:…:enterprise:2.0:User:manager.value`, or an enterprise attribute without its URN
 * (`department`). Reads the first value: for a multi-valued attribute the first element (the first that
 * matches the value filter, when there is one), and of it the named sub-attribute, `value` by default.
 * Throws ExpressionError with the position of the fault.
 */
export function compilePath(path: string): PathReader {
  const hit = pathCache.get(path);
  if (hit) return hit;
  return remember(pathCache, path, buildReader(path));
}

function buildReader(path: string): PathReader {
  let p: AttrPath;
  try {
    p = parsePatchPath(path);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new ExpressionError(e.message.replace(/ at position \d+$/, ''), e.position);
    throw e;
  }
  const lead = path.length - path.trimStart().length;
  const attrPos = lead + (p.uri !== undefined ? p.uri.length + 1 : 0);
  const open = path.indexOf('[');
  const subPos = p.valueFilter ? path.lastIndexOf(']') + 2 : attrPos + p.attr.length + 1;
  const where = `${p.uri !== undefined ? p.uri + ':' : ''}${p.attr}`;

  let resolved: ResolvedAttribute | undefined = resolveAttribute(User, p.uri, p.attr);
  if (!resolved && p.uri === undefined) {
    // as in filters: an enterprise attribute written without its URN
    const lower = p.attr.toLowerCase();
    const owners = User.extensions.filter((x) => x.attributes.some((a) => a.name.toLowerCase() === lower));
    if (owners.length === 1) resolved = resolveAttribute(User, owners[0]!.id, p.attr);
  }
  if (!resolved) {
    if (p.uri !== undefined && p.uri.toLowerCase() !== User.core.id.toLowerCase() && !User.extensions.some((x) => x.id.toLowerCase() === p.uri!.toLowerCase())) {
      throw new ExpressionError(`unknown schema '${p.uri}'`, lead);
    }
    throw new ExpressionError(`unknown attribute '${where}'`, attrPos);
  }
  const { extension, def } = resolved;
  if (def.returned === 'never') throw new ExpressionError(`'${def.name}' is never stored and cannot be read`, attrPos);
  if (extension === null && def.name === 'meta') throw new ExpressionError(`'meta' is not kept in the mirror record`, attrPos);

  let subName: string | undefined;
  if (p.sub !== undefined) {
    const sub = def.type === 'complex' ? subAttribute(def, p.sub) : undefined;
    if (!sub) throw new ExpressionError(`unknown attribute '${def.name}.${p.sub}'`, subPos);
    subName = sub.name;
  } else if (def.type === 'complex') {
    // `emails`, `manager`: their `value`; `name`, `addresses` have none
    const value = subAttribute(def, 'value');
    if (!value) throw new ExpressionError(`'${def.name}' is complex; name a sub-attribute, e.g. '${def.name}.${def.subAttributes?.[0]?.name ?? 'value'}'`, attrPos);
    subName = value.name;
  }

  let elementFilter: Condition | undefined;
  if (p.valueFilter) {
    let compiled: Condition;
    try {
      compiled = compileFilter(User, { op: 'has', path: { ...(p.uri !== undefined ? { uri: p.uri } : {}), attr: def.name }, filter: p.valueFilter });
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      const inner = path.slice(open + 1, path.lastIndexOf(']'));
      throw new ExpressionError(e.message, locate(e.message, inner, open + 1, open + 1));
    }
    if (compiled.k !== 'elem') throw new ExpressionError(`a value filter needs a multi-valued attribute`, open);
    elementFilter = compiled.c;
  }

  const name = def.name;
  const container = (doc: ScimDoc): unknown => {
    if (extension === null) return doc[name];
    const ext = doc[extension];
    return isObject(ext) ? ext[name] : undefined;
  };

  if (def.multiValued) {
    const filter = elementFilter;
    const sub = subName;
    return (doc) => {
      const list = container(doc);
      if (!Array.isArray(list)) return undefined;
      for (const el of list) {
        if (filter !== undefined) {
          if (!isObject(el) || !evaluate(filter, el)) continue;
        }
        if (sub === undefined) return scalar(el);
        return isObject(el) ? scalar(el[sub]) : undefined;
      }
      return undefined;
    };
  }
  if (subName !== undefined) {
    const sub = subName;
    return (doc) => {
      const v = container(doc);
      return isObject(v) ? scalar(v[sub]) : undefined;
    };
  }
  return (doc) => scalar(container(doc));
}

/** The first value at `path` in the record (see compilePath); throws ExpressionError for a bad path. */
export function readPath(doc: ScimDoc, path: string): string | undefined {
  return compilePath(path)(doc);
}

/** The index of the `}` closing a `${` that starts at `from`, skipping double-quoted filter literals. */
function closingBrace(template: string, from: number): number {
  let quoted = false;
  for (let i = from; i < template.length; i++) {
    const c = template[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '}') return i;
  }
  return -1;
}

const templateCache = new Map<string, TemplateRenderer>();

/**
 * Compile a template: literal text with `${path}` placeholders (any source path; `${value}` is the current
 * value). There is no escape: a `$` not followed by `{` is literal. Throws ExpressionError whose position
 * is an index into the template.
 */
export function compileTemplate(template: string): TemplateRenderer {
  const hit = templateCache.get(template);
  if (hit) return hit;
  return remember(templateCache, template, buildRenderer(template));
}

function buildRenderer(template: string): TemplateRenderer {
  const parts: (string | PathReader | null)[] = []; // null: the current value
  let i = 0;
  for (;;) {
    const start = template.indexOf('${', i);
    if (start < 0) {
      if (i < template.length) parts.push(template.slice(i));
      break;
    }
    if (start > i) parts.push(template.slice(i, start));
    const end = closingBrace(template, start + 2);
    if (end < 0) throw new ExpressionError("unterminated '${'", start);
    const raw = template.slice(start + 2, end);
    const inner = raw.trim();
    const innerPos = start + 2 + (raw.length - raw.trimStart().length);
    if (inner === '') throw new ExpressionError("empty '${}'", start);
    if (inner.toLowerCase() === 'value') parts.push(null);
    else {
      try {
        parts.push(compilePath(inner));
      } catch (e) {
        if (e instanceof ExpressionError) throw new ExpressionError(e.message, innerPos + (e.position ?? 0));
        throw e;
      }
    }
    i = end + 1;
  }
  return (doc, value) => {
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') out += part;
      else if (part === null) out += value ?? '';
      else out += part(doc) ?? '';
    }
    return out.trim();
  };
}

/** Render a template against a record (`${value}`: `value`); absent values render as '', the result is trimmed. */
export function renderTemplate(template: string, doc: ScimDoc, value?: string): string {
  return compileTemplate(template)(doc, value);
}

export const TRANSFORM_NAMES = ['regexReplace', 'lower', 'upper', 'trim', 'template', 'firstNonEmpty'] as const;

/** The flags a regexReplace may carry. */
export const REGEX_FLAGS = 'gimsuy';

/** A path, or a template when it contains `${`: as used by firstNonEmpty. */
export function compileSource(source: string): PathReader {
  if (source.includes('${')) {
    const render = compileTemplate(source);
    return (doc) => render(doc, undefined);
  }
  return compilePath(source);
}

/** Compile one transform; throws ExpressionError (the validator reports which field it concerns). */
export function compileTransform(t: Transform): TransformStep {
  switch (t.fn) {
    case 'regexReplace': {
      let re: RegExp;
      try {
        re = new RegExp(t.pattern, t.flags ?? '');
      } catch (e) {
        throw new ExpressionError((e as Error).message);
      }
      const replacement = t.replacement;
      return (v) => {
        if (v === undefined) return v;
        re.lastIndex = 0; // a sticky expression without g would otherwise start where the last call ended
        return v.replace(re, replacement);
      };
    }
    case 'lower':
      return (v) => v?.toLowerCase();
    case 'upper':
      return (v) => v?.toUpperCase();
    case 'trim':
      return (v) => v?.trim();
    case 'template': {
      const render = compileTemplate(t.template);
      return (v, doc) => render(doc, v);
    }
    case 'firstNonEmpty': {
      const readers = t.sources.map(compileSource);
      return (v, doc) => {
        if (!isEmptyValue(v)) return v;
        for (const read of readers) {
          const x = read(doc);
          if (!isEmptyValue(x)) return x;
        }
        return undefined;
      };
    }
    default:
      throw new ExpressionError(`unknown transform '${(t as { fn: unknown }).fn as string}'`);
  }
}

const mappingCache = new WeakMap<AttributeMapping, PathReader>();

/** Compile a mapping (cached per mapping object: treat settings as immutable once in use). */
export function compileMapping(mapping: AttributeMapping): PathReader {
  const hit = mappingCache.get(mapping);
  if (hit) return hit;
  const read = mapping.source !== undefined ? compilePath(mapping.source) : undefined;
  const steps = (mapping.transforms ?? []).map(compileTransform);
  const fn: PathReader = (doc) => {
    let v = read ? read(doc) : undefined;
    for (const step of steps) v = step(v, doc);
    return isEmptyValue(v) ? undefined : v;
  };
  mappingCache.set(mapping, fn);
  return fn;
}

/** The mapped value: source read, transforms applied in order; empty (or only whitespace) gives undefined. */
export function applyMapping(mapping: AttributeMapping, doc: ScimDoc): string | undefined {
  return compileMapping(mapping)(doc);
}
