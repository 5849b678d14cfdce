// vitest global setup: build the admin UI (web/dist) when it is missing or older than any of its sources,
// so that `npm test` on a fresh checkout serves the current pages.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const WEB = path.join(ROOT, 'web');
const BUILT = path.join(WEB, 'dist', 'index.html');

/** The newest modification time of the UI's sources (everything under web/ but dist/). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (p === path.join(WEB, 'dist') || entry.name === 'node_modules') continue;
      newest = Math.max(newest, newestSource(p));
    } else newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function webBuildNeeded(): boolean {
  if (!fs.existsSync(BUILT)) return true;
  return newestSource(WEB) > fs.statSync(BUILT).mtimeMs;
}

export default function setup(): void {
  if (!fs.existsSync(WEB) || !webBuildNeeded()) return;
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--config', path.join('web', 'vite.config.ts'), '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
}
