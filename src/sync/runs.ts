// Runs: one sync execution with counters, log lines and peak memory. For SCIM push a run is a window of
// activity that ends after a quiet period; full passes (settings change, manual) open and close their own.

import { newId } from '../store/ids.ts';
import type { Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import type { Database } from '../store/schema.ts';

export type RunCounters = Partial<
  Record<
    | 'read'
    | 'fetched'
    | 'mirrorCreated'
    | 'mirrorUpdated'
    | 'mirrorDeleted'
    | 'mirrorMembershipsAdded'
    | 'mirrorMembershipsRemoved'
    | 'created'
    | 'updated'
    | 'adopted'
    | 'activated'
    | 'deactivated'
    | 'deleted'
    | 'skipped'
    | 'conflicts'
    | 'held'
    | 'seatsHeld'
    | 'groupsCreated'
    | 'groupsRenamed'
    | 'groupsOrphaned'
    | 'groupsDeleted'
    | 'membershipsAdded'
    | 'membershipsRemoved',
    number
  >
>;

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'aborted' | 'held';

type Trx = Kysely<Database>;

export class RunRecorder {
  constructor(
    private readonly db: Db,
    private readonly holder: string,
    private readonly quietPeriodMs: number,
  ) {}

  /** `phase`: a pull run opens `reading` (the reconciler leaves its marks alone until it has read everything) */
  async open(trx: Trx, connectorId: string, trigger: string, phase: '' | 'reading' = ''): Promise<string> {
    const id = newId();
    const at = now();
    await trx
      .insertInto('runs')
      .values({
        id,
        connector_id: connectorId,
        trigger,
        status: 'running',
        started_at: at,
        ended_at: null,
        last_activity_at: at,
        counters: '{}',
        peak_rss: process.memoryUsage().rss,
        holder: this.holder,
        error: null,
        phase,
      })
      .execute();
    return id;
  }

  /** The open SCIM push run of a connector, opened when there is none. */
  async pushRun(trx: Trx, connectorId: string): Promise<string> {
    const open = await trx
      .selectFrom('runs')
      .select('id')
      .where('connector_id', '=', connectorId)
      .where('trigger', '=', 'scim-push')
      .where('status', '=', 'running')
      .executeTakeFirst();
    return open ? open.id : this.open(trx, connectorId, 'scim-push');
  }

  async counters(trx: Trx, runId: string): Promise<RunCounters> {
    const row = await trx.selectFrom('runs').select('counters').where('id', '=', runId).executeTakeFirst();
    return row ? (JSON.parse(row.counters) as RunCounters) : {};
  }

  async addCounters(trx: Trx, runId: string, add: RunCounters): Promise<void> {
    const row = await trx.selectFrom('runs').select(['counters', 'peak_rss']).where('id', '=', runId).executeTakeFirst();
    if (!row) return;
    const counters = JSON.parse(row.counters) as Record<string, number>;
    for (const [k, v] of Object.entries(add)) counters[k] = (counters[k] ?? 0) + (v ?? 0);
    await trx
      .updateTable('runs')
      .set({ counters: JSON.stringify(counters), last_activity_at: now(), peak_rss: Math.max(Number(row.peak_rss), process.memoryUsage().rss) })
      .where('id', '=', runId)
      .execute();
  }

  async logLine(trx: Trx, runId: string, level: 'info' | 'warn' | 'error', message: string): Promise<void> {
    await trx.insertInto('run_logs').values({ run_id: runId, at: now(), level, message }).execute();
  }

  async finish(runId: string, status: RunStatus, error?: string): Promise<void> {
    await this.db.kysely
      .updateTable('runs')
      .set({ status, ended_at: now(), error: error ?? null, peak_rss: process.memoryUsage().rss })
      .where('id', '=', runId)
      .where('status', 'in', ['running', 'held'])
      .execute();
  }

  /** End push runs that have been quiet for the quiet period (held when changes wait for approval). */
  async closeQuiet(): Promise<void> {
    const cutoff = new Date(Date.now() - this.quietPeriodMs).toISOString();
    const quiet = await this.db.kysely
      .selectFrom('runs')
      .select('id')
      .where('trigger', '=', 'scim-push')
      .where('status', '=', 'running')
      .where('last_activity_at', '<', cutoff)
      .execute();
    for (const { id } of quiet) {
      const held = await this.db.kysely.selectFrom('held_changes').select('seq').where('run_id', '=', id).where('status', '=', 'held').limit(1).execute();
      await this.finish(id, held.length ? 'held' : 'succeeded');
    }
  }

  /** Runs a killed instance left running are marked aborted; their work resumes from durable state. */
  async abortStale(staleAfterMs: number): Promise<void> {
    const cutoff = new Date(Date.now() - staleAfterMs).toISOString();
    const aborted = await this.db.kysely
      .updateTable('runs')
      // phase '' lets the reconciler take the run's marks: what it read is real, and is applied
      .set({ status: 'aborted', phase: '', ended_at: now(), error: 'the instance running it stopped' })
      .where('status', '=', 'running')
      .where('trigger', '!=', 'scim-push')
      .where('holder', '!=', this.holder)
      .where('last_activity_at', '<', cutoff)
      .returning(['connector_id', 'holder'])
      .execute();
    // the connector may run again at once, whatever lease time the stopped instance used
    for (const r of aborted) await this.db.kysely.deleteFrom('leases').where('name', '=', `source:${r.connector_id}`).where('holder', '=', r.holder).execute();
  }
}
