// The service's delivery loop: for every enabled target, under a lease of its own (several instances on one
// PostgreSQL deliver each change once), run a queued comparison, else turn new change-feed rows into work
// and do the due work, round after round while there is more. A target whose application is down waits
// with back-off and holds no other target back; each target runs on its own.

import type { Logger } from 'pino';
import { raiseAlert } from '../alerts/monitor.ts';
import { nextRun } from '../domain/schedule.ts';
import type { Db } from '../store/db.ts';
import { newId } from '../store/ids.ts';
import type { SecretBox } from '../store/secrets.ts';
import type { TargetRecord } from '../store/targets.ts';
import { TargetStore } from '../store/targets.ts';
import { acquireLease, releaseLease } from '../sync/lease.ts';
import { openApp as openAppDefault } from './apps.ts';
import { compareTarget } from './compare.ts';
import { openConnection, targetSettings } from './config.ts';
import type { DeliveryTarget, RoundReport } from './delivery.ts';
import { Delivery, ingestFeed } from './delivery.ts';
import { kindName } from './scope.ts';
import type { AppConnection, TargetApp, TargetKind } from './types.ts';
import { TargetError } from './types.ts';

export interface TargetWorkerOptions {
  holder: string;
  logger?: Logger;
  /** how often targets are looked at when idle */
  tickMs?: number;
  leaseMs?: number;
  /** pieces of work per round (default: 50 per unit of concurrency, at least 200) */
  roundSize?: number;
  openApp?: (kind: TargetKind, conn: AppConnection) => TargetApp;
  /** unavailability this long raises an alert */
  outageAlertMs?: number;
}


/** A running comparison's progress, as summary keys. */
const PROGRESS_KEYS: Record<string, string> = {
  'application users': 'readAppUsers',
  'application groups': 'readAppGroups',
  'group members': 'readGroupMembers',
  'directory users': 'readDirectoryUsers',
};

/** Back-off of an unavailable application after `failures` failed rounds: 5 s, 10 s, 20 s, … up to 5 min. */
export function outageDelayMs(failures: number): number {
  return Math.min(5_000 * 2 ** Math.max(0, failures - 1), 5 * 60_000);
}

interface OpenTarget {
  app: TargetApp;
  updatedAt: string;
}

export class TargetWorker {
  readonly store: TargetStore;
  private timer: NodeJS.Timeout | undefined;
  private readonly busy = new Map<string, Promise<void>>();
  private readonly apps = new Map<string, OpenTarget>();
  private stopping = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly opts: TargetWorkerOptions,
  ) {
    this.store = new TargetStore(db);
  }

  private started = false;

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick()
        .catch((e) => this.opts.logger?.error({ err: e }, 'target worker tick failed'))
        .finally(() => {
          if (!this.stopping && !this.timer) this.schedule(this.opts.tickMs ?? 1000);
        });
    }, ms);
  }

  /** Look at the targets now (an administrator's change, new work). */
  poke(): void {
    if (this.started && !this.stopping) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.busy.values()]);
    for (const t of this.apps.values()) await t.app.close?.().catch(() => {});
    this.apps.clear();
  }

  /** Start work for every target that has none running here. Each runs on its own: a slow one holds no other back. */
  async tick(): Promise<void> {
    if (this.stopping) return;
    const targets = await this.store.list();
    const maxSeq = await this.store.maxFeedSeq();
    const now = new Date();
    for (const t of targets) {
      if (!t.enabled || this.busy.has(t.id)) continue;
      // an idle target takes no lease: on SQLite every lease is a write on the writer SCIM shares
      if (!(await this.hasWork(t, maxSeq, now))) continue;
      const p = this.runTarget(t)
        .catch((e) => this.opts.logger?.error({ err: e, target: t.id }, 'target delivery failed'))
        .finally(() => this.busy.delete(t.id));
      this.busy.set(t.id, p);
    }
  }

  /** For tests and the command line: one tick, and wait for the work it started. */
  async runOnce(): Promise<void> {
    await this.tick();
    await Promise.allSettled([...this.busy.values()]);
  }

  private app(t: TargetRecord): TargetApp {
    const known = this.apps.get(t.id);
    if (known && known.updatedAt === t.updatedAt) return known.app;
    void known?.app.close?.();
    const settings = targetSettings(t.settings);
    const conn = openConnection(t.id, settings, this.box);
    const app = this.opts.openApp ? this.opts.openApp(t.kind as TargetKind, conn) : openAppDefault(t.kind as TargetKind, conn, { concurrency: settings.concurrency, signal: this.abort.signal });
    this.apps.set(t.id, { app, updatedAt: t.updatedAt });
    return app;
  }

  private get leaseMs(): number {
    return this.opts.leaseMs ?? 15_000;
  }

  private lease(t: { id: string }): Promise<boolean> {
    return acquireLease(this.db, `target:${t.id}`, this.opts.holder, this.leaseMs);
  }

  /** Whether a target has anything to do now; reads only. */
  private async hasWork(t: TargetRecord, maxSeq: number, now: Date): Promise<boolean> {
    if (await this.store.nextQueuedComparison(t.id)) return true;
    if (t.phase !== 'active') return false;
    if (this.scheduledComparisonDue(t, now)) return true;
    if (maxSeq > t.cursorSeq) return true;
    if (t.paused || (t.status.unavailableUntil && new Date(t.status.unavailableUntil) > now)) return false;
    return (await this.store.dueWork(t.id, now.toISOString(), 1)).length > 0;
  }

  private scheduledComparisonDue(t: TargetRecord, now: Date): boolean {
    const s = targetSettings(t.settings);
    if (t.phase !== 'active' || t.paused || s.comparisonSchedule.kind === 'off') return false;
    const last = t.status.lastScheduledComparisonAt ? new Date(t.status.lastScheduledComparisonAt) : null;
    const due = nextRun(s.comparisonSchedule, last ?? new Date(t.createdAt), now);
    return due !== null && due <= now;
  }

  /** One target's turn: a comparison, or delivery rounds until nothing is due. */
  async runTarget(initial: TargetRecord): Promise<void> {
    if (!(await this.lease(initial))) return;
    // renewed while working (a round against a slow application, a comparison of a large one); a lease
    // found lost stops the work before the next user, so another instance never works alongside
    let lost = false;
    const renew = setInterval(
      () =>
        void this.lease(initial)
          .then((ok) => (lost ||= !ok))
          .catch(() => {}),
      Math.max(500, this.leaseMs / 3),
    );
    try {
      let t: TargetRecord | undefined = initial;
      for (;;) {
        if (this.stopping) return;
        t = await this.store.get(initial.id);
        if (!t || !t.enabled) return;
        const now = new Date();
        await this.queueScheduledComparison(t, now);
        const comparison = await this.store.nextQueuedComparison(t.id);
        if (comparison) {
          await this.runComparison(t, comparison.id, comparison.mode);
          continue;
        }
        if (t.phase !== 'active') return;
        // paused: new changes still become work (the backlog shows what waits), nothing is sent
        if (t.paused) {
          await this.ingestAll(t);
          return;
        }
        if (t.status.unavailableUntil && new Date(t.status.unavailableUntil) > now) return;
        const more = await this.deliveryRound(t, () => lost || this.stopping);
        if (!more || lost) return;
      }
    } finally {
      clearInterval(renew);
      await releaseLease(this.db, `target:${initial.id}`, this.opts.holder).catch(() => {});
    }
  }

  private deliveryTarget(t: TargetRecord): DeliveryTarget {
    return { id: t.id, name: t.name, kind: t.kind as TargetKind, settings: targetSettings(t.settings) };
  }

  /** Turn every change-feed row after the target's cursor into work. */
  private async ingestAll(t: TargetRecord): Promise<void> {
    let cursor = t.cursorSeq;
    // Rows after the cursor already pruned (the target was disabled while retention ran): what they
    // said is unknown, so every user and group is looked at again.
    const oldest = await this.store.oldestFeedSeq();
    if (oldest !== null && oldest > cursor + 1) {
      this.opts.logger?.warn({ target: t.id, cursor, oldest }, 'change-feed rows the target had not read were pruned; every user and group is checked again');
      cursor = await this.db.transaction(async (trx) => {
        const max = await this.store.maxFeedSeq(trx);
        await this.store.update(trx, t.id, { cursorSeq: max });
        await this.store.enqueueEverything(trx, t.id);
        return max;
      });
    }
    for (;;) {
      const r = await ingestFeed(this.store, this.deliveryTarget(t), cursor);
      cursor = r.cursor;
      if (r.rows < 5000) break;
    }
  }

  /** Ingest the feed, do one round; true when more work may be due at once. */
  private async deliveryRound(t: TargetRecord, stop: () => boolean): Promise<boolean> {
    const dt = this.deliveryTarget(t);
    let app: TargetApp;
    try {
      app = this.app(t);
    } catch (e) {
      await this.store.setStatus(t.id, { lastError: `cannot open the connection: ${(e as Error).message}` });
      return false;
    }
    const delivery = new Delivery(this.store, dt, app);
    await this.ingestAll(t);
    const size = this.opts.roundSize ?? Math.max(200, dt.settings.concurrency * 50);
    const report = await delivery.round(size, new Date(), stop);
    await this.afterRound(t, report);
    return !report.appError && report.taken >= size;
  }

  private async afterRound(t: TargetRecord, report: RoundReport): Promise<void> {
    const now = new Date();
    const app = kindName(t.kind as TargetKind);
    if (report.appError) {
      const failures = (t.status.failures ?? 0) + 1;
      const wait = Math.max(report.appError.retryAfterMs ?? 0, outageDelayMs(failures));
      const since = t.status.unavailableSince ?? now.toISOString();
      await this.store.setStatus(t.id, {
        failures,
        unavailableSince: since,
        unavailableUntil: new Date(now.getTime() + wait).toISOString(),
        lastError: report.appError.message,
      });
      this.opts.logger?.warn({ target: t.id, err: report.appError.message, retryInMs: wait }, 'target application unavailable');
      if (now.getTime() - new Date(since).getTime() >= (this.opts.outageAlertMs ?? 10 * 60_000)) {
        await raiseAlert(this.db, {
          kind: 'target-unavailable',
          dedupeKey: `target-unavailable:${t.id}:${since}`,
          subject: `${app} target '${t.name}' has been unavailable since ${since}`,
          message: `usersync cannot deliver to the ${app} target '${t.name}' (${report.appError.message}). Nothing is lost: the changes wait and are delivered when it answers again.`,
          details: { target: t.id, since, error: report.appError.message },
        });
      }
    } else if (report.taken > 0 && (t.status.failures || t.status.unavailableSince)) {
      await this.store.setStatus(t.id, { failures: undefined, unavailableSince: undefined, unavailableUntil: undefined, lastError: undefined, lastDeliveryAt: now.toISOString() });
    } else if (report.done > 0) await this.store.setStatus(t.id, { lastDeliveryAt: now.toISOString() });
    if (report.parked.length) {
      const day = now.toISOString().slice(0, 10);
      const byCode = new Map<string, { key: string; error: string }[]>();
      for (const p of report.parked) byCode.set(p.code, [...(byCode.get(p.code) ?? []), p]);
      for (const [code, list] of byCode) {
        const first = list[0]!;
        await raiseAlert(this.db, {
          kind: 'target-parked',
          dedupeKey: `target-parked:${t.id}:${code}:${day}`,
          subject: code === 'licence' ? `${app} target '${t.name}' has no licence seat left` : `${app} target '${t.name}' parked changes (${code})`,
          message: `${list.length} change(s) for the ${app} target '${t.name}' could not be delivered and are parked, e.g.: ${first.error}. Other users are delivered meanwhile. Fix the cause, then retry the parked changes on the target's page.`,
          details: { target: t.id, code, count: list.length, example: first },
        });
      }
    }
  }

  private async queueScheduledComparison(t: TargetRecord, now: Date): Promise<void> {
    if (!this.scheduledComparisonDue(t, now)) return;
    const s = targetSettings(t.settings);
    await this.db.transaction((trx) => this.store.queueComparison(trx, { id: newId(), targetId: t.id, mode: s.comparisonFix ? 'fix' : 'report', requestedBy: 'schedule' }));
    await this.store.setStatus(t.id, { lastScheduledComparisonAt: now.toISOString() });
  }

  private async runComparison(t: TargetRecord, id: string, mode: 'report' | 'fix'): Promise<void> {
    const started = new Date();
    await this.store.setComparison(id, { status: 'running', startedAt: started.toISOString() });
    try {
      const app = this.app(t);
      // a target not yet adopted only reports: nothing changes before an administrator adopts
      const effective = t.phase === 'active' ? mode : 'report';
      // progress while it reads, in the summary (replaced by the counts at the end)
      const progress: Record<string, number> = {};
      let lastWrite = 0;
      const onProgress = (phase: string, done: number) => {
        progress[PROGRESS_KEYS[phase] ?? phase] = done;
        if (Date.now() - lastWrite < 1000) return;
        lastWrite = Date.now();
        void this.store.setComparison(id, { summary: { ...progress } }).catch(() => {});
      };
      const result = await compareTarget(this.store, this.deliveryTarget(t), app, effective, onProgress);
      await this.store.writeComparisonItems(id, result.items);
      await this.store.setComparison(id, { status: 'done', endedAt: new Date().toISOString(), mode: effective, summary: { ...result.summary, queued: result.queued } });
      if (t.phase === 'new') await this.db.transaction((trx) => this.store.update(trx, t.id, { phase: 'awaiting-adoption' }));
    } catch (e) {
      const message = e instanceof TargetError ? e.message : `${(e as Error).message}`;
      await this.store.setComparison(id, { status: 'failed', endedAt: new Date().toISOString(), error: message });
      this.opts.logger?.warn({ target: t.id, err: message }, 'target comparison failed');
    }
  }
}
