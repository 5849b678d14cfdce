// JWTs: the RS256 key the emulator signs access tokens with (one per process, published in the JWKS),
// encoding/decoding, and the X.509 client certificates the token endpoint accepts for client assertions.

import type { KeyObject } from 'node:crypto';
import { X509Certificate, constants, createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type JwtHeader = Record<string, unknown> & { alg?: string; typ?: string; kid?: string; x5t?: string; 'x5t#S256'?: string; x5c?: string[] };
export type JwtPayload = Record<string, unknown>;

export interface DecodedJwt {
  header: JwtHeader;
  payload: JwtPayload;
  /** the signed part, `header.payload` as sent */
  signingInput: string;
  signature: Buffer;
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
}

/** Split and parse a compact JWS; undefined when it is not one. Nothing is verified. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    if (!isObject(header) || !isObject(payload)) return undefined;
    return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2]!, 'base64url') };
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Verify an RS256 or PS256 signature (RFC 7518: PSS with SHA-256, MGF1 and a 32-byte salt). */
export function verifyJwtSignature(jwt: DecodedJwt, key: KeyObject): boolean {
  const data = Buffer.from(jwt.signingInput, 'ascii');
  try {
    if (jwt.header.alg === 'RS256') return verify('sha256', data, key, jwt.signature);
    if (jwt.header.alg === 'PS256') {
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, jwt.signature);
    }
  } catch {
    return false;
  }
  return false;
}

// ---- the emulator's token signing key -------------------------------------------------------

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** self-signed certificate of the key (Entra publishes one per key in x5c) */
  certPem: string;
  /** `kid` and `x5t`: base64url SHA-1 thumbprint of the certificate, as Entra's keys have */
  kid: string;
  /** the JWKS entry */
  jwk: Record<string, unknown>;
}

/** Generate an RSA key with node:crypto and wrap it in a self-signed certificate (openssl CLI). */
async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'graph-emulator-jwks-'));
  try {
    const keyPath = path.join(dir, 'key.pem');
    const certPath = path.join(dir, 'cert.pem');
    await fs.writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await run('openssl', ['req', '-new', '-x509', '-key', keyPath, '-out', certPath, '-days', '30', '-subj', '/CN=accounts.accesscontrol.windows.net', '-sha256']);
    const certPem = await fs.readFile(certPath, 'utf8');
    const cert = new X509Certificate(certPem);
    const kid = createHash('sha1').update(cert.raw).digest('base64url');
    const pub = publicKey.export({ format: 'jwk' });
    return {
      privateKey,
      publicKey,
      certPem,
      kid,
      jwk: { kty: 'RSA', use: 'sig', kid, x5t: kid, n: pub.n, e: pub.e, x5c: [cert.raw.toString('base64')] },
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

let sharedKey: Promise<SigningKey> | undefined;

/** One signing key per process, shared by all emulators started in it. */
export function sharedSigningKey(): Promise<SigningKey> {
  sharedKey ??= generateSigningKey().catch((err: unknown) => {
    sharedKey = undefined;
    throw err;
  });
  return sharedKey;
}

/** Sign a JWT with RS256. */
export function signJwt(header: JwtHeader, payload: JwtPayload, key: KeyObject): string {
  const input = `${b64url({ ...header, alg: 'RS256' })}.${b64url(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input, 'ascii'), key).toString('base64url')}`;
}

// ---- client certificates --------------------------------------------------------------------

export interface ClientCertificateInfo {
  pem: string;
  publicKey: KeyObject;
  /** hex, upper case, as the Entra portal shows them */
  thumbprintSha1Hex: string;
  thumbprintSha256Hex: string;
  /** base64url forms, as in a JWT header's `x5t` / `x5t#S256` */
  x5t: string;
  x5tS256: string;
  validFrom: Date;
  validTo: Date;
}

/** Parse a PEM certificate as Entra does when one is uploaded to an app registration (RSA only). */
export function parseClientCertificate(pem: string): ClientCertificateInfo {
  const cert = new X509Certificate(pem);
  const publicKey = cert.publicKey;
  if (publicKey.asymmetricKeyType !== 'rsa') {
    throw new Error(`graph emulator: Entra ID only accepts RSA certificates as app credentials, not ${publicKey.asymmetricKeyType ?? 'this key type'}`);
  }
  const sha1 = createHash('sha1').update(cert.raw).digest();
  const sha256 = createHash('sha256').update(cert.raw).digest();
  return {
    pem: cert.toString(),
    publicKey,
    thumbprintSha1Hex: sha1.toString('hex').toUpperCase(),
    thumbprintSha256Hex: sha256.toString('hex').toUpperCase(),
    x5t: sha1.toString('base64url'),
    x5tS256: sha256.toString('base64url'),
    validFrom: new Date(cert.validFrom),
    validTo: new Date(cert.validTo),
  };
}

export interface ClientCertificate {
  /** PEM certificate, to register with `certificates` / `emu.auth.addCertificate` */
  certPem: string;
  /** PEM private key (PKCS#8, unencrypted), for msal-node's `clientCertificate.privateKey` */
  privateKeyPem: string;
  /** hex SHA-256 thumbprint of the DER certificate, for msal-node's `clientCertificate.thumbprintSha256` */
  thumbprintSha256Hex: string;
  /** hex SHA-1 thumbprint (msal-node's deprecated `thumbprint`) */
  thumbprintSha1Hex: string;
}

/**
 * A self-signed RSA client certificate of the kind one uploads to an app registration, made with the
 * openssl CLI (RSA 2048, SHA-256; `days` valid, default 365).
 */
export async function generateClientCertificate(opts: { days?: number; commonName?: string } = {}): Promise<ClientCertificate> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'graph-emulator-client-'));
  try {
    const keyPath = path.join(dir, 'key.pem');
    const certPath = path.join(dir, 'cert.pem');
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', keyPath, '-out', certPath,
      '-days', String(opts.days ?? 365), '-subj', `/CN=${opts.commonName ?? 'usersync-client'}`,
    ]);
    const [certPem, privateKeyPem] = await Promise.all([fs.readFile(certPath, 'utf8'), fs.readFile(keyPath, 'utf8')]);
    const info = parseClientCertificate(certPem);
    return { certPem, privateKeyPem, thumbprintSha256Hex: info.thumbprintSha256Hex, thumbprintSha1Hex: info.thumbprintSha1Hex };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
