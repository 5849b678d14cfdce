// Scheduled pull runs: every so often, each enabled pull connector whose schedule is due (by its last
// scheduled or manual start) gets a run. Several instances may tick at once: the run's lease lets one
// of them run it, and the others see it started.

import type { ScheduleSettings } from '../domain/schedule.ts';
import { nextRun } from '../domain/schedule.ts';
import type { Db } from '../store/db.ts';
import type { PullConnector, PullRunner } from './pull.ts';
import { BusyError } from './pull.ts';

export interface SchedulerOptions {
  scheduleOf: (connector: PullConnector) => ScheduleSettings | undefined;
  tickMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private readonly tickMs: number;

  constructor(
    private readonly db: Db,
    private readonly runner: PullRunner,
    private readonly opts: SchedulerOptions,
  ) {
    this.tickMs = opts.tickMs ?? 15_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Start the runs that are due at `at`; returns the connectors started. */
  async tick(at = new Date()): Promise<string[]> {
    if (this.ticking) return [];
    this.ticking = true;
    const started: string[] = [];
    try {
      const rows = await this.db.kysely.selectFrom('connectors').select(['id', 'kind', 'enabled', 'source']).where('kind', '!=', 'scim').where('enabled', '=', 1).execute();
      for (const row of rows) {
        const connector: PullConnector = { id: row.id, kind: row.kind, enabled: true, source: JSON.parse(row.source) as Record<string, unknown> };
        const schedule = this.opts.scheduleOf(connector);
        if (!schedule || schedule.kind === 'off') continue;
        const last = await this.db.kysely
          .selectFrom('runs')
          .select((eb) => eb.fn.max('started_at').as('at'))
          .where('connector_id', '=', row.id)
          .where('trigger', 'in', ['schedule', 'manual'])
          .executeTakeFirst();
        const due = nextRun(schedule, last?.at ? new Date(String(last.at)) : null, at);
        if (!due || due.getTime() > at.getTime()) continue;
        try {
          await this.runner.start(row.id, 'schedule');
          started.push(row.id);
        } catch (e) {
          if (!(e instanceof BusyError)) this.opts.log?.('warn', `scheduled run of connector ${row.id} did not start`, { err: String(e) });
        }
      }
    } catch (e) {
      this.opts.log?.('error', 'scheduler tick failed', { err: String(e) });
    } finally {
      this.ticking = false;
    }
    return started;
  }
}
