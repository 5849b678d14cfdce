// The property model of users and groups, $select resolution and a small $filter subset.

export type EntityKind = 'user' | 'group' | 'servicePrincipal';

export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly innerExtra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const USER_DEFAULT = [
  'businessPhones', 'displayName', 'givenName', 'jobTitle', 'mail', 'mobilePhone',
  'officeLocation', 'preferredLanguage', 'surname', 'userPrincipalName', 'id',
] as const;

const USER_EXTRA = [
  'accountEnabled', 'employeeId', 'employeeType', 'onPremisesSamAccountName', 'onPremisesImmutableId',
  'onPremisesSyncEnabled', 'onPremisesUserPrincipalName', 'onPremisesDistinguishedName',
  'onPremisesDomainName', 'onPremisesLastSyncDateTime', 'onPremisesSecurityIdentifier', 'userType',
  'createdDateTime', 'deletedDateTime', 'mailNickname', 'otherMails', 'proxyAddresses', 'department',
  'companyName', 'usageLocation', 'city', 'country', 'state', 'streetAddress', 'postalCode',
  'externalUserState', 'creationType', 'identities', 'employeeHireDate', 'faxNumber',
  'showInAddressList', 'ageGroup', 'preferredDataLocation', 'securityIdentifier',
  // navigation property; tracked by users/delta when selected
  'manager',
] as const;

/** properties Graph only returns for a single user (selecting them on a collection gives 501) */
const USER_SINGLE_ONLY = new Set(['aboutMe', 'birthday', 'hireDate', 'interests', 'mySite', 'pastProjects', 'preferredName', 'responsibilities', 'schools', 'skills']);

export const GROUP_PROPS = [
  'id', 'deletedDateTime', 'classification', 'createdDateTime', 'creationOptions', 'description',
  'displayName', 'expirationDateTime', 'groupTypes', 'isAssignableToRole', 'mail', 'mailEnabled',
  'mailNickname', 'membershipRule', 'membershipRuleProcessingState', 'onPremisesDomainName',
  'onPremisesLastSyncDateTime', 'onPremisesNetBiosName', 'onPremisesSamAccountName',
  'onPremisesSecurityIdentifier', 'onPremisesSyncEnabled', 'preferredDataLocation',
  'preferredLanguage', 'proxyAddresses', 'renewedDateTime', 'resourceBehaviorOptions',
  'resourceProvisioningOptions', 'securityEnabled', 'securityIdentifier', 'theme', 'visibility',
] as const;

export const SP_PROPS = [
  'id', 'appId', 'displayName', 'appRoleAssignmentRequired', 'appRoles', 'servicePrincipalType',
  'accountEnabled', 'appDisplayName', 'tags', 'deletedDateTime',
] as const;

export const ASSIGNMENT_PROPS = [
  'id', 'deletedDateTime', 'appRoleId', 'createdDateTime', 'principalDisplayName', 'principalId',
  'principalType', 'resourceDisplayName', 'resourceId',
] as const;

function caseMap(names: readonly string[]): Map<string, string> {
  return new Map(names.map((n) => [n.toLowerCase(), n]));
}

export const MODEL: Record<EntityKind | 'assignment', { type: string; all: Map<string, string>; defaults: readonly string[] }> = {
  user: { type: 'microsoft.graph.user', all: caseMap([...USER_DEFAULT, ...USER_EXTRA]), defaults: USER_DEFAULT },
  group: { type: 'microsoft.graph.group', all: caseMap([...GROUP_PROPS, 'members']), defaults: GROUP_PROPS },
  servicePrincipal: { type: 'microsoft.graph.servicePrincipal', all: caseMap(SP_PROPS), defaults: SP_PROPS },
  assignment: { type: 'microsoft.graph.appRoleAssignment', all: caseMap(ASSIGNMENT_PROPS), defaults: ASSIGNMENT_PROPS },
};

/**
 * Resolve `$select` for one or more entity types (directoryObject collections accept the properties
 * of every member type). Returns canonical names, or undefined when $select is absent.
 */
export function parseSelect(raw: string | null, kinds: Array<EntityKind | 'assignment'>, opts: { collection: boolean; allowMembers?: boolean }): string[] | undefined {
  if (raw === null) return undefined;
  const out: string[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    if (name === '*') {
      for (const k of kinds) for (const p of MODEL[k].defaults) if (!out.includes(p)) out.push(p);
      continue;
    }
    let canonical: string | undefined;
    for (const k of kinds) {
      canonical ??= MODEL[k].all.get(name.toLowerCase());
    }
    if (canonical === 'members' && !opts.allowMembers) canonical = undefined;
    if (canonical === 'manager' && !opts.allowMembers) canonical = undefined;
    if (canonical === undefined) {
      if (kinds.includes('user') && USER_SINGLE_ONLY.has(name) && opts.collection) {
        throw new GraphError(501, 'NotImplemented', `This operation target is not yet supported.`);
      }
      if (kinds.includes('user') && USER_SINGLE_ONLY.has(name)) {
        canonical = name;
      } else {
        const type = kinds.length === 1 ? MODEL[kinds[0]!].type : 'microsoft.graph.directoryObject';
        throw new GraphError(400, 'Request_BadRequest', `Could not find a property named '${name}' on type '${type}'.`);
      }
    }
    if (!out.includes(canonical)) out.push(canonical);
  }
  if (!out.includes('id')) out.unshift('id');
  return out;
}

/** Parse and range-check `$top` (directory collections reject values outside 1..999). */
export function parseTop(raw: string | null, fallback: number): number {
  if (raw === null) return fallback;
  const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 999) {
    throw new GraphError(400, 'Request_UnsupportedQuery', `Invalid page size specified: '${raw}'. Must be between 1 and 999 inclusive.`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// $filter

type Literal = string | number | boolean | null;
export type FilterNode =
  | { op: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { op: 'not'; inner: FilterNode }
  | { op: 'eq' | 'ne' | 'ge' | 'le' | 'gt' | 'lt'; prop: string; value: Literal }
  | { op: 'in'; prop: string; values: Literal[] }
  | { op: 'startswith' | 'endswith'; prop: string; value: string };

type Token = { t: 'str'; v: string } | { t: 'word'; v: string } | { t: 'punct'; v: '(' | ')' | ',' };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push({ t: 'punct', v: c });
      i++;
    } else if (c === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw unsupported('Unterminated string literal.');
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            s += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        s += src[i];
        i++;
      }
      out.push({ t: 'str', v: s });
    } else {
      let w = '';
      while (i < src.length && !" \t(),'".includes(src[i]!)) w += src[i++];
      out.push({ t: 'word', v: w });
    }
  }
  return out;
}

function unsupported(message = 'Unsupported Query.'): GraphError {
  return new GraphError(400, 'Request_UnsupportedQuery', message);
}

export interface ParsedFilter {
  node: FilterNode;
  /** uses ne / not / endsWith, which need ConsistencyLevel: eventual and $count=true */
  advanced: boolean;
}

const OPERATORS: Record<string, Record<string, readonly string[]>> = {
  user: {
    id: ['eq', 'in', 'ne', 'not'],
    accountEnabled: ['eq', 'ne', 'not', 'in'],
    userPrincipalName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith', 'endswith'],
    mail: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith', 'endswith'],
    employeeId: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    onPremisesSamAccountName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    onPremisesImmutableId: ['eq', 'ne', 'not', 'ge', 'le', 'in'],
    onPremisesSyncEnabled: ['eq', 'ne', 'not', 'in'],
    displayName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    givenName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    surname: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    jobTitle: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    department: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    userType: ['eq', 'ne', 'not', 'in'],
    mailNickname: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    companyName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
  },
  group: {
    id: ['eq', 'in', 'ne', 'not'],
    displayName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    description: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    mail: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith', 'endswith'],
    mailEnabled: ['eq', 'ne', 'not'],
    mailNickname: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    securityEnabled: ['eq', 'ne', 'not', 'in'],
    onPremisesSyncEnabled: ['eq', 'ne', 'not', 'in'],
    onPremisesSamAccountName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
  },
  servicePrincipal: {
    id: ['eq', 'in'],
    appId: ['eq', 'in'],
    displayName: ['eq', 'ne', 'not', 'ge', 'le', 'in', 'startswith'],
    servicePrincipalType: ['eq', 'ne', 'not', 'in'],
  },
};

const RESOURCE_NAME: Record<EntityKind, string> = { user: 'User', group: 'Group', servicePrincipal: 'ServicePrincipal' };

/** Parse the supported `$filter` subset: eq/ne/ge/le/gt/lt, in, startsWith, endsWith, not, and, or, parentheses. */
export function parseFilter(src: string, kind: EntityKind): ParsedFilter {
  const toks = tokenize(src);
  let pos = 0;
  let advanced = false;
  const peek = (): Token | undefined => toks[pos];
  const word = (t: Token | undefined, v: string): boolean => t?.t === 'word' && t.v.toLowerCase() === v;
  const expect = (v: '(' | ')' | ','): void => {
    const t = toks[pos++];
    if (t?.t !== 'punct' || t.v !== v) throw new GraphError(400, 'BadRequest', `Invalid filter clause: syntax error near position ${pos}.`);
  };
  const resolveProp = (raw: string, op: string): string => {
    const props = OPERATORS[kind]!;
    const canonical = Object.keys(props).find((p) => p.toLowerCase() === raw.toLowerCase());
    if (canonical === undefined) {
      if (raw.includes('/')) throw unsupported(`Unsupported or invalid query filter clause specified for property '${raw}' of resource '${RESOURCE_NAME[kind]}'.`);
      const known = MODEL[kind].all.has(raw.toLowerCase());
      if (!known) throw new GraphError(400, 'Request_BadRequest', `Could not find a property named '${raw}' on type '${MODEL[kind].type}'.`);
      throw unsupported(`Unsupported or invalid query filter clause specified for property '${raw}' of resource '${RESOURCE_NAME[kind]}'.`);
    }
    if (!props[canonical]!.includes(op)) {
      throw unsupported(`Unsupported or invalid query filter clause specified for property '${canonical}' of resource '${RESOURCE_NAME[kind]}'.`);
    }
    return canonical;
  };
  const literal = (): Literal => {
    const t = toks[pos++];
    if (t?.t === 'str') return t.v;
    if (t?.t === 'word') {
      const v = t.v.toLowerCase();
      if (v === 'true') return true;
      if (v === 'false') return false;
      if (v === 'null') return null;
      if (/^-?\d+(\.\d+)?$/.test(t.v)) return Number(t.v);
    }
    throw new GraphError(400, 'BadRequest', `Invalid filter clause: literal expected near position ${pos}.`);
  };
  const primary = (): FilterNode => {
    const t = peek();
    if (t?.t === 'punct' && t.v === '(') {
      pos++;
      const inner = orExpr();
      expect(')');
      return inner;
    }
    if (word(t, 'not')) {
      pos++;
      advanced = true;
      return { op: 'not', inner: primary() };
    }
    if (t?.t !== 'word') throw new GraphError(400, 'BadRequest', 'Invalid filter clause.');
    pos++;
    const fn = t.v.toLowerCase();
    if ((fn === 'startswith' || fn === 'endswith') && peek()?.t === 'punct') {
      expect('(');
      const p = toks[pos++];
      if (p?.t !== 'word') throw new GraphError(400, 'BadRequest', 'Invalid filter clause.');
      expect(',');
      const v = literal();
      expect(')');
      if (typeof v !== 'string') throw new GraphError(400, 'BadRequest', `Invalid filter clause: ${fn} expects a string.`);
      if (fn === 'endswith') advanced = true;
      return { op: fn, prop: resolveProp(p.v, fn), value: v };
    }
    if (t.v.includes('/any(') || t.v.includes('/all(') || /\/(any|all)$/i.test(t.v)) throw unsupported();
    const opTok = toks[pos++];
    const op = opTok?.t === 'word' ? opTok.v.toLowerCase() : '';
    if (op === 'in') {
      expect('(');
      const values: Literal[] = [literal()];
      while (peek()?.t === 'punct' && (peek() as { v: string }).v === ',') {
        pos++;
        values.push(literal());
      }
      expect(')');
      return { op: 'in', prop: resolveProp(t.v, 'in'), values };
    }
    if (op === 'eq' || op === 'ne' || op === 'ge' || op === 'le' || op === 'gt' || op === 'lt') {
      const value = literal();
      if (op === 'ne') advanced = true;
      const checkOp = op === 'gt' ? 'ge' : op === 'lt' ? 'le' : op;
      return { op, prop: resolveProp(t.v, checkOp), value };
    }
    throw new GraphError(400, 'BadRequest', `Invalid filter clause: unknown operator '${opTok && 'v' in opTok ? opTok.v : ''}'.`);
  };
  const andExpr = (): FilterNode => {
    let left = primary();
    while (word(peek(), 'and')) {
      pos++;
      left = { op: 'and', left, right: primary() };
    }
    return left;
  };
  const orExpr = (): FilterNode => {
    let left = andExpr();
    while (word(peek(), 'or')) {
      pos++;
      left = { op: 'or', left, right: andExpr() };
    }
    return left;
  };
  const node = orExpr();
  if (pos !== toks.length) throw new GraphError(400, 'BadRequest', 'Invalid filter clause: unexpected trailing input.');
  return { node, advanced };
}

function norm(v: unknown): unknown {
  return typeof v === 'string' ? v.toLowerCase() : v;
}

/** Directory string comparisons are case-insensitive. */
export function evalFilter(node: FilterNode, obj: Record<string, unknown>): boolean {
  switch (node.op) {
    case 'and':
      return evalFilter(node.left, obj) && evalFilter(node.right, obj);
    case 'or':
      return evalFilter(node.left, obj) || evalFilter(node.right, obj);
    case 'not':
      return !evalFilter(node.inner, obj);
    case 'in':
      return node.values.some((v) => norm(obj[node.prop] ?? null) === norm(v));
    case 'startswith': {
      const v = obj[node.prop];
      return typeof v === 'string' && v.toLowerCase().startsWith(node.value.toLowerCase());
    }
    case 'endswith': {
      const v = obj[node.prop];
      return typeof v === 'string' && v.toLowerCase().endsWith(node.value.toLowerCase());
    }
    default: {
      const a = norm(obj[node.prop] ?? null);
      const b = norm(node.value);
      switch (node.op) {
        case 'eq':
          return a === b;
        case 'ne':
          return a !== b;
        default: {
          if (a === null || b === null) return false;
          const x = a as string | number;
          const y = b as string | number;
          return node.op === 'ge' ? x >= y : node.op === 'le' ? x <= y : node.op === 'gt' ? x > y : x < y;
        }
      }
    }
  }
}
