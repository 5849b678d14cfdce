// Atlassian Cloud user provisioning (SCIM 2.0) for one identity-provider directory. SCIM addresses users
// and groups by id, so the client remembers ids and usernames it has seen and looks up the rest by filter.

import pLimit from 'p-limit';
import type { HttpOptions, TargetCounters } from '../http.ts';
import { failureOf, HttpClient, seg } from '../http.ts';
import type { AppConnection, AppGroup, AppUser, TargetApp, TargetCheck, WantedUser } from '../types.ts';
import { TargetError } from '../types.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
/** Atlassian's cap on a page */
const PAGE = 100;

interface ScimUser {
  id?: string;
  userName?: string;
  displayName?: string;
  name?: { givenName?: string; familyName?: string; formatted?: string };
  emails?: { value?: string; primary?: boolean; type?: string }[];
  active?: boolean;
}

interface ScimGroup {
  id?: string;
  displayName?: string;
  members?: { value?: string; display?: string }[];
}

interface ListResponse<T> {
  totalResults?: number;
  startIndex?: number;
  itemsPerPage?: number;
  Resources?: T[];
}

interface PatchOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

/** A string in a SCIM filter: quotes and backslashes escaped (RFC 7644 §3.4.2.2, JSON string rules). */
export function scimString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export class CloudClient implements TargetApp {
  readonly kind = 'atlassian-cloud' as const;
  private readonly http: HttpClient;
  private readonly nameById = new Map<string, string>();
  private readonly idByName = new Map<string, string>();

  constructor(conn: AppConnection, options: Omit<HttpOptions, 'product'> = {}) {
    if (conn.auth.type !== 'token') {
      throw new TargetError('auth', 'Atlassian Cloud user provisioning takes the directory API key as a bearer token, not a username and password.');
    }
    this.http = new HttpClient(conn, { ...options, product: 'Atlassian Cloud' });
  }

  get counters(): TargetCounters {
    return this.http.counters;
  }

  async test(): Promise<TargetCheck[]> {
    try {
      const res = await this.http.get<ListResponse<ScimUser>>('/Users', { startIndex: 1, count: 1 }, 'list users');
      const total = typeof res?.totalResults === 'number' ? ` The directory has ${res.totalResults} users.` : '';
      return [{ name: 'credentials', ok: true, message: `Atlassian Cloud accepted the directory API key.${total}` }];
    } catch (e) {
      const code = e instanceof TargetError ? e.code : undefined;
      const hint =
        code === 'auth' || code === 'forbidden'
          ? ' Use the API key of the identity-provider directory (Security → Identity providers → the directory → User provisioning), not an organisation API key.'
          : code === 'not-found'
            ? ' Check the directory URL: https://api.atlassian.com/scim/directory/<directory id>.'
            : '';
      return [{ name: 'credentials', ok: false, message: `${messageOf(e)}${hint}` }];
    }
  }

  async *listUsers(): AsyncIterable<AppUser[]> {
    for await (const page of this.pages<ScimUser>('/Users', 'list users')) {
      const users = page.filter((u) => u.id && u.userName).map((u) => this.remember(u));
      if (users.length) yield users;
    }
  }

  async *listGroups(): AsyncIterable<AppGroup[]> {
    for await (const page of this.pages<ScimGroup>('/Groups', 'list groups')) {
      const groups = page.filter((g) => g.id && g.displayName).map((g) => ({ name: g.displayName!, id: g.id! }));
      if (groups.length) yield groups;
    }
  }

  async *listMembers(group: AppGroup): AsyncIterable<string[]> {
    const id = group.id ?? (await this.groupId(group.name));
    if (id === undefined) return;
    const res = await this.http.request<ScimGroup>({ method: 'GET', path: `/Groups/${seg(id)}`, what: `read group "${group.name}"`, expect: [404] });
    if (res.status === 404) return;
    const ids = (res.body?.members ?? []).map((m) => m.value).filter((v): v is string => typeof v === 'string');
    const unknown = ids.filter((i) => !this.nameById.has(i));
    const limit = pLimit(4);
    await Promise.all(
      unknown.map((uid) =>
        limit(async () => {
          const u = await this.http.request<ScimUser>({ method: 'GET', path: `/Users/${seg(uid)}`, what: `read member ${uid} of group "${group.name}"`, expect: [404] });
          if (u.status !== 404 && u.body?.userName) this.remember(u.body);
        }),
      ),
    );
    const names = ids.map((i) => this.nameById.get(i)).filter((n): n is string => n !== undefined);
    if (names.length) yield names;
  }

  async getUser(name: string): Promise<AppUser | undefined> {
    const user = await this.findUser(name);
    return user ? this.remember(user) : undefined;
  }

  async createUser(user: WantedUser): Promise<AppUser> {
    const what = `create user "${user.name}"`;
    const body: Record<string, unknown> = {
      schemas: [USER_SCHEMA],
      userName: user.name,
      displayName: user.displayName,
      active: user.active,
      externalId: user.directoryId,
    };
    if (user.email) body.emails = [{ value: user.email, primary: true, type: 'work' }];
    const name = nameOf(user);
    if (name) body.name = name;
    const res = await this.http.request<ScimUser>({ method: 'POST', path: '/Users', body, what, expect: [409] });
    if (res.status === 409) {
      if (res.ambiguous) {
        const existing = await this.getUser(user.name);
        if (existing && (existing.email ?? '').toLowerCase() === (user.email ?? '').toLowerCase()) return existing;
      }
      throw this.http.refusal('exists', what, failureOf(res));
    }
    if (res.body?.id) return this.remember({ ...res.body, userName: res.body.userName ?? user.name });
    // an answer without the new id: look it up, the calls that follow need it
    return (await this.getUser(user.name)) ?? { name: user.name, email: user.email, displayName: user.displayName, active: user.active };
  }

  /** PATCH with replace operations: a PUT would clear every attribute it does not carry. */
  async updateUser(current: AppUser, user: WantedUser): Promise<AppUser> {
    const id = await this.userId(current);
    const ops: PatchOp[] = [];
    if (user.name !== current.name) ops.push({ op: 'replace', path: 'userName', value: user.name });
    if (user.email && user.email !== current.email) ops.push({ op: 'replace', path: 'emails', value: [{ value: user.email, primary: true, type: 'work' }] });
    if (user.displayName !== current.displayName) ops.push({ op: 'replace', path: 'displayName', value: user.displayName });
    const name = nameOf(user);
    if (name && ops.length) ops.push({ op: 'replace', path: 'name', value: name });
    if (!ops.length) return { ...current, id };
    const res = await this.patch<ScimUser>(`/Users/${seg(id)}`, ops, `update user "${current.name}"${user.name !== current.name ? ` (renaming it to "${user.name}")` : ''}`);
    if (user.name !== current.name) this.forget(id);
    if (res?.id) return this.remember(res);
    return this.remember({ id, userName: user.name, displayName: user.displayName, active: current.active, ...(user.email ? { emails: [{ value: user.email, primary: true }] } : {}) });
  }

  async setActive(user: AppUser, active: boolean): Promise<void> {
    const id = await this.userId(user);
    await this.patch(`/Users/${seg(id)}`, [{ op: 'replace', path: 'active', value: active }], `${active ? 'activate' : 'deactivate'} user "${user.name}"`);
  }

  /** A user already gone counts as deleted. */
  async deleteUser(user: AppUser): Promise<void> {
    const id = user.id ?? (await this.findUser(user.name))?.id;
    if (id === undefined) return;
    await this.http.request({ method: 'DELETE', path: `/Users/${seg(id)}`, what: `delete user "${user.name}"`, expect: [404] });
    this.forget(id);
  }

  async createGroup(name: string): Promise<AppGroup> {
    const what = `create group "${name}"`;
    const res = await this.http.request<ScimGroup>({ method: 'POST', path: '/Groups', body: { schemas: [GROUP_SCHEMA], displayName: name }, what, expect: [409] });
    if (res.status === 409) {
      if (res.ambiguous) {
        const id = await this.groupId(name);
        if (id !== undefined) return { name, id };
      }
      throw this.http.refusal('exists', what, failureOf(res));
    }
    const id = res.body?.id ?? (await this.groupId(name));
    return id !== undefined ? { name, id } : { name };
  }

  /** A group already gone counts as deleted. */
  async deleteGroup(group: AppGroup): Promise<void> {
    const id = group.id ?? (await this.groupId(group.name));
    if (id === undefined) return;
    await this.http.request({ method: 'DELETE', path: `/Groups/${seg(id)}`, what: `delete group "${group.name}"`, expect: [404] });
  }

  async addMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    if (!groups.length) return;
    const uid = await this.userId(user);
    for (const group of groups) {
      const gid = await this.requireGroupId(group);
      await this.patch(`/Groups/${seg(gid)}`, [{ op: 'add', path: 'members', value: [{ value: uid }] }], `add user "${user.name}" to group "${group.name}"`);
    }
  }

  async removeMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    if (!groups.length) return;
    const uid = user.id ?? (await this.findUser(user.name))?.id;
    // a user who is gone is in no group
    if (uid === undefined) return;
    for (const group of groups) {
      const gid = group.id ?? (await this.groupId(group.name));
      if (gid === undefined) continue;
      await this.patch(`/Groups/${seg(gid)}`, [{ op: 'remove', path: 'members', value: [{ value: uid }] }], `remove user "${user.name}" from group "${group.name}"`, true);
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }

  private async patch<T>(path: string, ops: PatchOp[], what: string, missingIsDone = false): Promise<T | undefined> {
    // `Operations` is the wire name (RFC 7644 and Atlassian's own example), whatever the schema says
    const res = await this.http.request<T>({ method: 'PATCH', path, body: { schemas: [PATCH_SCHEMA], Operations: ops }, what, ...(missingIsDone ? { expect: [404] } : {}) });
    return res.status === 404 ? undefined : res.body;
  }

  /** startIndex is 1-based; pages of at most 100 until totalResults are seen. */
  private async *pages<T>(path: string, what: string): AsyncIterable<T[]> {
    let startIndex = 1;
    for (;;) {
      const res = await this.http.get<ListResponse<T>>(path, { startIndex, count: PAGE }, what);
      const items = res?.Resources ?? [];
      if (items.length) yield items;
      startIndex += items.length;
      const total = res?.totalResults;
      if (items.length === 0 || (typeof total === 'number' ? startIndex > total : items.length < PAGE)) return;
    }
  }

  private async findUser(name: string): Promise<ScimUser | undefined> {
    const res = await this.http.get<ListResponse<ScimUser>>('/Users', { filter: `userName eq ${scimString(name)}` }, `find user "${name}"`);
    const wanted = name.toLowerCase();
    return (res?.Resources ?? []).find((u) => u.userName?.toLowerCase() === wanted);
  }

  private async groupId(name: string): Promise<string | undefined> {
    const res = await this.http.get<ListResponse<ScimGroup>>('/Groups', { filter: `displayName eq ${scimString(name)}` }, `find group "${name}"`);
    const wanted = name.toLowerCase();
    return (res?.Resources ?? []).find((g) => g.displayName?.toLowerCase() === wanted)?.id;
  }

  private async userId(user: AppUser): Promise<string> {
    const id = user.id ?? this.idByName.get(user.name.toLowerCase()) ?? (await this.findUser(user.name))?.id;
    if (id === undefined) throw new TargetError('not-found', `Atlassian Cloud has no user "${user.name}" in this directory.`, 404);
    return id;
  }

  private async requireGroupId(group: AppGroup): Promise<string> {
    const id = group.id ?? (await this.groupId(group.name));
    if (id === undefined) throw new TargetError('not-found', `Atlassian Cloud has no group "${group.name}" in this directory.`, 404);
    return id;
  }

  private remember(u: ScimUser): AppUser {
    const name = u.userName!;
    if (u.id) {
      const previous = this.nameById.get(u.id);
      if (previous !== undefined && previous !== name) this.idByName.delete(previous.toLowerCase());
      this.nameById.set(u.id, name);
      this.idByName.set(name.toLowerCase(), u.id);
    }
    const email = u.emails?.find((e) => e.primary)?.value ?? u.emails?.[0]?.value ?? null;
    return { name, email, displayName: u.displayName ?? u.name?.formatted ?? name, active: u.active !== false, ...(u.id ? { id: u.id } : {}) };
  }

  private forget(id: string): void {
    const name = this.nameById.get(id);
    if (name !== undefined) this.idByName.delete(name.toLowerCase());
    this.nameById.delete(id);
  }
}

function nameOf(user: WantedUser): { givenName?: string; familyName?: string } | undefined {
  if (!user.givenName && !user.familyName) return undefined;
  return { ...(user.givenName ? { givenName: user.givenName } : {}), ...(user.familyName ? { familyName: user.familyName } : {}) };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
