// The OpenAPI 3.1 description of the target API (src/targets/routes.ts), to be merged into the admin API's
// document (src/admin/openapi.ts): `targetPaths` into `paths`, `targetSchemas` into `components.schemas`, and
// `targetTag` into `tags`. It refers to the document's shared `Error` and `Schedule` schemas and its
// `Unauthenticated`, `Forbidden` and `InternalError` responses.

import type { ParameterObject, PathItemObject, RequestBodyObject, ResponseObject, SchemaObject } from '../admin/openapi.ts';
import { CATEGORY_TEXT } from './compare.ts';
import { TARGET_KINDS } from './types.ts';

const ref = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });
const ok = (description: string, schema: SchemaObject): ResponseObject => ({ description, content: { 'application/json': { schema } } });
const error = (description: string): ResponseObject => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const body = (schema: SchemaObject, required: boolean, description?: string): RequestBodyObject => ({ ...(description ? { description } : {}), required, content: { 'application/json': { schema } } });
const guarded = { '401': response('Unauthenticated'), '403': response('Forbidden'), '500': response('InternalError') };

const str: SchemaObject = { type: 'string' };
const int: SchemaObject = { type: 'integer' };
const bool: SchemaObject = { type: 'boolean' };
const nullableStr: SchemaObject = { type: ['string', 'null'] };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };
const nullableDateTime: SchemaObject = { type: ['string', 'null'], format: 'date-time' };
const obj = (properties: Record<string, SchemaObject>, required: string[] = Object.keys(properties), extra: Partial<SchemaObject> = {}): SchemaObject => ({
  type: 'object',
  properties,
  ...(required.length ? { required } : {}),
  ...extra,
});

const invalidBody = "`invalid_body`: the body is not a JSON object; or Fastify's own code for malformed JSON";
const notFound = error('`not_found`: no such target');
const idParameter: ParameterObject = { name: 'id', in: 'path', required: true, description: 'the target id', schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } };
const confirmLeaving: ParameterObject = {
  name: 'confirmLeaving',
  in: 'query',
  required: false,
  description: 'the number of managed users a change of scope or cleanup policy affects, as a 409 `confirm_scope_change` named it: the change goes ahead only with that number',
  schema: { type: 'integer', minimum: 1 },
};

/** PUT and PATCH of a target's settings: the same confirmation, body and answers */
const saveSettings = {
  parameters: [confirmLeaving],
  requestBody: body(ref('TargetSettingsInput'), true),
  responses: {
    '200': ok('Saved; the secret only said to be set.', ref('TargetSettings')),
    '400': error(`\`invalid_settings\` (details: every problem with its path); ${invalidBody}`),
    '404': notFound,
    '409': error(
      '`confirm_scope_change`: the change would take users usersync manages out of the scope (or give those already out a new cleanup policy); nothing was saved. Details: `{leaving, repoliced, affected, leavingExamples, entering}`; save again with `confirmLeaving` set to `affected`.',
    ),
    ...guarded,
  },
};

const targetPath = { parameters: [idParameter] };
const limit = (fallback: number, max: number, description?: string): ParameterObject => ({
  name: 'limit',
  in: 'query',
  ...(description ? { description } : {}),
  schema: { type: 'integer', minimum: 1, maximum: max, default: fallback },
});

const CATEGORIES = Object.keys(CATEGORY_TEXT);

// ------------------------------------------------------------------------------------------- settings

/** Every setting but the secret; the secret differs between answers and requests. */
const settingsFields: Record<string, SchemaObject> = {
  baseUrl: {
    type: 'string',
    format: 'uri',
    description:
      "Jira, Bitbucket: the base URL (with its context path, if any); Confluence: the base URL with its context path (`https://wiki.example.com/confluence`); Atlassian Cloud: the SCIM directory URL, `https://api.atlassian.com/scim/directory/<directory id>`. Required; no query, fragment or credentials",
  },
  authType: { type: 'string', enum: ['token', 'basic'], default: 'token', description: '`token`: a Personal Access Token (Data Center) or the directory API key (Cloud, which allows only this); `basic`: username and password' },
  username: { type: ['string', 'null'], default: null, description: '`basic`: the account to sign in with (required then); ignored with a token' },
  caCertificate: { type: ['string', 'null'], default: null, description: 'a PEM CA certificate to trust for an application with an internal certificate' },
  timeoutSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 30, description: 'a request taking longer is a timeout (and retried)' },
  retries: { type: 'integer', minimum: 0, maximum: 10, default: 4, description: 'tries after the first for 429, 5xx and timeouts' },
  concurrency: { type: 'integer', minimum: 1, maximum: 64, default: 8, description: 'requests in flight at once' },
  maxAttempts: { type: 'integer', minimum: 1, maximum: 100, default: 5, description: 'rounds a failing change is tried before it is parked' },
  connectors: {
    description: "which connectors' users and groups it receives: `all`, or a list of at least one connector id (local users and groups belong to no connector, see `localUsers`)",
    default: 'all',
    oneOf: [{ const: 'all' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
  },
  groups: obj(
    {
      mode: { type: 'string', enum: ['all', 'only', 'except'], default: 'all', description: '`all` groups, `only` those matching a pattern, or all `except` those' },
      patterns: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'exact group names (any case) or `/regular expressions/`; at least one unless the mode is `all`' },
    },
    [],
    { description: 'which groups it receives', default: { mode: 'all', patterns: [] }, additionalProperties: false },
  ),
  users: { type: 'string', enum: ['all', 'group-members'], default: 'all', description: 'every user, or only members of a group it receives (e.g. Bitbucket for developers only)' },
  localUsers: { type: 'boolean', default: true, description: 'whether it receives the users an administrator created in usersync (no connector)' },
  cleanup: {
    type: 'string',
    enum: ['deactivate', 'delete', 'remove-groups', 'none'],
    default: 'deactivate',
    description: 'what happens to a user who leaves the scope or is deleted in the directory (Bitbucket, which cannot deactivate: default `remove-groups`)',
  },
  adoptExistingGroups: { type: 'boolean', default: true, description: 'a group that already exists in the application is used (adopted) instead of parked; adopted groups are never deleted' },
  bitbucketInactive: { type: 'string', enum: ['remove-groups', 'delete'], default: 'remove-groups', description: 'Bitbucket: an inactive user loses its groups (and the licence groups), or is deleted' },
  licenceGroups: { type: 'array', items: str, default: [], description: 'Bitbucket: the groups that grant the licence, taken from inactive users although usersync did not add them (Bitbucket default: `["stash-users"]`)' },
  defaultProjectLead: { type: ['string', 'null'], default: null, description: 'Jira: the username that takes over the projects of a lead who is deactivated or deleted' },
  defaultComponentLead: { type: ['string', 'null'], default: null, description: 'Jira: the username that takes over the components of a lead who is deactivated or deleted' },
  verifiedDomains: { type: 'array', items: str, default: [], description: "Atlassian Cloud: the organisation's verified e-mail domains (at least one); users with other addresses are refused before sending" },
  comparisonSchedule: { ...ref('Schedule'), default: { kind: 'off' }, description: 'when a full comparison runs by itself (once the target is delivering)' },
  comparisonFix: { type: 'boolean', default: true, description: 'whether a scheduled comparison repairs what usersync owns (a comparison on demand chooses its mode)' },
};

const secretInput: SchemaObject = {
  description: 'the token or password, sealed at rest: a string sets it; left out, null, empty or the `{"set": true}` a GET shows keeps the stored one (required when there is none)',
  anyOf: [{ type: 'string', maxLength: 4096, writeOnly: true }, { type: 'null' }, { type: 'object', properties: { set: { const: true } }, required: ['set'] }],
};

// -------------------------------------------------------------------------------------------- schemas

export const targetSchemas: Record<string, SchemaObject> = {
  TargetKind: { type: 'string', enum: [...TARGET_KINDS], description: 'the application: Jira, Confluence or Bitbucket Data Center, or an Atlassian Cloud organisation (its SCIM directory)' },
  TargetPhase: {
    type: 'string',
    enum: ['new', 'awaiting-adoption', 'active'],
    description: '`new`: its first comparison is queued or running; `awaiting-adoption`: the first comparison is done, nothing is sent until its matches are adopted; `active`: delivering',
  },
  TargetSettings: {
    type: 'object',
    description: "A target's settings: how to reach the application, what it receives, what happens to a user who leaves, the application's own options. The secret is only said to be set.",
    properties: { ...settingsFields, secret: { type: 'object', properties: { set: { type: 'boolean' } }, required: ['set'], additionalProperties: false, readOnly: true, description: 'whether a token or password is stored' } },
    required: [...Object.keys(settingsFields), 'secret'],
  },
  TargetSettingsInput: {
    type: 'object',
    description:
      'Settings as sent. A new target and PUT: defaults (by kind) fill what is left out; PATCH: merged into the stored settings. Then validated whole; unknown settings are refused. The stored secret is kept unless a new one is given.',
    properties: { ...settingsFields, secret: secretInput },
    additionalProperties: false,
  },
  TargetStatus: obj(
    {
      unavailableUntil: { ...dateTime, description: "no request is sent before this time (an outage's back-off, or a 429's Retry-After)" },
      unavailableSince: { ...dateTime, description: 'when the current outage began' },
      failures: { type: 'integer', description: 'failed rounds in a row' },
      lastError: { type: 'string', description: 'why the application was last unavailable, as a sentence' },
      lastDeliveryAt: { ...dateTime, description: 'when changes were last delivered' },
      lastScheduledComparisonAt: { ...dateTime, description: 'when the last scheduled comparison was queued' },
    },
    [],
    { description: "The application's availability as the delivery last saw it; only what applies is present." },
  ),
  ComparisonStatus: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
  ComparisonSummary: {
    type: 'object',
    description: `counts by category (only those found are present: ${CATEGORIES.join(', ')}), and \`user-ok\`, \`group-ok\` (owned and as wanted), \`queued\` (what a repair queued); while it runs, what it has read so far (\`readAppUsers\`, \`readAppGroups\`, \`readGroupMembers\`, \`readDirectoryUsers\`)`,
    additionalProperties: int,
  },
  Comparison: obj(
    {
      id: str,
      mode: { type: 'string', enum: ['report', 'fix'], description: 'as asked, and once done as it ran: a target not yet adopted only reports' },
      status: ref('ComparisonStatus'),
      requestedBy: { type: 'string', description: 'the account or token, or `schedule`' },
      requestedAt: dateTime,
      startedAt: nullableDateTime,
      endedAt: nullableDateTime,
      summary: ref('ComparisonSummary'),
      error: { type: ['string', 'null'], description: 'why it failed' },
    },
    undefined,
    { description: 'A full comparison of the application with the directory and the ledger.' },
  ),
  ComparisonItem: obj({
    n: { type: 'integer', description: "the item's number in the comparison: give the last one seen as `after` for the next page" },
    category: { type: 'string', enum: CATEGORIES },
    entity: { type: 'string', enum: ['user', 'group', 'membership'] },
    localId: { type: ['string', 'null'], description: 'the directory id (a membership: `<user id>:<group id>`); null for what is only in the application' },
    remoteName: { type: 'string', description: 'the name in the application (a membership: `<group> ∋ <user>`)' },
    detail: { type: 'object', additionalProperties: true, description: 'by category, e.g. `{problem}` for `user-invalid`, `{fields}` for `user-drift`, `{username, email, displayName, active, drift}` for a match' },
  }),
  ComparisonDetail: {
    allOf: [
      ref('Comparison'),
      obj({
        categories: {
          type: 'object',
          description: 'what each category means, as a sentence',
          properties: Object.fromEntries(Object.entries(CATEGORY_TEXT).map(([k, v]) => [k, { type: 'string', examples: [v] }])),
          required: CATEGORIES,
        },
        items: { type: 'array', items: ref('ComparisonItem'), description: 'a page of the items, in order of `n`' },
      }),
    ],
  },
  Target: obj(
    {
      id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
      name: str,
      kind: ref('TargetKind'),
      enabled: { type: 'boolean', description: 'a disabled target is neither compared nor delivered to' },
      paused: { type: 'boolean', description: 'a paused target keeps collecting changes but sends nothing (comparisons on demand still run)' },
      phase: ref('TargetPhase'),
      backlog: obj(
        {
          feedRows: { type: 'integer', description: 'directory changes not yet looked at' },
          pending: { type: 'integer', description: 'users and groups waiting to be delivered (or retried)' },
          parked: { type: 'integer', description: 'users and groups given up on until retried' },
        },
        undefined,
        { description: 'what is still to be delivered' },
      ),
      owned: obj({ user: int, group: int, membership: int }, undefined, { description: 'what usersync created or adopted in the application (its ledger)' }),
      status: ref('TargetStatus'),
      lastComparison: {
        description: 'the latest comparison; null before any',
        anyOf: [obj({ id: str, mode: { type: 'string', enum: ['report', 'fix'] }, status: ref('ComparisonStatus'), requestedAt: dateTime, endedAt: nullableDateTime, summary: ref('ComparisonSummary'), error: nullableStr }), { type: 'null' }],
      },
      createdAt: dateTime,
      updatedAt: dateTime,
    },
    undefined,
    { description: 'A target: an application that receives the directory.' },
  ),
  TargetDetail: { allOf: [ref('Target'), obj({ settings: ref('TargetSettings') })] },
  NewTarget: obj(
    {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      kind: ref('TargetKind'),
      id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'default: a random UUID' },
      settings: { ...ref('TargetSettingsInput'), description: 'validated with the defaults of the kind; `baseUrl` and `secret` are needed (Cloud: `verifiedDomains` too)' },
    },
    ['name', 'kind'],
    { additionalProperties: false },
  ),
  ParkedWork: obj(
    {
      key: { type: 'string', description: '`u:<user id>` or `g:<group id>`: what `POST …/parked/retry` takes' },
      entity: { type: 'string', enum: ['user', 'group'] },
      id: { type: 'string', description: 'the directory id' },
      name: { type: ['string', 'null'], description: 'the username or group name; null when it is no longer in the directory' },
      attempts: int,
      parkedAt: dateTime,
      code: { type: ['string', 'null'], description: 'why, for a program: `invalid`, `licence`, `exists`, `forbidden`, `conflict`, `unsupported`, `failed`, …' },
      error: { type: ['string', 'null'], description: 'why, as a sentence' },
      since: { ...dateTime, description: 'when the work was first queued' },
    },
    undefined,
    { description: 'A user or group whose delivery kept failing: it waits until retried (or changed in the directory).' },
  ),
  TargetConnectionTest: obj({
    ok: { type: 'boolean', description: 'every check passed' },
    checks: { type: 'array', items: obj({ name: str, ok: bool, message: { type: 'string', description: 'what was found, as a sentence' } }) },
  }),
};

export const targetTag = { name: 'targets', description: 'applications that receive the directory: settings, comparisons, adoption, parked work' };

// -------------------------------------------------------------------------------------------- paths

export const targetPaths: Record<string, PathItemObject> = {
  '/api/targets': {
    get: {
      operationId: 'listTargets',
      summary: 'The targets, oldest first, with their backlog, availability and latest comparison',
      tags: ['targets'],
      responses: { '200': ok('The targets (without their settings).', obj({ targets: { type: 'array', items: ref('Target') } })), ...guarded },
    },
    post: {
      operationId: 'createTarget',
      summary: 'A new target',
      description:
        'Created in phase `new` with a first comparison (mode `report`) queued. Nothing is sent to the application until that comparison is done and its matches adopted (`POST /api/targets/{id}/adopt`). Delivery starts from the current directory: changes made before are covered by the adoption. Written to the audit log (never the secret).',
      tags: ['targets'],
      requestBody: body(ref('NewTarget'), true),
      responses: {
        '201': ok('Created; the first comparison is queued.', ref('TargetDetail')),
        '400': error(`\`invalid_target\` (kind, name, id or an unknown field); \`invalid_settings\` (details: every problem with its path, e.g. \`groups.patterns.1\`); ${invalidBody}`),
        '409': error('`exists`: a target with that id exists already'),
        ...guarded,
      },
    },
  },
  '/api/targets/{id}': {
    ...targetPath,
    get: {
      operationId: 'getTarget',
      summary: 'A target with its settings',
      tags: ['targets'],
      responses: { '200': ok('The target; the secret only said to be set.', ref('TargetDetail')), '404': notFound, ...guarded },
    },
    patch: {
      operationId: 'updateTarget',
      summary: 'Rename, enable or disable, pause or resume a target',
      description: 'A paused target keeps collecting the changes and sends them when resumed. Settings have an endpoint of their own.',
      tags: ['targets'],
      requestBody: body(obj({ name: { type: 'string', minLength: 1, maxLength: 200 }, enabled: bool, paused: bool }, [], { additionalProperties: false }), true),
      responses: { '200': ok('Changed.', ref('Target')), '400': error(`\`invalid_target\` (a bad value or an unknown field); ${invalidBody}`), '404': notFound, ...guarded },
    },
    delete: {
      operationId: 'deleteTarget',
      summary: 'Delete a target with its ledger, queue and comparisons',
      description: 'Nothing is changed in the application: the users and groups usersync made stay there.',
      tags: ['targets'],
      responses: { '204': { description: 'Deleted.' }, '404': notFound, ...guarded },
    },
  },
  '/api/targets/{id}/settings': {
    ...targetPath,
    get: {
      operationId: 'getTargetSettings',
      summary: "A target's settings",
      tags: ['targets'],
      responses: { '200': ok('The settings; the secret only said to be set.', ref('TargetSettings')), '404': notFound, ...guarded },
    },
    put: {
      operationId: 'replaceTargetSettings',
      summary: "Replace a target's settings",
      description:
        "The whole settings: the kind's defaults fill what is left out; the stored secret is kept unless a new one is given. A change of scope or policy (connectors, groups, users, local users, cleanup, Bitbucket and Cloud options) of a delivering target queues every user and group to be looked at again. Written to the audit log (the fields changed).",
      tags: ['targets'],
      ...saveSettings,
    },
    patch: {
      operationId: 'updateTargetSettings',
      summary: "Change some of a target's settings",
      description: 'Merged into the stored settings, then validated whole; otherwise as PUT.',
      tags: ['targets'],
      ...saveSettings,
    },
  },
  '/api/targets/{id}/test': {
    ...targetPath,
    post: {
      operationId: 'testTarget',
      summary: 'Test the connection to the application with the stored settings',
      description: 'Reaches the application, checks the credentials and the administrator permission. Changes nothing, so auditors may call it too. A failed test is still a 200.',
      tags: ['targets'],
      responses: { '200': ok('The checks, passed or not.', ref('TargetConnectionTest')), '404': notFound, ...guarded },
    },
  },
  '/api/targets/{id}/comparisons': {
    ...targetPath,
    get: {
      operationId: 'listComparisons',
      summary: "A target's comparisons, newest first",
      tags: ['targets'],
      parameters: [limit(20, 200, 'larger values are taken as 200')],
      responses: {
        '200': ok('The comparisons (without their items).', obj({ comparisons: { type: 'array', items: ref('Comparison') } })),
        '400': error('`invalid_limit`'),
        '404': notFound,
        ...guarded,
      },
    },
    post: {
      operationId: 'runComparison',
      summary: 'Queue a full comparison of the application with the directory',
      description:
        '`report` changes nothing; `fix` (only once adopted) first corrects the ledger to what the application really has, then queues what differs so that the delivery restores what usersync owns. Nothing usersync does not own is changed. Poll `GET …/comparisons/{comparisonId}` for the result.',
      tags: ['targets'],
      requestBody: body(obj({ mode: { type: 'string', enum: ['report', 'fix'], default: 'report' } }, [], { additionalProperties: false }), false),
      responses: {
        '202': ok('Queued.', obj({ id: { type: 'string', description: 'the comparison id' }, status: { const: 'queued' }, mode: { type: 'string', enum: ['report', 'fix'] } })),
        '400': error(`\`invalid_comparison\`: an unknown mode; ${invalidBody}`),
        '404': notFound,
        '409': error('`not_adopted`: `fix` before the first comparison was adopted; `busy`: a comparison of this target is queued or running (details: `{comparisonId}`); `disabled`: the target is disabled'),
        ...guarded,
      },
    },
  },
  '/api/targets/{id}/comparisons/{comparisonId}': {
    parameters: [idParameter, { name: 'comparisonId', in: 'path', required: true, description: 'the comparison id', schema: str }],
    get: {
      operationId: 'getComparison',
      summary: 'A comparison with its summary, the meaning of each category, and a page of its items',
      tags: ['targets'],
      parameters: [
        { name: 'category', in: 'query', description: 'only the items of this category', schema: { type: 'string', enum: CATEGORIES } },
        limit(200, 5000, 'items per page; larger values are taken as 5000'),
        { name: 'after', in: 'query', description: 'only items after the one with this `n` (the next page: the last `n` of this one)', schema: { type: 'integer', minimum: -1 } },
      ],
      responses: {
        '200': ok('The comparison.', ref('ComparisonDetail')),
        '400': error('`invalid_category`, `invalid_after`, `invalid_limit`'),
        '404': error('`not_found`: no such target, or no such comparison of it'),
        ...guarded,
      },
    },
  },
  '/api/targets/{id}/adopt': {
    ...targetPath,
    post: {
      operationId: 'adoptTarget',
      summary: "Adopt what the latest comparison matched, and start delivering",
      description:
        'The users (by username or e-mail), groups and memberships the comparison found already in the application become owned by usersync: from then on it updates them, and may deactivate or delete the users by the cleanup policy. Then every directory user and group is queued and the target is `active`. Written to the audit log.',
      tags: ['targets'],
      requestBody: body(
        obj(
          {
            comparisonId: { type: 'string', description: 'default: the latest finished comparison; another one is refused' },
            exclude: { type: 'array', items: str, description: 'usernames and group names (any case) to leave unowned' },
          },
          [],
          { additionalProperties: false },
        ),
        false,
      ),
      responses: {
        '200': ok('Adopted; delivery starts.', obj({ adopted: obj({ users: int, groups: int, memberships: int }), phase: { const: 'active' } })),
        '400': error(`\`invalid_adoption\`: \`exclude\` is not a list of names; ${invalidBody}`),
        '404': notFound,
        '409': error('`busy`: a comparison is queued or running (details: `{comparisonId}`); `no_comparison`: no finished comparison to adopt from; `comparison_not_done`: the comparison named is queued, running or failed; `comparison_outdated`: a newer comparison is done'),
        ...guarded,
      },
    },
  },
  '/api/targets/{id}/events': {
    ...targetPath,
    get: {
      operationId: 'listTargetEvents',
      summary: "What the target did in its application, newest first",
      description:
        'Each user created, updated, renamed, activated, deactivated or deleted, its groups added or removed, groups created, adopted, renamed or deleted, project leads handed over, and changes parked, with the name the application knows and a detail. Kept as long as the change feed (RETENTION_CHANGE_FEED_DAYS).',
      tags: ['targets'],
      parameters: [
        { name: 'limit', in: 'query', required: false, description: 'at most this many (default 100, at most 1,000)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        { name: 'before', in: 'query', required: false, description: "an entry's seq: the entries before it (paging back)", schema: { type: 'integer', minimum: 1 } },
        { name: 'search', in: 'query', required: false, description: 'a part of the user or group name', schema: { type: 'string', maxLength: 200 } },
      ],
      responses: {
        '200': ok(
          'The entries.',
          {
            type: 'object',
            properties: {
              events: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    seq: { type: 'integer' },
                    at: { type: 'string', format: 'date-time' },
                    action: {
                      type: 'string',
                      enum: ['created', 'updated', 'renamed', 'activated', 'deactivated', 'deleted', 'groups-added', 'groups-removed', 'group-created', 'group-adopted', 'group-renamed', 'group-deleted', 'leads-handed-over', 'parked'],
                    },
                    subject: { type: 'string', description: 'the user or group, by the name the application knows' },
                    detail: { type: 'string' },
                  },
                  required: ['seq', 'at', 'action', 'subject', 'detail'],
                },
              },
            },
            required: ['events'],
          },
        ),
        '400': error('`invalid_limit`, `invalid_before`, `invalid_search`'),
        '404': notFound,
        ...guarded,
      },
    },
  },
  '/api/targets/{id}/parked': {
    ...targetPath,
    get: {
      operationId: 'listParked',
      summary: 'The users and groups whose delivery is parked, by key',
      tags: ['targets'],
      parameters: [limit(100, 1000, 'larger values are taken as 1000'), { name: 'after', in: 'query', description: 'only work after this key (the next page: the last key of this one)', schema: str }],
      responses: {
        '200': ok('The parked work.', obj({ parked: { type: 'array', items: ref('ParkedWork') } })),
        '400': error('`invalid_limit`'),
        '404': notFound,
        ...guarded,
      },
    },
  },
  '/api/targets/{id}/parked/retry': {
    ...targetPath,
    post: {
      operationId: 'retryParked',
      summary: 'Try parked work again now',
      description: "All of it, or the keys given. An outage's back-off is lifted too. Written to the audit log.",
      tags: ['targets'],
      requestBody: body(obj({ keys: { type: 'array', items: { type: 'string', pattern: '^[ug]:' }, maxItems: 10000, description: 'parked work keys; left out: all' } }, [], { additionalProperties: false }), false),
      responses: {
        '200': ok('Queued again.', obj({ retried: { type: 'integer', description: 'how many were parked and are due now' } })),
        '400': error(`\`invalid_retry\`: \`keys\` is not a list of work keys (at most 10000); ${invalidBody}`),
        '404': notFound,
        ...guarded,
      },
    },
  },
};
