// A throwaway OpenLDAP server (Debian's slapd) for the LDAP source's tests and benchmarks.
// See README.md in this folder for what it configures and its limits.

import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'ldapts';
import { alive, installDebianPackages } from '../debian-packages.ts';
import { freePort } from '../process.ts';

export { generateDirectoryLdif } from './ldif.ts';
export type { DirectoryLdifOptions } from './ldif.ts';

export const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';
const PACKAGES = ['slapd', 'ldap-utils'];

// ---------------------------------------------------------------------------------------------------------------
// ensureSlapd

function installed(): boolean {
  return fs.existsSync(SLAPD) && fs.existsSync(SLAPADD) && fs.existsSync('/usr/bin/ldapmodify');
}

/**
 * Make sure Debian's slapd and ldap-utils are installed. As root, installs them (once, across processes) with the
 * system service kept from starting (a temporary policy-rc.d) and disabled; otherwise throws saying what to install.
 */
export async function ensureSlapd(): Promise<void> {
  await installDebianPackages({
    what: 'slapd',
    packages: PACKAGES,
    installed,
    provides: `${SLAPD}, ${SLAPADD} and /usr/bin/ldapmodify`,
    lockFile: path.join(os.tmpdir(), 'usersync-slapd-install.lock'),
    lockTimeoutMs: 10 * 60_000,
    // keep the packaged service from starting at boot or holding port 389; the tests run their own instances
    services: ['slapd'],
    pidDirs: ['/run/slapd', '/var/run/slapd'],
    // apt-get update only when the package lists are missing or stale
    updateIf: /Unable to locate package|has no installation candidate|Failed to fetch|404/i,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// startSlapd

export interface SlapdOptions {
  /** default dc=example,dc=test */
  baseDn?: string;
  /** size limit for every non-root identity (unpaged searches); paged searches are unlimited. Default 500. */
  sizeLimit?: number;
  /** LDIF added over LDAP (ldapadd) after the server is up */
  ldif?: string;
  /** LDIF loaded with slapadd before start (fast bulk load): the text, or { file } for a file on disk */
  ldifOffline?: string | { file: string };
  /** dynlist overlay computing (nested) memberOf for groupOfNames. Default true. */
  dynlist?: boolean;
  /** refint overlay: renames and deletions update `member` values. Default true. */
  refint?: boolean;
  /** also listen on ldaps:// and allow StartTLS, with a generated self-signed certificate. Default false. */
  tls?: boolean;
  /** how long to wait for the server to answer. Default 15 s. */
  startTimeoutMs?: number;
}

export interface Slapd {
  /** ldap://127.0.0.1:<port> (StartTLS too when tls) */
  url: string;
  /** ldaps://127.0.0.1:<port>, when tls */
  ldapsUrl?: string;
  /** PEM of the self-signed certificate (its own CA), when tls; SAN IP:127.0.0.1 and DNS:localhost */
  caCert?: string;
  port: number;
  baseDn: string;
  peopleDn: string;
  groupsDn: string;
  /** the rootdn: no size limits, no ACLs */
  adminDn: string;
  adminPassword: string;
  /** an ordinary read-only account subject to sizeLimit (what a sync connector would use) */
  bindDn: string;
  bindPassword: string;
  sizeLimit: number;
  dataDir: string;
  pid: number;
  /** ldapadd as the rootdn; records without changetype are adds */
  add(ldif: string): Promise<void>;
  /** ldapmodify as the rootdn; records need a changetype (modify, add, delete, modrdn) */
  modify(ldif: string): Promise<void>;
  delete(dn: string): Promise<void>;
  /** a new ldapts client (not bound); tlsOptions carry the CA for StartTLS / ldaps */
  client(opts?: { ldaps?: boolean }): Client;
  /** SIGINT, wait for exit, remove dataDir */
  stop(): Promise<void>;
  /** SIGKILL and remove dataDir, synchronously */
  kill(): void;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}


function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} failed (${err.code ?? err.signal}): ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

function dcOf(baseDn: string): { attr: string; value: string; objectClasses: string[] } {
  const [rdn] = baseDn.split(',');
  const [attr, value] = rdn!.split('=') as [string, string];
  const a = attr.trim().toLowerCase();
  if (a === 'dc') return { attr: 'dc', value: value.trim(), objectClasses: ['dcObject', 'organization'] };
  if (a === 'o') return { attr: 'o', value: value.trim(), objectClasses: ['organization'] };
  if (a === 'ou') return { attr: 'ou', value: value.trim(), objectClasses: ['organizationalUnit'] };
  throw new Error(`baseDn must start with dc=, o= or ou=: ${baseDn}`);
}

function bootstrapLdif(s: { baseDn: string; bindDn: string; bindPassword: string }): string {
  const top = dcOf(s.baseDn);
  const lines = [`dn: ${s.baseDn}`, ...top.objectClasses.map((oc) => `objectClass: ${oc}`), `${top.attr}: ${top.value}`];
  if (top.attr === 'dc') lines.push(`o: ${top.value}`);
  return [
    lines.join('\n'),
    `dn: ou=people,${s.baseDn}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${s.baseDn}\nobjectClass: organizationalUnit\nou: groups`,
    // the default password policy: makes ppolicy honour pwdAccountLockedTime (no lockout, no expiry)
    `dn: cn=default-policy,${s.baseDn}\nobjectClass: organizationalRole\nobjectClass: pwdPolicy\ncn: default-policy\npwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0`,
    `dn: ${s.bindDn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: sync\nuserPassword: ${s.bindPassword}`,
  ].join('\n\n') + '\n\n';
}

interface ConfOptions {
  dir: string;
  baseDn: string;
  adminDn: string;
  adminPassword: string;
  bindDn: string;
  sizeLimit: number;
  dynlist: boolean;
  refint: boolean;
  tls: boolean;
}

function slapdConf(c: ConfOptions): string {
  const q = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  const schemas = ['core', 'cosine', 'inetorgperson', 'nis', ...(c.dynlist ? ['dyngroup'] : [])];
  const modules = ['back_mdb', 'ppolicy', ...(c.dynlist ? ['dynlist'] : []), ...(c.refint ? ['refint'] : [])];
  const limit = `size.soft=${c.sizeLimit} size.hard=${c.sizeLimit} size.prtotal=unlimited`;
  return [
    ...schemas.map((s) => `include ${path.join(SCHEMA_DIR, `${s}.schema`)}`),
    `modulepath ${MODULE_DIR}`,
    ...modules.map((m) => `moduleload ${m}`),
    `pidfile ${path.join(c.dir, 'run', 'slapd.pid')}`,
    `argsfile ${path.join(c.dir, 'run', 'slapd.args')}`,
    `sizelimit ${c.sizeLimit}`,
    ...(c.tls
      ? [
          `TLSCertificateFile ${path.join(c.dir, 'run', 'cert.pem')}`,
          `TLSCertificateKeyFile ${path.join(c.dir, 'run', 'key.pem')}`,
        ]
      : []),
    '',
    'database mdb',
    'maxsize 4294967296',
    `suffix ${q(c.baseDn)}`,
    `rootdn ${q(c.adminDn)}`,
    `rootpw ${c.adminPassword}`,
    `directory ${path.join(c.dir, 'data')}`,
    'index objectClass eq',
    // equality indexes only: substring indexes made slapadd of 50,000 users three times slower
    'index uid,cn,mail,employeeNumber eq',
    'index member eq',
    'index entryUUID eq',
    // the rootdn is never limited; every other identity (the sync account, anonymous) gets the size limit on
    // unpaged searches and no limit on the total of a paged search
    `limits dn.exact=${q(c.bindDn)} ${limit}`,
    `limits users ${limit}`,
    `limits anonymous ${limit}`,
    'access to attrs=userPassword by self write by anonymous auth by * none',
    'access to * by * read',
    ...(c.dynlist ? ['overlay dynlist', 'dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames*'] : []),
    ...(c.refint ? ['overlay refint', 'refint_attributes member'] : []),
    'overlay ppolicy',
    `ppolicy_default ${q(`cn=default-policy,${c.baseDn}`)}`,
    '',
  ].join('\n');
}

const isRoot = (): boolean => process.getuid?.() === 0;

function unprivilegedIds(): { uid: number; gid: number } {
  const passwd = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = (passwd ?? 'nobody:x:65534:65534').split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.chownSync(dir, uid, gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    fs.chownSync(path.join(entry.parentPath, entry.name), uid, gid);
  }
}

async function slapadd(conf: string, file: string): Promise<void> {
  await run(SLAPADD, ['-q', '-f', conf, '-l', file]);
}

/** Remove data directories left by processes that were killed outright (their slapd died with them). */
function sweepStaleDirs(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith('usersync-slapd-')) continue;
    const dir = path.join(os.tmpdir(), name);
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'run', 'slapd.pid'), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && !alive(pid)) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // no pid file yet (starting) or not ours to read: leave it
    }
  }
}

/** Start a fresh slapd on a random free port, answering before this resolves. */
export async function startSlapd(opts: SlapdOptions = {}): Promise<Slapd> {
  await ensureSlapd();
  installExitHook();
  sweepStaleDirs();
  const baseDn = opts.baseDn ?? 'dc=example,dc=test';
  const sizeLimit = opts.sizeLimit ?? 500;
  const adminDn = `cn=admin,${baseDn}`;
  const bindDn = `cn=sync,${baseDn}`;
  const adminPassword = crypto.randomBytes(12).toString('base64url');
  const bindPassword = crypto.randomBytes(12).toString('base64url');
  const tls = opts.tls ?? false;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-slapd-'));
  let started = false;
  try {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.mkdirSync(path.join(dir, 'run'));
    const conf = path.join(dir, 'slapd.conf');
    fs.writeFileSync(
      conf,
      slapdConf({ dir, baseDn, adminDn, adminPassword, bindDn, sizeLimit, dynlist: opts.dynlist ?? true, refint: opts.refint ?? true, tls }),
      { mode: 0o600 },
    );
    const pwFile = path.join(dir, 'run', 'admin.pw');
    fs.writeFileSync(pwFile, adminPassword, { mode: 0o600 });

    let caCert: string | undefined;
    if (tls) {
      await run('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', path.join(dir, 'run', 'key.pem'), '-out', path.join(dir, 'run', 'cert.pem'),
      ]);
      caCert = fs.readFileSync(path.join(dir, 'run', 'cert.pem'), 'utf8');
    }

    // Offline load: the base entries, then the caller's LDIF (slapadd also checks the configuration).
    const boot = path.join(dir, 'bootstrap.ldif');
    const offline = opts.ldifOffline;
    fs.writeFileSync(boot, bootstrapLdif({ baseDn, bindDn, bindPassword }) + (typeof offline === 'string' ? `${offline}\n` : ''));
    await slapadd(conf, boot);
    if (offline && typeof offline !== 'string') await slapadd(conf, offline.file);
    fs.rmSync(boot);

    const ids = isRoot() ? unprivilegedIds() : undefined;
    if (ids) chownTree(dir, ids.uid, ids.gid);

    let child: ChildProcess | undefined;
    let port = 0;
    let ldapsPort = 0;
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 4 && !child; attempt++) {
      port = await freePort();
      ldapsPort = tls ? await freePort() : 0;
      const urls = [`ldap://127.0.0.1:${port}/`, ...(tls ? [`ldaps://127.0.0.1:${ldapsPort}/`] : [])].join(' ');
      const slapdArgs = ['-d', '0', '-f', conf, '-h', urls];
      // setpriv: drop root (slapd refuses nothing as root, but the data should not be root's) and have the kernel
      // kill slapd when this process dies, even by SIGKILL (a crashed vitest worker leaves nothing behind).
      const [cmd, args] = fs.existsSync('/usr/bin/setpriv')
        ? [
            '/usr/bin/setpriv',
            [
              ...(ids ? ['--reuid', String(ids.uid), '--regid', String(ids.gid), '--clear-groups'] : []),
              '--pdeathsig', 'KILL', '--', SLAPD, ...slapdArgs,
            ],
          ]
        : [SLAPD, ids ? [...slapdArgs, '-u', String(ids.uid), '-g', String(ids.gid)] : slapdArgs];
      const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      running.add(proc);
      proc.once('exit', () => running.delete(proc));
      try {
        await waitUntilAnswering(proc, `ldap://127.0.0.1:${port}`, adminDn, adminPassword, opts.startTimeoutMs ?? 15_000, () => output);
        child = proc;
      } catch (err) {
        proc.kill('SIGKILL');
        lastError = err as Error;
        if (!/bind|address already in use|exited/i.test(lastError.message)) break;
      }
    }
    if (!child) throw lastError ?? new Error('slapd did not start');
    started = true;
    const proc = child;

    const url = `ldap://127.0.0.1:${port}`;
    const ldapsUrl = tls ? `ldaps://127.0.0.1:${ldapsPort}` : undefined;
    const tool = (bin: string, ldif: string, extra: string[] = []): Promise<void> =>
      run(`/usr/bin/${bin}`, ['-x', '-H', url, '-D', adminDn, '-y', pwFile, ...extra], ldif).then(() => undefined);
    const exited = (): Promise<void> =>
      proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', () => r()));

    const server: Slapd = {
      url,
      ldapsUrl,
      caCert,
      port,
      baseDn,
      peopleDn: `ou=people,${baseDn}`,
      groupsDn: `ou=groups,${baseDn}`,
      adminDn,
      adminPassword,
      bindDn,
      bindPassword,
      sizeLimit,
      dataDir: dir,
      pid: proc.pid!,
      add: (ldif) => tool('ldapmodify', ldif, ['-a']),
      modify: (ldif) => tool('ldapmodify', ldif),
      delete: (dn) => tool('ldapdelete', `${dn}\n`),
      client: (o = {}) =>
        o.ldaps
          ? new Client({ url: ldapsUrl ?? url, tlsOptions: caCert ? { ca: [caCert] } : undefined })
          : new Client({ url }),
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGINT');
          const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
          await exited();
          clearTimeout(timer);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
      kill() {
        proc.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
    if (opts.ldif) await server.add(opts.ldif);
    return server;
  } finally {
    if (!started) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function waitUntilAnswering(
  proc: ChildProcess,
  url: string,
  dn: string,
  password: string,
  timeoutMs: number,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  proc.once('exit', () => (exited = true));
  for (;;) {
    if (exited || proc.exitCode !== null) throw new Error(`slapd exited (${proc.exitCode ?? proc.signalCode}): ${output().trim()}`);
    const client = new Client({ url, connectTimeout: 500, timeout: 2_000 });
    try {
      await client.bind(dn, password);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`slapd did not answer at ${url} within ${timeoutMs} ms: ${String(err)}\n${output()}`);
    } finally {
      await client.unbind().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
