// Bitbucket Data Center 9.5, REST 1.0 (shared/reference/atlassian.md §4): users created with
// query parameters, no deactivation, and licences granted through group membership.

import { Fail } from './server.ts';
import type { Handler, Product, ProductEnv, Reply } from './server.ts';
import type { GroupRecord, UserRecord } from './state.ts';
import { intParam, page } from './state.ts';

/** the default group new users join; it grants LICENSED_USER */
export const BITBUCKET_DEFAULT_GROUP = 'stash-users';
/** the largest page Bitbucket hands out (page.max.* defaults) */
const MAX_LIMIT = 1000;

function errorBody(message: string, exceptionName: string | null = null): unknown {
  return { errors: [{ context: null, message, exceptionName }] };
}

function fail(status: number, message: string, exceptionName: string | null = null): Fail {
  return new Fail({ status, body: errorBody(message, exceptionName) });
}

const LICENCE = 'com.atlassian.bitbucket.license.LicenseLimitExceededException';

export function createBitbucket(env: ProductEnv): Product {
  const { dir, options } = env;
  /** groups that grant LICENSED_USER */
  const licensing = new Set([BITBUCKET_DEFAULT_GROUP]);
  let nextUserId = 2;
  let nextGroupId = 1;

  const slug = (name: string): string => name.toLowerCase().replace(/[^a-z0-9_.-]+/g, '_');

  const userBody = (u: UserRecord): Record<string, unknown> => ({
    name: u.name,
    ...(u.email !== null ? { emailAddress: u.email } : {}),
    // Bitbucket cannot deactivate: `active` only reflects external directories
    active: true,
    displayName: u.displayName,
    id: Number(u.id),
    slug: slug(u.name),
    type: 'NORMAL',
    directoryName: 'Bitbucket Internal Directory',
    deletable: true,
    mutableDetails: true,
    mutableGroups: true,
    links: { self: [{ href: `${env.origin}/users/${slug(u.name)}` }] },
  });

  const groupBody = (g: GroupRecord): Record<string, unknown> => ({ name: g.name, deletable: true });

  const bbPage = <T>(all: readonly T[], q: Record<string, string>, render: (x: T) => unknown): Reply => {
    const start = intParam(q.start, 0);
    const limit = Math.max(1, Math.min(MAX_LIMIT, intParam(q.limit, 25)));
    const { items, isLast } = page(all, start, limit);
    return { status: 200, body: { size: items.length, limit, isLastPage: isLast, start, values: items.map(render), ...(isLast ? {} : { nextPageStart: start + items.length }) } };
  };

  const filtered = <T extends { name: string }>(all: readonly T[], filter: string | undefined, also: (x: T) => string[] = () => []): readonly T[] => {
    if (!filter) return all;
    const f = filter.toLowerCase();
    return all.filter((x) => x.name.toLowerCase().includes(f) || also(x).some((s) => s.toLowerCase().includes(f)));
  };

  const mustUser = (name: string | undefined): UserRecord => {
    const u = name === undefined ? undefined : dir.findUser(name);
    if (!u) throw fail(404, `User ${name ?? ''} does not exist.`, 'com.atlassian.bitbucket.user.NoSuchUserException');
    return u;
  };
  const mustGroup = (name: string | undefined): GroupRecord => {
    const g = name === undefined ? undefined : dir.findGroup(name);
    if (!g) throw fail(404, `Group ${name ?? ''} does not exist.`, 'com.atlassian.bitbucket.user.NoSuchGroupException');
    return g;
  };

  const isLicensed = (u: UserRecord): boolean => {
    for (const g of u.groups) if (licensing.has(g.name.toLowerCase())) return true;
    return false;
  };
  const licensedCount = (): number => {
    const seen = new Set<UserRecord>();
    for (const name of licensing) {
      const g = dir.findGroup(name);
      if (g) for (const u of g.members) seen.add(u);
    }
    return seen.size;
  };
  /** refuses when making `newcomers` licensed would need more seats than there are */
  const checkSeats = (newcomers: number): void => {
    if (newcomers > 0 && Number.isFinite(options.seats) && licensedCount() + newcomers > options.seats) {
      throw fail(403, "The action would exceed the server's licensing limit.", LICENCE);
    }
  };

  const addUserToGroups = (userName: string | undefined, groupNames: string[]): Reply => {
    const u = mustUser(userName);
    const groups = groupNames.map(mustGroup);
    if (!isLicensed(u) && groups.some((g) => licensing.has(g.name.toLowerCase()))) checkSeats(1);
    for (const g of groups) dir.addMember(g, u);
    return { status: 200 };
  };

  const addUsersToGroup = (groupName: string | undefined, userNames: string[]): Reply => {
    const g = mustGroup(groupName);
    const users = userNames.map(mustUser);
    if (licensing.has(g.name.toLowerCase())) checkSeats(new Set(users.filter((u) => !isLicensed(u))).size);
    for (const u of users) dir.addMember(g, u);
    return { status: 200 };
  };

  const removeMembership = (userName: string | undefined, groupName: string | undefined): Reply => {
    const u = mustUser(userName);
    dir.removeMember(mustGroup(groupName), u);
    return { status: 200 };
  };

  const newUser = (u: { name: string; email: string | null; displayName: string; active: boolean }): UserRecord => dir.addUser({ id: String(nextUserId++), ...u, active: true });

  const routes: Record<string, Handler> = {
    'GET /api/latest/application-properties': () => ({
      status: 200,
      body: { version: '9.5.0', buildNumber: '9005000', buildDate: '1735689600000', displayName: 'Bitbucket' },
    }),

    'POST /api/latest/admin/users': ({ query }) => {
      const name = query.name ?? '';
      if (name.trim() === '') throw fail(400, 'The username must not be empty.', 'com.atlassian.bitbucket.validation.ArgumentValidationException');
      if (!query.password && query.notify?.toLowerCase() !== 'true') {
        throw fail(400, 'A password is required unless the user is notified to set one.', 'com.atlassian.bitbucket.validation.ArgumentValidationException');
      }
      if (dir.findUser(name)) throw fail(409, `A user with the name '${name}' already exists.`, 'com.atlassian.bitbucket.user.DuplicateUserException');
      const toDefault = query.addToDefaultGroup?.toLowerCase() !== 'false';
      const dflt = dir.findGroup(BITBUCKET_DEFAULT_GROUP);
      if (toDefault && dflt) checkSeats(1);
      const u = newUser({ name, email: query.emailAddress ?? null, displayName: query.displayName ?? name, active: true });
      if (toDefault && dflt) dir.addMember(dflt, u);
      return { status: 204 };
    },

    'PUT /api/latest/admin/users': ({ body }) => {
      const b = (body ?? {}) as { name?: string; displayName?: string; email?: string };
      if (!b.name) throw fail(400, 'The name of the user to update is required.');
      const u = mustUser(b.name);
      if (b.displayName !== undefined) u.displayName = b.displayName;
      if (b.email !== undefined) u.email = b.email;
      dir.changed(u);
      return { status: 200, body: userBody(u) };
    },

    'POST /api/latest/admin/users/rename': ({ body }) => {
      const b = (body ?? {}) as { name?: string; newName?: string };
      if (!b.name || !b.newName) throw fail(400, 'Both name and newName are required.');
      const u = mustUser(b.name);
      const other = dir.findUser(b.newName);
      if (other && other !== u) throw fail(409, `A user with the name '${b.newName}' already exists.`, 'com.atlassian.bitbucket.user.DuplicateUserException');
      dir.renameUser(u, b.newName);
      return { status: 200, body: userBody(u) };
    },

    'DELETE /api/latest/admin/users': ({ query }) => {
      if (query.name?.toLowerCase() === options.basicUser.toLowerCase()) throw fail(409, 'You cannot delete yourself.');
      const u = mustUser(query.name);
      const out = userBody(u);
      dir.removeUser(u);
      return { status: 200, body: out };
    },

    'GET /api/latest/admin/users': ({ query }) => bbPage(filtered(dir.users(), query.filter, (u) => [u.displayName, u.email ?? '']), query, userBody),

    'POST /api/latest/admin/groups': ({ query }) => {
      const name = query.name ?? '';
      if (name.trim() === '') throw fail(400, 'The group name must not be empty.');
      if (dir.findGroup(name)) throw fail(409, `A group with the name '${name}' already exists.`, 'com.atlassian.bitbucket.user.DuplicateGroupException');
      return { status: 200, body: groupBody(dir.addGroup({ id: String(nextGroupId++), name })) };
    },

    'DELETE /api/latest/admin/groups': ({ query }) => {
      const g = mustGroup(query.name);
      const out = groupBody(g);
      dir.removeGroup(g);
      return { status: 200, body: out };
    },

    'GET /api/latest/admin/groups': ({ query }) => bbPage(filtered(dir.groups(), query.filter), query, groupBody),

    'POST /api/latest/admin/users/add-groups': ({ body }) => {
      const b = (body ?? {}) as { user?: string; groups?: string[] };
      return addUserToGroups(b.user, b.groups ?? []);
    },

    'POST /api/latest/admin/users/add-group': ({ body }) => {
      const b = (body ?? {}) as { context?: string; itemName?: string };
      return addUserToGroups(b.context, b.itemName === undefined ? [] : [b.itemName]);
    },

    'POST /api/latest/admin/groups/add-users': ({ body }) => {
      const b = (body ?? {}) as { group?: string; users?: string[] };
      return addUsersToGroup(b.group, b.users ?? []);
    },

    'POST /api/latest/admin/groups/add-user': ({ body }) => {
      const b = (body ?? {}) as { context?: string; itemName?: string };
      return addUsersToGroup(b.context, b.itemName === undefined ? [] : [b.itemName]);
    },

    // context and item are the other way round in the two removal calls
    'POST /api/latest/admin/users/remove-group': ({ body }) => {
      const b = (body ?? {}) as { context?: string; itemName?: string };
      return removeMembership(b.context, b.itemName);
    },

    'POST /api/latest/admin/groups/remove-user': ({ body }) => {
      const b = (body ?? {}) as { context?: string; itemName?: string };
      return removeMembership(b.itemName, b.context);
    },

    'GET /api/latest/admin/groups/more-members': ({ query }) => {
      const g = mustGroup(query.context);
      return bbPage(filtered(dir.members(g), query.filter, (u) => [u.displayName, u.email ?? '']), query, userBody);
    },

    'GET /api/latest/admin/users/more-members': ({ query }) => {
      const u = mustUser(query.context);
      return bbPage(filtered(dir.groupsOf(u), query.filter), query, groupBody);
    },

    'DELETE /api/latest/admin/permissions/users': ({ query }) => {
      if (query.name?.toLowerCase() === options.basicUser.toLowerCase()) throw fail(409, 'You cannot revoke your own permissions.');
      mustUser(query.name);
      return { status: 204 };
    },
  };

  return {
    kind: 'bitbucket',
    routes,
    basicAuth: true,
    baseUrl: (origin) => origin,
    specPath: (path) => {
      const m = /^\/rest\/api\/(?:1\.0|latest)(\/.*)$/.exec(path);
      return m ? `/api/latest${m[1]}` : undefined;
    },
    error: (status, message) => ({ status, body: errorBody(message) }),
    unauthorized: () => ({ status: 401, body: errorBody('Authentication failed. Please check your credentials and try again.', 'com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException') }),
    invalid: (problems) => ({ status: 400, body: { errors: problems.map((message) => ({ context: null, message, exceptionName: null })) } }),
    newUser,
    newGroup: (name) => dir.addGroup({ id: String(nextGroupId++), name }),
    updateUser: (_u, change) => {
      if (change.active === false) throw new Error('bitbucket fake: Bitbucket users cannot be deactivated');
    },
  };
}

/** set up the default group a fresh Bitbucket has */
export function seedBitbucket(product: Product): void {
  product.newGroup(BITBUCKET_DEFAULT_GROUP);
}
