// Kill the service (SIGKILL) in the middle of a burst of writes: after a restart every write that was
// acknowledged is there, the store is consistent, and the reconciler converges.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { scimFetch } from '../../support/server.ts';
import type { ServiceProcess } from '../../support/process.ts';
import { startServiceProcess } from '../../support/process.ts';

describe('durability on SQLite', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-kill-'));
  const dbFile = path.join(dir, 'usersync.db');
  const env = { DATABASE_URL: dbFile, PUSH_QUIET_PERIOD_SECONDS: '1' };
  let proc: ServiceProcess | undefined;

  afterAll(async () => {
    await proc?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write across a SIGKILL', async () => {
    proc = await startServiceProcess(env);
    const [, base, token] = (await proc.waitFor(/SCIM Base URL[^:]*:\s+(\S+)\n\s+Bearer token[^:]*:\s+(usy_\S+)/)) as unknown as string[];
    expect(base).toBe(`${proc.origin}/scim/v2/default`);

    const group = await scimFetch(`${base}/Groups`, token!, { method: 'POST', body: { displayName: 'Burst' } });
    expect(group.status).toBe(201);

    const acknowledgedUsers: string[] = [];
    const acknowledgedMembers: string[] = [];
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const i = n++;
        try {
          const res = await scimFetch(`${base}/Users`, token!, { method: 'POST', body: { userName: `burst-${i}@example.com`, active: true } });
          if (res.status !== 201) continue;
          acknowledgedUsers.push(res.body.userName);
          const patch = await scimFetch(`${base}/Groups/${group.body.id}`, token!, {
            method: 'PATCH',
            body: { Operations: [{ op: 'Add', path: 'members', value: [{ value: res.body.id }] }] },
          });
          if (patch.status === 204) acknowledgedMembers.push(res.body.id);
        } catch {
          return; // the process is gone
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    // let the burst run, then kill the process while requests are in flight
    while (acknowledgedMembers.length < 150) await new Promise((r) => setTimeout(r, 10));
    await proc.kill('SIGKILL');
    stop = true;
    await Promise.all(workers);
    expect(acknowledgedUsers.length).toBeGreaterThanOrEqual(150);

    // The file is consistent before the service touches it again.
    const raw = new Database(dbFile);
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(raw.pragma('foreign_key_check')).toEqual([]);
    raw.close();

    proc = await startServiceProcess(env);
    for (const userName of acknowledgedUsers) {
      const res = await scimFetch(`${base!.replace(/http:\/\/[^/]+/, proc.origin)}/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`, token!);
      expect(res.body.totalResults, userName).toBe(1);
    }
    const members = await scimFetch(`${proc.origin}/scim/v2/default/Groups/${group.body.id}`, token!);
    const memberIds = new Set((members.body.members as { value: string }[]).map((m) => m.value));
    for (const id of acknowledgedMembers) expect(memberIds.has(id)).toBe(true);

    // The reconciler picks up where the killed process stopped: the directory converges on the mirror.
    // the killed process still holds the reconciler lease for up to ten seconds
    const deadline = Date.now() + 40_000;
    for (;;) {
      const check = new Database(dbFile, { readonly: true });
      const mirrorUsers = (check.prepare('SELECT count(*) AS n FROM mirror_users').get() as { n: number }).n;
      const dirUsers = (check.prepare('SELECT count(*) AS n FROM directory_users').get() as { n: number }).n;
      const mirrorMembers = (check.prepare('SELECT count(*) AS n FROM mirror_members').get() as { n: number }).n;
      const dirMembers = (check.prepare('SELECT count(*) AS n FROM directory_memberships').get() as { n: number }).n;
      const pending = (check.prepare('SELECT count(*) AS n FROM dirty_marks').get() as { n: number }).n;
      check.close();
      if (pending === 0 && mirrorUsers === dirUsers && mirrorMembers === dirMembers) break;
      if (Date.now() > deadline) throw new Error(`no convergence: ${JSON.stringify({ mirrorUsers, dirUsers, mirrorMembers, dirMembers, pending })}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
