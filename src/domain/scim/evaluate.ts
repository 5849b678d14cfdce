// In-memory evaluation of a compiled filter. Used by the rules (conditions on mirror records) and as the
// reference the SQL translation is checked against: both must answer every filter the same way.

import type { Condition, DocPath } from './query.ts';
import { foldCase } from './schema.ts';

export interface MembershipContext {
  /** for a group: the ids of its members */
  memberIds?: ReadonlySet<string>;
  /** for a user: the ids of the groups it is a direct member of */
  groupIds?: ReadonlySet<string>;
}

type Doc = Record<string, unknown>;

export function valueAt(doc: Doc, path: DocPath): unknown {
  let cur: unknown = path.extension === null ? doc : doc[path.extension];
  for (const name of path.names) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Doc)[name];
  }
  return cur;
}

/** Order strings by Unicode code point, as SQLite's BINARY and PostgreSQL's "C" collations do. */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

function present(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function compare(cond: Extract<Condition, { k: 'cmp' }>, v: unknown): boolean {
  if (v === undefined || v === null) return false;
  switch (cond.kind) {
    case 'boolean':
      if (typeof v !== 'boolean') return false;
      return cond.op === 'eq' ? v === cond.value : v !== cond.value;
    case 'number': {
      if (typeof v !== 'number') return false;
      const n = cond.value as number;
      return ({ eq: v === n, ne: v !== n, gt: v > n, ge: v >= n, lt: v < n, le: v <= n } as Record<string, boolean>)[cond.op] ?? false;
    }
    case 'dateTime':
    case 'string': {
      if (typeof v !== 'string') return false;
      const s = cond.caseExact ? v : foldCase(v);
      const lit = cond.value as string;
      switch (cond.op) {
        case 'eq':
          return s === lit;
        case 'ne':
          return s !== lit;
        case 'co':
          return s.includes(lit);
        case 'sw':
          return s.startsWith(lit);
        case 'ew':
          return s.endsWith(lit);
        case 'gt':
          return compareCodePoints(s, lit) > 0;
        case 'ge':
          return compareCodePoints(s, lit) >= 0;
        case 'lt':
          return compareCodePoints(s, lit) < 0;
        case 'le':
          return compareCodePoints(s, lit) <= 0;
      }
    }
  }
}

export function evaluate(cond: Condition, doc: Doc, membership: MembershipContext = {}): boolean {
  switch (cond.k) {
    case 'and':
      return evaluate(cond.a, doc, membership) && evaluate(cond.b, doc, membership);
    case 'or':
      return evaluate(cond.a, doc, membership) || evaluate(cond.b, doc, membership);
    case 'not':
      return !evaluate(cond.c, doc, membership);
    case 'const':
      return cond.value;
    case 'pr':
      return present(valueAt(doc, cond.path));
    case 'cmp':
      // `ne` is the negation of `eq`: an absent attribute is "not equal".
      if (cond.op === 'ne') return !compare({ ...cond, op: 'eq' }, valueAt(doc, cond.path));
      return compare(cond, valueAt(doc, cond.path));
    case 'elem': {
      const arr = valueAt(doc, cond.path);
      if (!Array.isArray(arr)) return false;
      return arr.some((el) => el !== null && typeof el === 'object' && evaluate(cond.c, el as Doc, membership));
    }
    case 'member': {
      const set = cond.side === 'groupHasMember' ? membership.memberIds : membership.groupIds;
      if (!set) return false;
      return cond.value === null ? set.size > 0 : set.has(cond.value);
    }
  }
}
