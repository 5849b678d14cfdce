// The admin UI end to end: Debian's Chromium driving the built pages against a real service (SQLite in a
// temporary directory, a free port) and the Graph emulator. What an administrator does: log in; add a SCIM
// connector and copy its token; see Entra's provisioning traffic arrive in the directory; add a Graph
// connector, test it, Sync now with live progress, open the run; change a group rule, preview, save; and
// what an auditor may not do. Screenshots of the main pages go to test-results/screenshots/ (and to
// docs/screenshots/ with UPDATE_SCREENSHOTS=1).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../support/browser.ts';
import type { GraphEmulator } from '../support/graph-emulator/index.ts';
import { startGraphEmulator } from '../support/graph-emulator/index.ts';
import { until } from '../support/process.ts';
import type { ScimResponse, TestServer } from '../support/server.ts';
import { scimFetch, startTestServer } from '../support/server.ts';
import { logIn as signIn, newContext, none, PASSWORD, seen, shot as screenshot } from './support.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const ENTRA_HEADERS = { 'content-type': 'application/scim+json; charset=utf-8', adscimversion: '6.0' };

describe('admin UI', () => {
  let server: TestServer;
  let emu: GraphEmulator;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** the SCIM connector made in the UI, and the token copied from it */
  let scimToken = '';
  /** errors thrown in the pages: none is expected */
  const pageErrors: string[] = [];

  /** A screenshot of the page's top (or, with keepScroll, of where the test is). */
  const shot = (name: string, p: Page = page, keepScroll = false): Promise<void> => screenshot(p, name, keepScroll);
  const logIn = (p: Page, username: string): Promise<void> => signIn(p, server.origin, username);

  async function directoryUser(username: string) {
    return server.service.db.kysely.selectFrom('directory_users').select(['id', 'username']).where('username', '=', username).executeTakeFirst();
  }

  beforeAll(async () => {
    [server, emu, browser] = await Promise.all([startTestServer('sqlite', { env: { LOGIN_RATE_PER_MINUTE: '1000' } }), startGraphEmulator(), launchBrowser()]);
    await server.service.accounts.create({ username: 'admin', password: PASSWORD, role: 'administrator' }, 'test');
    await server.service.accounts.create({ username: 'auditor', password: PASSWORD, role: 'auditor' }, 'test');
    emu.state.seed({ users: 60, groups: 6, memberships: 150, nestedGroups: 1, randomSeed: 11 });
    context = await newContext(browser, pageErrors);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.origin });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
  }, 120_000);

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
    await emu?.close();
  });

  it('refuses a wrong password with a sentence, then logs in', async () => {
    await page.goto(`${server.origin}/`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await seen(page.getByRole('alert').filter({ hasText: 'The username or the password is not right.' }));
    await shot('login');
    await logIn(page, 'admin');
    await seen(page.getByRole('link', { name: 'Entra ID' }));
  });

  it('adds a SCIM connector and shows its SCIM Base URL and token once, with Copy buttons', async () => {
    await page.getByRole('link', { name: 'Add connector' }).click();
    await page.getByLabel(/^SCIM 2\.0/).check();
    await page.getByLabel('Connector name').fill('Contoso SCIM');
    await expect.poll(() => page.getByLabel('Connector ID').inputValue()).toBe('contoso-scim');
    await page.getByRole('button', { name: 'Create connector' }).click();

    await expect.poll(() => page.getByRole('textbox', { name: 'SCIM Base URL' }).inputValue()).toBe(`${server.origin}/scim/v2/contoso-scim`);
    await seen(page.getByText('it will not be shown again'));
    const shown = await page.getByRole('textbox', { name: 'Bearer token' }).inputValue();
    expect(shown).toMatch(/^\S{20,}$/);
    await page.getByRole('button', { name: 'Copy Bearer token' }).click();
    await seen(page.getByText('Bearer token copied to the clipboard.'));
    scimToken = await page.evaluate<string>('navigator.clipboard.readText()');
    expect(scimToken).toBe(shown);
    await shot('scim-connector-created');

    await page.getByRole('link', { name: /open the connector/ }).click();
    await seen(page.getByRole('cell', { name: 'first token' }));
    await seen(page.getByRole('button', { name: 'Rotate token first token' }));
  });

  it('shows the users and groups Entra ID provisions over SCIM in the Directory', async () => {
    const base = `${server.origin}/scim/v2/contoso-scim`;
    const entra = (method: string, p: string, body?: unknown): Promise<ScimResponse> => scimFetch(`${base}${p}`, scimToken, { method, headers: ENTRA_HEADERS, ...(body !== undefined ? { body } : {}) });
    // Entra looks a user up before creating it, then creates it, then the group, then adds members
    const people = [
      { userName: 'ann.lee@contoso.com', given: 'Ann', family: 'Lee', department: 'Engineering' },
      { userName: 'bo.chen@contoso.com', given: 'Bo', family: 'Chen', department: 'Sales' },
    ];
    const ids: string[] = [];
    for (const person of people) {
      const lookup = await entra('GET', `/Users?filter=${encodeURIComponent(`userName eq "${person.userName}"`).replace(/%20/g, '+')}`);
      expect(lookup.status).toBe(200);
      expect(lookup.body.totalResults).toBe(0);
      const created = await entra('POST', '/Users', {
        schemas: [USER_SCHEMA, ENTERPRISE],
        externalId: person.given.toLowerCase(),
        userName: person.userName,
        active: true,
        displayName: `${person.given} ${person.family}`,
        emails: [{ primary: true, type: 'work', value: person.userName }],
        name: { formatted: `${person.given} ${person.family}`, familyName: person.family, givenName: person.given },
        [ENTERPRISE]: { department: person.department },
      });
      expect(created.status, created.text).toBe(201);
      ids.push(created.body.id);
    }
    const group = await entra('POST', '/Groups', { schemas: [GROUP_SCHEMA], externalId: 'eng', displayName: 'Engineering', members: [] });
    expect(group.status, group.text).toBe(201);
    const patched = await entra('PATCH', `/Groups/${group.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value: ids.map((value) => ({ value })) }] });
    expect(patched.status, patched.text).toBe(204);
    await until('the reconciler to bring ann.lee into the directory', 15_000, () => directoryUser('ann.lee@contoso.com'));
    await until('the memberships', 15_000, async () => {
      const rows = await server.service.db.kysely.selectFrom('directory_memberships as m').innerJoin('directory_groups as g', 'g.id', 'm.group_id').select('m.user_id').where('g.name', '=', 'Engineering').execute();
      return rows.length === 2;
    });

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Directory' }).click();
    await page.getByLabel('Search users by username').fill('contoso.com');
    await page.getByRole('button', { name: 'Search' }).click();
    await seen(page.getByRole('link', { name: 'bo.chen@contoso.com' }));
    await shot('directory-users');
    await page.getByRole('link', { name: 'ann.lee@contoso.com' }).click();
    await seen(page.getByRole('heading', { name: /ann\.lee@contoso\.com/, level: 1 }));
    const groups = page.getByRole('table', { name: 'Groups of ann.lee@contoso.com' });
    await seen(groups.getByRole('row', { name: /Engineering.*connector contoso-scim/ }));
    await seen(page.getByText('create user ann.lee@contoso.com'));
    await shot('directory-user');

    await page.getByRole('link', { name: 'Engineering' }).click();
    await seen(page.getByRole('heading', { name: 'Engineering', level: 1 }));
    const members = page.getByRole('table', { name: 'Members of Engineering' });
    await seen(members.getByRole('link', { name: 'ann.lee@contoso.com' }));
    await seen(members.getByRole('link', { name: 'bo.chen@contoso.com' }));
    await shot('directory-group');

    await page.getByRole('link', { name: 'Directory', exact: true }).first().click();
    await page.getByRole('navigation', { name: 'Directory views' }).getByRole('link', { name: 'Groups' }).click();
    await page.getByLabel('Search groups by name').fill('engin');
    await page.getByRole('button', { name: 'Search' }).click();
    await seen(page.getByRole('row', { name: /Engineering\s+2\s+contoso-scim/ }));
  });

  it('offers the LDAP presets when adding an LDAP connector', async () => {
    await page.goto(`${server.origin}/connectors/new`);
    await page.getByLabel(/^LDAP/).check();
    await seen(page.getByLabel('Bind DN'));
    await expect.poll(() => page.getByLabel('User filter').inputValue()).toBe('(&(objectCategory=person)(objectClass=user))');
    await page.getByLabel('OpenLDAP and others').check();
    await expect.poll(() => page.getByLabel('User filter').inputValue()).toBe('(objectClass=inetOrgPerson)');
    await expect.poll(() => page.getByLabel('Username', { exact: true }).inputValue()).toBe('uid');
    await page.getByLabel('Connector name').fill('Corporate LDAP');
    await page.getByRole('button', { name: 'Create connector' }).click();
    // the service's problems are shown next to their fields
    await seen(page.getByRole('alert').filter({ hasText: 'invalid settings' }));
    await seen(page.locator('.field-invalid').filter({ hasText: 'Server URL' }));
    await shot('ldap-connector-new');
  });

  it('adds a Graph connector, tests it, runs Sync now with live progress and opens the run', async () => {
    await page.goto(`${server.origin}/connectors/new`);
    await page.getByLabel(/^Microsoft Graph/).check();
    await page.getByLabel('Connector name').fill('Contoso Graph');
    await page.getByLabel('Tenant (directory) ID').fill(emu.tenantId);
    await page.getByLabel('Application (client) ID').fill(emu.clientId);
    await page.getByRole('textbox', { name: 'Client secret' }).fill(emu.clientSecret);
    await page.getByLabel('Cloud', { exact: true }).selectOption('custom');
    await page.getByLabel('Authority host').fill(emu.authorityHost);
    await page.getByLabel('Graph URL').fill(emu.url);
    await page.getByLabel('Extra CA certificates (PEM)').fill(emu.caCert);
    await page.getByLabel('Runs by itself').selectOption('off');
    await shot('graph-connector-new');
    await page.getByRole('button', { name: 'Create connector' }).click();

    await seen(page.getByText('The connector is created.'));
    await page.getByRole('button', { name: 'Test connection' }).click();
    await seen(page.getByText('The connection works.'));
    await seen(page.getByRole('list', { name: 'Connection checks' }).getByRole('listitem').filter({ hasText: 'passed' }));
    await shot('graph-connector-configuration', page, true);

    // slow the read down (the user list is throttled three times in a row) so that the progress can be watched
    emu.faults.throttle(/\/users/, { count: 3, retryAfter: 1 });
    await page.getByRole('button', { name: 'Sync now' }).click();
    await seen(page.getByRole('progressbar', { name: 'Sync progress' }));
    await seen(page.getByText(/Reading from the identity provider|Applying the rules to the directory/));
    await shot('sync-progress');
    await seen(page.getByRole('heading', { name: 'Sync finished' }), 30_000);
    await seen(page.getByText('The run ended: succeeded'));
    await page.getByRole('link', { name: 'Open the run' }).click();

    await seen(page.getByRole('heading', { name: /Run of .* succeeded/, level: 1 }));
    await seen(page.getByRole('term').filter({ hasText: 'users created' }));
    await seen(page.getByText(/full read: \d+ objects read/));
    await seen(page.getByRole('table', { name: 'Changes made by this run' }).getByText(/create user user1@contoso\.example/));
    await shot('run');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sync history' }).click();
    await page.getByRole('combobox', { name: 'Connector', exact: true }).selectOption('contoso-graph');
    await seen(page.getByRole('link', { name: /Sync now, succeeded/ }));
    await shot('sync-history');
  });

  it('changes a group rule, previews what it would do, and saves it', async () => {
    await page.goto(`${server.origin}/connectors/contoso-graph/users`);
    await seen(page.getByRole('heading', { name: 'Attribute mapping' }));
    await shot('user-sync-settings');
    await page.getByRole('link', { name: 'Group sync settings' }).click();
    await shot('group-sync-settings');
    // the regex tester: a pattern against sample names, in the page
    await page.getByLabel('Pattern to try').fill('group-[12]');
    await page.getByLabel('Sample group names (one per line)').fill('group-1\nGROUP-2\ngroup-3');
    await seen(page.getByText('2 of 3 names match the pattern.'));
    // an invalid pattern is shown next to the field before anything is sent
    await page.getByLabel('Never assign groups matching').fill('group-(1');
    await seen(page.getByText(/Unterminated group/).first());
    expect(await page.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(true);
    await page.getByLabel('Never assign groups matching').fill('group-1');
    await seen(page.getByRole('row', { name: /group-1\s+matches\s+left out: matches neverAssign pattern 'group-1'/ }));

    await page.getByRole('link', { name: 'Preview changes' }).click();
    await page.getByRole('button', { name: 'Run preview' }).click();
    const counters = page.getByRole('region', { name: 'What would change' });
    await seen(counters.getByRole('term').filter({ hasText: 'memberships removed' }), 20_000);
    await seen(page.getByRole('table', { name: 'Planned changes' }).getByText(/^remove .* from /).first());
    await shot('preview');
    const before = await server.service.db.kysely.selectFrom('connectors').select('settings').where('id', '=', 'contoso-graph').executeTakeFirstOrThrow();
    expect(before.settings).not.toContain('group-1');

    await page.getByRole('button', { name: 'Save settings' }).click();
    await seen(page.getByText('The settings are saved.'));
    const after = await server.service.db.kysely.selectFrom('connectors').select('settings').where('id', '=', 'contoso-graph').executeTakeFirstOrThrow();
    expect(JSON.parse(after.settings).group.neverAssign).toEqual(['group-1']);
    // the re-evaluation shows in the connector's history
    await page.getByRole('link', { name: 'Sync history' }).last().click();
    await seen(page.getByRole('link', { name: /Settings change/ }), 15_000);
  });

  it('shows the audit log and the settings pages', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Connectors' }).click();
    await seen(page.getByRole('link', { name: 'Contoso Graph' }));
    await seen(page.getByRole('link', { name: 'Last run of Contoso Graph: succeeded' }));
    await shot('connectors');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    await seen(page.getByRole('cell', { name: 'settings.update' }).first());
    await shot('audit-log');
    // the filter asks the service, which searches the whole log
    await page.getByLabel('Filter by actor, action or target').fill('token.create');
    await seen(page.getByRole('cell', { name: 'token.create' }).first());
    await expect.poll(async () => page.getByRole('cell', { name: 'settings.update' }).count()).toBe(0);
    await page.getByLabel('Filter by actor, action or target').fill('');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await seen(page.getByRole('cell', { name: 'auditor', exact: true }));
    await shot('settings-accounts');
    await page.getByRole('link', { name: 'API tokens' }).click();
    await page.getByLabel('Token label').fill('nightly report');
    await page.getByLabel('Token scope').selectOption('auditor');
    await page.getByRole('button', { name: 'Create API token' }).click();
    const token = await page.getByRole('textbox', { name: 'New API token' }).inputValue();
    const res = await fetch(`${server.origin}/api/runs?limit=1`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await shot('settings-api-tokens');
  });

  it('sets up a webhook for alerts, sends a test alert and lists it', async () => {
    const received: string[] = [];
    const hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    try {
      await page.getByRole('link', { name: 'Alerts' }).click();
      await page.getByLabel('Send alerts to a webhook').check();
      await page.getByLabel('Webhook URL').fill('not a url');
      await page.getByRole('button', { name: 'Save alert settings' }).click();
      await seen(page.getByText('must be an http:// or https:// URL').first());
      await page.getByLabel('Webhook URL').fill(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/usersync`);
      await page.getByRole('textbox', { name: 'Signing secret' }).fill('a shared signing secret');
      await page.getByRole('button', { name: 'Save alert settings' }).click();
      await seen(page.getByText('The alert settings are saved.'));
      await seen(page.getByText('One is stored. Leave this empty to keep it.'));
      await page.getByRole('button', { name: 'Send test alert' }).click();
      await seen(page.getByRole('list', { name: 'Test alert results' }).getByText('Webhook: delivered'));
      expect(received.some((b) => b.includes('Test alert'))).toBe(true);
      await seen(page.getByRole('table', { name: 'Alerts sent' }).getByText('Test alert'));
      await shot('settings-alerts');
    } finally {
      await new Promise((resolve) => hook.close(resolve));
    }
  });

  it('shows an auditor everything and no button that changes something', async () => {
    const auditor = await newContext(browser, pageErrors);
    const p = await auditor.newPage();
    p.setDefaultTimeout(10_000);
    try {
      await logIn(p, 'auditor');
      await seen(p.getByText('Auditor (read only)'));
      await seen(p.getByRole('link', { name: 'Contoso Graph' }));
      await none(p.getByRole('link', { name: 'Add connector' }));
      await p.getByRole('link', { name: 'Contoso Graph', exact: true }).click();
      await seen(p.getByRole('heading', { name: /Contoso Graph/, level: 1 }));
      await none(p.getByRole('button', { name: 'Sync now' }));
      await none(p.getByRole('button', { name: 'Delete' }));
      await none(p.getByRole('button', { name: 'Save source settings' }));
      expect(await p.getByLabel('Tenant (directory) ID').isDisabled()).toBe(true);
      await p.getByRole('link', { name: 'Group sync settings' }).click();
      await seen(p.getByText('only administrators change them'));
      await none(p.getByRole('button', { name: 'Save settings' }));
      expect(await p.getByLabel('Never assign groups matching').isDisabled()).toBe(true);
      await p.goto(`${server.origin}/connectors/contoso-scim/configuration`);
      await seen(p.getByRole('cell', { name: 'first token' }));
      await none(p.getByRole('button', { name: /Rotate token|Revoke|Create token/ }));
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
      await none(p.getByRole('link', { name: 'Accounts' }));
      await none(p.getByRole('button', { name: 'Create API token' }));
      await seen(p.getByRole('cell', { name: 'nightly report' }));
      await none(p.getByRole('button', { name: /Revoke/ }));
      await shot('auditor-view', p);
    } finally {
      await auditor.close();
    }
  });
});
