// The reconciler: takes dirty marks in batches and applies the connector's rules to the mirror (pass.ts),
// writing directory changes with their change-feed entries and the removal of the marks in one
// transaction per connector batch. A crash anywhere leaves the marks in place, so the next pass converges.
// Also: full passes (after a settings change, or on demand), previews (a full pass that is not kept), and
// the deletion limit (deactivations and deletions above it wait for an administrator).

import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectorSettings } from '../domain/settings.ts';
import { DEFAULT_SETTINGS } from '../domain/settings.ts';
import { validateSettings } from '../domain/settings-validate.ts';
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import { openStore } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import { audit } from '../store/connectors.ts';
import { acquireLease, releaseLease } from './lease.ts';
import type { PendingRemoval } from './pass.ts';
import { chunk, ConnectorPass } from './pass.ts';
import type { RunCounters } from './runs.ts';
import { RunRecorder } from './runs.ts';

export interface ReconcilerOptions {
  batchSize?: number;
  /** a SCIM push run ends after this much quiet */
  quietPeriodMs?: number;
  /** a non-push run not heard from for this long is marked aborted (default 30 s) */
  runStaleMs?: number;
  pollIntervalMs?: number;
  holder?: string;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

interface Mark {
  seq: number;
  kind: string;
  ref: string;
  ref2: string;
  runId: string | null;
}

/** What a full pass or preview did (or would do). */
export interface PassReport {
  runId: string;
  status: string;
  counters: RunCounters;
  /** all changes of the run; `changes` lists the first of them */
  totalChanges: number;
  changes: { entity: string; entityId: string; op: string; data: unknown }[];
  held: { userId: string; op: string; data: unknown }[];
  log: { level: string; message: string }[];
  seats: { group: string; seats: number; before: number; after: number }[];
  /** directory groups fed by more than one provider group of the connector (allowed, and shown) */
  merges: { group: string; sources: string[] }[];
}

/** A pull run's marks wait until it has read everything (its `connector` mark must see the whole mirror). */
const notReading = (eb: ExpressionBuilder<Database, 'dirty_marks'>) =>
  eb.or([eb('run_id', 'is', null), eb('run_id', 'not in', eb.selectFrom('runs').select('id').where('phase', '=', 'reading'))]);

const LEASE = 'reconciler';
/** A killed instance's lease lapses after this; every batch renews it (a batch takes well under a second). */
const LEASE_TTL_MS = 10_000;
const POKE_DELAY_MS = 100;
const FULL_PASS_BATCH = 1000;
const REPORT_CHANGES = 10_000;
const FAILED_REST_MS = 30_000;

export class PreviewRollback extends Error {}

export class Reconciler {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  readonly holder: string;
  private readonly quietPeriodMs: number;
  private readonly runStaleMs: number;
  readonly runs: RunRecorder;
  private timer: NodeJS.Timeout | undefined;
  private wakeAt = 0;
  private running = false;
  private stopped = true;
  private again = false;
  private idleWaiters: (() => void)[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private leaseRenewAt = 0;
  private readonly failedUntil = new Map<string, number>();
  private lastQuietCheck = 0;
  private readonly log: NonNullable<ReconcilerOptions['log']>;

  constructor(
    private readonly db: Db,
    opts: ReconcilerOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 500;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.holder = opts.holder ?? randomUUID();
    this.quietPeriodMs = opts.quietPeriodMs ?? 60_000;
    this.runStaleMs = opts.runStaleMs ?? LEASE_TTL_MS * 3;
    this.log = opts.log ?? (() => {});
    this.runs = new RunRecorder(db, this.holder, this.quietPeriodMs);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain.catch(() => {});
    while (this.running) await new Promise((r) => setTimeout(r, 10));
    this.leaseRenewAt = 0;
    await releaseLease(this.db, LEASE, this.holder).catch(() => {});
  }

  /** Something was written: reconcile soon. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // A short delay lets a burst of requests share one batch (one transaction) instead of one each.
    // Never push a sooner wake-up later: under steady load that would starve the reconciler.
    if (this.timer && this.wakeAt <= Date.now() + POKE_DELAY_MS) return;
    this.schedule(POKE_DELAY_MS);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.wakeAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    this.again = false;
    let processed = 0;
    try {
      processed = await this.runOnce();
      if (Date.now() - this.lastQuietCheck > 1000) {
        this.lastQuietCheck = Date.now();
        await this.runs.closeQuiet();
        await this.runs.abortStale(this.runStaleMs);
      }
    } catch (e) {
      this.log('error', 'reconciler pass failed; the marks stay and the next pass retries', { err: String(e) });
    } finally {
      this.running = false;
    }
    if (processed === 0 && !this.again) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    // A full batch: more is waiting, go on at once. A partial one: let the next one fill up a little
    // (a batch's fixed cost is shared by every record in it). Nothing: poll.
    this.schedule(processed >= this.batchSize ? 0 : processed > 0 || this.again ? POKE_DELAY_MS : this.pollIntervalMs);
  }

  /** Resolve once a pass finds nothing to do (tests, benchmarks). */
  async idle(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.poke();
    });
  }

  /** Process every pending mark now (no background loop needed). Returns how many marks were handled. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.runOnce();
      if (n === 0) return total;
      total += n;
    }
  }

  /** Run exclusive work: one at a time in this process, and under the lease across instances. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work);
    this.chain = next.catch(() => {});
    return next;
  }

  private async holdLease(): Promise<boolean> {
    // Renew only when half of it has passed: no other instance can take it before it expires.
    if (Date.now() <= this.leaseRenewAt) return true;
    if (!(await acquireLease(this.db, LEASE, this.holder, LEASE_TTL_MS))) return false;
    this.leaseRenewAt = Date.now() + LEASE_TTL_MS / 2;
    return true;
  }

  /** One batch of marks: returns the number handled (0 when idle or another instance holds the lease). */
  runOnce(): Promise<number> {
    return this.exclusive(() => this.batch());
  }

  private async batch(): Promise<number> {
    if (!(await this.holdLease())) return 0;
    const resting = [...this.failedUntil].filter(([, until]) => until > Date.now()).map(([c]) => c);
    // A connector mark first: its pass covers every earlier mark of the connector, which would
    // otherwise be reconciled one batch at a time before it.
    let bulk = this.db.kysely
      .selectFrom('dirty_marks')
      .select(['connector_id', 'run_id'])
      .where('kind', '=', 'connector')
      .where(notReading)
      .orderBy('seq')
      .limit(1);
    if (resting.length) bulk = bulk.where('connector_id', 'not in', resting);
    const whole = await bulk.executeTakeFirst();
    if (whole) {
      try {
        const n = await this.connectorMark(whole.connector_id, whole.run_id);
        this.failedUntil.delete(whole.connector_id);
        return n + 1;
      } catch (e) {
        this.log('error', `re-evaluating connector ${whole.connector_id} failed; it is retried in ${FAILED_REST_MS / 1000} s`, { err: String(e) });
        this.failedUntil.set(whole.connector_id, Date.now() + FAILED_REST_MS);
        throw e;
      }
    }
    let query = this.db.kysely
      .selectFrom('dirty_marks')
      .select(['seq', 'connector_id', 'kind', 'ref', 'ref2', 'run_id'])
      .where(notReading)
      .orderBy('seq')
      .limit(this.batchSize);
    if (resting.length) query = query.where('connector_id', 'not in', resting);
    const rows = await query.execute();
    if (rows.length === 0) return 0;
    // per connector, and within it per run (a pull run's changes count towards that run)
    const groups = new Map<string, { connectorId: string; runId: string | null; marks: Mark[] }>();
    for (const r of rows) {
      const key = `${r.connector_id}\u0000${r.run_id ?? ''}`;
      const group = groups.get(key) ?? { connectorId: r.connector_id, runId: r.run_id, marks: [] };
      group.marks.push({ seq: Number(r.seq), kind: r.kind, ref: r.ref, ref2: r.ref2, runId: r.run_id });
      groups.set(key, group);
    }
    let failed: unknown;
    let handled = 0;
    for (const { connectorId, runId, marks } of groups.values()) {
      try {
        if (marks.some((m) => m.kind === 'connector')) handled += await this.connectorMark(connectorId, runId);
        else await this.connectorBatch(connectorId, runId, marks);
        handled += marks.length;
        this.failedUntil.delete(connectorId);
      } catch (e) {
        if (e instanceof LeaseLostError) {
          // another instance reconciles now; nothing was written here
          this.leaseRenewAt = 0;
          return handled;
        }
        // One connector's failure does not hold the others back: its marks stay, and it rests a while
        // before the next attempt so that its marks do not fill every batch.
        this.log('error', `reconciling connector ${connectorId} failed; its changes stay queued and are retried in ${FAILED_REST_MS / 1000} s`, { err: String(e) });
        this.failedUntil.set(connectorId, Date.now() + FAILED_REST_MS);
        failed = e;
      }
    }
    if (handled === 0 && failed) throw failed;
    return handled;
  }

  private async connectorBatch(connectorId: string, pullRunId: string | null, marks: Mark[]): Promise<void> {
    {
      const settings = await loadSettings(this.db, connectorId, this.log);
      await this.db.transaction(async (trx) => {
        await this.confirmLease(trx);
        const runId = pullRunId ?? (await this.runs.pushRun(trx, connectorId));
        const counters: RunCounters = {};
        const pass = new ConnectorPass(trx, connectorId, settings, runId, counters, this.runs, this.db.dialect);
        await reconcileMarks(pass, marks);
        await this.decideRemovals(pass, pass.pendingRemovals, false);
        await pass.deleteEmptyOrphans();
        await pass.flushFeed();
        for (const part of chunk(marks.map((m) => m.seq))) await trx.deleteFrom('dirty_marks').where('seq', 'in', part).execute();
        await this.runs.addCounters(trx, runId, counters);
      });
    }
  }

  /**
   * A `connector` mark: a pull run changed too much of the mirror to mark it record by record, so the
   * whole connector is re-evaluated, within that run. Every mark of the connector written before the
   * pass began is covered by it and removed afterwards. Returns the number of those other marks.
   */
  private async connectorMark(connectorId: string, runId: string | null): Promise<number> {
    const top = await this.db.kysely
      .selectFrom('dirty_marks')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('connector_id', '=', connectorId)
      .executeTakeFirst();
    const upTo = Number(top?.seq ?? 0);
    const settings = await loadSettings(this.db, connectorId, this.log);
    // PostgreSQL plans by its statistics, which lag behind a run that has just loaded most of the mirror
    if (this.db.dialect === 'postgres') {
      await sql`ANALYZE mirror_users, mirror_groups, mirror_members, directory_users, directory_groups, directory_memberships, group_links`.execute(this.db.kysely);
    }
    await runFullPass(this.db, this.runs, connectorId, settings, runId ? { runId } : 'resync', (pass, removals) => this.decideRemovals(pass, removals, true), () => this.keepLease());
    const res = await this.db.kysely.deleteFrom('dirty_marks').where('connector_id', '=', connectorId).where('seq', '<=', upTo).executeTakeFirst();
    return Math.max(0, Number(res.numDeletedRows) - 1);
  }

  /**
   * Inside a reconciling transaction: the lease is still this instance's, and is renewed with the batch.
   * On PostgreSQL the lease row stays locked until the batch commits, so no other instance can take it
   * while a slow batch runs (SQLite's single writer gives the same).
   */
  private async confirmLease(trx: Kysely<Database>): Promise<void> {
    const row =
      this.db.dialect === 'postgres'
        ? (await sql<{ holder: string }>`SELECT holder FROM leases WHERE name = ${LEASE} FOR UPDATE`.execute(trx)).rows[0]
        : await trx.selectFrom('leases').select('holder').where('name', '=', LEASE).executeTakeFirst();
    if (row?.holder !== this.holder) throw new LeaseLostError();
    await trx.updateTable('leases').set({ expires_at: Date.now() + LEASE_TTL_MS }).where('name', '=', LEASE).where('holder', '=', this.holder).execute();
    this.leaseRenewAt = Date.now() + LEASE_TTL_MS / 2;
  }

  /** Between the batches of a long pass: renew the lease, or stop when another instance took it. */
  private async keepLease(): Promise<void> {
    if (!(await this.holdLease())) throw new Error('the reconciler lease was lost to another instance; the next pass resumes');
  }

  /**
   * The deletion limit: apply the removals, or hold them for approval when they would take the run over
   * the connector's limit (count and/or percent of its users). Once a run holds anything, it holds every
   * later removal too. `final`: the whole run's removals are decided at once (full passes).
   */
  private async decideRemovals(pass: ConnectorPass, removals: PendingRemoval[], final: boolean): Promise<void> {
    if (removals.length === 0) return;
    const trx = pass.trx;
    const limit = pass.settings.safety.deletionLimit;
    let allowed = Infinity;
    if (limit.count !== null || limit.percent !== null) {
      const base = await trx.selectFrom('directory_users').select((eb) => eb.fn.countAll<number | string>().as('n')).where('owner_connector_id', '=', pass.connectorId).executeTakeFirst();
      const users = Number(base?.n ?? 0);
      const byPercent = limit.percent !== null ? Math.floor((limit.percent / 100) * users) : Infinity;
      allowed = Math.min(limit.count ?? Infinity, byPercent);
    }
    const so = await this.runs.counters(trx, pass.runId);
    const used = final ? 0 : (so.deactivated ?? 0) + (so.deleted ?? 0);
    const alreadyHeld = final ? 0 : (so.held ?? 0);
    if (alreadyHeld === 0 && used + removals.length <= allowed) {
      await pass.applyRemovals(removals);
      return;
    }
    for (const part of chunk(removals, 200)) {
      await trx
        .insertInto('held_changes')
        .values(part.map((r) => ({ run_id: pass.runId, connector_id: pass.connectorId, user_id: r.userId, op: r.op, data: JSON.stringify({ username: r.username, reason: r.reason }), status: 'held' })))
        .execute();
    }
    pass.count('held', removals.length);
    await pass.log('warn', `${removals.length} deactivations/deletions held: the run would exceed the deletion limit (${allowed === Infinity ? 'none' : allowed}); an administrator must approve them`);
  }

  /**
   * Re-evaluate every user, group and membership of a connector from its mirror (after a settings change,
   * or on demand), in batches of one transaction each. Removals are decided once, for the whole run.
   */
  fullPass(connectorId: string, trigger: string, settings?: ConnectorSettings): Promise<PassReport> {
    return this.exclusive(async () => {
      for (let i = 0; !(await this.holdLease()); i++) {
        if (i > 100) throw new Error('another instance holds the reconciler');
        await new Promise((r) => setTimeout(r, 200));
      }
      const s = settings ?? (await loadSettings(this.db, connectorId, this.log));
      const runId = await runFullPass(this.db, this.runs, connectorId, s, trigger, (pass, removals) => this.decideRemovals(pass, removals, true), () => this.keepLease());
      return report(this.db, runId, s);
    });
  }

  /**
   * What a full pass with these settings would do, without keeping anything: on PostgreSQL inside a
   * transaction that is rolled back, on SQLite against a snapshot copy of the database.
   */
  preview(connectorId: string, settings: ConnectorSettings, limit = REPORT_CHANGES): Promise<PassReport> {
    return this.exclusive(async () => {
      const decide = (pass: ConnectorPass, removals: PendingRemoval[]) => this.decideRemovals(pass, removals, true);
      if (this.db.dialect === 'postgres') {
        let result: PassReport | undefined;
        try {
          await this.db.kysely.transaction().execute(async (trx) => {
            const scoped: Db = { ...this.db, kysely: trx, transaction: (fn) => fn(trx), close: async () => {} };
            const runs = new RunRecorder(scoped, this.holder, this.quietPeriodMs);
            const runId = await runFullPass(scoped, runs, connectorId, settings, 'preview', decide);
            result = await report(scoped, runId, settings, limit);
            throw new PreviewRollback();
          });
        } catch (e) {
          if (!(e instanceof PreviewRollback)) throw e;
        }
        return result!;
      }
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-preview-'));
      try {
        const file = path.join(dir, 'snapshot.db');
        await this.db.snapshot!(file);
        const copy = await openStore({ url: file });
        try {
          const runs = new RunRecorder(copy, this.holder, this.quietPeriodMs);
          const runId = await runFullPass(copy, runs, connectorId, settings, 'preview', decide);
          return await report(copy, runId, settings, limit);
        } finally {
          await copy.close();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  /** Apply the held removals of a run that are still wanted, as the administrator approved. */
  approve(runId: string, actor: string): Promise<{ applied: number; skipped: number }> {
    return this.exclusive(async () => {
      const run = await this.db.kysely.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst();
      if (!run) throw new NotFoundError(`no run '${runId}'`);
      const settings = await loadSettings(this.db, run.connector_id, this.log);
      return this.db.transaction(async (trx) => {
        const held = await trx.selectFrom('held_changes').selectAll().where('run_id', '=', runId).where('status', '=', 'held').execute();
        if (held.length === 0) throw new ConflictError(`run '${runId}' has no held changes`);
        const counters: RunCounters = {};
        const pass = new ConnectorPass(trx, run.connector_id, settings, runId, counters, this.runs, this.db.dialect);
        const users = new Map<string, { id: string; active: number | string; username: string }>();
        for (const part of chunk(held.map((h) => h.user_id))) {
          for (const u of await trx.selectFrom('directory_users').select(['id', 'active', 'username']).where('id', 'in', part).execute()) users.set(u.id, u);
        }
        // Still wanted: the user exists and, for a deactivation, is still active.
        const apply: PendingRemoval[] = [];
        for (const h of held) {
          const u = users.get(h.user_id);
          if (!u || (h.op === 'deactivate' && Number(u.active) !== 1)) continue;
          apply.push({ userId: u.id, username: u.username, op: h.op as 'deactivate' | 'delete', reason: (JSON.parse(h.data) as { reason: string }).reason });
        }
        await pass.applyRemovals(apply);
        await pass.flushFeed();
        await trx.updateTable('held_changes').set({ status: 'approved' }).where('run_id', '=', runId).where('status', '=', 'held').execute();
        await this.runs.addCounters(trx, runId, counters);
        await trx.updateTable('runs').set({ status: 'succeeded' }).where('id', '=', runId).where('status', '=', 'held').execute();
        await audit(trx, actor, 'run.approve', runId, { applied: apply.length, skipped: held.length - apply.length });
        return { applied: apply.length, skipped: held.length - apply.length };
      });
    });
  }

  /** Drop the held removals of a run. */
  async reject(runId: string, actor: string): Promise<{ rejected: number }> {
    return this.db.transaction(async (trx) => {
      const res = await trx.updateTable('held_changes').set({ status: 'rejected' }).where('run_id', '=', runId).where('status', '=', 'held').executeTakeFirst();
      const n = Number(res.numUpdatedRows);
      if (n === 0) {
        const run = await trx.selectFrom('runs').select('id').where('id', '=', runId).executeTakeFirst();
        if (!run) throw new NotFoundError(`no run '${runId}'`);
        throw new ConflictError(`run '${runId}' has no held changes`);
      }
      await trx.updateTable('runs').set({ status: 'succeeded' }).where('id', '=', runId).where('status', '=', 'held').execute();
      await audit(trx, actor, 'run.reject', runId, { rejected: n });
      return { rejected: n };
    });
  }
}

export class NotFoundError extends Error {}
class LeaseLostError extends Error {
  constructor() {
    super('the reconciler lease passed to another instance');
  }
}
export class ConflictError extends Error {}

const validatedSettings = new Map<string, ConnectorSettings>();

/** A connector's stored settings, validated; a stored value that no longer validates falls back to defaults. */
export async function loadSettings(db: Db, connectorId: string, log: NonNullable<ReconcilerOptions['log']> = () => {}): Promise<ConnectorSettings> {
  const row = await db.kysely.selectFrom('connectors').select('settings').where('id', '=', connectorId).executeTakeFirst();
  return settingsFromText(row?.settings ?? '{}', connectorId, log);
}

/** A connector's settings from their stored text; the defaults (and an error logged) when it is not valid. */
export function settingsFromText(text: string, connectorId: string, log: NonNullable<ReconcilerOptions['log']> = () => {}): ConnectorSettings {
  // Validated once per stored text: the reconciler asks on every batch. The same object is handed out
  // again, which also keeps the rules' per-settings caches (regexes, compiled paths) warm.
  const cached = validatedSettings.get(text);
  if (cached) return cached;
  try {
    const settings = validateSettings(JSON.parse(text));
    if (validatedSettings.size >= 100) validatedSettings.clear();
    validatedSettings.set(text, settings);
    return settings;
  } catch (e) {
    log('error', `connector ${connectorId}: stored settings are invalid; using the defaults`, { err: String(e) });
    return DEFAULT_SETTINGS;
  }
}

/** Incremental work for one connector's marks. */
async function reconcileMarks(pass: ConnectorPass, marks: Mark[]): Promise<void> {
  const users = new Set<string>();
  const groups = new Set<string>();
  const pairs = new Map<string, Set<string>>(); // provider group → provider members
  const addPair = (g: string, m: string) => {
    const s = pairs.get(g) ?? new Set<string>();
    s.add(m);
    pairs.set(g, s);
  };
  for (const m of marks) {
    if (m.kind === 'user') users.add(m.ref);
    else if (m.kind === 'group') groups.add(m.ref);
    else addPair(m.ref, m.ref2);
  }
  pass.count('read', users.size + groups.size);
  const changedUsers = await pass.reconcileUsers([...users]);
  const relinked = await pass.reconcileGroups([...groups]);

  // A new (or adopted, or back in scope) directory user: every group the provider has it in.
  for (const part of chunk(changedUsers)) {
    const rows = await pass.trx.selectFrom('mirror_members').select(['group_id', 'member_id']).where('connector_id', '=', pass.connectorId).where('member_id', 'in', part).execute();
    for (const r of rows) addPair(r.group_id, r.member_id);
  }
  // A provider group that now feeds other directory groups: every member, in old and new.
  const extraTargets = new Map<string, string[]>();
  for (const { source, previous } of relinked) {
    extraTargets.set(source, previous);
    const rows = await pass.trx.selectFrom('mirror_members').select('member_id').where('connector_id', '=', pass.connectorId).where('group_id', '=', source).execute();
    for (const r of rows) addPair(source, r.member_id);
  }
  for (const [source, members] of pairs) await pass.reconcilePairs(source, [...members], extraTargets.get(source) ?? []);
}

type Decide = (pass: ConnectorPass, removals: PendingRemoval[]) => Promise<void>;

/**
 * A full pass on `db` (the store, a transaction scoped to a preview, or a snapshot copy), in a run of its
 * own (`trigger`) or within a pull run that is already open (`{ runId }`, which its owner ends).
 */
async function runFullPass(
  db: Db,
  runs: RunRecorder,
  connectorId: string,
  settings: ConnectorSettings,
  run: string | { runId: string },
  decide: Decide,
  keepAlive: () => Promise<void> = async () => {},
): Promise<string> {
  const ownRun = typeof run === 'string';
  const runId = ownRun ? await db.transaction((trx) => runs.open(trx, connectorId, run)) : run.runId;
  const removals: PendingRemoval[] = [];
  const inBatch = async (work: (pass: ConnectorPass) => Promise<void>) => {
    await keepAlive();
    return db.transaction(async (trx) => {
      const counters: RunCounters = {};
      const pass = new ConnectorPass(trx, connectorId, settings, runId, counters, runs, db.dialect);
      await work(pass);
      removals.push(...pass.pendingRemovals);
      await pass.flushFeed();
      await runs.addCounters(trx, runId, counters);
    });
  };
  // PostgreSQL plans by statistics; a pass that fills the directory from empty outgrows them at once
  // (an anti join planned for an empty directory_memberships re-reads it for every row), so refresh them
  // as the pass goes.
  const analyze = async () => {
    if (db.dialect === 'postgres') await sql`ANALYZE directory_users, directory_groups, directory_memberships, group_links`.execute(db.kysely);
  };
  const phase = async (name: string, work: () => Promise<number>) => {
    const t0 = Date.now();
    const n = await work();
    await analyze();
    await db.transaction((trx) => runs.logLine(trx, runId, 'info', `${name}: ${n.toLocaleString('en')} in ${((Date.now() - t0) / 1000).toFixed(1)} s`));
  };
  try {
    // Every provider record, in id order, a batch (one transaction) at a time.
    const eachBatch = async (table: 'mirror_users' | 'mirror_groups', work: (pass: ConnectorPass, ids: string[]) => Promise<unknown>) => {
      let n = 0;
      for (let after = ''; ; ) {
        const ids = (
          await db.kysely.selectFrom(table).select('id').where('connector_id', '=', connectorId).where('id', '>', after).orderBy('id').limit(FULL_PASS_BATCH).execute()
        ).map((r) => r.id);
        if (ids.length === 0) return n;
        after = ids[ids.length - 1]!;
        await inBatch(async (pass) => {
          pass.count('read', ids.length);
          await work(pass, ids);
        });
        n += ids.length;
      }
    };
    await phase('users evaluated', async () => {
      const n = await eachBatch('mirror_users', (pass, ids) => pass.reconcileUsers(ids));
      // Directory users whose provider record is gone, not yet cleaned up.
      const gone = (
        await db.kysely
          .selectFrom('directory_users as du')
          .select('du.source_id')
          .where('du.owner_connector_id', '=', connectorId)
          .where(({ not, exists, selectFrom }) =>
            not(exists(selectFrom('mirror_users as mu').select('mu.id').whereRef('mu.connector_id', '=', 'du.owner_connector_id').whereRef('mu.id', '=', 'du.source_id'))),
          )
          .execute()
      ).map((r) => r.source_id!);
      for (const part of chunk(gone, FULL_PASS_BATCH)) await inBatch(async (pass) => void (await pass.reconcileUsers(part)));
      return n + gone.length;
    });
    // Groups: which directory groups each provider group feeds.
    await phase('groups evaluated', () => eachBatch('mirror_groups', (pass, ids) => pass.reconcileGroups(ids)));
    // Memberships: every directory group this connector feeds or has memberships in, compared
    // set-wise, a slice of groups per transaction so that memory stays bounded.
    const managedBy = `connector:${connectorId}`;
    const groupIds = [
      ...new Set([
        ...(await db.kysely.selectFrom('group_links').select('group_id').distinct().where('connector_id', '=', connectorId).execute()).map((r) => r.group_id),
        ...(await db.kysely.selectFrom('directory_memberships').select('group_id').distinct().where('managed_by', '=', managedBy).execute()).map((r) => r.group_id),
      ]),
    ].sort();
    await phase('directory groups compared', async () => {
      let slices = 0;
      for (const part of chunk(groupIds, 100)) {
        await inBatch((pass) => pass.reconcileAllMembers(part));
        if (++slices % 10 === 0) await analyze();
      }
      return groupIds.length;
    });
    // Removals, decided once for the whole run.
    await db.transaction(async (trx) => {
      const counters: RunCounters = {};
      const pass = new ConnectorPass(trx, connectorId, settings, runId, counters, runs, db.dialect);
      await decide(pass, removals);
      await pass.flushFeed();
      await runs.addCounters(trx, runId, counters);
    });
    if (ownRun) {
      const held = await db.kysely.selectFrom('held_changes').select('seq').where('run_id', '=', runId).limit(1).execute();
      await runs.finish(runId, held.length ? 'held' : 'succeeded');
    }
  } catch (e) {
    if (ownRun) await runs.finish(runId, 'failed', String(e));
    throw e;
  }
  return runId;
}

/** What a run did: its counters, the first `limit` changes (a large pass has a million), held removals, log. */
async function report(db: Db, runId: string, settings: ConnectorSettings, limit = REPORT_CHANGES): Promise<PassReport> {
  const run = await db.kysely.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
  const changes = await db.kysely.selectFrom('change_feed').select(['entity', 'entity_id', 'op', 'data']).where('run_id', '=', runId).orderBy('seq').limit(limit).execute();
  const total = await db.kysely.selectFrom('change_feed').select((eb) => eb.fn.countAll<number | string>().as('n')).where('run_id', '=', runId).executeTakeFirstOrThrow();
  const held = await db.kysely.selectFrom('held_changes').select(['user_id', 'op', 'data']).where('run_id', '=', runId).where('status', '=', 'held').orderBy('seq').execute();
  const log = await db.kysely.selectFrom('run_logs').select(['level', 'message']).where('run_id', '=', runId).orderBy('seq').execute();
  // Seats of licence groups: now, and before this run's membership changes.
  // Merges: a directory group that several provider groups of this connector feed.
  const links = await db.kysely
    .selectFrom('group_links as gl')
    .innerJoin('directory_groups as g', 'g.id', 'gl.group_id')
    .leftJoin('mirror_groups as mg', (j) => j.onRef('mg.connector_id', '=', 'gl.connector_id').onRef('mg.id', '=', 'gl.source_id'))
    .select(['g.name', 'gl.source_id', 'mg.display_name'])
    .where('gl.connector_id', '=', run.connector_id)
    .where('gl.group_id', 'in', (eb) =>
      eb.selectFrom('group_links').select('group_id').where('connector_id', '=', run.connector_id).groupBy('group_id').having((h) => h.fn.countAll(), '>', 1),
    )
    .orderBy('g.name')
    .execute();
  const merges = new Map<string, string[]>();
  for (const l of links) merges.set(l.name, [...(merges.get(l.name) ?? []), l.display_name ?? l.source_id]);
  const seats: PassReport['seats'] = [];
  for (const licence of settings.group.licences) {
    const g = await db.kysely.selectFrom('directory_groups').select('id').where('name_key', '=', licence.group.toLowerCase()).executeTakeFirst();
    let after = 0;
    if (g) {
      const r = await db.kysely
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_users as u', 'u.id', 'm.user_id')
        .select((eb) => eb.fn.count<number | string>('m.user_id').distinct().as('n'))
        .where('m.group_id', '=', g.id)
        .where('u.active', '=', 1)
        .executeTakeFirst();
      after = Number(r?.n ?? 0);
    }
    const changed = (op: string) =>
      g
        ? db.kysely
            .selectFrom('change_feed')
            .select((eb) => eb.fn.countAll<number | string>().as('n'))
            .where('run_id', '=', runId)
            .where('entity', '=', 'membership')
            .where('op', '=', op)
            .where('entity_id', 'like', `${g.id}:%`)
            .executeTakeFirstOrThrow()
            .then((r) => Number(r.n))
        : Promise.resolve(0);
    const added = await changed('add');
    const removed = await changed('remove');
    seats.push({ group: licence.group, seats: licence.seats, before: after - added + removed, after });
  }
  return {
    runId,
    status: run.status,
    counters: JSON.parse(run.counters) as RunCounters,
    totalChanges: Number(total.n),
    changes: changes.map((c) => ({ entity: c.entity, entityId: c.entity_id, op: c.op, data: JSON.parse(c.data) })),
    held: held.map((h) => ({ userId: h.user_id, op: h.op, data: JSON.parse(h.data) })),
    log,
    seats,
    merges: [...merges].map(([group, sources]) => ({ group, sources: sources.sort() })),
  };
}
