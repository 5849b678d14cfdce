// Confluence Data Center 10.0.3 under the context path /confluence (shared/reference/atlassian.md §3):
// admin user and group endpoints, idempotent memberships, asynchronous user deletion.

import { randomBytes, randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { Fail } from './server.ts';
import type { Handler, Product, ProductEnv, Reply } from './server.ts';
import type { GroupRecord, UserRecord } from './state.ts';
import { intParam, page } from './state.ts';

const CONTEXT = '/confluence';
/** the largest page Confluence hands out, whatever `limit` asks for */
const MAX_LIMIT = 200;

interface DeleteTask {
  id: string;
  userName: string;
  started: number;
  finished?: number;
}

function restError(status: number, message: string, data: { valid?: boolean; errors?: Record<string, string> } = {}): Reply {
  return {
    status,
    body: {
      statusCode: status,
      message,
      reason: STATUS_CODES[status] ?? 'Error',
      data: { authorized: status !== 401 && status !== 403, valid: data.valid ?? status !== 400, errors: data.errors ?? {}, successful: false, allowedInReadOnlyMode: true },
    },
  };
}

function fail(status: number, message: string, data?: { valid?: boolean; errors?: Record<string, string> }): Fail {
  return new Fail(restError(status, message, data));
}

/** why Confluence refuses a username, if it does */
export function confluenceUsernameProblem(name: string): string | undefined {
  if (name === '') return 'The username must not be empty.';
  if (name !== name.toLowerCase()) return 'The username must be in lowercase.';
  if (/\s/.test(name)) return 'The username must not contain whitespace.';
  if (/[\\,+<>'"]/.test(name)) return 'The username must not contain any of these characters: \\ , + < > \' "';
  if (name === 'anonymous') return "The username 'anonymous' is reserved.";
  return undefined;
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

export function createConfluence(env: ProductEnv): Product {
  const { dir, options } = env;
  const tasks = new Map<string, DeleteTask>();
  const timers = new Set<NodeJS.Timeout>();
  let nextGroupId = 1;

  const base = (): string => `${env.origin}${CONTEXT}`;
  const enc = encodeURIComponent;
  const links = (self: string): Record<string, string> => ({ base: base(), context: CONTEXT, self });

  const expandOf = (q: Record<string, string>): Set<string> => new Set((q.expand ?? '').split(',').map((s) => s.trim()).filter(Boolean));

  const person = (u: { name: string; id: string; displayName: string; email: string | null; active: boolean }, expand: Set<string>): Record<string, unknown> => {
    const out: Record<string, unknown> = {
      type: 'known',
      username: u.name,
      userKey: u.id,
      profilePicture: { path: `${CONTEXT}/images/icons/profilepics/default.svg`, width: 48, height: 48, isDefault: true },
      displayName: u.displayName,
      _links: links(`${base()}/rest/api/user?key=${enc(u.id)}`),
    };
    const expandable: Record<string, string> = { operations: '', personalSpace: '' };
    if (expand.has('status')) out.status = u.active ? 'Active' : 'Deactivated';
    else expandable.status = '';
    if (expand.has('details.personal') || expand.has('details')) out.details = { personal: u.email === null ? {} : { email: u.email } };
    else expandable.details = '';
    out._expandable = expandable;
    return out;
  };

  const adminPerson = (expand: Set<string>): Record<string, unknown> =>
    person({ name: options.basicUser, id: '2c9d829d6e61f011016e61f143ff0000', displayName: 'Administrator', email: `${options.basicUser}@example.com`, active: true }, expand);

  const group = (g: GroupRecord): Record<string, unknown> => ({ type: 'group', name: g.name, _links: { self: `${base()}/rest/api/group/${enc(g.name)}` } });

  /** a page as Confluence answers it; the next link is relative to _links.base */
  const confPage = <T>(all: readonly T[], q: Record<string, string>, path: string, dfltLimit: number, render: (x: T) => unknown): Reply => {
    const start = intParam(q.start, 0);
    const limit = Math.max(1, Math.min(MAX_LIMIT, intParam(q.limit, dfltLimit)));
    const { items, isLast } = page(all, start, limit);
    const extra = q.expand ? `&expand=${enc(q.expand)}` : '';
    const sep = path.includes('?') ? '&' : '?';
    const l: Record<string, string> = links(`${base()}${path}${sep}limit=${limit}&start=${start}${extra}`);
    if (!isLast) l.next = `${path}${sep}limit=${limit}&start=${start + limit}${extra}`;
    if (start > 0) l.prev = `${path}${sep}limit=${limit}&start=${Math.max(0, start - limit)}${extra}`;
    return { status: 200, body: { results: items.map(render), start, limit, size: items.length, _links: l } };
  };

  const mustUser = (name: string): UserRecord => {
    const u = dir.findUser(name);
    if (!u) throw fail(404, `No user found with username: ${name}`);
    return u;
  };
  const mustGroup = (name: string): GroupRecord => {
    const g = dir.findGroup(name);
    if (!g) throw fail(404, `No group found with name: ${name}`);
    return g;
  };
  const byQuery = (q: Record<string, string>): UserRecord => {
    if (q.username !== undefined) return mustUser(q.username);
    if (q.key !== undefined) {
      const u = dir.userById(q.key);
      if (!u) throw fail(404, `No user found with key: ${q.key}`);
      return u;
    }
    throw fail(400, 'A username or key is required.', { valid: false });
  };

  const licenceFull = (): boolean => Number.isFinite(options.seats) && dir.activeCount() >= options.seats;
  const newUserKey = (): string => randomBytes(16).toString('hex');
  // Confluence keeps group names in lower case
  const newGroup = (name: string): GroupRecord => dir.addGroup({ id: String(nextGroupId++), name: name.toLowerCase() });

  const taskStatus = (t: DeleteTask): Record<string, unknown> => {
    const done = t.finished !== undefined;
    return {
      id: t.id,
      name: { key: 'com.atlassian.confluence.user.delete.longtask.name', args: [], translation: `Deleting user ${t.userName}` },
      elapsedTime: (t.finished ?? Date.now()) - t.started,
      percentageComplete: done ? 100 : 0,
      successful: done,
      finished: done,
      messages: done ? [{ key: 'com.atlassian.confluence.user.delete.longtask.success', args: [], translation: `User ${t.userName} deleted` }] : [],
      _links: links(`${base()}/rest/api/longtask/${t.id}`),
    };
  };

  const routes: Record<string, Handler> = {
    'POST /rest/api/admin/user': ({ body }) => {
      const b = (body ?? {}) as { userName?: string; fullName?: string; email?: string; password?: string; notifyViaEmail?: boolean };
      const userName = b.userName ?? '';
      const errors: Record<string, string> = {};
      const bad = confluenceUsernameProblem(userName);
      if (bad) errors.userName = bad;
      if (!b.fullName || b.fullName.trim() === '') errors.fullName = 'The full name must not be empty.';
      if (!b.email || !EMAIL.test(b.email)) errors.email = 'A valid email address is required.';
      if (!b.password && b.notifyViaEmail !== true) errors.password = 'A password is required unless notifyViaEmail is true.';
      if (Object.keys(errors).length > 0) throw fail(400, Object.values(errors).join(' '), { valid: false, errors });
      if (dir.findUser(userName)) throw fail(409, `A user with username ${userName} already exists.`);
      if (licenceFull()) throw fail(402, 'The user cannot be created: no licence seats are left.');
      const u = dir.addUser({ id: newUserKey(), name: userName, email: b.email!, displayName: b.fullName!, active: true });
      return { status: 201, body: { userKey: u.id } };
    },

    'PUT /rest/api/admin/user/{username}': ({ params, body }) => {
      const u = mustUser(params.username!);
      const b = (body ?? {}) as { fullName?: string; email?: string };
      if (b.email !== undefined && !EMAIL.test(b.email)) throw fail(400, 'A valid email address is required.', { valid: false, errors: { email: 'invalid' } });
      if (b.fullName !== undefined && b.fullName.trim() === '') throw fail(400, 'The full name must not be empty.', { valid: false, errors: { fullName: 'empty' } });
      if (b.email !== undefined) u.email = b.email;
      if (b.fullName !== undefined) u.displayName = b.fullName;
      dir.changed(u);
      return { status: 204 };
    },

    'DELETE /rest/api/admin/user/{username}': ({ params }) => {
      const u = mustUser(params.username!);
      const t: DeleteTask = { id: randomUUID(), userName: u.name, started: Date.now() };
      tasks.set(t.id, t);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (dir.userById(u.id) === u) dir.removeUser(u);
        t.finished = Date.now();
      }, options.deleteDelayMs);
      timers.add(timer);
      const status = `${base()}/rest/api/longtask/${t.id}`;
      return { status: 202, body: { id: t.id, links: { status, result: status } } };
    },

    'PUT /rest/api/admin/user/{username}/disable': ({ params }) => {
      const u = mustUser(params.username!);
      if (u.active) {
        u.active = false;
        dir.changed(u);
      }
      return { status: 204 };
    },

    'PUT /rest/api/admin/user/{username}/enable': ({ params }) => {
      const u = mustUser(params.username!);
      if (!u.active) {
        if (licenceFull()) throw fail(402, 'The user cannot be enabled: no licence seats are left.');
        u.active = true;
        dir.changed(u);
      }
      return { status: 204 };
    },

    'POST /rest/api/admin/group': ({ body }) => {
      const name = ((body ?? {}) as { name?: string }).name ?? '';
      if (name.trim() === '') throw fail(400, 'A group name is required.', { valid: false, errors: { name: 'empty' } });
      if (dir.findGroup(name)) throw fail(409, `A group with name ${name.toLowerCase()} already exists.`);
      return { status: 200, body: group(newGroup(name)) };
    },

    'DELETE /rest/api/admin/group/{groupName}': ({ params }) => {
      dir.removeGroup(mustGroup(params.groupName!));
      return { status: 204 };
    },

    'PUT /rest/api/user/{username}/group/{groupName}': ({ params }) => {
      const u = mustUser(params.username!);
      dir.addMember(mustGroup(params.groupName!), u);
      return { status: 204 };
    },

    'DELETE /rest/api/user/{username}/group/{groupName}': ({ params }) => {
      const u = mustUser(params.username!);
      dir.removeMember(mustGroup(params.groupName!), u);
      return { status: 204 };
    },

    'GET /rest/api/user': ({ query }) => ({ status: 200, body: person(byQuery(query), expandOf(query)) }),

    'GET /rest/api/user/current': ({ query }) => ({ status: 200, body: adminPerson(expandOf(query)) }),

    'GET /rest/api/user/list': ({ query }) => {
      const expand = expandOf(query);
      return confPage(dir.users(), query, '/rest/api/user/list', 100, (u) => person(u, expand));
    },

    'GET /rest/api/admin/users/list/active': ({ query }) => {
      const expand = expandOf(query);
      return confPage(
        dir.users().filter((u) => u.active),
        query,
        '/rest/api/admin/users/list/active',
        100,
        (u) => person(u, expand),
      );
    },

    'GET /rest/api/user/memberof': ({ query }) => {
      const u = byQuery(query);
      const who = query.username !== undefined ? `username=${enc(query.username)}` : `key=${enc(query.key ?? '')}`;
      return confPage(dir.groupsOf(u), query, `/rest/api/user/memberof?${who}`, 200, group);
    },

    'GET /rest/api/group': ({ query }) => confPage(dir.groups(), query, '/rest/api/group', 200, group),

    'GET /rest/api/group/{groupName}': ({ params }) => ({ status: 200, body: group(mustGroup(params.groupName!)) }),

    'GET /rest/api/group/{groupName}/member': ({ params, query }) => {
      const g = mustGroup(params.groupName!);
      const expand = expandOf(query);
      return confPage(dir.members(g), query, `/rest/api/group/${enc(g.name)}/member`, 200, (u) => person(u, expand));
    },

    'GET /rest/api/longtask/{id}': ({ params }) => {
      const t = tasks.get(params.id!);
      if (!t) throw fail(404, `No long running task with id ${params.id}`);
      return { status: 200, body: taskStatus(t) };
    },
  };

  return {
    kind: 'confluence',
    routes,
    basicAuth: true,
    baseUrl: (origin) => `${origin}${CONTEXT}`,
    specPath: (path) => (path.startsWith(`${CONTEXT}/rest/api/`) ? path.slice(CONTEXT.length) : undefined),
    error: (status, message) => restError(status, message),
    unauthorized: () => restError(401, 'This resource requires authentication: log in or supply valid credentials.'),
    invalid: (problems) => restError(400, problems.join('; '), { valid: false }),
    newUser: (u) => dir.addUser({ id: newUserKey(), ...u }),
    newGroup,
    close: () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
