// Installing the Debian packages a throwaway-server harness needs (../slapd/, ../samba/), and the machine-wide
// lock files they take. See the "ensure…" paragraphs of slapd/README.md and samba/README.md.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// Processes and lock files

/** whether a process with this pid exists (EPERM: it does, owned by someone else) */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** the process's start time in clock ticks since boot (/proc/<pid>/stat field 22), to tell a reused pid apart */
export function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

interface LockOwner {
  pid: number;
  start?: string;
}

function lockOwnerAlive(o: LockOwner): boolean {
  if (!Number.isInteger(o.pid) || o.pid <= 0 || !alive(o.pid)) return false;
  const now = startTime(o.pid);
  return o.start === undefined || now === undefined || now === o.start;
}

function readLock(file: string): LockOwner | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as LockOwner;
  } catch {
    return { pid: NaN }; // empty or half-written
  }
}

/**
 * Take a lock file shared by every process on the machine; it holds our pid and start time (JSON { pid, start }).
 * A lock whose holder died (or whose pid now belongs to another process) is taken over. Throws after timeoutMs.
 */
export async function acquireLockFile(file: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const me = JSON.stringify({ pid: process.pid, start: startTime(process.pid) } satisfies LockOwner);
  let unreadableSince = 0;
  for (;;) {
    try {
      fs.writeFileSync(file, me, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    if (holder === undefined) continue; // released just now
    if (Number.isNaN(holder.pid)) {
      // being written right now, or left half-written by a crash: give the writer a second
      unreadableSince ||= Date.now();
      if (Date.now() - unreadableSince > 1_000) fs.rmSync(file, { force: true });
    } else if (!lockOwnerAlive(holder)) {
      // left behind by a killed process; only remove it if nobody replaced it meanwhile
      if (readLock(file)?.pid === holder.pid) fs.rmSync(file, { force: true });
      continue;
    } else {
      unreadableSince = 0;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: lock ${file} still held by pid ${holder.pid} after ${Math.round(timeoutMs / 1000)} s`);
    }
    await sleep(200);
  }
}

/** Remove the lock file if this process holds it. */
export function releaseLockFile(file: string): void {
  if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
}

// ---------------------------------------------------------------------------------------------------------------
// installDebianPackages

export interface DebianPackagesOptions {
  /** what is installed, for messages: 'slapd', 'Samba AD DC' */
  what: string;
  packages: string[];
  /** whether what the caller needs is there: checked first, again under the lock, and after the install */
  installed: () => boolean;
  /** what installed() looks for, for messages, e.g. '/usr/sbin/slapd, slapadd and ldapmodify' */
  provides: string;
  /** the lock file serialising installs across processes (vitest workers) */
  lockFile: string;
  lockTimeoutMs: number;
  /** the packaged services to disable afterwards (update-rc.d, systemctl disable --now) */
  services: string[];
  /** also `systemctl mask` them; default false */
  maskServices?: boolean;
  /** directories whose *.pid files name packaged daemons to stop if they started anyway */
  pidDirs: string[];
  /** run `apt-get update` (and install again) only when the install's error matches; default: on any failure */
  updateIf?: RegExp;
}

const INSTALL = ['install', '-y', '--no-install-recommends'];

function aptInstall(o: DebianPackagesOptions): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const opts = { env, stdio: 'pipe' as const, maxBuffer: 64 * 1024 * 1024 };
  const errorText = (err: unknown): string => String((err as { stderr?: Buffer }).stderr ?? err);
  const install = (): void => {
    execFileSync('apt-get', [...INSTALL, ...o.packages], opts);
  };
  try {
    install();
  } catch (err) {
    const first = errorText(err);
    if (o.updateIf && !o.updateIf.test(first)) throw new Error(`apt-get install ${o.packages.join(' ')} failed:\n${first}`);
    try {
      execFileSync('apt-get', ['update'], opts);
      install();
    } catch (err2) {
      throw new Error(`apt-get install ${o.packages.join(' ')} failed:\n${first}\nand again after apt-get update:\n${errorText(err2)}`);
    }
  }
}

/** Stop and disable the packaged services, so that only the harness's own servers run. */
function disableServices(o: DebianPackagesOptions): void {
  for (const svc of o.services) {
    const cmds = [['update-rc.d', svc, 'disable'], ['systemctl', 'disable', '--now', svc], ...(o.maskServices ? [['systemctl', 'mask', svc]] : [])];
    for (const cmd of cmds) {
      try {
        execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
      } catch {
        // not present on this system (containers have no systemd)
      }
    }
  }
  // If a packaged daemon started anyway, stop exactly the process named in its pid file.
  for (const dir of o.pidDirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith('.pid')) continue;
      const pid = Number(fs.readFileSync(path.join(dir, name), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) process.kill(pid, 'SIGTERM');
    }
  }
}

/**
 * Make sure Debian packages are installed. As root, installs them once across processes (under o.lockFile), with
 * no packaged service started (a temporary policy-rc.d, only if none exists) and the services disabled afterwards;
 * otherwise throws saying what to install.
 */
export async function installDebianPackages(o: DebianPackagesOptions): Promise<void> {
  if (o.installed()) return;
  const command = `DEBIAN_FRONTEND=noninteractive apt-get ${INSTALL.join(' ')} ${o.packages.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new Error(`${o.what} is not installed (it needs ${o.provides}), and installing it needs root. Run as root: ${command}`);
  }
  await acquireLockFile(o.lockFile, o.lockTimeoutMs, `${o.what} install`);
  try {
    if (o.installed()) return; // another worker installed it while we waited
    const policy = '/usr/sbin/policy-rc.d';
    const ownPolicy = !fs.existsSync(policy);
    if (ownPolicy) fs.writeFileSync(policy, '#!/bin/sh\n# usersync test support: no service starts\nexit 101\n', { mode: 0o755 });
    try {
      aptInstall(o);
    } finally {
      if (ownPolicy) fs.rmSync(policy, { force: true });
    }
    disableServices(o);
    if (!o.installed()) throw new Error(`installing ${o.packages.join(' ')} did not provide ${o.provides}`);
  } finally {
    releaseLockFile(o.lockFile);
  }
}
