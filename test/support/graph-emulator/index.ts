// A local HTTPS emulator of the Microsoft Graph v1.0 directory subset a pull sync needs, and of
// the Entra ID token endpoint. See README.md in this folder.

import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Faults } from './faults.ts';
import type { ClientCertificateInfo } from './jwt.ts';
import { parseClientCertificate, sharedSigningKey } from './jwt.ts';
import type { RequestLogEntry } from './server.ts';
import { GraphHandler } from './server.ts';
import type { ServicePrincipal } from './state.ts';
import { GraphState } from './state.ts';
import type { TlsMaterial } from './tls.ts';
import { sharedCertificate } from './tls.ts';

export { Faults } from './faults.ts';
export type { ActiveFault, FaultKind, FaultSpec } from './faults.ts';
export type { IssuedToken, RequestLogEntry } from './server.ts';
export { decodeJwt, generateClientCertificate } from './jwt.ts';
export type { ClientCertificate, ClientCertificateInfo, DecodedJwt, JwtHeader, JwtPayload } from './jwt.ts';
export { GraphState } from './state.ts';
export type { AppRoleAssignment, DirObject, GroupInput, GroupObject, SeedOptions, SeedResult, ServicePrincipal, UserInput } from './state.ts';
export { generateCertificate } from './tls.ts';
export type { TlsMaterial } from './tls.ts';
export { graphRequest } from './client.ts';
export type { GraphResponse } from './client.ts';

export interface GraphEmulatorOptions {
  tenantId?: string;
  /** a domain that the token endpoint also accepts in place of the tenant id */
  tenantDomain?: string;
  clientId?: string;
  clientSecret?: string;
  /** display name of the app's own service principal */
  appDisplayName?: string;
  /** `expires_in` of issued tokens (default 3599); can be changed later through `auth.tokenLifetimeSeconds` */
  tokenLifetimeSeconds?: number;
  /** page size of collections without $top (default 100, as Graph) */
  defaultPageSize?: number;
  /** objects per delta page (default 100) */
  deltaPageSize?: number;
  /** members per members@delta slice before a group is split over several entries (default 100) */
  deltaMemberSlice?: number;
  /** certificate and key to serve; default: one generated with openssl per process */
  tls?: TlsMaterial;
  /** fixed port (default: random) */
  port?: number;
  /**
   * application permissions granted to the app (admin consent), issued as the token's `roles`;
   * default `['User.Read.All', 'Group.Read.All', 'Application.Read.All']`
   */
  permissions?: string[];
  /** PEM certificates registered on the app, for certificate client assertions (RSA only) */
  certificates?: string[];
}

/** the permissions a new emulator grants unless told otherwise */
export const DEFAULT_PERMISSIONS: readonly string[] = ['User.Read.All', 'Group.Read.All', 'Application.Read.All'];

export interface GraphEmulator {
  /** Graph base URL, e.g. https://127.0.0.1:PORT/v1.0 */
  url: string;
  /** authority host, e.g. https://127.0.0.1:PORT (authority = `${authorityHost}/${tenantId}`) */
  authorityHost: string;
  /** host:port, for msal-node's knownAuthorities */
  host: string;
  tenantId: string;
  tenantDomain: string;
  clientId: string;
  clientSecret: string;
  /** PEM certificate the client has to trust (self-signed: it is its own CA) */
  caCert: string;
  /** the app's own service principal (appId = clientId) */
  servicePrincipal: ServicePrincipal;
  state: GraphState;
  faults: Faults;
  /** every request received, in order */
  requests: RequestLogEntry[];
  clearRequests(): void;
  auth: {
    /** tokens issued by the token endpoint so far */
    readonly issued: number;
    /** `expires_in` for tokens issued from now on */
    tokenLifetimeSeconds: number;
    /** make every token issued so far expired */
    expireAll(): void;
    /**
     * application permissions granted to the app. Like a consent change in Entra, a change applies
     * to tokens issued afterwards (with msal-node: after its cached token is renewed). Assigning an
     * iterable replaces the set.
     */
    get permissions(): Set<string>;
    set permissions(v: Iterable<string>);
    /** register a PEM certificate on the app (as uploading it under "Certificates & secrets"); returns its thumbprints */
    addCertificate(pem: string): ClientCertificateInfo;
    /** remove a certificate, given as PEM or as hex SHA-1 / SHA-256 thumbprint; false if none matched */
    removeCertificate(pemOrThumbprint: string): boolean;
    /** the registered certificates */
    readonly certificates: readonly ClientCertificateInfo[];
    /** the JWKS the access tokens are signed with (as served at `/{tenant}/discovery/v2.0/keys`) */
    readonly jwks: { keys: Array<Record<string, unknown>> };
  };
  /** the `authorityMetadata` JSON string for msal-node (skips the openid-configuration GET) */
  authorityMetadata: string;
  /** the `cloudDiscoveryMetadata` JSON string for msal-node (skips instance discovery) */
  cloudDiscoveryMetadata: string;
  close(): Promise<void>;
}

export async function startGraphEmulator(opts: GraphEmulatorOptions = {}): Promise<GraphEmulator> {
  const [tls, signingKey] = await Promise.all([opts.tls ?? sharedCertificate(), sharedSigningKey()]);
  const state = new GraphState();
  const faults = new Faults();
  const authSettings = {
    tenantId: opts.tenantId ?? randomUUID(),
    tenantDomain: opts.tenantDomain ?? 'contoso.onmicrosoft.com',
    clientId: opts.clientId ?? randomUUID(),
    clientSecret: opts.clientSecret ?? `emu~${randomUUID()}`,
    tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 3599,
    permissions: new Set(opts.permissions ?? DEFAULT_PERMISSIONS),
    certificates: new Map<string, ClientCertificateInfo>(),
  };
  const addCertificate = (pem: string): ClientCertificateInfo => {
    const info = parseClientCertificate(pem);
    authSettings.certificates.set(info.thumbprintSha256Hex, info);
    return info;
  };
  for (const pem of opts.certificates ?? []) addCertificate(pem);
  const handler = new GraphHandler(state, faults, authSettings, {
    defaultPageSize: opts.defaultPageSize ?? 100,
    deltaPageSize: opts.deltaPageSize ?? 100,
    deltaMemberSlice: opts.deltaMemberSlice ?? 100,
  }, signingKey);
  const server = https.createServer({ cert: tls.cert, key: tls.key, keepAlive: true }, handler.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const origin = `https://${host}`;
  handler.origin = origin;
  const servicePrincipal = state.addServicePrincipal({ appId: authSettings.clientId, displayName: opts.appDisplayName ?? 'usersync', appRoleAssignmentRequired: true });
  const authority = `${origin}/${authSettings.tenantId}`;
  return {
    url: `${origin}/v1.0`,
    authorityHost: origin,
    host,
    tenantId: authSettings.tenantId,
    tenantDomain: authSettings.tenantDomain,
    clientId: authSettings.clientId,
    clientSecret: authSettings.clientSecret,
    caCert: tls.cert,
    servicePrincipal,
    state,
    faults,
    requests: handler.requests,
    clearRequests: () => {
      handler.requests.length = 0;
    },
    auth: {
      get issued() {
        return handler.tokensIssued;
      },
      get tokenLifetimeSeconds() {
        return authSettings.tokenLifetimeSeconds;
      },
      set tokenLifetimeSeconds(v: number) {
        authSettings.tokenLifetimeSeconds = v;
      },
      expireAll: () => handler.expireAllTokens(),
      get permissions(): Set<string> {
        return authSettings.permissions;
      },
      set permissions(v: Iterable<string>) {
        authSettings.permissions = new Set(v);
      },
      addCertificate,
      removeCertificate: (pemOrThumbprint: string): boolean => {
        const t = pemOrThumbprint.includes('-----BEGIN') ? parseClientCertificate(pemOrThumbprint).thumbprintSha256Hex : pemOrThumbprint.replace(/[^0-9a-f]/gi, '').toUpperCase();
        for (const [k, c] of authSettings.certificates) {
          if (c.thumbprintSha256Hex === t || c.thumbprintSha1Hex === t) return authSettings.certificates.delete(k);
        }
        return false;
      },
      get certificates(): readonly ClientCertificateInfo[] {
        return [...authSettings.certificates.values()];
      },
      jwks: { keys: [signingKey.jwk] },
    },
    authorityMetadata: JSON.stringify({
      token_endpoint: `${authority}/oauth2/v2.0/token`,
      authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
      issuer: `${authority}/v2.0`,
      end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
      jwks_uri: `${authority}/discovery/v2.0/keys`,
    }),
    cloudDiscoveryMetadata: JSON.stringify({
      tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
