// Kill the service (SIGKILL) in the middle of delivering to Jira: after a restart the delivery resumes from
// what the store says, every user ends up created exactly once with all its memberships, nothing is
// parked, and every request still matches Atlassian's OpenAPI document.

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/store/secrets.ts';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import { startAtlassianFake } from '../support/atlassian/index.ts';
import type { ServiceProcess } from '../support/process.ts';
import { startServiceProcess, until } from '../support/process.ts';
import { Rig } from './support.ts';

describe('a SIGKILL during delivery', () => {
  let proc: ServiceProcess | undefined;
  let jira: AtlassianFake | undefined;
  let rig: Rig | undefined;

  afterAll(async () => {
    await proc?.kill('SIGKILL');
    await jira?.close();
    await rig?.close();
  });

  it('converges after a restart: each user created once, every membership there, nothing parked', async () => {
    const key = randomBytes(32);
    rig = await Rig.open('sqlite', new SecretBox([key]));
    jira = await startAtlassianFake('jira', { latencyMs: 3 });
    const USERS = 240;
    const ids: string[] = [];
    for (let i = 0; i < USERS; i++) ids.push(await rig.user(`k${String(i).padStart(3, '0')}@example.com`));
    await rig.group('kill-all', ids);
    await rig.group('kill-half', ids.slice(0, USERS / 2));
    await rig.sync();
    const targetId = await rig.addTarget('jira', jira, { concurrency: 8 });
    const dbFile = rig.store.url;
    const env = { DATABASE_URL: dbFile, USERSYNC_SECRET_KEY: key.toString('base64'), DATA_DIR: path.dirname(dbFile), USERSYNC_ADMIN_PASSWORD: 'a-long-enough-password-1' };

    proc = await startServiceProcess(env);
    const created = () => jira!.requests.filter((r) => r.method === 'POST' && r.path === '/rest/api/2/user' && r.status === 201).length;
    await until('a third of the users created', 60_000, async () => created() >= USERS / 3);
    await proc.kill('SIGKILL');
    const atKill = created();
    expect(atKill).toBeLessThan(USERS);

    proc = await startServiceProcess(env);
    await until(() => `all ${USERS} users in Jira (have ${jira!.users().length})`, 90_000, async () => jira!.users().length === USERS && jira!.members('kill-all').length === USERS && jira!.members('kill-half').length === USERS / 2);
    const work = await until('the work queue empty', 30_000, async () => {
      const w = await rig!.targets.workCounts(targetId);
      return w.pending === 0 ? w : undefined;
    });
    expect(work.parked).toBe(0);

    // once each: a create repeated after the kill is answered 'exists' and recognised as usersync's own
    expect(created()).toBe(USERS);
    expect(jira.users().every((u) => u.active)).toBe(true);
    expect(await rig.targets.ledgerCounts(targetId)).toEqual({ user: USERS, group: 2, membership: USERS + USERS / 2 });
    expect(jira.violations).toEqual([]);
  }, 180_000);
});
