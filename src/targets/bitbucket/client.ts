// Bitbucket Data Center through REST 1.0: users (created with query parameters, renamed, deleted; never
// deactivated, which Bitbucket cannot do), groups and memberships.

import { randomBytes } from 'node:crypto';
import type { HttpFailure, HttpOptions, TargetCounters } from '../http.ts';
import { failureOf, HttpClient, LICENCE_WORDING } from '../http.ts';
import type { AppConnection, AppGroup, AppUser, TargetApp, TargetCheck, TargetErrorCode, WantedUser } from '../types.ts';
import { TargetError } from '../types.ts';

const API = '/rest/api/1.0';
/** Bitbucket's usual cap on a page */
const PAGE = 1000;

interface RestUser {
  id?: number;
  name?: string;
  displayName?: string;
  emailAddress?: string;
  active?: boolean;
}

interface BitbucketPage<T> {
  values?: T[];
  isLastPage?: boolean;
  nextPageStart?: number;
}

/** a 403 that is about licences rather than permissions */
function licenceCode(f: HttpFailure): TargetErrorCode | undefined {
  return f.status === 403 && LICENCE_WORDING.test(f.detail ?? '') ? 'licence' : undefined;
}

export class BitbucketClient implements TargetApp {
  readonly kind = 'bitbucket' as const;
  private readonly http: HttpClient;

  constructor(conn: AppConnection, options: Omit<HttpOptions, 'product'> = {}) {
    // Bitbucket's XSRF filter refuses body-less POSTs (user and group creation) without this header
    this.http = new HttpClient(conn, { ...options, product: 'Bitbucket', headers: { 'x-atlassian-token': 'no-check', ...options.headers } });
  }

  get counters(): TargetCounters {
    return this.http.counters;
  }

  async test(): Promise<TargetCheck[]> {
    const checks: TargetCheck[] = [];
    try {
      // the admin user list needs the credentials and the ADMIN permission
      await this.http.get(`${API}/admin/users`, { limit: 1 }, 'list users');
      checks.push({ name: 'credentials', ok: true, message: 'Bitbucket accepted the credentials.' });
      checks.push({ name: 'admin', ok: true, message: 'The user has the Bitbucket ADMIN permission needed to manage users and groups.' });
    } catch (e) {
      const code = e instanceof TargetError ? e.code : undefined;
      if (code === 'forbidden') {
        checks.push({ name: 'credentials', ok: true, message: 'Bitbucket accepted the credentials.' });
        checks.push({ name: 'admin', ok: false, message: `The user lacks the Bitbucket ADMIN permission. ${messageOf(e)}` });
      } else {
        // Bitbucket answers 401 both for refused credentials and for a missing ADMIN permission
        checks.push({
          name: 'credentials',
          ok: false,
          message: code === 'auth' ? `${messageOf(e)} Either the credentials are wrong or the user lacks the ADMIN permission.` : messageOf(e),
        });
      }
    }
    return checks;
  }

  async *listUsers(): AsyncIterable<AppUser[]> {
    for await (const page of this.pages<RestUser>(`${API}/admin/users`, {}, 'list users')) {
      const users = page.filter((u) => typeof u.name === 'string').map(toAppUser);
      if (users.length) yield users;
    }
  }

  async *listGroups(): AsyncIterable<AppGroup[]> {
    for await (const page of this.pages<{ name?: string }>(`${API}/admin/groups`, {}, 'list groups')) {
      const groups = page.filter((g) => typeof g.name === 'string').map((g) => ({ name: g.name! }));
      if (groups.length) yield groups;
    }
  }

  async *listMembers(group: AppGroup): AsyncIterable<string[]> {
    for await (const page of this.pages<RestUser>(`${API}/admin/groups/more-members`, { context: group.name }, `list the members of group "${group.name}"`, true)) {
      const names = page.map((u) => u.name).filter((n): n is string => typeof n === 'string');
      if (names.length) yield names;
    }
  }

  /** The user filter matches parts of names, display names and e-mails: the exact name is picked out. */
  async getUser(name: string): Promise<AppUser | undefined> {
    const wanted = name.toLowerCase();
    for await (const page of this.pages<RestUser>(`${API}/admin/users`, { filter: name }, `find user "${name}"`)) {
      const found = page.find((u) => u.name?.toLowerCase() === wanted);
      if (found) return toAppUser(found);
    }
    return undefined;
  }

  async createUser(user: WantedUser): Promise<AppUser> {
    const what = `create user "${user.name}"`;
    if (!user.email) throw new TargetError('invalid', `Bitbucket needs an e-mail address to ${what}, and the directory has none for the user.`);
    const res = await this.http.request({
      method: 'POST',
      path: `${API}/admin/users`,
      // Bitbucket takes a new user as query parameters only; the password is random and nobody is told,
      // as people sign in through SSO. The engine adds the groups itself, so no default group.
      query: {
        name: user.name,
        password: randomBytes(32).toString('base64url'),
        displayName: user.displayName,
        emailAddress: user.email,
        addToDefaultGroup: false,
        notify: false,
      },
      what,
      expect: [409],
      classify: licenceCode,
    });
    if (res.status === 409) {
      if (res.ambiguous) {
        const existing = await this.getUser(user.name);
        if (existing && existing.email?.toLowerCase() === user.email.toLowerCase()) return existing;
      }
      throw this.http.refusal('exists', what, failureOf(res));
    }
    return { name: user.name, email: user.email, displayName: user.displayName, active: true };
  }

  async updateUser(current: AppUser, user: WantedUser): Promise<AppUser> {
    let name = current.name;
    let id = current.id;
    if (user.name !== current.name) {
      const what = `rename user "${current.name}" to "${user.name}"`;
      const res = await this.http.request<RestUser>({
        method: 'POST',
        path: `${API}/admin/users/rename`,
        body: { name: current.name, newName: user.name },
        what,
        expect: [409],
        classify: (f) => (f.status === 400 && /exist|taken|in use/i.test(f.detail ?? '') ? 'exists' : undefined),
      });
      if (res.status === 409) throw this.http.refusal('exists', what, failureOf(res));
      name = res.body?.name ?? user.name;
      if (res.body?.id !== undefined) id = String(res.body.id);
    }
    const body: Record<string, unknown> = { name };
    if (user.displayName !== current.displayName) body.displayName = user.displayName;
    if (user.email && user.email !== current.email) body.email = user.email;
    if (Object.keys(body).length > 1) {
      await this.http.request({ method: 'PUT', path: `${API}/admin/users`, body, what: `update user "${name}"` });
    }
    return { name, email: user.email ?? current.email, displayName: user.displayName, active: true, ...(id !== undefined ? { id } : {}) };
  }

  /** Every Bitbucket user is active, so activating is already done; deactivating cannot be done. */
  async setActive(user: AppUser, active: boolean): Promise<void> {
    if (active) return;
    throw new TargetError(
      'unsupported',
      `Bitbucket cannot deactivate users; to take access away from "${user.name}", remove the user from the groups that grant the licence, or delete the user.`,
    );
  }

  /** A user already gone counts as deleted. */
  async deleteUser(user: AppUser): Promise<void> {
    await this.http.request({ method: 'DELETE', path: `${API}/admin/users`, query: { name: user.name }, what: `delete user "${user.name}"`, expect: [404] });
  }

  async createGroup(name: string): Promise<AppGroup> {
    const what = `create group "${name}"`;
    const res = await this.http.request({ method: 'POST', path: `${API}/admin/groups`, query: { name }, what, expect: [409] });
    if (res.status === 409) {
      if (res.ambiguous) return { name };
      throw this.http.refusal('exists', what, failureOf(res));
    }
    return { name };
  }

  /** A group already gone counts as deleted. */
  async deleteGroup(group: AppGroup): Promise<void> {
    await this.http.request({ method: 'DELETE', path: `${API}/admin/groups`, query: { name: group.name }, what: `delete group "${group.name}"`, expect: [404] });
  }

  /** One request for all the groups; an existing membership is not an error. */
  async addMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    if (!groups.length) return;
    await this.http.request({
      method: 'POST',
      path: `${API}/admin/users/add-groups`,
      body: { user: user.name, groups: groups.map((g) => g.name) },
      what: `add user "${user.name}" to ${groups.length === 1 ? `group "${groups[0]!.name}"` : `groups ${groups.map((g) => `"${g.name}"`).join(', ')}`}`,
      classify: licenceCode,
    });
  }

  async removeMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    for (const group of groups) {
      // context and item are the other way round from groups/remove-user: the user, then the group
      await this.http.request({
        method: 'POST',
        path: `${API}/admin/users/remove-group`,
        body: { context: user.name, itemName: group.name },
        what: `remove user "${user.name}" from group "${group.name}"`,
        expect: [404],
      });
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }

  private async *pages<T>(path: string, query: Record<string, string>, what: string, missingIsEmpty = false): AsyncIterable<T[]> {
    let start = 0;
    for (;;) {
      const res = await this.http.request<BitbucketPage<T>>({ method: 'GET', path, query: { ...query, start, limit: PAGE }, what, ...(missingIsEmpty ? { expect: [404] } : {}) });
      if (res.status === 404) return;
      const values = res.body?.values ?? [];
      if (values.length) yield values;
      const next = res.body?.nextPageStart;
      if (res.body?.isLastPage !== false || typeof next !== 'number' || next <= start) return;
      start = next;
    }
  }
}

/** Bitbucket cannot deactivate anyone, so every user it has counts as active. */
function toAppUser(u: RestUser): AppUser {
  return { name: u.name!, email: u.emailAddress || null, displayName: u.displayName ?? u.name!, active: true, ...(u.id !== undefined ? { id: String(u.id) } : {}) };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
