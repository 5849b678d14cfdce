// A self-signed certificate for 127.0.0.1 / localhost, made with the openssl command-line tool.

import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsMaterial {
  /** PEM certificate; self-signed, so it is also the CA a client has to trust */
  cert: string;
  /** PEM private key */
  key: string;
}

/**
 * Generate a fresh certificate (SAN IP:127.0.0.1, DNS:localhost). When `dir` is given the files
 * `cert.pem` and `key.pem` stay there (e.g. for NODE_EXTRA_CA_CERTS of a child process); otherwise
 * a temp dir is used and removed again.
 */
export async function generateCertificate(dir?: string): Promise<TlsMaterial & { certPath?: string }> {
  const target = dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'graph-emulator-')));
  await fs.mkdir(target, { recursive: true });
  const certPath = path.join(target, 'cert.pem');
  const keyPath = path.join(target, 'key.pem');
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-addext', 'basicConstraints=critical,CA:TRUE',
    ]);
    const [cert, key] = await Promise.all([fs.readFile(certPath, 'utf8'), fs.readFile(keyPath, 'utf8')]);
    return dir ? { cert, key, certPath } : { cert, key };
  } finally {
    if (!dir) await fs.rm(target, { recursive: true, force: true });
  }
}

let shared: Promise<TlsMaterial> | undefined;

/** One certificate per process, shared by all emulators started in it. */
export function sharedCertificate(): Promise<TlsMaterial> {
  shared ??= generateCertificate().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}
