// Jira Data Center 10.3, REST API v2 (shared/reference/atlassian.md §2): users, groups,
// memberships, and the projects and components whose leads block deactivation.

import { Fail } from './server.ts';
import type { Handler, Product, ProductEnv, Reply } from './server.ts';
import type { UserRecord } from './state.ts';
import { intParam, page } from './state.ts';
import type { FakeProject } from './types.ts';

interface Component {
  id: string;
  name: string;
  description?: string;
  lead?: UserRecord;
  project: Project;
}

interface Project {
  id: string;
  key: string;
  name: string;
  description: string;
  lead: UserRecord;
  components: Component[];
}

const LICENCE_MESSAGE = 'You have exceeded the number of users allowed by your Jira Software license. Contact your Jira administrator to upgrade the license.';

function err(status: number, errorMessages: string[], errors: Record<string, string> = {}): Fail {
  return new Fail({ status, body: { errorMessages, errors } });
}

const isTrue = (v: string | undefined): boolean => v?.toLowerCase() === 'true';

export function createJira(env: ProductEnv): Product {
  const { dir, options } = env;
  const projects = new Map<string, Project>();
  const components = new Map<string, Component>();
  let nextUserKey = 10100;
  let nextGroupId = 1;
  let nextProjectId = 10000;
  let nextComponentId = 10000;

  const api = (): string => `${env.origin}/rest/api/2`;
  const enc = encodeURIComponent;
  const avatarUrls = (name: string): Record<string, string> => {
    const o: Record<string, string> = {};
    for (const [size, px] of [['xsmall', '16x16'], ['small', '24x24'], ['medium', '32x32'], ['large', '48x48']] as const) {
      o[px] = `${env.origin}/secure/useravatar?size=${size}&ownerId=${enc(name)}&avatarId=10122`;
    }
    return o;
  };

  const userJson = (u: UserRecord): Record<string, unknown> => ({
    self: `${api()}/user?username=${enc(u.name)}`,
    key: u.id,
    name: u.name,
    ...(u.email !== null ? { emailAddress: u.email } : {}),
    avatarUrls: avatarUrls(u.name),
    displayName: u.displayName,
    active: u.active,
    timeZone: 'UTC',
  });

  const userBean = (u: UserRecord): Record<string, unknown> => ({
    ...userJson(u),
    deleted: false,
    locale: 'en_US',
    // Jira reports the count and leaves the items to ?expand=groups
    groups: { size: u.groups.size, items: [] },
    applicationRoles: { size: 1, items: [] },
    expand: 'groups,applicationRoles',
  });

  const adminBean = (): Record<string, unknown> => ({
    self: `${api()}/user?username=${enc(options.basicUser)}`,
    key: 'JIRAUSER10000',
    name: options.basicUser,
    emailAddress: `${options.basicUser}@example.com`,
    avatarUrls: avatarUrls(options.basicUser),
    displayName: 'Administrator',
    active: true,
    deleted: false,
    timeZone: 'UTC',
    locale: 'en_US',
    groups: { size: 2, items: [] },
    applicationRoles: { size: 1, items: [] },
    expand: 'groups,applicationRoles',
  });

  const groupBean = (name: string, size: number): Record<string, unknown> => ({
    name,
    self: `${api()}/group?groupname=${enc(name)}`,
    users: { size, items: [], 'max-results': 50, 'start-index': 0, 'end-index': 0 },
    expand: 'users',
  });

  const componentBean = (c: Component): Record<string, unknown> => ({
    self: `${api()}/component/${c.id}`,
    id: c.id,
    name: c.name,
    ...(c.description ? { description: c.description } : {}),
    ...(c.lead ? { lead: userBean(c.lead), leadUserName: c.lead.name } : {}),
    assigneeType: 'PROJECT_DEFAULT',
    realAssigneeType: 'PROJECT_DEFAULT',
    isAssigneeTypeValid: true,
    project: c.project.key,
    projectId: Number(c.project.id),
    archived: false,
    deleted: false,
  });

  const projectBean = (p: Project, expand: Set<string>, full = false): Record<string, unknown> => ({
    expand: 'description,lead,url,projectKeys,issueTypes',
    self: `${api()}/project/${p.id}`,
    id: p.id,
    key: p.key,
    name: p.name,
    ...(full || expand.has('description') ? { description: p.description } : {}),
    ...(full || expand.has('lead') ? { lead: userJson(p.lead) } : {}),
    ...(full ? { components: p.components.map(componentBean), assigneeType: 'PROJECT_LEAD', roles: {} } : {}),
    ...(expand.has('projectkeys') ? { projectKeys: [p.key] } : {}),
    avatarUrls: avatarUrls(p.key),
    projectTypeKey: 'software',
    archived: false,
  });

  const expandOf = (q: Record<string, string>): Set<string> => new Set((q.expand ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));

  /** the user named by ?username= or ?key= */
  const target = (q: Record<string, string>): UserRecord => {
    if (q.username !== undefined) {
      const u = dir.findUser(q.username);
      if (!u) throw err(404, [`The user named '${q.username}' does not exist`]);
      return u;
    }
    if (q.key !== undefined) {
      const u = dir.userById(q.key);
      if (!u) throw err(404, [`The user with the key '${q.key}' does not exist`]);
      return u;
    }
    throw err(400, ['Either the username or the key of the user must be given.']);
  };

  const leadsOf = (u: UserRecord): { projects: Project[]; components: Component[] } => ({
    projects: [...projects.values()].filter((p) => p.lead === u),
    components: [...components.values()].filter((c) => c.lead === u),
  });

  /** the reason a user cannot be deactivated or deleted while leading projects or components */
  const leadBlock = (u: UserRecord, action: 'deactivated' | 'deleted'): string[] => {
    const { projects: ps, components: cs } = leadsOf(u);
    const out: string[] = [];
    if (ps.length > 0) out.push(`User '${u.name}' cannot be ${action} because they are the project lead of ${ps.map((p) => `${p.name} (${p.key})`).join(', ')}.`);
    if (cs.length > 0) out.push(`User '${u.name}' cannot be ${action} because they are the component lead of ${cs.map((c) => `${c.name} (${c.project.key})`).join(', ')}.`);
    return out;
  };

  const licenceFull = (): boolean => Number.isFinite(options.seats) && dir.activeCount() >= options.seats;

  const badUsername = (name: string): string | undefined => {
    if (name.trim() === '') return 'You must specify a username.';
    if (/[<>&]/.test(name)) return "The username must not contain '<', '>' or '&'.";
    return undefined;
  };

  const findProject = (idOrKey: string): Project => {
    const p = projects.get(idOrKey.toUpperCase()) ?? [...projects.values()].find((x) => x.id === idOrKey);
    if (!p) throw err(404, [`No project could be found with key '${idOrKey}'.`]);
    return p;
  };

  const newUser = (u: { name: string; email: string | null; displayName: string; active: boolean }): UserRecord =>
    dir.addUser({ id: `JIRAUSER${nextUserKey++}`, ...u });

  const routes: Record<string, Handler> = {
    'GET /api/2/myself': () => ({ status: 200, body: adminBean() }),

    'GET /api/2/serverInfo': () => ({
      status: 200,
      body: {
        baseUrl: env.origin,
        version: '10.3.24',
        versionNumbers: [10, 3, 24],
        deploymentType: 'Server',
        buildNumber: 10030024,
        buildDate: '2025-01-01T00:00:00.000+0000',
        serverTime: new Date().toISOString().replace('Z', '+0000'),
        scmInfo: 'fake',
        serverTitle: 'Jira (fake)',
      },
    }),

    'POST /api/2/user': ({ body }) => {
      const b = (body ?? {}) as { name?: string; emailAddress?: string; displayName?: string };
      const errors: Record<string, string> = {};
      const name = b.name ?? '';
      const bad = badUsername(name);
      if (bad) errors.username = bad;
      else if (dir.findUser(name)) errors.username = 'A user with that username already exists.';
      if (!b.emailAddress) errors.email = 'You must specify an email address.';
      if (!b.displayName) errors.displayName = 'You must specify a full name.';
      if (Object.keys(errors).length > 0) throw err(400, [], errors);
      if (licenceFull()) throw err(400, [LICENCE_MESSAGE]);
      const u = newUser({ name, email: b.emailAddress!, displayName: b.displayName!, active: true });
      return { status: 201, body: userBean(u) };
    },

    'GET /api/2/user': ({ query }) => ({ status: 200, body: userBean(target(query)) }),

    'PUT /api/2/user': ({ query, body }) => {
      const u = target(query);
      const b = (body ?? {}) as { name?: string; emailAddress?: string; displayName?: string; active?: boolean };
      const errors: Record<string, string> = {};
      if (b.name !== undefined && b.name !== u.name) {
        const bad = badUsername(b.name);
        if (bad) errors.username = bad;
        else {
          const other = dir.findUser(b.name);
          if (other && other !== u) errors.username = 'A user with that username already exists.';
        }
      }
      if (b.emailAddress !== undefined && b.emailAddress.trim() === '') errors.email = 'You must specify an email address.';
      if (b.displayName !== undefined && b.displayName.trim() === '') errors.displayName = 'You must specify a full name.';
      if (Object.keys(errors).length > 0) throw err(400, [], errors);
      if (b.active === false && u.active) {
        const blocked = leadBlock(u, 'deactivated');
        if (blocked.length > 0) throw err(400, blocked);
      }
      if (b.active === true && !u.active && licenceFull()) throw err(400, [LICENCE_MESSAGE]);
      if (b.name !== undefined && b.name !== u.name) dir.renameUser(u, b.name);
      if (b.emailAddress !== undefined) u.email = b.emailAddress;
      if (b.displayName !== undefined) u.displayName = b.displayName;
      if (b.active !== undefined) u.active = b.active;
      dir.changed(u);
      return { status: 200, body: userBean(u) };
    },

    'DELETE /api/2/user': ({ query }) => {
      const u = target(query);
      const blocked = leadBlock(u, 'deleted');
      if (blocked.length > 0) throw err(400, blocked);
      dir.removeUser(u);
      return { status: 204 };
    },

    'GET /api/2/user/list': ({ query }) => {
      // a stream in creation order: the cursor is the position after the last user returned, so
      // users added or removed meanwhile do not make others repeat or disappear
      const all = dir.usersBySeq();
      const cursor = intParam(query.cursor, 0);
      const max = Math.max(1, intParam(query.maxResults, 2000));
      let lo = 0;
      let hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (all[mid]!.seq <= cursor) lo = mid + 1;
        else hi = mid;
      }
      const values = all.slice(lo, lo + max);
      const isLast = lo + values.length >= all.length;
      const body: Record<string, unknown> = {
        self: `${api()}/user/list?${query.cursor !== undefined ? `cursor=${cursor}&` : ''}maxResults=${max}`,
        maxResults: max,
        isLast,
        values: values.map(userBean),
      };
      if (!isLast) {
        const next = values[values.length - 1]!.seq;
        body.nextCursor = String(next);
        body.nextPage = `${api()}/user/list?cursor=${next}&maxResults=${max}`;
      }
      return { status: 200, body };
    },

    'GET /api/2/user/search': ({ query }) => {
      if (query.username === undefined) throw err(400, ['The username query parameter was not provided']);
      const q = query.username.toLowerCase();
      const all = q === '.' || q === '*' || q === '';
      const includeActive = query.includeActive === undefined || isTrue(query.includeActive);
      const includeInactive = isTrue(query.includeInactive);
      const hits = dir.users().filter((u) => {
        if (u.active ? !includeActive : !includeInactive) return false;
        if (all) return true;
        return u.name.toLowerCase().startsWith(q) || (u.email ?? '').toLowerCase().startsWith(q) || u.displayName.toLowerCase().split(/\s+/).some((w) => w.startsWith(q)) || u.displayName.toLowerCase().startsWith(q);
      });
      const max = Math.min(1000, intParam(query.maxResults, 50));
      return { status: 200, body: page(hits, intParam(query.startAt, 0), max).items.map(userBean) };
    },

    'POST /api/2/group': ({ body }) => {
      const name = ((body ?? {}) as { name?: string }).name ?? '';
      if (name.trim() === '') throw err(400, ['You must specify a valid group name.']);
      if (dir.findGroup(name)) throw err(400, ['A group or user with this name already exists.']);
      const g = dir.addGroup({ id: String(nextGroupId++), name });
      return { status: 201, body: groupBean(g.name, 0) };
    },

    'DELETE /api/2/group': ({ query }) => {
      const g = dir.findGroup(query.groupname ?? '');
      if (!g) throw err(404, [`Specified group '${query.groupname}' does not exist.`]);
      if (query.swapGroup !== undefined) {
        const swap = dir.findGroup(query.swapGroup);
        if (!swap) throw err(400, [`Specified swap group '${query.swapGroup}' does not exist.`]);
        if (swap === g) throw err(400, ['You cannot swap comments and worklogs to the group being deleted.']);
      }
      dir.removeGroup(g);
      return { status: 200 };
    },

    'GET /api/2/groups/picker': ({ query }) => {
      const q = (query.query ?? '').toLowerCase();
      const exclude = new Set((query.exclude ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
      // the default is Jira's jira.ajax.autocomplete.limit
      const max = intParam(query.maxResults, 20);
      const matched = dir.groups().filter((g) => !exclude.has(g.name.toLowerCase()) && g.name.toLowerCase().includes(q));
      const shown = matched.slice(0, max);
      const html = (name: string): string => {
        if (q === '') return name;
        const i = name.toLowerCase().indexOf(q);
        return `${name.slice(0, i)}<b>${name.slice(i, i + q.length)}</b>${name.slice(i + q.length)}`;
      };
      return {
        status: 200,
        body: {
          header: `Showing ${shown.length} of ${matched.length} matching groups`,
          total: matched.length,
          groups: shown.map((g) => ({ name: g.name, html: html(g.name), labels: [] })),
        },
      };
    },

    'GET /api/2/group/member': ({ query }) => {
      const g = dir.findGroup(query.groupname ?? '');
      if (!g) throw err(404, [`Group with name '${query.groupname}' does not exist.`]);
      const inactive = isTrue(query.includeInactiveUsers);
      const all = inactive ? dir.members(g) : dir.members(g).filter((u) => u.active);
      const startAt = intParam(query.startAt, 0);
      const max = Math.max(1, Math.min(50, intParam(query.maxResults, 50)));
      const { items, isLast } = page(all, startAt, max);
      const link = (s: number): string => `${api()}/group/member?groupname=${enc(g.name)}&includeInactiveUsers=${inactive}&startAt=${s}&maxResults=${max}`;
      return {
        status: 200,
        body: {
          self: link(startAt),
          ...(isLast ? {} : { nextPage: link(startAt + max) }),
          maxResults: max,
          startAt,
          total: all.length,
          isLast,
          values: items.map(userJson),
        },
      };
    },

    'POST /api/2/group/user': ({ query, body }) => {
      const g = dir.findGroup(query.groupname ?? '');
      if (!g) throw err(404, [`Specified group '${query.groupname}' does not exist.`]);
      const name = ((body ?? {}) as { name?: string }).name;
      if (!name) throw err(400, ['You must specify a user.']);
      const u = dir.findUser(name);
      if (!u) throw err(404, [`The user named '${name}' does not exist`]);
      if (g.members.has(u)) throw err(400, [`Cannot add user. '${u.name}' is already a member of '${g.name}'`]);
      dir.addMember(g, u);
      return { status: 201, body: groupBean(g.name, g.members.size) };
    },

    'DELETE /api/2/group/user': ({ query }) => {
      const g = dir.findGroup(query.groupname ?? '');
      if (!g) throw err(404, [`Specified group '${query.groupname}' does not exist.`]);
      const u = dir.findUser(query.username ?? '');
      if (!u) throw err(404, [`The user named '${query.username}' does not exist`]);
      if (!dir.removeMember(g, u)) throw err(404, [`Cannot remove user. '${u.name}' is not a member of '${g.name}'`]);
      return { status: 200 };
    },

    'GET /api/2/project': ({ query }) => {
      const expand = expandOf(query);
      const list = [...projects.values()].sort((a, b) => a.key.localeCompare(b.key));
      return { status: 200, body: list.map((p) => projectBean(p, expand)) };
    },

    'GET /api/2/project/{projectIdOrKey}': ({ params, query }) => ({ status: 200, body: projectBean(findProject(params.projectIdOrKey!), expandOf(query), true) }),

    'PUT /api/2/project/{projectIdOrKey}': ({ params, query, body }) => {
      const p = findProject(params.projectIdOrKey!);
      const b = (body ?? {}) as { lead?: string; name?: string; description?: string };
      let lead: UserRecord | undefined;
      if (b.lead !== undefined) {
        lead = dir.findUser(b.lead);
        if (!lead) throw err(400, [], { projectLead: 'The user you have specified as project lead does not exist.' });
      }
      if (b.name !== undefined && b.name.trim() === '') throw err(400, [], { projectName: 'You must specify a valid project name.' });
      if (lead) p.lead = lead;
      if (b.name !== undefined) p.name = b.name;
      if (b.description !== undefined) p.description = b.description;
      return { status: 200, body: projectBean(p, expandOf(query), true) };
    },

    'GET /api/2/project/{projectIdOrKey}/components': ({ params }) => ({ status: 200, body: findProject(params.projectIdOrKey!).components.map(componentBean) }),

    'GET /api/2/component/{id}': ({ params }) => {
      const c = components.get(params.id!);
      if (!c) throw err(404, [`The component with id ${params.id} does not exist.`]);
      return { status: 200, body: componentBean(c) };
    },

    'PUT /api/2/component/{id}': ({ params, body }) => {
      const c = components.get(params.id!);
      if (!c) throw err(404, [`The component with id ${params.id} does not exist.`]);
      const b = (body ?? {}) as { leadUserName?: string; name?: string; description?: string };
      let lead: UserRecord | undefined | null = null;
      if (b.leadUserName !== undefined && b.leadUserName !== '') {
        lead = dir.findUser(b.leadUserName);
        if (!lead) throw err(400, [], { componentLead: `The user ${b.leadUserName} does not exist.` });
      }
      if (b.name !== undefined) {
        if (b.name.trim() === '') throw err(400, [], { name: 'The component name must not be empty.' });
        if (c.project.components.some((x) => x !== c && x.name.toLowerCase() === b.name!.toLowerCase())) throw err(400, [], { name: 'A component with the name already exists in this project.' });
      }
      // an empty leadUserName clears the lead; an absent one leaves it
      if (b.leadUserName !== undefined) c.lead = lead ?? undefined;
      if (b.name !== undefined) c.name = b.name;
      if (b.description !== undefined) c.description = b.description;
      return { status: 200, body: componentBean(c) };
    },
  };

  const error = (status: number, message: string): Reply => ({ status, body: { errorMessages: [message], errors: {} } });

  return {
    kind: 'jira',
    routes,
    basicAuth: true,
    baseUrl: (origin) => origin,
    specPath: (path) => (path.startsWith('/rest/api/2/') ? path.slice('/rest'.length) : undefined),
    error,
    unauthorized: () => ({ status: 401, body: { errorMessages: ['You are not authenticated. Authentication required to perform this operation.'], errors: {} } }),
    invalid: (problems) => ({ status: 400, body: { errorMessages: problems, errors: {} } }),
    newUser,
    newGroup: (name) => dir.addGroup({ id: String(nextGroupId++), name }),
    addProject: (p) => {
      if (projects.has(p.key.toUpperCase())) throw new Error(`jira fake: project ${p.key} exists`);
      const lead = dir.findUser(p.lead);
      if (!lead) throw new Error(`jira fake: no user ${p.lead} to lead ${p.key}`);
      const project: Project = { id: String(nextProjectId++), key: p.key.toUpperCase(), name: p.name, description: '', lead, components: [] };
      for (const c of p.components ?? []) {
        const cl = c.lead === undefined ? undefined : dir.findUser(c.lead);
        if (c.lead !== undefined && !cl) throw new Error(`jira fake: no user ${c.lead} to lead component ${c.name}`);
        const comp: Component = { id: String(nextComponentId++), name: c.name, lead: cl, project };
        project.components.push(comp);
        components.set(comp.id, comp);
      }
      projects.set(project.key, project);
    },
    project: (key): FakeProject | undefined => {
      const p = projects.get(key.toUpperCase());
      if (!p) return undefined;
      return {
        key: p.key,
        name: p.name,
        lead: p.lead.name,
        components: p.components.map((c) => ({ id: c.id, name: c.name, ...(c.lead ? { lead: c.lead.name } : {}) })),
      };
    },
  };
}
