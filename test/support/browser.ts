// Debian's Chromium, driven by playwright-core, for the admin UI's end-to-end tests. Installed from Debian's
// packages when missing and we are root (as in CI); launched headless with the background services that
// would otherwise try to reach the network switched off.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import { installDebianPackages } from './debian-packages.ts';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Install Debian's chromium package when /usr/bin/chromium is missing (root only; otherwise says what to run). */
export async function ensureChromium(): Promise<void> {
  await installDebianPackages({
    what: 'Chromium',
    packages: ['chromium'],
    installed: () => fs.existsSync(CHROMIUM),
    provides: CHROMIUM,
    lockFile: path.join(os.tmpdir(), 'usersync-chromium-install.lock'),
    lockTimeoutMs: 10 * 60_000,
    services: [],
    pidDirs: [],
  });
}

export async function launchBrowser(): Promise<Browser> {
  await ensureChromium();
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
