// More of the admin UI end to end, in Debian's Chromium against a real service (SQLite, a free port) and a
// real slapd: the keyboard alone (sign-in, the main navigation, the skip link) and an accessible name for
// every form field; held runs rejected and approved; a SCIM token rotated; an auditor account made, made
// to change its password, then disabled (its session ends); a locked account unlocked; an LDAP connector
// tested and a user looked up. What the UI does is checked through the admin API and the SCIM endpoint.
// Screenshots of the new views go to test-results/screenshots/ (and docs/screenshots/ with UPDATE_SCREENSHOTS=1).

import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../support/browser.ts';
import { until } from '../support/process.ts';
import type { TestServer } from '../support/server.ts';
import { scimFetch, startTestServer } from '../support/server.ts';
import type { Slapd } from '../support/slapd/index.ts';
import { startSlapd } from '../support/slapd/index.ts';
import { expectNamedFields, focused, focusWithin, gone, logIn, newContext, none, outlineStyle, PASSWORD, scrollToTop, seen, shot } from './support.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const BASE_DN = 'dc=example,dc=test';

/** alice is in developers, which is in engineering; bob is in engineering. */
const LDIF = `dn: uid=alice,ou=people,${BASE_DN}
objectClass: inetOrgPerson
uid: alice
cn: Alice Archer
sn: Archer
givenName: Alice
mail: alice@example.test

dn: uid=bob,ou=people,${BASE_DN}
objectClass: inetOrgPerson
uid: bob
cn: Bob Baker
sn: Baker
givenName: Bob
mail: bob@example.test

dn: cn=developers,ou=groups,${BASE_DN}
objectClass: groupOfNames
cn: developers
member: uid=alice,ou=people,${BASE_DN}

dn: cn=engineering,ou=groups,${BASE_DN}
objectClass: groupOfNames
cn: engineering
member: cn=developers,ou=groups,${BASE_DN}
member: uid=bob,ou=people,${BASE_DN}
`;

describe('admin UI: keyboard, held runs, tokens, accounts, LDAP', () => {
  let server: TestServer;
  let ldap: Slapd;
  let browser: Browser;
  let context: BrowserContext;
  /** signed in as the administrator */
  let page: Page;
  let adminToken = '';
  /** errors thrown in the pages: none is expected */
  const pageErrors: string[] = [];

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function api(path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(`${server.origin}/api${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(init.token !== '' ? { authorization: `Bearer ${init.token ?? adminToken}` } : {}), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /** A login through the API, as a script would try it. */
  const login = (username: string, password: string) => api('/session', { method: 'POST', body: { username, password }, token: '' });

  beforeAll(async () => {
    [server, ldap, browser] = await Promise.all([
      startTestServer('sqlite', { env: { LOGIN_RATE_PER_MINUTE: '1000' } }),
      startSlapd({ ldifOffline: LDIF }),
      launchBrowser(),
    ]);
    await server.service.accounts.create({ username: 'admin', password: PASSWORD, role: 'administrator' }, 'test');
    adminToken = (await server.service.adminTokens.create('tests', 'test')).token;
    context = await newContext(browser, pageErrors);
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    await logIn(page, server.origin, 'admin');
  }, 120_000);

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
    await ldap?.stop();
  });

  it('signs in and moves through the main navigation with the keyboard alone; every form field has an accessible name', async () => {
    const own = await newContext(browser, pageErrors);
    const p = await own.newPage();
    p.setDefaultTimeout(10_000);
    try {
      await p.goto(`${server.origin}/`);
      await seen(p.getByRole('heading', { name: 'Sign in' }));
      await expectNamedFields(p.getByRole('main'));
      await p.keyboard.press('Tab');
      expect(await focused(p.getByLabel('Username'))).toBe(true);
      await p.keyboard.type('admin');
      await p.keyboard.press('Tab');
      expect(await focused(p.getByLabel('Password'))).toBe(true);
      await p.keyboard.type(PASSWORD);
      await p.keyboard.press('Enter');
      await seen(p.getByRole('heading', { name: 'Connectors', level: 1 }));

      // Tab reaches the main navigation; Enter follows a link, and the focus shows
      const nav = p.getByRole('navigation', { name: 'Main' });
      const tabTo = async (target: Locator, most = 25): Promise<void> => {
        for (let i = 0; i < most; i++) {
          if (await focused(target)) return;
          await p.keyboard.press('Tab');
        }
        throw new Error(`${most} presses of Tab did not reach ${target.toString()}`);
      };
      await tabTo(nav.getByRole('link', { name: 'Sync history' }));
      expect(await outlineStyle(nav.getByRole('link', { name: 'Sync history' }))).not.toBe('none');
      await p.keyboard.press('Enter');
      await seen(p.getByRole('heading', { name: 'Sync history', level: 1 }));
      expect(new URL(p.url()).pathname).toBe('/runs');
      await p.keyboard.press('Tab');
      expect(await focused(nav.getByRole('link', { name: 'Directory' }))).toBe(true);
      await p.keyboard.press('Enter');
      await seen(p.getByRole('heading', { name: 'Directory', level: 1 }));

      // on a fresh page the first Tab shows "Skip to content", which takes the focus past the navigation
      await p.goto(`${server.origin}/settings/accounts`);
      await seen(p.getByRole('heading', { name: 'Settings', level: 1 }));
      await p.keyboard.press('Tab');
      const skip = p.getByRole('link', { name: 'Skip to content' });
      expect(await focused(skip)).toBe(true);
      const box = await skip.boundingBox();
      expect(box && box.x >= 0 && box.y >= 0).toBe(true);
      await p.keyboard.press('Enter');
      await p.keyboard.press('Tab');
      expect(await focusWithin(p.getByRole('main'))).toBe(true);
      expect(await focused(p.getByRole('main'))).toBe(false);

      // every field of the main views has a name (the settings tabs with their optional rows opened)
      const views: [string, Locator][] = [
        ['/connectors', p.getByRole('heading', { name: 'Connectors', level: 1 })],
        ['/connectors/entra/configuration', p.getByRole('cell', { name: 'test', exact: true })],
        ['/runs', p.getByRole('heading', { name: 'Sync history', level: 1 })],
        ['/directory', p.getByLabel('Search users by username')],
        ['/audit', p.getByRole('heading', { name: 'Audit log', level: 1 })],
        ['/settings/accounts', p.getByLabel("New account's username")],
        ['/settings/tokens', p.getByLabel('Token label')],
        ['/settings/alerts', p.getByLabel('Send alerts to a webhook')],
        ['/account/password', p.getByLabel('Current password')],
      ];
      for (const [path, ready] of views) {
        await p.goto(`${server.origin}${path}`);
        await seen(ready);
        await expectNamedFields(p.getByRole('main'));
      }
      await p.goto(`${server.origin}/connectors/new`);
      for (const kind of [/^SCIM 2\.0/, /^Microsoft Graph/, /^LDAP/]) {
        await p.getByLabel(kind).check();
        await expectNamedFields(p.getByRole('main'));
      }
      await p.goto(`${server.origin}/connectors/entra/users`);
      await seen(p.getByRole('heading', { name: 'Attribute mapping' }));
      await p.getByLabel('Add a transform to Username').selectOption('regexReplace');
      await p.getByRole('button', { name: 'Add' }).first().click();
      await seen(p.getByRole('list', { name: 'Transforms of Username' }));
      await expectNamedFields(p.getByRole('main'));
      await p.getByRole('link', { name: 'Group sync settings' }).click();
      await p.getByLabel(/^Manual mapping/).check();
      await p.getByRole('button', { name: 'Add mapping row' }).click();
      await p.getByRole('button', { name: 'Add licence group' }).click();
      await seen(p.getByLabel('Provider group of row 1'));
      await expectNamedFields(p.getByRole('main'));
    } finally {
      await own.close();
    }
  });

  it('rotates a SCIM token: the new token is shown once, the old one gets 401 within two seconds', async () => {
    const old = server.token;
    expect((await server.scim('/Users?count=1', { token: old })).status).toBe(200);
    await page.goto(`${server.origin}/connectors/entra/configuration`);
    await seen(page.getByRole('cell', { name: 'test', exact: true }));
    await page.getByRole('button', { name: 'Rotate token test' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate the token “test”?' });
    await seen(dialog.getByText('the identity provider gets 401 until you paste the new token'));
    await dialog.getByRole('button', { name: 'Rotate token' }).click();
    const shown = page.getByRole('textbox', { name: 'New bearer token' });
    await seen(shown);
    const rotatedAt = Date.now();
    const fresh = await shown.inputValue();
    expect(fresh).toMatch(/^\S{20,}$/);
    expect(fresh).not.toBe(old);
    await seen(page.getByText('it will not be shown again'));
    await seen(page.getByText('The token “test” is revoked; this is its replacement.'));
    await seen(page.getByRole('row', { name: /^test .* revoked/ }));
    await seen(page.getByRole('row', { name: /test \(rotated .*\) .* active/ }));
    await scrollToTop(page.getByRole('heading', { name: 'Tokens' }));
    await shot(page, 'scim-token-rotated', true);

    await until('the old token to be refused', 3_000, async () => (await server.scim('/Users?count=1', { token: old })).status === 401);
    expect(Date.now() - rotatedAt).toBeLessThan(2_500);
    expect((await server.scim('/Users?count=1', { token: fresh })).status).toBe(200);
    // shown once: the page, opened again, lists the tokens but no token
    await page.reload();
    await seen(page.getByRole('row', { name: /test \(rotated .*\) .* active/ }));
    await none(page.getByRole('textbox', { name: 'New bearer token' }));
    expect(await page.content()).not.toContain(fresh);
  });

  it('shows runs held by the deletion limit; Reject leaves the users, Approve deactivates them', async () => {
    await server.service.connectors.create({ id: 'hr', name: 'HR SCIM', kind: 'scim' }, 'test');
    const { token } = await server.service.connectors.createToken('hr', 'hr', 'test');
    const scim = (method: string, path: string, body?: unknown) => scimFetch(`${server.origin}/scim/v2/hr${path}`, token, { method, ...(body !== undefined ? { body } : {}) });
    const runs = async (status: string): Promise<{ id: string }[]> => (await api(`/runs?connector=hr&status=${status}`)).body.runs;
    const active = async (): Promise<Record<string, boolean>> =>
      Object.fromEntries(((await api('/users?search=held-')).body.users as { username: string; active: boolean }[]).map((u) => [u.username, u.active]));
    const ids: Record<string, string> = {};
    for (const name of ['held-ann', 'held-bob', 'held-cat', 'held-dan']) {
      const r = await scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: name, active: true, displayName: name });
      expect(r.status, r.text).toBe(201);
      ids[name] = r.body.id;
    }
    await until('the users in the directory', 15_000, async () => Object.keys(await active()).length === 4);
    // no removal at all without approval
    const saved = await api('/connectors/hr/settings', { method: 'PATCH', body: { safety: { deletionLimit: { count: 0 } } } });
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    // two push windows, each deleting two users: two held runs
    for (const [i, pair] of [['held-ann', 'held-bob'], ['held-cat', 'held-dan']].entries()) {
      await until('the push run before to end', 15_000, async () => (await runs('running')).length === 0);
      for (const name of pair) expect((await scim('DELETE', `/Users/${ids[name]}`)).status).toBe(204);
      await until(`held run ${i + 1}`, 15_000, async () => (await runs('held')).length === i + 1);
    }
    expect(await active()).toEqual({ 'held-ann': true, 'held-bob': true, 'held-cat': true, 'held-dan': true });

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sync history' }).click();
    await page.getByRole('combobox', { name: 'Connector', exact: true }).selectOption('hr');
    await page.getByRole('combobox', { name: 'Status', exact: true }).selectOption('held');
    const held = page.getByRole('link', { name: /^Run of .* \(SCIM push, held\)$/ });
    await expect.poll(() => held.count()).toBe(2);
    await shot(page, 'sync-history-held');

    // the older run (listed last): its two held deactivations, rejected
    await held.last().click();
    await seen(page.getByRole('heading', { name: /Run of .* held for approval/, level: 1 }));
    const table = page.getByRole('table', { name: 'Held changes' });
    await seen(table.getByRole('row', { name: /held-ann\s+deactivate\s+.*held for approval/ }));
    await seen(table.getByRole('row', { name: /held-bob\s+deactivate/ }));
    await seen(page.getByText(/deactivations\/deletions held: the run would exceed the deletion limit \(0\)/));
    await shot(page, 'run-held');
    await page.getByRole('button', { name: 'Reject' }).click();
    const reject = page.getByRole('dialog', { name: 'Reject the held changes?' });
    await seen(reject.getByText('The 2 held changes will be dropped; the users stay as they are.'));
    await reject.getByRole('button', { name: 'Reject' }).click();
    await seen(page.getByText('Rejected: 2 dropped.'));
    await seen(table.getByRole('row', { name: /held-ann\s+deactivate\s+.*rejected/ }));
    await none(page.getByRole('button', { name: 'Approve' }));

    // the newer one: approved
    await page.getByRole('link', { name: 'Sync history' }).first().click();
    await page.getByRole('combobox', { name: 'Connector', exact: true }).selectOption('hr');
    await page.getByRole('combobox', { name: 'Status', exact: true }).selectOption('held');
    await expect.poll(() => held.count()).toBe(1);
    await held.click();
    await seen(table.getByRole('row', { name: /held-cat\s+deactivate/ }));
    await page.getByRole('button', { name: 'Approve' }).click();
    const approve = page.getByRole('dialog', { name: 'Approve the held changes?' });
    await approve.getByRole('button', { name: 'Approve and apply' }).click();
    await seen(page.getByText('Approved: 2 applied, 0 skipped.'));
    await seen(table.getByRole('row', { name: /held-dan\s+deactivate\s+.*approved/ }));
    await seen(page.getByRole('table', { name: 'Changes made by this run' }).getByText(/deactivate user held-cat/));

    expect(await active()).toEqual({ 'held-ann': true, 'held-bob': true, 'held-cat': false, 'held-dan': false });
    expect(await runs('held')).toEqual([]);
  });

  it('creates an auditor who must choose a new password, sees the read-only view, and is signed out when disabled', async () => {
    try {
      await auditorAccount();
    } finally {
      // the next tests go on as the administrator
      await context.clearCookies();
      await logIn(page, server.origin, 'admin');
    }
  });

  async function auditorAccount(): Promise<void> {
    const first = 'a first password, to be changed';
    const chosen = 'a passphrase she chose herself';
    await page.goto(`${server.origin}/settings/accounts`);
    await page.getByLabel("New account's username").fill('dana');
    await page.getByLabel('First password').fill(first);
    expect(await page.getByLabel('Role', { exact: true }).inputValue()).toBe('auditor');
    await page.getByRole('button', { name: 'Add account' }).click();
    await seen(page.getByText('The account dana is created. Give its password to its owner, who will choose a new one.'));
    await seen(page.getByRole('row', { name: /^dana\s/ }));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await seen(page.getByText('You are signed out.'));

    await page.getByLabel('Username').fill('dana');
    await page.getByLabel('Password').fill(first);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await seen(page.getByRole('heading', { name: 'Choose a new password', level: 1 }));
    await none(page.getByRole('navigation', { name: 'Main' }));
    await page.getByLabel('Current password').fill(first);
    await page.getByLabel('New password', { exact: true }).fill(chosen);
    await page.getByLabel('New password again').fill(`${chosen}!`);
    await seen(page.getByText('The two new passwords are not the same.'));
    await page.getByLabel('New password again').fill(chosen);
    await shot(page, 'change-password-first-login');
    await page.getByRole('button', { name: 'Change password' }).click();
    // the page signed out from (accounts) is an administrator's: an auditor lands on the API tokens instead
    await seen(page.getByText('Auditor (read only)'));
    await seen(page.getByRole('heading', { name: 'Settings', level: 1 }));
    await none(page.getByRole('link', { name: 'Accounts' }));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Connectors' }).click();
    await seen(page.getByRole('link', { name: 'HR SCIM' }));
    await none(page.getByRole('link', { name: 'Add connector' }));
    await page.getByRole('link', { name: 'Entra ID', exact: true }).click();
    await seen(page.getByRole('cell', { name: /rotated/ }));
    await none(page.getByRole('button', { name: /Rotate token|Revoke|Create token/ }));
    expect((await login('dana', first)).status).toBe(401);

    // the administrator, elsewhere, disables the account: dana's next step shows the sign-in page
    const admin = await newContext(browser, pageErrors);
    try {
      const p = await admin.newPage();
      p.setDefaultTimeout(10_000);
      await logIn(p, server.origin, 'admin');
      await p.goto(`${server.origin}/settings/accounts`);
      await p.getByRole('button', { name: 'Disable dana' }).click();
      await seen(p.getByText('The account dana is disabled.'));
      await seen(p.getByRole('row', { name: /^dana\s.*disabled/ }));
      await seen(p.getByRole('button', { name: 'Enable dana' }));
    } finally {
      await admin.close();
    }
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sync history' }).click();
    await seen(page.getByRole('heading', { name: 'Sign in', level: 1 }));
    await seen(page.getByText('Your session has ended. Sign in again to go on.'));
    expect((await login('dana', chosen)).status).toBe(401);
  }

  it('unlocks an account locked by five failed logins', async () => {
    const password = 'a long password of her own';
    expect((await api('/accounts', { method: 'POST', body: { username: 'erin', password, role: 'auditor' } })).status).toBe(201);
    const answers: number[] = [];
    for (let i = 0; i < 5; i++) answers.push((await login('erin', `wrong guess number ${i}`)).status);
    expect(answers).toEqual([401, 401, 401, 401, 423]);
    const refused = await login('erin', password);
    expect(refused.status).toBe(423);

    await page.goto(`${server.origin}/settings/accounts`);
    const row = page.getByRole('row', { name: /^erin\s/ });
    await seen(row.getByText('locked'));
    await shot(page, 'settings-accounts-locked');
    await page.getByRole('button', { name: 'Unlock erin' }).click();
    await seen(page.getByText('The account erin is unlocked.'));
    await gone(row.getByText('locked'));
    await none(page.getByRole('button', { name: 'Unlock erin' }));
    expect((await login('erin', password)).status).toBe(200);
  });

  it('adds an LDAP connector for slapd, tests the connection and looks a user up with its groups and directory outcome', async () => {
    await page.goto(`${server.origin}/connectors/new`);
    await page.getByLabel(/^LDAP/).check();
    await page.getByLabel('OpenLDAP and others').check();
    await page.getByLabel('Connector name').fill('Corporate LDAP');
    await page.getByLabel('Server URL', { exact: true }).fill(ldap.url);
    await page.getByLabel('Bind DN', { exact: true }).fill(ldap.bindDn);
    await page.getByLabel('Bind password').fill(ldap.bindPassword);
    await page.getByLabel('Base DN', { exact: true }).fill(ldap.baseDn);
    await page.getByLabel('User base DN').fill(ldap.peopleDn);
    await page.getByLabel('Group base DN').fill(ldap.groupsDn);
    await page.getByLabel('Runs by itself').selectOption('off');
    await page.getByRole('button', { name: 'Create connector' }).click();

    await seen(page.getByText('The connector is created.'));
    expect(new URL(page.url()).pathname).toBe('/connectors/corporate-ldap/configuration');
    await page.getByRole('button', { name: 'Test connection' }).click();
    await seen(page.getByText('The connection works.'));
    const checks = page.getByRole('list', { name: 'Connection checks' }).getByRole('listitem');
    await seen(checks.first());
    expect(await checks.filter({ hasText: 'failed' }).count()).toBe(0);
    await scrollToTop(page.getByRole('heading', { name: 'Test connection' }));
    await shot(page, 'ldap-connector-configuration', true);

    await page.getByLabel('Username to look up').fill('alice');
    await page.getByRole('button', { name: 'Test user search' }).click();
    await seen(page.getByText('One entry matches.'));
    await seen(page.getByText(`The entry as the server has it: uid=alice,${ldap.peopleDn}`));
    await seen(page.getByRole('table', { name: 'Entry attributes' }).getByRole('row', { name: 'mail alice@example.test' }));
    const groups = page.getByRole('list', { name: 'Groups in the directory server' });
    await seen(groups.getByRole('listitem').filter({ hasText: /^developers$/ }));
    // engineering only through developers: the nested group is flattened
    await seen(groups.getByRole('listitem').filter({ hasText: /^engineering$/ }));
    await seen(page.getByText('The directory has no user of this name yet: it would be created.'));
    const outcome = page.getByRole('table', { name: 'Directory groups' });
    await seen(outcome.getByRole('row', { name: "developers member of 'developers'" }));
    await seen(outcome.getByRole('row', { name: "engineering member of 'engineering'" }));
    await scrollToTop(page.getByRole('heading', { name: 'Groups in the directory server' }));
    await shot(page, 'ldap-user-search', true);

    // nothing was written: the directory has no alice yet
    expect((await api('/users?search=alice')).body.users).toEqual([]);
    const missing = page.getByLabel('Username to look up');
    await missing.fill('nobody');
    await page.getByRole('button', { name: 'Test user search' }).click();
    await seen(page.getByText('No entry matches this username.'));
  });
});
