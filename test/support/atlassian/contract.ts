// The products' own OpenAPI documents, cut down to the operations a fake serves, patched where
// the documents are known to be wrong (shared/reference/atlassian.md §7.4), and used to check every
// request a client sends and every response a fake gives.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import addFormats from 'ajv-formats';
import { OpenAPIBackend } from 'openapi-backend';
import type { Operation } from 'openapi-backend';
import type { ErrorObject } from 'ajv';
import type { FakeKind } from './types.ts';

/** shared/atlassian-specs, beside the project root; ATLASSIAN_SPECS_DIR overrides it */
export const SPECS_DIR = process.env.ATLASSIAN_SPECS_DIR ?? path.resolve(import.meta.dirname, '../../../../shared/atlassian-specs');

export const SPEC_FILES: Record<FakeKind, string> = {
  jira: 'jira-dc-10.3-openapi.json',
  confluence: 'confluence-dc-10.0.3-openapi.json',
  bitbucket: 'bitbucket-dc-9.5-openapi.json',
  'atlassian-cloud': 'atlassian-cloud-user-provisioning-scim-openapi.json',
};

/* eslint-disable @typescript-eslint/no-explicit-any -- raw OpenAPI JSON is patched in place */
type Json = any;

// The raw text is read once per process and parsed afresh for every backend: init() dereferences
// the document in place, and a second init on the same object overflows the stack.
const rawText = new Map<string, string>();
function loadDocument(kind: FakeKind): Json {
  const file = SPEC_FILES[kind];
  let text = rawText.get(file);
  if (text === undefined) {
    text = readFileSync(path.join(SPECS_DIR, file), 'utf8');
    rawText.set(file, text);
  }
  return JSON.parse(text);
}

/** "GET /api/2/user" -> ['get', '/api/2/user'] */
function splitRouteKey(key: string): [string, string] {
  const i = key.indexOf(' ');
  return [key.slice(0, i).toLowerCase(), key.slice(i + 1)];
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

/**
 * Keep only the given operations and the components they reach. Start-up time is dominated by
 * validating and dereferencing the document, and Jira's and Bitbucket's are over a megabyte.
 */
export function pruneDocument(doc: Json, routeKeys: readonly string[]): void {
  const keep = new Map<string, Set<string>>();
  for (const key of routeKeys) {
    const [method, p] = splitRouteKey(key);
    if (!doc.paths[p]?.[method]) throw new Error(`${docName(doc)} has no operation ${key}`);
    let set = keep.get(p);
    if (!set) keep.set(p, (set = new Set()));
    set.add(method);
  }
  const paths: Json = {};
  for (const [p, methods] of keep) {
    const item = doc.paths[p];
    const kept: Json = {};
    for (const [k, v] of Object.entries(item)) {
      if (!HTTP_METHODS.has(k) || methods.has(k)) kept[k] = v;
    }
    paths[p] = kept;
  }
  doc.paths = paths;

  // components reachable from the kept paths
  const reached = new Set<string>();
  const queue: Json[] = [paths];
  const resolve = (ref: string): Json => {
    let node = doc;
    for (const part of ref.slice(2).split('/')) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    return node;
  };
  while (queue.length > 0) {
    const node = queue.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const x of node) queue.push(x);
      continue;
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/')) {
        if (!reached.has(v)) {
          reached.add(v);
          queue.push(resolve(v));
        }
      } else if (v !== null && typeof v === 'object') queue.push(v);
    }
  }
  const components: Json = {};
  for (const [section, entries] of Object.entries(doc.components ?? {})) {
    if (section === 'securitySchemes') {
      components[section] = entries;
      continue;
    }
    const keptEntries: Json = {};
    for (const [name, value] of Object.entries(entries as Json)) {
      if (reached.has(`#/components/${section}/${name}`)) keptEntries[name] = value;
    }
    if (Object.keys(keptEntries).length > 0) components[section] = keptEntries;
  }
  doc.components = components;
  delete doc.tags;
}

function docName(doc: Json): string {
  return `${doc.info?.title ?? 'document'} ${doc.info?.version ?? ''}`.trim();
}

const bearer = { type: 'http', scheme: 'bearer', description: 'Personal access token / directory API key' };

function jsonResponse(op: Json, status: string, schema: Json): void {
  op.responses[status] = { ...(op.responses[status] ?? {}), content: { 'application/json': { schema } } };
}

/**
 * The overlays of shared/reference/atlassian.md §7.4, plus the few more the fakes ran into. Each
 * one names the defect it works around. Applied to the pruned document, before init().
 */
export function applyOverlays(kind: FakeKind, doc: Json): void {
  doc.components ??= {};
  doc.components.securitySchemes = { ...(doc.components.securitySchemes ?? {}), bearer };
  const schemas = doc.components.schemas ?? {};
  const at = (p: string, m: string): Json => doc.paths[p]?.[m];

  if (kind === 'jira') {
    // §7.4.1: groupname is a query parameter, paging is numeric, and the answer is a page
    const members = at('/api/2/group/member', 'get');
    if (members) {
      for (const p of members.parameters) {
        if (p.name === 'groupname') p.in = 'query';
        if (p.name === 'startAt' || p.name === 'maxResults') p.schema = { type: 'integer' };
      }
      jsonResponse(members, '200', {
        type: 'object',
        required: ['values'],
        properties: {
          self: { type: 'string' },
          nextPage: { type: 'string' },
          maxResults: { type: 'integer' },
          startAt: { type: 'integer' },
          total: { type: 'integer' },
          isLast: { type: 'boolean' },
          values: { type: 'array', items: { $ref: '#/components/schemas/UserJsonBean' } },
        },
      });
    }
    // §7.4.2: list answers declared with the item schema
    const search = at('/api/2/user/search', 'get');
    if (search) jsonResponse(search, '200', { type: 'array', items: { $ref: '#/components/schemas/UserBean' } });
    const projects = at('/api/2/project', 'get');
    if (projects) jsonResponse(projects, '200', { type: 'array', items: { $ref: '#/components/schemas/ProjectBean' } });
    const components = at('/api/2/project/{projectIdOrKey}/components', 'get');
    if (components) jsonResponse(components, '200', { type: 'array', items: { $ref: '#/components/schemas/ComponentBean' } });
    // Jira 8.14+ takes personal access tokens as Bearer
    doc.security = [{ basic: [] }, { bearer: [] }];
  }

  if (kind === 'confluence') {
    // §7.4.4: every parameter is declared twice, sometimes once as string and once as integer;
    // keep the typed declaration
    for (const item of Object.values(doc.paths) as Json[]) {
      for (const [k, op] of Object.entries(item) as [string, Json][]) {
        if (!HTTP_METHODS.has(k) || !Array.isArray(op.parameters)) continue;
        const byKey = new Map<string, Json>();
        for (const p of op.parameters) {
          const key = `${p.in}:${p.name}`;
          const prev = byKey.get(key);
          if (!prev || (prev.schema?.type === 'string' && p.schema?.type && p.schema.type !== 'string') || (!prev.schema?.type && p.schema?.type)) byKey.set(key, p);
        }
        op.parameters = [...byKey.values()];
        for (const p of op.parameters) {
          // a path parameter typed as the (empty) Group schema
          if (p.in === 'path' && p.schema?.$ref) p.schema = { type: 'string' };
        }
      }
    }
    doc.security = [{ basic: [] }, { bearer: [] }];
  }

  if (kind === 'bitbucket') {
    // Real error bodies carry `"context": null` and `"exceptionName": null`
    const rem = schemas.RestErrorMessage;
    if (rem?.properties) {
      for (const f of ['context', 'exceptionName', 'message']) if (rem.properties[f]) rem.properties[f].nullable = true;
    }
    // openapi-backend only validates responses declared as exactly application/json
    for (const item of Object.values(doc.paths) as Json[]) {
      for (const [k, op] of Object.entries(item) as [string, Json][]) {
        if (!HTTP_METHODS.has(k)) continue;
        for (const res of Object.values(op.responses ?? {}) as Json[]) {
          const content = res.content ?? {};
          if (!content['application/json']) {
            const other = Object.entries(content).find(([type, c]) => type.startsWith('application/json') && (c as Json)?.schema);
            if (other) content['application/json'] = other[1];
          }
        }
      }
    }
    // a user's groups are answered with groups, not users
    const userGroups = at('/api/latest/admin/users/more-members', 'get');
    if (userGroups) {
      const schema = userGroups.responses['200'].content['application/json;charset=UTF-8'].schema;
      const page = JSON.parse(JSON.stringify(schema));
      page.properties.values.items = { $ref: '#/components/schemas/RestDetailedGroup' };
      jsonResponse(userGroups, '200', page);
    }
    // HTTP access tokens are sent as Bearer
    doc.security = [{ basic: [] }, { bearer: [] }];
  }

  if (kind === 'atlassian-cloud') {
    // §7.4.5: request fields marked readOnly although requests must send them
    for (const name of ['ScimUser', 'ScimGroup', 'ScimGroupMember', 'ScimUserName', 'ScimUserEmail', 'EnterpriseUserExtension']) {
      for (const prop of Object.values(schemas[name]?.properties ?? {}) as Json[]) delete prop.readOnly;
    }
    // §7.4.5: the wire name is `Operations`; and an operation's value is any JSON, not an object
    const patch = schemas.RequestPayloadToPatch;
    if (patch?.properties?.operations) {
      patch.properties.Operations = patch.properties.operations;
      delete patch.properties.operations;
      patch.required = ['Operations'];
    }
    const op = schemas.OperationForAScimPatch;
    if (op?.properties) {
      op.properties.value = {};
      op.required = ['op'];
    }
    // the configuration is a JSON object, not a string
    const config = at('/scim/directory/{directoryId}/ServiceProviderConfig', 'get');
    if (config) jsonResponse(config, '200', { type: 'object' });
    // the real scheme is a bearer directory API key, not OAuth2 client credentials
    doc.components.securitySchemes = { bearer };
    doc.security = [{ bearer: [] }];
  }
}

export interface ContractRequest {
  method: string;
  /** path in the document's terms, e.g. /api/2/user */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface Route<H> {
  method: string;
  /** the document's path template */
  template: string;
  regex: RegExp;
  names: string[];
  operation: Operation;
  handler: H;
}

const sharedBackends = new Map<string, Promise<OpenAPIBackend>>();

async function buildBackend(kind: FakeKind, routeKeys: string[], checkDocument: boolean): Promise<OpenAPIBackend> {
  // init() dereferences the document in place, so every backend gets its own parsed copy
  const doc = loadDocument(kind);
  pruneDocument(doc, routeKeys);
  applyOverlays(kind, doc);
  const api = new OpenAPIBackend({
    definition: doc,
    strict: true,
    quick: !checkDocument,
    validate: true,
    ignoreTrailingSlashes: true,
    customizeAjv: (ajv) => {
      addFormats.default(ajv);
      // Jira's document uses format "json" for free-form strings
      ajv.addFormat('json', true);
      return ajv;
    },
  });
  await api.init();
  return api;
}

/** A document ready to validate against, with a route table for the operations it kept. */
export class Contract<H> {
  private readonly staticRoutes = new Map<string, Route<H>>();
  private readonly templateRoutes: Route<H>[] = [];
  /** paths the document has, any method, for telling 405 from 404 */
  private readonly knownPaths: { regex: RegExp }[] = [];

  private constructor(
    readonly kind: FakeKind,
    readonly api: OpenAPIBackend,
    handlers: Record<string, H>,
  ) {
    for (const [key, handler] of Object.entries(handlers)) {
      const [method, template] = splitRouteKey(key);
      const operation = api.getOperations().find((o) => o.method === method && o.path === template);
      if (!operation) throw new Error(`no operation for ${key} after init`);
      const names: string[] = [];
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_m, n: string) => {
        names.push(n);
        return '([^/]+)';
      });
      const route: Route<H> = { method: method.toUpperCase(), template, regex: new RegExp(`^${pattern}/?$`), names, operation, handler };
      if (names.length === 0) this.staticRoutes.set(`${route.method} ${template}`, route);
      else this.templateRoutes.push(route);
      this.knownPaths.push({ regex: route.regex });
    }
    // more literal characters first, as openapi-backend orders template matches
    this.templateRoutes.sort((a, b) => b.template.replace(/\{[^}]+\}/g, '').length - a.template.replace(/\{[^}]+\}/g, '').length);
  }

  /**
   * The validator for `handlers`' operations. Fakes of one kind share one document per process:
   * validation keeps no state, and each operation's validators are compiled once, on first use,
   * instead of once per fake. `checkDocument` builds a private one that is also validated against
   * the OpenAPI 3 schema and has every validator compiled up front (about half a second).
   */
  static async load<H>(kind: FakeKind, handlers: Record<string, H>, opts: { checkDocument?: boolean } = {}): Promise<Contract<H>> {
    const keys = Object.keys(handlers).sort();
    let api: Promise<OpenAPIBackend>;
    if (opts.checkDocument) api = buildBackend(kind, keys, true);
    else {
      const cacheKey = `${kind}\n${keys.join('\n')}`;
      api = sharedBackends.get(cacheKey) ?? buildBackend(kind, keys, false);
      sharedBackends.set(cacheKey, api);
      api.catch(() => sharedBackends.delete(cacheKey));
    }
    return new Contract(kind, await api, handlers);
  }

  /** the route for a request path in the document's terms; `undefined` when the document has none */
  match(method: string, specPath: string): { route: Route<H>; params: Record<string, string> } | { methodNotAllowed: true } | undefined {
    const trimmed = specPath.length > 1 && specPath.endsWith('/') ? specPath.slice(0, -1) : specPath;
    const exact = this.staticRoutes.get(`${method} ${trimmed}`);
    if (exact) return { route: exact, params: {} };
    for (const route of this.templateRoutes) {
      if (route.method !== method) continue;
      const m = route.regex.exec(trimmed);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.names.forEach((n, i) => {
        params[n] = safeDecode(m[i + 1]!);
      });
      return { route, params };
    }
    if (this.knownPaths.some((p) => p.regex.test(trimmed))) return { methodNotAllowed: true };
    return undefined;
  }

  /** problems of a request, as sentences; empty when it fits the document */
  validateRequest(route: Route<H>, req: ContractRequest): string[] {
    const result = this.api.validateRequest(
      { method: req.method.toLowerCase(), path: req.path, query: req.query, headers: req.headers as Record<string, string | string[]>, body: req.body as never },
      route.operation,
    );
    if (result.valid) return [];
    return (result.errors ?? []).map((e) => describe(e, 'request'));
  }

  /** problems of a response; empty when it fits, or when the document has no schema for the status */
  validateResponse(route: Route<H>, status: number, body: unknown): string[] {
    const result = this.api.validateResponse(body === undefined ? null : body, route.operation, status);
    if (result.valid) return [];
    return (result.errors ?? []).map((e) => describe(e, 'response'));
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function describe(e: ErrorObject, what: 'request' | 'response'): string {
  const where = e.instancePath ? e.instancePath.replace(/^\//, '').replace(/\//g, '.') : what;
  const extra = e.keyword === 'additionalProperties' ? ` ('${String((e.params as { additionalProperty?: string }).additionalProperty)}')` : e.keyword === 'enum' ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})` : '';
  return `${where} ${e.message ?? e.keyword}${extra}`;
}
