// The LDAP / Active Directory pull source. A full read pages through users, then groups (completing long
// member lists by range retrieval), resolves member DNs to ids, flattens nested groups (AD's in-chain rule
// or a walk of the groups read), and writes the mirror a page at a time; removals come only at the end, so
// a read that fails half-way removes nobody. Between full reads, a change round reads what changed since
// the marker taken before the last read (AD uSNChanged from the RootDSE, or modifyTimestamp), finds
// deletions by listing the ids in scope (ordinary accounts do not see AD's tombstones), and reads the
// changed groups, and the groups containing them, again. A full read runs at least every fullSyncHours.

import type { Entry } from 'ldapts';
import type { Db } from '../../store/db.ts';
import type { PulledRecord } from '../../store/mirror-writer.ts';
import { MemberBatches, finishFullRead, pool, retryConflicts, stopIfAborted, storeOneUser, writeUsers } from '../pull-common.ts';
import { mirrorIds, readSourceState, writeSourceState } from '../../store/mirror-writer.ts';
import { GROUP_SCHEMA } from '../../domain/scim/schema.ts';
import type { ScimDoc } from '../../domain/scim/resource.ts';
import type { ConnectionCheck, ConnectionTest, DeltaOutcome, PullContext, PullSource, UserLookup } from '../../sync/source.ts';
import type { LdapSourceSettings } from './config.ts';
import { groupAttributes, readKey, userAttributes } from './config.ts';
import { ConnectionPool, LdapConnection, LdapError, classify } from './connection.ts';
import type { LdapEntry } from './map.ts';
import { BINARY_ATTRIBUTES, all, displayEntry, dnKey, first, isBinaryId, mapGroup, mapUser, toEntry } from './map.ts';

const STATE = 'ldap';
/** user DN → id, kept apart from the small state: written only when users come, go or move */
const DN_STATE = 'ldap-dns';
const IN_CHAIN = '1.2.840.113556.1.4.1941';
/** entries changed this close before a change round are read again: server and service clocks may differ */
const TIMESTAMP_MARGIN_MS = 5 * 60_000;

type Marker = { kind: 'usn'; usn: string; server: string; invocationId: string } | { kind: 'timestamp'; since: string } | null;

interface GroupNode {
  dn: string;
  /** groups nested directly in this one (ids of groups read) */
  children?: string[];
  /** members that are neither a user nor a group read (other OUs, filtered out): the in-chain rule asks the server */
  hidden?: true;
}

interface LdapState {
  readKey: string;
  lastFull: string;
  marker: Marker;
  groups: Record<string, GroupNode>;
}

/** What the test user search shows: the entry as read, and what the source makes of it. */
export interface LdapUserSearch {
  found: boolean;
  /** more than one entry matched: the first is shown */
  matches: number;
  entry?: { dn: string; attributes: Record<string, string[]> };
  record?: { id: string; doc: ScimDoc };
  skipped?: string;
  /** the provider groups it is in (nested ones too when flattening), as the mirror would hold them */
  groups: { id: string; name: string; dn: string }[];
}



/** A value inside a filter: RFC 4515 escapes. */
export function escapeValue(v: string): string {
  // eslint-disable-next-line no-control-regex -- NUL must be escaped in filter values
  return v.replace(/[\\*()\u0000]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function generalizedTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Every user reachable from `group` through nested groups (cycles are harmless). */
function flatten(group: string, direct: Map<string, Set<string>>, children: Map<string, Set<string>>): Set<string> {
  const kids = children.get(group);
  if (!kids || kids.size === 0) return direct.get(group) ?? new Set();
  const out = new Set<string>(direct.get(group) ?? []);
  const seen = new Set([group]);
  const queue = [...kids];
  while (queue.length) {
    const g = queue.pop()!;
    if (seen.has(g)) continue;
    seen.add(g);
    for (const u of direct.get(g) ?? []) out.add(u);
    for (const c of children.get(g) ?? []) if (!seen.has(c)) queue.push(c);
  }
  return out;
}

export class LdapSource implements PullSource {
  /** connections kept for on-demand reads (sync on login, the test user search); a run opens its own */
  private readonly onDemand: ConnectionPool;
  private readonly userAttrs: string[];
  private readonly groupAttrs: string[];
  private readonly binary: string[];

  constructor(
    private readonly settings: LdapSourceSettings,
    private readonly password: string,
  ) {
    this.onDemand = new ConnectionPool(() => LdapConnection.open(settings, password));
    this.userAttrs = userAttributes(settings);
    this.groupAttrs = groupAttributes(settings);
    // ldapts decodes values as UTF-8 unless told otherwise, and a GUID's bytes may happen to be valid UTF-8;
    // it compares these names with the server's spelling
    this.binary = [...BINARY_ATTRIBUTES];
    if (isBinaryId(settings.attributes.id)) this.binary.push(settings.attributes.id);
  }

  private get userBase(): string {
    return this.settings.userBaseDn ?? this.settings.baseDn;
  }

  private get groupBase(): string {
    return this.settings.groupBaseDn ?? this.settings.baseDn;
  }

  close(): void {
    this.onDemand.close();
  }

  /** A run's connection, and a pool of more for searches that run side by side; all closed afterwards. */
  private async withConnection<T>(work: (conn: LdapConnection, more: ConnectionPool) => Promise<T>): Promise<T> {
    const conn = await LdapConnection.open(this.settings, this.password);
    const more = new ConnectionPool(() => LdapConnection.open(this.settings, this.password));
    try {
      return await work(conn, more);
    } finally {
      conn.close();
      more.close();
    }
  }

  // ── change markers ─────────────────────────────────────────────────────────────────────────────

  /** Taken before a read: whatever changes while it reads is read again by the next change round. */
  private async marker(conn: LdapConnection): Promise<Marker> {
    const s = this.settings;
    if (s.changeTracking === 'none') return null;
    if (s.changeTracking === 'modifyTimestamp') return { kind: 'timestamp', since: generalizedTime(new Date(Date.now() - TIMESTAMP_MARGIN_MS)) };
    const root = await conn.rootDse(['highestCommittedUSN', 'dsServiceName', 'dnsHostName', 'defaultNamingContext']);
    const usn = root.get('highestcommittedusn')?.[0];
    if (!usn || !/^[0-9]+$/.test(usn)) throw new LdapError('protocol', 'the server has no highestCommittedUSN in its RootDSE: it is not Active Directory; use changeTracking modifyTimestamp');
    const server = root.get('dsservicename')?.[0] ?? root.get('dnshostname')?.[0] ?? '';
    let invocationId = '';
    if (server) {
      // a restored or different domain controller numbers its changes anew: its invocationId tells
      const [ntds] = await conn.search(server, { filter: '(objectClass=*)', scope: 'base', attributes: ['invocationId'], binary: ['invocationId'], unpaged: true }).catch(() => []);
      if (ntds) invocationId = first(toEntry(ntds), 'invocationId') ?? '';
    }
    return { kind: 'usn', usn, server, invocationId };
  }

  private changedFilter(marker: NonNullable<Marker>): string {
    return marker.kind === 'usn' ? `(uSNChanged>=${(BigInt(marker.usn) + 1n).toString()})` : `(modifyTimestamp>=${marker.since})`;
  }

  // ── reading ────────────────────────────────────────────────────────────────────────────────────

  private mapUsers(ctx: PullContext, page: Entry[], onUser?: (id: string, e: LdapEntry) => void): PulledRecord[] {
    const out: PulledRecord[] = [];
    let skipped = 0;
    for (const raw of page) {
      const e = toEntry(raw);
      const m = mapUser(e, this.settings);
      if ('skip' in m) {
        skipped++;
        continue;
      }
      out.push(m);
      onUser?.(m.id, e);
    }
    if (skipped) ctx.count({ skipped });
    return out;
  }

  /** A group entry with its whole member list (range retrieval done). */
  private async groupEntry(conn: LdapConnection, raw: Entry): Promise<LdapEntry> {
    const e = toEntry(raw);
    if (this.settings.membership === 'member') {
      const attr = this.settings.attributes.member;
      const needsMore = Object.keys(raw).some((k) => /;range=/i.test(k));
      if (needsMore) e.values.set(attr.toLowerCase(), (await conn.completeValues(raw, attr)).map(String));
    }
    return e;
  }

  private groupSearchAttributes(conn: LdapConnection): string[] {
    return this.groupAttrs.map((a) => (a === this.settings.attributes.member ? conn.memberRequest(a) : a));
  }



  /** Users in a group by the in-chain rule (AD): nested members at any depth, in one search. */
  private async inChainMembers(conn: LdapConnection, groupDn: string, signal: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    const filter = `(&${this.settings.userFilter}(${this.settings.attributes.memberOf}:${IN_CHAIN}:=${escapeValue(groupDn)}))`;
    for await (const page of conn.pages(this.userBase, { filter, attributes: [this.settings.attributes.id], binary: this.binary })) {
      stopIfAborted(signal);
      for (const raw of page) {
        const id = first(toEntry(raw), this.settings.attributes.id);
        if (id) out.push(id);
      }
    }
    return out;
  }

  private async ids(conn: LdapConnection, base: string, filter: string, signal: AbortSignal): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const page of conn.pages(base, { filter, attributes: [this.settings.attributes.id], binary: this.binary })) {
      stopIfAborted(signal);
      for (const raw of page) {
        const id = first(toEntry(raw), this.settings.attributes.id);
        if (id) out.add(id);
      }
    }
    return out;
  }

  // ── full read ──────────────────────────────────────────────────────────────────────────────────

  async full(ctx: PullContext): Promise<void> {
    await this.withConnection((conn, more) => this.readAll(ctx, conn, more));
  }

  private async readAll(ctx: PullContext, conn: LdapConnection, more: ConnectionPool): Promise<void> {
    const s = this.settings;
    const { signal } = ctx;
    const marker = await this.marker(conn);
    const conflicts: PulledRecord[] = [];
    const userByDn = new Map<string, string>();
    const userGroupDns = new Map<string, string[]>(); // memberOf: user id → group DN keys
    const seenUsers = new Set<string>();

    let done = 0;
    for await (const page of conn.pages(this.userBase, { filter: s.userFilter, attributes: this.userAttrs, binary: this.binary })) {
      stopIfAborted(signal);
      const records = this.mapUsers(ctx, page, (id, e) => {
        userByDn.set(dnKey(e.dn), id);
        if (s.membership === 'memberOf') userGroupDns.set(id, all(e, s.attributes.memberOf).map(dnKey));
      });
      ctx.count({ fetched: page.length });
      await ctx.write((w) => writeUsers(ctx, w, records, conflicts));
      for (const r of records) seenUsers.add(r.id);
      done += page.length;
      ctx.progress({ phase: 'users', done, total: null });
    }

    // Groups, with member DNs as keys until every group is known.
    const groupByDn = new Map<string, string>();
    const groupDns = new Map<string, string>(); // id → DN
    const links = new Map<string, string[]>(); // member: group → member DN keys; memberOf: group → parent DN keys
    done = 0;
    for await (const page of conn.pages(this.groupBase, { filter: s.groupFilter, attributes: this.groupSearchAttributes(conn), binary: this.binary })) {
      stopIfAborted(signal);
      const records: PulledRecord[] = [];
      for (const raw of page) {
        const e = await this.groupEntry(conn, raw);
        const g = mapGroup(e, s);
        if (!g) continue;
        records.push(g);
        groupByDn.set(dnKey(e.dn), g.id);
        groupDns.set(g.id, e.dn);
        links.set(g.id, all(e, s.membership === 'member' ? s.attributes.member : s.attributes.memberOf).map(dnKey));
      }
      ctx.count({ fetched: page.length });
      await ctx.write(async (w) => {
        const r = await w.upsertGroups(records);
        ctx.count({ mirrorCreated: r.created, mirrorUpdated: r.updated });
      });
      done += page.length;
      ctx.progress({ phase: 'groups', done, total: null });
    }

    // Direct memberships: users in groups, groups in groups.
    const direct = new Map<string, Set<string>>();
    const children = new Map<string, Set<string>>();
    const hidden = new Set<string>();
    const put = (m: Map<string, Set<string>>, k: string, v: string) => {
      const set = m.get(k);
      if (set) set.add(v);
      else m.set(k, new Set([v]));
    };
    if (s.membership === 'member') {
      for (const [group, members] of links) {
        for (const dn of members) {
          const user = userByDn.get(dn);
          if (user !== undefined) put(direct, group, user);
          else {
            const inner = groupByDn.get(dn);
            if (inner !== undefined) put(children, group, inner);
            else hidden.add(group);
          }
        }
      }
    } else {
      for (const [user, dns] of userGroupDns) for (const dn of dns) {
        const group = groupByDn.get(dn);
        if (group !== undefined) put(direct, group, user);
      }
      for (const [group, parents] of links) for (const dn of parents) {
        const outer = groupByDn.get(dn);
        if (outer !== undefined) put(children, outer, group);
      }
    }
    links.clear();
    userGroupDns.clear();

    // Members per group, flattened as configured, written a batch of groups per transaction.
    const groupIds = [...groupDns.keys()];
    const batches = new MemberBatches(ctx);
    done = 0;
    await pool(
      groupIds,
      s.concurrency,
      async (group) => {
        let users: Iterable<string>;
        let size: number;
        if (s.nestedGroups === 'direct') {
          const set = direct.get(group) ?? new Set<string>();
          users = set;
          size = set.size;
        } else if (s.nestedMethod === 'inChain' && (children.has(group) || hidden.has(group))) {
          const list = (await more.use((c) => this.inChainMembers(c, groupDns.get(group)!, signal))).filter((u) => seenUsers.has(u));
          users = list;
          size = list.length;
        } else {
          const set = flatten(group, direct, children);
          users = set;
          size = set.size;
        }
        ctx.progress({ phase: 'members', done: ++done, total: groupIds.length });
        await batches.add(group, users, size);
      },
      signal,
    );
    await batches.flush();

    await finishFullRead(ctx, seenUsers, new Set(groupIds), conflicts);

    const nodes: Record<string, GroupNode> = {};
    for (const [id, dn] of groupDns) {
      const node: GroupNode = { dn };
      const kids = children.get(id);
      if (kids?.size) node.children = [...kids];
      if (hidden.has(id)) node.hidden = true;
      nodes[id] = node;
    }
    const state: LdapState = { readKey: readKey(s), lastFull: new Date().toISOString(), marker, groups: nodes };
    await ctx.write(async (w) => {
      await writeSourceState(w.trx, ctx.connectorId, STATE, state);
      await writeSourceState(w.trx, ctx.connectorId, DN_STATE, Object.fromEntries(userByDn));
    });
  }

  // ── change round ───────────────────────────────────────────────────────────────────────────────

  async delta(ctx: PullContext): Promise<DeltaOutcome> {
    const s = this.settings;
    const state = await readSourceState<LdapState>(ctx.db, ctx.connectorId, STATE);
    if (!state || !state.marker || state.readKey !== readKey(s)) return 'full-needed';
    if (Date.now() - Date.parse(state.lastFull) > s.fullSyncHours * 3_600_000) return 'full-needed';
    return this.withConnection((conn, more) => this.readChanges(ctx, conn, more, state, state.marker!));
  }

  private async readChanges(ctx: PullContext, conn: LdapConnection, more: ConnectionPool, state: LdapState, since: NonNullable<Marker>): Promise<DeltaOutcome> {
    const s = this.settings;
    const { signal } = ctx;
    const marker = await this.marker(conn);
    if (since.kind === 'usn' && marker?.kind === 'usn' && (marker.server !== since.server || marker.invocationId !== since.invocationId)) {
      await ctx.log('warn', `the domain controller changed (${since.server} → ${marker.server}) or was restored: its change numbers do not carry over; reading everything`);
      return 'full-needed';
    }
    const changed = this.changedFilter(since);
    // The ids in scope now, listed on a second connection while the changes are read: neither
    // uSNChanged nor modifyTimestamp shows a deletion to an ordinary account (AD keeps its tombstones from
    // it), so what the mirror has and the server no longer lists is gone.
    const idsNow = more.use(async (c) => [await this.ids(c, this.userBase, s.userFilter, signal), await this.ids(c, this.groupBase, s.groupFilter, signal)] as const);
    idsNow.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
    const userByDn = new Map(Object.entries((await readSourceState<Record<string, string>>(ctx.db, ctx.connectorId, DN_STATE)) ?? {}));
    let dnOfUser: Map<string, string> | undefined;
    let dnsChanged = false;
    const mirroredUsers = await mirrorIds(ctx.db, ctx.connectorId, 'mirror_users');
    const mirroredGroups = await mirrorIds(ctx.db, ctx.connectorId, 'mirror_groups');
    const groups: Record<string, GroupNode> = { ...state.groups };
    const conflicts: PulledRecord[] = [];

    // Changed users in scope.
    const changedUsers = new Set<string>();
    const userGroupDns = new Map<string, string[]>();
    /** users new to the mirror: moved into the base or now matching the filter, their groups unchanged */
    const arrived = new Map<string, LdapEntry>();
    for await (const page of conn.pages(this.userBase, { filter: `(&${s.userFilter}${changed})`, attributes: this.userAttrs, binary: this.binary })) {
      stopIfAborted(signal);
      const records = this.mapUsers(ctx, page, (id, e) => {
        const key = dnKey(e.dn);
        if (userByDn.get(key) !== id) {
          // moved or renamed: its old DN no longer names it (the reverse map is built only when needed)
          if (mirroredUsers.has(id)) {
            dnOfUser ??= new Map([...userByDn].map(([dn, user]) => [user, dn]));
            const old = dnOfUser.get(id);
            if (old !== undefined) userByDn.delete(old);
          }
          userByDn.set(key, id);
          dnOfUser?.set(id, key);
          dnsChanged = true;
        }
        if (s.membership === 'memberOf') userGroupDns.set(id, all(e, s.attributes.memberOf).map(dnKey));
        else if (!mirroredUsers.has(id)) arrived.set(id, e);
      });
      ctx.count({ fetched: page.length });
      await ctx.write((w) => writeUsers(ctx, w, records, conflicts));
      for (const r of records) {
        changedUsers.add(r.id);
        mirroredUsers.add(r.id);
      }
      ctx.progress({ phase: 'users', done: changedUsers.size, total: null });
    }

    // Changed groups in scope: their properties now, their members below.
    const affected = new Set<string>();
    for await (const page of conn.pages(this.groupBase, { filter: `(&${s.groupFilter}${changed})`, attributes: [s.attributes.id, s.attributes.groupName, 'description'], binary: this.binary })) {
      stopIfAborted(signal);
      const records: PulledRecord[] = [];
      for (const raw of page) {
        const e = toEntry(raw);
        const g = mapGroup(e, s);
        if (!g) continue;
        records.push(g);
        affected.add(g.id);
        groups[g.id] = { ...(groups[g.id] ?? {}), dn: e.dn };
      }
      ctx.count({ fetched: page.length });
      await ctx.write(async (w) => {
        const r = await w.upsertGroups(records);
        ctx.count({ mirrorCreated: r.created, mirrorUpdated: r.updated });
      });
      for (const r of records) mirroredGroups.add(r.id);
    }

    // Gone: deleted, moved out of the bases, or no longer matching the filters. Never one read in this round:
    // a record created meanwhile may be missing from a list taken before it existed.
    const [users, present] = await idsNow;
    const goneUsers = [...mirroredUsers].filter((id) => !users.has(id) && !changedUsers.has(id));
    const goneGroups = [...mirroredGroups].filter((id) => !present.has(id) && !affected.has(id));
    if (goneUsers.length || goneGroups.length) {
      await ctx.write(async (w) => {
        const n = (await w.deleteUsers(goneUsers)) + (await w.deleteGroups(goneGroups));
        ctx.count({ mirrorDeleted: n });
      });
      const gone = new Set(goneUsers);
      for (const id of goneUsers) mirroredUsers.delete(id);
      for (const [dn, id] of userByDn) if (gone.has(id)) userByDn.delete(dn);
      dnsChanged = true;
      for (const id of goneGroups) {
        mirroredGroups.delete(id);
        delete groups[id];
        affected.delete(id);
      }
    }

    // Groups to read again: the changed ones, groups that held a removed group, and (flattening) every
    // group containing one of them.
    const parents = new Map<string, string[]>();
    for (const [id, node] of Object.entries(groups)) {
      for (const c of node.children ?? []) {
        if (!groups[c]) affected.add(id);
        parents.set(c, [...(parents.get(c) ?? []), id]);
      }
    }
    if (s.nestedGroups === 'flatten') {
      const queue = [...affected];
      while (queue.length) for (const p of parents.get(queue.pop()!) ?? []) if (!affected.has(p)) {
        affected.add(p);
        queue.push(p);
      }
    }
    const groupByDn = new Map<string, string>();
    for (const [id, node] of Object.entries(groups)) groupByDn.set(dnKey(node.dn), id);
    const directCache = new Map<string, Promise<{ users: Set<string>; groups: Set<string>; hidden: boolean }>>();
    const directOf = (id: string) => {
      let p = directCache.get(id);
      if (!p) {
        p = more.use((c) => this.directMembers(c, groups[id]!.dn, userByDn, groupByDn));
        directCache.set(id, p);
      }
      return p;
    };
    let n = 0;
    await pool(
      [...affected].filter((g) => groups[g]),
      s.concurrency,
      async (group) => {
        const d = await directOf(group);
        const node: GroupNode = { dn: groups[group]!.dn };
        if (d.groups.size) node.children = [...d.groups];
        if (d.hidden) node.hidden = true;
        groups[group] = node;
        let users: Set<string>;
        if (s.nestedGroups === 'direct') users = d.users;
        else if (s.nestedMethod === 'inChain' && (d.groups.size || d.hidden)) users = new Set(await more.use((c) => this.inChainMembers(c, node.dn, signal)));
        else {
          users = new Set(d.users);
          const seen = new Set([group]);
          const queue = [...d.groups];
          while (queue.length) {
            const g = queue.pop()!;
            if (seen.has(g) || !groups[g]) continue;
            seen.add(g);
            const inner = await directOf(g);
            for (const u of inner.users) users.add(u);
            queue.push(...inner.groups);
          }
        }
        await ctx.write(async (w) => {
          const r = await w.replaceMembers(
            group,
            [...users].filter((u) => mirroredUsers.has(u)),
          );
          ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
        });
        ctx.progress({ phase: 'members', done: ++n, total: affected.size });
      },
      signal,
    );

    // A user new to the mirror may be in groups that did not change (it moved into the base, or matches
    // the filter now): its groups are looked up from the user's side, which also covers the groups read
    // again above.
    await pool(
      [...arrived],
      s.concurrency,
      async ([id, entry]) => {
        const found = (await more.use((c) => this.groupsOf(c, entry))).map((g) => g.id).filter((g) => mirroredGroups.has(g));
        await ctx.write(async (w) => {
          const r = await w.setUserGroups(id, found);
          ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
        });
      },
      signal,
    );

    // memberOf: a changed user's own list of groups (its groups may not have changed on the server).
    if (s.membership === 'memberOf' && userGroupDns.size) {
      const ancestors = (id: string, out: Set<string>) => {
        for (const p of parents.get(id) ?? []) if (!out.has(p)) {
          out.add(p);
          if (s.nestedGroups === 'flatten') ancestors(p, out);
        }
      };
      await ctx.write(async (w) => {
        for (const [user, dns] of userGroupDns) {
          const set = new Set<string>();
          for (const dn of dns) {
            const g = groupByDn.get(dn);
            if (g === undefined) continue;
            set.add(g);
            if (s.nestedGroups === 'flatten') ancestors(g, set);
          }
          const r = await w.setUserGroups(user, [...set].filter((g) => mirroredGroups.has(g)));
          ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
        }
      });
    }

    await retryConflicts(ctx, conflicts);
    const next: LdapState = { ...state, marker, groups };
    await ctx.write(async (w) => {
      await writeSourceState(w.trx, ctx.connectorId, STATE, next);
      if (dnsChanged) await writeSourceState(w.trx, ctx.connectorId, DN_STATE, Object.fromEntries(userByDn));
    });
    return 'done';
  }

  /** A group's direct members, read from the server: users and groups by id, and whether others are in it. */
  private async directMembers(
    conn: LdapConnection,
    groupDn: string,
    userByDn: Map<string, string>,
    groupByDn: Map<string, string>,
  ): Promise<{ users: Set<string>; groups: Set<string>; hidden: boolean }> {
    const s = this.settings;
    const users = new Set<string>();
    const groups = new Set<string>();
    let hidden = false;
    if (s.membership === 'member') {
      const [raw] = await conn.search(groupDn, { filter: '(objectClass=*)', scope: 'base', attributes: [conn.memberRequest(s.attributes.member)], unpaged: true });
      if (!raw) return { users, groups, hidden };
      for (const value of await conn.completeValues(raw, s.attributes.member)) {
        const key = dnKey(String(value));
        const u = userByDn.get(key);
        if (u !== undefined) users.add(u);
        else {
          const g = groupByDn.get(key);
          if (g !== undefined) groups.add(g);
          else hidden = true;
        }
      }
    } else {
      const filter = `(${s.attributes.memberOf}=${escapeValue(groupDn)})`;
      const signal = new AbortController().signal;
      for (const id of await this.ids(conn, this.userBase, `(&${s.userFilter}${filter})`, signal)) users.add(id);
      const byDn = new Map([...groupByDn].map(([dn, id]) => [id, dn]));
      for (const id of await this.ids(conn, this.groupBase, `(&${s.groupFilter}${filter})`, signal)) if (byDn.has(id)) groups.add(id);
    }
    return { users, groups, hidden };
  }

  // ── one user ───────────────────────────────────────────────────────────────────────────────────

  /** The user entry by username, and the provider groups it is in. Reads only. */
  searchUser(username: string): Promise<LdapUserSearch> {
    return this.lookup(username);
  }

  /** On a kept connection; once more on a new one when the server dropped it (restarted, idle timeout). */
  async lookup(username: string): Promise<LdapUserSearch> {
    try {
      return await this.onDemand.use((c) => this.lookupOn(c, username));
    } catch (e) {
      if (!(e instanceof LdapError) || !['unreachable', 'timeout'].includes(e.kind)) throw e;
      return this.onDemand.use((c) => this.lookupOn(c, username));
    }
  }

  private async lookupOn(c: LdapConnection, username: string): Promise<LdapUserSearch> {
    const s = this.settings;
    const filter = `(&${s.userFilter}(${s.attributes.username}=${escapeValue(username)}))`;
    const entries = await c.search(this.userBase, { filter, attributes: this.userAttrs, binary: this.binary });
    const raw = entries[0];
    if (!raw) return { found: false, matches: 0, groups: [] };
    const e = toEntry(raw);
    const m = mapUser(e, s);
    const out: LdapUserSearch = { found: true, matches: entries.length, entry: displayEntry(raw), groups: [] };
    if ('skip' in m) {
      out.skipped = m.reason;
      return out;
    }
    out.record = m;
    out.groups = await this.groupsOf(c, e);
    return out;
  }

  /** The groups (in the group base and filter) a user entry is in: direct, or at any depth when flattening. */
  private async groupsOf(conn: LdapConnection, user: LdapEntry): Promise<{ id: string; name: string; dn: string }[]> {
    const s = this.settings;
    const found = new Map<string, { id: string; name: string; dn: string }>();
    const inBase = (dn: string) => {
      const base = dnKey(this.groupBase);
      const key = dnKey(dn);
      return key === base || key.endsWith(`,${base}`);
    };
    const take = (raw: Entry) => {
      const g = mapGroup(toEntry(raw), s);
      if (g && !found.has(g.id)) found.set(g.id, { id: g.id, name: String(g.doc.displayName), dn: raw.dn });
      return g !== undefined;
    };
    const attributes = [s.attributes.id, s.attributes.groupName];
    if (s.nestedGroups === 'flatten' && s.nestedMethod === 'inChain') {
      const filter = `(&${s.groupFilter}(${s.attributes.member}:${IN_CHAIN}:=${escapeValue(user.dn)}))`;
      for (const raw of await conn.search(this.groupBase, { filter, attributes, binary: this.binary })) take(raw);
      return [...found.values()];
    }
    // Walk upwards: the groups holding the user, then (flattening) the groups holding those.
    const seen = new Set<string>();
    let frontier: string[] = [user.dn];
    let memberOf: string[] | undefined = s.membership === 'memberOf' ? all(user, s.attributes.memberOf) : undefined;
    for (let depth = 0; frontier.length && depth < 32; depth++) {
      const next: string[] = [];
      if (memberOf) {
        const parentDns = memberOf;
        memberOf = [];
        for (const dn of parentDns) {
          if (seen.has(dnKey(dn)) || !inBase(dn)) continue;
          seen.add(dnKey(dn));
          const [raw] = await conn.search(dn, { filter: s.groupFilter, scope: 'base', attributes: [...attributes, s.attributes.memberOf], binary: this.binary, unpaged: true }).catch(() => []);
          if (raw && take(raw)) {
            next.push(raw.dn);
            memberOf.push(...all(toEntry(raw), s.attributes.memberOf));
          }
        }
      } else {
        for (const dn of frontier) {
          const filter = `(&${s.groupFilter}(${s.attributes.member}=${escapeValue(dn)}))`;
          for (const raw of await conn.search(this.groupBase, { filter, attributes, binary: this.binary })) {
            if (seen.has(dnKey(raw.dn))) continue;
            seen.add(dnKey(raw.dn));
            if (take(raw)) next.push(raw.dn);
          }
        }
      }
      if (s.nestedGroups === 'direct') break;
      frontier = next;
    }
    return [...found.values()];
  }

  async user(ctx: PullContext, username: string): Promise<UserLookup> {
    const found = await this.lookup(username);
    if (found.found) ctx.count({ fetched: 1 });
    if (!found.record) return storeOneUser(ctx, username, found.skipped ? { reason: found.skipped } : {});
    const groups = found.groups.map((g) => ({ id: g.id, doc: { schemas: [GROUP_SCHEMA], displayName: g.name } }));
    return storeOneUser(ctx, username, {
      record: found.record,
      groupIds: groups.map((g) => g.id),
      prepare: async (w) => void (await w.upsertGroups(groups)),
    });
  }

  // ── test connection ────────────────────────────────────────────────────────────────────────────

  async test(): Promise<ConnectionTest> {
    const s = this.settings;
    const checks: ConnectionCheck[] = [];
    let conn: LdapConnection;
    try {
      conn = await LdapConnection.open(s, this.password);
    } catch (e) {
      const err = classify(e, s.url);
      const name = err.kind === 'bind' ? 'bind' : err.kind === 'tls' ? 'tls' : 'connect';
      checks.push({ name, ok: false, message: err.message });
      return { ok: false, checks, missingPermissions: [], failure: err.kind };
    }
    let failure: string | undefined;
    try {
      const how = conn.url.startsWith('ldaps:') ? 'over TLS (ldaps)' : s.startTls ? 'upgraded with StartTLS' : 'without encryption: the bind password crosses the network in clear (use ldaps:// or StartTLS)';
      checks.push({ name: 'connect', ok: true, message: `connected to ${conn.url} ${how}${conn.url === s.url ? '' : ` (failover: ${s.url} did not answer)`}` });
      checks.push({ name: 'bind', ok: true, message: `bound as ${s.bindDn}` });
      const root = await conn.rootDse(['supportedControl', 'supportedCapabilities', 'vendorName', 'vendorVersion', 'namingContexts', 'highestCommittedUSN']).catch(() => new Map<string, string[]>());
      const ad = (root.get('supportedcapabilities') ?? []).includes('1.2.840.113556.1.4.800');
      const vendor = ad ? 'Active Directory' : [root.get('vendorname')?.[0], root.get('vendorversion')?.[0]].filter(Boolean).join(' ') || 'an LDAP server';
      const paging = (root.get('supportedcontrol') ?? []).includes('1.2.840.113556.1.4.319');
      checks.push({ name: 'server', ok: paging, message: `${vendor}; paged results ${paging ? 'supported' : 'NOT advertised: searches over the size limit will fail'}` });
      if (s.preset === 'activeDirectory' && !ad) checks.push({ name: 'preset', ok: false, message: 'the Active Directory preset is chosen, but the server is not Active Directory: choose the OpenLDAP preset' });
      if (s.changeTracking === 'usn' && !root.get('highestcommittedusn')) checks.push({ name: 'change tracking', ok: false, message: 'the server has no highestCommittedUSN: change tracking by uSNChanged will not work' });
      for (const [name, base] of [
        ['base DN', s.baseDn],
        ['user base DN', s.userBaseDn],
        ['group base DN', s.groupBaseDn],
      ] as const) {
        if (!base) continue;
        try {
          await conn.search(base, { filter: '(objectClass=*)', scope: 'base', attributes: ['1.1'], unpaged: true });
          checks.push({ name, ok: true, message: `${base} exists` });
        } catch (e) {
          const err = classify(e, s.url, `the ${name} ${base}`);
          failure ??= err.kind;
          checks.push({ name, ok: false, message: err.kind === 'base-dn' ? `the ${name} ${base} was not found on the server` : err.message });
        }
      }
      if (!failure) {
        const sample = async (name: string, base: string, filter: string, attributes: string[], required: string[]) => {
          try {
            const pages = conn.pages(base, { filter, attributes, binary: this.binary });
            const firstPage = (await pages.next()).value as Entry[] | undefined;
            await pages.return(undefined);
            const list = firstPage ?? [];
            const missing = required.filter((a) => list.length > 0 && !list.some((x) => first(toEntry(x), a) !== undefined));
            const count = list.length >= s.pageSize ? `at least ${list.length}` : String(list.length);
            if (missing.length) checks.push({ name, ok: false, message: `found ${count} entries, but none has ${missing.join(', ')}: check the attribute names (and that the bind account may read them)` });
            else if (list.length) checks.push({ name, ok: true, message: `found ${count} ${name} with ${filter}` });
            // no users is a mistake; no groups may be one (a directory without groups can still sync users)
            else checks.push({ name, ok: name !== 'users', message: `no ${name} match ${filter} under ${base}${name === 'users' ? '' : ': check the group filter and base DN if groups were expected'}` });
          } catch (e) {
            const err = classify(e, s.url, `searching ${name}`);
            failure ??= err.kind;
            checks.push({ name, ok: false, message: err.message });
          }
        };
        await sample('users', this.userBase, s.userFilter, this.userAttrs, [s.attributes.id, s.attributes.username]);
        await sample('groups', this.groupBase, s.groupFilter, [s.attributes.id, s.attributes.groupName], [s.attributes.id, s.attributes.groupName]);
      }
    } finally {
      conn.close();
    }
    return { ok: checks.every((c) => c.ok), checks, missingPermissions: [], ...(failure ? { failure } : {}) };
  }
}

/** The LDAP source's state, for tests and the admin API. */
export async function ldapState(db: Db, connectorId: string): Promise<LdapState | undefined> {
  return readSourceState<LdapState>(db, connectorId, STATE);
}
