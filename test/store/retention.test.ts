// Retention on both stores: exactly the rows older than their settings go (ended runs with their log lines
// and decided held changes, change-feed rows, audit entries); running and held runs stay whatever their
// age; 0 days keeps everything; the pass is audited.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';
import { prune } from '../../src/store/retention.ts';

const NOW = new Date('2026-11-22T12:00:00.000Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();

describe.each(DIALECTS)('retention on %s', (dialect) => {
  let store: TestStore;

  beforeEach(async () => {
    store = await openTestStore(dialect);
    const k = store.db.kysely;
    await k.insertInto('connectors').values({ id: 'c', name: 'C', kind: 'scim', settings: '{}', enabled: 1, created_at: daysAgo(400), updated_at: daysAgo(400) }).execute();
    const run = (id: string, ended: number | null, status: string) => ({
      id,
      connector_id: 'c',
      trigger: 'manual',
      status,
      started_at: daysAgo((ended ?? 0) + 1),
      ended_at: ended === null ? null : daysAgo(ended),
      last_activity_at: daysAgo(ended ?? 0),
      counters: '{}',
      peak_rss: 0,
      holder: 'h',
      error: null,
    });
    await k
      .insertInto('runs')
      .values([run('old-ok', 120, 'succeeded'), run('old-failed', 95, 'failed'), run('old-held', 200, 'held'), run('old-running', null, 'running'), run('recent', 10, 'succeeded')])
      .execute();
    for (const id of ['old-ok', 'old-failed', 'old-held', 'recent']) {
      await k.insertInto('run_logs').values([{ run_id: id, at: daysAgo(100), level: 'info', message: 'a' }, { run_id: id, at: daysAgo(100), level: 'info', message: 'b' }]).execute();
    }
    await k
      .insertInto('held_changes')
      .values([
        { run_id: 'old-ok', connector_id: 'c', user_id: 'u1', op: 'deactivate', data: '{}', status: 'approved' },
        { run_id: 'old-held', connector_id: 'c', user_id: 'u2', op: 'deactivate', data: '{}', status: 'held' },
      ])
      .execute();
    const feed = (at: string, i: number) => ({ at, connector_id: 'c', run_id: null, entity: 'user' as const, entity_id: `u${i}`, op: 'update', data: '{}' });
    await k.insertInto('change_feed').values([feed(daysAgo(200), 1), feed(daysAgo(91), 2), feed(daysAgo(89), 3), feed(daysAgo(1), 4)]).execute();
    await k
      .insertInto('audit_log')
      .values([daysAgo(500), daysAgo(366), daysAgo(300)].map((at, i) => ({ at, actor: 'a', action: 'x', target: String(i), details: '{}' })))
      .execute();
    await k
      .insertInto('alerts')
      .values([daysAgo(400), daysAgo(30)].map((at, i) => ({ at, kind: 'held-run', dedupe_key: `held-run:${i}`, connector_id: 'c', subject: 's', message: 'm', next_attempt_at: null, delivered_at: at })))
      .execute();
    await k
      .insertInto('target_events')
      .values([daysAgo(120), daysAgo(95), daysAgo(5)].map((at) => ({ target_id: 't', at, action: 'created', subject: 'ann', detail: '' })))
      .execute();
  });
  afterEach(async () => store?.cleanup());

  it('deletes exactly what is older than its setting, keeps running and held runs, and audits the pass', async () => {
    const r = await prune(store.db, { runsDays: 90, changeFeedDays: 90, auditDays: 365 }, NOW);
    expect(r).toEqual({ runs: 2, runLogs: 4, changeFeed: 2, audit: 2, alerts: 1, targetEvents: 2 });
    expect((await store.db.kysely.selectFrom('alerts').select('dedupe_key').execute()).map((a) => a.dedupe_key)).toEqual(['held-run:1']);
    const k = store.db.kysely;
    expect((await k.selectFrom('runs').select('id').orderBy('id').execute()).map((x) => x.id)).toEqual(['old-held', 'old-running', 'recent']);
    expect((await k.selectFrom('run_logs').select('run_id').distinct().orderBy('run_id').execute()).map((x) => x.run_id)).toEqual(['old-held', 'recent']);
    expect((await k.selectFrom('held_changes').select('run_id').execute()).map((x) => x.run_id)).toEqual(['old-held']);
    expect((await k.selectFrom('change_feed').select('entity_id').orderBy('seq').execute()).map((x) => x.entity_id)).toEqual(['u3', 'u4']);
    const audit = await k.selectFrom('audit_log').select(['target', 'action', 'details']).orderBy('seq').execute();
    expect(audit.map((a) => a.action)).toEqual(['x', 'retention.prune']);
    expect(JSON.parse(audit[1]!.details)).toMatchObject({ runs: 2, changeFeed: 2, audit: 2 });
    // a second pass finds nothing and writes nothing
    expect(await prune(store.db, { runsDays: 90, changeFeedDays: 90, auditDays: 365 }, NOW)).toEqual({ runs: 0, runLogs: 0, changeFeed: 0, audit: 0, alerts: 0, targetEvents: 0 });
    expect(await k.selectFrom('audit_log').select('seq').execute()).toHaveLength(2);
  });

  it('keeps everything of a kind whose setting is 0', async () => {
    expect(await prune(store.db, { runsDays: 0, changeFeedDays: 0, auditDays: 0 }, NOW)).toEqual({ runs: 0, runLogs: 0, changeFeed: 0, audit: 0, alerts: 0, targetEvents: 0 });
    expect(await store.db.kysely.selectFrom('runs').select('id').execute()).toHaveLength(5);
  });
});
