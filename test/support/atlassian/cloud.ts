// Atlassian Cloud user provisioning, SCIM 2.0 under /scim/directory/{directoryId}
// (shared/reference/atlassian.md §6). A deleted user is deactivated and gone from SCIM: every call
// on it answers 404, and only a new POST /Users with its userName brings it back.

import { randomBytes, randomUUID } from 'node:crypto';
import { Fail } from './server.ts';
import type { Ctx, Handler, Product, ProductEnv, Reply } from './server.ts';
import type { GroupRecord, UserRecord } from './state.ts';
import { intParam } from './state.ts';

const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const ATLASSIAN = 'urn:scim:schemas:extension:atlassian-external:1.0';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
/** Atlassian returns at most 100 resources per page */
const MAX_COUNT = 100;

type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue' | 'invalidVers' | 'sensitive';

interface Email {
  value: string;
  type?: string;
  primary?: boolean;
}

/** a user's SCIM attributes, as a client sees them */
interface Attrs {
  userName: string;
  active: boolean;
  displayName?: string;
  emails: Email[];
  externalId?: string;
  name?: Record<string, string>;
  nickName?: string;
  title?: string;
  preferredLanguage?: string;
  timezone?: string;
  department?: string;
  organization?: string;
  phoneNumbers?: unknown[];
}

const SIMPLE = ['displayName', 'externalId', 'nickName', 'title', 'preferredLanguage', 'timezone', 'department', 'organization'] as const;
type Simple = (typeof SIMPLE)[number];
const NAME_PARTS = ['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix'];

function scimError(status: number, detail: string, scimType?: ScimType): Reply {
  if (status === 401 || status === 403) return { status, body: { error: detail, traceId: randomBytes(8).toString('hex') } };
  return { status, body: { schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}), detail } };
}

function fail(status: number, detail: string, scimType?: ScimType): Fail {
  return new Fail(scimError(status, detail, scimType));
}

/** `attr eq "value"`, the only filter Atlassian takes */
function parseFilter(filter: string): { attr: string; value: string } {
  const m = /^\s*([\w.:]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(filter);
  if (!m) throw fail(400, `Unsupported filter '${filter}': only 'attribute eq "value"' is supported.`, 'invalidFilter');
  return { attr: m[1]!.toLowerCase(), value: m[2]!.replace(/\\(.)/g, '$1') };
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw fail(400, `${what} must be a string.`, 'invalidValue');
  return v;
};

export function createCloud(env: ProductEnv): Product {
  const { dir, options } = env;
  const base = (): string => `${env.origin}/scim/directory/${options.directoryId}`;
  const iso = (t: number): string => new Date(t).toISOString();

  // users

  const emailsOf = (u: UserRecord): Email[] => {
    if (u.email === null) return [];
    const stored = (u.extra.emails as Email[] | undefined) ?? [];
    if (stored.length === 0) return [{ value: u.email, type: 'work', primary: true }];
    const i = Math.max(0, stored.findIndex((e) => e.primary));
    return stored.map((e, j) => (j === i ? { ...e, value: u.email!, primary: true } : e));
  };

  const attrsOf = (u: UserRecord): Attrs => ({
    ...((u.extra.scim as Partial<Attrs> | undefined) ?? {}),
    userName: u.name,
    active: u.active,
    displayName: u.displayName,
    emails: emailsOf(u),
  });

  const primaryEmail = (emails: Email[]): string | null => (emails.find((e) => e.primary) ?? emails[0])?.value ?? null;

  const derivedDisplayName = (a: Attrs): string =>
    a.displayName ?? a.name?.formatted ?? ([a.name?.givenName, a.name?.familyName].filter(Boolean).join(' ') || a.userName);

  /** refuses what Atlassian refuses, then writes the attributes to the record */
  const checkAttrs = (a: Attrs, self: UserRecord | undefined): void => {
    if (!a.userName || a.userName.trim() === '') throw fail(400, 'userName is required.', 'invalidValue');
    const other = dir.findUser(a.userName);
    if (other && other !== self && !other.extra.scimDeleted) throw fail(409, `A user with userName '${a.userName}' already exists in this directory.`, 'uniqueness');
    if (a.emails.length === 0) throw fail(400, 'emails is required: one email address must be given.', 'invalidValue');
    for (const e of a.emails) if (typeof e?.value !== 'string' || !e.value.includes('@')) throw fail(400, `'${String(e?.value)}' is not a valid email address.`, 'invalidValue');
    const email = primaryEmail(a.emails)!;
    const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
    if (!options.verifiedDomains.includes(domain)) {
      throw fail(400, `The email domain '${domain}' of '${email}' is not verified for this organization; only users with an email address on a verified domain can be provisioned.`, 'invalidValue');
    }
  };

  const writeAttrs = (u: UserRecord, a: Attrs): void => {
    if (a.userName !== u.name) dir.renameUser(u, a.userName);
    u.active = a.active;
    u.displayName = derivedDisplayName(a);
    u.email = primaryEmail(a.emails);
    u.extra.emails = a.emails.map((e) => ({ ...e }));
    const rest: Partial<Attrs> = {};
    for (const k of SIMPLE) if (k !== 'displayName' && a[k] !== undefined) rest[k] = a[k];
    if (a.name) rest.name = { ...a.name };
    if (a.phoneNumbers) rest.phoneNumbers = a.phoneNumbers;
    u.extra.scim = rest;
    dir.changed(u);
  };

  /** the attributes of a POST or PUT body */
  const attrsFromBody = (body: unknown, keepActive: boolean | undefined): Attrs => {
    const b = (body ?? {}) as Record<string, unknown>;
    const ent = (b[ENTERPRISE] ?? {}) as Record<string, unknown>;
    const a: Attrs = {
      userName: typeof b.userName === 'string' ? b.userName : '',
      active: typeof b.active === 'boolean' ? b.active : (keepActive ?? true),
      emails: Array.isArray(b.emails) ? (b.emails as Email[]).map((e) => ({ ...e })) : [],
    };
    for (const k of SIMPLE) if (typeof b[k] === 'string') a[k] = b[k] as string;
    for (const k of ['department', 'organization'] as const) if (typeof ent[k] === 'string') a[k] = ent[k] as string;
    if (b.name && typeof b.name === 'object') a.name = { ...(b.name as Record<string, string>) };
    if (Array.isArray(b.phoneNumbers)) a.phoneNumbers = b.phoneNumbers;
    return a;
  };

  const renderUser = (u: UserRecord): Record<string, unknown> => {
    const a = attrsOf(u);
    const out: Record<string, unknown> = { schemas: [CORE_USER, ENTERPRISE, ATLASSIAN], id: u.id };
    if (a.externalId !== undefined) out.externalId = a.externalId;
    out.userName = a.userName;
    out.emails = a.emails;
    if (a.name) out.name = a.name;
    out.displayName = u.displayName;
    for (const k of ['nickName', 'title', 'preferredLanguage', 'timezone', 'department', 'organization'] as const) if (a[k] !== undefined) out[k] = a[k];
    if (a.phoneNumbers) out.phoneNumbers = a.phoneNumbers;
    out.active = u.active;
    out.groups = dir.groupsOf(u).map((g) => ({ type: 'direct', value: g.id, display: g.name, $ref: `${base()}/Groups/${g.id}` }));
    out[ENTERPRISE] = { ...(a.organization !== undefined ? { organization: a.organization } : {}), ...(a.department !== undefined ? { department: a.department } : {}) };
    out[ATLASSIAN] = { atlassianAccountId: u.extra.accountId as string };
    out.meta = { resourceType: 'USER', location: `${base()}/Users/${u.id}`, created: iso(u.created), lastModified: iso(u.modified) };
    return out;
  };

  const liveUser = (id: string): UserRecord => {
    const u = dir.userById(id);
    if (!u || u.extra.scimDeleted) throw fail(404, `User ${id} does not exist in this directory.`);
    return u;
  };

  const newAccountId = (): string => `712020:${randomUUID()}`;

  /** applies one PatchOp operation to a user's attributes */
  const patchUser = (a: Attrs, op: string, path: string | undefined, value: unknown): void => {
    if (path === undefined || path === '') {
      if (op === 'remove') throw fail(400, 'A remove operation needs a path.', 'noTarget');
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fail(400, 'An operation without a path needs an object value.', 'invalidValue');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (k === ENTERPRISE && v && typeof v === 'object') {
          for (const [ek, ev] of Object.entries(v as Record<string, unknown>)) patchUser(a, op, `${ENTERPRISE}:${ek}`, ev);
        } else patchUser(a, op, k, v);
      }
      return;
    }
    const p = path.toLowerCase();
    const remove = op === 'remove';
    const simple = SIMPLE.find((k) => k.toLowerCase() === p) ?? SIMPLE.find((k) => `${ENTERPRISE}:${k}`.toLowerCase() === p);
    if (simple) {
      if (remove) delete a[simple as Simple];
      else a[simple as Simple] = str(value, path);
      return;
    }
    if (p === 'active') {
      if (remove) throw fail(400, 'active cannot be removed.', 'mutability');
      if (typeof value === 'boolean') a.active = value;
      else if (typeof value === 'string' && /^(true|false)$/i.test(value)) a.active = value.toLowerCase() === 'true';
      else throw fail(400, 'active must be a boolean.', 'invalidValue');
      return;
    }
    if (p === 'username') {
      if (remove) throw fail(400, 'userName cannot be removed.', 'mutability');
      a.userName = str(value, path);
      return;
    }
    if (p === 'name') {
      if (remove) delete a.name;
      else if (value && typeof value === 'object' && !Array.isArray(value)) a.name = op === 'add' ? { ...a.name, ...(value as Record<string, string>) } : { ...(value as Record<string, string>) };
      else throw fail(400, 'name must be an object.', 'invalidValue');
      return;
    }
    if (p.startsWith('name.')) {
      const part = NAME_PARTS.find((n) => n.toLowerCase() === p.slice(5));
      if (!part) throw fail(400, `Unknown attribute '${path}'.`, 'invalidPath');
      a.name = { ...a.name };
      if (remove) delete a.name[part];
      else a.name[part] = str(value, path);
      return;
    }
    if (p === 'emails') {
      if (remove) {
        a.emails = [];
        return;
      }
      if (!Array.isArray(value)) throw fail(400, 'emails must be an array.', 'invalidValue');
      const given = (value as Email[]).map((e) => ({ ...e }));
      if (op === 'add') {
        if (given.some((e) => e.primary)) for (const e of a.emails) e.primary = false;
        a.emails = [...a.emails.filter((e) => !given.some((g) => g.value?.toLowerCase() === e.value.toLowerCase())), ...given];
      } else a.emails = given;
      return;
    }
    const em = /^emails\[(type|primary)\s+eq\s+"?([^"\]]*)"?\]\.value$/i.exec(path);
    if (em) {
      const byType = em[1]!.toLowerCase() === 'type';
      const want = em[2]!.toLowerCase();
      const i = a.emails.findIndex((e) => (byType ? (e.type ?? '').toLowerCase() === want : String(Boolean(e.primary)) === want));
      if (remove) {
        if (i >= 0) a.emails.splice(i, 1);
      } else if (i >= 0) a.emails[i] = { ...a.emails[i]!, value: str(value, path) };
      else a.emails.push(byType ? { value: str(value, path), type: em[2]!, primary: a.emails.length === 0 } : { value: str(value, path), type: 'work', primary: true });
      return;
    }
    if (p === 'phonenumbers') {
      if (remove) delete a.phoneNumbers;
      else if (Array.isArray(value)) a.phoneNumbers = op === 'add' ? [...(a.phoneNumbers ?? []), ...value] : value;
      else throw fail(400, 'phoneNumbers must be an array.', 'invalidValue');
      return;
    }
    throw fail(400, `Unknown or unsupported attribute path '${path}'.`, 'invalidPath');
  };

  // groups

  const renderGroup = (g: GroupRecord): Record<string, unknown> => ({
    schemas: [CORE_GROUP],
    id: g.id,
    displayName: g.name,
    ...(g.extra.externalId !== undefined ? { externalId: g.extra.externalId } : {}),
    members: dir.members(g).map((u) => ({ type: 'User', value: u.id, display: u.name, $ref: `${base()}/Users/${u.id}` })),
    meta: { resourceType: 'GROUP', location: `${base()}/Groups/${g.id}`, created: iso(g.created), lastModified: iso(g.modified) },
  });

  const liveGroup = (id: string): GroupRecord => {
    const g = dir.groupById(id);
    if (!g) throw fail(404, `Group ${id} does not exist in this directory.`);
    return g;
  };

  /** the users a members value names; `bad` says how to refuse an unknown one */
  const memberUsers = (value: unknown, bad: (id: string) => Fail): UserRecord[] => {
    if (!Array.isArray(value)) throw fail(400, 'members must be an array of {"value": "<user id>"}.', 'invalidValue');
    return value.map((m) => {
      const id = (m as { value?: unknown })?.value;
      if (typeof id !== 'string') throw fail(400, 'Each member needs a "value" with the user id.', 'invalidValue');
      const u = dir.userById(id);
      if (!u || u.extra.scimDeleted) throw bad(id);
      return u;
    });
  };

  const badRequestException = (message: string, scimErrorType: ScimType): Fail =>
    new Fail({ status: 400, body: { responseStatus: 'BAD_REQUEST', scimErrorType, message, localizedMessage: message } });

  const listResponse = (all: readonly unknown[], q: Record<string, string>): Reply => {
    const startIndex = Math.max(1, intParam(q.startIndex, 1));
    const count = Math.min(MAX_COUNT, intParam(q.count, MAX_COUNT));
    const items = all.slice(startIndex - 1, startIndex - 1 + count);
    return { status: 200, body: { schemas: [LIST], totalResults: all.length, startIndex, itemsPerPage: items.length, Resources: items } };
  };

  const operations = (body: unknown): { op: string; path?: string; value?: unknown }[] => {
    const ops = (body as { Operations?: unknown })?.Operations;
    if (!Array.isArray(ops)) throw fail(400, 'The request needs an "Operations" array.', 'invalidSyntax');
    return ops.map((o: { op?: unknown; path?: unknown; value?: unknown }) => {
      const op = typeof o?.op === 'string' ? o.op.toLowerCase() : '';
      if (op !== 'add' && op !== 'replace' && op !== 'remove') throw fail(400, `Unsupported operation '${String(o?.op)}'.`, 'invalidSyntax');
      return { op, path: typeof o.path === 'string' ? o.path : undefined, value: o.value };
    });
  };

  const U = '/scim/directory/{directoryId}/Users';
  const G = '/scim/directory/{directoryId}/Groups';

  const routes: Record<string, Handler> = {
    [`GET ${U}`]: ({ query }) => {
      let users = dir.usersBySeq().filter((u) => !u.extra.scimDeleted);
      if (query.filter !== undefined) {
        const { attr, value } = parseFilter(query.filter);
        if (attr === 'username') users = users.filter((u) => u.name.toLowerCase() === value.toLowerCase());
        else if (attr === 'externalid') users = users.filter((u) => (u.extra.scim as Partial<Attrs> | undefined)?.externalId === value);
        else throw fail(400, `Filtering users on '${attr}' is not supported; use userName or externalId.`, 'invalidFilter');
      }
      return listResponse(users.map(renderUser), query);
    },

    [`POST ${U}`]: ({ body }) => {
      const a = attrsFromBody(body, undefined);
      checkAttrs(a, undefined);
      const existing = dir.findUser(a.userName);
      let u: UserRecord;
      if (existing) {
        // a user deleted from SCIM comes back linked to the same account, under a new SCIM id
        dir.changeUserId(existing, randomUUID());
        existing.extra.scimDeleted = false;
        u = existing;
      } else {
        u = dir.addUser({ id: randomUUID(), name: a.userName, email: null, displayName: a.userName, active: true, extra: { accountId: newAccountId() } });
      }
      writeAttrs(u, a);
      return { status: 201, body: renderUser(u), headers: { location: `${base()}/Users/${u.id}` } };
    },

    [`GET ${U}/{userId}`]: ({ params }) => ({ status: 200, body: renderUser(liveUser(params.userId!)) }),

    [`PUT ${U}/{userId}`]: ({ params, body }) => {
      const u = liveUser(params.userId!);
      const a = attrsFromBody(body, u.active);
      checkAttrs(a, u);
      writeAttrs(u, a);
      return { status: 200, body: renderUser(u) };
    },

    [`PATCH ${U}/{userId}`]: ({ params, body }) => {
      const u = liveUser(params.userId!);
      const a = structuredClone(attrsOf(u));
      for (const o of operations(body)) patchUser(a, o.op, o.path, o.value);
      checkAttrs(a, u);
      writeAttrs(u, a);
      return { status: 200, body: renderUser(u) };
    },

    [`DELETE ${U}/{userId}`]: ({ params }) => {
      const u = liveUser(params.userId!);
      for (const g of [...u.groups]) dir.removeMember(g, u);
      u.active = false;
      u.extra.scimDeleted = true;
      dir.changed(u);
      return { status: 204 };
    },

    [`GET ${G}`]: ({ query }) => {
      let groups = [...dir.groups()].sort((a, b) => a.created - b.created || Number(a.extra.seq) - Number(b.extra.seq));
      if (query.filter !== undefined) {
        const { attr, value } = parseFilter(query.filter);
        if (attr !== 'displayname') throw fail(400, `Filtering groups on '${attr}' is not supported; use displayName.`, 'invalidFilter');
        groups = groups.filter((g) => g.name.toLowerCase() === value.toLowerCase());
      }
      return listResponse(groups.map(renderGroup), query);
    },

    [`POST ${G}`]: ({ body }) => {
      const b = (body ?? {}) as { displayName?: unknown; externalId?: unknown; members?: unknown };
      if (typeof b.displayName !== 'string' || b.displayName.trim() === '') throw fail(400, 'displayName is required.', 'invalidValue');
      if (dir.findGroup(b.displayName)) throw fail(409, `A group with displayName '${b.displayName}' already exists in this directory.`, 'uniqueness');
      const members = b.members === undefined ? [] : memberUsers(b.members, (id) => fail(400, `User ${id} does not exist in this directory.`, 'invalidValue'));
      const g = newGroup(b.displayName);
      if (typeof b.externalId === 'string') g.extra.externalId = b.externalId;
      for (const u of members) dir.addMember(g, u);
      return { status: 201, body: renderGroup(g), headers: { location: `${base()}/Groups/${g.id}` } };
    },

    [`GET ${G}/{id}`]: ({ params }) => ({ status: 200, body: renderGroup(liveGroup(params.id!)) }),

    [`PUT ${G}/{id}`]: ({ params, body }) => {
      const g = liveGroup(params.id!);
      const b = (body ?? {}) as { displayName?: unknown; externalId?: unknown; members?: unknown };
      if (typeof b.displayName !== 'string') throw badRequestException('displayName is required.', 'invalidValue');
      if (b.displayName !== g.name) throw badRequestException('displayName is immutable: renaming a group is not supported.', 'mutability');
      const members = b.members === undefined ? [] : memberUsers(b.members, (id) => badRequestException(`The user ${id} referenced does not exist.`, 'invalidValue'));
      for (const u of [...g.members]) if (!members.includes(u)) dir.removeMember(g, u);
      for (const u of members) dir.addMember(g, u);
      if (typeof b.externalId === 'string') g.extra.externalId = b.externalId;
      else delete g.extra.externalId;
      dir.changed(g);
      return { status: 200, body: renderGroup(g) };
    },

    [`PATCH ${G}/{id}`]: ({ params, body }) => {
      const g = liveGroup(params.id!);
      const ops = operations(body);
      // work on a copy so that a refused operation changes nothing
      const members = new Set(g.members);
      let externalId = g.extra.externalId as string | undefined;
      const unknownUser = (id: string): Fail => fail(404, `User ${id} does not exist in this directory.`);
      const apply = (op: string, path: string | undefined, value: unknown): void => {
        if (path === undefined || path === '') {
          if (op === 'remove' || !value || typeof value !== 'object') throw fail(400, 'An operation without a path needs an object value.', 'noTarget');
          for (const [k, v] of Object.entries(value as Record<string, unknown>)) apply(op, k, v);
          return;
        }
        const p = path.toLowerCase();
        if (p === 'members') {
          if (op === 'remove') {
            if (value === undefined) members.clear();
            else if (Array.isArray(value)) {
              // removing someone who is not (or no longer) there is not an error
              for (const m of value) {
                const u = dir.userById(String((m as { value?: unknown })?.value));
                if (u) members.delete(u);
              }
            } else throw fail(400, 'members must be an array of {"value": "<user id>"}.', 'invalidValue');
            return;
          }
          const users = memberUsers(value, unknownUser);
          if (op === 'replace') members.clear();
          for (const u of users) members.add(u);
          return;
        }
        const m = /^members\[value\s+eq\s+"([^"]*)"\]$/i.exec(path);
        if (m) {
          if (op !== 'remove') throw fail(400, `Only remove is supported on '${path}'.`, 'invalidPath');
          const u = dir.userById(m[1]!);
          if (u) members.delete(u);
          return;
        }
        if (p === 'displayname') {
          if (op === 'remove' || value !== g.name) throw fail(400, 'displayName is immutable: renaming a group is not supported.', 'mutability');
          return;
        }
        if (p === 'externalid') {
          externalId = op === 'remove' ? undefined : str(value, path);
          return;
        }
        throw fail(400, `Unknown or unsupported attribute path '${path}'.`, 'invalidPath');
      };
      for (const o of ops) apply(o.op, o.path, o.value);
      for (const u of [...g.members]) if (!members.has(u)) dir.removeMember(g, u);
      for (const u of members) dir.addMember(g, u);
      if (externalId === undefined) delete g.extra.externalId;
      else g.extra.externalId = externalId;
      dir.changed(g);
      return { status: 200, body: renderGroup(g) };
    },

    [`DELETE ${G}/{id}`]: ({ params }) => {
      dir.removeGroup(liveGroup(params.id!));
      return { status: 204 };
    },

    'GET /scim/directory/{directoryId}/ServiceProviderConfig': () => ({
      status: 200,
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: MAX_COUNT },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [{ type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: 'Authentication with the directory API key as a bearer token', primary: true }],
        meta: { resourceType: 'ServiceProviderConfig', location: `${base()}/ServiceProviderConfig` },
      },
    }),
  };

  // an unknown directory id: the document has the path, the organisation does not have the directory
  for (const [key, handler] of Object.entries(routes)) {
    routes[key] = (ctx: Ctx) => {
      if (ctx.params.directoryId !== options.directoryId) throw fail(404, `Directory ${ctx.params.directoryId} does not exist.`);
      return handler(ctx);
    };
  }

  let groupSeq = 0;
  function newGroup(name: string): GroupRecord {
    return dir.addGroup({ id: randomUUID(), name, extra: { seq: ++groupSeq } });
  }

  return {
    kind: 'atlassian-cloud',
    routes,
    basicAuth: false,
    baseUrl: (origin) => `${origin}/scim/directory/${options.directoryId}`,
    specPath: (path) => (path.startsWith('/scim/directory/') ? path : undefined),
    error: (status, message) => scimError(status, message),
    unauthorized: () => scimError(401, 'Unauthorized: the directory API key is missing or not valid.'),
    invalid: (problems) => scimError(400, problems.join('; '), 'invalidSyntax'),
    newUser: (u) => {
      const rec = dir.addUser({ id: randomUUID(), ...u, extra: { accountId: newAccountId() } });
      return rec;
    },
    newGroup,
  };
}
