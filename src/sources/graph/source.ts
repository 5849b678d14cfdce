// The Microsoft Graph pull source. A full read lists users, groups and each group's members (Graph's
// recommended `$select` + `$top=999` + nextLink), having first asked for delta links "from now"
// (`$deltatoken=latest`), so that the next delta round replays anything that changed while it read.
// A delta round reads /users/delta and /groups/delta (with members) from the stored links. Nested groups
// have no delta in Graph: groups whose direct members changed, and every group that contains them, are
// expanded again. Everything the source knows between runs lives in source_state.

import type { Db } from '../../store/db.ts';
import type { PulledRecord } from '../../store/mirror-writer.ts';
import { MemberBatches, finishFullRead, pool, retryConflicts, stopIfAborted, storeOneUser, writeUsers } from '../pull-common.ts';
import { clearSourceState, mirrorIds, readSourceState, writeSourceState } from '../../store/mirror-writer.ts';
import type { ConnectionCheck, ConnectionTest, DeltaOutcome, PullContext, PullSource, UserLookup } from '../../sync/source.ts';
import type { GraphClientOptions } from './client.ts';
import { GraphClient, GraphError } from './client.ts';
import type { GraphSourceSettings } from './config.ts';
import { GROUP_PROPERTIES, readKey, userSelect } from './config.ts';
import type { GraphObject } from './map.ts';
import { groupIncluded, mapGroup, mapUser, objectType } from './map.ts';

const STATE = 'graph';
const PAGE = 999;
/** ids per `$filter=id in (…)` request (Graph allows 15 values in `in`) */
const IDS_PER_FILTER = 15;

interface GraphState {
  readKey: string;
  usersDelta: string;
  groupsDelta: string;
  lastFull: string;
  /** group → every group nested in it (at any depth), for groups that have any */
  descendants: Record<string, string[]>;
  /** application scope: what was assigned at the last read */
  assigned?: { users: string[]; groups: string[] };
  /** groups scope: the configured groups, resolved to ids */
  groupIds?: string[];
}

export interface GraphSecrets {
  clientSecret?: string;
  privateKey?: string;
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function isResyncError(e: unknown): boolean {
  return e instanceof GraphError && (e.status === 410 || ['syncStateNotFound', 'resyncRequired', 'syncStateInvalid', 'Directory_ExpiredPageToken'].includes(e.code));
}



export class GraphSource implements PullSource {
  readonly client: GraphClient;
  private readonly select: string;
  private readonly groupSelect = GROUP_PROPERTIES.join(',');

  constructor(
    private readonly settings: GraphSourceSettings,
    secrets: GraphSecrets,
    extra: Partial<GraphClientOptions> = {},
  ) {
    const cloud =
      settings.cloud === 'custom'
        ? { authorityHost: settings.authorityHost!, graphRoot: settings.graphUrl!, scope: settings.tokenScope ?? 'https://graph.microsoft.com/.default' }
        : settings.cloud;
    this.client = new GraphClient({
      tenantId: settings.tenantId,
      clientId: settings.clientId,
      ...(settings.credential === 'certificate' && secrets.privateKey && settings.certificate
        ? { clientCertificate: { certificate: settings.certificate, privateKey: secrets.privateKey } }
        : { clientSecret: secrets.clientSecret ?? '' }),
      cloud,
      ...(settings.caCertificate ? { caCertificates: settings.caCertificate } : {}),
      concurrency: settings.concurrency,
      ...extra,
    });
    this.select = userSelect(settings).join(',');
  }

  close(): void {
    this.client.close();
  }

  // ── reading helpers ────────────────────────────────────────────────────────────────────────────

  private async *users(path: string, signal: AbortSignal): AsyncGenerator<GraphObject[]> {
    for await (const page of this.client.pages<GraphObject>(path)) {
      stopIfAborted(signal);
      yield page.value;
    }
  }

  private async all<T>(path: string, signal: AbortSignal, headers: Record<string, string> = {}): Promise<T[]> {
    const out: T[] = [];
    for await (const page of this.client.pages<T>(path, headers)) {
      stopIfAborted(signal);
      out.push(...page.value);
    }
    return out;
  }

  /** A delta link "from now", without reading anything. */
  private async latestDelta(kind: 'users' | 'groups'): Promise<string> {
    const select = kind === 'users' ? this.select : `${this.groupSelect},members`;
    let next: string | undefined = `/${kind}/delta?$select=${select}&$deltatoken=latest`;
    while (next) {
      const body: { '@odata.nextLink'?: string; '@odata.deltaLink'?: string } = await this.client.get(next);
      if (body['@odata.deltaLink']) return body['@odata.deltaLink'];
      next = body['@odata.nextLink'];
    }
    throw new Error(`Graph returned no delta link for ${kind}`);
  }

  /** Members of a group: user ids, and (transitive reads) the groups nested in it. */
  private async members(groupId: string, signal: AbortSignal, userSelect = 'id'): Promise<{ users: GraphObject[]; groups: string[] }> {
    const relation = this.settings.nestedGroups === 'flatten' ? 'transitiveMembers' : 'members';
    const users: GraphObject[] = [];
    const groups: string[] = [];
    for await (const page of this.client.pages<GraphObject>(`/groups/${encodeURIComponent(groupId)}/${relation}?$select=${userSelect}&$top=${PAGE}`)) {
      stopIfAborted(signal);
      for (const m of page.value) {
        const t = objectType(m);
        if (t === 'user') users.push(m);
        else if (t === 'group') groups.push(m.id);
      }
    }
    return { users, groups };
  }

  private async usersByIds(ids: string[], signal: AbortSignal): Promise<GraphObject[]> {
    const parts: string[][] = [];
    for (let i = 0; i < ids.length; i += IDS_PER_FILTER) parts.push(ids.slice(i, i + IDS_PER_FILTER));
    const out: GraphObject[] = [];
    await pool(
      parts,
      this.settings.concurrency,
      async (part) => {
        out.push(...(await this.all<GraphObject>(`/users?$filter=id in (${part.map(quote).join(',')})&$select=${this.select}&$top=${PAGE}`, signal)));
      },
      signal,
    );
    return out;
  }

  private async servicePrincipalId(): Promise<string> {
    const appId = this.settings.applicationId ?? this.settings.clientId;
    const found = await this.all<GraphObject>(`/servicePrincipals?$filter=appId eq ${quote(appId)}&$select=id,appId,displayName`, new AbortController().signal);
    if (!found[0]) throw new Error(`no enterprise application (service principal) with application id ${appId} in this tenant`);
    return found[0].id;
  }

  private async assignments(signal: AbortSignal): Promise<{ users: string[]; groups: string[] }> {
    const sp = await this.servicePrincipalId();
    const rows = await this.all<{ principalId: string; principalType: string }>(`/servicePrincipals/${sp}/appRoleAssignedTo?$top=${PAGE}`, signal);
    const users = new Set<string>();
    const groups = new Set<string>();
    for (const r of rows) {
      if (r.principalType === 'User') users.add(r.principalId);
      else if (r.principalType === 'Group') groups.add(r.principalId);
    }
    return { users: [...users], groups: [...groups] };
  }

  /** The configured groups of the groups scope, by id or display name. */
  private async resolveGroups(signal: AbortSignal): Promise<GraphObject[]> {
    const out = new Map<string, GraphObject>();
    for (const ref of this.settings.groups) {
      stopIfAborted(signal);
      if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref)) {
        try {
          const g = await this.client.get<GraphObject>(`/groups/${ref}?$select=${this.groupSelect}`);
          out.set(g.id, g);
          continue;
        } catch (e) {
          if (!(e instanceof GraphError && e.status === 404)) throw e;
        }
      }
      const found = await this.all<GraphObject>(`/groups?$filter=displayName eq ${quote(ref)}&$select=${this.groupSelect}&$top=${PAGE}`, signal);
      if (found.length === 0) throw new Error(`group '${ref}' was not found in the tenant`);
      if (found.length > 1) throw new Error(`${found.length} groups are named '${ref}'; name it by its object id instead`);
      out.set(found[0]!.id, found[0]!);
    }
    return [...out.values()];
  }

  private async groupsByIds(ids: string[], signal: AbortSignal): Promise<GraphObject[]> {
    const out: GraphObject[] = [];
    for (let i = 0; i < ids.length; i += IDS_PER_FILTER) {
      const part = ids.slice(i, i + IDS_PER_FILTER);
      out.push(...(await this.all<GraphObject>(`/groups?$filter=id in (${part.map(quote).join(',')})&$select=${this.groupSelect}&$top=${PAGE}`, signal)));
    }
    return out;
  }

  // ── mapping into the mirror ────────────────────────────────────────────────────────────────────

  /** Map a page of Graph users; returns the records to write and counts what was left out. */
  private mapUsers(ctx: PullContext, users: GraphObject[]): PulledRecord[] {
    const out: PulledRecord[] = [];
    let skipped = 0;
    for (const u of users) {
      const m = mapUser(u, this.settings);
      if ('doc' in m) out.push({ id: u.id, doc: m.doc });
      else skipped++;
    }
    if (skipped) ctx.count({ skipped });
    return out;
  }



  // ── full read ──────────────────────────────────────────────────────────────────────────────────

  async full(ctx: PullContext): Promise<void> {
    const s = this.settings;
    const { signal } = ctx;
    // Delta links first: whatever changes while this read runs is replayed by the next delta round.
    const [usersDelta, groupsDelta] = await Promise.all([this.latestDelta('users'), this.latestDelta('groups')]);
    const seenUsers = new Set<string>();
    const seenGroups = new Set<string>();
    const conflicts: PulledRecord[] = [];
    const descendants: Record<string, string[]> = {};
    const state: GraphState = { readKey: readKey(s), usersDelta, groupsDelta, lastFull: new Date().toISOString(), descendants };

    /** members of groups, read `concurrency` at a time, written a batch of groups per transaction */
    const storeMembers = async (groupIds: string[], userSelect: string, onUsers?: (users: GraphObject[]) => Promise<void>) => {
      const batches = new MemberBatches(ctx, (u) => seenUsers.has(u));
      let done = 0;
      await pool(
        groupIds,
        s.concurrency,
        async (group) => {
          const m = await this.members(group, signal, userSelect);
          if (onUsers) await onUsers(m.users);
          if (m.groups.length && s.nestedGroups === 'flatten') descendants[group] = [...new Set(m.groups)];
          ctx.progress({ phase: 'members', done: ++done, total: groupIds.length });
          await batches.add(
            group,
            m.users.map((u) => u.id),
            m.users.length,
          );
        },
        signal,
      );
      await batches.flush();
    };

    if (s.scope === 'directory') {
      const total = await this.count('users');
      let done = 0;
      for await (const page of this.users(`/users?$select=${this.select}&$top=${PAGE}`, signal)) {
        const records = this.mapUsers(ctx, page);
        ctx.count({ fetched: page.length });
        await ctx.write((w) => writeUsers(ctx, w, records, conflicts));
        for (const r of records) seenUsers.add(r.id);
        done += page.length;
        ctx.progress({ phase: 'users', done, total });
      }
      const groupTotal = await this.count('groups');
      done = 0;
      for await (const page of this.users(`/groups?$select=${this.groupSelect}&$top=${PAGE}`, signal)) {
        const records: PulledRecord[] = [];
        for (const g of page) {
          const doc = groupIncluded(g, s) ? mapGroup(g) : undefined;
          if (doc) records.push({ id: g.id, doc });
        }
        ctx.count({ fetched: page.length });
        await ctx.write(async (w) => {
          const r = await w.upsertGroups(records);
          ctx.count({ mirrorCreated: r.created, mirrorUpdated: r.updated });
        });
        for (const r of records) seenGroups.add(r.id);
        done += page.length;
        ctx.progress({ phase: 'groups', done, total: groupTotal });
      }
      await storeMembers([...seenGroups], 'id');
    } else {
      // Scoped: the groups first, then their members (read with the user properties), then the users
      // assigned directly (application scope).
      let groups: GraphObject[];
      let directUsers: string[] = [];
      if (s.scope === 'groups') {
        groups = await this.resolveGroups(signal);
        state.groupIds = groups.map((g) => g.id);
      } else {
        const assigned = await this.assignments(signal);
        state.assigned = assigned;
        groups = await this.groupsByIds(assigned.groups, signal);
        directUsers = assigned.users;
      }
      const records = groups.flatMap((g) => {
        const doc = mapGroup(g);
        return doc ? [{ id: g.id, doc }] : [];
      });
      await ctx.write(async (w) => {
        const r = await w.upsertGroups(records);
        ctx.count({ mirrorCreated: r.created, mirrorUpdated: r.updated, fetched: groups.length });
      });
      for (const r of records) seenGroups.add(r.id);
      const pulled = new Set<string>();
      const upsertNew = async (users: GraphObject[]) => {
        const fresh = users.filter((u) => !pulled.has(u.id));
        for (const u of fresh) pulled.add(u.id);
        if (fresh.length === 0) return;
        const mapped = this.mapUsers(ctx, fresh);
        ctx.count({ fetched: fresh.length });
        for (const r of mapped) seenUsers.add(r.id);
        await ctx.write((w) => writeUsers(ctx, w, mapped, conflicts));
      };
      const direct = await this.usersByIds(directUsers, signal);
      await upsertNew(direct);
      await storeMembers([...seenGroups], this.select, upsertNew);
    }

    await finishFullRead(ctx, seenUsers, seenGroups, conflicts);
    await ctx.write(async (w) => writeSourceState(w.trx, ctx.connectorId, STATE, state));
  }

  private async count(kind: 'users' | 'groups'): Promise<number | null> {
    try {
      const n = await this.client.get<number>(`/${kind}/$count`, { ConsistencyLevel: 'eventual' });
      return typeof n === 'number' ? n : null;
    } catch {
      return null; // progress without a total
    }
  }

  // ── delta round ────────────────────────────────────────────────────────────────────────────────

  async delta(ctx: PullContext): Promise<DeltaOutcome> {
    const s = this.settings;
    const { signal } = ctx;
    const state = await readSourceState<GraphState>(ctx.db, ctx.connectorId, STATE);
    if (!state || state.readKey !== readKey(s)) return 'full-needed';
    if (Date.now() - Date.parse(state.lastFull) > s.fullSyncHours * 3_600_000) return 'full-needed';
    const scoped = s.scope !== 'directory';
    const mirroredUsers = await mirrorIds(ctx.db, ctx.connectorId, 'mirror_users');
    const mirroredGroups = await mirrorIds(ctx.db, ctx.connectorId, 'mirror_groups');
    const conflicts: PulledRecord[] = [];

    try {
      // Users: changed and removed.
      let usersDelta = state.usersDelta;
      let done = 0;
      for (let next: string | undefined = state.usersDelta; next; ) {
        const body: { value?: GraphObject[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string } = await this.client.get(next);
        stopIfAborted(signal);
        const page = body.value ?? [];
        ctx.count({ fetched: page.length });
        const removed = page.filter((u) => u['@removed'] !== undefined).map((u) => u.id);
        const changed = page.filter((u) => u['@removed'] === undefined && (!scoped || mirroredUsers.has(u.id)));
        const records = this.mapUsers(ctx, changed);
        const kept = new Set(records.map((r) => r.id));
        const left = changed.filter((u) => !kept.has(u.id)).map((u) => u.id); // now a guest that is left out, say
        await ctx.write(async (w) => {
          const n = await w.deleteUsers([...removed, ...left]);
          await writeUsers(ctx, w, records, conflicts);
          ctx.count({ mirrorDeleted: n });
        });
        for (const id of [...removed, ...left]) mirroredUsers.delete(id);
        for (const r of records) mirroredUsers.add(r.id);
        done += page.length;
        ctx.progress({ phase: 'users', done, total: null });
        next = body['@odata.nextLink'];
        if (body['@odata.deltaLink']) usersDelta = body['@odata.deltaLink'];
      }

      // Groups: properties, removals, and direct membership changes (merged over split slices).
      let groupsDelta = state.groupsDelta;
      const memberChanges = new Map<string, Map<string, boolean>>(); // group → user → present
      const nestedChanged = new Set<string>(); // groups whose nested groups changed
      const removedGroups: string[] = [];
      const groupRecords: PulledRecord[] = [];
      done = 0;
      for (let next: string | undefined = state.groupsDelta; next; ) {
        const body: { value?: GraphObject[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string } = await this.client.get(next);
        stopIfAborted(signal);
        for (const g of body.value ?? []) {
          if (g['@removed'] !== undefined) {
            removedGroups.push(g.id);
            continue;
          }
          if (g.displayName !== undefined) {
            const doc = groupIncluded(g, s) ? mapGroup(g) : undefined;
            if (doc && (!scoped || mirroredGroups.has(g.id))) groupRecords.push({ id: g.id, doc });
            else if (!doc && mirroredGroups.has(g.id)) removedGroups.push(g.id);
          }
          const slice = g['members@delta'];
          if (Array.isArray(slice)) {
            const changes = memberChanges.get(g.id) ?? new Map<string, boolean>();
            for (const m of slice as GraphObject[]) {
              const t = objectType(m);
              if (t === 'group') nestedChanged.add(g.id);
              else if (t === 'user' || t === '') changes.set(m.id, m['@removed'] === undefined);
            }
            memberChanges.set(g.id, changes);
          }
        }
        ctx.count({ fetched: (body.value ?? []).length });
        done += (body.value ?? []).length;
        ctx.progress({ phase: 'groups', done, total: null });
        next = body['@odata.nextLink'];
        if (body['@odata.deltaLink']) groupsDelta = body['@odata.deltaLink'];
      }

      await ctx.write(async (w) => {
        const r = await w.upsertGroups(groupRecords);
        const gone = await w.deleteGroups(removedGroups.filter((g) => mirroredGroups.has(g)));
        ctx.count({ mirrorCreated: r.created, mirrorUpdated: r.updated, mirrorDeleted: gone });
      });
      for (const g of groupRecords) mirroredGroups.add(g.id);
      for (const g of removedGroups) mirroredGroups.delete(g);

      // Which mirrored groups must be read again, and which take their member changes as they are.
      const descendants = { ...state.descendants };
      const touched = new Set<string>([...memberChanges.keys(), ...nestedChanged, ...removedGroups]);
      const expand = new Set<string>();
      if (s.nestedGroups === 'flatten') {
        for (const [outer, inner] of Object.entries(descendants)) if (inner.some((g) => touched.has(g)) && mirroredGroups.has(outer)) expand.add(outer);
        for (const g of nestedChanged) if (mirroredGroups.has(g)) expand.add(g);
        for (const g of memberChanges.keys()) if (descendants[g]?.length && mirroredGroups.has(g)) expand.add(g);
      }
      // Application scope: assignments have no delta; they are read again (they are few).
      let assigned = state.assigned;
      const newDirect: string[] = [];
      if (s.scope === 'application') {
        assigned = await this.assignments(signal);
        const before = new Set(state.assigned?.groups ?? []);
        const now = new Set(assigned.groups);
        const added = assigned.groups.filter((g) => !before.has(g));
        const dropped = [...before].filter((g) => !now.has(g));
        if (added.length) {
          const groups = await this.groupsByIds(added, signal);
          const recs = groups.flatMap((g) => {
            const doc = mapGroup(g);
            return doc ? [{ id: g.id, doc }] : [];
          });
          await ctx.write(async (w) => void (await w.upsertGroups(recs)));
          for (const r of recs) {
            mirroredGroups.add(r.id);
            expand.add(r.id);
          }
        }
        if (dropped.length) {
          await ctx.write(async (w) => ctx.count({ mirrorDeleted: await w.deleteGroups(dropped) }));
          for (const g of dropped) mirroredGroups.delete(g);
        }
        const directBefore = new Set(state.assigned?.users ?? []);
        for (const u of assigned.users) if (!directBefore.has(u) && !mirroredUsers.has(u)) newDirect.push(u);
      }
      if (scoped) for (const g of memberChanges.keys()) if (mirroredGroups.has(g)) expand.add(g);

      // Direct changes (no nested groups inside): applied as Graph reported them.
      await ctx.write(async (w) => {
        for (const [group, changes] of memberChanges) {
          if (expand.has(group) || !mirroredGroups.has(group)) continue;
          const add: string[] = [];
          const remove: string[] = [];
          for (const [user, present] of changes) (present ? (mirroredUsers.has(user) ? add : []) : remove).push(user);
          const r = await w.changeMembers(group, add, remove);
          ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
        }
      });

      // Groups read again: members (with user properties where the scope brings users in with them).
      const userSelect = scoped ? this.select : 'id';
      let n = 0;
      await pool(
        [...expand],
        s.concurrency,
        async (group) => {
          const m = await this.members(group, signal, userSelect);
          if (s.nestedGroups === 'flatten') {
            if (m.groups.length) descendants[group] = [...new Set(m.groups)];
            else delete descendants[group];
          }
          await ctx.write(async (w) => {
            if (scoped) {
              const fresh = this.mapUsers(
                ctx,
                m.users.filter((u) => !mirroredUsers.has(u.id)),
              );
              await writeUsers(ctx, w, fresh, conflicts);
              for (const r of fresh) mirroredUsers.add(r.id);
            }
            const r = await w.replaceMembers(
              group,
              m.users.map((u) => u.id).filter((u) => mirroredUsers.has(u)),
            );
            ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
          });
          ctx.progress({ phase: 'members', done: ++n, total: expand.size });
        },
        signal,
      );
      for (const g of removedGroups) delete descendants[g];

      if (newDirect.length) {
        const users = await this.usersByIds(newDirect, signal);
        const recs = this.mapUsers(ctx, users);
        await ctx.write((w) => writeUsers(ctx, w, recs, conflicts));
      }
      // Scoped: users that no group in scope (nor an assignment) holds any more leave the mirror.
      if (scoped) {
        const direct = new Set(assigned?.users ?? []);
        const orphans = await ctx.db.kysely
          .selectFrom('mirror_users as mu')
          .select('mu.id')
          .where('mu.connector_id', '=', ctx.connectorId)
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('mirror_members as mm').select('mm.member_id').whereRef('mm.connector_id', '=', 'mu.connector_id').whereRef('mm.member_id', '=', 'mu.id'))))
          .execute();
        const gone = orphans.map((o) => o.id).filter((id) => !direct.has(id));
        if (gone.length) await ctx.write(async (w) => ctx.count({ mirrorDeleted: await w.deleteUsers(gone) }));
      }
      await retryConflicts(ctx, conflicts);
      const next: GraphState = { ...state, usersDelta, groupsDelta, descendants, ...(assigned ? { assigned } : {}) };
      await ctx.write(async (w) => writeSourceState(w.trx, ctx.connectorId, STATE, next));
      return 'done';
    } catch (e) {
      if (!isResyncError(e)) throw e;
      await ctx.log('warn', `Graph asks for a full read (${(e as GraphError).status} ${(e as GraphError).code}); reading everything`);
      await ctx.write(async (w) => clearSourceState(w.trx, ctx.connectorId, STATE));
      return 'full-needed';
    }
  }

  // ── one user, on demand ────────────────────────────────────────────────────────────────────────

  async user(ctx: PullContext, username: string): Promise<UserLookup> {
    const s = this.settings;
    const { signal } = ctx;
    const attr = s.usernameAttribute;
    let found: GraphObject | undefined;
    if (attr === 'id') {
      try {
        found = await this.client.get<GraphObject>(`/users/${encodeURIComponent(username)}?$select=${this.select}`);
      } catch (e) {
        if (!(e instanceof GraphError && (e.status === 404 || e.status === 400))) throw e;
      }
    } else {
      found = (await this.all<GraphObject>(`/users?$filter=${attr} eq ${quote(username)}&$select=${this.select}&$top=2`, signal))[0];
      // a guest is synced under its e-mail address
      if (!found && s.guests === 'include' && attr !== 'mail') {
        found = (await this.all<GraphObject>(`/users?$filter=mail eq ${quote(username)}&$select=${this.select}&$top=2`, signal)).find((u) => u.userType === 'Guest');
      }
    }
    if (!found) return storeOneUser(ctx, username, {});
    const mapped = mapUser(found, s);
    ctx.count({ fetched: 1 });
    const drop = (reason?: string) => storeOneUser(ctx, username, { id: found.id, ...(reason ? { reason } : {}) });
    if (!('doc' in mapped)) return drop(mapped.reason);

    const relation = s.nestedGroups === 'flatten' ? 'transitiveMemberOf' : 'memberOf';
    const groups = (await this.all<GraphObject>(`/users/${found.id}/${relation}/microsoft.graph.group?$select=${this.groupSelect}&$top=${PAGE}`, signal)).filter((g) => groupIncluded(g, s));
    let inScope = true;
    let scopeGroups = groups;
    if (s.scope === 'groups') {
      const state = await readSourceState<GraphState>(ctx.db, ctx.connectorId, STATE);
      const wanted = new Set(state?.groupIds ?? (await this.resolveGroups(signal)).map((g) => g.id));
      scopeGroups = groups.filter((g) => wanted.has(g.id));
      inScope = scopeGroups.length > 0;
    } else if (s.scope === 'application') {
      const assigned = await this.assignments(signal);
      const wanted = new Set(assigned.groups);
      // Entra does not cascade an assignment to nested groups: a direct member of an assigned group
      const direct = s.nestedGroups === 'flatten' ? groups : await this.all<GraphObject>(`/users/${found.id}/memberOf/microsoft.graph.group?$select=id&$top=${PAGE}`, signal);
      scopeGroups = groups.filter((g) => wanted.has(g.id));
      inScope = assigned.users.includes(found.id) || direct.some((g) => wanted.has(g.id));
    }
    if (!inScope) return drop(s.scope === 'groups' ? 'not a member of the configured groups' : 'not assigned to the application');
    // the user's groups: created in the mirror when the scope takes them (their other members come with the next run)
    const records = scopeGroups.flatMap((g) => {
      const doc = mapGroup(g);
      return doc ? [{ id: g.id, doc }] : [];
    });
    return storeOneUser(ctx, username, {
      record: { id: found.id, doc: mapped.doc },
      groupIds: records.map((g) => g.id),
      prepare: async (w) => {
        const known = await w.trx.selectFrom('mirror_groups').select('id').where('connector_id', '=', ctx.connectorId).where('id', 'in', records.length ? records.map((r) => r.id) : ['']).execute();
        const knownIds = new Set(known.map((k) => k.id));
        await w.upsertGroups(records.filter((r) => knownIds.has(r.id) || s.scope === 'directory'));
      },
    });
  }

  // ── test connection ────────────────────────────────────────────────────────────────────────────

  async test(): Promise<ConnectionTest> {
    const s = this.settings;
    const checks: ConnectionCheck[] = [];
    const missing = new Set<string>();
    try {
      await this.client.token(true);
      checks.push({ name: 'token', ok: true, message: `signed in to tenant ${s.tenantId} as application ${s.clientId}` });
    } catch (e) {
      const message = e instanceof GraphError ? e.message.replace(/^Graph 401 /, '') : String(e);
      checks.push({ name: 'token', ok: false, message: `the token service refused the credentials: ${message}` });
      return { ok: false, checks, missingPermissions: [] };
    }
    const roles = await this.client.grantedRoles().catch(() => undefined);
    if (roles) checks.push({ name: 'permissions', ok: true, message: roles.length ? `granted: ${roles.join(', ')}` : 'the token carries no application permissions' });
    const probe = async (name: string, path: string, permission: string, headers: Record<string, string> = {}) => {
      try {
        await this.client.get(path, headers);
        checks.push({ name, ok: true, message: `read ${path.split('?')[0]}` });
        return true;
      } catch (e) {
        if (e instanceof GraphError && e.status === 403) {
          missing.add(permission);
          checks.push({ name, ok: false, message: `permission missing: ${permission} (application permission, with admin consent)` });
        } else checks.push({ name, ok: false, message: e instanceof Error ? e.message : String(e) });
        return false;
      }
    };
    await probe('users', '/users?$top=1&$select=id', 'User.Read.All');
    await probe('users delta', `/users/delta?$select=id&$deltatoken=latest`, 'User.Read.All');
    await probe('groups', '/groups?$top=1&$select=id', 'Group.Read.All');
    await probe('group members', `/groups/delta?$select=id,members&$deltatoken=latest`, 'Group.Read.All');
    if (s.scope === 'application') {
      const appId = s.applicationId ?? s.clientId;
      if (await probe('enterprise application', `/servicePrincipals?$filter=appId eq ${quote(appId)}&$select=id`, 'Application.Read.All')) {
        try {
          await this.servicePrincipalId();
        } catch (e) {
          checks.push({ name: 'enterprise application', ok: false, message: (e as Error).message });
        }
      }
    }
    if (s.scope === 'groups' && !missing.has('Group.Read.All')) {
      try {
        const groups = await this.resolveGroups(new AbortController().signal);
        checks.push({ name: 'groups in scope', ok: true, message: `found ${groups.map((g) => `'${String(g.displayName)}'`).join(', ')}` });
      } catch (e) {
        checks.push({ name: 'groups in scope', ok: false, message: (e as Error).message });
      }
    }
    return { ok: checks.every((c) => c.ok), checks, missingPermissions: [...missing] };
  }
}

/** The Graph source's state, for tests and the admin API. */
export async function graphState(db: Db, connectorId: string): Promise<GraphState | undefined> {
  return readSourceState<GraphState>(db, connectorId, STATE);
}
