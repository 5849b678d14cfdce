// Secrets at rest: the key (environment or key file) and sealing with AES-256-GCM.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSealed, keyId, loadSecretKeys, SecretBox, SecretError } from '../../src/store/secrets.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODULE = fileURLToPath(new URL('../../src/store/secrets.ts', import.meta.url));
const CTX = 'connector:c1:clientSecret';

let tmpRoot: string;
let n = 0;
beforeAll(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-secrets-'));
});
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** A fresh data directory path (not yet created). */
const dataDir = () => path.join(tmpRoot, `data-${++n}`);
const keyFile = (dir: string) => path.join(dir, 'secret.key');
const mode = (file: string) => fs.statSync(file).mode & 0o777;

function writeKeyFile(dir: string, keys: Buffer[], fileMode = 0o600): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(keyFile(dir), keys.map((k) => `${k.toString('base64')}\n`).join(''), { mode: fileMode });
  fs.chmodSync(keyFile(dir), fileMode);
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('SecretBox', () => {
  const box = SecretBox.forTests();

  it('round-trips, including empty and non-ASCII values', () => {
    for (const plain of ['s3cr3t', '', 'pässwörd 🔑', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n']) {
      const sealed = box.encrypt(plain, CTX);
      expect(sealed).toMatch(/^enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
      expect(sealed.split(':')[2]).toBe(box.currentKeyId);
      expect(box.isSealed(sealed)).toBe(true);
      expect(box.decrypt(sealed, CTX)).toBe(plain);
    }
  });

  it('produces a different ciphertext each time', () => {
    const a = box.encrypt('same', CTX);
    const b = box.encrypt('same', CTX);
    expect(a).not.toBe(b);
    expect(a.split(':')[3]).not.toBe(b.split(':')[3]); // the IV
    expect(box.decrypt(a, CTX)).toBe('same');
    expect(box.decrypt(b, CTX)).toBe('same');
  });

  it('refuses a value sealed for another context', () => {
    const sealed = box.encrypt('s3cr3t', 'connector:c1:clientSecret');
    const err = thrown(() => box.decrypt(sealed, 'connector:c2:clientSecret'));
    expect(err).toBeInstanceOf(SecretError);
    expect((err as SecretError).code).toBe('undecryptable');
    expect(err.message).toContain('connector:c2:clientSecret');
    expect(() => box.decrypt(sealed, 'connector:c1:bindPassword')).toThrow(SecretError);
  });

  it('detects tampering with the IV, the ciphertext or the tag', () => {
    const sealed = box.encrypt('s3cr3t-value', CTX);
    const [, , id, iv, body] = sealed.split(':') as [string, string, string, string, string];
    const flip = (b64: string, at: number) => {
      const bytes = Buffer.from(b64, 'base64url');
      bytes[at]! ^= 0x01;
      return bytes.toString('base64url');
    };
    const bodyLen = Buffer.from(body, 'base64url').length;
    const variants = [
      `enc:v1:${id}:${flip(iv, 0)}:${body}`,
      `enc:v1:${id}:${iv}:${flip(body, 0)}`, // ciphertext
      `enc:v1:${id}:${iv}:${flip(body, bodyLen - 1)}`, // tag
      `enc:v1:${id}:${iv}:${Buffer.from(body, 'base64url').subarray(0, bodyLen - 1).toString('base64url')}`, // truncated
    ];
    for (const v of variants) {
      const err = thrown(() => box.decrypt(v, CTX));
      expect(err).toBeInstanceOf(SecretError);
      expect((err as SecretError).code).toMatch(/^(undecryptable|malformed)$/);
    }
    // a non-canonical base64url spelling of the same bytes is refused, not silently accepted
    const lastChar = body.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const other = alphabet[(alphabet.indexOf(lastChar) + 1) % 64]!;
    expect(() => box.decrypt(`enc:v1:${id}:${iv}:${body.slice(0, -1)}${other}`, CTX)).toThrow(SecretError);
  });

  it('refuses a value sealed with an unknown key, naming only key ids', () => {
    const other = SecretBox.forTests();
    const sealed = other.encrypt('s3cr3t', CTX);
    const err = thrown(() => box.decrypt(sealed, CTX)) as SecretError;
    expect(err).toBeInstanceOf(SecretError);
    expect(err.code).toBe('unknown-key');
    expect(err.message).toContain(other.currentKeyId);
    expect(err.message).toContain(box.currentKeyId);
  });

  it('rejects malformed input without echoing it', () => {
    for (const bad of ['plain-password', 'enc:v1:zz:abc:def', 'enc:v2:00000000:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA']) {
      const err = thrown(() => box.decrypt(bad, CTX)) as SecretError;
      expect(err.code).toBe('malformed');
      expect(err.message).not.toContain(bad);
    }
    expect(box.isSealed('plain-password')).toBe(false);
    expect(box.isSealed(42)).toBe(false);
    expect(isSealed(null)).toBe(false);
    expect(() => box.encrypt('x', '')).toThrow(SecretError);
  });

  it('does not seal a value twice', () => {
    const sealed = box.encrypt('s3cr3t', CTX);
    expect(() => box.encrypt(sealed, CTX)).toThrow(/already sealed/);
  });

  it('does not expose key material when inspected or serialised', async () => {
    const key = randomBytes(32);
    const b = new SecretBox([key]);
    const { inspect } = await import('node:util');
    for (const text of [inspect(b, { depth: 5, showHidden: true }), JSON.stringify(b)]) {
      expect(text).not.toContain(key.toString('base64'));
      expect(text).not.toContain(key.toString('hex'));
    }
  });

  it('several keys: the first encrypts, all decrypt, older values need re-encryption', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const before = new SecretBox([k1]);
    const old = before.encrypt('s3cr3t', CTX);
    expect(before.needsReencrypt(old)).toBe(false);

    const after = new SecretBox([k2, k1]);
    expect(after.currentKeyId).toBe(keyId(k2));
    expect(after.keyIds).toEqual([keyId(k2), keyId(k1)]);
    expect(after.decrypt(old, CTX)).toBe('s3cr3t');
    expect(after.needsReencrypt(old)).toBe(true);
    const fresh = after.encrypt(after.decrypt(old, CTX), CTX);
    expect(after.needsReencrypt(fresh)).toBe(false);
    expect(fresh.split(':')[2]).toBe(keyId(k2));
    expect(() => before.decrypt(fresh, CTX)).toThrow(/not loaded/);
    expect(() => after.needsReencrypt('not sealed')).toThrow(SecretError);
  });

  it('key ids are the first 8 hex characters of the SHA-256 of the key', () => {
    const key = Buffer.alloc(32, 0);
    // sha256 of 32 zero bytes = 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
    expect(keyId(key)).toBe('66687aad');
    expect(() => new SecretBox([])).toThrow();
    expect(() => new SecretBox([randomBytes(16)])).toThrow(/32 bytes/);
  });
});

describe('loadSecretKeys from the environment', () => {
  const key = randomBytes(32);
  const load = (value: string) => loadSecretKeys({ env: { USERSYNC_SECRET_KEY: value }, dataDir: dataDir(), create: true });

  it('accepts base64, base64url, unpadded base64 and hex', () => {
    const forms = [
      key.toString('base64'),
      key.toString('base64url'),
      key.toString('base64').replace(/=$/, ''),
      key.toString('hex'),
      key.toString('hex').toUpperCase(),
      ` ${key.toString('base64')}\n`,
    ];
    for (const form of forms) expect(load(form).currentKeyId).toBe(keyId(key));
  });

  it('does not touch the data directory when the variable is set', () => {
    const dir = dataDir();
    loadSecretKeys({ env: { USERSYNC_SECRET_KEY: key.toString('base64') }, dataDir: dir, create: true });
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('rejects anything else with an error naming the variable and the expected form', () => {
    const bad = [
      'not-a-key',
      key.toString('hex').slice(0, 63),
      randomBytes(16).toString('base64'),
      randomBytes(33).toString('base64'),
      `${key.toString('base64')}!`,
    ];
    for (const value of bad) {
      const err = thrown(() => load(value));
      expect(err.message).toContain('USERSYNC_SECRET_KEY');
      expect(err.message).toMatch(/base64/);
      expect(err.message).toMatch(/64 hexadecimal/);
      expect(err.message).not.toContain(value);
    }
  });

  it('takes several comma-separated keys, newest first', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const old = load(k1.toString('base64')).encrypt('s3cr3t', CTX);
    const box = load(`${k2.toString('base64')}, ${k1.toString('hex')}`);
    expect(box.currentKeyId).toBe(keyId(k2));
    expect(box.decrypt(old, CTX)).toBe('s3cr3t');
    expect(box.needsReencrypt(old)).toBe(true);
    const err = thrown(() => load(`${k2.toString('base64')},oops`));
    expect(err.message).toContain('entry 2 of 2');
    expect(err.message).not.toContain(k2.toString('base64'));
  });

  it('treats an empty variable as unset', () => {
    const dir = dataDir();
    const box = loadSecretKeys({ env: { USERSYNC_SECRET_KEY: '' }, dataDir: dir, create: true });
    expect(fs.existsSync(keyFile(dir))).toBe(true);
    expect(box.currentKeyId).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe('loadSecretKeys from the key file', () => {
  it('creates the key file (and directory) with mode 0600 and reuses it on the next load', () => {
    const dir = path.join(dataDir(), 'nested');
    const first = loadSecretKeys({ env: {}, dataDir: dir, create: true });
    expect(mode(keyFile(dir))).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['secret.key']); // no temp file left behind
    const text = fs.readFileSync(keyFile(dir), 'utf8');
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(first.currentKeyId).toBe(keyId(Buffer.from(text.trim(), 'base64')));

    const sealed = first.encrypt('s3cr3t', CTX);
    const second = loadSecretKeys({ env: {}, dataDir: dir, create: false });
    expect(second.currentKeyId).toBe(first.currentKeyId);
    expect(second.decrypt(sealed, CTX)).toBe('s3cr3t');
    expect(fs.readFileSync(keyFile(dir), 'utf8')).toBe(text);
  });

  it('says where the key is expected when it is missing and may not be created', () => {
    const dir = dataDir();
    const err = thrown(() => loadSecretKeys({ env: {}, dataDir: dir, create: false }));
    expect(err.message).toContain(keyFile(dir));
    expect(err.message).toContain('USERSYNC_SECRET_KEY');
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('refuses a key file that group or others can read', () => {
    for (const m of [0o640, 0o644, 0o604, 0o660]) {
      const dir = dataDir();
      const key = randomBytes(32);
      writeKeyFile(dir, [key], m);
      const err = thrown(() => loadSecretKeys({ env: {}, dataDir: dir, create: true }));
      expect(err.message).toContain(keyFile(dir));
      expect(err.message).toContain('chmod 600');
      expect(err.message).not.toContain(key.toString('base64'));
      expect(mode(keyFile(dir))).toBe(m); // left alone
    }
    const dir = dataDir();
    writeKeyFile(dir, [randomBytes(32)], 0o400);
    expect(() => loadSecretKeys({ env: {}, dataDir: dir, create: false })).not.toThrow();
  });

  it('reads several keys, newest first; old values still decrypt and need re-encryption', () => {
    const dir = dataDir();
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    writeKeyFile(dir, [k1]);
    const old = loadSecretKeys({ env: {}, dataDir: dir, create: false }).encrypt('s3cr3t', CTX);

    // what `usersync key rotate` will do: put a new key first
    fs.writeFileSync(keyFile(dir), `${k2.toString('base64')}\n\n# previous key\n${k1.toString('base64')}\n`);
    const box = loadSecretKeys({ env: {}, dataDir: dir, create: false });
    expect(box.currentKeyId).toBe(keyId(k2));
    expect(box.keyIds).toEqual([keyId(k2), keyId(k1)]);
    expect(box.decrypt(old, CTX)).toBe('s3cr3t');
    expect(box.needsReencrypt(old)).toBe(true);
    expect(box.needsReencrypt(box.encrypt('s3cr3t', CTX))).toBe(false);
  });

  it('rejects a key file with a bad line or no key, without echoing its content', () => {
    const dir = dataDir();
    const key = randomBytes(32);
    fs.mkdirSync(dir);
    const bad = key.toString('base64').slice(0, 40);
    fs.writeFileSync(keyFile(dir), `${key.toString('base64')}\n${bad}\n`, { mode: 0o600 });
    const err = thrown(() => loadSecretKeys({ env: {}, dataDir: dir, create: true }));
    expect(err.message).toContain(`${keyFile(dir)}, line 2`);
    expect(err.message).not.toContain(bad);
    expect(err.message).not.toContain(key.toString('base64'));

    fs.writeFileSync(keyFile(dir), '\n# nothing here\n');
    expect(() => loadSecretKeys({ env: {}, dataDir: dir, create: true })).toThrow(/holds no key/);
    expect(fs.readFileSync(keyFile(dir), 'utf8')).toBe('\n# nothing here\n'); // not overwritten
  });

  it('when two loads race to create the file, the first wins and the other reads its key', () => {
    const dir = dataDir();
    const realLink = fs.linkSync;
    let inner: SecretBox | undefined;
    // the other process creates the file between our temp-file write and our link
    const spy = vi.spyOn(fs, 'linkSync').mockImplementation((from, to) => {
      if (inner === undefined) {
        spy.mockImplementation(realLink);
        inner = loadSecretKeys({ env: {}, dataDir: dir, create: true });
      }
      return realLink(from, to);
    });
    const outer = loadSecretKeys({ env: {}, dataDir: dir, create: true });
    expect(spy).toHaveBeenCalledTimes(2);
    expect(inner).toBeDefined();
    expect(outer.currentKeyId).toBe(inner!.currentKeyId);
    expect(fs.readdirSync(dir)).toEqual(['secret.key']);
    expect(fs.readFileSync(keyFile(dir), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('several processes creating the key file at once end up with one key', async () => {
    const dir = dataDir();
    const startAt = Date.now() + 2500; // all children start loading at the same moment
    const script = `
      import { loadSecretKeys } from ${JSON.stringify(MODULE)};
      while (Date.now() < ${startAt}) {}
      const box = loadSecretKeys({ env: {}, dataDir: ${JSON.stringify(dir)}, create: true });
      process.stdout.write(box.currentKeyId);
    `;
    const env = { ...process.env };
    delete env.USERSYNC_SECRET_KEY;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const ids = await Promise.all([run(), run(), run(), run()]);
    expect(ids[0]).toMatch(/^[0-9a-f]{8}$/);
    expect(new Set(ids).size).toBe(1);
    expect(fs.readdirSync(dir)).toEqual(['secret.key']);
    expect(mode(keyFile(dir))).toBe(0o600);
    expect(loadSecretKeys({ env: {}, dataDir: dir, create: false }).currentKeyId).toBe(ids[0]);
  });
});

describe('error messages', () => {
  it('never contain the secret or the key', () => {
    const key = randomBytes(32);
    const forms = [key.toString('base64'), key.toString('base64url'), key.toString('hex'), key.toString('hex').toUpperCase()];
    const secret = 'TopSecretPassw0rd!';
    const box = new SecretBox([key]);
    const sealed = box.encrypt(secret, CTX);
    const [, , id, iv, body] = sealed.split(':') as [string, string, string, string, string];
    const bytes = Buffer.from(body, 'base64url');
    bytes[0]! ^= 0x01;
    const tampered = `enc:v1:${id}:${iv}:${bytes.toString('base64url')}`;

    const dir = dataDir();
    writeKeyFile(dir, [key], 0o644);
    const errors = [
      thrown(() => box.decrypt(sealed, 'connector:other:clientSecret')),
      thrown(() => box.decrypt(tampered, CTX)),
      thrown(() => SecretBox.forTests().decrypt(sealed, CTX)),
      thrown(() => box.decrypt(secret, CTX)),
      thrown(() => box.encrypt(sealed, CTX)),
      thrown(() => loadSecretKeys({ env: { USERSYNC_SECRET_KEY: `${forms[0]}x` }, dataDir: dir, create: true })),
      thrown(() => loadSecretKeys({ env: { USERSYNC_SECRET_KEY: `${forms[0]},${forms[2]!.slice(1)}` }, dataDir: dir, create: true })),
      thrown(() => loadSecretKeys({ env: {}, dataDir: dir, create: true })),
    ];
    for (const err of errors) {
      const text = `${err.message}\n${err.stack ?? ''}\n${String(err.cause ?? '')}`;
      expect(text).not.toContain(secret);
      for (const f of forms) {
        expect(text).not.toContain(f);
        expect(text).not.toContain(f.slice(1, 30)); // nor a large piece of it
      }
    }
  });
});
