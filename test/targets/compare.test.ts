// Full comparisons against the Jira fake: the cut-over of an application that already has users (report
// only, then adoption), and repairs after manual edits in the application, which restore what usersync
// owns and leave the rest alone.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import { startAtlassianFake } from '../support/atlassian/index.ts';
import { Rig } from './support.ts';

describe('full comparison of a Jira target', () => {
  let rig: Rig;
  let jira: AtlassianFake;

  beforeEach(async () => {
    rig = await Rig.open('sqlite');
    jira = await startAtlassianFake('jira');
  });
  afterEach(async () => {
    await rig.close();
    await jira.close();
    expect(jira.violations).toEqual([]);
  });

  const writes = () => jira.requests.filter((r) => r.method !== 'GET');

  it('cut-over: the first comparison reports matches and changes nothing; adoption starts delivery without duplicates', async () => {
    // Jira before usersync: two people by the same username, one under an old username with the same e-mail, one stranger
    jira.addUser({ name: 'ann@example.com', email: 'ann@example.com', displayName: 'Ann (old name)' });
    jira.addUser({ name: 'bo@example.com', email: 'bo@example.com', displayName: 'Bo', active: false });
    jira.addUser({ name: 'cyd.old', email: 'cyd@example.com', displayName: 'Cyd' });
    jira.addUser({ name: 'stranger', email: 'stranger@example.com', displayName: 'Stranger' });
    jira.addGroup('jira-software-users');
    jira.addMember('jira-software-users', 'ann@example.com');
    jira.addMember('jira-software-users', 'stranger');

    const ann = await rig.user('ann@example.com', { displayName: 'Ann Smith' });
    const bo = await rig.user('bo@example.com', { displayName: 'Bo' });
    const cyd = await rig.user('cyd@example.com', { displayName: 'Cyd' });
    const dee = await rig.user('dee@example.com', { displayName: 'Dee' });
    await rig.group('jira-software-users', [ann, bo, cyd, dee]);
    await rig.sync();
    const t = await rig.addTarget('jira', jira, {}, { adopt: false });

    const report = await rig.compare(t, 'report');
    expect(writes()).toEqual([]);
    expect(report.summary).toMatchObject({ 'user-match': 2, 'user-match-email': 1, 'user-missing': 1, 'user-unmanaged': 1, 'group-match': 1, 'membership-match': 1 });
    expect(report.items.find((i) => i.category === 'user-match-email')).toMatchObject({ remoteName: 'cyd.old', detail: { username: 'cyd@example.com' } });
    expect((await rig.targets.get(t))!.phase).toBe('awaiting-adoption');
    // nothing is delivered before adoption
    await rig.deliver();
    expect(writes()).toEqual([]);

    const adopted = await rig.adopt(t, report.comparisonId);
    expect(adopted).toEqual({ users: 3, groups: 1, memberships: 1 });
    await rig.deliver();
    const posts = writes().filter((r) => r.method === 'POST' && r.path === '/rest/api/2/user');
    expect(posts).toHaveLength(1); // only dee was created
    expect(jira.user('ann@example.com')).toMatchObject({ displayName: 'Ann Smith' });
    expect(jira.user('bo@example.com')!.active).toBe(true);
    expect(jira.user('cyd@example.com')).toMatchObject({ email: 'cyd@example.com' }); // renamed from cyd.old
    expect(jira.user('cyd.old')).toBeUndefined();
    expect(jira.members('jira-software-users')).toEqual(['ann@example.com', 'bo@example.com', 'cyd@example.com', 'dee@example.com', 'stranger']);
    expect(jira.user('stranger')).toMatchObject({ displayName: 'Stranger', active: true });
    expect(await rig.targets.workCounts(t)).toEqual({ pending: 0, parked: 0 });
  });

  it('adoption can leave some matches out: they stay unowned and are parked, not changed', async () => {
    jira.addUser({ name: 'keep@example.com', email: 'keep@example.com', displayName: 'Hands off' });
    await rig.user('keep@example.com', { displayName: 'Directory name' });
    await rig.sync();
    const t = await rig.addTarget('jira', jira, {}, { adopt: false });
    const report = await rig.compare(t, 'report');
    expect(await rig.adopt(t, report.comparisonId, ['keep@example.com'])).toEqual({ users: 0, groups: 0, memberships: 0 });
    await rig.deliver();
    expect(jira.user('keep@example.com')!.displayName).toBe('Hands off');
    expect((await rig.parked(t)).map((p) => p.errorCode)).toEqual(['not-owned']);
  });

  it('repairs manual edits to what it owns, and leaves the rest alone', async () => {
    const a = await rig.user('fay@example.com', { displayName: 'Fay' });
    const b = await rig.user('gus@example.com', { displayName: 'Gus' });
    const c = await rig.user('hub@example.com', { displayName: 'Hub' });
    await rig.group('eng', [a, b, c]);
    await rig.group('ops', [a]);
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.deliver();

    // an administrator edits Jira by hand
    jira.updateUser('fay@example.com', { displayName: 'Fay (edited)', active: false });
    jira.removeUser('gus@example.com');
    jira.removeMember('eng', 'hub@example.com');
    jira.removeGroup('ops');
    jira.addUser({ name: 'local.admin', email: 'local.admin@example.com', displayName: 'Local admin' });
    jira.addMember('eng', 'local.admin');
    jira.addGroup('jira-administrators');

    const report = await rig.compare(t, 'fix');
    expect(report.summary).toMatchObject({ 'user-drift': 1, 'user-owned-missing': 1, 'membership-missing': 2, 'group-owned-missing': 1, 'user-unmanaged': 1, 'group-unmanaged': 1, 'membership-extra': 1 });
    await rig.deliver();

    expect(jira.user('fay@example.com')).toMatchObject({ displayName: 'Fay', active: true });
    expect(jira.user('gus@example.com')).toMatchObject({ displayName: 'Gus', active: true });
    expect(jira.members('eng')).toEqual(['fay@example.com', 'gus@example.com', 'hub@example.com', 'local.admin']);
    expect(jira.members('ops')).toEqual(['fay@example.com']);
    // not owned: untouched
    expect(jira.user('local.admin')).toMatchObject({ displayName: 'Local admin', active: true });
    expect(jira.groups()).toContain('jira-administrators');

    // and a report afterwards finds nothing owned to repair
    const again = await rig.compare(t, 'report');
    for (const k of ['user-drift', 'user-owned-missing', 'membership-missing', 'group-owned-missing', 'user-missing', 'membership-to-add']) expect(again.summary[k] ?? 0).toBe(0);
  });

  it('a report changes nothing, even where it finds drift', async () => {
    const a = await rig.user('ian@example.com', { displayName: 'Ian' });
    await rig.group('eng', [a]);
    await rig.sync();
    const t = await rig.addTarget('jira', jira);
    await rig.deliver();
    jira.updateUser('ian@example.com', { displayName: 'Edited' });
    const before = writes().length;
    const report = await rig.compare(t, 'report');
    expect(report.summary['user-drift']).toBe(1);
    await rig.deliver();
    expect(writes().length).toBe(before);
    expect(jira.user('ian@example.com')!.displayName).toBe('Edited');
  });

  it('runs scheduled comparisons that repair, on their schedule only', async () => {
    const a = await rig.user('sam@example.com', { displayName: 'Sam' });
    await rig.group('eng', [a]);
    await rig.sync();
    const t = await rig.addTarget('jira', jira, { comparisonSchedule: { kind: 'interval', minutes: 60 } });
    await rig.deliver();
    jira.updateUser('sam@example.com', { displayName: 'Edited by hand' });
    // not due yet: the target was created just now
    await rig.deliver();
    expect(await rig.targets.comparisons(t, 10)).toEqual([]);
    // an hour later (the last scheduled one long ago)
    await rig.targets.setStatus(t, { lastScheduledComparisonAt: new Date(Date.now() - 61 * 60_000).toISOString() });
    await rig.deliver();
    await rig.deliver();
    const list = await rig.targets.comparisons(t, 10);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ mode: 'fix', status: 'done', requested_by: 'schedule' });
    expect(jira.user('sam@example.com')!.displayName).toBe('Sam');
  });
});
