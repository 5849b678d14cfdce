// The HTTP side shared by the four fakes: authentication, faults, latency, request and response
// checks against the product's document, the request log, and the in-flight counter. A product
// module supplies the routes (keyed by the document's operations) and its error shapes.

import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Contract } from './contract.ts';
import type { Route } from './contract.ts';
import { Faults } from './faults.ts';
import type { ActiveFault } from './faults.ts';
import { Directory } from './state.ts';
import type { GroupRecord, UserRecord } from './state.ts';
import type { AtlassianFake, FakeKind, FakeOptions, FakeProject, FakeUser, RequestLogEntry } from './types.ts';

export const DEFAULT_TOKEN = 'fake-admin-token';
export const DEFAULT_BASIC_USER = 'admin';
export const DEFAULT_BASIC_PASSWORD = 'admin-password';

export interface Ctx {
  method: string;
  /** as sent, without the query */
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** decoded path parameters, named as in the document */
  params: Record<string, string>;
}

export interface Reply {
  status: number;
  /** JSON; left out for an empty body */
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (ctx: Ctx) => Reply;

/** thrown by handlers to answer with an error */
export class Fail extends Error {
  constructor(readonly reply: Reply) {
    super(`HTTP ${reply.status}`);
  }
}

export interface ProductEnv {
  options: Required<Pick<FakeOptions, 'token' | 'basicUser' | 'basicPassword' | 'latencyMs' | 'seats' | 'verifiedDomains' | 'deleteDelayMs'>> & { directoryId: string };
  /** http://127.0.0.1:<port>, known once listening */
  origin: string;
  dir: Directory;
}

export interface Product {
  kind: FakeKind;
  /** "METHOD /document/path" -> handler */
  routes: Record<string, Handler>;
  /** Cloud takes only its bearer key */
  basicAuth: boolean;
  /** the base URL clients are given, from the origin */
  baseUrl(origin: string): string;
  /** the document's path for a request path; undefined when it is outside the API */
  specPath(path: string): string | undefined;
  /** an error answer in the product's own shape */
  error(status: number, message: string): Reply;
  /** the answer to a missing or wrong credential */
  unauthorized(): Reply;
  /** the answer to a request the document rejects */
  invalid(problems: string[]): Reply;

  // manual edits
  newUser(u: { name: string; email: string | null; displayName: string; active: boolean }): UserRecord;
  newGroup(name: string): GroupRecord;
  /** checks a hand edit, e.g. Bitbucket refuses deactivation */
  updateUser?(u: UserRecord, change: Partial<Omit<FakeUser, 'name' | 'id'>>): void;
  /** Jira */
  addProject?(p: { key: string; name: string; lead: string; components?: { name: string; lead?: string }[] }): void;
  project?(key: string): FakeProject | undefined;
  close?(): void;
}

const JSON_TYPES = /^application\/([\w.+-]*\+)?json\b/i;

export function toFakeUser(u: UserRecord): FakeUser {
  return { name: u.name, email: u.email, displayName: u.displayName, active: u.active, id: u.id };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function makeEnv(kind: FakeKind, options: FakeOptions, directoryId: string): ProductEnv {
  return {
    options: {
      token: options.token ?? DEFAULT_TOKEN,
      basicUser: options.basicUser ?? DEFAULT_BASIC_USER,
      basicPassword: options.basicPassword ?? DEFAULT_BASIC_PASSWORD,
      latencyMs: options.latencyMs ?? 0,
      seats: options.seats ?? Infinity,
      verifiedDomains: (options.verifiedDomains ?? ['example.com']).map((d) => d.toLowerCase()),
      deleteDelayMs: options.deleteDelayMs ?? 50,
      directoryId,
    },
    origin: '',
    dir: new Directory(),
  };
}

export async function serve(product: Product, env: ProductEnv): Promise<AtlassianFake> {
  const contract = await Contract.load<Handler>(product.kind, product.routes);
  const faults = new Faults();
  const violations: string[] = [];
  const requests: RequestLogEntry[] = [];
  const { options, dir } = env;
  const basic = `Basic ${Buffer.from(`${options.basicUser}:${options.basicPassword}`).toString('base64')}`;
  const bearer = `Bearer ${options.token}`;
  const docName = product.kind === 'atlassian-cloud' ? 'Cloud SCIM' : product.kind[0]!.toUpperCase() + product.kind.slice(1);
  let inFlight = 0;
  let maxInFlight = 0;
  let closed = false;
  const sockets = new Set<Socket>();

  const authorized = (h: string | undefined): boolean => h === bearer || (product.basicAuth && h !== undefined && h.length === basic.length && h.toLowerCase().startsWith('basic ') && h.slice(6) === basic.slice(6));

  const send = (res: ServerResponse, method: string, path: string, query: Record<string, string>, route: Route<Handler> | undefined, reply: Reply): void => {
    if (route) {
      const problems = contract.validateResponse(route, reply.status, reply.body);
      if (problems.length > 0) violations.push(`${docName} ${method} ${path} answered ${reply.status} outside the document: ${problems.join('; ')}`);
    }
    requests.push({ method, path, query, status: reply.status, at: Date.now() });
    if (res.destroyed) return;
    const headers: Record<string, string> = { ...reply.headers };
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers);
      res.end();
    } else {
      const text = JSON.stringify(reply.body);
      headers['content-type'] ??= 'application/json;charset=UTF-8';
      headers['content-length'] = String(Buffer.byteLength(text));
      res.writeHead(reply.status, headers);
      res.end(text);
    }
  };

  const faultReply = (f: ActiveFault): Reply | undefined => {
    if ('timeout' in f.spec) return undefined;
    const messages: Record<number, string> = {
      401: 'Client must be authenticated to access this resource.',
      403: 'You do not have the permission to perform this operation.',
      404: 'The requested resource was not found.',
      409: 'The request conflicts with the current state of the resource.',
      429: 'Too many requests: the rate limit was exceeded.',
      500: 'Internal server error.',
      502: 'Bad gateway.',
      503: 'Service temporarily unavailable.',
    };
    const reply = f.spec.status === 401 ? product.unauthorized() : product.error(f.spec.status, messages[f.spec.status] ?? 'Fault.');
    if (f.spec.retryAfter !== undefined) reply.headers = { ...reply.headers, 'retry-after': String(f.spec.retryAfter) };
    return reply;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    res.once('close', () => {
      inFlight--;
    });
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const query: Record<string, string> = {};
    if (q >= 0) for (const [k, v] of new URLSearchParams(target.slice(q + 1))) query[k] = v;
    const method = (req.method ?? 'GET').toUpperCase();

    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : '';
    if (options.latencyMs > 0) await sleep(options.latencyMs);
    if (closed) return;

    // what the document says about it
    const specPath = product.specPath(path);
    const m = specPath === undefined ? undefined : contract.match(method, specPath);
    let route: Route<Handler> | undefined;
    let params: Record<string, string> = {};
    let early: Reply | undefined;
    let body: unknown;
    if (m === undefined || 'methodNotAllowed' in m) {
      violations.push(`${docName} has no operation ${method} ${path}`);
      early = m === undefined ? product.error(404, `No resource at ${path}`) : product.error(405, `Method ${method} is not allowed on ${path}`);
    } else {
      route = m.route;
      params = m.params;
      const contentType = String(req.headers['content-type'] ?? '');
      if (text.trim() !== '') {
        if (!JSON_TYPES.test(contentType)) {
          violations.push(`${docName} ${method} ${path}: body sent as '${contentType || 'no content type'}', not JSON`);
          early = product.error(415, 'Unsupported Media Type');
        } else {
          try {
            body = JSON.parse(text);
          } catch (e) {
            violations.push(`${docName} ${method} ${path}: body is not JSON (${(e as Error).message})`);
            early = product.invalid([`body is not JSON: ${(e as Error).message}`]);
          }
        }
      }
      if (!early) {
        const problems = contract.validateRequest(route, { method, path: specPath!, query, headers: req.headers, body });
        if (problems.length > 0) {
          violations.push(`${docName} ${method} ${path}: ${problems.join('; ')}`);
          early = product.invalid(problems);
        }
      }
    }

    const fault = faults.take(method, path);
    if (fault) {
      const reply = faultReply(fault);
      if (reply) send(res, method, path, query, route, reply);
      // a timeout is never answered; close() destroys the socket
      return;
    }
    if (!authorized(req.headers.authorization)) {
      send(res, method, path, query, route, product.unauthorized());
      return;
    }
    if (early || !route) {
      send(res, method, path, query, route, early ?? product.error(404, 'Not found'));
      return;
    }
    let reply: Reply;
    try {
      reply = route.handler({ method, path, query, body, params });
    } catch (e) {
      if (e instanceof Fail) reply = e.reply;
      else {
        violations.push(`${docName} fake failed on ${method} ${path}: ${(e as Error).stack ?? String(e)}`);
        reply = product.error(500, (e as Error).message);
      }
    }
    send(res, method, path, query, route, reply);
  };

  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      violations.push(`${docName} fake failed: ${(e as Error).stack ?? String(e)}`);
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500);
        res.end();
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  env.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const mustUser = (name: string): UserRecord => {
    const u = dir.findUser(name);
    if (!u) throw new Error(`${product.kind} fake: no user ${name}`);
    return u;
  };
  const mustGroup = (name: string): GroupRecord => {
    const g = dir.findGroup(name);
    if (!g) throw new Error(`${product.kind} fake: no group ${name}`);
    return g;
  };

  const fake: AtlassianFake = {
    kind: product.kind,
    url: product.baseUrl(env.origin),
    token: options.token,
    faults,
    violations,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    resetStats() {
      requests.length = 0;
      maxInFlight = inFlight;
    },
    users: () => dir.users().map(toFakeUser),
    user: (name) => {
      const u = dir.findUser(name);
      return u ? toFakeUser(u) : undefined;
    },
    groups: () => dir.groups().map((g) => g.name),
    members: (group) => dir.members(mustGroup(group)).map((u) => u.name),
    groupsOf: (user) => dir.groupsOf(mustUser(user)).map((g) => g.name),
    addUser: (u) => {
      if (dir.findUser(u.name)) throw new Error(`${product.kind} fake: user ${u.name} exists`);
      const email = u.email === undefined ? (u.name.includes('@') ? u.name : `${u.name}@example.com`) : u.email;
      return toFakeUser(product.newUser({ name: u.name, email, displayName: u.displayName ?? u.name, active: u.active ?? true }));
    },
    updateUser: (name, change) => {
      const u = mustUser(name);
      product.updateUser?.(u, change);
      if (change.email !== undefined) u.email = change.email;
      if (change.displayName !== undefined) u.displayName = change.displayName;
      if (change.active !== undefined) u.active = change.active;
      dir.changed(u);
    },
    removeUser: (name) => dir.removeUser(mustUser(name)),
    addGroup: (name) => {
      if (dir.findGroup(name)) throw new Error(`${product.kind} fake: group ${name} exists`);
      product.newGroup(name);
    },
    removeGroup: (name) => dir.removeGroup(mustGroup(name)),
    addMember: (group, user) => {
      dir.addMember(mustGroup(group), mustUser(user));
    },
    removeMember: (group, user) => {
      dir.removeMember(mustGroup(group), mustUser(user));
    },
    close: async () => {
      if (closed) return;
      closed = true;
      product.close?.();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // held (timeout fault) and keep-alive sockets would keep close() waiting
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
    },
  };
  // projects and components exist only in Jira
  fake.addProject = (p) => {
    if (!product.addProject) throw new Error(`${product.kind} fake: projects exist only in Jira`);
    product.addProject(p);
  };
  fake.project = (key) => product.project?.(key);
  return fake;
}
