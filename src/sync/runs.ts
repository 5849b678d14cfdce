// Runs: one sync execution with counters, log lines and peak memory. For SCIM push a run is a window of
// activity that ends after a quiet period; pull sources (later) open and close their runs explicitly.

import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import type { Database } from '../store/schema.ts';

export type RunCounters = Partial<
  Record<
    | 'read'
    | 'created'
    | 'updated'
    | 'activated'
    | 'deactivated'
    | 'deleted'
    | 'conflicts'
    | 'groupsCreated'
    | 'groupsRenamed'
    | 'groupsOrphaned'
    | 'membershipsAdded'
    | 'membershipsRemoved',
    number
  >
>;

type Trx = Kysely<Database>;

export class RunRecorder {
  constructor(
    private readonly db: Db,
    private readonly holder: string,
    private readonly quietPeriodMs: number,
  ) {}

  /** The open SCIM push run of a connector, opened when there is none. */
  async pushRun(trx: Trx, connectorId: string): Promise<string> {
    const open = await trx
      .selectFrom('runs')
      .select('id')
      .where('connector_id', '=', connectorId)
      .where('trigger', '=', 'scim-push')
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (open) return open.id;
    const id = randomUUID();
    const at = now();
    await trx
      .insertInto('runs')
      .values({
        id,
        connector_id: connectorId,
        trigger: 'scim-push',
        status: 'running',
        started_at: at,
        ended_at: null,
        last_activity_at: at,
        counters: '{}',
        peak_rss: process.memoryUsage().rss,
        holder: this.holder,
        error: null,
      })
      .execute();
    return id;
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

  /** End push runs that have been quiet for the quiet period. */
  async closeQuiet(): Promise<void> {
    const cutoff = new Date(Date.now() - this.quietPeriodMs).toISOString();
    await this.db.kysely
      .updateTable('runs')
      .set({ status: 'succeeded', ended_at: now() })
      .where('trigger', '=', 'scim-push')
      .where('status', '=', 'running')
      .where('last_activity_at', '<', cutoff)
      .execute();
  }
}
