// When a pull connector runs by itself: every N minutes, by a cron expression (in a time zone), or never
// (manual and on-demand only). Pure: `nextRun` answers from the last start and the clock it is given.

import { CronExpressionParser } from 'cron-parser';

export type ScheduleSettings = { kind: 'off' } | { kind: 'interval'; minutes: number } | { kind: 'cron'; expression: string; timezone?: string };

export function validateSchedule(input: unknown): ScheduleSettings {
  if (input === null || input === undefined) return { kind: 'off' };
  if (typeof input !== 'object' || Array.isArray(input)) throw new Error("must be {kind: 'off'}, {kind: 'interval', minutes} or {kind: 'cron', expression, timezone?}");
  const s = input as Record<string, unknown>;
  switch (s.kind) {
    case 'off':
      return { kind: 'off' };
    case 'interval': {
      const m = s.minutes;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 7 * 24 * 60) throw new Error('interval minutes must be a whole number from 1 to 10080');
      return { kind: 'interval', minutes: m };
    }
    case 'cron': {
      if (typeof s.expression !== 'string' || !s.expression.trim()) throw new Error('a cron schedule needs an expression such as "*/10 * * * *"');
      const timezone = typeof s.timezone === 'string' && s.timezone ? s.timezone : undefined;
      if (timezone !== undefined) {
        try {
          new Intl.DateTimeFormat('en', { timeZone: timezone });
        } catch {
          throw new Error(`unknown time zone '${timezone}'`);
        }
      }
      const expression = s.expression.trim();
      if (expression.split(/\s+/).length < 5) throw new Error(`cron expression '${expression}' needs five fields (minute hour day month weekday)`);
      try {
        CronExpressionParser.parse(expression, timezone ? { tz: timezone } : {});
      } catch (e) {
        throw new Error(`cron expression '${expression}' is not valid: ${(e as Error).message}`);
      }
      return { kind: 'cron', expression, ...(timezone ? { timezone } : {}) };
    }
    default:
      throw new Error("kind must be 'off', 'interval' or 'cron'");
  }
}

/** When the next scheduled run is due, given when the last one started (null: never ran). */
export function nextRun(schedule: ScheduleSettings, lastStart: Date | null, now: Date): Date | null {
  switch (schedule.kind) {
    case 'off':
      return null;
    case 'interval':
      return lastStart ? new Date(lastStart.getTime() + schedule.minutes * 60_000) : now;
    case 'cron': {
      // the first occurrence after the last start; a connector that never ran waits for the next occurrence
      const from = lastStart ?? now;
      const it = CronExpressionParser.parse(schedule.expression, { currentDate: from, ...(schedule.timezone ? { tz: schedule.timezone } : {}) });
      return it.next().toDate();
    }
  }
}
