// HTTPS request handling: the login endpoints (token, OpenID metadata) and the Graph v1.0 subset.

import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActiveFault, Faults } from './faults.ts';
import type { EntityKind, FilterNode } from './odata.ts';
import { GraphError, MODEL, evalFilter, parseFilter, parseSelect, parseTop } from './odata.ts';
import type { ClientCertificateInfo, DecodedJwt, SigningKey } from './jwt.ts';
import { decodeJwt, signJwt, verifyJwtSignature } from './jwt.ts';
import type { DirObject, GraphState, GroupObject, MemberType, ServicePrincipal } from './state.ts';

export interface RequestLogEntry {
  method: string;
  /** path without the query, percent-decoded, e.g. /v1.0/users */
  path: string;
  /** decoded query parameters (last value wins) */
  query: Record<string, string>;
  /** the request target as sent */
  url: string;
  headers: { consistencyLevel?: string; prefer?: string; authorization: 'bearer' | 'basic' | 'none'; clientRequestId?: string };
  /** 0 when the connection was dropped */
  status: number;
  time: number;
}

export interface AuthSettings {
  tenantId: string;
  /** also accepted in the token path, e.g. contoso.onmicrosoft.com */
  tenantDomain: string;
  clientId: string;
  clientSecret: string;
  /** `expires_in` of new tokens, seconds */
  tokenLifetimeSeconds: number;
  /** application permissions granted to the app (admin consent); copied into each new token's `roles` */
  permissions: Set<string>;
  /** certificates registered on the app, by upper-case hex SHA-256 thumbprint */
  certificates: Map<string, ClientCertificateInfo>;
}

export interface IssuedToken {
  expiresAt: number;
  revoked: boolean;
  /** the `roles` claim: application permissions at issue time */
  roles: ReadonlySet<string>;
  /** how the client authenticated: '1' client secret, '2' certificate (the `appidacr` claim) */
  appidacr: '1' | '2';
}

export interface EmulatorTuning {
  /** page size of list endpoints without $top (Graph: 100) */
  defaultPageSize: number;
  /** objects per delta page (server-chosen in Graph) */
  deltaPageSize: number;
  /** members per `members@delta` slice; a larger group is split over several entries */
  deltaMemberSlice: number;
}

interface Cursor {
  items: unknown[];
  pageSize: number;
  render: (item: unknown) => unknown;
  /** for delta rounds: the link issued after the last page */
  deltaLink?: string;
  context: string;
}

interface DeltaToken {
  k: 'users' | 'groups';
  s: number;
  sel: string[] | null;
  f: string[] | null;
  t: number;
  e: number;
}

const JSON_TYPE = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
const GRAPH_SCOPES = new Set(['https://graph.microsoft.com/.default', '00000003-0000-0000-c000-000000000000/.default', 'https://graph.microsoft.com//.default']);
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access']);
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Entra accepts client assertions up to 5 minutes outside their nbf/exp (clock skew) */
const ASSERTION_SKEW_S = 300;

// Application permissions that grant read access, per resource (graph.md §2; the Graph permissions
// tables; the ReadWrite and Directory permissions include the Read ones).
const DIRECTORY = ['Directory.Read.All', 'Directory.ReadWrite.All'];
/** users, users/{id}, users/{id}/memberOf …; User.ReadBasic.All is enough here */
export const USER_READ = ['User.Read.All', 'User.ReadWrite.All', 'User.ReadBasic.All', ...DIRECTORY];
/** users/delta: User.ReadBasic.All is not enough */
export const USER_DELTA = ['User.Read.All', 'User.ReadWrite.All', ...DIRECTORY];
export const GROUP_READ = ['GroupMember.Read.All', 'GroupMember.ReadWrite.All', 'Group.Read.All', 'Group.ReadWrite.All', ...DIRECTORY];
export const APP_READ = ['Application.Read.All', 'Application.ReadWrite.All', ...DIRECTORY];
export const ASSIGNMENT_READ = [...APP_READ, 'AppRoleAssignment.ReadWrite.All'];
const MAX_CURSORS = 5000;

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  segments: string[];
  query: URLSearchParams;
  /** lower-cased query names -> value */
  q: Map<string, string>;
  requestId: string;
  clientRequestId: string;
  /** a 'drop' fault with phase midBody to apply when sending */
  drop?: ActiveFault;
  ru: number;
  /** the bearer token, once authenticated */
  token?: IssuedToken;
}

export class GraphHandler {
  readonly tokens = new Map<string, IssuedToken>();
  tokensIssued = 0;
  readonly requests: RequestLogEntry[] = [];
  private readonly cursors = new Map<string, Cursor>();
  origin = '';

  constructor(
    readonly state: GraphState,
    readonly faults: Faults,
    readonly auth: AuthSettings,
    readonly tuning: EmulatorTuning,
    readonly signingKey: SigningKey,
  ) {}

  get base(): string {
    return `${this.origin}/v1.0`;
  }

  /** every token issued so far is treated as expired */
  expireAllTokens(): void {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', this.origin || 'https://127.0.0.1');
    const path = safeDecode(url.pathname);
    const q = new Map<string, string>();
    for (const [k, v] of url.searchParams) q.set(k.toLowerCase(), v);
    const authz = req.headers.authorization ?? '';
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path,
      query: Object.fromEntries(url.searchParams),
      url: req.url ?? '/',
      headers: {
        authorization: /^bearer /i.test(authz) ? 'bearer' : /^basic /i.test(authz) ? 'basic' : 'none',
        ...(req.headers.consistencylevel !== undefined ? { consistencyLevel: String(req.headers.consistencylevel) } : {}),
        ...(req.headers.prefer !== undefined ? { prefer: String(req.headers.prefer) } : {}),
        ...(req.headers['client-request-id'] !== undefined ? { clientRequestId: String(req.headers['client-request-id']) } : {}),
      },
      status: 0,
      time: this.state.now(),
    };
    this.requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    const ctx: Ctx = {
      req,
      res,
      method: entry.method,
      path,
      segments: path.split('/').filter((s) => s !== ''),
      query: url.searchParams,
      q,
      requestId: randomUUID(),
      clientRequestId: String(req.headers['client-request-id'] ?? url.searchParams.get('client-request-id') ?? randomUUID()),
      ru: 1,
    };
    this.dispatch(ctx).catch((err: unknown) => {
      if (err instanceof GraphError) this.sendError(ctx, err);
      else this.sendError(ctx, new GraphError(500, 'InternalServerError', err instanceof Error ? err.message : String(err)));
    });
  };

  private async dispatch(ctx: Ctx): Promise<void> {
    const fault = this.faults.take(ctx.method, ctx.path, ['drop', 'throttle', 'unavailable', 'gatewayTimeout']);
    if (fault) {
      if (fault.kind === 'drop') {
        if (fault.spec.phase === 'beforeHeaders') {
          ctx.req.socket.destroy();
          return;
        }
        ctx.drop = fault;
      } else {
        throw faultError(fault);
      }
    }
    const [first] = ctx.segments;
    if (first?.toLowerCase() === 'v1.0') {
      ctx.token = this.authenticate(ctx);
      this.authorize(ctx, ctx.token);
      const denied = this.faults.take(ctx.method, ctx.path, ['forbidden']);
      if (denied) throw new GraphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
      if (ctx.method !== 'GET') throw new GraphError(405, 'Request_BadRequest', `The emulator only serves GET on ${ctx.path}.`);
      this.graph(ctx);
      return;
    }
    await this.login(ctx);
  }

  // ---- login side --------------------------------------------------------------------------

  private knownTenant(t: string | undefined): boolean {
    if (t === undefined) return false;
    const l = t.toLowerCase();
    return l === this.auth.tenantId.toLowerCase() || l === this.auth.tenantDomain.toLowerCase();
  }

  private async login(ctx: Ctx): Promise<void> {
    const s = ctx.segments.map((x) => x.toLowerCase());
    const tenant = ctx.segments[0];
    const authority = `${this.origin}/${this.auth.tenantId}`;
    // instance discovery (msal asks login.microsoftonline.com for it unless knownAuthorities is set)
    if (s[0] === 'common' && s[1] === 'discovery' && s[2] === 'instance') {
      const host = this.origin.replace(/^https:\/\//, '');
      this.sendJson(ctx, 200, {
        tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      });
      return;
    }
    const wellKnown = (s[1] === 'v2.0' && s[2] === '.well-known' && s[3] === 'openid-configuration') || (s[1] === '.well-known' && s[2] === 'openid-configuration');
    if (wellKnown && ctx.method === 'GET') {
      if (!this.knownTenant(tenant)) {
        this.sendAadError(ctx, 400, 'invalid_tenant', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
        return;
      }
      const a = `${this.origin}/${tenant}`;
      this.sendJson(ctx, 200, {
        token_endpoint: `${a}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${a}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: `${this.origin}/${this.auth.tenantId}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${this.origin}/oidc/userinfo`,
        authorization_endpoint: `${a}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${a}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${a}/oauth2/v2.0/logout`,
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
        tenant_region_scope: 'EU',
        cloud_instance_name: 'microsoftonline.com',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: this.origin.replace(/^https:\/\//, ''),
      });
      return;
    }
    if (s[1] === 'discovery' && ((s[2] === 'v2.0' && s[3] === 'keys' && s[4] === undefined) || (s[2] === 'keys' && s[3] === undefined))) {
      // the key access tokens are signed with (Entra: several rotating keys; here one per process)
      const issuer = s[2] === 'v2.0' ? { issuer: `${this.origin}/${this.auth.tenantId}/v2.0` } : {};
      this.sendJson(ctx, 200, { keys: [{ ...this.signingKey.jwk, ...issuer }] });
      return;
    }
    if (s[1] === 'oauth2' && s[2] === 'v2.0' && s[3] === 'token') {
      if (ctx.method !== 'POST') {
        this.sendAadError(ctx, 405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
        return;
      }
      await this.token(ctx, tenant ?? '');
      return;
    }
    this.sendJson(ctx, 404, { error: 'not_found', error_description: `The emulator has no endpoint ${ctx.method} ${ctx.path}.` });
  }

  private async token(ctx: Ctx, tenant: string): Promise<void> {
    const body = new URLSearchParams(await readBody(ctx.req));
    if (!this.knownTenant(tenant)) {
      this.sendAadError(ctx, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);
      return;
    }
    let clientId = body.get('client_id');
    let secret = body.get('client_secret');
    const assertion = body.get('client_assertion');
    const basic = /^basic\s+(.+)$/i.exec(ctx.req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) {
        clientId ??= decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
        secret ??= decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' '));
      }
    }
    const grant = body.get('grant_type');
    if (!grant) {
      this.sendAadError(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
      return;
    }
    if (grant !== 'client_credentials') {
      this.sendAadError(ctx, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`);
      return;
    }
    // with a client assertion, client_id may be left out (RFC 7523 §3): the assertion's sub names the app
    if (!clientId && assertion) {
      const sub = decodeJwt(assertion)?.payload.sub;
      if (typeof sub === 'string') clientId = sub;
    }
    if (!clientId) {
      this.sendAadError(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
      return;
    }
    if (clientId.toLowerCase() !== this.auth.clientId.toLowerCase()) {
      this.sendAadError(ctx, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
      return;
    }
    const scopeRaw = body.get('scope');
    if (!scopeRaw) {
      this.sendAadError(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
      return;
    }
    const scopes = scopeRaw.split(/\s+/).filter((x) => x !== '' && !OIDC_SCOPES.has(x));
    if (scopes.length !== 1 || !GRAPH_SCOPES.has(scopes[0]!)) {
      this.sendAadError(ctx, 400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid. The scope ${scopeRaw} is not valid.`);
      return;
    }
    let appidacr: '1' | '2';
    if (assertion) {
      if (!this.checkAssertion(ctx, tenant, clientId, assertion, body.get('client_assertion_type'))) return;
      appidacr = '2';
    } else {
      if (!secret) {
        this.sendAadError(ctx, 401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
        return;
      }
      if (secret !== this.auth.clientSecret) {
        this.sendAadError(ctx, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${this.auth.clientId}'.`);
        return;
      }
      appidacr = '1';
    }
    const lifetime = this.auth.tokenLifetimeSeconds;
    const token = this.issueToken(lifetime, appidacr);
    this.sendJson(ctx, 200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token });
  }

  /** an app-only access token for Graph, shaped like Entra's (v1.0 token, as Graph gets), signed RS256 */
  private issueToken(lifetime: number, appidacr: '1' | '2'): string {
    const now = Math.floor(this.state.now() / 1000);
    const tid = this.auth.tenantId;
    const sp = this.state.findServicePrincipal({ appId: this.auth.clientId });
    const roles = new Set(this.auth.permissions);
    const payload: Record<string, unknown> = {
      aud: 'https://graph.microsoft.com',
      iss: `https://sts.windows.net/${tid}/`,
      iat: now,
      nbf: now,
      exp: now + lifetime,
      aio: randomBytes(48).toString('base64'),
      app_displayname: sp?.displayName ?? null,
      appid: this.auth.clientId,
      appidacr,
      idp: `https://sts.windows.net/${tid}/`,
      idtyp: 'app',
      oid: sp?.id ?? null,
      rh: `1.${randomBytes(24).toString('base64url')}.`,
      ...(roles.size > 0 ? { roles: [...roles] } : {}),
      sub: sp?.id ?? null,
      tenant_region_scope: 'EU',
      tid,
      uti: randomBytes(16).toString('base64url'),
      ver: '1.0',
      wids: ['0997a1d0-0d1d-4acb-b408-d5ca73121e90'],
      xms_tcdt: now,
    };
    const token = signJwt({ typ: 'JWT', alg: 'RS256', x5t: this.signingKey.kid, kid: this.signingKey.kid }, payload, this.signingKey.privateKey);
    this.tokens.set(token, { expiresAt: this.state.now() + lifetime * 1000, revoked: false, roles, appidacr });
    this.tokensIssued++;
    return token;
  }

  /**
   * Validate a certificate client assertion as Entra does (certificate-credentials): an RS256/PS256
   * JWT whose x5t#S256 (or x5t) names a certificate registered on the app, signed with its key, with
   * aud = the token endpoint, iss = sub = client id, a jti, and nbf/exp around now. Sends the AAD
   * error and returns false when it fails.
   */
  private checkAssertion(ctx: Ctx, tenant: string, clientId: string, assertion: string, type: string | null): boolean {
    const docs = 'Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .';
    if (!type) {
      this.sendAadError(ctx, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_assertion_type'.");
      return false;
    }
    if (type !== JWT_BEARER) {
      this.sendAadError(ctx, 400, 'invalid_request', 90011, 'Unexpected client assertion type.');
      return false;
    }
    const jwt: DecodedJwt | undefined = decodeJwt(assertion);
    if (!jwt) {
      this.sendAadError(ctx, 400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
      return false;
    }
    const { header, payload } = jwt;
    if (header.alg !== 'RS256' && header.alg !== 'PS256') {
      this.sendAadError(ctx, 400, 'invalid_request', 50027, `Invalid JWT token. Unsupported signing algorithm '${String(header.alg)}'; RS256 and PS256 are supported.`);
      return false;
    }
    const s256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
    const s1 = typeof header.x5t === 'string' ? header.x5t : undefined;
    if (s256 === undefined && s1 === undefined) {
      this.sendAadError(ctx, 400, 'invalid_request', 50027, 'Invalid JWT token. No certificate thumbprint specified in token header.');
      return false;
    }
    const thumbHex = Buffer.from(s256 ?? s1!, 'base64url').toString('hex').toUpperCase();
    const cert = [...this.auth.certificates.values()].find((c) => (s256 !== undefined ? c.x5tS256 === s256 : c.x5t === s1));
    const keyRef = (reason: string, found?: typeof cert): string =>
      `Client assertion contains an invalid signature. [Reason - ${reason}, Thumbprint of key used by client: '${thumbHex}'${found ? `, Found key 'Start=${usDate(found.validFrom)}, End=${usDate(found.validTo)}'` : ''}, Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${this.auth.clientId}'.]`;
    if (!cert) {
      this.sendAadError(ctx, 401, 'invalid_client', 700027, keyRef('The key was not found.'));
      return false;
    }
    const emuNow = this.state.now();
    if (emuNow > cert.validTo.getTime() || emuNow < cert.validFrom.getTime()) {
      this.sendAadError(ctx, 401, 'invalid_client', 700027, keyRef('The key used is expired.', cert));
      return false;
    }
    if (!verifyJwtSignature(jwt, cert.publicKey)) {
      this.sendAadError(ctx, 401, 'invalid_client', 700027, keyRef('The provided signature value did not match the expected signature value.', cert));
      return false;
    }
    const { aud, iss, sub, exp, nbf, jti } = payload;
    if (typeof aud !== 'string' || !this.assertionAudiences(tenant).has(aud.toLowerCase().replace(/\/+$/, ''))) {
      this.sendAadError(ctx, 401, 'invalid_client', 700023, `Client assertion audience claim does not match Realm issuer. ${docs}`);
      return false;
    }
    if (typeof iss !== 'string' || typeof sub !== 'string' || iss.toLowerCase() !== clientId.toLowerCase() || sub.toLowerCase() !== clientId.toLowerCase()) {
      this.sendAadError(ctx, 401, 'invalid_client', 700021, `Client assertion application identifier doesn't match 'client_id' parameter. ${docs}`);
      return false;
    }
    if (typeof jti !== 'string' || jti === '' || typeof exp !== 'number') {
      this.sendAadError(ctx, 400, 'invalid_request', 50027, `JWT token is invalid or malformed. The client assertion must carry the claims aud, exp, iss, jti, sub.`);
      return false;
    }
    // the client signs with its own (real) clock, so the assertion is checked against real time
    const now = Date.now() / 1000;
    const from = typeof nbf === 'number' ? nbf : 0;
    if (exp + ASSERTION_SKEW_S < now || from - ASSERTION_SKEW_S > now) {
      const iso = (secs: number): string => new Date(secs * 1000).toISOString().replace(/\.(\d+)Z$/, (_, f: string) => `.${f.padEnd(7, '0')}Z`);
      this.sendAadError(ctx, 401, 'invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${iso(now)}, assertion valid from ${iso(from)}, expiry time of assertion ${iso(exp)}. ${docs}`);
      return false;
    }
    return true;
  }

  /** the `aud` values Entra takes for a client assertion: the token endpoints (v2 and v1) and the issuer, per tenant name */
  private assertionAudiences(tenant: string): Set<string> {
    const out = new Set<string>();
    for (const t of new Set([tenant, this.auth.tenantId, this.auth.tenantDomain])) {
      const a = `${this.origin}/${t}`.toLowerCase();
      for (const suffix of ['/oauth2/v2.0/token', '/oauth2/token', '/v2.0', '']) out.add(a + suffix);
    }
    return out;
  }

  private sendAadError(ctx: Ctx, status: number, error: string, code: number, message: string): void {
    const ts = new Date(this.state.now()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    const traceId = randomUUID();
    this.sendJson(ctx, status, {
      error,
      error_description: `AADSTS${code}: ${message} Trace ID: ${traceId} Correlation ID: ${ctx.clientRequestId} Timestamp: ${ts}`,
      error_codes: [code],
      timestamp: ts,
      trace_id: traceId,
      correlation_id: ctx.clientRequestId,
      error_uri: `${this.origin}/error?code=${code}`,
    });
  }

  // ---- Graph side --------------------------------------------------------------------------

  private authenticate(ctx: Ctx): IssuedToken {
    const m = /^bearer\s+(.+)$/i.exec(ctx.req.headers.authorization ?? '');
    const wwwAuth = {
      'www-authenticate': `Bearer realm="", authorization_uri="${this.origin}/${this.auth.tenantId}/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`,
    };
    if (!m) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token is empty.', wwwAuth);
    const token = this.tokens.get(m[1]!.trim());
    if (!token) throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.', wwwAuth);
    if (this.faults.take(ctx.method, ctx.path, ['expiredToken'])) token.revoked = true;
    if (token.revoked || token.expiresAt <= this.state.now()) {
      throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.', wwwAuth);
    }
    return token;
  }

  /** the application permissions a Graph path needs (any one of them); undefined for paths the emulator does not serve */
  private requiredPermissions(ctx: Ctx): readonly string[] | undefined {
    const s = ctx.segments.slice(1).map((x) => x.toLowerCase());
    const [a, b, c, d] = s;
    if (a === 'users') return isDelta(b) && c === undefined ? USER_DELTA : USER_READ;
    if (a === 'groups') return GROUP_READ;
    if (a !== undefined && (a === 'serviceprincipals' || a.startsWith('serviceprincipals('))) {
      return s.includes('approleassignedto') ? ASSIGNMENT_READ : APP_READ;
    }
    if (a === 'directory' && b === 'deleteditems' && d === undefined) {
      if (c === 'microsoft.graph.user') return USER_READ;
      if (c === 'microsoft.graph.group') return GROUP_READ;
    }
    return undefined;
  }

  /** 403 Authorization_RequestDenied unless the token's roles hold one of the permissions the endpoint needs */
  private authorize(ctx: Ctx, token: IssuedToken): void {
    const needed = this.requiredPermissions(ctx);
    if (needed && !needed.some((p) => token.roles.has(p))) {
      throw new GraphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    }
  }

  /** whether the token may read objects of a kind (directoryObject collections return others with limited information) */
  private canRead(ctx: Ctx, kind: 'user' | 'group'): boolean {
    const roles = ctx.token?.roles;
    if (!roles) return true;
    return (kind === 'user' ? USER_READ : GROUP_READ).some((p) => roles.has(p));
  }

  private graph(ctx: Ctx): void {
    const seg = ctx.segments.slice(1);
    const s = seg.map((x) => x.toLowerCase());
    for (const name of ctx.q.keys()) {
      if (name === '$skip') throw new GraphError(400, 'Request_BadRequest', "'$skip' is not supported by the service.");
      if (name === '$search') throw new GraphError(400, 'Request_UnsupportedQuery', '$search is not supported by the emulator.');
      if (name.startsWith('$') && !['$select', '$top', '$filter', '$count', '$orderby', '$skiptoken', '$deltatoken', '$expand'].includes(name)) {
        throw new GraphError(400, 'BadRequest', `The query parameter '${name}' is not supported.`);
      }
    }
    if (ctx.q.has('$expand') && !(s[0] === 'groups' && isDelta(s[1]))) {
      throw new GraphError(400, 'Request_UnsupportedQuery', '$expand is not supported by the emulator.');
    }
    const [a, b, c, d, e] = s;
    if (a === 'users') {
      if (b === undefined) return this.listDirectory(ctx, 'user');
      if (b === '$count') return this.count(ctx, [...this.state.users.values()].filter((u) => u.deletedSeq === null).length);
      if (isDelta(b) && c === undefined) return this.delta(ctx, 'users');
      if (c === undefined) {
        const user = this.state.findUser(seg[1]!);
        if (!user) throw notFound(seg[1]!);
        const select = parseSelect(ctx.q.get('$select') ?? null, ['user'], { collection: false });
        ctx.ru = 1;
        return this.sendJson(ctx, 200, { '@odata.context': `${this.base}/$metadata#users${selectSuffix(select)}/$entity`, ...renderObject(user, select) });
      }
      if ((c === 'memberof' || c === 'transitivememberof') && (e === undefined || e === '$count')) {
        const user = this.state.findUser(seg[1]!);
        if (!user) throw notFound(seg[1]!);
        return this.memberOf(ctx, user, c === 'transitivememberof', d, e === '$count');
      }
    }
    if (a === 'groups') {
      if (b === undefined) return this.listDirectory(ctx, 'group');
      if (b === '$count') return this.count(ctx, [...this.state.groups.values()].filter((g) => g.deletedSeq === null).length);
      if (isDelta(b) && c === undefined) return this.delta(ctx, 'groups');
      const group = this.state.liveGroup(seg[1]!);
      if (!group) throw notFound(seg[1]!);
      if (c === undefined) {
        const select = parseSelect(ctx.q.get('$select') ?? null, ['group'], { collection: false });
        return this.sendJson(ctx, 200, { '@odata.context': `${this.base}/$metadata#groups${selectSuffix(select)}/$entity`, ...renderObject(group, select) });
      }
      if ((c === 'members' || c === 'transitivemembers') && (e === undefined || e === '$count')) {
        return this.members(ctx, group, c === 'transitivemembers', d, e === '$count');
      }
      if ((c === 'memberof' || c === 'transitivememberof') && (e === undefined || e === '$count')) {
        return this.memberOf(ctx, group, c === 'transitivememberof', d, e === '$count');
      }
    }
    if (a !== undefined && (a === 'serviceprincipals' || a.startsWith('serviceprincipals('))) {
      return this.servicePrincipals(ctx, seg);
    }
    if (a === 'directory' && b === 'deleteditems' && (c === 'microsoft.graph.user' || c === 'microsoft.graph.group') && d === undefined) {
      const kind = c === 'microsoft.graph.user' ? 'user' : 'group';
      const source: DirObject[] = kind === 'user' ? [...this.state.users.values()] : [...this.state.groups.values()];
      const select = parseSelect(ctx.q.get('$select') ?? null, [kind], { collection: true });
      return this.page(ctx, source.filter((o) => o.deletedSeq !== null), (o) => renderObject(o as DirObject, select), `${this.base}/$metadata#directoryObjects/${MODEL[kind].type}`, this.tuning.defaultPageSize);
    }
    const bad = seg[seg.length - 1] ?? '';
    throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${bad}'.`);
  }

  private advanced(ctx: Ctx): boolean {
    return String(ctx.req.headers.consistencylevel ?? '').toLowerCase() === 'eventual';
  }

  private count(ctx: Ctx, n: number): void {
    if (!this.advanced(ctx)) throw new GraphError(400, 'Request_BadRequest', '$count is not currently supported.');
    this.sendText(ctx, 200, String(n));
  }

  /** parse $filter and enforce the advanced-query rule */
  private filter(ctx: Ctx, kind: EntityKind, forceAdvanced = false): FilterNode | undefined {
    const raw = ctx.q.get('$filter');
    if (raw === undefined) return undefined;
    const parsed = parseFilter(raw, kind);
    if ((parsed.advanced || forceAdvanced) && !(this.advanced(ctx) && ctx.q.get('$count')?.toLowerCase() === 'true')) {
      throw new GraphError(400, 'Request_UnsupportedQuery', 'Unsupported Query.');
    }
    return parsed.node;
  }

  private orderBy(ctx: Ctx, items: DirObject[], allowed: string[], withFilter: boolean): DirObject[] {
    const raw = ctx.q.get('$orderby');
    if (raw === undefined) return items;
    const m = /^\s*(\w+)(?:\s+(asc|desc))?\s*$/i.exec(raw);
    const prop = m ? allowed.find((p) => p.toLowerCase() === m[1]!.toLowerCase()) : undefined;
    if (!m || !prop) throw new GraphError(400, 'Request_UnsupportedQuery', `Order by '${raw}' is not supported.`);
    if (withFilter && !(this.advanced(ctx) && ctx.q.get('$count')?.toLowerCase() === 'true')) {
      throw new GraphError(400, 'Request_UnsupportedQuery', 'Sorting not supported for current query.');
    }
    const dir = m[2]?.toLowerCase() === 'desc' ? -1 : 1;
    return [...items].sort((x, y) => dir * String(x.props[prop] ?? '').toLowerCase().localeCompare(String(y.props[prop] ?? '').toLowerCase()));
  }

  private listDirectory(ctx: Ctx, kind: 'user' | 'group'): void {
    ctx.ru = kind === 'user' ? 2 : 1;
    const select = parseSelect(ctx.q.get('$select') ?? null, [kind], { collection: true });
    const cursor = this.resume(ctx);
    if (cursor) return this.sendPage(ctx, cursor.cursor, cursor.id, cursor.pos, false);
    const top = parseTop(ctx.q.get('$top') ?? null, this.tuning.defaultPageSize);
    const node = this.filter(ctx, kind);
    const source: Iterable<DirObject> = kind === 'user' ? this.state.users.values() : this.state.groups.values();
    let items: DirObject[] = [];
    for (const o of source) if (o.deletedSeq === null && (!node || evalFilter(node, o.props))) items.push(o);
    items = this.orderBy(ctx, items, ['displayName', 'userPrincipalName', 'mail'], node !== undefined);
    this.page(ctx, items, (o) => renderObject(o as DirObject, select), `${this.base}/$metadata#${kind}s${selectSuffix(select)}`, top);
  }

  private members(ctx: Ctx, group: GroupObject, transitive: boolean, castRaw: string | undefined, countSegment: boolean): void {
    ctx.ru = transitive ? 5 : 3;
    let cast: MemberType | undefined;
    if (castRaw !== undefined && castRaw !== '$count') {
      if (castRaw === 'microsoft.graph.user') cast = 'user';
      else if (castRaw === 'microsoft.graph.group') cast = 'group';
      else throw new GraphError(400, 'Request_UnsupportedQuery', `The type '${castRaw}' is not supported for this query.`);
      if (cast === 'group' && ((group.props.groupTypes as string[] | undefined) ?? []).includes('Unified')) {
        throw new GraphError(400, 'Request_UnsupportedQuery', 'Unified groups cannot contain groups.');
      }
    }
    const all = transitive ? this.state.transitiveMembers(group) : this.state.liveMembers(group);
    this.directoryObjects(ctx, cast ? all.filter((m) => m.kind === cast) : all, cast, cast ?? 'user', countSegment || castRaw === '$count');
  }

  /** `/users/{id}/memberOf`, `/transitiveMemberOf` (and the same on groups): groups only, no directory roles */
  private memberOf(ctx: Ctx, obj: DirObject, transitive: boolean, castRaw: string | undefined, countSegment: boolean): void {
    ctx.ru = 1;
    let empty = false;
    if (castRaw !== undefined && castRaw !== '$count' && castRaw !== 'microsoft.graph.group') {
      // the emulator has no directory roles or administrative units: those casts are valid but empty
      if (castRaw === 'microsoft.graph.directoryrole' || castRaw === 'microsoft.graph.administrativeunit') empty = true;
      else throw new GraphError(400, 'Request_UnsupportedQuery', `The type '${castRaw}' is not supported for this query.`);
    }
    const groups: DirObject[] = empty ? [] : transitive ? this.state.transitiveMemberOf(obj.id) : this.state.liveMemberOf(obj.id);
    const cast = castRaw === 'microsoft.graph.group' ? 'group' : undefined;
    this.directoryObjects(ctx, groups, cast, 'group', countSegment || castRaw === '$count');
  }

  /** a directoryObject collection: $count, $select, $top, advanced $filter/$orderby, @odata.type on every item */
  private directoryObjects(ctx: Ctx, typed: DirObject[], cast: MemberType | undefined, filterKind: MemberType, countOnly: boolean): void {
    if (countOnly) return this.count(ctx, typed.length);
    const kinds: Array<'user' | 'group'> = cast ? [cast] : ['user', 'group'];
    const select = parseSelect(ctx.q.get('$select') ?? null, kinds, { collection: true });
    const cursor = this.resume(ctx);
    if (cursor) return this.sendPage(ctx, cursor.cursor, cursor.id, cursor.pos, false);
    const top = parseTop(ctx.q.get('$top') ?? null, this.tuning.defaultPageSize);
    // $filter / $orderby on these relationships are advanced queries
    const node = this.filter(ctx, filterKind, true);
    const items = this.orderBy(ctx, node ? typed.filter((m) => evalFilter(node, m.props)) : typed, ['displayName'], true);
    const context = `${this.base}/$metadata#directoryObjects${cast ? `/${MODEL[cast].type}` : ''}${selectSuffix(select)}`;
    const readable = { user: this.canRead(ctx, 'user'), group: this.canRead(ctx, 'group') };
    this.page(ctx, items, (x) => {
      const m = x as DirObject;
      const item: Record<string, unknown> = { '@odata.type': `#${MODEL[m.kind].type}`, ...renderObject(m, select) };
      // an object of a type the app may not read comes back with limited information: type and id, the rest null
      if (!readable[m.kind]) for (const k of Object.keys(item)) if (k !== '@odata.type' && k !== 'id') item[k] = null;
      return item;
    }, context, top);
  }

  private servicePrincipals(ctx: Ctx, seg: string[]): void {
    const head = seg[0]!;
    const rest = seg.slice(1).map((x) => x.toLowerCase());
    let sp: ServicePrincipal | undefined;
    let idText: string;
    const byAppId = /^serviceprincipals\(appid='([^']*)'\)$/i.exec(head);
    if (byAppId) {
      idText = byAppId[1]!;
      sp = this.state.findServicePrincipal({ appId: idText });
    } else if (seg.length === 1) {
      // collection
      const select = parseSelect(ctx.q.get('$select') ?? null, ['servicePrincipal'], { collection: true });
      const cursor = this.resume(ctx);
      if (cursor) return this.sendPage(ctx, cursor.cursor, cursor.id, cursor.pos, false);
      const top = parseTop(ctx.q.get('$top') ?? null, this.tuning.defaultPageSize);
      const node = this.filter(ctx, 'servicePrincipal');
      const items = [...this.state.servicePrincipals.values()].filter((x) => !node || evalFilter(node, spProps(x)));
      return this.page(ctx, items, (x) => project(spProps(x as ServicePrincipal), select, MODEL.servicePrincipal.defaults), `${this.base}/$metadata#servicePrincipals${selectSuffix(select)}`, top);
    } else {
      idText = seg[1]!;
      rest.shift();
      sp = this.state.findServicePrincipal({ id: idText });
    }
    if (!sp) throw notFound(idText);
    if (rest.length === 0) {
      const select = parseSelect(ctx.q.get('$select') ?? null, ['servicePrincipal'], { collection: false });
      return this.sendJson(ctx, 200, { '@odata.context': `${this.base}/$metadata#servicePrincipals${selectSuffix(select)}/$entity`, ...project(spProps(sp), select, MODEL.servicePrincipal.defaults) });
    }
    if (rest.length === 1 && rest[0] === 'approleassignedto') {
      ctx.ru = 2;
      if (ctx.q.has('$filter')) throw new GraphError(400, 'Request_UnsupportedQuery', '$filter on appRoleAssignedTo is not supported by the emulator.');
      const select = parseSelect(ctx.q.get('$select') ?? null, ['assignment'], { collection: true });
      const cursor = this.resume(ctx);
      if (cursor) return this.sendPage(ctx, cursor.cursor, cursor.id, cursor.pos, false);
      const top = parseTop(ctx.q.get('$top') ?? null, this.tuning.defaultPageSize);
      const owner = sp;
      const items = [...owner.assignments.values()];
      return this.page(
        ctx,
        items,
        (x) => {
          const a = x as (typeof items)[number];
          return project(
            {
              id: a.id,
              deletedDateTime: null,
              appRoleId: a.appRoleId,
              createdDateTime: a.createdDateTime,
              principalDisplayName: this.state.principalDisplayName(a.principalId),
              principalId: a.principalId,
              principalType: a.principalType,
              resourceDisplayName: owner.displayName,
              resourceId: owner.id,
            },
            select,
            MODEL.assignment.defaults,
          );
        },
        `${this.base}/$metadata#servicePrincipals('${owner.id}')/appRoleAssignedTo${selectSuffix(select)}`,
        top,
      );
    }
    throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${seg[seg.length - 1]}'.`);
  }

  // ---- paging ------------------------------------------------------------------------------

  private newCursor(c: Cursor): string {
    const id = randomBytes(9).toString('base64url');
    this.cursors.set(id, c);
    if (this.cursors.size > MAX_CURSORS) {
      const oldest = this.cursors.keys().next().value;
      if (oldest !== undefined) this.cursors.delete(oldest);
    }
    return id;
  }

  /** the cursor a $skiptoken points at, or undefined when there is no $skiptoken */
  private resume(ctx: Ctx): { cursor: Cursor; pos: number; id: string } | undefined {
    const tok = ctx.q.get('$skiptoken');
    if (tok === undefined) return undefined;
    const decoded = decodeToken<{ c: string; p: number }>(tok);
    const cursor = decoded ? this.cursors.get(decoded.c) : undefined;
    if (!decoded || !cursor) {
      throw new GraphError(400, 'Directory_ExpiredPageToken', 'The specified page token value has expired and can no longer be included in your request.');
    }
    return { cursor, pos: decoded.p, id: decoded.c };
  }

  private page(ctx: Ctx, items: unknown[], render: (item: unknown) => unknown, context: string, pageSize: number, deltaLink?: string): void {
    const cursor: Cursor = { items, pageSize, render, context, ...(deltaLink !== undefined ? { deltaLink } : {}) };
    const id = this.newCursor(cursor);
    const countWanted = ctx.q.get('$count')?.toLowerCase() === 'true' && this.advanced(ctx);
    this.sendPage(ctx, cursor, id, 0, countWanted);
  }

  private sendPage(ctx: Ctx, cursor: Cursor, id: string, pos: number, withCount: boolean): void {
    const empty = this.faults.take(ctx.method, ctx.path, ['emptyPage']);
    const end = empty ? pos : Math.min(pos + cursor.pageSize, cursor.items.length);
    const body: Record<string, unknown> = { '@odata.context': cursor.context };
    if (withCount) body['@odata.count'] = cursor.items.length;
    if (end < cursor.items.length || empty) {
      body['@odata.nextLink'] = this.nextLink(ctx, encodeToken({ c: id, p: end }), cursor.deltaLink !== undefined);
    } else if (cursor.deltaLink !== undefined) {
      body['@odata.deltaLink'] = cursor.deltaLink;
    }
    const value: unknown[] = [];
    for (let i = pos; i < end; i++) value.push(cursor.render(cursor.items[i]));
    body.value = value;
    this.sendJson(ctx, 200, body);
  }

  private nextLink(ctx: Ctx, skiptoken: string, delta: boolean): string {
    const params = new URLSearchParams();
    if (!delta) {
      for (const [k, v] of ctx.query) if (k.toLowerCase() !== '$skiptoken') params.append(k, v);
    }
    params.append('$skiptoken', skiptoken);
    return `${this.origin}${encodePath(ctx.path)}?${params.toString().replace(/%24/g, '$')}`;
  }

  // ---- delta -------------------------------------------------------------------------------

  private delta(ctx: Ctx, k: 'users' | 'groups'): void {
    const gone = this.faults.take(ctx.method, ctx.path, ['deltaGone']);
    const location = `${this.base}/${k}/delta?$deltatoken=`;
    if (gone) throw new GraphError(410, 'syncStateNotFound', 'The sync state generated on a different tenant or service instance is not found. Start a new sync.', { location });
    for (const name of ctx.q.keys()) {
      if (name === '$top' || name === '$orderby') throw new GraphError(400, 'Request_UnsupportedQuery', `${name} is not supported on delta queries.`);
    }
    const cursor = this.resume(ctx);
    if (cursor) return this.sendPage(ctx, cursor.cursor, cursor.id, cursor.pos, false);
    const kind = k === 'users' ? 'user' : 'group';
    const pageSize = preferredPageSize(ctx) ?? this.tuning.deltaPageSize;
    const minimal = /return=minimal/i.test(String(ctx.req.headers.prefer ?? ''));
    const applied: string[] = [];
    if (minimal) applied.push('return=minimal');
    if (preferredPageSize(ctx) !== undefined) applied.push(`odata.maxpagesize=${pageSize}`);
    if (applied.length > 0) ctx.res.setHeader('preference-applied', applied.join(','));

    const rawToken = ctx.q.get('$deltatoken');
    let token: DeltaToken | undefined;
    let select: string[] | undefined;
    let ids: string[] | null = null;
    if (rawToken !== undefined && rawToken !== '' && rawToken !== 'latest') {
      token = decodeToken<DeltaToken>(rawToken);
      if (!token || token.k !== k) throw new GraphError(400, 'Request_BadRequest', 'Invalid delta token.');
      if (token.e !== this.state.deltaEpoch || this.state.now() - token.t > this.state.deltaTokenLifetimeMs) {
        throw new GraphError(410, 'syncStateNotFound', 'The delta token has expired or is no longer valid. Start a new sync with a full request.', { location });
      }
      select = token.sel ?? undefined;
      ids = token.f;
    } else {
      if (k === 'groups' && ctx.q.has('$expand')) {
        if (ctx.q.get('$expand')!.toLowerCase() !== 'members') throw new GraphError(400, 'Request_UnsupportedQuery', 'Only $expand=members is supported on groups/delta.');
      } else if (ctx.q.has('$expand')) {
        throw new GraphError(400, 'Request_UnsupportedQuery', '$expand is not supported on delta queries.');
      }
      select = parseSelect(ctx.q.get('$select') ?? null, [kind], { collection: true, allowMembers: true });
      if (select && k === 'groups' && ctx.q.get('$expand')?.toLowerCase() === 'members' && !select.includes('members')) select.push('members');
      ids = parseDeltaFilter(ctx.q.get('$filter'));
    }
    const endSeq = this.state.seq;
    const newToken: DeltaToken = { k, s: endSeq, sel: select ?? null, f: ids, t: this.state.now(), e: this.state.deltaEpoch };
    const deltaLink = `${this.base}/${k}/delta?$deltatoken=${encodeToken(newToken)}`;
    const context = `${this.base}/$metadata#${k}${selectSuffix(select)}`;
    if (rawToken === 'latest') {
      return this.sendJson(ctx, 200, { '@odata.context': context, '@odata.deltaLink': deltaLink, value: [] });
    }
    const since = token?.s;
    const entries = k === 'users' ? this.userDelta(since, select, ids, minimal) : this.groupDelta(since, select, ids, minimal);
    this.page(ctx, entries, (x) => x, context, pageSize, deltaLink);
  }

  private userDelta(since: number | undefined, select: string[] | undefined, ids: string[] | null, minimal: boolean): unknown[] {
    const sel = select ?? [...MODEL.user.defaults];
    const want = ids ? new Set(ids) : undefined;
    const out: unknown[] = [];
    if (since === undefined) {
      for (const u of this.state.users.values()) {
        if (u.deletedSeq === null && (!want || want.has(u.id))) out.push(deltaRender(u.props, sel));
      }
      return out;
    }
    for (const id of this.state.changedSince('user', since)) {
      if (want && !want.has(id)) continue;
      const e = this.objectDeltaEntry('user', id, since, sel, minimal);
      if (e) out.push(e);
    }
    return out;
  }

  /** the delta entry of one changed user/group, without members; undefined when nothing selected changed */
  private objectDeltaEntry(kind: 'user' | 'group', id: string, since: number, sel: string[], minimal: boolean): Record<string, unknown> | undefined {
    const obj = kind === 'user' ? this.state.users.get(id) : this.state.groups.get(id);
    const type = `#${MODEL[kind].type}`;
    if (!obj) {
      return this.state.tombstones.has(id) ? { '@odata.type': type, id, '@removed': { reason: 'deleted' } } : undefined;
    }
    if (obj.deletedSeq !== null) return { '@odata.type': type, id, '@removed': { reason: 'changed' } };
    if (obj.createdSeq > since || obj.restoredSeq > since) return deltaRender(obj.props, sel);
    const changed = sel.filter((p) => (obj.propSeq.get(p) ?? 0) > since);
    if (changed.length === 0) return undefined;
    if (!minimal) return deltaRender(obj.props, sel);
    const e: Record<string, unknown> = { id };
    for (const p of changed) e[p] = obj.props[p] ?? null;
    return e;
  }

  private groupDelta(since: number | undefined, select: string[] | undefined, ids: string[] | null, minimal: boolean): unknown[] {
    const sel = select ?? [...MODEL.group.defaults, 'members'];
    const props = sel.filter((p) => p !== 'members');
    const tracksMembers = sel.includes('members');
    const want = ids ? new Set(ids) : undefined;
    const out: unknown[] = [];
    const slice = Math.max(1, this.tuning.deltaMemberSlice);
    const push = (entry: Record<string, unknown>, members: unknown[]): void => {
      if (members.length === 0) {
        out.push(entry);
        return;
      }
      for (let i = 0; i < members.length; i += slice) {
        const part = members.slice(i, i + slice);
        out.push(i === 0 ? { ...entry, 'members@delta': part } : { id: entry.id, 'members@delta': part });
      }
    };
    const allMembers = (g: GroupObject): unknown[] => (tracksMembers ? this.state.liveMembers(g).map((m) => ({ '@odata.type': `#${MODEL[m.kind].type}`, id: m.id })) : []);
    if (since === undefined) {
      for (const g of this.state.groups.values()) {
        if (g.deletedSeq === null && (!want || want.has(g.id))) push(deltaRender(g.props, props), allMembers(g));
      }
      return out;
    }
    const memberChanges = tracksMembers ? this.state.memberChangesSince(since) : new Map<string, Map<string, MemberType>>();
    const changed = new Set([...this.state.changedSince('group', since), ...memberChanges.keys()]);
    for (const id of changed) {
      if (want && !want.has(id)) continue;
      const g = this.state.groups.get(id);
      const entry = this.objectDeltaEntry('group', id, since, props, minimal);
      if (!g || g.deletedSeq !== null) {
        if (entry) out.push(entry);
        continue;
      }
      if (g.createdSeq > since || g.restoredSeq > since) {
        push(entry ?? deltaRender(g.props, props), allMembers(g));
        continue;
      }
      const mc = memberChanges.get(id);
      const members: unknown[] = [];
      for (const [mid, type] of mc ?? []) {
        const present = g.members.has(mid) && (type === 'user' ? this.state.liveUser(mid) : this.state.liveGroup(mid)) !== undefined;
        members.push(present ? { '@odata.type': `#${MODEL[type].type}`, id: mid } : { '@odata.type': `#${MODEL[type].type}`, id: mid, '@removed': { reason: 'deleted' } });
      }
      if (!entry && members.length === 0) continue;
      push(entry ?? (minimal ? { id } : deltaRender(g.props, props)), members);
    }
    return out;
  }

  // ---- responses ---------------------------------------------------------------------------

  private headers(ctx: Ctx, extra: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = {
      'request-id': ctx.requestId,
      'client-request-id': ctx.clientRequestId,
      'cache-control': 'no-cache',
      'strict-transport-security': 'max-age=31536000',
      ...extra,
    };
    if (ctx.segments[0]?.toLowerCase() === 'v1.0') h['x-ms-resource-unit'] = String(resourceUnits(ctx));
    return h;
  }

  sendJson(ctx: Ctx, status: number, body: unknown, extra: Record<string, string> = {}): void {
    this.send(ctx, status, JSON.stringify(body), { 'content-type': JSON_TYPE, ...extra });
  }

  private sendText(ctx: Ctx, status: number, text: string): void {
    this.send(ctx, status, text, { 'content-type': 'text/plain' });
  }

  private send(ctx: Ctx, status: number, text: string, extra: Record<string, string>): void {
    const buf = Buffer.from(text, 'utf8');
    const headers = { ...this.headers(ctx, extra), 'content-length': String(buf.length) };
    if (ctx.drop) {
      ctx.res.writeHead(status, headers);
      const half = buf.subarray(0, Math.max(1, Math.floor(buf.length / 2)));
      ctx.res.write(half, () => ctx.res.socket?.destroy());
      return;
    }
    ctx.res.writeHead(status, headers);
    ctx.res.end(buf);
  }

  sendError(ctx: Ctx, err: GraphError): void {
    if (ctx.res.headersSent) {
      ctx.res.destroy();
      return;
    }
    const date = new Date(this.state.now()).toISOString().replace(/\.\d+Z$/, '');
    this.sendJson(
      ctx,
      err.status,
      { error: { code: err.code, message: err.message, innerError: { date, 'request-id': ctx.requestId, 'client-request-id': ctx.clientRequestId, ...err.innerExtra } } },
      err.headers,
    );
  }
}

// ---- helpers -------------------------------------------------------------------------------

/** MM/DD/YYYY HH:mm:ss (UTC), as Entra prints a key's validity in its error texts */
function usDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

function faultError(f: ActiveFault): GraphError {
  const ra = f.spec.retryAfter === undefined ? (f.kind === 'throttle' ? 1 : null) : f.spec.retryAfter;
  const headers: Record<string, string> = ra === null ? {} : { 'retry-after': String(ra) };
  switch (f.kind) {
    case 'throttle':
      return new GraphError(429, 'TooManyRequests', 'Please retry again later.', { ...headers, 'x-ms-throttle-scope': 'Tenant_Application/ReadWrite/emulator', 'x-ms-throttle-information': 'ResourceUnitLimitExceeded' }, { code: '429', message: 'Please retry after', status: '429' });
    case 'unavailable':
      return new GraphError(503, 'serviceNotAvailable', 'The service is temporarily unavailable. Please retry later.', headers);
    default:
      return new GraphError(504, 'UnknownError', 'The request timed out.', headers);
  }
}

function notFound(id: string): GraphError {
  return new GraphError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
}

function isDelta(seg: string | undefined): boolean {
  return seg === 'delta' || seg === 'microsoft.graph.delta';
}

function safeDecode(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

function encodePath(p: string): string {
  return p.split('/').map((s) => encodeURIComponent(s).replace(/%24/g, '$').replace(/%40/g, '@').replace(/%27/g, "'").replace(/%28/g, '(').replace(/%29/g, ')').replace(/%3D/gi, '=')).join('/');
}

function encodeToken(v: unknown): string {
  return Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
}

function decodeToken<T>(s: string): T | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}

function selectSuffix(select: string[] | undefined): string {
  return select ? `(${select.join(',')})` : '';
}

/** list/item representation: selected (or default) properties, unset ones as null */
function project(props: Record<string, unknown>, select: string[] | undefined, defaults: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of select ?? defaults) out[p] = props[p] ?? null;
  return out;
}

function renderObject(o: DirObject, select: string[] | undefined): Record<string, unknown> {
  const model = MODEL[o.kind];
  if (!select) return project(o.props, undefined, model.defaults);
  // on directoryObject collections, properties of another type are left out
  return project(o.props, select.filter((p) => model.all.has(p.toLowerCase()) && p !== 'members' && p !== 'manager'), model.defaults);
}

/** delta representation: selected properties, unset ones left out */
function deltaRender(props: Record<string, unknown>, sel: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { id: props.id };
  for (const p of sel) {
    if (p === 'members' || p === 'manager') continue;
    const v = props[p];
    if (v !== null && v !== undefined) out[p] = v;
  }
  return out;
}

function spProps(sp: ServicePrincipal): Record<string, unknown> {
  return {
    id: sp.id,
    appId: sp.appId,
    displayName: sp.displayName,
    appDisplayName: sp.displayName,
    appRoleAssignmentRequired: sp.appRoleAssignmentRequired,
    appRoles: sp.appRoles,
    servicePrincipalType: 'Application',
    accountEnabled: true,
    tags: [],
    deletedDateTime: null,
  };
}

function parseDeltaFilter(raw: string | undefined): string[] | null {
  if (raw === undefined) return null;
  const parts = raw.split(/\s+or\s+/i);
  const ids: string[] = [];
  for (const p of parts) {
    const m = /^\s*\(?\s*id\s+eq\s+'([^']+)'\s*\)?\s*$/i.exec(p);
    if (!m) throw new GraphError(400, 'Request_UnsupportedQuery', 'Only id eq filters combined with or are supported on delta queries.');
    ids.push(m[1]!);
  }
  if (ids.length > 50) throw new GraphError(400, 'Request_UnsupportedQuery', 'The number of ids in the filter exceeds the maximum of 50.');
  return ids;
}

function preferredPageSize(ctx: Ctx): number | undefined {
  const m = /odata\.maxpagesize=(\d+)/i.exec(String(ctx.req.headers.prefer ?? ''));
  if (!m) return undefined;
  return Math.min(999, Math.max(1, Number(m[1])));
}

function resourceUnits(ctx: Ctx): number {
  let ru = ctx.ru;
  if (ctx.q.has('$select')) ru -= 1;
  if (ctx.q.has('$expand')) ru += 1;
  const top = Number(ctx.q.get('$top'));
  if (ctx.q.has('$top') && top < 20) ru -= 1;
  return Math.max(1, ru);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
