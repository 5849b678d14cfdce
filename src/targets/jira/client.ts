// Jira Data Center through REST API v2: users, groups and memberships, and handing projects and
// components over to default leads before their lead is deactivated or deleted.

import pLimit from 'p-limit';
import type { HttpFailure, HttpOptions, TargetCounters } from '../http.ts';
import { EXISTS_WORDING, failureOf, HttpClient, LICENCE_WORDING, seg } from '../http.ts';
import type { AppConnection, AppGroup, AppUser, TargetApp, TargetCheck, TargetErrorCode, WantedUser } from '../types.ts';
import { TargetError } from '../types.ts';

const API = '/rest/api/2';
/** Jira's own cap on a group/member page */
const MEMBER_PAGE = 50;
const USER_PAGE = 1000;
/**
 * The group picker is the only list of all groups in REST v2 and it has no paging: it returns up to
 * `maxResults` names (sorted) and the total that matched. Asking for this many covers any real instance;
 * when the total says more exist the listing fails rather than look complete.
 */
const GROUP_PICKER_MAX = 10_000;
/** how long one read of the projects and components serves lead handovers */
const LEADS_TTL_MS = 30_000;

interface UserBean {
  name?: string;
  key?: string;
  emailAddress?: string;
  displayName?: string;
  active?: boolean;
  deleted?: boolean;
}

interface ProjectBean {
  key: string;
  name?: string;
  lead?: { name?: string; key?: string };
}

interface ComponentBean {
  id: string;
  name?: string;
  lead?: { name?: string; key?: string };
  leadUserName?: string;
}

interface LeadsSnapshot {
  projects: ProjectBean[];
  /** project key → its components, read when first needed */
  components: Map<string, Promise<ComponentBean[]>>;
}

const ALREADY_MEMBER = /already (a )?member|already belongs|already in group/i;

export class JiraClient implements TargetApp {
  readonly kind = 'jira' as const;
  private readonly http: HttpClient;
  private leads: { at: number; snapshot: Promise<LeadsSnapshot> } | undefined;

  constructor(
    private readonly conn: AppConnection,
    options: Omit<HttpOptions, 'product'> = {},
  ) {
    // Atlassian's XSRF filter rejects some POSTs from non-browser clients without this header
    this.http = new HttpClient(conn, { ...options, product: 'Jira', headers: { 'x-atlassian-token': 'no-check', ...options.headers } });
  }

  get counters(): TargetCounters {
    return this.http.counters;
  }

  async test(): Promise<TargetCheck[]> {
    const checks: TargetCheck[] = [];
    try {
      const me = await this.http.get<UserBean>(`${API}/myself`, undefined, 'read the signed-in user');
      checks.push({ name: 'credentials', ok: true, message: `Jira accepted the credentials of ${me?.name ?? 'the configured user'}.` });
    } catch (e) {
      checks.push({ name: 'credentials', ok: false, message: messageOf(e) });
      return checks;
    }
    try {
      // group/member is for Jira administrators only, and a page of one is cheap
      const picker = await this.http.get<{ groups?: { name: string }[] }>(`${API}/groups/picker`, { maxResults: 1 }, 'find a group');
      const group = picker?.groups?.[0]?.name;
      if (group === undefined) {
        checks.push({ name: 'admin', ok: false, message: 'Jira lists no groups, so the administrator permission could not be checked.' });
      } else {
        await this.http.get(`${API}/group/member`, { groupname: group, maxResults: 1 }, `list the members of group "${group}"`);
        checks.push({ name: 'admin', ok: true, message: 'The user has the Jira Administrators permission needed to manage users and groups.' });
      }
    } catch (e) {
      const code = e instanceof TargetError ? e.code : undefined;
      checks.push({
        name: 'admin',
        ok: false,
        message: code === 'forbidden' ? `The user lacks the Jira Administrators global permission. ${messageOf(e)}` : messageOf(e),
      });
    }
    return checks;
  }

  async *listUsers(): AsyncIterable<AppUser[]> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.http.get<{ values?: UserBean[]; isLast?: boolean; nextCursor?: string | number }>(
        `${API}/user/list`,
        { maxResults: USER_PAGE, cursor },
        'list users',
      );
      const users = (page?.values ?? []).filter((u) => u.name && !u.deleted).map(toAppUser);
      if (users.length) yield users;
      if (page?.isLast !== false || page.nextCursor === undefined || page.nextCursor === null || String(page.nextCursor) === cursor) return;
      cursor = String(page.nextCursor);
    }
  }

  async *listGroups(): AsyncIterable<AppGroup[]> {
    const res = await this.http.get<{ total?: number; groups?: { name: string }[] }>(`${API}/groups/picker`, { maxResults: GROUP_PICKER_MAX }, 'list groups');
    const groups = (res?.groups ?? []).map((g) => ({ name: g.name }));
    if (typeof res?.total === 'number' && res.total > groups.length) {
      throw new TargetError('failed', `Jira has ${res.total} groups but its group picker returned only ${groups.length}, so the list of groups would be incomplete.`);
    }
    if (groups.length) yield groups;
  }

  /** Jira reports the members of nested groups as members too. */
  async *listMembers(group: AppGroup): AsyncIterable<string[]> {
    let startAt = 0;
    for (;;) {
      const res = await this.http.request<{ values?: UserBean[]; isLast?: boolean; total?: number }>({
        method: 'GET',
        path: `${API}/group/member`,
        query: { groupname: group.name, includeInactiveUsers: true, startAt, maxResults: MEMBER_PAGE },
        what: `list the members of group "${group.name}"`,
        expect: [404],
      });
      // a group deleted since it was listed has no members
      if (res.status === 404) return;
      const values = res.body?.values ?? [];
      const names = values.map((u) => u.name).filter((n): n is string => typeof n === 'string');
      if (names.length) yield names;
      startAt += values.length;
      const done = res.body?.isLast ?? (typeof res.body?.total === 'number' ? startAt >= res.body.total : values.length < MEMBER_PAGE);
      if (done || values.length === 0) return;
    }
  }

  async getUser(name: string): Promise<AppUser | undefined> {
    const res = await this.http.request<UserBean>({ method: 'GET', path: `${API}/user`, query: { username: name }, what: `read user "${name}"`, expect: [404] });
    return res.status === 404 || !res.body?.name ? undefined : toAppUser(res.body);
  }

  async createUser(user: WantedUser): Promise<AppUser> {
    const body: Record<string, unknown> = { name: user.name, displayName: user.displayName, notification: 'false' };
    if (user.email) body.emailAddress = user.email;
    // no password: Jira sets a random one, and people sign in through SSO
    const res = await this.http.request<UserBean>({
      method: 'POST',
      path: `${API}/user`,
      body,
      what: `create user "${user.name}"`,
      classify: userWriteCode,
      expect: [400],
    });
    if (res.status === 400) {
      const failure = failureOf(res);
      const code = userWriteCode(failure) ?? 'invalid';
      if (code === 'exists' && res.ambiguous) {
        const existing = await this.getUser(user.name);
        if (existing && sameEmail(existing.email, user.email)) return existing;
      }
      throw this.http.refusal(code, `create user "${user.name}"`, failure);
    }
    let created: AppUser = { name: res.body?.name ?? user.name, email: user.email, displayName: user.displayName, active: true, ...(res.body?.key ? { id: res.body.key } : {}) };
    if (!user.active) {
      await this.setActive(created, false);
      created = { ...created, active: false };
    }
    return created;
  }

  async updateUser(current: AppUser, user: WantedUser): Promise<AppUser> {
    const body: Record<string, unknown> = {};
    if (user.name !== current.name) body.name = user.name;
    if (user.email !== current.email && user.email) body.emailAddress = user.email;
    if (user.displayName !== current.displayName) body.displayName = user.displayName;
    const next: AppUser = { ...current, name: user.name, email: user.email ?? current.email, displayName: user.displayName };
    if (Object.keys(body).length === 0) return next;
    const rename = body.name !== undefined ? ` (renaming it to "${user.name}")` : '';
    await this.http.request({
      method: 'PUT',
      path: `${API}/user`,
      query: { username: current.name },
      body,
      what: `update user "${current.name}"${rename}`,
      classify: userWriteCode,
    });
    return next;
  }

  async setActive(user: AppUser, active: boolean): Promise<void> {
    await this.http.request({
      method: 'PUT',
      path: `${API}/user`,
      query: { username: user.name },
      body: { active },
      what: `${active ? 'activate' : 'deactivate'} user "${user.name}"`,
      classify: userWriteCode,
    });
  }

  /** A user already gone counts as deleted. */
  async deleteUser(user: AppUser): Promise<void> {
    await this.http.request({ method: 'DELETE', path: `${API}/user`, query: { username: user.name }, what: `delete user "${user.name}"`, expect: [404] });
  }

  async createGroup(name: string): Promise<AppGroup> {
    const res = await this.http.request({ method: 'POST', path: `${API}/group`, body: { name }, what: `create group "${name}"`, expect: [400] });
    if (res.status === 400) {
      const failure = failureOf(res);
      // Jira answers 400 both for an empty name and for a name in use
      const exists = EXISTS_WORDING.test(failure.detail ?? '');
      if (exists && res.ambiguous) return { name };
      throw this.http.refusal(exists ? 'exists' : 'invalid', `create group "${name}"`, failure);
    }
    return { name };
  }

  /** A group already gone counts as deleted. */
  async deleteGroup(group: AppGroup): Promise<void> {
    const res = await this.http.request({
      method: 'DELETE',
      path: `${API}/group`,
      query: { groupname: group.name },
      what: `delete group "${group.name}"`,
      expect: [400, 404],
    });
    if (res.status === 400) {
      const failure = failureOf(res);
      // older Jira versions answer 400 for a group that does not exist
      if (/not exist|not found|could not be found/i.test(failure.detail ?? '')) return;
      throw this.http.refusal('invalid', `delete group "${group.name}"`, failure);
    }
  }

  async addMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    for (const group of groups) {
      const what = `add user "${user.name}" to group "${group.name}"`;
      const res = await this.http.request({ method: 'POST', path: `${API}/group/user`, query: { groupname: group.name }, body: { name: user.name }, what, expect: [400] });
      if (res.status === 400) {
        const failure = failureOf(res);
        // not idempotent in Jira: an existing membership is a 400
        if (ALREADY_MEMBER.test(failure.detail ?? '')) continue;
        throw this.http.refusal(LICENCE_WORDING.test(failure.detail ?? '') ? 'licence' : 'invalid', what, failure);
      }
    }
  }

  async removeMembers(user: AppUser, groups: AppGroup[]): Promise<void> {
    for (const group of groups) {
      // 404: the membership (or the group, or the user) is gone already
      const what = `remove user "${user.name}" from group "${group.name}"`;
      const res = await this.http.request({ method: 'DELETE', path: `${API}/group/user`, query: { groupname: group.name, username: user.name }, what, expect: [400, 404] });
      if (res.status === 400) {
        const failure = failureOf(res);
        if (!/not a member|not in group|does not belong/i.test(failure.detail ?? '')) throw this.http.refusal('invalid', what, failure);
      }
    }
  }

  async handOverLeads(user: AppUser): Promise<string[]> {
    const snapshot = await this.leadsSnapshot();
    const isUser = (lead: { name?: string; key?: string } | undefined, leadUserName?: string) =>
      sameName(lead?.name ?? leadUserName, user.name) || (user.id !== undefined && lead?.key === user.id);

    const ledProjects = snapshot.projects.filter((p) => isUser(p.lead));
    const limit = pLimit(4);
    const componentLists = await Promise.all(snapshot.projects.map((p) => limit(() => this.componentsOf(snapshot, p.key).then((cs) => ({ project: p, cs })))));
    const ledComponents = componentLists.flatMap(({ project, cs }) => cs.filter((c) => isUser(c.lead, c.leadUserName)).map((c) => ({ project, component: c })));
    if (!ledProjects.length && !ledComponents.length) return [];

    const projectLead = this.conn.defaultProjectLead?.trim() || undefined;
    const componentLead = this.conn.defaultComponentLead?.trim() || projectLead;
    if (ledProjects.length && !projectLead) {
      throw new TargetError('invalid', `${user.name} leads ${ledProjects.length === 1 ? 'project' : 'projects'} ${ledProjects.map((p) => p.key).join(', ')}; set a default project lead so Jira can hand ${ledProjects.length === 1 ? 'it' : 'them'} over before the user is deactivated or deleted.`);
    }
    if (ledComponents.length && !componentLead) {
      const first = ledComponents[0]!;
      throw new TargetError('invalid', `${user.name} leads component "${first.component.name ?? first.component.id}" of project ${first.project.key}; set a default component or project lead so Jira can hand it over before the user is deactivated or deleted.`);
    }
    for (const lead of [projectLead, componentLead]) {
      if (lead && sameName(lead, user.name)) throw new TargetError('invalid', `${user.name} is the configured default lead, so the projects and components they lead cannot be handed over to them; choose another default lead.`);
    }

    const said: string[] = [];
    try {
      for (const project of ledProjects) {
        await this.http.request({ method: 'PUT', path: `${API}/project/${seg(project.key)}`, body: { lead: projectLead }, what: `hand project ${project.key} over to "${projectLead}"` });
        project.lead = { name: projectLead! };
        said.push(`Project ${project.key}${project.name ? ` (${project.name})` : ''} was led by ${user.name} and is now led by ${projectLead}.`);
      }
      for (const { project, component } of ledComponents) {
        await this.http.request({
          method: 'PUT',
          path: `${API}/component/${seg(component.id)}`,
          body: { leadUserName: componentLead },
          what: `hand component "${component.name ?? component.id}" of project ${project.key} over to "${componentLead}"`,
        });
        component.lead = { name: componentLead! };
        component.leadUserName = componentLead!;
        said.push(`Component "${component.name ?? component.id}" of project ${project.key} was led by ${user.name} and is now led by ${componentLead}.`);
      }
    } catch (e) {
      // what Jira holds now is uncertain: read it again next time
      this.leads = undefined;
      throw e;
    }
    return said;
  }

  async close(): Promise<void> {
    this.http.close();
  }

  /** Projects with their leads, read once per LEADS_TTL_MS however many users are handed over at once. */
  private leadsSnapshot(): Promise<LeadsSnapshot> {
    if (this.leads && Date.now() - this.leads.at < LEADS_TTL_MS) return this.leads.snapshot;
    const snapshot = this.http
      .get<ProjectBean[]>(`${API}/project`, { expand: 'lead' }, 'list projects with their leads')
      .then((projects) => ({ projects: Array.isArray(projects) ? projects : [], components: new Map<string, Promise<ComponentBean[]>>() }));
    const entry = { at: Date.now(), snapshot };
    this.leads = entry;
    snapshot.catch(() => {
      if (this.leads === entry) this.leads = undefined;
    });
    return snapshot;
  }

  private componentsOf(snapshot: LeadsSnapshot, key: string): Promise<ComponentBean[]> {
    let list = snapshot.components.get(key);
    if (!list) {
      list = this.http
        .request<ComponentBean[]>({ method: 'GET', path: `${API}/project/${seg(key)}/components`, what: `list the components of project ${key}`, expect: [404] })
        .then((res) => (res.status === 404 || !Array.isArray(res.body) ? [] : res.body));
      snapshot.components.set(key, list);
      list.catch(() => snapshot.components.delete(key));
    }
    return list;
  }

}

/** Jira's ways of saying "taken" and "no licence" in a 400 to a user write. */
function userWriteCode(f: HttpFailure): TargetErrorCode | undefined {
  if (f.status !== 400 && f.status !== 403) return undefined;
  const d = f.detail ?? '';
  if (LICENCE_WORDING.test(d)) return 'licence';
  if (f.status === 400 && EXISTS_WORDING.test(d)) return 'exists';
  return undefined;
}

function toAppUser(u: UserBean): AppUser {
  return {
    name: u.name!,
    email: u.emailAddress || null,
    displayName: u.displayName ?? u.name!,
    active: u.active !== false,
    ...(u.key ? { id: u.key } : {}),
  };
}

function sameName(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

function sameEmail(a: string | null, b: string | null): boolean {
  return (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
