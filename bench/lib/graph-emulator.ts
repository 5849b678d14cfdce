// The Graph emulator (test/support/graph-emulator) in a process of its own, for `npm run bench -- graph`:
// it holds the whole tenant in memory, which must not count against the service's RSS. Prints
// `READY {…connection settings…}` on stdout once listening; the bench driver seeds the tenant, applies
// changes and asks for the expected state over the IPC channel (bench/lib/ipc.ts), never over HTTP.
//
//   node --import tsx bench/lib/graph-emulator.ts   (started by bench/graph-sync.ts)

import type { GraphEmulator, GroupObject } from '../../test/support/graph-emulator/index.ts';
import { startGraphEmulator } from '../../test/support/graph-emulator/index.ts';
import { serveIpc, shutdownAfter } from './ipc.ts';
import { mulberry32 } from '../../test/support/random.ts';

const DOMAIN = 'contoso.example';

const emu: GraphEmulator = await startGraphEmulator();
const { state } = emu;

// The emulator logs every request and never caps the log: count and drop it as the run goes.
let requests = 0;
const drain = () => {
  requests += emu.requests.length;
  emu.clearRequests();
};
setInterval(drain, 500).unref();

let userIds: string[] = [];
let groupIds: string[] = [];
let nextUser = 0;
let rnd = mulberry32(7);

const pick = <T>(list: T[]): T => list[Math.floor(rnd() * list.length)]!;
const upnOf = (id: string) => String(state.users.get(id)?.props.userPrincipalName);
const nameOf = (g: GroupObject) => String(g.props.displayName);

/** What the directory should hold for a user, from the emulator's truth (nested groups flattened). */
export interface ExpectedUser {
  id: string;
  username: string;
  /** false: hard-deleted in the tenant (the directory keeps it, deactivated) */
  exists: boolean;
  displayName?: string;
  active?: boolean;
  groups?: string[];
}

function expected(id: string, username?: string): ExpectedUser {
  const u = state.liveUser(id);
  if (!u) return { id, username: username ?? '', exists: false };
  return {
    id,
    username: String(u.props.userPrincipalName),
    exists: true,
    displayName: String(u.props.displayName),
    active: u.props.accountEnabled !== false,
    groups: state
      .transitiveMemberOf(id)
      .map(nameOf)
      .sort(),
  };
}

/** users (not groups) in a group, nested groups flattened */
const transitiveUsers = (g: GroupObject) => state.transitiveMembers(g).filter((m) => m.kind === 'user').length;

serveIpc({
  seed: (a: { users: number; groups: number; memberships: number; nestedGroups: number; randomSeed: number }) => {
    const t0 = performance.now();
    const r = state.seed({ ...a, domain: DOMAIN });
    userIds = r.userIds;
    groupIds = r.groupIds;
    nextUser = state.users.size;
    rnd = mulberry32(a.randomSeed + 1);
    const seedMs = performance.now() - t0;
    // what a full sync must produce: every user, every group, memberships with nesting flattened
    let transitive = 0;
    for (const g of state.groups.values()) transitive += transitiveUsers(g);
    let nested = 0;
    for (const g of state.groups.values()) for (const t of g.members.values()) if (t === 'group') nested++;
    let active = 0;
    for (const u of state.users.values()) if (u.props.accountEnabled !== false) active++;
    return { seedMs, users: state.users.size, activeUsers: active, groups: state.groups.size, directMemberships: r.memberships, nestedLinks: nested, transitiveMemberships: transitive };
  },

  /**
   * About 100 changes of the kinds a delta round meets, returned with what the directory should then
   * hold for every user touched and every group renamed.
   */
  applyChanges: (a: { updates: number; disables: number; newUsers: number; adds: number; removals: number; deletions: number; renames: number }) => {
    const touched = new Set<string>();
    const deleted: { id: string; username: string }[] = [];
    const used = new Set<string>();
    const fresh = () => {
      for (;;) {
        const id = pick(userIds);
        if (!used.has(id) && state.liveUser(id)) {
          used.add(id);
          return id;
        }
      }
    };
    let changes = 0;
    for (let i = 0; i < a.updates; i++) {
      const id = fresh();
      const u = state.liveUser(id)!;
      state.updateUser(id, { displayName: `${String(u.props.displayName)} (changed)`, jobTitle: 'Changed' });
      touched.add(id);
      changes++;
    }
    for (let i = 0; i < a.disables; i++) {
      const id = fresh();
      const enabled = state.liveUser(id)!.props.accountEnabled !== false;
      state.updateUser(id, { accountEnabled: !enabled });
      touched.add(id);
      changes++;
    }
    for (let i = 0; i < a.newUsers; i++) {
      const n = ++nextUser;
      const u = state.addUser({ userPrincipalName: `new${n}@${DOMAIN}`, displayName: `New User ${n}`, givenName: 'New', surname: `User ${n}`, mail: `new${n}@${DOMAIN}` });
      state.addMember(pick(groupIds), u.id);
      used.add(u.id);
      touched.add(u.id);
      changes += 2;
    }
    for (let i = 0; i < a.adds; i++) {
      const id = fresh();
      let g = pick(groupIds);
      while (state.groups.get(g)!.members.has(id)) g = pick(groupIds);
      state.addMember(g, id);
      touched.add(id);
      changes++;
    }
    for (let i = 0; i < a.removals; i++) {
      let id = fresh();
      while (!state.memberOf.get(id)?.size) id = fresh();
      const g = pick([...state.memberOf.get(id)!]);
      state.removeMember(g, id);
      touched.add(id);
      changes++;
    }
    for (let i = 0; i < a.deletions; i++) {
      const id = fresh();
      deleted.push({ id, username: upnOf(id) });
      state.hardDeleteUser(id);
      touched.delete(id);
      changes++;
    }
    const renamed: { id: string; from: string; to: string }[] = [];
    for (let i = 0; i < a.renames; i++) {
      let g = pick(groupIds);
      while (renamed.some((r) => r.id === g)) g = pick(groupIds);
      const from = nameOf(state.groups.get(g)!);
      state.renameGroup(g, `${from}-renamed`);
      renamed.push({ id: g, from, to: `${from}-renamed` });
      changes++;
    }
    return {
      changes,
      users: [...touched].map((id) => expected(id)),
      deleted: deleted.map((d) => expected(d.id, d.username)),
      renamed: renamed.map((r) => ({ ...r, transitiveUsers: transitiveUsers(state.groups.get(r.id)!) })),
    };
  },

  /** `count` users not touched so far, plus one brand-new user in two groups (one of them nested in another group when there is one) */
  onDemandUsers: (a: { count: number }) => {
    const out: string[] = [];
    const seen = new Set<string>();
    while (out.length < a.count) {
      const id = pick(userIds);
      if (seen.has(id) || !state.liveUser(id)) continue;
      seen.add(id);
      out.push(upnOf(id));
    }
    const n = ++nextUser;
    const u = state.addUser({ userPrincipalName: `ondemand${n}@${DOMAIN}`, displayName: `On Demand ${n}`, givenName: 'On', surname: `Demand ${n}`, mail: `ondemand${n}@${DOMAIN}` });
    const nestedChild = [...state.groups.values()].find((g) => state.liveMemberOf(g.id).length > 0);
    state.addMember(nestedChild?.id ?? pick(groupIds), u.id);
    state.addMember(pick(groupIds), u.id);
    return { existing: out, brandNew: String(u.props.userPrincipalName) };
  },

  expect: (a: { usernames: string[] }) =>
    a.usernames.map((name) => {
      const u = state.findUser(name);
      return u ? expected(u.id) : { id: '', username: name, exists: false };
    }),

  /** Graph requests served since the last call */
  requests: () => {
    drain();
    const n = requests;
    requests = 0;
    return n;
  },

  shutdown: shutdownAfter(() => emu.close()),
});

process.stdout.write(
  `READY ${JSON.stringify({ pid: process.pid, tenantId: emu.tenantId, clientId: emu.clientId, clientSecret: emu.clientSecret, authorityHost: emu.authorityHost, graphUrl: emu.url, caCert: emu.caCert })}\n`,
);
