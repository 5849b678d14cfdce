// In-memory directory: users, groups, memberships, service principals and a change log for delta.

import { randomUUID } from 'node:crypto';
import { mulberry32 } from '../random.ts';

export type MemberType = 'user' | 'group';

export interface DirObject {
  kind: 'user' | 'group';
  id: string;
  props: Record<string, unknown>;
  /** sequence number when the object was created */
  createdSeq: number;
  /** sequence number of the last restore from soft-delete (0 if never) */
  restoredSeq: number;
  /** per-property sequence number of the last change */
  propSeq: Map<string, number>;
  /** set while soft-deleted */
  deletedSeq: number | null;
}

export interface GroupObject extends DirObject {
  kind: 'group';
  members: Map<string, MemberType>;
}

export interface ServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
  appRoleAssignmentRequired: boolean;
  appRoles: Array<{ id: string; value: string; displayName: string; allowedMemberTypes: string[]; isEnabled: boolean; description: string }>;
  assignments: Map<string, AppRoleAssignment>;
}

export interface AppRoleAssignment {
  id: string;
  appRoleId: string;
  createdDateTime: string;
  principalId: string;
  principalType: 'User' | 'Group' | 'ServicePrincipal';
}

export interface UserInput {
  id?: string;
  userPrincipalName: string;
  displayName?: string | null;
  mail?: string | null;
  givenName?: string | null;
  surname?: string | null;
  accountEnabled?: boolean;
  employeeId?: string | null;
  onPremisesSamAccountName?: string | null;
  onPremisesImmutableId?: string | null;
  onPremisesSyncEnabled?: boolean | null;
  userType?: 'Member' | 'Guest';
  [prop: string]: unknown;
}

export interface GroupInput {
  id?: string;
  displayName: string;
  description?: string | null;
  securityEnabled?: boolean;
  mailEnabled?: boolean;
  mail?: string | null;
  mailNickname?: string;
  groupTypes?: string[];
  [prop: string]: unknown;
}

export interface SeedOptions {
  users: number;
  groups?: number;
  /** direct user memberships spread at random over the groups (duplicates are skipped) */
  memberships?: number;
  /** groups nested into other groups (each a random child into a random parent, no cycles) */
  nestedGroups?: number;
  /** domain of generated userPrincipalNames */
  domain?: string;
  /** deterministic generation */
  randomSeed?: number;
}

export interface SeedResult {
  userIds: string[];
  groupIds: string[];
  memberships: number;
}

interface Change {
  seq: number;
  kind: 'user' | 'group';
  id: string;
}

interface MemberEvent {
  seq: number;
  groupId: string;
  memberId: string;
  memberType: MemberType;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** first index in a seq-ordered array with seq > after */
function firstAfter<T extends { seq: number }>(arr: T[], after: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]!.seq > after) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function notFound(what: string, id: string): Error {
  return new Error(`graph emulator: no ${what} ${id}`);
}

export class GraphState {
  readonly users = new Map<string, DirObject>();
  readonly groups = new Map<string, GroupObject>();
  readonly servicePrincipals = new Map<string, ServicePrincipal>();
  /** hard-deleted objects: id -> seq of deletion */
  readonly tombstones = new Map<string, { kind: 'user' | 'group'; seq: number }>();
  /** groups each object is a direct member of */
  readonly memberOf = new Map<string, Set<string>>();
  private readonly changes: Change[] = [];
  private readonly memberEvents: MemberEvent[] = [];
  private seqCounter = 0;
  private clockOffsetMs = 0;
  /** bumped by invalidateDeltaTokens(); delta tokens of an older epoch get 410 */
  deltaEpoch = 1;
  /** how long a deltaLink stays valid (Graph: 7 days for directory objects) */
  deltaTokenLifetimeMs = 7 * DAY_MS;

  get seq(): number {
    return this.seqCounter;
  }

  /** emulator clock: real time plus whatever advanceClock() added */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** move the emulator clock forward (token expiry, deltaLink expiry) */
  advanceClock(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** every deltaLink issued so far becomes stale (410 syncStateNotFound on its next use) */
  invalidateDeltaTokens(): void {
    this.deltaEpoch++;
  }

  private bump(): number {
    return ++this.seqCounter;
  }

  private isoNow(): string {
    return new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z');
  }

  // ---- users -------------------------------------------------------------------------------

  addUser(input: UserInput): DirObject {
    const id = input.id ?? randomUUID();
    if (this.users.has(id) || this.groups.has(id)) throw new Error(`graph emulator: id ${id} exists`);
    const seq = this.bump();
    const props: Record<string, unknown> = {
      displayName: input.userPrincipalName.split('@')[0],
      mail: null,
      givenName: null,
      surname: null,
      accountEnabled: true,
      userType: 'Member',
      businessPhones: [],
      createdDateTime: this.isoNow(),
      mailNickname: input.userPrincipalName.split('@')[0],
      ...input,
      id,
    };
    const user: DirObject = { kind: 'user', id, props, createdSeq: seq, restoredSeq: 0, propSeq: new Map(), deletedSeq: null };
    this.users.set(id, user);
    this.changes.push({ seq, kind: 'user', id });
    return user;
  }

  /** change user properties; a value of null clears the property */
  updateUser(id: string, patch: Partial<UserInput>): DirObject {
    const user = this.users.get(id);
    if (!user) throw notFound('user', id);
    this.patch(user, patch);
    return user;
  }

  private patch(obj: DirObject, patch: Record<string, unknown>): void {
    const seq = this.bump();
    for (const [k, v] of Object.entries(patch)) {
      if (k === 'id') continue;
      obj.props[k] = v;
      obj.propSeq.set(k, seq);
    }
    this.changes.push({ seq, kind: obj.kind, id: obj.id });
  }

  /** soft-delete: gone from /users, delta reports @removed reason "changed"; memberships are suspended */
  softDeleteUser(id: string): void {
    const user = this.users.get(id);
    if (!user) throw notFound('user', id);
    if (user.deletedSeq !== null) return;
    const seq = this.bump();
    user.deletedSeq = seq;
    user.props.deletedDateTime = this.isoNow();
    this.changes.push({ seq, kind: 'user', id });
    for (const g of this.memberOf.get(id) ?? []) this.memberEvents.push({ seq, groupId: g, memberId: id, memberType: 'user' });
  }

  restoreUser(id: string): void {
    const user = this.users.get(id);
    if (!user) throw notFound('user', id);
    if (user.deletedSeq === null) return;
    const seq = this.bump();
    user.deletedSeq = null;
    user.restoredSeq = seq;
    user.props.deletedDateTime = null;
    this.changes.push({ seq, kind: 'user', id });
    for (const g of this.memberOf.get(id) ?? []) this.memberEvents.push({ seq, groupId: g, memberId: id, memberType: 'user' });
  }

  /** permanent deletion: delta reports @removed reason "deleted"; memberships and assignments end */
  hardDeleteUser(id: string): void {
    const user = this.users.get(id);
    if (!user) throw notFound('user', id);
    this.removeObject(user);
  }

  private removeObject(obj: DirObject): void {
    const seq = this.bump();
    for (const g of this.memberOf.get(obj.id) ?? []) {
      this.groups.get(g)?.members.delete(obj.id);
      this.memberEvents.push({ seq, groupId: g, memberId: obj.id, memberType: obj.kind });
    }
    this.memberOf.delete(obj.id);
    if (obj.kind === 'group') {
      for (const m of (obj as GroupObject).members.keys()) this.memberOf.get(m)?.delete(obj.id);
      this.groups.delete(obj.id);
    } else {
      this.users.delete(obj.id);
    }
    for (const sp of this.servicePrincipals.values()) {
      for (const [aid, a] of sp.assignments) if (a.principalId === obj.id) sp.assignments.delete(aid);
    }
    this.tombstones.set(obj.id, { kind: obj.kind, seq });
    this.changes.push({ seq, kind: obj.kind, id: obj.id });
  }

  /** a user that is not soft-deleted */
  liveUser(id: string): DirObject | undefined {
    const u = this.users.get(id);
    return u && u.deletedSeq === null ? u : undefined;
  }

  /** find a live user by id or userPrincipalName (case-insensitive) */
  findUser(idOrUpn: string): DirObject | undefined {
    const byId = this.liveUser(idOrUpn);
    if (byId) return byId;
    const upn = idOrUpn.toLowerCase();
    for (const u of this.users.values()) {
      if (u.deletedSeq === null && String(u.props.userPrincipalName).toLowerCase() === upn) return u;
    }
    return undefined;
  }

  // ---- groups ------------------------------------------------------------------------------

  addGroup(input: GroupInput): GroupObject {
    const id = input.id ?? randomUUID();
    if (this.users.has(id) || this.groups.has(id)) throw new Error(`graph emulator: id ${id} exists`);
    const seq = this.bump();
    const nick = input.mailNickname ?? input.displayName.replace(/[^A-Za-z0-9]/g, '').slice(0, 64);
    const props: Record<string, unknown> = {
      description: null,
      securityEnabled: true,
      mailEnabled: false,
      mail: null,
      mailNickname: nick || 'group',
      groupTypes: [],
      createdDateTime: this.isoNow(),
      onPremisesSyncEnabled: null,
      onPremisesSamAccountName: null,
      visibility: null,
      ...input,
      id,
    };
    const group: GroupObject = { kind: 'group', id, props, createdSeq: seq, restoredSeq: 0, propSeq: new Map(), deletedSeq: null, members: new Map() };
    this.groups.set(id, group);
    this.changes.push({ seq, kind: 'group', id });
    return group;
  }

  updateGroup(id: string, patch: Partial<GroupInput>): GroupObject {
    const group = this.groups.get(id);
    if (!group) throw notFound('group', id);
    this.patch(group, patch);
    return group;
  }

  renameGroup(id: string, displayName: string): GroupObject {
    return this.updateGroup(id, { displayName });
  }

  /** soft-delete a group (Microsoft 365 groups are restorable; delta: @removed "changed") */
  softDeleteGroup(id: string): void {
    const group = this.groups.get(id);
    if (!group) throw notFound('group', id);
    if (group.deletedSeq !== null) return;
    const seq = this.bump();
    group.deletedSeq = seq;
    group.props.deletedDateTime = this.isoNow();
    this.changes.push({ seq, kind: 'group', id });
    for (const g of this.memberOf.get(id) ?? []) this.memberEvents.push({ seq, groupId: g, memberId: id, memberType: 'group' });
  }

  restoreGroup(id: string): void {
    const group = this.groups.get(id);
    if (!group) throw notFound('group', id);
    if (group.deletedSeq === null) return;
    const seq = this.bump();
    group.deletedSeq = null;
    group.restoredSeq = seq;
    group.props.deletedDateTime = null;
    this.changes.push({ seq, kind: 'group', id });
    for (const g of this.memberOf.get(id) ?? []) this.memberEvents.push({ seq, groupId: g, memberId: id, memberType: 'group' });
  }

  /** permanent deletion (security groups are deleted this way; delta: @removed "deleted") */
  deleteGroup(id: string): void {
    const group = this.groups.get(id);
    if (!group) throw notFound('group', id);
    this.removeObject(group);
  }

  liveGroup(id: string): GroupObject | undefined {
    const g = this.groups.get(id);
    return g && g.deletedSeq === null ? g : undefined;
  }

  /** add a user or group (nested) as a direct member */
  addMember(groupId: string, memberId: string): void {
    const group = this.groups.get(groupId);
    if (!group) throw notFound('group', groupId);
    const type: MemberType | undefined = this.users.has(memberId) ? 'user' : this.groups.has(memberId) ? 'group' : undefined;
    if (!type) throw notFound('member', memberId);
    if (memberId === groupId) throw new Error('graph emulator: a group cannot contain itself');
    if (group.members.has(memberId)) return;
    const seq = this.bump();
    group.members.set(memberId, type);
    let set = this.memberOf.get(memberId);
    if (!set) this.memberOf.set(memberId, (set = new Set()));
    set.add(groupId);
    this.memberEvents.push({ seq, groupId, memberId, memberType: type });
  }

  removeMember(groupId: string, memberId: string): void {
    const group = this.groups.get(groupId);
    if (!group) throw notFound('group', groupId);
    const type = group.members.get(memberId);
    if (!type) return;
    const seq = this.bump();
    group.members.delete(memberId);
    this.memberOf.get(memberId)?.delete(groupId);
    this.memberEvents.push({ seq, groupId, memberId, memberType: type });
  }

  /** direct members that are not soft-deleted */
  liveMembers(group: GroupObject): Array<DirObject> {
    const out: DirObject[] = [];
    for (const [id, type] of group.members) {
      const m = type === 'user' ? this.liveUser(id) : this.liveGroup(id);
      if (m) out.push(m);
    }
    return out;
  }

  /** all members reachable through nested groups; nested groups themselves are included */
  transitiveMembers(group: GroupObject): Array<DirObject> {
    const seen = new Set<string>([group.id]);
    const out: DirObject[] = [];
    const queue: GroupObject[] = [group];
    while (queue.length > 0) {
      const g = queue.shift()!;
      for (const m of this.liveMembers(g)) {
        if (seen.has(m.id)) continue;
        seen.add(m.id);
        out.push(m);
        if (m.kind === 'group') queue.push(m as GroupObject);
      }
    }
    return out;
  }

  /** groups a user or group is a direct member of, without soft-deleted ones */
  liveMemberOf(id: string): GroupObject[] {
    const out: GroupObject[] = [];
    for (const g of this.memberOf.get(id) ?? []) {
      const group = this.liveGroup(g);
      if (group) out.push(group);
    }
    return out;
  }

  /**
   * groups a user or group is a member of directly or through nested groups (breadth-first, each
   * once, cycle-safe); a soft-deleted group is left out and does not pass membership on
   */
  transitiveMemberOf(id: string): GroupObject[] {
    const seen = new Set<string>([id]);
    const out: GroupObject[] = [];
    const queue: string[] = [id];
    while (queue.length > 0) {
      const cur = queue.shift()!;
      for (const g of this.liveMemberOf(cur)) {
        if (seen.has(g.id)) continue;
        seen.add(g.id);
        out.push(g);
        queue.push(g.id);
      }
    }
    return out;
  }

  // ---- service principals / assignments ----------------------------------------------------

  addServicePrincipal(input: { id?: string; appId?: string; displayName: string; appRoleAssignmentRequired?: boolean; appRoles?: ServicePrincipal['appRoles'] }): ServicePrincipal {
    const sp: ServicePrincipal = {
      id: input.id ?? randomUUID(),
      appId: input.appId ?? randomUUID(),
      displayName: input.displayName,
      appRoleAssignmentRequired: input.appRoleAssignmentRequired ?? true,
      appRoles: input.appRoles ?? [],
      assignments: new Map(),
    };
    this.servicePrincipals.set(sp.id, sp);
    return sp;
  }

  findServicePrincipal(idOrAppId: { id?: string; appId?: string }): ServicePrincipal | undefined {
    if (idOrAppId.id !== undefined) return this.servicePrincipals.get(idOrAppId.id);
    const appId = idOrAppId.appId?.toLowerCase();
    for (const sp of this.servicePrincipals.values()) if (sp.appId.toLowerCase() === appId) return sp;
    return undefined;
  }

  /** assign a user or group to the app (appRoleId defaults to the all-zero "default access" role) */
  assign(servicePrincipalId: string, principalId: string, appRoleId = '00000000-0000-0000-0000-000000000000'): AppRoleAssignment {
    const sp = this.servicePrincipals.get(servicePrincipalId);
    if (!sp) throw notFound('servicePrincipal', servicePrincipalId);
    const principalType = this.users.has(principalId) ? 'User' : this.groups.has(principalId) ? 'Group' : undefined;
    if (!principalType) throw notFound('principal', principalId);
    const a: AppRoleAssignment = {
      id: Buffer.from(randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '').slice(0, 14), 'hex').toString('base64url'),
      appRoleId,
      createdDateTime: new Date(this.now()).toISOString(),
      principalId,
      principalType,
    };
    sp.assignments.set(a.id, a);
    return a;
  }

  unassign(servicePrincipalId: string, principalId: string): void {
    const sp = this.servicePrincipals.get(servicePrincipalId);
    if (!sp) throw notFound('servicePrincipal', servicePrincipalId);
    for (const [aid, a] of sp.assignments) if (a.principalId === principalId) sp.assignments.delete(aid);
  }

  principalDisplayName(id: string): string | null {
    const o = this.users.get(id) ?? this.groups.get(id);
    return o ? ((o.props.displayName as string | null) ?? null) : null;
  }

  // ---- change tracking ---------------------------------------------------------------------

  /** ids of objects of a kind changed after seq (first-change order) */
  changedSince(kind: 'user' | 'group', after: number): string[] {
    const ids = new Set<string>();
    for (let i = firstAfter(this.changes, after); i < this.changes.length; i++) {
      const c = this.changes[i]!;
      if (c.kind === kind) ids.add(c.id);
    }
    return [...ids];
  }

  /** membership changes after seq: groupId -> memberId -> member type */
  memberChangesSince(after: number): Map<string, Map<string, MemberType>> {
    const out = new Map<string, Map<string, MemberType>>();
    for (let i = firstAfter(this.memberEvents, after); i < this.memberEvents.length; i++) {
      const e = this.memberEvents[i]!;
      let m = out.get(e.groupId);
      if (!m) out.set(e.groupId, (m = new Map()));
      m.set(e.memberId, e.memberType);
    }
    return out;
  }

  // ---- bulk generation ---------------------------------------------------------------------

  /**
   * Generate a large tenant quickly (no change-log entries per object beyond one each): users
   * `user{n}@{domain}`, groups `group-{n}`, random direct memberships and optional nesting.
   */
  seed(opts: SeedOptions): SeedResult {
    const rnd = mulberry32(opts.randomSeed ?? 42);
    const domain = opts.domain ?? 'contoso.example';
    const seq = this.bump();
    const created = this.isoNow();
    const userIds: string[] = new Array<string>(opts.users);
    const base = this.users.size;
    for (let i = 0; i < opts.users; i++) {
      const n = base + i + 1;
      const id = randomUUID();
      const first = `First${n}`;
      const last = `Last${n}`;
      const props: Record<string, unknown> = {
        id,
        userPrincipalName: `user${n}@${domain}`,
        displayName: `${first} ${last}`,
        givenName: first,
        surname: last,
        mail: `user${n}@${domain}`,
        mailNickname: `user${n}`,
        accountEnabled: rnd() > 0.02,
        userType: 'Member',
        employeeId: String(100000 + n),
        businessPhones: [],
        createdDateTime: created,
        onPremisesSamAccountName: null,
        onPremisesImmutableId: null,
        onPremisesSyncEnabled: null,
      };
      this.users.set(id, { kind: 'user', id, props, createdSeq: seq, restoredSeq: 0, propSeq: new Map(), deletedSeq: null });
      this.changes.push({ seq, kind: 'user', id });
      userIds[i] = id;
    }
    const groupCount = opts.groups ?? 0;
    const groupIds: string[] = new Array<string>(groupCount);
    const groupObjs: GroupObject[] = new Array<GroupObject>(groupCount);
    const gbase = this.groups.size;
    for (let i = 0; i < groupCount; i++) {
      const n = gbase + i + 1;
      const id = randomUUID();
      const props: Record<string, unknown> = {
        id,
        displayName: `group-${n}`,
        description: `Generated group ${n}`,
        securityEnabled: true,
        mailEnabled: false,
        mail: null,
        mailNickname: `group-${n}`,
        groupTypes: [],
        createdDateTime: created,
        onPremisesSyncEnabled: null,
        onPremisesSamAccountName: null,
        visibility: null,
      };
      const g: GroupObject = { kind: 'group', id, props, createdSeq: seq, restoredSeq: 0, propSeq: new Map(), deletedSeq: null, members: new Map() };
      this.groups.set(id, g);
      this.changes.push({ seq, kind: 'group', id });
      groupIds[i] = id;
      groupObjs[i] = g;
    }
    let memberships = 0;
    const link = (g: GroupObject, memberId: string, type: MemberType): boolean => {
      if (g.members.has(memberId)) return false;
      g.members.set(memberId, type);
      let set = this.memberOf.get(memberId);
      if (!set) this.memberOf.set(memberId, (set = new Set()));
      set.add(g.id);
      return true;
    };
    const wanted = groupCount > 0 && userIds.length > 0 ? (opts.memberships ?? 0) : 0;
    for (let tries = 0; memberships < wanted && tries < wanted * 3; tries++) {
      const g = groupObjs[Math.floor(rnd() * groupCount)]!;
      const u = userIds[Math.floor(rnd() * userIds.length)]!;
      if (link(g, u, 'user')) memberships++;
    }
    // nesting: only from a lower to a higher index, so no cycles
    for (let k = 0, tries = 0; k < (opts.nestedGroups ?? 0) && tries < (opts.nestedGroups ?? 0) * 3 && groupCount > 1; tries++) {
      const a = Math.floor(rnd() * groupCount);
      const b = Math.floor(rnd() * groupCount);
      if (a === b) continue;
      const parent = groupObjs[Math.min(a, b)]!;
      const child = groupObjs[Math.max(a, b)]!;
      if (link(parent, child.id, 'group')) k++;
    }
    return { userIds, groupIds, memberships };
  }
}
