// The users, groups and memberships of one fake application. Names are looked up
// case-insensitively (Crowd-based products and SCIM userName are), and keep the case they were
// given. Memberships point at records, so a rename carries them along.

export interface UserRecord {
  /** the product's id (Jira key, Confluence userKey, Bitbucket numeric id, Cloud SCIM id) */
  id: string;
  name: string;
  email: string | null;
  displayName: string;
  active: boolean;
  /** creation order; Jira's user stream pages by it */
  seq: number;
  created: number;
  modified: number;
  groups: Set<GroupRecord>;
  /** product-specific attributes (Bitbucket numeric id, SCIM attributes, …) */
  extra: Record<string, unknown>;
}

export interface GroupRecord {
  id: string;
  name: string;
  members: Set<UserRecord>;
  created: number;
  modified: number;
  extra: Record<string, unknown>;
}

const lower = (s: string): string => s.toLowerCase();
const byName = (a: { name: string }, b: { name: string }): number => {
  const x = lower(a.name);
  const y = lower(b.name);
  return x < y ? -1 : x > y ? 1 : 0;
};

export class Directory {
  private readonly usersByName = new Map<string, UserRecord>();
  private readonly usersById = new Map<string, UserRecord>();
  private readonly groupsByName = new Map<string, GroupRecord>();
  private readonly groupsById = new Map<string, GroupRecord>();
  private seq = 0;
  /** bumped on every change; sorted views are cached against it */
  private version = 0;
  private sortedUsersCache?: { v: number; byName: UserRecord[]; bySeq: UserRecord[] };
  private sortedGroupsCache?: { v: number; list: GroupRecord[] };
  private readonly memberCache = new WeakMap<GroupRecord, { v: number; list: UserRecord[] }>();

  touch(): void {
    this.version++;
  }

  // users

  findUser(name: string): UserRecord | undefined {
    return this.usersByName.get(lower(name));
  }

  userById(id: string): UserRecord | undefined {
    return this.usersById.get(id);
  }

  addUser(u: { id: string; name: string; email: string | null; displayName: string; active: boolean; extra?: Record<string, unknown> }): UserRecord {
    const key = lower(u.name);
    if (this.usersByName.has(key)) throw new Error(`user ${u.name} exists`);
    const now = Date.now();
    const rec: UserRecord = { ...u, seq: ++this.seq, created: now, modified: now, groups: new Set(), extra: u.extra ?? {} };
    this.usersByName.set(key, rec);
    this.usersById.set(rec.id, rec);
    this.touch();
    return rec;
  }

  renameUser(u: UserRecord, newName: string): void {
    const from = lower(u.name);
    const to = lower(newName);
    if (from !== to && this.usersByName.has(to)) throw new Error(`user ${newName} exists`);
    this.usersByName.delete(from);
    u.name = newName;
    this.usersByName.set(to, u);
    this.changed(u);
  }

  changeUserId(u: UserRecord, id: string): void {
    this.usersById.delete(u.id);
    u.id = id;
    this.usersById.set(id, u);
    this.changed(u);
  }

  changed(u: UserRecord | GroupRecord): void {
    u.modified = Date.now();
    this.touch();
  }

  removeUser(u: UserRecord): void {
    for (const g of u.groups) g.members.delete(u);
    u.groups.clear();
    this.usersByName.delete(lower(u.name));
    this.usersById.delete(u.id);
    this.touch();
  }

  /** all users, sorted by lower-cased name */
  users(): UserRecord[] {
    return this.sortedUsers().byName;
  }

  /** all users in creation order */
  usersBySeq(): UserRecord[] {
    return this.sortedUsers().bySeq;
  }

  private sortedUsers(): { byName: UserRecord[]; bySeq: UserRecord[] } {
    if (this.sortedUsersCache?.v !== this.version) {
      const all = [...this.usersByName.values()];
      this.sortedUsersCache = { v: this.version, byName: [...all].sort(byName), bySeq: all.sort((a, b) => a.seq - b.seq) };
    }
    return this.sortedUsersCache;
  }

  get userCount(): number {
    return this.usersByName.size;
  }

  // groups

  findGroup(name: string): GroupRecord | undefined {
    return this.groupsByName.get(lower(name));
  }

  groupById(id: string): GroupRecord | undefined {
    return this.groupsById.get(id);
  }

  addGroup(g: { id: string; name: string; extra?: Record<string, unknown> }): GroupRecord {
    const key = lower(g.name);
    if (this.groupsByName.has(key)) throw new Error(`group ${g.name} exists`);
    const now = Date.now();
    const rec: GroupRecord = { id: g.id, name: g.name, members: new Set(), created: now, modified: now, extra: g.extra ?? {} };
    this.groupsByName.set(key, rec);
    this.groupsById.set(rec.id, rec);
    this.touch();
    return rec;
  }

  removeGroup(g: GroupRecord): void {
    for (const u of g.members) u.groups.delete(g);
    g.members.clear();
    this.groupsByName.delete(lower(g.name));
    this.groupsById.delete(g.id);
    this.touch();
  }

  /** all groups, sorted by lower-cased name */
  groups(): GroupRecord[] {
    if (this.sortedGroupsCache?.v !== this.version) {
      this.sortedGroupsCache = { v: this.version, list: [...this.groupsByName.values()].sort(byName) };
    }
    return this.sortedGroupsCache.list;
  }

  // memberships

  /** false when already a member */
  addMember(g: GroupRecord, u: UserRecord): boolean {
    if (g.members.has(u)) return false;
    g.members.add(u);
    u.groups.add(g);
    this.changed(g);
    return true;
  }

  /** false when not a member */
  removeMember(g: GroupRecord, u: UserRecord): boolean {
    if (!g.members.has(u)) return false;
    g.members.delete(u);
    u.groups.delete(g);
    this.changed(g);
    return true;
  }

  /** members sorted by lower-cased name */
  members(g: GroupRecord): UserRecord[] {
    const cached = this.memberCache.get(g);
    if (cached?.v === this.version) return cached.list;
    const list = [...g.members].sort(byName);
    this.memberCache.set(g, { v: this.version, list });
    return list;
  }

  /** a user's groups sorted by lower-cased name */
  groupsOf(u: UserRecord): GroupRecord[] {
    return [...u.groups].sort(byName);
  }

  activeCount(): number {
    let n = 0;
    for (const u of this.usersByName.values()) if (u.active) n++;
    return n;
  }
}

/** a page of `list` from `start` (0-based) */
export function page<T>(list: readonly T[], start: number, limit: number): { items: T[]; isLast: boolean } {
  const s = Math.max(0, start);
  const items = list.slice(s, s + Math.max(0, limit));
  return { items, isLast: s + items.length >= list.length };
}

/** a non-negative integer from a query value, else the default */
export function intParam(v: string | undefined, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : dflt;
}
