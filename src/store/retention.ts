// Retention: ended runs (with their log lines and decided held changes), change-feed rows and audit
// entries (and alerts, which go with the audit's setting) older than their settings are deleted, a few thousand rows per statement so that no delete holds
// the writer for long. Runs still running or held for approval are kept whatever their age. 0 days keeps
// everything of that kind. (When targets read the change feed, rows a target has not read yet must stay:
// the feed's limit will then also be the slowest target cursor.)

import type { Db } from './db.ts';

export interface RetentionSettings {
  runsDays: number;
  changeFeedDays: number;
  auditDays: number;
}

export interface PruneResult {
  runs: number;
  runLogs: number;
  changeFeed: number;
  audit: number;
  alerts: number;
  targetEvents: number;
}

const CHUNK = 5000;
const RUN_CHUNK = 500;

function cutoff(days: number, now: Date): string {
  return new Date(now.getTime() - days * 86_400_000).toISOString();
}

/** Delete by `seq` order, CHUNK rows at a time, while rows older than `before` remain. */
async function pruneBySeq(db: Db, table: 'change_feed' | 'audit_log' | 'alerts' | 'target_events', before: string, keepFromSeq?: number): Promise<number> {
  let total = 0;
  for (;;) {
    let q = db.kysely.selectFrom(table).select('seq').where('at', '<', before);
    if (keepFromSeq !== undefined) q = q.where('seq', '<=', keepFromSeq);
    const rows = await q.orderBy('seq').limit(CHUNK).execute();
    if (rows.length === 0) return total;
    const last = rows[rows.length - 1]!.seq;
    const res = await db.kysely.deleteFrom(table).where('seq', '<=', last).where('at', '<', before).executeTakeFirst();
    total += Number(res.numDeletedRows);
    if (rows.length < CHUNK) return total;
  }
}

export async function prune(db: Db, settings: RetentionSettings, now = new Date()): Promise<PruneResult> {
  const result: PruneResult = { runs: 0, runLogs: 0, changeFeed: 0, audit: 0, alerts: 0, targetEvents: 0 };
  if (settings.runsDays > 0) {
    const before = cutoff(settings.runsDays, now);
    for (;;) {
      const ids = (
        await db.kysely.selectFrom('runs').select('id').where('ended_at', 'is not', null).where('ended_at', '<', before).where('status', 'not in', ['running', 'held']).limit(RUN_CHUNK).execute()
      ).map((r) => r.id);
      if (ids.length === 0) break;
      await db.transaction(async (trx) => {
        result.runLogs += Number((await trx.deleteFrom('run_logs').where('run_id', 'in', ids).executeTakeFirst()).numDeletedRows);
        await trx.deleteFrom('held_changes').where('run_id', 'in', ids).where('status', '!=', 'held').execute();
        result.runs += Number((await trx.deleteFrom('runs').where('id', 'in', ids).executeTakeFirst()).numDeletedRows);
      });
      if (ids.length < RUN_CHUNK) break;
    }
  }
  if (settings.changeFeedDays > 0) {
    // the feed is every target's input: rows a target has not taken in yet are kept, however old
    const slowest = await db.kysely.selectFrom('targets').select((eb) => eb.fn.min('cursor_seq').as('n')).where('enabled', '=', 1).executeTakeFirst();
    const keepFrom = slowest?.n === null || slowest?.n === undefined ? undefined : Number(slowest.n);
    result.changeFeed = await pruneBySeq(db, 'change_feed', cutoff(settings.changeFeedDays, now), keepFrom);
    // what the targets did, kept as long as the changes that caused it
    result.targetEvents = await pruneBySeq(db, 'target_events', cutoff(settings.changeFeedDays, now));
  }
  if (settings.auditDays > 0) {
    result.audit = await pruneBySeq(db, 'audit_log', cutoff(settings.auditDays, now));
    // long given up or delivered (retries end within two days)
    result.alerts = await pruneBySeq(db, 'alerts', cutoff(settings.auditDays, now));
  }
  if (result.runs + result.changeFeed + result.audit + result.alerts + result.targetEvents > 0) {
    await db.kysely
      .insertInto('audit_log')
      .values({ at: now.toISOString(), actor: 'system:retention', action: 'retention.prune', target: '', details: JSON.stringify({ ...result, settings }) })
      .execute();
  }
  return result;
}
