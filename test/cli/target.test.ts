// `usersync target …`: list targets with their backlog, show and retry parked changes, pause and resume,
// queue a comparison — each change audited with the operating-system user.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.ts';
import { openStore } from '../../src/store/db.ts';
import { TargetStore } from '../../src/store/targets.ts';
import { usersyncCli } from '../support/cli.ts';

describe('usersync target', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-target-cli-'));
  const env = { ...process.env, DATABASE_URL: path.join(dir, 'usersync.db'), USERSYNC_SECRET_KEY: '', LOG_LEVEL: 'warn' };
  let db: Db;
  let store: TargetStore;

  beforeAll(async () => {
    db = await openStore({ url: env.DATABASE_URL });
    store = new TargetStore(db);
    const at = new Date().toISOString();
    await db.transaction(async (trx) => {
      await store.insert(trx, { id: 'jira-prod', name: 'Jira', kind: 'jira', settings: {}, cursorSeq: 0 });
      await store.update(trx, 'jira-prod', { phase: 'active' });
      await trx.insertInto('directory_users').values({ id: 'u1', username: 'ann@example.com', username_key: 'ann@example.com', email: null, display_name: 'Ann', active: 1, attributes: '{}', owner_connector_id: null, source_id: null, in_scope: 1, created_at: at, updated_at: at }).execute();
      await store.upsertWork(trx, 'jira-prod', [{ key: 'u:u1', seq: 2 }]);
    });
    await db.kysely.updateTable('target_work').set({ parked_at: at, error_code: 'invalid', error: 'Jira needs an e-mail address', attempts: 1 }).where('key', '=', 'u:u1').execute();
  });
  afterAll(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists targets with what waits and what is parked', async () => {
    const r = await usersyncCli(env, 'target', 'list');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/jira-prod\s+\|?\s*Jira/);
    expect(r.stdout).toMatch(/active/);
    const parked = await usersyncCli(env, 'target', 'parked', 'jira-prod');
    expect(parked.stdout).toContain('ann@example.com');
    expect(parked.stdout).toContain('Jira needs an e-mail address');
  });

  it('retries parked changes, pauses and resumes, queues a comparison, all audited', async () => {
    const retry = await usersyncCli(env, 'target', 'retry', 'jira-prod');
    expect(retry.stdout).toMatch(/^1 parked change queued again/);
    expect(await store.parked('jira-prod', 10)).toEqual([]);
    expect((await usersyncCli(env, 'target', 'pause', 'jira-prod')).code).toBe(0);
    expect((await store.get('jira-prod'))!.paused).toBe(true);
    expect((await usersyncCli(env, 'target', 'resume', 'jira-prod')).code).toBe(0);
    expect((await store.get('jira-prod'))!.paused).toBe(false);
    const compare = await usersyncCli(env, 'target', 'compare', 'jira-prod', '--fix');
    expect(compare.stdout).toMatch(/queued \(repair\)/);
    const again = await usersyncCli(env, 'target', 'compare', 'jira-prod');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/queued or running already/);
    const actions = (await db.kysely.selectFrom('audit_log').select(['action', 'actor']).where('target', '=', 'target:jira-prod').orderBy('seq').execute()).map((a) => a.action);
    expect(actions).toEqual(['target.retry', 'target.pause', 'target.resume', 'target.compare']);
    const missing = await usersyncCli(env, 'target', 'pause', 'nope');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no target 'nope'/);
  });
});
