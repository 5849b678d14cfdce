// SCIM 2.0 endpoints of one connector at /scim/v2/{connectorId}/…, answered from the mirror.
// Every error is a SCIM Error body; nothing a client sends can crash the process.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, notFound, ScimError } from '../../domain/scim/errors.ts';
import { applyPatch } from '../../domain/scim/patch.ts';
import { parseQuery } from '../../domain/scim/query.ts';
import { normaliseResource } from '../../domain/scim/resource.ts';
import type { ResourceKind } from '../../domain/scim/schema.ts';
import { RESOURCE_TYPES, SCHEMAS } from '../../domain/scim/schema.ts';
import type { ConnectorStore } from '../../store/connectors.ts';
import { tokenMatches } from '../../store/connectors.ts';
import type { MirrorRecord, MirrorStore } from '../../store/mirror.ts';
import { allResourceTypes, allSchemas, listResponse, MAX_RESULTS, resourceType, schemaJson, serviceProviderConfig } from './discovery.ts';
import type { ProjectionRequest } from './render.ts';
import { parseAttributeList, project, render, wants } from './render.ts';

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

export interface ScimRoutesOptions {
  connectors: ConnectorStore;
  mirror: MirrorStore;
  /** public base URL (no trailing slash); when unset, derived from the request */
  publicBaseUrl?: string;
  bodyLimit: number;
  /** called after every committed write, so the reconciler starts at once */
  onWrite?: (connectorId: string) => void;
  /** how long a connector's token hashes are cached (revocations take effect within this time) */
  credentialsTtlMs?: number;
}

interface Params {
  connectorId: string;
  id?: string;
}

type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, string | undefined>; Body: unknown }>;

class CredentialCache {
  private readonly entries = new Map<string, { at: number; value: Awaited<ReturnType<ConnectorStore['credentials']>> }>();
  constructor(
    private readonly connectors: ConnectorStore,
    private readonly ttlMs: number,
  ) {}
  async get(connectorId: string) {
    const hit = this.entries.get(connectorId);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const value = await this.connectors.credentials(connectorId);
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(connectorId, { at: Date.now(), value });
    return value;
  }
}

function sendError(reply: FastifyReply, err: ScimError): FastifyReply {
  if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="usersync"');
  return reply.code(err.status).type(SCIM_CONTENT_TYPE).send(err.toJSON());
}

function intParam(q: Record<string, string | undefined>, name: string): number | undefined {
  const raw = Object.entries(q).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d{1,9}$/.test(raw)) throw badRequest('invalidValue', `'${name}' must be an integer`);
  return Number(raw);
}

function strParam(q: Record<string, string | undefined>, name: string): string | undefined {
  const v = Object.entries(q).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  if (Array.isArray(v)) throw badRequest('invalidValue', `'${name}' was given more than once`);
  return v;
}

export async function scimRoutes(app: FastifyInstance, opts: ScimRoutesOptions): Promise<void> {
  const { mirror } = opts;
  const credentials = new CredentialCache(opts.connectors, opts.credentialsTtlMs ?? 2000);

  // Entra sends application/scim+json; other clients application/json. Anything else is a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/scim+json', 'application/json'], { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(badRequest('invalidSyntax', `the request body is not valid JSON: ${(e as Error).message}`) as unknown as FastifyError, undefined);
    }
  });

  const base = (req: Req) => {
    const root = opts.publicBaseUrl ?? `${req.protocol}://${req.host}`;
    return `${root}/scim/v2/${encodeURIComponent(req.params.connectorId)}`;
  };

  // Authentication: an unknown connector answers exactly like a wrong token.
  app.addHook('onRequest', async (req: Req) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const connectorId = req.params.connectorId;
    const creds = typeof connectorId === 'string' && connectorId.length <= 64 ? await credentials.get(connectorId) : undefined;
    if (!match || !creds || !tokenMatches(match[1]!, creds.hashes)) {
      throw new ScimError(401, 'authentication failed: a valid bearer token for this connector is required');
    }
    if (!creds.enabled) throw new ScimError(403, 'this connector is disabled');
  });

  // Request bodies hold personal data: they are logged only at debug level (and the hook costs nothing otherwise).
  if (['debug', 'trace'].includes(app.log.level)) {
    app.addHook('preHandler', async (req) => {
      if (req.body !== undefined) req.log.debug({ body: req.body }, 'scim request body');
    });
  }

  app.setErrorHandler((error: FastifyError | ScimError, req, reply) => {
    if (error instanceof ScimError) {
      if (error.status >= 500) req.log.error({ err: error }, 'scim error');
      else if (req.method === 'PATCH' && error.status === 400) req.log.warn({ detail: error.message, ops: patchShape(req.body) }, 'PATCH refused');
      return sendError(reply, error);
    }
    const code = (error as FastifyError).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new ScimError(413, `the request body is larger than ${opts.bodyLimit} bytes`));
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, new ScimError(415, "use Content-Type 'application/scim+json' or 'application/json'"));
    if (code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return sendError(reply, badRequest('invalidSyntax', 'invalid Content-Length'));
    if ((error as FastifyError).statusCode && (error as FastifyError).statusCode! < 500) {
      return sendError(reply, new ScimError((error as FastifyError).statusCode!, error.message, 'invalidSyntax'));
    }
    req.log.error({ err: error }, 'unexpected error in a SCIM request');
    return sendError(reply, new ScimError(500, 'internal error; the request was not applied'));
  });

  app.setNotFoundHandler(async (_req, reply) => sendError(reply, notFound('no such SCIM endpoint')));

  const send = (reply: FastifyReply, status: number, body: unknown) => reply.code(status).type(SCIM_CONTENT_TYPE).send(body);
  const written = (req: Req) => opts.onWrite?.(req.params.connectorId);

  // Discovery
  app.get('/ServiceProviderConfig', async (req: Req, reply) => send(reply, 200, serviceProviderConfig(base(req))));
  app.get('/ResourceTypes', async (req: Req, reply) => {
    const all = allResourceTypes(base(req));
    return send(reply, 200, listResponse(all));
  });
  app.get('/ResourceTypes/:id', async (req: Req, reply) => {
    const t = Object.values(RESOURCE_TYPES).find((r) => r.kind.toLowerCase() === req.params.id!.toLowerCase());
    if (!t) throw notFound(`resource type ${req.params.id} not found`);
    return send(reply, 200, resourceType(t, base(req)));
  });
  app.get('/Schemas', async (req: Req, reply) => send(reply, 200, listResponse(allSchemas(base(req)))));
  app.get('/Schemas/:id', async (req: Req, reply) => {
    const s = SCHEMAS.find((x) => x.id.toLowerCase() === req.params.id!.toLowerCase());
    if (!s) throw notFound(`schema ${req.params.id} not found`);
    return send(reply, 200, schemaJson(s, base(req)));
  });

  async function renderAll(req: Req, kind: ResourceKind, records: MirrorRecord[], p: ProjectionRequest) {
    const connectorId = req.params.connectorId;
    const ids = records.map((r) => r.id);
    const members = kind === 'Group' && wants(p, 'members') && ids.length ? await mirror.members(connectorId, ids) : undefined;
    const groups = kind === 'User' && p.attributes?.has('groups') && ids.length ? await mirror.groupsOf(connectorId, ids) : undefined;
    const b = base(req);
    return records.map((r) =>
      project(
        kind,
        render(r, {
          location: `${b}${RESOURCE_TYPES[kind].endpoint}/${r.id}`,
          ...(members ? { members: members.get(r.id) ?? [] } : {}),
          ...(groups ? { groups: groups.get(r.id) ?? [] } : {}),
        }),
        p,
      ),
    );
  }

  function projectionOf(kind: ResourceKind, q: Record<string, string | undefined>): ProjectionRequest {
    const attributes = parseAttributeList(kind, strParam(q, 'attributes'));
    const excluded = parseAttributeList(kind, strParam(q, 'excludedAttributes'));
    return { ...(attributes ? { attributes } : {}), ...(excluded ? { excluded } : {}) };
  }

  async function renderOne(req: Req, kind: ResourceKind, record: MirrorRecord, q: Record<string, string | undefined> = req.query) {
    return (await renderAll(req, kind, [record], projectionOf(kind, q)))[0];
  }

  async function query(req: Req, reply: FastifyReply, kind: ResourceKind, q: Record<string, string | undefined>) {
    const filter = strParam(q, 'filter');
    const cond = filter !== undefined ? parseQuery(RESOURCE_TYPES[kind], filter) : undefined;
    const startIndex = Math.max(1, intParam(q, 'startIndex') ?? 1);
    const count = Math.min(MAX_RESULTS, Math.max(0, intParam(q, 'count') ?? 100));
    const p = projectionOf(kind, q);
    const { total, records } = await mirror.list(req.params.connectorId, kind, cond, startIndex, count);
    return send(reply, 200, listResponse(await renderAll(req, kind, records, p), total, startIndex));
  }

  for (const kind of ['User', 'Group'] as const) {
    const path = RESOURCE_TYPES[kind].endpoint;
    const type = RESOURCE_TYPES[kind];

    app.get(path, async (req: Req, reply) => query(req, reply, kind, req.query));

    app.post(`${path}/.search`, async (req: Req, reply) => {
      const body = req.body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('invalidSyntax', 'the request body must be a SearchRequest object');
      const q: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
        if (k === 'schemas') continue;
        if (Array.isArray(v)) q[k] = v.join(',');
        else if (typeof v === 'string' || typeof v === 'number') q[k] = String(v);
        else throw badRequest('invalidValue', `'${k}' has the wrong type`);
      }
      return query(req, reply, kind, q);
    });

    app.post(path, async (req: Req, reply) => {
      const { doc, members } = normaliseResource(type, req.body);
      const record = await mirror.create(req.params.connectorId, kind, doc, members);
      written(req);
      const body = await renderOne(req, kind, record);
      return reply.header('location', `${base(req)}${path}/${record.id}`).code(201).type(SCIM_CONTENT_TYPE).send(body);
    });

    app.get(`${path}/:id`, async (req: Req, reply) => {
      const record = await mirror.get(req.params.connectorId, kind, req.params.id!);
      if (!record) throw notFound(`${kind} ${req.params.id} not found`);
      return send(reply, 200, await renderOne(req, kind, record));
    });

    app.put(`${path}/:id`, async (req: Req, reply) => {
      const { doc, members } = normaliseResource(type, req.body);
      const record = await mirror.replace(req.params.connectorId, kind, req.params.id!, doc, members);
      written(req);
      return send(reply, 200, await renderOne(req, kind, record));
    });

    app.patch(`${path}/:id`, async (req: Req, reply) => {
      const record = await mirror.update(req.params.connectorId, kind, req.params.id!, (current) => {
        const result = applyPatch(type, current.doc, req.body);
        return { doc: result.changed ? result.doc : current.doc, memberOps: result.memberOps };
      });
      written(req);
      // Entra expects 204 for groups (never a member list) and accepts the resource for users.
      if (kind === 'Group') return reply.code(204).send();
      return send(reply, 200, await renderOne(req, kind, record));
    });

    app.delete(`${path}/:id`, async (req: Req, reply) => {
      await mirror.delete(req.params.connectorId, kind, req.params.id!);
      written(req);
      return reply.code(204).send();
    });
  }
}

/** The shape of a PATCH body without its values, for logs (values may hold personal data). */
function patchShape(body: unknown): unknown {
  if (!body || typeof body !== 'object') return typeof body;
  const ops = (body as { Operations?: unknown }).Operations;
  if (!Array.isArray(ops)) return Object.keys(body);
  return ops.map((o) =>
    o && typeof o === 'object'
      ? {
          op: (o as { op?: unknown }).op,
          path: (o as { path?: unknown }).path,
          value: Array.isArray((o as { value?: unknown }).value) ? 'list' : typeof (o as { value?: unknown }).value,
          keys: (o as { value?: unknown }).value && typeof (o as { value?: unknown }).value === 'object' && !Array.isArray((o as { value?: unknown }).value) ? Object.keys((o as { value: object }).value) : undefined,
        }
      : typeof o,
  );
}
