// Confluence Data Center through its REST API (8.4 and later for user creation; 9.x or later for user
// updates): users, groups and memberships. Confluence has no username rename, and deletes users in a
// background task that is followed until it ends.

import { randomBytes } from 'node:crypto';
import type { HttpOptions, TargetCounters } from '../http.ts';
import { EXISTS_WORDING, failureOf, HttpClient, LICENCE_WORDING, seg } from '../http.ts';
import type { AppConnection, AppGroup, AppUser, TargetApp, TargetCheck, WantedUser } from '../types.ts';
import { TargetError } from '../types.ts';

const API = '/rest/api';
const PAGE = 200;
const USER_EXPAND = 'status,details.personal';
/** how long a user deletion may run in Confluence before it is reported as not finished */
const DELETE_WAIT_MS = 60_000;
/** polls start quick (most deletions take a moment) and slow down to once a second */
const DELETE_POLL_MS = [100, 200, 400, 800, 1000];

interface ConfluenceUser {
  type?: string;
  username?: string;
  userKey?: string;
  displayName?: string;
  email?: string;
  status?: string | { value?: string };
  details?: { personal?: { email?: string } };
}

interface Page<T> {
  results?: T[];
  start?: number;
  limit?: number;
  size?: number;
  _links?: { next?: string };
}

interface LongTask {
  id?: string;
  percentageComplete?: number;
  successful?: boolean;
  finished?: boolean;
  messages?: { translation?: string; key?: string }[];
}

export class ConfluenceClient implements TargetApp {
  readonly kind = 'confluence' as const;
  private readonly http: HttpClient;
  /** test hook: the bound on waiting for a deletion */
  deleteWaitMs = DELETE_WAIT_MS;

  constructor(conn: AppConnection, options: Omit<HttpOptions, 'product'> = {}) {
    this.http = new HttpClient(conn, { ...options, product: 'Confluence', headers: { 'x-atlassian-token': 'no-check', ...options.headers } });
  }

  get counters(): TargetCounters {
    return this.http.counters;
  }

  async test(): Promise<TargetCheck[]> {
    const checks: TargetCheck[] = [];
    try {
      const me = await this.http.get<ConfluenceUser>(`${API}/user/current`, undefined, 'read the signed-in user');
      if (!me || me.type === 'anonymous') {
        checks.push({ name: 'credentials', ok: false, message: 'Confluence treated the request as anonymous: check the token or the username and password.' });
        return checks;
      }
      checks.push({ name: 'credentials', ok: true, message: `Confluence accepted the credentials of ${me.username ?? me.displayName ?? 'the configured user'}.` });
    } catch (e) {
      checks.push({ name: 'credentials', ok: false, message: messageOf(e) });
      return checks;
    }
    try {
      // a group's member list is for Confluence administrators only
      const groups = await this.http.get<Page<{ name: string }>>(`${API}/group`, { start: 0, limit: 1 }, 'list groups');
      const group = groups?.results?.[0]?.name;
      if (group === undefined) {
        checks.push({ name: 'admin', ok: false, message: 'Confluence lists no groups, so the administrator permission could not be checked.' });
      } else {
        await this.http.get(`${API}/group/${seg(group)}/member`, { start: 0, limit: 1 }, `list the members of group "${group}"`);
        checks.push({ name: 'admin', ok: true, message: 'The user has the Confluence administrator permission needed to manage users and groups.' });
      }
    } catch (e) {
      const forbidden = e instanceof TargetError && e.code === 'forbidden';
      checks.push({ name: 'admin', ok: false, message: forbidden ? `The user is not a Confluence administrator. ${messageOf(e)}` : messageOf(e) });
    }
    return checks;
  }

  async *listUsers(): AsyncIterable<AppUser[]> {
    // user/list includes disabled users: expand=status says which they are, details.personal the e-mail
    for await (const page of this.pages<ConfluenceUser>(`${API}/user/list`, { expand: USER_EXPAND }, 'list users')) {
      const users = page.filter((u) => u.username && u.type !== 'anonymous').map(toAppUser);
      if (users.length) yield users;
    }
  }

  async *listGroups(): AsyncIterable<AppGroup[]> {
    for await (const page of this.pages<{ name?: string }>(`${API}/group`, {}, 'list groups')) {
      const groups = page.filter((g) => typeof g.name === 'string').map((g) => ({ name: g.name! }));
      if (groups.length) yield groups;
    }
  }

  async *listMembers(group: AppGroup): AsyncIterable<string[]> {
    for await (const page of this.pages<ConfluenceUser>(`${API}/group/${seg(group.name)}/member`, {}, `list the members of group "${group.name}"`, true)) {
      const names = page.map((u) => u.username).filter((n): n is string => typeof n === 'string');
      if (names.length) yield names;
    }
  }

  async getUser(name: string): Promise<AppUser | undefined> {
    const res = await this.http.request<ConfluenceUser>({ method: 'GET', path: `${API}/user`, query: { username: name, expand: USER_EXPAND }, what: `read user "${name}"`, expect: [404] });
    return res.status === 404 || !res.body?.username ? undefined : toAppUser(res.body);
  }

  async createUser(user: WantedUser): Promise<AppUser> {
    const what = `create user "${user.name}"`;
    const body: Record<string, unknown> = {
      userName: user.name,
      fullName: user.displayName,
      // a password nobody is told: people sign in through SSO, and Confluence wants one (or an invitation)
      password: randomBytes(32).toString('base64url'),
    };
    if (user.email) body.email = user.email;
    const res = await this.http.request<{ userKey?: string }>({
      method: 'POST',
      path: `${API}/admin/user`,
      body,
      what,
      expect: [409],
      classify: (f) => (f.status === 400 && LICENCE_WORDING.test(f.detail ?? '') ? 'licence' : f.status === 400 && EXISTS_WORDING.test(f.detail ?? '') ? 'exists' : undefined),
    });
    if (res.status === 409) {
      if (res.ambiguous) {
        const existing = await this.getUser(user.name);
        if (existing && (!user.email || !existing.email || existing.email.toLowerCase() === user.email.toLowerCase())) return existing;
      }
      throw this.http.refusal('exists', what, failureOf(res));
    }
    const created: AppUser = { name: user.name, email: user.email, displayName: user.displayName, active: true, ...(res.body?.userKey ? { id: res.body.userKey } : {}) };
    if (!user.active) {
      await this.setActive(created, false);
      created.active = false;
    }
    return created;
  }

  async updateUser(current: AppUser, user: WantedUser): Promise<AppUser> {
    if (user.name.toLowerCase() !== current.name.toLowerCase()) {
      throw new TargetError(
        'unsupported',
        `Confluence cannot rename users through its REST API, so "${current.name}" cannot become "${user.name}"; rename the user in Confluence's user directory or delete and re-create it.`,
      );
    }
    const body: Record<string, unknown> = {};
    if (user.displayName !== current.displayName) body.fullName = user.displayName;
    if (user.email && user.email !== current.email) body.email = user.email;
    const next: AppUser = { ...current, email: user.email ?? current.email, displayName: user.displayName };
    if (Object.keys(body).length === 0) return next;
    await this.http.request({ method: 'PUT', path: `${API}/admin/user/${seg(current.name)}`, body, what: `update user "${current.name}"` });
    return next;
  }

  async setActive(user: AppUser, active: boolean): Promise<void> {
    await this.http.request({
      method: 'PUT',
      path: `${API}/admin/user/${seg(user.name)}/${active ? 'enable' : 'disable'}`,
      what: `${active ? 'enable' : 'disable'} user "${user.name}"`,
      // enabling can take a licence seat
      classify: (f) => (f.status === 402 || LICENCE_WORDING.test(f.detail ?? '') ? 'licence' : undefined),
    });
  }

  /** Waits for Confluence's deletion task; a user already gone counts as deleted. */
  async deleteUser(user: AppUser): Promise<void> {
    const what = `delete user "${user.name}"`;
    const res = await this.http.request<{ id?: string; links?: { status?: string } }>({ method: 'DELETE', path: `${API}/admin/user/${seg(user.name)}`, what, expect: [404] });
    if (res.status === 404) return;
    const taskId = res.body?.id ?? /\/longtask\/([^/?]+)/.exec(res.body?.links?.status ?? '')?.[1];
    const deadline = Date.now() + this.deleteWaitMs;
    for (let poll = 0; Date.now() < deadline; poll++) {
      let followed = false;
      if (taskId !== undefined) {
        const task = await this.http.request<LongTask>({ method: 'GET', path: `${API}/longtask/${seg(taskId)}`, what: `follow the deletion of user "${user.name}"`, expect: [404] });
        if (task.status === 200 && task.body) {
          followed = true;
          const t = task.body;
          const finished = t.finished === true || (t.percentageComplete ?? 0) >= 100;
          if (finished && t.successful === false) {
            const said = (t.messages ?? []).map((m) => m.translation ?? m.key).filter(Boolean).join('; ');
            throw new TargetError('failed', `Confluence could not delete user "${user.name}"${said ? `: ${said}` : ''}.`);
          }
          if (finished) return;
        }
      }
      // without a task to follow (or once Confluence forgot it), the user's absence says the deletion ended
      if (!followed && (await this.getUser(user.name)) === undefined) return;
      await this.http.wait(DELETE_POLL_MS[Math.min(poll, DELETE_POLL_MS.length - 1)]!);
    }
    throw new TargetError('failed', `Confluence was still deleting user "${user.name}" after ${Math.round(this.deleteWaitMs / 1000)} s; the deletion goes on in Confluence and the next run will see whether it ended.`);
  }

  async createGroup(name: string): Promise<AppGroup> {
    const what = `create group "${name}"`;
    const res = await this.http.request<{ name?: unknown }>({ method: 'POST', path: `${API}/admin/group`, body: { name }, what, expect: [409] });
    if (res.status === 409) {
      if (res.ambiguous) return { name: name.toLowerCase() };
      throw this.http.refusal('exists', what, failureOf(res));
    }
    // Confluence keeps group names in lower case
    return { name: typeof res.body?.name === 'string' ? res.body.name : name.toLowerCase() };
  }

  /** A group already gone counts as deleted. */
  async deleteGroup(group: AppGroup): Promise<void> {
    await this.http.request({ method: 'DELETE', path: `${API}/admin/group/${seg(group.name)}`, what: `delete group "${group.name}"`, expect: [404] });
  }

  async addMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    for (const group of groups) {
      await this.http.request({
        method: 'PUT',
        path: `${API}/user/${seg(user.name)}/group/${seg(group.name)}`,
        what: `add user "${user.name}" to group "${group.name}"`,
        classify: (f) => (f.status === 402 || LICENCE_WORDING.test(f.detail ?? '') ? 'licence' : undefined),
      });
    }
  }

  async removeMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    for (const group of groups) {
      await this.http.request({
        method: 'DELETE',
        path: `${API}/user/${seg(user.name)}/group/${seg(group.name)}`,
        what: `remove user "${user.name}" from group "${group.name}"`,
        expect: [404],
      });
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }

  /** start/limit pages until Confluence stops offering a next one; a 404 (when allowed) is an empty list. */
  private async *pages<T>(path: string, query: Record<string, string>, what: string, missingIsEmpty = false): AsyncIterable<T[]> {
    let start = 0;
    for (;;) {
      const res = await this.http.request<Page<T>>({ method: 'GET', path, query: { ...query, start, limit: PAGE }, what, ...(missingIsEmpty ? { expect: [404] } : {}) });
      if (res.status === 404) return;
      const results = res.body?.results ?? [];
      if (results.length) yield results;
      start += results.length;
      const more = res.body?._links?.next !== undefined || results.length >= (res.body?.limit ?? PAGE);
      if (!more || results.length === 0) return;
    }
  }
}

function toAppUser(u: ConfluenceUser): AppUser {
  const status = typeof u.status === 'string' ? u.status : u.status?.value;
  return {
    name: u.username!,
    email: u.email || u.details?.personal?.email || null,
    displayName: u.displayName ?? u.username!,
    active: !/deactivat|disabled|inactive/i.test(status ?? ''),
    ...(u.userKey ? { id: u.userKey } : {}),
  };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
