// vitest global setup: build the admin UI (web/dist) when it is missing or older than any of its sources
// (web/, and the service's pure modules it imports from src/), so that `npm test` serves the current pages.

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

/** Relative imports (`from './x.ts'`, `import './x.css'`) of a source file, resolved. */
function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/\b(?:from|import)\s+'(\.\.?\/[^']+)'/g)].map((m) => path.resolve(path.dirname(file), m[1]!));
}

/** The files outside web/ that the UI's sources import (src/domain/rules.ts, …), followed through their own imports. */
function importedFromOutside(): string[] {
  const found = new Set<string>();
  const queue: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(p);
      else if (/\.tsx?$/.test(entry.name)) queue.push(p);
    }
  };
  visit(path.join(WEB, 'src'));
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const target of relativeImports(file)) {
      if (target.startsWith(WEB + path.sep) || found.has(target) || !fs.existsSync(target)) continue;
      found.add(target);
      if (/\.tsx?$/.test(target)) queue.push(target);
    }
  }
  return [...found];
}

export function webBuildNeeded(): boolean {
  if (!fs.existsSync(BUILT)) return true;
  const newest = Math.max(newestSource(WEB), ...importedFromOutside().map((f) => fs.statSync(f).mtimeMs));
  return newest > fs.statSync(BUILT).mtimeMs;
}

export default function setup(): void {
  if (!fs.existsSync(WEB) || !webBuildNeeded()) return;
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--config', path.join('web', 'vite.config.ts'), '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
}
