// The target pages end to end, in Debian's Chromium against a real service (SQLite, a free port) and the
// fake Jira Data Center: add a Jira target, watch its first comparison reach "Awaiting adoption" with the
// one user Jira already has matched and the others missing, adopt, and see the users and the group
// arrive in Jira; a user Jira would refuse (no e-mail) is parked and offered for retry; the connection
// test; and what an auditor sees. What the pages do is checked through the fake Jira and the admin API.
// Screenshots go to test-results/screenshots/ (and docs/screenshots/ with UPDATE_SCREENSHOTS=1).

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import { startAtlassianFake } from '../support/atlassian/index.ts';
import { launchBrowser } from '../support/browser.ts';
import { until } from '../support/process.ts';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';
import { expectNamedFields, logIn, newContext, none, PASSWORD, seen, shot } from './support.ts';

describe('admin UI: targets', () => {
  let server: TestServer;
  let jira: AtlassianFake;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let adminToken = '';
  /** errors thrown in the pages: none is expected */
  const pageErrors: string[] = [];

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function api(path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(`${server.origin}/api${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${adminToken}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  beforeAll(async () => {
    [server, jira, browser] = await Promise.all([startTestServer('sqlite', { env: { LOGIN_RATE_PER_MINUTE: '1000' }, targetTickMs: 200 }), startAtlassianFake('jira'), launchBrowser()]);
    await server.service.accounts.create({ username: 'admin', password: PASSWORD, role: 'administrator' }, 'test');
    await server.service.accounts.create({ username: 'auditor', password: PASSWORD, role: 'auditor' }, 'test');
    adminToken = (await server.service.adminTokens.create('ui test', 'test')).token;
    // the directory: three users with addresses (two in a group), and one without, which Jira refuses
    for (const u of [
      { username: 'alice', email: 'alice@example.com', displayName: 'Alice Archer', groups: ['engineering'] },
      { username: 'bob', email: 'bob@example.com', displayName: 'Bob Baker', groups: ['engineering'] },
      { username: 'carol', email: 'carol@example.com', displayName: 'Carol Clark' },
      { username: 'dave', displayName: 'Dave Dunn' },
    ]) {
      const r = await api('/users', { method: 'POST', body: u });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    // Jira has alice already: the first comparison matches her by username
    jira.addUser({ name: 'alice', email: 'alice@example.com', displayName: 'Alice Archer' });
    context = await newContext(browser, pageErrors);
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  }, 120_000);

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
    await jira?.close();
  });

  it('adds a Jira target whose first comparison waits for adoption, matching the user Jira has', async () => {
    await logIn(page, server.origin, 'admin');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Targets' }).click();
    await seen(page.getByRole('heading', { name: 'Targets', level: 1 }));
    await seen(page.getByText('No targets yet.'));
    await page.getByRole('link', { name: 'Add target' }).click();

    await page.getByRole('radio', { name: /^Jira Data Center/ }).check();
    await page.getByLabel('Target name').fill('Jira DC');
    await expect.poll(() => page.getByLabel('Target ID').inputValue()).toBe('jira-dc');
    await page.getByLabel('Base URL').fill(jira.url);
    await page.getByRole('radio', { name: /^Personal access token/ }).check();
    await page.getByLabel('Personal access token', { exact: true }).fill(jira.token);
    // the Jira options are offered, the other applications' are not
    await seen(page.getByLabel('Default project lead'));
    await none(page.getByLabel('Verified domains (one per line)'));
    await none(page.getByLabel('Licence groups (one per line)'));
    await seen(page.getByText('Nothing is sent to Jira until the first comparison'));
    await expectNamedFields(page.getByRole('main'));
    await page.getByRole('button', { name: 'Create target' }).click();

    // the first comparison runs by itself; the page follows it
    await seen(page.getByRole('heading', { name: /Jira DC/, level: 1 }));
    await seen(page.getByRole('heading', { name: 'Latest comparison' }));
    await seen(page.getByRole('heading', { level: 1 }).getByText('Awaiting adoption'), 20_000);
    const summary = page.getByRole('table', { name: 'Comparison summary by category' });
    await seen(summary.getByRole('row', { name: /Users matched by username\s+1\b/ }));
    await seen(summary.getByRole('row', { name: /Users to create\s+2\b/ }));
    await seen(summary.getByRole('row', { name: /Users the application would refuse\s+1\b/ }));
    await seen(summary.getByRole('row', { name: /Groups to create\s+1\b/ }));
    // the items of one category
    await page.getByLabel('Category', { exact: true }).selectOption('user-missing');
    const items = page.getByRole('table', { name: 'Items: Users to create' });
    await seen(items.getByRole('cell', { name: 'carol', exact: true }));
    await none(items.getByRole('cell', { name: 'alice', exact: true }));
    await page.getByLabel('Category', { exact: true }).selectOption('');
    // nothing has been sent yet
    expect(jira.users().map((u) => u.name)).toEqual(['alice']);
    expect(jira.groups()).not.toContain('engineering');
    await shot(page, 'target-comparison');
  });

  it('adopts the matches after a confirmation, and delivers the directory to Jira', async () => {
    await page.getByRole('button', { name: 'Adopt 1 match and start delivery' }).click();
    const dialog = page.getByRole('dialog', { name: /Adopt 1 match/ });
    await seen(dialog.getByText(/takes charge of the 1 user and 0 groups that already exist in Jira/));
    await seen(dialog.getByText(/deactivates a user who leaves the scope/));
    await dialog.getByRole('button', { name: 'Adopt and start delivery' }).click();
    await seen(page.getByText('Adopted 1 user, 0 groups and 0 memberships. Delivery has started.'));
    await seen(page.getByRole('heading', { level: 1 }).getByText('Delivering'));

    await until('bob and carol in Jira', 15_000, async () => {
      const names = jira.users().map((u) => u.name);
      return names.includes('bob') && names.includes('carol');
    });
    await until('the engineering group with alice and bob', 15_000, async () => jira.groups().includes('engineering') && jira.members('engineering').join(',') === 'alice,bob');
    expect(jira.user('bob')).toMatchObject({ email: 'bob@example.com', displayName: 'Bob Baker', active: true });
    // dave has no e-mail address: Jira is never asked
    expect(jira.user('dave')).toBeUndefined();
    const target = await api('/targets/jira-dc');
    expect(target.body).toMatchObject({ phase: 'active', owned: { user: 3, group: 1 } });
  });

  it('shows the user Jira would refuse as parked, and offers to retry it', async () => {
    // the page follows the delivery: the tab counts the parked work
    const tab = page.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: 'Parked (1)' });
    await seen(tab, 20_000);
    await tab.click();
    const parked = page.getByRole('table', { name: 'Parked users and groups' });
    const row = parked.getByRole('row', { name: /dave/ });
    await seen(row, 20_000);
    await seen(row.getByText('invalid', { exact: true }));
    await seen(row.getByText(/needs an e-mail address/));
    await seen(row.getByRole('button', { name: 'Retry dave' }));
    await seen(page.getByRole('button', { name: 'Retry all' }));
    await shot(page, 'target-parked');

    await row.getByRole('button', { name: 'Retry dave' }).click();
    await seen(page.getByText('1 queued again; they are tried in a moment.'));
    // still without an address, so parked again; the page follows it
    await until('dave parked again', 15_000, async () => (await api('/targets/jira-dc/parked')).body.parked.some((w: { name: string }) => w.name === 'dave'));
    await seen(parked.getByRole('row', { name: /dave/ }));
  });

  it('shows what the target did in Jira, and finds a name in it', async () => {
    await page.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: 'Activity' }).click();
    const activity = page.getByRole('table', { name: 'Target activity' });
    await seen(activity.getByRole('row', { name: /User created\s+bob/ }));
    await seen(activity.getByRole('row', { name: /Group created\s+engineering/ }));
    await seen(activity.getByRole('row', { name: /Parked\s+dave/ }).first());
    await shot(page, 'target-activity');
    await page.getByLabel('Find a user or group').fill('carol');
    await seen(activity.getByRole('row', { name: /User created\s+carol/ }));
    await none(activity.getByRole('row', { name: /bob/ }));
  });

  it('tests the connection, and lists the target with its backlog', async () => {
    await page.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('button', { name: 'Test connection' }).click();
    await seen(page.getByText('The connection works.'));
    await seen(page.getByRole('list', { name: 'Connection checks' }).getByRole('listitem').first());

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Targets' }).click();
    const list = page.getByRole('table', { name: 'Targets' });
    const row = list.getByRole('row', { name: /Jira DC/ });
    await seen(row.getByText('Delivering'));
    await seen(row.getByText('1 parked'));
    await seen(row.getByText('Available'));
    await shot(page, 'targets-list');
    expect(jira.violations).toEqual([]);
  });

  it('shows an auditor the target without any button that changes it', async () => {
    const auditorContext = await newContext(browser, pageErrors);
    try {
      const p = await auditorContext.newPage();
      p.setDefaultTimeout(15_000);
      await logIn(p, server.origin, 'auditor');
      await p.goto(`${server.origin}/targets`);
      await none(p.getByRole('link', { name: 'Add target' }));
      await p.getByRole('link', { name: 'Jira DC' }).click();
      await seen(p.getByRole('button', { name: 'Test connection' }));
      for (const name of ['Pause', 'Disable', 'Delete']) await none(p.getByRole('button', { name }));
      await p.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: 'Comparison' }).click();
      await seen(p.getByRole('heading', { name: 'Latest comparison' }));
      await none(p.getByRole('button', { name: /Run comparison/ }));
      await p.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: /^Parked/ }).click();
      await seen(p.getByRole('table', { name: 'Parked users and groups' }).getByRole('row', { name: /dave/ }));
      await none(p.getByRole('button', { name: /Retry/ }));
      await p.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: 'Settings' }).click();
      await seen(p.getByLabel('Base URL'));
      expect(await p.getByLabel('Base URL').isDisabled()).toBe(true);
      await none(p.getByRole('button', { name: 'Save settings' }));
    } finally {
      await auditorContext.close();
    }
  });

  it('asks before a scope change takes managed users out, and saves only when confirmed', async () => {
    await page.goto(`${server.origin}/targets/jira-dc`);
    await page.getByRole('navigation', { name: 'Target sections' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Groups', { exact: true }).selectOption('only');
    await page.getByLabel('Group names or patterns (one per line)').fill('no-such-group');
    await page.getByRole('radio', { name: 'Only members of a group it receives' }).check();
    await page.getByRole('button', { name: 'Save settings' }).click();
    const dialog = page.getByRole('dialog');
    await seen(dialog.getByRole('heading', { name: /Change the scope for \d+ managed users?\?/ }));
    await seen(dialog.getByText(/would be deactivated/));
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await api('/targets/jira-dc/settings')).body.groups.mode).toBe('all');

    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save and apply' }).click();
    await seen(page.getByText(/The settings are saved/));
    expect((await api('/targets/jira-dc/settings')).body.groups).toEqual({ mode: 'only', patterns: ['no-such-group'] });
  });
});
