// A throwaway Samba Active Directory domain controller for the LDAP/AD source's tests.
// See README.md in this folder for what it sets up, the AD behaviour it was checked for, timings and limits.
//
// Samba's AD LDAP server has no port option: it always binds 127.0.0.1:389/636 (and 3268/3269), so only one DC
// can run on a machine. startSambaDc() therefore holds a machine-wide lock for the DC's lifetime, and a second
// caller (another vitest worker, another checkout) waits for it.

import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Attribute, Change, Client } from 'ldapts';
import { acquireLockFile, alive, installDebianPackages, releaseLockFile, startTime } from '../debian-packages.ts';
import { mulberry32 } from '../random.ts';

export const SAMBA = '/usr/sbin/samba';
export const SAMBA_TOOL = '/usr/bin/samba-tool';
const PACKAGES = ['samba-ad-dc', 'samba-ad-provision', 'samba', 'winbind', 'krb5-user', 'smbclient', 'ldap-utils'];
/** the packaged services that could hold the DC's ports (389, 636, 88, 445, 139, 137/udp …) */
const SYSTEM_SERVICES = ['samba-ad-dc', 'smbd', 'nmbd', 'winbind', 'samba'];

export const REALM = 'EXAMPLE.TEST';
export const DOMAIN = 'EXAMPLE';
export const DNS_DOMAIN = 'example.test';
export const BASE_DN = 'DC=example,DC=test';
/** the DC's host name: the TLS certificate's only name (subject CN=DC1.example.test, no subjectAltName) */
export const DC_HOSTNAME = 'dc1.example.test';
/**
 * The provisioned Administrator's password. Fixed, because the provisioned domain is cached as a template
 * (the DC only listens on the loopback interface, and lives for one test file).
 */
export const ADMIN_PASSWORD = 'Passw0rd!usersync-Test';

/** Machine-wide (not $TMPDIR): the ports are machine-wide too. */
const LOCK_DIR = '/tmp';
const INSTALL_LOCK = path.join(LOCK_DIR, 'usersync-samba-install.lock');
/** held (JSON { pid, start }) by the process running the DC, for the DC's lifetime */
export const DC_LOCK = path.join(LOCK_DIR, 'usersync-samba-dc.lock');
/** who runs the current DC: { owner, sambaPid, dir }; read to kill a DC left by a crashed run */
export const DC_STATE = path.join(LOCK_DIR, 'usersync-samba-dc.json');
/** bump when the template's content or layout changes */
const TEMPLATE_FORMAT = 1;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// Processes

function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      if (err) {
        const out = `${stdout}\n${stderr}`.trim().split('\n').slice(-30).join('\n');
        reject(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} failed (${err.code ?? err.signal}): ${out || err.message}`));
      } else resolve(stdout);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// ensureSambaDc

function installed(): boolean {
  return (
    fs.existsSync(SAMBA) &&
    fs.existsSync(SAMBA_TOOL) &&
    // samba-ad-provision: without it provisioning fails (AD_DS_Attributes__Windows_Server_2012_R2.ldf not found)
    fs.existsSync('/usr/share/samba/setup/ad-schema') &&
    fs.existsSync('/usr/bin/ldapsearch')
  );
}

/**
 * Make sure Samba's AD DC (samba, samba-tool, the AD schema files) and ldap-utils are installed. As root, installs
 * them once across processes, with no packaged service started (a temporary policy-rc.d) and the services disabled
 * afterwards; otherwise throws saying what to install.
 */
export async function ensureSambaDc(): Promise<void> {
  await installDebianPackages({
    what: 'Samba AD DC',
    packages: PACKAGES,
    installed,
    provides: `${SAMBA}, ${SAMBA_TOOL}, the AD schema files and /usr/bin/ldapsearch`,
    lockFile: INSTALL_LOCK,
    lockTimeoutMs: 15 * 60_000,
    // stopped, disabled and masked, so that only our own DC ever binds the AD ports
    services: SYSTEM_SERVICES,
    maskServices: true,
    pidDirs: ['/run/samba', '/var/run/samba'],
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Generated directory data

export interface AdDataOptions {
  users: number;
  groups: number;
  /** user → group edges besides the large group's, skewed towards low group numbers; default 2 × users */
  memberships?: number;
  /** group → group edges; a group only contains groups with a higher number, so there are no cycles. Default groups / 2 */
  nestedGroups?: number;
  /** users with userAccountControl 546 (ACCOUNTDISABLE), spread evenly; default users / 10 */
  disabledUsers?: number;
  /** direct user members of group0001, for ranged retrieval; default min(users, 350) */
  largeGroupMembers?: number;
  /** default 1 */
  seed?: number;
}

export interface AdUser {
  dn: string;
  /** `Given Family user00001`: not the sAMAccountName, and it may hold non-ASCII letters and an apostrophe */
  cn: string;
  /** user00001 … */
  sAMAccountName: string;
  /** user00001@example.test */
  userPrincipalName: string;
  givenName: string;
  sn: string;
  displayName: string;
  /** ascii given.family<n>@example.test, different from the UPN */
  mail: string;
  employeeID: string;
  /** 546 (disabled) or 544 (enabled), both with PASSWD_NOTREQD (0x20) */
  userAccountControl: number;
  disabled: boolean;
}

export interface AdGroup {
  dn: string;
  cn: string;
  /** group0001 …; group0001 is the large one */
  sAMAccountName: string;
  description: string;
  /** direct members (sAMAccountNames) */
  memberUsers: string[];
  /** direct member groups (sAMAccountNames) */
  memberGroups: string[];
  /** every `member` value (DNs) as loaded */
  member: string[];
}

export interface AdDirectory {
  users: AdUser[];
  groups: AdGroup[];
  /** sAMAccountName of the large group (group0001), with largeGroupMembers direct user members */
  largeGroup: string;
  user(sAMAccountName: string): AdUser;
  group(sAMAccountName: string): AdGroup;
  /** sAMAccountNames of the users in a group directly or through nested groups, sorted */
  transitiveMembers(group: string): string[];
  /** sAMAccountNames of the groups a user is a direct member of, sorted */
  directGroups(user: string): string[];
}

const GIVEN = ['Ada', 'Alan', 'Barbara', 'Claude', 'Donald', 'Edsger', 'Frances', 'Grace', 'Hedy', 'John', 'Katherine', 'Ken', 'Leslie', 'Linus', 'Margaret', 'Niklaus', 'Radia', 'Shafi', 'Tim', 'Vint', 'Åsa', 'Zoë', 'José', 'Ngozi'];
const FAMILY = ['Lovelace', 'Turing', 'Liskov', 'Shannon', 'Knuth', 'Dijkstra', 'Allen', 'Hopper', 'Lamarr', 'McCarthy', 'Johnson', 'Thompson', 'Lamport', 'Torvalds', 'Hamilton', 'Wirth', 'Perlman', 'Goldwasser', 'Berners-Lee', 'Cerf', 'Müller', "O'Brien", 'García', 'Okafor'];

export const UAC_ENABLED = 544; // NORMAL_ACCOUNT (0x200) | PASSWD_NOTREQD (0x20)
export const UAC_DISABLED = 546; // … | ACCOUNTDISABLE (0x2)

export const userSam = (i: number): string => `user${String(i).padStart(5, '0')}`;
export const groupSam = (i: number): string => `group${String(i).padStart(4, '0')}`;
const ascii = (s: string): string =>
  s
    .normalize('NFD')
    .replace(/[^A-Za-z-]/g, '')
    .toLowerCase();

export const DEFAULT_DATA: AdDataOptions = { users: 400, groups: 30, seed: 1 };

/** Deterministic users and groups (the same for the same options), with the expected memberships. */
export function generateAdDirectory(o: AdDataOptions, baseDn = BASE_DN): AdDirectory {
  const random = mulberry32(o.seed ?? 1);
  const peopleDn = `OU=People,${baseDn}`;
  const groupsDn = `OU=Groups,${baseDn}`;
  const nDisabled = Math.min(o.users, o.disabledUsers ?? Math.floor(o.users / 10));

  const users: AdUser[] = [];
  for (let i = 1; i <= o.users; i++) {
    const givenName = GIVEN[Math.floor(random() * GIVEN.length)]!;
    const sn = FAMILY[Math.floor(random() * FAMILY.length)]!;
    const sam = userSam(i);
    // exactly nDisabled users, evenly spread: user00010, user00020, … for 40 of 400 (the first user is enabled)
    const disabled = Math.floor((i * nDisabled) / o.users) !== Math.floor(((i - 1) * nDisabled) / o.users);
    const cn = `${givenName} ${sn} ${sam}`;
    users.push({
      dn: `CN=${cn},${peopleDn}`,
      cn,
      sAMAccountName: sam,
      userPrincipalName: `${sam}@${DNS_DOMAIN}`,
      givenName,
      sn,
      displayName: `${givenName} ${sn}`,
      mail: `${ascii(givenName)}.${ascii(sn)}${i}@${DNS_DOMAIN}`,
      employeeID: `E${100000 + i}`,
      userAccountControl: disabled ? UAC_DISABLED : UAC_ENABLED,
      disabled,
    });
  }

  const nGroups = o.groups;
  const memberUsers = Array.from({ length: nGroups + 1 }, () => new Set<number>());
  const memberGroups = Array.from({ length: nGroups + 1 }, () => new Set<number>());
  if (nGroups >= 1 && o.users > 0) {
    // group0001: the large group, the first largeGroupMembers users in a shuffled order
    const large = Math.min(o.users, o.largeGroupMembers ?? 350);
    const order = Array.from({ length: o.users }, (_, k) => k + 1);
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(random() * (k + 1));
      [order[k], order[j]] = [order[j]!, order[k]!];
    }
    for (const u of order.slice(0, large)) memberUsers[1]!.add(u);
  }
  if (nGroups >= 2 && o.users > 0) {
    const pick = (): number => 2 + Math.min(nGroups - 2, Math.floor(random() * random() * (nGroups - 1)));
    for (let g = 2; g <= nGroups; g++) memberUsers[g]!.add(1 + Math.floor(random() * o.users));
    for (let e = nGroups - 1; e < (o.memberships ?? 2 * o.users); e++) memberUsers[pick()]!.add(1 + Math.floor(random() * o.users));
  }
  if (nGroups >= 4) {
    // always a two-level chain: group0002 ⊃ group0003 ⊃ group0004
    memberGroups[2]!.add(3);
    memberGroups[3]!.add(4);
    for (let e = 2; e < (o.nestedGroups ?? Math.floor(nGroups / 2)); e++) {
      const a = 2 + Math.floor(random() * (nGroups - 1));
      const b = 2 + Math.floor(random() * (nGroups - 1));
      if (a !== b) memberGroups[Math.min(a, b)]!.add(Math.max(a, b));
    }
  }

  const groups: AdGroup[] = [];
  for (let g = 1; g <= nGroups; g++) {
    const sam = groupSam(g);
    const us = [...memberUsers[g]!].sort((x, y) => x - y);
    const gs = [...memberGroups[g]!].sort((x, y) => x - y);
    groups.push({
      dn: `CN=${sam},${groupsDn}`,
      cn: sam,
      sAMAccountName: sam,
      description: g === 1 ? 'Large generated group (ranged member retrieval)' : `Generated group ${g}`,
      memberUsers: us.map((u) => userSam(u)),
      memberGroups: gs.map((c) => groupSam(c)),
      member: [...us.map((u) => users[u - 1]!.dn), ...gs.map((c) => `CN=${groupSam(c)},${groupsDn}`)],
    });
  }

  const userBySam = new Map(users.map((u) => [u.sAMAccountName, u]));
  const groupBySam = new Map(groups.map((g) => [g.sAMAccountName, g]));
  const directGroups = new Map<string, string[]>(users.map((u) => [u.sAMAccountName, []]));
  for (const g of groups) for (const u of g.memberUsers) directGroups.get(u)!.push(g.sAMAccountName);
  const get = <T>(m: Map<string, T>, k: string, what: string): T => {
    const v = m.get(k);
    if (v === undefined) throw new Error(`no generated ${what} ${k}`);
    return v;
  };
  return {
    users,
    groups,
    largeGroup: groupSam(1),
    user: (sam) => get(userBySam, sam, 'user'),
    group: (sam) => get(groupBySam, sam, 'group'),
    transitiveMembers(sam) {
      const out = new Set<string>();
      const seen = new Set<string>();
      const walk = (g: AdGroup): void => {
        if (seen.has(g.sAMAccountName)) return;
        seen.add(g.sAMAccountName);
        for (const u of g.memberUsers) out.add(u);
        for (const c of g.memberGroups) walk(get(groupBySam, c, 'group'));
      };
      walk(get(groupBySam, sam, 'group'));
      return [...out].sort();
    },
    directGroups: (sam) => [...get(directGroups, sam, 'user')].sort(),
  };
}

/** the attributes startSambaDc loads for a generated user, besides objectClass (cn comes from the DN) */
export function adUserAttributes(u: AdUser): Record<string, string> {
  return {
    sAMAccountName: u.sAMAccountName,
    userPrincipalName: u.userPrincipalName,
    givenName: u.givenName,
    sn: u.sn,
    displayName: u.displayName,
    mail: u.mail,
    employeeID: u.employeeID,
    userAccountControl: String(u.userAccountControl),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The DC

export interface SambaDcOptions {
  /** the generated users and groups to load over LDAP; false for none. Default DEFAULT_DATA (400 users, 30 groups) */
  data?: AdDataOptions | false;
  /** concurrent LDAP connections for the load; default 2 (Samba serialises writes: more do not help) */
  loadConcurrency?: number;
  /** how long to wait for a DC another process runs; default 5 minutes */
  lockTimeoutMs?: number;
  /** how long to wait for the DC to answer; default 60 s */
  startTimeoutMs?: number;
  /** provision anew instead of copying the cached provisioned template (about 9 s more); default false */
  fresh?: boolean;
  /** Samba's `server services`; default ['ldap'] (ports 389, 636, 3268, 3269 only). Add 'kdc', 'rpc', 's3fs' … if needed */
  services?: string[];
  /** extra [global] smb.conf lines, e.g. ['ldap server require strong auth = yes'] */
  smbConf?: string[];
}

export interface SambaDcTimings {
  /** waiting for another process's DC */
  lockWaitMs: number;
  /** samba-tool domain provision (0 when the cached template was used) */
  provisionMs: number;
  /** copying the cached template (0 when provisioned) */
  copyMs: number;
  /** from spawning samba to its first answered bind */
  startMs: number;
  /** OUs, the sync account and the generated data */
  loadMs: number;
  totalMs: number;
  fromTemplate: boolean;
}

export interface SambaDc {
  /** ldap://127.0.0.1:389 (simple binds allowed: `ldap server require strong auth = no`) */
  url: string;
  /** ldaps://127.0.0.1:636; connect with tlsOptions { ca: [caCert], servername: DC_HOSTNAME } */
  ldapsUrl: string;
  /** PEM of Samba's auto-generated CA (private/tls/ca.pem) */
  caCert: string;
  /** the name in the server certificate (CN=DC1.example.test, no subjectAltName): pass it as tlsOptions.servername */
  tlsServername: string;
  baseDn: string;
  peopleDn: string;
  groupsDn: string;
  /** CN=Administrator,CN=Users,DC=example,DC=test; Administrator@example.test binds as well */
  adminDn: string;
  adminUpn: string;
  adminPassword: string;
  /** CN=sync,CN=Users,DC=example,DC=test: an ordinary enabled user with a password (outside peopleDn) */
  bindDn: string;
  bindUpn: string;
  bindPassword: string;
  /** the generated data that was loaded, with the expected memberships (empty when data: false) */
  data: AdDirectory;
  dataDir: string;
  pid: number;
  timings: SambaDcTimings;
  /** a new ldapts Client, bound as the Administrator (default), the sync account, or not bound */
  client(opts?: { as?: 'admin' | 'sync' | 'none'; ldaps?: boolean }): Promise<Client>;
  /** add an entry as the Administrator; Buffer values (unicodePwd, …) are sent as is */
  add(dn: string, attributes: Record<string, string | string[] | Buffer | Buffer[]>): Promise<void>;
  /** modify as the Administrator: ldapts Changes, or { attr: value(s) } to replace (null or [] deletes) */
  modify(dn: string, changes: Change | Change[] | Record<string, string | string[] | Buffer | null>): Promise<void>;
  delete(dn: string): Promise<void>;
  /** modifyDN to newRdn (e.g. 'CN=New Name') under the same parent, or under newParent; returns the new DN */
  rename(dn: string, newRdn: string, newParent?: string): Promise<string>;
  /** set a password (unicodePwd over ldaps) */
  setPassword(dn: string, password: string): Promise<void>;
  /** SIGTERM, wait for exit, remove dataDir, release the machine-wide lock */
  stop(): Promise<void>;
}

/** objectGUID / invocationId bytes (mixed-endian) → the canonical string, as samba-tool prints it */
export { guidToString } from '../../../src/sources/ldap/map.ts';

/** a GUID as an escaped filter value, e.g. `(objectGUID=${guidToFilterValue(buf)})` */
export function guidToFilterValue(b: Buffer): string {
  return [...b].map((x) => '\\' + x.toString(16).padStart(2, '0')).join('');
}

/** unicodePwd's value: the password in double quotes, UTF-16LE */
export function unicodePwd(password: string): Buffer {
  return Buffer.from(`"${password}"`, 'utf16le');
}

/** the DC this process runs (at most one: the machine-wide lock), for the exit hook */
let current: { child: ChildProcess; dir: string } | undefined;
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // a process that exits without stop(): kill its DC and let the next one start at once
  process.once('exit', () => {
    if (!current) return;
    killGroup(current.child.pid!, 'SIGKILL');
    fs.rmSync(current.dir, { recursive: true, force: true });
    fs.rmSync(DC_STATE, { force: true });
    releaseLockFile(DC_LOCK);
  });
}

/** samba runs in its own process group (spawned detached), so the group holds every samba process */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
    } catch {
      // gone already
    }
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface DcState {
  owner: number;
  sambaPid: number;
  /** /proc/<pid>/stat start time, to tell a reused pid apart */
  sambaStart?: string;
  dir: string;
}

/** We hold the DC lock: kill a DC a crashed earlier run left behind, and remove its directory. */
async function cleanupLeftoverDc(): Promise<void> {
  let state: DcState | undefined;
  try {
    state = JSON.parse(fs.readFileSync(DC_STATE, 'utf8')) as DcState;
  } catch {
    state = undefined;
  }
  if (state && Number.isInteger(state.sambaPid) && state.sambaPid > 0) {
    // only the samba we started: the same pid and start time (samba rewrites its command line, so that tells
    // nothing), or, without a recorded start time, a samba process whose working directory is the DC's directory
    let exe = '';
    let cwd = '';
    try {
      exe = fs.readlinkSync(`/proc/${state.sambaPid}/exe`);
      cwd = fs.readlinkSync(`/proc/${state.sambaPid}/cwd`);
    } catch {
      // not running
    }
    const ours = state.sambaStart !== undefined ? startTime(state.sambaPid) === state.sambaStart : exe.includes('samba') && cwd === state.dir;
    if (ours) killGroup(state.sambaPid, 'SIGKILL');
    for (let i = 0; i < 100 && ours && groupAlive(state.sambaPid); i++) await sleep(50);
  }
  if (state?.dir?.includes('usersync-samba-dc-')) fs.rmSync(state.dir, { recursive: true, force: true });
  fs.rmSync(DC_STATE, { force: true });
  // run directories of earlier DCs (we hold the lock, so none is in use) and unfinished templates of dead processes
  for (const name of fs.readdirSync(os.tmpdir())) {
    const full = path.join(os.tmpdir(), name);
    if (name.startsWith('usersync-samba-dc-')) fs.rmSync(full, { recursive: true, force: true });
    const m = /^usersync-samba-template-.*\.tmp-(\d+)$/.exec(name);
    if (m && !alive(Number(m[1]))) fs.rmSync(full, { recursive: true, force: true });
  }
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(1_000, () => done(true));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function waitForPortsFree(ports: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy: number[] = [];
    for (const p of ports) if (await portInUse(p)) busy.push(p);
    if (busy.length === 0) return;
    if (Date.now() > deadline) {
      let who = '';
      try {
        who = execFileSync('ss', ['-ltnp'], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => busy.some((p) => l.includes(`:${p} `)))
          .join('\n');
      } catch {
        // no ss
      }
      throw new Error(
        `127.0.0.1 port(s) ${busy.join(', ')} are in use by another program, and Samba's AD LDAP server can only ` +
          `listen on the standard ports. Stop it (a system slapd or samba?).\n${who}`,
      );
    }
    await sleep(200);
  }
}

let sambaVersion: string | undefined;
function version(): string {
  sambaVersion ??= execFileSync(SAMBA, ['--version'], { encoding: 'utf8' }).trim().replace(/^Version\s+/i, '');
  return sambaVersion;
}

function templateDir(): string {
  return path.join(os.tmpdir(), `usersync-samba-template-${version().replace(/[^A-Za-z0-9.+-]/g, '_')}-v${TEMPLATE_FORMAT}`);
}

interface TemplateInfo {
  /** the directory it was provisioned in, written into its smb.conf */
  provisionedAt: string;
  createdAt: string;
  samba: string;
}

/** the cached template, if it is complete and its certificate is valid for at least another day */
function readTemplate(): TemplateInfo | undefined {
  const dir = templateDir();
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'template.json'), 'utf8')) as TemplateInfo;
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'private', 'tls', 'cert.pem')));
    if (new Date(cert.validTo).getTime() < Date.now() + 86_400_000) return undefined;
    if (!fs.existsSync(path.join(dir, 'private', 'sam.ldb'))) return undefined;
    return info;
  } catch {
    return undefined;
  }
}

async function provision(dir: string): Promise<void> {
  await run(
    SAMBA_TOOL,
    [
      'domain', 'provision',
      `--targetdir=${dir}`,
      `--realm=${REALM}`,
      `--domain=${DOMAIN}`,
      '--server-role=dc',
      '--dns-backend=NONE',
      `--adminpass=${ADMIN_PASSWORD}`,
      '--host-name=dc1',
      '--option=interfaces=lo',
      '--option=bind interfaces only=yes',
      `--option=log file=${path.join(dir, 'log.%m')}`,
    ],
    { timeoutMs: 180_000 },
  );
}

/** smb.conf for this run: the template's paths moved to dir, and our own [global] settings */
function writeSmbConf(dir: string, fromDir: string, services: string[], extra: string[]): string {
  const conf = path.join(dir, 'etc', 'smb.conf');
  const own = [
    // provisioning does not persist it; without it simple binds over ldap:// fail with strongAuthRequired
    'ldap server require strong auth = no',
    `server services = ${services.join(', ')}`,
    // no fsync per LDB transaction (as Samba's own selftest): halves the load time; the DC is thrown away anyway
    'ldb:nosync = true',
    // fewer processes, faster start (the default 4 workers per service buy nothing on a 2-core machine)
    'prefork children = 2',
    // keep every runtime file in dir (the defaults are under /run/samba, shared with a packaged samba)
    `pid directory = ${path.join(dir, 'run')}`,
    `ncalrpc dir = ${path.join(dir, 'run', 'ncalrpc')}`,
    `winbindd socket directory = ${path.join(dir, 'run', 'winbindd')}`,
    `ntp signd socket directory = ${path.join(dir, 'run', 'ntp_signd')}`,
    ...extra,
  ];
  const lines = fs
    .readFileSync(conf, 'utf8')
    .split(fromDir)
    .join(dir)
    .split('\n')
    .filter((l) => !/^\s*(server services|ldap server require strong auth|ldb:nosync|prefork children|pid directory|ncalrpc dir|winbindd socket directory|ntp signd socket directory)\s*=/i.test(l));
  const at = lines.findIndex((l) => l.trim().toLowerCase() === '[global]');
  if (at < 0) throw new Error(`no [global] section in ${conf}`);
  lines.splice(at + 1, 0, ...own.map((l) => `\t${l}`));
  fs.writeFileSync(conf, lines.join('\n'));
  return conf;
}

async function waitUntilAnswering(proc: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`samba exited (${proc.exitCode ?? proc.signalCode}) before answering:\n${output().trim()}`);
    }
    const client = new Client({ url: 'ldap://127.0.0.1:389', connectTimeout: 500, timeout: 5_000 });
    try {
      await client.bind(`Administrator@${DNS_DOMAIN}`, ADMIN_PASSWORD);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`samba did not answer on 127.0.0.1:389 within ${timeoutMs} ms: ${String(err)}\n${output()}`);
    } finally {
      await client.unbind().catch(() => {});
    }
    await sleep(50);
  }
}

function parentDn(dn: string): string {
  const m = /(?<!\\),/.exec(dn);
  if (!m) throw new Error(`no parent in DN ${dn}`);
  return dn.slice(m.index + 1);
}

function toAttributes(attrs: Record<string, string | string[] | Buffer | Buffer[]>): Attribute[] {
  return Object.entries(attrs).map(([type, v]) => {
    const values = Array.isArray(v) ? v : [v];
    return new Attribute({ type, values: values as string[] | Buffer[] });
  });
}

/** run fn over items with `clients.length` requests in flight, one per connection */
async function pool<T>(clients: Client[], items: T[], fn: (c: Client, item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (next < items.length) {
        const item = items[next++]!;
        await fn(c, item);
      }
    }),
  );
}

async function loadData(
  adminClients: Client[],
  ldaps: Client,
  d: { peopleDn: string; groupsDn: string; bindDn: string; bindPassword: string; data: AdDirectory },
): Promise<void> {
  const admin = adminClients[0]!;
  for (const [dn, ou] of [[d.peopleDn, 'People'], [d.groupsDn, 'Groups']] as const) {
    await admin.add(dn, { objectClass: ['top', 'organizationalUnit'], ou, description: `usersync test ${ou.toLowerCase()}` });
  }
  // the sync account: an ordinary user with a password (set over ldaps, as AD requires), password never expires
  await ldaps.add(
    d.bindDn,
    toAttributes({
      objectClass: ['top', 'person', 'organizationalPerson', 'user'],
      sAMAccountName: 'sync',
      userPrincipalName: `sync@${DNS_DOMAIN}`,
      displayName: 'usersync sync account',
      description: 'read-only account for the LDAP source',
      userAccountControl: String(0x200 | 0x10000), // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
      unicodePwd: unicodePwd(d.bindPassword),
    }),
  );
  await pool(adminClients, d.data.users, (c, u) =>
    c.add(u.dn, {
      objectClass: ['top', 'person', 'organizationalPerson', 'user'],
      ...adUserAttributes(u),
    }),
  );
  // groups with their user members first, then the group → group edges (the member groups must exist)
  await pool(adminClients, d.data.groups, (c, g) => {
    const memberUsers = g.memberUsers.map((sam) => d.data.user(sam).dn);
    return c.add(g.dn, {
      objectClass: ['top', 'group'],
      sAMAccountName: g.sAMAccountName,
      description: g.description,
      ...(memberUsers.length ? { member: memberUsers } : {}),
    });
  });
  const nested = d.data.groups.filter((g) => g.memberGroups.length > 0);
  await pool(adminClients, nested, (c, g) =>
    c.modify(
      g.dn,
      new Change({
        operation: 'add',
        modification: new Attribute({ type: 'member', values: g.memberGroups.map((sam) => d.data.group(sam).dn) }),
      }),
    ),
  );
}

/**
 * Start a Samba AD DC for EXAMPLE.TEST on 127.0.0.1:389/636, with OU=People and OU=Groups, a sync account and the
 * generated data loaded, answering before this resolves. Waits while another process runs one.
 */
export async function startSambaDc(opts: SambaDcOptions = {}): Promise<SambaDc> {
  const t0 = performance.now();
  if (process.getuid?.() !== 0) {
    throw new Error('startSambaDc needs root: Samba binds ports 389/636 and runs as root');
  }
  await ensureSambaDc();
  installExitHook();
  const timings: SambaDcTimings = { lockWaitMs: 0, provisionMs: 0, copyMs: 0, startMs: 0, loadMs: 0, totalMs: 0, fromTemplate: false };

  await acquireLockFile(DC_LOCK, opts.lockTimeoutMs ?? 5 * 60_000, 'samba DC (another test run holds it)');
  timings.lockWaitMs = performance.now() - t0;
  let proc: ChildProcess | undefined;
  let dir: string | undefined;
  let stopped = false;
  const admins: Client[] = [];
  try {
    await cleanupLeftoverDc();
    await waitForPortsFree([389, 636, 3268, 3269], 10_000);

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-samba-dc-'));
    let fromDir = dir;
    let newTemplate: string | undefined;
    const template = opts.fresh ? undefined : readTemplate();
    if (template) {
      const t = performance.now();
      await run('cp', ['-a', `${templateDir()}/.`, dir]);
      fs.rmSync(path.join(dir, 'template.json'));
      fromDir = template.provisionedAt;
      timings.copyMs = performance.now() - t;
      timings.fromTemplate = true;
    } else {
      const t = performance.now();
      if (opts.fresh) {
        await provision(dir);
      } else {
        // provision into a new template, then copy it; its TLS files are added once samba has generated them
        newTemplate = `${templateDir()}.tmp-${process.pid}`;
        fs.rmSync(newTemplate, { recursive: true, force: true });
        await provision(newTemplate);
        timings.provisionMs = performance.now() - t;
        const c = performance.now();
        await run('cp', ['-a', `${newTemplate}/.`, dir]);
        fromDir = newTemplate;
        timings.copyMs = performance.now() - c;
      }
      timings.provisionMs ||= performance.now() - t;
    }
    const conf = writeSmbConf(dir, fromDir, opts.services ?? ['ldap'], opts.smbConf ?? []);

    // setpriv --pdeathsig: the kernel kills samba when this process dies, even by SIGKILL, and samba's own
    // children exit when it does. detached: its own process group, so stop() can signal every samba process.
    const sambaArgs = ['-s', conf, '--foreground', '--no-process-group', '--debug-stdout'];
    const [cmd, args] = fs.existsSync('/usr/bin/setpriv')
      ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', SAMBA, ...sambaArgs]]
      : [SAMBA, sambaArgs];
    const tStart = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: dir });
    proc = child;
    current = { child, dir };
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    fs.writeFileSync(DC_STATE, JSON.stringify({ owner: process.pid, sambaPid: child.pid!, sambaStart: startTime(child.pid!), dir } satisfies DcState));
    await waitUntilAnswering(child, opts.startTimeoutMs ?? 60_000, () => output);
    timings.startMs = performance.now() - tStart;

    if (newTemplate) {
      // keep the generated TLS CA and certificate: generating them (4096-bit RSA) takes seconds on every start
      const tlsFrom = path.join(dir, 'private', 'tls');
      const tlsTo = path.join(newTemplate, 'private', 'tls');
      fs.mkdirSync(tlsTo, { recursive: true });
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) fs.copyFileSync(path.join(tlsFrom, f), path.join(tlsTo, f));
      fs.chmodSync(path.join(tlsTo, 'key.pem'), 0o600);
      const info: TemplateInfo = { provisionedAt: newTemplate, createdAt: new Date().toISOString(), samba: version() };
      fs.writeFileSync(path.join(newTemplate, 'template.json'), JSON.stringify(info, null, 2));
      fs.rmSync(templateDir(), { recursive: true, force: true });
      fs.renameSync(newTemplate, templateDir());
    }

    const caCert = fs.readFileSync(path.join(dir, 'private', 'tls', 'ca.pem'), 'utf8');
    const baseDn = BASE_DN;
    const peopleDn = `OU=People,${baseDn}`;
    const groupsDn = `OU=Groups,${baseDn}`;
    const adminDn = `CN=Administrator,CN=Users,${baseDn}`;
    const bindDn = `CN=sync,CN=Users,${baseDn}`;
    // complexity: upper, lower, digit and symbol; never containing the account name
    const bindPassword = `Pw-${crypto.randomBytes(12).toString('hex')}-Xy7!`;
    const data = generateAdDirectory(opts.data === false ? { users: 0, groups: 0 } : (opts.data ?? DEFAULT_DATA), baseDn);
    const tlsOptions = { ca: [caCert], servername: DC_HOSTNAME };

    const newClient = async (o: { as?: 'admin' | 'sync' | 'none'; ldaps?: boolean } = {}): Promise<Client> => {
      const c = new Client(
        o.ldaps
          ? { url: 'ldaps://127.0.0.1:636', tlsOptions, connectTimeout: 5_000, timeout: 60_000 }
          : { url: 'ldap://127.0.0.1:389', connectTimeout: 5_000, timeout: 60_000 },
      );
      const as = o.as ?? 'admin';
      try {
        if (as === 'admin') await c.bind(adminDn, ADMIN_PASSWORD);
        else if (as === 'sync') await c.bind(bindDn, bindPassword);
      } catch (err) {
        await c.unbind().catch(() => {});
        throw err;
      }
      return c;
    };

    const tLoad = performance.now();
    for (let i = 0; i < Math.max(1, opts.loadConcurrency ?? 2); i++) admins.push(await newClient());
    const ldapsAdmin = await newClient({ ldaps: true });
    admins.push(ldapsAdmin);
    await loadData(admins.slice(0, -1), ldapsAdmin, { peopleDn, groupsDn, bindDn, bindPassword, data });
    for (const c of admins.splice(1, admins.length - 2)) await c.unbind().catch(() => {});
    timings.loadMs = performance.now() - tLoad;
    // admins = [plain admin client, ldaps admin client], kept for the helpers
    const [helper, helperTls] = admins as [Client, Client];

    const exited = (): Promise<void> =>
      child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
    const runDir = dir;

    const dc: SambaDc = {
      url: 'ldap://127.0.0.1:389',
      ldapsUrl: 'ldaps://127.0.0.1:636',
      caCert,
      tlsServername: DC_HOSTNAME,
      baseDn,
      peopleDn,
      groupsDn,
      adminDn,
      adminUpn: `Administrator@${DNS_DOMAIN}`,
      adminPassword: ADMIN_PASSWORD,
      bindDn,
      bindUpn: `sync@${DNS_DOMAIN}`,
      bindPassword,
      data,
      dataDir: runDir,
      pid: child.pid!,
      timings,
      client: newClient,
      add: (dn, attributes) => helper.add(dn, toAttributes(attributes)),
      modify: (dn, changes) => {
        if (changes instanceof Change || Array.isArray(changes)) return helper.modify(dn, changes);
        const list = Object.entries(changes).map(([type, v]) => {
          const values = v === null ? [] : Array.isArray(v) ? v : [v];
          return new Change({ operation: 'replace', modification: new Attribute({ type, values: values as string[] | Buffer[] }) });
        });
        return helper.modify(dn, list);
      },
      delete: (dn) => helper.del(dn),
      async rename(dn, newRdn, newParent) {
        await helper.modifyDN(dn, newParent ? `${newRdn},${newParent}` : newRdn);
        return `${newRdn},${newParent ?? parentDn(dn)}`;
      },
      setPassword: (dn, password) =>
        helperTls.modify(dn, new Change({ operation: 'replace', modification: new Attribute({ type: 'unicodePwd', values: [unicodePwd(password)] }) })),
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const c of admins) await c.unbind().catch(() => {});
        await stopSamba(child, exited);
        fs.rmSync(runDir, { recursive: true, force: true });
        fs.rmSync(DC_STATE, { force: true });
        releaseLockFile(DC_LOCK);
      },
    };
    timings.totalMs = performance.now() - t0;
    return dc;
  } catch (err) {
    for (const c of admins) await c.unbind().catch(() => {});
    if (proc) {
      const p = proc;
      await stopSamba(p, () => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()))));
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`${templateDir()}.tmp-${process.pid}`, { recursive: true, force: true });
    fs.rmSync(DC_STATE, { force: true });
    releaseLockFile(DC_LOCK);
    throw err;
  }
}

async function stopSamba(child: ChildProcess, exited: () => Promise<void>): Promise<void> {
  const pid = child.pid!;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000);
    await exited();
    clearTimeout(timer);
  }
  // samba's children exit when the root process does; make sure, and wait until the ports are free
  for (let i = 0; i < 100 && groupAlive(pid); i++) {
    if (i === 40) killGroup(pid, 'SIGKILL');
    await sleep(50);
  }
  if (current?.child === child) current = undefined;
}
