// Encryption at rest for stored secrets (Graph client secrets, certificate private keys, LDAP bind
// passwords, application tokens) with a key the operator holds.
//
// The key comes from USERSYNC_SECRET_KEY, else from <dataDir>/secret.key (created on first start).
// Either may hold several keys, newest first: the first encrypts, all decrypt, so a key rotation
// can put a new key first and re-encrypt at leisure (see SecretBox.needsReencrypt).
//
// A sealed value is `enc:v1:<keyId>:<base64url iv>:<base64url ciphertext+tag>`: AES-256-GCM with a
// random 12-byte IV and the caller's context (e.g. `connector:<id>:clientSecret`) as additional
// authenticated data, so a value copied into another record's field does not decrypt.

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const SECRET_KEY_ENV = 'USERSYNC_SECRET_KEY';
export const SECRET_KEY_FILE = 'secret.key';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'enc:v1:';
const SEALED = /^enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]{16}):([A-Za-z0-9_-]{22,})$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;
const KEY_FORM =
  'a 32-byte key written as base64 (44 characters, e.g. from `openssl rand -base64 32`) or as 64 hexadecimal characters';

export type SecretErrorCode = 'malformed' | 'unknown-key' | 'undecryptable' | 'already-sealed' | 'bad-context';

/** A secret could not be sealed or opened. The message never contains the secret or a key. */
export class SecretError extends Error {
  readonly code: SecretErrorCode;
  constructor(code: SecretErrorCode, message: string) {
    super(message);
    this.name = 'SecretError';
    this.code = code;
  }
}

/** The id of a key: the first 8 hex characters of its SHA-256. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** Whether a value has the shape of a sealed secret (needs no key). */
export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && SEALED.test(value);
}

export function secretKeyPath(dataDir: string): string {
  return path.join(dataDir, SECRET_KEY_FILE);
}

export class SecretBox {
  /** The id of the key new values are sealed with. */
  currentKeyId = '';
  // private fields: key material does not show in console.log, util.inspect or JSON.stringify
  #keys = new Map<string, Buffer>();
  #current: Buffer = Buffer.alloc(0);
  /** the key file this box follows (a rotation by `usersync key rotate` reaches a running service) */
  #file?: { path: string; mtimeMs: number };

  /** `keys`: 32-byte keys, newest (the one to encrypt with) first. */
  constructor(keys: readonly Buffer[]) {
    this.#setKeys(keys);
  }

  #setKeys(keys: readonly Buffer[]): void {
    if (keys.length === 0) throw new Error('SecretBox needs at least one key');
    const map = new Map<string, Buffer>();
    for (const [i, key] of keys.entries()) {
      if (key.length !== KEY_BYTES) throw new Error(`secret key ${i + 1} is ${key.length} bytes; keys are ${KEY_BYTES} bytes`);
      const id = keyId(key);
      const known = map.get(id);
      if (known === undefined) map.set(id, Buffer.from(key));
      else if (!known.equals(key)) throw new Error(`two different secret keys share the id ${id}; generate a new key`);
    }
    this.#keys = map;
    this.#current = map.values().next().value as Buffer;
    this.currentKeyId = keyId(this.#current);
  }

  /** Follow a key file: when it changes (a rotation), its keys replace these before the next use. */
  followFile(file: string): this {
    this.#file = { path: file, mtimeMs: fs.statSync(file).mtimeMs };
    return this;
  }

  #refresh(): void {
    if (!this.#file) return;
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(this.#file.path).mtimeMs;
    } catch {
      return; // keep the keys in memory rather than lose every secret
    }
    if (mtimeMs === this.#file.mtimeMs) return;
    const keys = readKeyFile(this.#file.path);
    if (keys) this.#setKeys(keys);
    this.#file.mtimeMs = mtimeMs;
  }

  /** A box with a fresh random in-memory key, for tests. */
  static forTests(): SecretBox {
    return new SecretBox([randomBytes(KEY_BYTES)]);
  }

  /** Ids of all loaded keys, newest first. */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  encrypt(plain: string, context: string): string {
    checkContext(context);
    this.#refresh();
    if (typeof plain !== 'string') throw new TypeError('only strings can be sealed');
    if (isSealed(plain)) throw new SecretError('already-sealed', `the value for ${context} is already sealed`);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#current, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${this.currentKeyId}:${iv.toString('base64url')}:${body.toString('base64url')}`;
  }

  decrypt(sealed: string, context: string): string {
    checkContext(context);
    this.#refresh();
    const { id, iv, body } = parse(sealed, context);
    const key = this.#keys.get(id);
    if (key === undefined) {
      throw new SecretError(
        'unknown-key',
        `the value for ${context} was sealed with key ${id}, which is not loaded (loaded: ${this.keyIds.join(', ')}); ` +
          `add that key after the current one in ${SECRET_KEY_ENV} or the key file`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretError(
        'undecryptable',
        `the value for ${context} does not decrypt: it was altered or belongs to another field or record`,
      );
    }
  }

  isSealed(value: unknown): value is string {
    return isSealed(value);
  }

  /** Whether a sealed value was sealed with an older key than the current one. */
  needsReencrypt(sealed: string): boolean {
    this.#refresh();
    return parse(sealed).id !== this.currentKeyId;
  }

  /** The id of the key a sealed value was sealed with. */
  static sealedWith(sealed: string): string {
    return parse(sealed).id;
  }
}

function checkContext(context: string): void {
  if (typeof context !== 'string' || context === '') throw new SecretError('bad-context', 'a secret needs a non-empty context');
}

function parse(sealed: string, context?: string): { id: string; iv: Buffer; body: Buffer } {
  const m = typeof sealed === 'string' ? SEALED.exec(sealed) : null;
  const iv = m ? Buffer.from(m[2]!, 'base64url') : undefined;
  const body = m ? Buffer.from(m[3]!, 'base64url') : undefined;
  // canonical base64url only, so that every change to the text is a change to the bytes
  if (!m || !iv || !body || iv.toString('base64url') !== m[2] || body.toString('base64url') !== m[3]) {
    // never echo the value: it may be a plaintext secret
    const what = context === undefined ? 'the value' : `the value for ${context}`;
    throw new SecretError('malformed', `${what} is not a sealed secret (expected enc:v1:<keyId>:<iv>:<data>)`);
  }
  return { id: m[1]!, iv, body };
}

/** One key in base64 (standard or url-safe) or hex; null when it is neither. */
function decodeKey(text: string): Buffer | null {
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) {
    const key = Buffer.from(text, 'base64');
    if (key.length === KEY_BYTES) return key;
  }
  return null;
}

function parseEnvKeys(raw: string): Buffer[] {
  const entries = raw.split(',').map((s) => s.trim());
  return entries.map((entry, i) => {
    const key = decodeKey(entry);
    if (key) return key;
    const which = entries.length === 1 ? `${SECRET_KEY_ENV} is` : `${SECRET_KEY_ENV}: entry ${i + 1} of ${entries.length} is`;
    throw new Error(
      `${which} not a valid key (got ${entry.length} characters); expected ${KEY_FORM}. ` +
        'Several keys are separated by commas, newest first.',
    );
  });
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** The keys in the key file, or null when there is no file. */
function readKeyFile(file: string): Buffer[] | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
  let text: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`secret key file ${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new Error(
        `secret key file ${file} is accessible by group or others (mode ${mode}); ` +
          `run \`chmod 600 ${file}\` and start again`,
      );
    }
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  const keys: Buffer[] = [];
  for (const [i, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const key = decodeKey(line);
    if (!key) throw new Error(`secret key file ${file}, line ${i + 1}: not a valid key; expected ${KEY_FORM}, one per line, newest first`);
    keys.push(key);
  }
  if (keys.length === 0) throw new Error(`secret key file ${file} holds no key; expected ${KEY_FORM}, one per line, newest first`);
  return keys;
}

/**
 * Create the key file with a new random key, atomically: write a private temp file, then hard-link
 * it into place. link() never replaces an existing file, so when several processes race, the first
 * wins and the others (EEXIST) read the winner's key.
 */
function createKeyFile(dataDir: string, file: string): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dataDir, `.${SECRET_KEY_FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, `${randomBytes(KEY_BYTES).toString('base64')}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if (errno(err) === 'EEXIST') return; // another process won the race
      throw new Error(
        `could not create secret key file ${file} (${errno(err) ?? String(err)}); ` +
          `set ${SECRET_KEY_ENV} or create the file yourself with \`openssl rand -base64 32 > ${file} && chmod 600 ${file}\``,
        { cause: err },
      );
    }
    syncDir(dataDir);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Make the new directory entry durable: losing the key loses every secret. Best effort. */
function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // not supported everywhere (e.g. Windows)
  }
}

/**
 * The secret keys: from USERSYNC_SECRET_KEY (comma-separated, newest first) when it is set and not
 * empty, else from `<dataDir>/secret.key` (one key per line, newest first). A missing key file is
 * created with a new random key (mode 0600) when `create` is true.
 */
export function loadSecretKeys(opts: { env: NodeJS.ProcessEnv; dataDir: string; create: boolean }): SecretBox {
  const raw = opts.env[SECRET_KEY_ENV];
  if (raw !== undefined && raw.trim() !== '') return new SecretBox(parseEnvKeys(raw));
  const file = secretKeyPath(opts.dataDir);
  let keys = readKeyFile(file);
  if (keys === null) {
    if (!opts.create) {
      throw new Error(`no secret key: set ${SECRET_KEY_ENV} or put the key file at ${file} (${KEY_FORM}, mode 0600)`);
    }
    createKeyFile(opts.dataDir, file);
    keys = readKeyFile(file);
    if (keys === null) throw new Error(`secret key file ${file} disappeared right after it was created`);
  }
  return new SecretBox(keys).followFile(file);
}

/** Whether the keys come from USERSYNC_SECRET_KEY (which usersync cannot change) rather than the key file. */
export function keysFromEnvironment(env: NodeJS.ProcessEnv): boolean {
  const raw = env[SECRET_KEY_ENV];
  return raw !== undefined && raw.trim() !== '';
}

/**
 * Replace the key file's keys, atomically (a private temporary file renamed over it, then the folder
 * synced): a reader sees the old file or the new one, never half of one.
 */
export function writeKeyFile(dataDir: string, keys: readonly Buffer[]): void {
  const file = secretKeyPath(dataDir);
  const tmp = path.join(dataDir, `.${SECRET_KEY_FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, `# newest first: the first key seals, every key opens\n${keys.map((k) => k.toString('base64')).join('\n')}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    syncDir(dataDir);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The key file's keys (newest first), for a rotation. */
export function keyFileKeys(dataDir: string): Buffer[] {
  const keys = readKeyFile(secretKeyPath(dataDir));
  if (!keys) throw new Error(`no secret key file at ${secretKeyPath(dataDir)}`);
  return keys;
}

export function newSecretKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
