// What the admin UI's end-to-end tests share: waiting for elements, screenshots, signing in, the page
// errors to watch, and checks of the pages' accessible names.

import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { expect } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const SHOTS = path.join(ROOT, 'test-results', 'screenshots');
const DOC_SHOTS = path.join(ROOT, 'docs', 'screenshots');

/** The password of the accounts the tests make. */
export const PASSWORD = 'correct horse battery staple';

/** Wait until the (first) element is visible. */
export const seen = (l: Locator, timeout?: number): Promise<void> => l.first().waitFor({ state: 'visible', ...(timeout ? { timeout } : {}) });

/** No such element on the page (after it has loaded). */
export async function none(l: Locator): Promise<void> {
  expect(await l.count()).toBe(0);
}

/** Wait until no element matches (it goes when the page has reloaded its data). */
export const gone = (l: Locator, timeout?: number): Promise<void> => l.first().waitFor({ state: 'detached', ...(timeout ? { timeout } : {}) });

/**
 * A screenshot of the page's top (or, with keepScroll, of where the test is) in test-results/screenshots/,
 * copied to docs/screenshots/ with UPDATE_SCREENSHOTS=1.
 */
export async function shot(page: Page, name: string, keepScroll = false): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  if (!keepScroll) await page.evaluate('window.scrollTo(0, 0)');
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    fs.mkdirSync(DOC_SHOTS, { recursive: true });
    fs.copyFileSync(file, path.join(DOC_SHOTS, `${name}.png`));
  }
}

/** Sign in on the login page and wait for the connectors. */
export async function logIn(page: Page, origin: string, username: string, password = PASSWORD): Promise<void> {
  await page.goto(`${origin}/`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Connectors', level: 1 }).waitFor();
}

/** A new browser context of the usual size whose page errors land in `errors`. */
export async function newContext(browser: Browser, errors: string[]): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.on('weberror', (e) => errors.push(e.error().message));
  return context;
}

// The functions below that run in the page name only the little of the DOM they use: the tests compile
// without the DOM library.
interface PageElement {
  contains(other: unknown): boolean;
  scrollIntoView(options: { block: 'start' }): void;
}
interface PageField {
  offsetParent: unknown;
  labels?: ArrayLike<{ textContent: string | null }> | null;
  getAttribute(name: string): string | null;
  outerHTML: string;
}
declare const document: { activeElement: unknown; getElementById(id: string): { textContent: string | null } | null };
declare function getComputedStyle(el: unknown): { outlineStyle: string };

/** Whether the element has the keyboard focus. */
export const focused = (l: Locator): Promise<boolean> => l.evaluate((el) => el === document.activeElement);

/** Whether the keyboard focus is on the element or inside it. */
export const focusWithin = (l: Locator): Promise<boolean> => l.evaluate((el) => (el as unknown as PageElement).contains(document.activeElement));

/** The element's outline style (`none` when the focus would not show). */
export const outlineStyle = (l: Locator): Promise<string> => l.evaluate((el) => getComputedStyle(el).outlineStyle);

/** Scroll the page so that the element is at the top (for a screenshot of that part). */
export const scrollToTop = (l: Locator): Promise<void> => l.evaluate((el) => (el as unknown as PageElement).scrollIntoView({ block: 'start' }));

const FIELD_ROLES = 'textbox|searchbox|combobox|listbox|checkbox|radio|spinbutton|slider|switch';

/**
 * Every form field inside `scope` has an accessible name: none appears nameless in the accessibility tree
 * (as Chromium computes it), and every visible input, select and text area is labelled by a <label>,
 * aria-label or aria-labelledby.
 */
export async function expectNamedFields(scope: Locator): Promise<void> {
  const tree = await scope.ariaSnapshot();
  const nameless = tree.split('\n').filter((line) => new RegExp(`^\\s*- '?(${FIELD_ROLES})\\b(?! ")`).test(line));
  expect(nameless, `fields without a name in\n${tree}`).toEqual([]);
  const unlabelled = await scope.locator('input:not([type=hidden]), select, textarea').evaluateAll((els) =>
    (els as unknown as PageField[])
      // laid out (not display: none)
      .filter((field) => field.offsetParent !== null)
      .filter((field) => {
        const byLabel = Array.from(field.labels ?? []).some((l) => (l.textContent ?? '').trim() !== '');
        const byAria = (field.getAttribute('aria-label') ?? '').trim() !== '';
        const byRef = (field.getAttribute('aria-labelledby') ?? '').split(/\s+/).some((id: string) => (document.getElementById(id)?.textContent ?? '').trim() !== '');
        return !byLabel && !byAria && !byRef;
      })
      .map((field) => field.outerHTML.slice(0, 200)),
  );
  expect(unlabelled).toEqual([]);
}
