// Pull runs: one execution of a pull source (Graph, LDAP) for a connector. A run holds the connector's
// source lease (one run per connector at a time, across every instance on one database), records its
// trigger, counters, log lines, progress and peak memory, reads the provider into the mirror (phase
// `reading`), then waits while the reconciler turns the run's marks into directory changes (phase
// `reconciling`) and ends. A run whose instance dies stops renewing its lease and heartbeat: another
// instance marks it aborted, its marks are reconciled anyway, and the next run reads again and converges.

import { EventEmitter } from 'node:events';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import { MirrorWriter, RunMarks } from '../store/mirror-writer.ts';
import type { ConnectionTest, Progress, PullContext, PullSource, UserSearch } from './source.ts';
import type { UserPreview } from '../domain/rules.ts';
import { previewUser } from '../domain/rules.ts';
import { foldCase } from '../domain/scim/schema.ts';
import { acquireLease, releaseLease } from './lease.ts';
import { ConflictError, NotFoundError, loadSettings } from './reconciler.ts';
import type { Reconciler } from './reconciler.ts';
import type { RunCounters, RunStatus } from './runs.ts';

/** A run's lease lapses this long after its instance stops renewing it. */
const LEASE_TTL_MS = 30_000;
/** at most this often; and at least three times per lease */
const HEARTBEAT_MS = 5_000;
/** A run fails when the reconciler has not taken any of its marks for this long. */
const RECONCILE_STALL_MS = 10 * 60_000;

export type RunTrigger = 'manual' | 'schedule' | 'on-demand' | 'startup';
export type PullMode = 'auto' | 'full' | 'delta';

export interface PullConnector {
  id: string;
  kind: string;
  enabled: boolean;
  source: Record<string, unknown>;
}

export interface PullRunnerOptions {
  holder: string;
  /** a run's lease lapses this long after its instance stops renewing it (default 30 s) */
  leaseTtlMs?: number;
  /** record marks a run writes before it marks the whole connector instead (default 20,000) */
  bulkMarkThreshold?: number;
  /** opens the source of a connector (secrets are opened there) */
  openSource: (connector: PullConnector) => PullSource;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

export class BusyError extends Error {
  constructor(
    readonly connectorId: string,
    readonly runId: string | null,
  ) {
    super(`connector ${connectorId} is already running${runId ? ` (run ${runId})` : ''}`);
  }
}

export interface RunOutcome {
  runId: string;
  status: RunStatus;
  error?: string;
  counters: RunCounters;
}

export interface RunHandle {
  runId: string;
  done: Promise<RunOutcome>;
}

export interface UserSyncResult {
  runId: string;
  /** synced: the user is in the mirror and reconciled; removed: the provider has no such user in scope */
  outcome: 'synced' | 'not-found' | 'out-of-scope';
  reason?: string;
  user?: { id: string; username: string; email: string | null; displayName: string; active: boolean; groups: string[] };
  elapsedMs: number;
}

/** Progress and end events of runs in this process: `progress` (runId, Progress), `end` (RunOutcome). */
export type RunEvents = EventEmitter<{ progress: [string, Progress]; end: [RunOutcome] }>;

export class PullRunner {
  readonly events: RunEvents = new EventEmitter();
  private readonly active = new Map<string, { runId: string; controller: AbortController; done: Promise<RunOutcome> }>();
  private readonly log: NonNullable<PullRunnerOptions['log']>;
  private stopping = false;
  private readonly onDemand = new Map<string, { key: string; source: PullSource }>();
  private readonly leaseTtlMs: number;

  constructor(
    private readonly db: Db,
    private readonly reconciler: Reconciler,
    private readonly opts: PullRunnerOptions,
  ) {
    this.log = opts.log ?? (() => {});
    this.leaseTtlMs = opts.leaseTtlMs ?? LEASE_TTL_MS;
    this.events.setMaxListeners(100);
  }

  private async connector(connectorId: string): Promise<PullConnector> {
    const row = await this.db.kysely.selectFrom('connectors').select(['id', 'kind', 'enabled', 'source']).where('id', '=', connectorId).executeTakeFirst();
    if (!row) throw new NotFoundError(`no connector '${connectorId}'`);
    if (row.kind === 'scim') throw new ConflictError(`connector '${connectorId}' is a SCIM connector: its identity provider pushes changes, there is nothing to pull`);
    return { id: row.id, kind: row.kind, enabled: Number(row.enabled) === 1, source: JSON.parse(row.source) as Record<string, unknown> };
  }

  /** The run of a connector that is reading or reconciling now (on any instance). */
  async currentRun(connectorId: string): Promise<string | null> {
    const row = await this.db.kysely
      .selectFrom('runs')
      .select('id')
      .where('connector_id', '=', connectorId)
      .where('status', '=', 'running')
      .where('phase', 'in', ['reading', 'reconciling'])
      .where('trigger', '!=', 'on-demand')
      .orderBy('started_at', 'desc')
      .executeTakeFirst();
    return row?.id ?? null;
  }

  /** Start a run; BusyError when the connector already runs somewhere. */
  async start(connectorId: string, trigger: RunTrigger, mode: PullMode = 'auto'): Promise<RunHandle> {
    if (this.stopping) throw new ConflictError('the service is stopping');
    const connector = await this.connector(connectorId);
    if (!connector.enabled) throw new ConflictError(`connector '${connectorId}' is disabled`);
    const local = this.active.get(connectorId);
    if (local) throw new BusyError(connectorId, local.runId);
    const leaseHolder = this.opts.holder;
    if (!(await acquireLease(this.db, leaseName(connectorId), leaseHolder, this.leaseTtlMs))) {
      // the holder takes the lease a moment before it records its run: ask again briefly
      let running = await this.currentRun(connectorId);
      for (let i = 0; !running && i < 20; i++) {
        await new Promise((r) => setTimeout(r, 50));
        running = await this.currentRun(connectorId);
      }
      throw new BusyError(connectorId, running);
    }
    let source: PullSource;
    try {
      source = this.opts.openSource(connector);
    } catch (e) {
      await releaseLease(this.db, leaseName(connectorId), leaseHolder);
      throw e;
    }
    const runId = await this.openRun(connectorId, trigger);
    const controller = new AbortController();
    const done = this.execute(connectorId, runId, source, mode, controller);
    this.active.set(connectorId, { runId, controller, done });
    return { runId, done };
  }

  private openRun(connectorId: string, trigger: string): Promise<string> {
    return this.db.transaction((trx) => this.reconciler.runs.open(trx, connectorId, trigger, 'reading'));
  }

  private context(connectorId: string, runId: string, signal: AbortSignal, counters: RunCounters, onProgress: (p: Progress) => void): PullContext {
    const marks = new RunMarks(connectorId, runId, this.db.dialect, this.opts.bulkMarkThreshold);
    return {
      db: this.db,
      connectorId,
      runId,
      marks,
      signal,
      write: (work) => this.db.transaction((trx) => work(new MirrorWriter(trx, marks))),
      log: (level, message) => this.reconciler.runs.logLine(this.db.kysely, runId, level, message),
      progress: onProgress,
      count: (add) => {
        for (const [k, v] of Object.entries(add) as [keyof RunCounters, number][]) if (v) counters[k] = (counters[k] ?? 0) + v;
      },
    };
  }

  private async execute(connectorId: string, runId: string, source: PullSource, mode: PullMode, controller: AbortController): Promise<RunOutcome> {
    const counters: RunCounters = {};
    let progress: Progress | undefined;
    let phase: 'reading' | 'reconciling' = 'reading';
    let peak = process.memoryUsage().rss;
    const started = Date.now();
    let progressSavedAt = 0;
    const onProgress = (p: Progress) => {
      progress = p;
      this.events.emit('progress', runId, p);
      // other instances (and the SSE stream) read progress from the run row: at most once a second
      if (Date.now() - progressSavedAt >= 1000) {
        progressSavedAt = Date.now();
        void this.db.kysely
          .updateTable('runs')
          .set({ progress: JSON.stringify(p) })
          .where('id', '=', runId)
          .where('status', '=', 'running')
          .execute()
          .catch(() => {});
      }
    };
    const ctx = this.context(connectorId, runId, controller.signal, counters, onProgress);
    const heartbeat = setInterval(() => {
      void (async () => {
        peak = Math.max(peak, process.memoryUsage().rss);
        if (!(await acquireLease(this.db, leaseName(connectorId), this.opts.holder, this.leaseTtlMs))) {
          controller.abort(new Error('the run lost its lease to another instance'));
          return;
        }
        await this.db.kysely
          .updateTable('runs')
          .set({ last_activity_at: now(), peak_rss: peak, ...(progress ? { progress: JSON.stringify(progress) } : {}) })
          .where('id', '=', runId)
          .execute();
      })().catch((e: unknown) => this.log('warn', `run ${runId}: heartbeat failed`, { err: String(e) }));
    }, Math.min(HEARTBEAT_MS, this.leaseTtlMs / 3));
    heartbeat.unref();
    // memory peaks come and go between heartbeats: sampled more often (process.memoryUsage.rss() is cheap)
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 200);
    sampler.unref();
    let outcome: RunOutcome;
    try {
      let how = 'full read';
      if (mode !== 'full' && source.delta) {
        const result = await source.delta(ctx);
        if (result === 'full-needed') {
          if (mode === 'delta') await ctx.log('info', 'no usable delta state: reading everything');
          await source.full(ctx);
        } else how = 'delta round';
      } else await source.full(ctx);
      peak = Math.max(peak, process.memoryUsage().rss);
      await ctx.log('info', `${how}: ${counters.fetched ?? 0} objects read; mirror: ${counters.mirrorCreated ?? 0} created, ${counters.mirrorUpdated ?? 0} updated, ${counters.mirrorDeleted ?? 0} deleted, memberships +${counters.mirrorMembershipsAdded ?? 0} −${counters.mirrorMembershipsRemoved ?? 0} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      await this.setPhase(runId, 'reconciling', counters, peak, progress);
      phase = 'reconciling';
      onProgress({ phase: 'reconciling', done: 0, total: null });
      await this.waitReconciled(runId, controller.signal);
      peak = Math.max(peak, process.memoryUsage().rss);
      const held = await this.db.kysely.selectFrom('held_changes').select('seq').where('run_id', '=', runId).where('status', '=', 'held').limit(1).execute();
      outcome = await this.finish(runId, held.length ? 'held' : 'succeeded', undefined, phase === 'reconciling' ? {} : counters, peak);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      await ctx.log('error', `run failed: ${message}`).catch(() => {});
      outcome = await this.finish(runId, 'failed', message, phase === 'reading' ? counters : {}, peak).catch(() => ({ runId, status: 'failed' as const, error: message, counters }));
    } finally {
      clearInterval(heartbeat);
      clearInterval(sampler);
      source.close();
      this.active.delete(connectorId);
      await releaseLease(this.db, leaseName(connectorId), this.opts.holder).catch(() => {});
    }
    this.events.emit('end', outcome);
    return outcome;
  }

  private async setPhase(runId: string, phase: string, counters: RunCounters, peak: number, progress?: Progress): Promise<void> {
    await this.db.transaction(async (trx) => {
      await this.reconciler.runs.addCounters(trx, runId, counters);
      await trx
        .updateTable('runs')
        .set({ phase, peak_rss: peak, ...(progress ? { progress: JSON.stringify(progress) } : {}) })
        .where('id', '=', runId)
        .execute();
    });
    for (const k of Object.keys(counters)) delete counters[k as keyof RunCounters];
  }

  private async finish(runId: string, status: RunStatus, error: string | undefined, counters: RunCounters, peak: number): Promise<RunOutcome> {
    return this.db.transaction(async (trx) => {
      await this.reconciler.runs.addCounters(trx, runId, counters);
      await trx
        .updateTable('runs')
        .set({ status, phase: '', error: error ?? null, ended_at: now(), peak_rss: Math.max(peak, process.memoryUsage().rss) })
        .where('id', '=', runId)
        .where('status', 'in', ['running', 'held'])
        .execute();
      const final = await trx.selectFrom('runs').select(['status', 'error', 'counters']).where('id', '=', runId).executeTakeFirst();
      return { runId, status: (final?.status ?? status) as RunStatus, ...(final?.error ? { error: final.error } : {}), counters: final ? (JSON.parse(final.counters) as RunCounters) : counters };
    });
  }

  /** Until the reconciler has taken every mark of the run (here, or on the instance holding its lease). */
  private async waitReconciled(runId: string, signal: AbortSignal): Promise<void> {
    let last = Infinity;
    let lastChange = Date.now();
    for (;;) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('the run was stopped');
      const row = await this.db.kysely.selectFrom('dirty_marks').select((eb) => eb.fn.countAll<number | string>().as('n')).where('run_id', '=', runId).executeTakeFirst();
      const left = Number(row?.n ?? 0);
      if (left === 0) return;
      if (left < last) {
        last = left;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > RECONCILE_STALL_MS) throw new Error(`the reconciler has not taken this run's changes for ${RECONCILE_STALL_MS / 60_000} minutes (${left} waiting)`);
      const handled = await this.reconciler.runOnce().catch((e: unknown) => {
        this.log('warn', `run ${runId}: reconciling failed; retrying`, { err: String(e) });
        return 0;
      });
      if (handled === 0) await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Read one user by username now (sync on login): into the mirror, reconciled, and returned. */
  async syncUser(connectorId: string, username: string): Promise<UserSyncResult> {
    const t0 = Date.now();
    const connector = await this.connector(connectorId);
    if (!connector.enabled) throw new ConflictError(`connector '${connectorId}' is disabled`);
    const source = this.onDemandSource(connector);
    if (!source.user) throw new ConflictError(`connector '${connectorId}' cannot read one user on demand`);
    const runId = await this.openRun(connectorId, 'on-demand');
    const counters: RunCounters = {};
    const ctx = this.context(connectorId, runId, new AbortController().signal, counters, () => {});
    try {
      const found = await source.user(ctx, username);
      await this.setPhase(runId, 'reconciling', counters, process.memoryUsage().rss);
      await this.waitReconciled(runId, ctx.signal);
      await this.finish(runId, 'succeeded', undefined, {}, process.memoryUsage().rss);
      if (!found.id) {
        return { runId, outcome: found.outOfScope ? 'out-of-scope' : 'not-found', ...(found.outOfScope ? { reason: found.outOfScope } : {}), elapsedMs: Date.now() - t0 };
      }
      const user = await this.db.kysely
        .selectFrom('directory_users')
        .select(['id', 'username', 'email', 'display_name', 'active'])
        .where('owner_connector_id', '=', connectorId)
        .where('source_id', '=', found.id)
        .executeTakeFirst();
      const groups = user
        ? (
            await this.db.kysely
              .selectFrom('directory_memberships as m')
              .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
              .select('g.name')
              .distinct()
              .where('m.user_id', '=', user.id)
              .orderBy('g.name')
              .execute()
          ).map((g) => g.name)
        : [];
      return {
        runId,
        outcome: 'synced',
        ...(user ? { user: { id: user.id, username: user.username, email: user.email, displayName: user.display_name, active: Number(user.active) === 1, groups } } : { reason: 'the rules leave this user out of the directory' }),
        elapsedMs: Date.now() - t0,
      };
    } catch (e) {
      await this.finish(runId, 'failed', e instanceof Error ? e.message : String(e), {}, process.memoryUsage().rss).catch(() => {});
      throw e;
    }
  }

  /** Test a connector's connection without running (token, permissions, scope). */
  async test(connectorId: string): Promise<ConnectionTest> {
    const connector = await this.connector(connectorId);
    const source = this.opts.openSource(connector);
    try {
      return await source.test();
    } finally {
      source.close();
    }
  }

  /**
   * The test user search: the provider's entry, the mirror record, and what the current rules would make
   * of it in the directory. Reads the provider; writes nothing. Undefined: the kind has no such search.
   */
  async searchUser(connectorId: string, username: string): Promise<UserSearchReport | undefined> {
    const connector = await this.connector(connectorId);
    const source = this.onDemandSource(connector);
    if (!source.searchUser) return undefined;
    const found = await source.searchUser(username);
    if (!found.record) return { ...found, directory: null };
    const settings = await loadSettings(this.db, connectorId);
    const first = previewUser(settings, found.record.doc, found.groups.map((g) => g.name), false);
    const existing = first.user
      ? await this.db.kysely
          .selectFrom('directory_users')
          .select(['id', 'username', 'active', 'owner_connector_id', 'source_id'])
          .where('username_key', '=', foldCase(first.user.username))
          .executeTakeFirst()
      : undefined;
    const preview = existing || !first.inScope ? first : previewUser(settings, found.record.doc, found.groups.map((g) => g.name), true);
    const existingUser = existing
      ? {
          id: existing.id,
          username: existing.username,
          active: Number(existing.active) === 1,
          ownedBy: existing.owner_connector_id,
          sameRecord: existing.owner_connector_id === connectorId && existing.source_id === found.record.id,
        }
      : null;
    return { ...found, directory: { ...preview, existing: existingUser } };
  }

  /** Stop: runs of this process are told to stop; they end as failed and the next run converges. */
  /**
   * The source for sync on login, kept between calls while the connector's settings stay the same: a
   * new one would fetch a token and open TLS connections again for every login.
   */
  private onDemandSource(connector: PullConnector): PullSource {
    const key = JSON.stringify(connector.source);
    const kept = this.onDemand.get(connector.id);
    if (kept?.key === key) return kept.source;
    const source = this.opts.openSource(connector);
    this.onDemand.set(connector.id, { key, source });
    // a call may still be using the old one: close it a little later
    if (kept) setTimeout(() => kept.source.close(), 60_000).unref();
    return source;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const { source } of this.onDemand.values()) source.close();
    this.onDemand.clear();
    const running = [...this.active.values()];
    for (const r of running) r.controller.abort(new Error('the service is stopping'));
    await Promise.allSettled(running.map((r) => r.done));
  }
}

export interface UserSearchReport extends UserSearch {
  /** what the current rules make of the record; null when the source leaves the user out */
  directory: (UserPreview & { existing: { id: string; username: string; active: boolean; ownedBy: string | null; sameRecord: boolean } | null }) | null;
}

export function leaseName(connectorId: string): string {
  return `source:${connectorId}`;
}
