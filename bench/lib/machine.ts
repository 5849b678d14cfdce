// The machine and the code a benchmark measured, for the results files.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The code measured: the commit, and whether src/ differs from it (others work in the tree). */
export function revision(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return dirty.length ? `commit ${head} plus uncommitted changes to ${dirty.join(', ')}` : `commit ${head}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** What the figures were measured on. */
export function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return { host: os.hostname(), model, cores: os.availableParallelism(), memGb: os.totalmem() / 1024 ** 3, node: process.version, platform: `${os.type()} ${os.release()}`, code: revision() };
}
