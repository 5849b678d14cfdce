// Admin accounts: people who log in to the admin UI and API. Passwords are kept as scrypt hashes; a run of
// failed logins locks the account for a while. Every change is audited.

import { randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import type { Db } from '../store/db.ts';
import { isUniqueViolation, now } from '../store/db.ts';
import { audit } from '../store/connectors.ts';

export type AdminRole = 'administrator' | 'auditor';
export const ADMIN_ROLES: readonly AdminRole[] = ['administrator', 'auditor'];

export interface AccountInfo {
  id: string;
  username: string;
  role: AdminRole;
  disabled: boolean;
  locked: boolean;
  lockedUntil: string | null;
  mustChangePassword: boolean;
  lastLoginAt: string | null;
  createdAt: string;
}

export interface LockoutPolicy {
  /** consecutive failed logins that lock an account */
  attempts: number;
  /** how long a locked account stays locked */
  lockMs: number;
}

export class AccountError extends Error {
  constructor(
    readonly code: 'invalid_account' | 'weak_password' | 'username_taken' | 'not_found' | 'last_administrator',
    message: string,
  ) {
    super(message);
  }
}

export type LoginResult =
  | { ok: true; account: AccountInfo }
  | { ok: false; reason: 'invalid_credentials' }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number; justLocked: boolean };

// ---------------------------------------------------------------- passwords

/** N = 2^15 costs about 50-100 ms and 32 MB per hash: slow for a guesser, fine for a login. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keyLength: 32 };

function scrypt(password: string, salt: Buffer, keyLength: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, keyLength, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keyLength } = SCRYPT;
  const key = await scrypt(password, salt, keyLength, { N, r, p, maxmem: 128 * N * r * 2 });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  const key = await scrypt(password, salt, expected.length, { N, r, p, maxmem: 128 * N * r * 2 });
  return timingSafeEqual(key, expected);
}

/** A password an administrator can be given once: 20 characters from an alphabet without look-alikes. */
export function generatePassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(20);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/** Why a password is refused, or undefined when it is acceptable. Length is what matters (NIST 800-63B). */
export function passwordProblem(password: unknown, username?: string): string | undefined {
  if (typeof password !== 'string') return 'the password must be a string';
  if (password.length < 12) return 'the password must be at least 12 characters long';
  if (password.length > 256) return 'the password must be at most 256 characters long';
  if (new Set(password).size < 5) return 'the password must not repeat a few characters over and over';
  if (username && password.toLowerCase().includes(username.toLowerCase())) return 'the password must not contain the username';
  return undefined;
}

function usernameProblem(username: unknown): string | undefined {
  if (typeof username !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/.test(username)) {
    return "'username' must be 1 to 100 letters, digits, '.', '_', '@' or '-', starting with a letter or digit";
  }
  return undefined;
}

// ---------------------------------------------------------------- the store

interface AccountRow {
  id: string;
  username: string;
  password_hash: string;
  role: string;
  disabled: number | string;
  must_change_password: number | string;
  failed_logins: number | string;
  locked_until: string | null;
  last_login_at: string | null;
  created_at: string;
}

function info(row: AccountRow): AccountInfo {
  const locked = row.locked_until !== null && Date.parse(row.locked_until) > Date.now();
  return {
    id: row.id,
    username: row.username,
    role: row.role as AdminRole,
    disabled: Number(row.disabled) === 1,
    locked,
    lockedUntil: locked ? row.locked_until : null,
    mustChangePassword: Number(row.must_change_password) === 1,
    lastLoginAt: row.last_login_at,
    createdAt: row.created_at,
  };
}

export class AccountStore {
  /** compared against when the username is unknown, so a miss takes as long as a wrong password */
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly db: Db,
    readonly lockout: LockoutPolicy = { attempts: 5, lockMs: 15 * 60_000 },
  ) {}

  async count(): Promise<number> {
    const r = await this.db.kysely.selectFrom('admin_accounts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async list(): Promise<AccountInfo[]> {
    const rows = await this.db.kysely.selectFrom('admin_accounts').selectAll().orderBy('username_key').execute();
    return rows.map(info);
  }

  async get(id: string): Promise<AccountInfo | undefined> {
    const row = await this.db.kysely.selectFrom('admin_accounts').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? info(row) : undefined;
  }

  async byUsername(username: string): Promise<AccountInfo | undefined> {
    const row = await this.db.kysely.selectFrom('admin_accounts').selectAll().where('username_key', '=', username.toLowerCase()).executeTakeFirst();
    return row ? info(row) : undefined;
  }

  async create(input: { username: unknown; password: unknown; role: unknown; mustChangePassword?: boolean }, actor: string): Promise<AccountInfo> {
    const bad = usernameProblem(input.username);
    if (bad) throw new AccountError('invalid_account', bad);
    const username = input.username as string;
    if (!ADMIN_ROLES.includes(input.role as AdminRole)) throw new AccountError('invalid_account', "'role' must be 'administrator' or 'auditor'");
    const weak = passwordProblem(input.password, username);
    if (weak) throw new AccountError('weak_password', weak);
    const at = now();
    const row = {
      id: randomUUID(),
      username,
      username_key: username.toLowerCase(),
      password_hash: await hashPassword(input.password as string),
      role: input.role as AdminRole,
      disabled: 0,
      must_change_password: input.mustChangePassword ? 1 : 0,
      failed_logins: 0,
      locked_until: null,
      last_login_at: null,
      created_at: at,
      updated_at: at,
    };
    try {
      await this.db.transaction(async (trx) => {
        await trx.insertInto('admin_accounts').values(row).execute();
        await audit(trx, actor, 'account.create', row.id, { username, role: row.role });
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new AccountError('username_taken', `an account named '${username}' exists already`);
      throw e;
    }
    return info(row);
  }

  /**
   * Change role, disabled state or password. The last enabled administrator cannot be demoted, disabled or
   * deleted: someone must be able to administer the service.
   */
  async update(id: string, patch: { role?: unknown; disabled?: unknown; password?: unknown }, actor: string): Promise<AccountInfo> {
    if (patch.role !== undefined && !ADMIN_ROLES.includes(patch.role as AdminRole)) throw new AccountError('invalid_account', "'role' must be 'administrator' or 'auditor'");
    if (patch.disabled !== undefined && typeof patch.disabled !== 'boolean') throw new AccountError('invalid_account', "'disabled' must be true or false");
    const current = await this.db.kysely.selectFrom('admin_accounts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!current) throw new AccountError('not_found', `no account '${id}'`);
    if (patch.password !== undefined) {
      const weak = passwordProblem(patch.password, current.username);
      if (weak) throw new AccountError('weak_password', weak);
    }
    const set: Record<string, unknown> = { updated_at: now() };
    if (patch.role !== undefined) set.role = patch.role;
    if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
    // a password set by someone else is to be changed by its owner at the next login
    if (patch.password !== undefined) Object.assign(set, { password_hash: await hashPassword(patch.password as string), must_change_password: 1, failed_logins: 0, locked_until: null });
    await this.db.transaction(async (trx) => {
      await trx.updateTable('admin_accounts').set(set).where('id', '=', id).execute();
      await this.keepAnAdministrator(trx);
      // a disabled account, or one whose password was reset, is logged out everywhere
      if (patch.disabled === true || patch.password !== undefined) await trx.deleteFrom('admin_sessions').where('account_id', '=', id).execute();
      const changed = Object.keys(patch).filter((k) => (patch as Record<string, unknown>)[k] !== undefined);
      await audit(trx, actor, 'account.update', id, { username: current.username, changed, ...(patch.role !== undefined ? { role: patch.role } : {}), ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}) });
    });
    return (await this.get(id))!;
  }

  /** A user's own password change: the current one is checked first. */
  async changeOwnPassword(id: string, currentPassword: unknown, newPassword: unknown, actor: string, keepSessionHash?: string): Promise<'ok' | 'wrong_password'> {
    const row = await this.db.kysely.selectFrom('admin_accounts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AccountError('not_found', `no account '${id}'`);
    if (typeof currentPassword !== 'string' || !(await verifyPassword(currentPassword, row.password_hash))) return 'wrong_password';
    const weak = passwordProblem(newPassword, row.username);
    if (weak) throw new AccountError('weak_password', weak);
    if (newPassword === currentPassword) throw new AccountError('weak_password', 'the new password must differ from the current one');
    const hash = await hashPassword(newPassword as string);
    await this.db.transaction(async (trx) => {
      await trx.updateTable('admin_accounts').set({ password_hash: hash, must_change_password: 0, updated_at: now() }).where('id', '=', id).execute();
      // other sessions of this account end: whoever else was logged in with the old password is out
      let others = trx.deleteFrom('admin_sessions').where('account_id', '=', id);
      if (keepSessionHash) others = others.where('id_hash', '!=', keepSessionHash);
      await others.execute();
      await audit(trx, actor, 'account.password-change', id, { username: row.username });
    });
    return 'ok';
  }

  async unlock(id: string, actor: string): Promise<AccountInfo> {
    const done = await this.db.transaction(async (trx) => {
      const res = await trx.updateTable('admin_accounts').set({ failed_logins: 0, locked_until: null, updated_at: now() }).where('id', '=', id).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await audit(trx, actor, 'account.unlock', id, {});
      return true;
    });
    if (!done) throw new AccountError('not_found', `no account '${id}'`);
    return (await this.get(id))!;
  }

  async delete(id: string, actor: string): Promise<void> {
    await this.db.transaction(async (trx) => {
      const row = await trx.selectFrom('admin_accounts').select(['username']).where('id', '=', id).executeTakeFirst();
      if (!row) throw new AccountError('not_found', `no account '${id}'`);
      await trx.deleteFrom('admin_sessions').where('account_id', '=', id).execute();
      await trx.deleteFrom('admin_accounts').where('id', '=', id).execute();
      await this.keepAnAdministrator(trx);
      await audit(trx, actor, 'account.delete', id, { username: row.username });
    });
  }

  private async keepAnAdministrator(trx: Db['kysely']): Promise<void> {
    const r = await trx
      .selectFrom('admin_accounts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'administrator')
      .where('disabled', '=', 0)
      .executeTakeFirstOrThrow();
    // thrown inside the transaction, so the change is rolled back
    if (Number(r.n) === 0) throw new AccountError('last_administrator', 'this would leave no enabled administrator; make another account an administrator first');
  }

  /**
   * Check a login. Failures count towards the lockout in one UPDATE, so logins racing in parallel
   * cannot slip past the limit; a locked account is refused without its password being checked.
   */
  async login(username: unknown, password: unknown, meta: { ip: string }): Promise<LoginResult> {
    const name = typeof username === 'string' ? username : '';
    const row = name ? await this.db.kysely.selectFrom('admin_accounts').selectAll().where('username_key', '=', name.toLowerCase()).executeTakeFirst() : undefined;
    if (row && row.locked_until && Date.parse(row.locked_until) > Date.now()) {
      return { ok: false, reason: 'locked', retryAfterSeconds: Math.ceil((Date.parse(row.locked_until) - Date.now()) / 1000), justLocked: false };
    }
    const given = typeof password === 'string' ? password.slice(0, 1024) : '';
    this.dummyHash ??= hashPassword(generatePassword());
    const matches = await verifyPassword(given, row?.password_hash ?? (await this.dummyHash));
    if (row && matches && Number(row.disabled) === 0) {
      const at = now();
      await this.db.transaction(async (trx) => {
        await trx.updateTable('admin_accounts').set({ failed_logins: 0, locked_until: null, last_login_at: at }).where('id', '=', row.id).execute();
        await audit(trx, `account:${row.username}`, 'session.login', row.id, { ip: meta.ip });
      });
      return { ok: true, account: info({ ...row, failed_logins: 0, locked_until: null, last_login_at: at }) };
    }
    if (!row) {
      await audit(this.db.kysely, `anonymous:${meta.ip}`, 'session.login-failed', 'unknown-account', { username: name.slice(0, 100), ip: meta.ip });
      return { ok: false, reason: 'invalid_credentials' };
    }
    const lockUntil = new Date(Date.now() + this.lockout.lockMs).toISOString();
    const locked = await this.db.transaction(async (trx) => {
      await trx
        .updateTable('admin_accounts')
        .set((eb) => ({ failed_logins: eb('failed_logins', '+', 1) }))
        .where('id', '=', row.id)
        .execute();
      const after = await trx.selectFrom('admin_accounts').select(['failed_logins', 'locked_until']).where('id', '=', row.id).executeTakeFirstOrThrow();
      // a login racing with the one that locked the account finds it locked now, and says so
      const lockedAlready = after.locked_until !== null && Date.parse(after.locked_until) > Date.now();
      const lockNow = !lockedAlready && Number(after.failed_logins) >= this.lockout.attempts;
      if (lockNow) await trx.updateTable('admin_accounts').set({ locked_until: lockUntil, failed_logins: 0 }).where('id', '=', row.id).execute();
      await audit(trx, `anonymous:${meta.ip}`, lockNow ? 'account.locked' : 'session.login-failed', row.id, { username: row.username, ip: meta.ip, ...(Number(row.disabled) === 1 && matches ? { disabled: true } : {}) });
      return lockNow ? { until: lockUntil, justLocked: true } : lockedAlready ? { until: after.locked_until!, justLocked: false } : undefined;
    });
    if (locked) return { ok: false, reason: 'locked', retryAfterSeconds: Math.ceil((Date.parse(locked.until) - Date.now()) / 1000), justLocked: locked.justLocked };
    return { ok: false, reason: 'invalid_credentials' };
  }
}
