// Full comparison of a target: read the application's users, groups and the memberships that matter, set
// them against the directory and the ledger, and report. In `fix` mode the ledger is first corrected to
// what the application really has (an owned user deleted by hand, a membership removed by hand, an
// attribute edited), and the users and groups that differ are queued: the delivery then restores them.
// Nothing the ledger does not own is ever changed. The first comparison of a new target reports matches
// (same username, or the same e-mail) that an administrator adopts before delivery starts.

import pLimit from 'p-limit';
import type { LedgerRow, TargetStore } from '../store/targets.ts';
import { membershipLocalId } from '../store/targets.ts';
import { sameName, userDrift } from './delivery.ts';
import type { DirectoryGroupView, DirectoryUserView } from './scope.ts';
import { groupInScope, userOutOfScope, userProblem, wantedUser } from './scope.ts';
import type { DeliveryTarget } from './delivery.ts';
import type { AppGroup, AppUser, TargetApp } from './types.ts';

export type ComparisonCategory =
  | 'user-missing'
  | 'user-match'
  | 'user-match-email'
  | 'user-owned-missing'
  | 'user-drift'
  | 'user-invalid'
  | 'user-unmanaged'
  | 'group-missing'
  | 'group-match'
  | 'group-owned-missing'
  | 'group-unmanaged'
  | 'membership-missing'
  | 'membership-to-add'
  | 'membership-match'
  | 'membership-extra';

/** What each category means, for reports and the UI. */
export const CATEGORY_TEXT: Record<ComparisonCategory, string> = {
  'user-missing': 'in the directory, not yet in the application (will be created)',
  'user-match': 'exists in the application with the same username, not yet owned (adopt to manage it)',
  'user-match-email': 'exists in the application under another username with the same e-mail (adopt to manage it; it is renamed where the application can)',
  'user-owned-missing': 'created or adopted by usersync, but gone from the application (a repair creates it again)',
  'user-drift': "owned, but the application's values differ from the directory (a repair restores them)",
  'user-invalid': 'in the directory, but the application would refuse it',
  'user-unmanaged': 'only in the application, not owned (left alone)',
  'group-missing': 'in the directory, not yet in the application (will be created)',
  'group-match': 'exists in the application with the same name, not yet owned (adopt to manage its memberships)',
  'group-owned-missing': 'created or adopted by usersync, but gone from the application (a repair creates it again)',
  'group-unmanaged': 'only in the application, not owned (left alone)',
  'membership-missing': 'made by usersync, but removed in the application (a repair adds it again)',
  'membership-to-add': 'wanted by the directory, not yet in the application (will be added)',
  'membership-match': 'wanted by the directory and already in the application (adopted with its user and group)',
  'membership-extra': 'in an owned group but not made by usersync nor wanted by the directory (left alone)',
};

export interface ComparisonItem {
  category: ComparisonCategory;
  entity: 'user' | 'group' | 'membership';
  localId: string | null;
  remoteName: string;
  detail: Record<string, unknown>;
}

export interface ComparisonResult {
  summary: Record<string, number>;
  items: ComparisonItem[];
  /** fix mode: what was queued for repair */
  queued: number;
}

const key = (s: string) => s.toLowerCase();

async function collect<T>(pages: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const p of pages) out.push(...p);
  return out;
}

export async function compareTarget(
  store: TargetStore,
  target: DeliveryTarget,
  app: TargetApp,
  mode: 'report' | 'fix',
  progress: (phase: string, done: number) => void = () => {},
): Promise<ComparisonResult> {
  const s = target.settings;
  const tid = target.id;

  // --- the application
  const appUsers = new Map<string, AppUser>();
  const appByEmail = new Map<string, AppUser[]>();
  for await (const page of app.listUsers()) {
    for (const u of page) {
      appUsers.set(key(u.name), u);
      if (u.email) appByEmail.set(key(u.email), [...(appByEmail.get(key(u.email)) ?? []), u]);
    }
    progress('application users', appUsers.size);
  }
  const appGroups = new Map<string, AppGroup>();
  for (const g of await collect(app.listGroups())) appGroups.set(key(g.name), g);
  progress('application groups', appGroups.size);

  // --- the directory, as this target receives it
  const dirGroups = (await store.directoryGroupsAll()).filter((g) => groupInScope(s, g));
  const dirGroupById = new Map(dirGroups.map((g) => [g.id, g]));
  const groupsOfUser = new Map<string, string[]>();
  for await (const page of store.directoryMembershipPages()) {
    for (const m of page) {
      if (!dirGroupById.has(m.groupId)) continue;
      const list = groupsOfUser.get(m.userId);
      if (list) list.push(m.groupId);
      else groupsOfUser.set(m.userId, [m.groupId]);
    }
  }

  // --- the ledger
  const ledgerUsers = new Map((await store.ledgerAll(tid, 'user')).map((l) => [l.localId, l]));
  const ledgerGroups = new Map((await store.ledgerAll(tid, 'group')).map((l) => [l.localId, l]));
  const ledgerMembers = new Map((await store.ledgerAll(tid, 'membership')).map((l) => [l.localId, l]));
  const ledgerMembersOf = new Map<string, LedgerRow[]>();
  for (const m of ledgerMembers.values()) {
    const userId = m.localId.slice(0, m.localId.indexOf(':'));
    const list = ledgerMembersOf.get(userId);
    if (list) list.push(m);
    else ledgerMembersOf.set(userId, [m]);
  }
  const ownedUserNames = new Set([...ledgerUsers.values()].map((l) => key(l.remoteName)));
  const ownedGroupNames = new Set([...ledgerGroups.values()].map((l) => key(l.remoteName)));

  // --- the members of the groups that matter: owned ones, and those matching a directory group
  const members = new Map<string, Set<string>>();
  const relevant = new Set<string>([...ownedGroupNames, ...dirGroups.map((g) => key(g.name))].filter((n) => appGroups.has(n)));
  let read = 0;
  const limit = pLimit(s.concurrency);
  await Promise.all(
    [...relevant].map((name) =>
      limit(async () => {
        const set = new Set<string>();
        for await (const page of app.listMembers(appGroups.get(name)!)) for (const u of page) set.add(key(u));
        members.set(name, set);
        progress('group members', ++read);
      }),
    ),
  );

  const items: ComparisonItem[] = [];
  const summary: Record<string, number> = {};
  const add = (it: ComparisonItem) => {
    items.push(it);
    summary[it.category] = (summary[it.category] ?? 0) + 1;
  };
  const count = (name: string) => (summary[name] = (summary[name] ?? 0) + 1);
  const repairUsers = new Set<string>();
  const repairGroups = new Set<string>();
  const forget: { kind: 'user' | 'group' | 'membership'; localId: string }[] = [];
  const refresh: LedgerRow[] = [];
  const matchedApp = new Set<string>();

  // --- groups
  const groupName = new Map<string, string>(); // directory group id → the application's name for it
  for (const g of dirGroups) {
    const l = ledgerGroups.get(g.id);
    if (l && !l.pending) {
      groupName.set(g.id, l.remoteName);
      if (!appGroups.has(key(l.remoteName))) {
        add({ category: 'group-owned-missing', entity: 'group', localId: g.id, remoteName: l.remoteName, detail: { origin: l.origin } });
        forget.push({ kind: 'group', localId: g.id });
        repairGroups.add(g.id);
      } else if (!sameName(l.remoteName, g.name)) {
        repairGroups.add(g.id); // a rename not yet delivered
        count('group-ok');
      } else count('group-ok');
      continue;
    }
    const existing = appGroups.get(key(g.name));
    if (existing) {
      add({ category: 'group-match', entity: 'group', localId: g.id, remoteName: existing.name, detail: { ...(existing.id ? { id: existing.id } : {}) } });
      groupName.set(g.id, existing.name);
    } else add({ category: 'group-missing', entity: 'group', localId: g.id, remoteName: g.name, detail: {} });
    repairGroups.add(g.id);
  }
  const dirGroupNames = new Set(dirGroups.map((d) => key(d.name)));
  for (const [k, g] of appGroups) {
    if (ownedGroupNames.has(k) || dirGroupNames.has(k)) continue;
    add({ category: 'group-unmanaged', entity: 'group', localId: null, remoteName: g.name, detail: {} });
  }
  for (const l of ledgerGroups.values()) {
    if (dirGroupById.has(l.localId) || l.pending) continue;
    // owned, but no longer received (deleted in the directory, or out of scope): the delivery decides
    if (!appGroups.has(key(l.remoteName))) forget.push({ kind: 'group', localId: l.localId });
    repairGroups.add(l.localId);
  }

  // --- users
  const seenDirectory = new Set<string>();
  for await (const page of store.directoryUserPages()) {
    for (const u of page) {
      seenDirectory.add(u.id);
      compareUser(u, groupsOfUser.get(u.id) ?? []);
    }
    progress('directory users', seenDirectory.size);
  }
  for (const l of ledgerUsers.values()) if (!seenDirectory.has(l.localId)) compareUser(undefined, [], l.localId);

  function compareUser(u: DirectoryUserView | undefined, groupIds: string[], ledgerOnlyId?: string): void {
    const id = u?.id ?? ledgerOnlyId!;
    const l = ledgerUsers.get(id);
    const groupsIn = groupIds.map((g) => dirGroupById.get(g)!).filter(Boolean) as DirectoryGroupView[];
    const out = userOutOfScope(s, u, groupsIn.length);
    if (l && !l.pending) {
      const appUser = appUsers.get(key(l.remoteName));
      matchedApp.add(key(l.remoteName));
      if (!appUser) {
        if (!out || l.state.active !== false) {
          add({ category: 'user-owned-missing', entity: 'user', localId: id, remoteName: l.remoteName, detail: { origin: l.origin } });
          forget.push({ kind: 'user', localId: id });
          for (const m of ledgerMembersOf.get(id) ?? []) forget.push({ kind: 'membership', localId: m.localId });
          repairUsers.add(id);
        }
        return;
      }
      // the ledger learns what the application really has, so the delivery sees the difference
      refresh.push({ ...l, remoteName: appUser.name, remoteId: appUser.id ?? l.remoteId, state: { email: appUser.email, displayName: appUser.displayName, active: appUser.active } });
      const wantActive = out ? (s.cleanup === 'deactivate' && target.kind !== 'bitbucket' ? false : appUser.active) : u!.active;
      const drift = out ? [] : userDrift(appUser, wantedUser(u!));
      if (target.kind !== 'bitbucket' && appUser.active !== wantActive) drift.push('active');
      if (drift.length) {
        add({ category: 'user-drift', entity: 'user', localId: id, remoteName: appUser.name, detail: { fields: drift } });
        repairUsers.add(id);
      } else count('user-ok');
      // memberships usersync made, and the ones the directory wants
      const wantedGroupIds = new Set(out || (target.kind === 'bitbucket' && !u!.active) ? [] : groupsIn.map((g) => g.id));
      for (const m of ledgerMembersOf.get(id) ?? []) {
        const groupId = m.localId.slice(id.length + 1);
        const inApp = members.get(key(m.remoteName))?.has(key(appUser.name));
        if (!inApp) {
          if (wantedGroupIds.has(groupId)) add({ category: 'membership-missing', entity: 'membership', localId: m.localId, remoteName: `${m.remoteName} ∋ ${appUser.name}`, detail: {} });
          forget.push({ kind: 'membership', localId: m.localId });
          if (wantedGroupIds.has(groupId)) repairUsers.add(id);
        } else if (!wantedGroupIds.has(groupId)) repairUsers.add(id);
      }
      for (const groupId of wantedGroupIds) {
        const lid = membershipLocalId(id, groupId);
        if (ledgerMembers.has(lid)) continue;
        const name = groupName.get(groupId) ?? dirGroupById.get(groupId)!.name;
        const inApp = members.get(key(name))?.has(key(appUser.name));
        add({ category: inApp ? 'membership-match' : 'membership-to-add', entity: 'membership', localId: lid, remoteName: `${name} ∋ ${appUser.name}`, detail: { group: name, user: appUser.name } });
        repairUsers.add(id);
      }
      return;
    }
    if (out || !u) return;
    const wanted = wantedUser(u);
    const problem = userProblem(target.kind, s, wanted);
    if (problem) {
      add({ category: 'user-invalid', entity: 'user', localId: id, remoteName: u.username, detail: { problem } });
      return;
    }
    let appUser = appUsers.get(key(u.username));
    let by = 'username';
    if (!appUser && u.email) {
      const sameEmail = (appByEmail.get(key(u.email)) ?? []).filter((a) => !ownedUserNames.has(key(a.name)));
      if (sameEmail.length === 1) {
        appUser = sameEmail[0];
        by = 'email';
      }
    }
    if (appUser && ownedUserNames.has(key(appUser.name))) appUser = undefined; // owned by another directory user
    if (appUser) {
      matchedApp.add(key(appUser.name));
      add({
        category: by === 'email' ? 'user-match-email' : 'user-match',
        entity: 'user',
        localId: id,
        remoteName: appUser.name,
        detail: { username: u.username, email: appUser.email, displayName: appUser.displayName, active: appUser.active, ...(appUser.id ? { id: appUser.id } : {}), drift: userDrift(appUser, wanted) },
      });
      // memberships already there, adopted along with the user
      for (const g of groupsIn) {
        const name = groupName.get(g.id) ?? g.name;
        const inApp = members.get(key(name))?.has(key(appUser.name));
        if (inApp) add({ category: 'membership-match', entity: 'membership', localId: membershipLocalId(id, g.id), remoteName: `${name} ∋ ${appUser.name}`, detail: { group: name, user: appUser.name } });
      }
    } else if (u.active) add({ category: 'user-missing', entity: 'user', localId: id, remoteName: u.username, detail: { groups: groupsIn.length } });
    repairUsers.add(id);
  }

  for (const [k, u] of appUsers) {
    if (matchedApp.has(k) || ownedUserNames.has(k)) continue;
    add({ category: 'user-unmanaged', entity: 'user', localId: null, remoteName: u.name, detail: { active: u.active } });
  }
  // memberships in owned groups that usersync did not make and the directory does not want
  const accounted = new Set(items.filter((it) => it.entity === 'membership').map((it) => key(it.remoteName)));
  for (const m of ledgerMembers.values()) {
    const user = ledgerUsers.get(m.localId.slice(0, m.localId.indexOf(':')));
    if (user) accounted.add(key(`${m.remoteName} ∋ ${user.remoteName}`));
  }
  for (const l of ledgerGroups.values()) {
    const set = members.get(key(l.remoteName));
    if (!set) continue;
    for (const name of set) {
      if (accounted.has(key(`${l.remoteName} ∋ ${name}`))) continue;
      add({ category: 'membership-extra', entity: 'membership', localId: null, remoteName: `${l.remoteName} ∋ ${name}`, detail: {} });
    }
  }

  let queued = 0;
  if (mode === 'fix') {
    await store.db.transaction(async (trx) => {
      for (const r of refresh) await store.ledgerPut(tid, r, trx);
      for (const kind of ['membership', 'user', 'group'] as const) {
        await store.ledgerDelete(
          tid,
          kind,
          forget.filter((f) => f.kind === kind).map((f) => f.localId),
          trx,
        );
      }
      const work = [...[...repairGroups].map((g) => ({ key: `g:${g}`, seq: 0 })), ...[...repairUsers].map((u) => ({ key: `u:${u}`, seq: 0 }))];
      await store.upsertWork(trx, tid, work);
      queued = work.length;
    });
  }
  return { summary, items, queued };
}

/**
 * Adopt what a comparison matched: the users, groups and memberships it found in the application
 * become owned, and delivery starts from the current end of the change feed with every directory user
 * and group queued (the ones already there only get what differs).
 */
export async function adoptComparison(store: TargetStore, targetId: string, comparisonId: string, exclude: string[] = []): Promise<{ users: number; groups: number; memberships: number }> {
  const skip = new Set(exclude.map(key));
  const items = [];
  for (const category of ['group-match', 'user-match', 'user-match-email', 'membership-match']) {
    let after: number | undefined;
    for (;;) {
      const page = await store.comparisonItems(comparisonId, { category, limit: 5000, ...(after !== undefined ? { after } : {}) });
      if (!page.length) break;
      items.push(...page);
      after = page[page.length - 1]!.n;
    }
  }
  const rows: LedgerRow[] = [];
  const adoptedUsers = new Set<string>();
  const adoptedGroups = new Set<string>();
  for (const it of items) {
    if (!it.local_id || skip.has(key(it.remote_name))) continue;
    const d = JSON.parse(it.detail) as Record<string, unknown>;
    if (it.entity === 'group') {
      adoptedGroups.add(it.local_id);
      rows.push({ kind: 'group', localId: it.local_id, remoteName: it.remote_name, remoteId: (d.id as string) ?? null, state: {}, origin: 'adopted', pending: false });
    } else if (it.entity === 'user') {
      adoptedUsers.add(it.local_id);
      rows.push({ kind: 'user', localId: it.local_id, remoteName: it.remote_name, remoteId: (d.id as string) ?? null, state: { email: d.email ?? null, displayName: d.displayName, active: d.active !== false }, origin: 'adopted', pending: false });
    }
  }
  for (const it of items) {
    if (it.entity !== 'membership' || !it.local_id) continue;
    const userId = it.local_id.slice(0, it.local_id.indexOf(':'));
    const d = JSON.parse(it.detail) as { group: string; user: string };
    if (skip.has(key(d.user)) || skip.has(key(d.group))) continue;
    if (!adoptedUsers.has(userId)) continue;
    rows.push({ kind: 'membership', localId: it.local_id, remoteName: d.group, remoteId: null, state: {}, origin: 'adopted', pending: false });
  }
  await store.db.transaction(async (trx) => {
    const cursor = await store.maxFeedSeq(trx);
    await store.ledgerPutMany(trx, targetId, rows);
    await store.update(trx, targetId, { phase: 'active', cursorSeq: cursor });
    await store.enqueueEverything(trx, targetId);
  });
  return { users: adoptedUsers.size, groups: adoptedGroups.size, memberships: rows.filter((r) => r.kind === 'membership').length };
}
