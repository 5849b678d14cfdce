// Delivery: the change feed becomes work per user and per group (`ingest`), and each piece of work brings
// that one user (its account, activity and memberships) or group up to date in the application, as the
// directory has it now (`round`). Working from the current state rather than replaying each change makes
// every step idempotent: a change delivered twice, or after a crash half-way, converges all the same.
//
// Order: a user's account and memberships are one piece of work, done in sequence; groups are done before
// users in a round. Different users go concurrently, up to the target's concurrency. A piece of work that
// fails is tried again with back-off and, after `maxAttempts` (or at once for a licence or validity
// problem), parked: visible, retryable, and in nobody else's way. When the whole application fails (auth,
// 429 after retries, 5xx, timeouts), the round stops, nothing is counted against the work, and the target
// waits with back-off.

import pLimit from 'p-limit';
import { audit } from '../store/connectors.ts';
import type { LedgerRow, TargetEvent, TargetStore, WorkRow } from '../store/targets.ts';
import { membershipLocalId } from '../store/targets.ts';
import type { DirectoryGroupView } from './scope.ts';
import { groupInScope, kindName, userOutOfScope, userProblem, wantedUser } from './scope.ts';
import type { TargetSettings } from './settings.ts';
import type { AppGroup, AppUser, TargetApp, TargetKind, WantedUser } from './types.ts';
import { TargetError } from './types.ts';

/** A problem with one user or group that trying again will not fix: parked at once. */
export class ParkError extends Error {
  constructor(
    readonly code: 'invalid' | 'not-owned' | 'unsupported' | 'licence',
    message: string,
  ) {
    super(message);
    this.name = 'ParkError';
  }
}

export interface DeliveryTarget {
  id: string;
  name: string;
  kind: TargetKind;
  settings: TargetSettings;
}

export interface RoundReport {
  taken: number;
  done: number;
  retried: number;
  parked: { key: string; code: string; error: string }[];
  /** the application as a whole failed; the work not done stays as it was */
  appError?: TargetError;
}

const PERMANENT_APP_CODES = new Set(['licence', 'invalid', 'unsupported', 'exists']);

/** Back-off of one piece of work after `attempts` failed tries: 30 s, 2 min, 8 min, … up to 2 h. */
export function workRetryDelayMs(attempts: number): number {
  return Math.min(30_000 * 4 ** Math.max(0, attempts - 1), 2 * 60 * 60_000);
}

function groupIdOf(membershipLocalIdValue: string): string {
  return membershipLocalIdValue.slice(membershipLocalIdValue.indexOf(':') + 1);
}

export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function sameEmail(a: string | null, b: string | null): boolean {
  return (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
}

export function userDrift(app: Pick<AppUser, 'name' | 'email' | 'displayName'>, wanted: Pick<WantedUser, 'name' | 'email' | 'displayName'>): string[] {
  const out: string[] = [];
  // Atlassian's usernames and group names are case-insensitive (Confluence even lowercases them): a change
  // of case alone is no rename
  if (!sameName(app.name, wanted.name)) out.push('username');
  if (!sameEmail(app.email, wanted.email)) out.push('email');
  if (app.displayName !== wanted.displayName) out.push('displayName');
  return out;
}

function userFromLedger(l: LedgerRow): AppUser {
  const st = l.state as { email?: string | null; displayName?: string; active?: boolean };
  return { name: l.remoteName, email: st.email ?? null, displayName: st.displayName ?? l.remoteName, active: st.active !== false, ...(l.remoteId ? { id: l.remoteId } : {}) };
}

function userLedger(localId: string, u: AppUser, origin: 'created' | 'adopted'): LedgerRow {
  return { kind: 'user', localId, remoteName: u.name, remoteId: u.id ?? null, state: { email: u.email, displayName: u.displayName, active: u.active }, origin, pending: false };
}

/**
 * Turn the change feed after `cursor` into work for a target; returns the rows read and the new cursor.
 * Sends nothing: a paused target takes its changes in too.
 */
export async function ingestFeed(store: TargetStore, target: DeliveryTarget, cursor: number, limit = 5000): Promise<{ rows: number; cursor: number }> {
  const rows = await store.feedAfter(cursor, limit);
  if (!rows.length) return { rows: 0, cursor };
  const chosen = target.settings.connectors;
  const keys = new Map<string, number>();
  for (const r of rows) {
    // another connector's users, groups and memberships never reach this target
    if (chosen !== 'all' && r.connectorId !== null && !chosen.includes(r.connectorId)) continue;
    let key: string;
    if (r.entity === 'group') key = `g:${r.entityId}`;
    else if (r.entity === 'membership') key = `u:${r.entityId.slice(r.entityId.indexOf(':') + 1)}`;
    else key = `u:${r.entityId}`;
    keys.set(key, r.seq);
  }
  const to = rows[rows.length - 1]!.seq;
  const moved = await store.enqueueFromFeed(target.id, cursor, to, keys);
  return { rows: moved ? rows.length : 0, cursor: moved ? to : cursor };
}

export class Delivery {
  /** ledger groups read or created in this round, by directory group id */
  private groups = new Map<string, Promise<AppGroup>>();
  /** what this round did in the application, written at its end */
  private events: TargetEvent[] = [];
  /** the name a piece of work is about, for the event of its parking */
  private subjects = new Map<string, string>();
  private readonly appName: string;

  constructor(
    private readonly store: TargetStore,
    private readonly target: DeliveryTarget,
    private readonly app: TargetApp,
  ) {
    this.appName = kindName(target.kind);
  }

  private get s(): TargetSettings {
    return this.target.settings;
  }

  private event(action: string, subject: string, detail = ''): void {
    this.events.push({ at: new Date().toISOString(), action, subject, detail });
  }

  // ------------------------------------------------------------------------------------------- round

  /** Do the due work, up to `limit` pieces. */
  async round(limit: number, at = new Date(), stop: () => boolean = () => false): Promise<RoundReport> {
    this.groups = new Map();
    this.events = [];
    this.subjects = new Map();
    const due = await this.store.dueWork(this.target.id, at.toISOString(), limit);
    const report: RoundReport = { taken: due.length, done: 0, retried: 0, parked: [] };
    if (!due.length) return report;
    const limitRun = pLimit(this.s.concurrency);
    let appError: TargetError | undefined;
    const done: WorkRow[] = [];
    const failed: { work: WorkRow; code: string; error: string; park: boolean; nextAt: string }[] = [];

    const run = async (w: WorkRow): Promise<void> => {
      // work not started stays as it is: due again in the next round (here or on another instance)
      if (appError || stop()) return;
      try {
        const id = w.key.slice(2);
        if (w.key.startsWith('g:')) await this.deliverGroup(id);
        else await this.deliverUser(id);
        done.push(w);
      } catch (e) {
        if (e instanceof TargetError && e.appWide) {
          appError ??= e;
          return;
        }
        const attempts = w.attempts + 1;
        let code = 'failed';
        let park = attempts >= this.s.maxAttempts;
        if (e instanceof ParkError) {
          code = e.code;
          park = true;
        } else if (e instanceof TargetError) {
          code = e.code;
          if (PERMANENT_APP_CODES.has(e.code)) park = true;
        }
        const message = e instanceof Error ? e.message : String(e);
        failed.push({ work: w, code, error: message, park, nextAt: new Date(at.getTime() + workRetryDelayMs(attempts)).toISOString() });
      }
    };
    // groups first (a user's memberships need them), then users
    const groups = due.filter((w) => w.key.startsWith('g:'));
    const users = due.filter((w) => !w.key.startsWith('g:'));
    await Promise.all(groups.map((w) => limitRun(() => run(w))));
    await Promise.all(users.map((w) => limitRun(() => run(w))));

    // Refused for every one of them (403): the credentials lost their admin permission, not one user's
    // fault. The application as a whole is the problem: nothing is counted, the target waits.
    const forbidden = failed.filter((f) => f.code === 'forbidden');
    if (!appError && done.length === 0 && failed.length >= 2 && forbidden.length === failed.length) {
      appError = new TargetError('forbidden', `${this.appName} refused every change with 403: ${forbidden[0]!.error}`, 403);
      failed.length = 0;
    }
    for (const f of failed) if (f.park) this.event('parked', this.subjects.get(f.work.key) ?? f.work.key, `${f.code}: ${f.error}`);
    await this.store.addEvents(this.target.id, this.events);
    await this.store.finishWork(this.target.id, done);
    await this.store.failWork(this.target.id, failed);
    report.done = done.length;
    report.retried = failed.filter((f) => !f.park).length;
    report.parked = failed.filter((f) => f.park).map((f) => ({ key: f.work.key, code: f.code, error: f.error }));
    if (appError) report.appError = appError;
    return report;
  }

  // -------------------------------------------------------------------------------------------- users

  /** Bring one user (account, activity, memberships) up to date, or apply the cleanup policy. */
  async deliverUser(userId: string): Promise<void> {
    const tid = this.target.id;
    const dir = await this.store.directoryUser(userId);
    const dirGroups = dir ? await this.store.directoryGroupsOfUser(userId) : [];
    const groupsIn = dirGroups.filter((g) => groupInScope(this.s, g));
    const outOfScope = userOutOfScope(this.s, dir, groupsIn.length);
    const ledgerUser = await this.store.ledgerGet(tid, 'user', userId);
    const ledgerMembers = await this.store.ledgerMembershipsOfUser(tid, userId);
    this.subjects.set(`u:${userId}`, ledgerUser?.remoteName ?? dir?.username ?? userId);
    if (outOfScope || !dir) {
      if (ledgerUser) await this.cleanup(userId, ledgerUser, ledgerMembers);
      return;
    }
    const wanted = wantedUser(dir);
    const problem = userProblem(this.target.kind, this.s, wanted);
    if (problem) throw new ParkError('invalid', problem);

    let appUser: AppUser;
    let origin: 'created' | 'adopted' = ledgerUser?.origin ?? 'created';
    if (!ledgerUser || ledgerUser.pending) {
      // an inactive user who was never delivered needs no account
      if (!wanted.active && !ledgerUser) return;
      appUser = await this.createUser(userId, wanted, ledgerUser);
      origin = 'created';
    } else appUser = userFromLedger(ledgerUser);

    const drift = userDrift(appUser, wanted);
    if (drift.length) {
      if (drift.includes('username') && this.target.kind === 'confluence') {
        throw new ParkError('unsupported', `Confluence has no way to rename '${appUser.name}' to '${wanted.name}' over its REST API; rename the user in Confluence's user management, then retry`);
      }
      const updated = await this.app.updateUser(appUser, wanted);
      if (drift.includes('username')) this.event('renamed', wanted.name, `from ${appUser.name}`);
      const fields = drift.filter((f) => f !== 'username');
      if (fields.length) this.event('updated', wanted.name, fields.join(', '));
      appUser = { ...appUser, ...updated, active: appUser.active };
      await this.store.ledgerPut(tid, userLedger(userId, appUser, origin));
    }

    const bitbucketInactive = this.target.kind === 'bitbucket' && !wanted.active;
    if (bitbucketInactive && this.s.bitbucketInactive === 'delete') {
      await this.deleteUser(userId, appUser, ledgerMembers);
      return;
    }
    if (this.target.kind !== 'bitbucket' && appUser.active !== wanted.active) {
      if (!wanted.active) await this.handOverLeads(appUser);
      await this.app.setActive(appUser, wanted.active);
      this.event(wanted.active ? 'activated' : 'deactivated', appUser.name);
      appUser = { ...appUser, active: wanted.active };
      await this.store.ledgerPut(tid, userLedger(userId, appUser, origin));
    }
    await this.syncMemberships(userId, appUser, bitbucketInactive ? [] : groupsIn, ledgerMembers, bitbucketInactive ? this.s.licenceGroups : []);
  }

  private async createUser(userId: string, wanted: WantedUser, pendingRow: LedgerRow | undefined): Promise<AppUser> {
    const tid = this.target.id;
    // the intent goes first: if the answer is lost, the next try knows an existing user is its own
    if (!pendingRow) await this.store.ledgerPut(tid, { kind: 'user', localId: userId, remoteName: wanted.name, remoteId: null, state: {}, origin: 'created', pending: true });
    try {
      const created = await this.app.createUser(wanted);
      await this.store.ledgerPut(tid, userLedger(userId, created, 'created'));
      this.event('created', created.name, [created.email, created.displayName].filter(Boolean).join(', '));
      return created;
    } catch (e) {
      if (e instanceof TargetError && e.code === 'exists') {
        if (pendingRow) {
          const found = await this.app.getUser(pendingRow.remoteName);
          if (found) {
            await this.store.ledgerPut(tid, userLedger(userId, found, 'created'));
            this.event('created', found.name, 'an earlier try had created it; its answer was lost');
            return found;
          }
        }
        await this.store.ledgerDelete(tid, 'user', [userId]);
        throw new ParkError(
          'not-owned',
          `a user named '${wanted.name}' already exists in ${this.appName} and usersync did not create it; run a full comparison and adopt it, or rename one of them`,
        );
      }
      // a refusal means nothing was created; an outage or timeout may have created it, so the intent stays
      if (e instanceof TargetError && !e.appWide) await this.store.ledgerDelete(tid, 'user', [userId]);
      if (e instanceof TargetError && e.code === 'licence') throw new ParkError('licence', `${this.appName} has no licence seat left for '${wanted.name}': ${e.message}`);
      throw e;
    }
  }

  private async syncMemberships(userId: string, appUser: AppUser, wantedGroups: DirectoryGroupView[], ledgerMembers: LedgerRow[], alsoRemove: string[]): Promise<void> {
    const tid = this.target.id;
    const have = new Map(ledgerMembers.map((m) => [groupIdOf(m.localId), m]));
    const wantedIds = new Set(wantedGroups.map((g) => g.id));
    const adds: { group: DirectoryGroupView; app: AppGroup }[] = [];
    const removes: LedgerRow[] = [];
    for (const g of wantedGroups) {
      const appGroup = await this.ensureGroup(g);
      const m = have.get(g.id);
      if (!m) adds.push({ group: g, app: appGroup });
      else if (m.remoteName !== appGroup.name) {
        // the group was renamed since this membership was made: add to the new name, drop the old
        adds.push({ group: g, app: appGroup });
        removes.push(m);
      }
    }
    for (const [groupId, m] of have) if (!wantedIds.has(groupId)) removes.push(m);
    if (adds.length) {
      await this.app.addMembers(
        appUser,
        adds.map((a) => a.app),
      );
      this.event('groups-added', appUser.name, adds.map((a) => a.app.name).join(', '));
      // one write for all of them (a renamed group's row is replaced)
      const rows: LedgerRow[] = adds.map((a) => ({ kind: 'membership', localId: membershipLocalId(userId, a.group.id), remoteName: a.app.name, remoteId: a.app.id ?? null, state: {}, origin: 'created', pending: false }));
      await this.store.db.transaction(async (trx) => {
        await this.store.ledgerDelete(
          tid,
          'membership',
          rows.map((r) => r.localId),
          trx,
        );
        await this.store.ledgerPutMany(trx, tid, rows);
      });
    }
    const removeGroups: AppGroup[] = removes.filter((r) => !adds.some((a) => a.app.name === r.remoteName)).map((r) => ({ name: r.remoteName, ...(r.remoteId ? { id: r.remoteId } : {}) }));
    for (const name of alsoRemove) if (!removeGroups.some((g) => g.name.toLowerCase() === name.toLowerCase())) removeGroups.push({ name });
    if (removeGroups.length) {
      await this.app.removeMembers(appUser, removeGroups);
      this.event('groups-removed', appUser.name, removeGroups.map((g) => g.name).join(', '));
    }
    const gone = removes.filter((r) => !adds.some((a) => membershipLocalId(userId, a.group.id) === r.localId));
    if (gone.length) {
      await this.store.ledgerDelete(
        tid,
        'membership',
        gone.map((r) => r.localId),
      );
    }
  }

  /** What happens to a delivered user who left the scope or the directory. */
  private async cleanup(userId: string, ledgerUser: LedgerRow, ledgerMembers: LedgerRow[]): Promise<void> {
    const tid = this.target.id;
    if (ledgerUser.pending) {
      // a create whose answer was lost: whether it happened decides what there is to clean up
      const found = await this.app.getUser(ledgerUser.remoteName);
      if (!found) {
        await this.store.ledgerDelete(tid, 'user', [userId]);
        return;
      }
      ledgerUser = userLedger(userId, found, 'created');
      await this.store.ledgerPut(tid, ledgerUser);
    }
    const appUser = userFromLedger(ledgerUser);
    let policy = this.s.cleanup;
    if (this.target.kind === 'bitbucket' && policy === 'deactivate') policy = this.s.bitbucketInactive;
    switch (policy) {
      case 'none':
        return;
      case 'remove-groups':
        await this.syncMemberships(userId, appUser, [], ledgerMembers, this.target.kind === 'bitbucket' ? this.s.licenceGroups : []);
        return;
      case 'deactivate':
        if (appUser.active) {
          await this.handOverLeads(appUser);
          await this.app.setActive(appUser, false);
          this.event('deactivated', appUser.name, 'left the target');
          await this.store.ledgerPut(tid, userLedger(userId, { ...appUser, active: false }, ledgerUser.origin));
        }
        return;
      case 'delete':
        await this.deleteUser(userId, appUser, ledgerMembers);
        return;
    }
  }

  private async deleteUser(userId: string, appUser: AppUser, ledgerMembers: LedgerRow[]): Promise<void> {
    await this.handOverLeads(appUser);
    try {
      await this.app.deleteUser(appUser);
    } catch (e) {
      if (!(e instanceof TargetError && e.code === 'not-found')) throw e;
    }
    this.event('deleted', appUser.name);
    await this.store.db.transaction(async (trx) => {
      await this.store.ledgerDelete(
        this.target.id,
        'membership',
        ledgerMembers.map((m) => m.localId),
        trx,
      );
      await this.store.ledgerDelete(this.target.id, 'user', [userId], trx);
    });
  }

  /** Jira: projects and components the user leads go to the default leads first; what moved is audited. */
  private async handOverLeads(appUser: AppUser): Promise<void> {
    if (!this.app.handOverLeads) return;
    const moved = await this.app.handOverLeads(appUser);
    if (moved.length) {
      await audit(this.store.db.kysely, `target:${this.target.id}`, 'target.lead-handover', appUser.name, { handedOver: moved });
      this.event('leads-handed-over', appUser.name, moved.join(' '));
    }
  }

  // ------------------------------------------------------------------------------------------- groups

  /** The application's group for a directory group: from the ledger, or created (or adopted) now. */
  private ensureGroup(g: DirectoryGroupView): Promise<AppGroup> {
    let p = this.groups.get(g.id);
    if (!p) {
      p = this.ensureGroupNow(g);
      this.groups.set(g.id, p);
      // a failure is not remembered: the next user tries again
      p.catch(() => this.groups.delete(g.id));
    }
    return p;
  }

  private async ensureGroupNow(g: DirectoryGroupView): Promise<AppGroup> {
    const tid = this.target.id;
    const l = await this.store.ledgerGet(tid, 'group', g.id);
    if (l && !l.pending) return { name: l.remoteName, ...(l.remoteId ? { id: l.remoteId } : {}) };
    const created = await this.createGroup(g.name, g.id, l);
    return created;
  }

  private async createGroup(name: string, groupId: string, pendingRow: LedgerRow | undefined): Promise<AppGroup> {
    const tid = this.target.id;
    if (!pendingRow) await this.store.ledgerPut(tid, { kind: 'group', localId: groupId, remoteName: name, remoteId: null, state: {}, origin: 'created', pending: true });
    try {
      const created = await this.app.createGroup(name);
      await this.store.ledgerPut(tid, { kind: 'group', localId: groupId, remoteName: created.name, remoteId: created.id ?? null, state: {}, origin: 'created', pending: false });
      this.event('group-created', created.name);
      return created;
    } catch (e) {
      if (e instanceof TargetError && e.code === 'exists') {
        if (pendingRow || this.s.adoptExistingGroups) {
          const origin = pendingRow?.remoteName === name ? 'created' : 'adopted';
          await this.store.ledgerPut(tid, { kind: 'group', localId: groupId, remoteName: name, remoteId: null, state: {}, origin, pending: false });
          if (origin === 'adopted') this.event('group-adopted', name, 'it existed already');
          return { name };
        }
        await this.store.ledgerDelete(tid, 'group', [groupId]);
        throw new ParkError('not-owned', `a group named '${name}' already exists in ${this.appName} and this target does not adopt existing groups`);
      }
      if (e instanceof TargetError && !e.appWide) await this.store.ledgerDelete(tid, 'group', [groupId]);
      throw e;
    }
  }

  /** Bring one group up to date: created, renamed (there is no rename: a new group, the members moved), or deleted. */
  async deliverGroup(groupId: string): Promise<void> {
    const tid = this.target.id;
    const g = await this.store.directoryGroup(groupId);
    const l = await this.store.ledgerGet(tid, 'group', groupId);
    this.subjects.set(`g:${groupId}`, l?.remoteName ?? g?.name ?? groupId);
    if (g && groupInScope(this.s, g)) {
      if (!l || l.pending) {
        await this.ensureGroup(g);
        // a group that came into the scope by a rename brings no membership changes with it: its members
        // are looked at again (for a new group they are queued already; queuing twice costs nothing)
        await this.queueUsers(await this.store.directoryMemberIds(groupId));
        return;
      }
      if (!sameName(l.remoteName, g.name)) await this.renameGroup(g, l);
      return;
    }
    if (!g && l) {
      if (!l.pending && l.origin === 'created') {
        try {
          await this.app.deleteGroup({ name: l.remoteName, ...(l.remoteId ? { id: l.remoteId } : {}) });
        } catch (e) {
          if (!(e instanceof TargetError && e.code === 'not-found')) throw e;
        }
        this.event('group-deleted', l.remoteName);
      }
      const members = await this.store.ledgerMembershipsOfGroup(tid, groupId);
      await this.store.db.transaction(async (trx) => {
        await this.store.ledgerDelete(
          tid,
          'membership',
          members.map((m) => m.localId),
          trx,
        );
        await this.store.ledgerDelete(tid, 'group', [groupId], trx);
      });
    }
    // A group that left the scope stays; the users' work removes the memberships usersync made in it
    // (a rename out of the scope brings no membership changes: those users are queued here).
    if (g && l) await this.queueUsers((await this.store.ledgerMembershipsOfGroup(tid, groupId)).map((m) => m.localId.slice(0, m.localId.indexOf(':'))));
  }

  private async queueUsers(userIds: string[]): Promise<void> {
    if (!userIds.length) return;
    await this.store.db.transaction((trx) =>
      this.store.upsertWork(
        trx,
        this.target.id,
        userIds.map((id) => ({ key: `u:${id}`, seq: 0 })),
      ),
    );
  }

  private async renameGroup(g: DirectoryGroupView, old: LedgerRow): Promise<void> {
    const tid = this.target.id;
    let fresh: AppGroup;
    let origin: 'created' | 'adopted' = 'created';
    try {
      fresh = await this.app.createGroup(g.name);
    } catch (e) {
      if (!(e instanceof TargetError && e.code === 'exists')) throw e;
      if (!this.s.adoptExistingGroups) throw new ParkError('not-owned', `cannot rename '${old.remoteName}' to '${g.name}': a group named '${g.name}' already exists in ${this.appName}`);
      fresh = { name: g.name };
      origin = 'adopted';
    }
    const oldGroup: AppGroup = { name: old.remoteName, ...(old.remoteId ? { id: old.remoteId } : {}) };
    const members = await this.store.ledgerMembershipsOfGroup(tid, g.id);
    const users = new Map((await this.store.ledgerMany(tid, 'user', members.map((m) => m.localId.slice(0, m.localId.indexOf(':'))))).map((u) => [u.localId, u]));
    for (const m of members) {
      const u = users.get(m.localId.slice(0, m.localId.indexOf(':')));
      if (!u || u.pending) continue;
      await this.app.addMembers(userFromLedger(u), [fresh]);
      if (old.origin !== 'created') await this.app.removeMembers(userFromLedger(u), [oldGroup]);
      await this.store.ledgerPut(tid, { ...m, remoteName: fresh.name, remoteId: fresh.id ?? null });
    }
    if (old.origin === 'created') {
      try {
        await this.app.deleteGroup(oldGroup);
      } catch (e) {
        if (!(e instanceof TargetError && e.code === 'not-found')) throw e;
      }
    }
    await this.store.ledgerPut(tid, { kind: 'group', localId: g.id, remoteName: fresh.name, remoteId: fresh.id ?? null, state: {}, origin, pending: false });
    this.event('group-renamed', fresh.name, `from ${old.remoteName}, ${members.length} member${members.length === 1 ? '' : 's'} moved`);
  }
}
