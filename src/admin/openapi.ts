// The OpenAPI 3.1 description of the admin REST API (src/admin/routes.ts), served at GET /api/openapi.json
// without a token: it describes the API and reveals no data. Kept by hand beside the routes; the test in
// test/admin/openapi.test.ts checks that its operations are exactly the routes registered under /api.

import { createRequire } from 'node:module';
import { alertPaths, alertSchemas, alertTag } from '../alerts/openapi-paths.ts';
import { targetPaths, targetSchemas, targetTag } from '../targets/openapi-paths.ts';

// ----------------------------------------------------------------------------------------- the types

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
type SchemaType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses it), as far as this document needs. */
export interface SchemaObject {
  $ref?: string;
  type?: SchemaType | SchemaType[];
  title?: string;
  description?: string;
  format?: string;
  pattern?: string;
  enum?: JsonValue[];
  const?: JsonValue;
  default?: JsonValue;
  examples?: JsonValue[];
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean | SchemaObject;
  items?: SchemaObject;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  oneOf?: SchemaObject[];
  anyOf?: SchemaObject[];
  allOf?: SchemaObject[];
  readOnly?: boolean;
  writeOnly?: boolean;
}

export interface ReferenceObject {
  $ref: string;
  summary?: string;
  description?: string;
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  description?: string;
  required?: boolean;
  schema: SchemaObject;
}

export interface MediaTypeObject {
  schema: SchemaObject;
  example?: JsonValue;
  /** text/event-stream: the schema of each event's data (OpenAPI 3.1 has no keyword for it) */
  'x-event-data'?: SchemaObject;
}

export interface RequestBodyObject {
  description?: string;
  required?: boolean;
  content: Record<string, MediaTypeObject>;
}

export interface ResponseObject {
  description: string;
  content?: Record<string, MediaTypeObject>;
}

export type SecurityRequirement = Record<string, string[]>;

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  parameters?: (ParameterObject | ReferenceObject)[];
  requestBody?: RequestBodyObject;
  responses: Record<string, ResponseObject | ReferenceObject>;
  security?: SecurityRequirement[];
}

export interface PathItemObject {
  parameters?: (ParameterObject | ReferenceObject)[];
  get?: OperationObject;
  put?: OperationObject;
  post?: OperationObject;
  patch?: OperationObject;
  delete?: OperationObject;
}

export type SecuritySchemeObject =
  | { type: 'http'; scheme: 'bearer'; bearerFormat?: string; description?: string }
  | { type: 'apiKey'; in: 'cookie' | 'header'; name: string; description?: string };

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string; license?: { name: string; identifier?: string } };
  jsonSchemaDialect?: string;
  tags: { name: string; description: string }[];
  security: SecurityRequirement[];
  paths: Record<string, PathItemObject>;
  components: {
    schemas: Record<string, SchemaObject>;
    parameters: Record<string, ParameterObject>;
    responses: Record<string, ResponseObject>;
    securitySchemes: Record<string, SecuritySchemeObject>;
  };
}

// --------------------------------------------------------------------------------------------- helpers

const schema = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });
const parameter = (name: string): ReferenceObject => ({ $ref: `#/components/parameters/${name}` });
const response = (name: string): ReferenceObject => ({ $ref: `#/components/responses/${name}` });
const json = (s: SchemaObject): Record<string, MediaTypeObject> => ({ 'application/json': { schema: s } });
const ok = (description: string, s: SchemaObject): ResponseObject => ({ description, content: json(s) });
/** An error answer: `{"error": {"code", "message", "details"?}}`; the description names the codes. */
const error = (description: string): ResponseObject => ({ description, content: json(schema('Error')) });
const body = (s: SchemaObject, description?: string, required = true): RequestBodyObject => ({ ...(description ? { description } : {}), required, content: json(s) });

const str: SchemaObject = { type: 'string' };
const nullableStr: SchemaObject = { type: ['string', 'null'] };
const int: SchemaObject = { type: 'integer' };
const bool: SchemaObject = { type: 'boolean' };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };
const strings: SchemaObject = { type: 'array', items: str };
const anyObject: SchemaObject = { type: 'object', additionalProperties: true };
const obj = (properties: Record<string, SchemaObject>, required: string[] = Object.keys(properties), extra: Partial<SchemaObject> = {}): SchemaObject => ({
  type: 'object',
  properties,
  ...(required.length ? { required } : {}),
  ...extra,
});

/** Every operation with an admin token: a missing or wrong token, a token of a narrower scope, an error of the service. */
const guarded = { '401': response('Unauthenticated'), '403': response('Forbidden'), '500': response('InternalError') };
const invalidBody = "`invalid_body`: the body is not a JSON object; or Fastify's own code (e.g. `FST_ERR_CTP_INVALID_JSON_BODY`) for malformed JSON";
const notPull = '`not_a_pull_connector`: a SCIM connector (its identity provider pushes; it has nothing to read)';

// --------------------------------------------------------------------------------------------- schemas

const RUN_STATUS = ['running', 'succeeded', 'failed', 'aborted', 'held'];
const COUNTERS = [
  'read',
  'fetched',
  'mirrorCreated',
  'mirrorUpdated',
  'mirrorDeleted',
  'mirrorMembershipsAdded',
  'mirrorMembershipsRemoved',
  'created',
  'updated',
  'adopted',
  'activated',
  'deactivated',
  'deleted',
  'skipped',
  'conflicts',
  'held',
  'seatsHeld',
  'groupsCreated',
  'groupsRenamed',
  'groupsOrphaned',
  'groupsDeleted',
  'membershipsAdded',
  'membershipsRemoved',
];

const attributeMapping: SchemaObject = {
  type: 'object',
  description: 'A value taken from the source record (a SCIM attribute path) and transformed in order.',
  properties: {
    source: { type: 'string', description: 'SCIM attribute path in the mirror record, e.g. `userName`, `emails[type eq "work"].value`; optional when the first transform is a template' },
    transforms: {
      type: 'array',
      items: {
        type: 'object',
        description: '`{fn: "regexReplace", pattern, replacement, flags?}`, `{fn: "lower"}`, `{fn: "upper"}`, `{fn: "trim"}`, `{fn: "template", template}`, `{fn: "firstNonEmpty", sources}`',
        properties: { fn: { type: 'string', enum: ['regexReplace', 'lower', 'upper', 'trim', 'template', 'firstNonEmpty'] } },
        required: ['fn'],
        additionalProperties: true,
      },
    },
  },
};

const schemas: Record<string, SchemaObject> = {
  Error: obj({
    error: obj(
      {
        code: { type: 'string', description: 'machine-readable, e.g. `not_found`, `invalid_settings`, `busy`, `ldap_bind`' },
        message: { type: 'string', description: 'a sentence for a person' },
        details: {
          description: 'more about the error: for `invalid_settings` every problem with its path; for `busy` `{runId}`',
          anyOf: [{ type: 'array', items: schema('SettingsIssue') }, { type: 'object', additionalProperties: true }],
        },
      },
      ['code', 'message'],
    ),
  }),
  SettingsIssue: obj(
    {
      path: { type: 'string', description: "where in the settings, e.g. `user.username.transforms[1].pattern`; '' for the whole object" },
      message: str,
      position: { type: 'integer', description: 'index into the expression at `path` (condition, source path, template, flags, name)' },
    },
    ['path', 'message'],
  ),

  // ------------------------------------------------------------------ connectors
  ConnectorKind: { type: 'string', enum: ['scim', 'graph', 'ldap'], description: 'scim: the identity provider pushes (SCIM 2.0); graph, ldap: usersync reads the provider (a pull connector)' },
  Connector: obj({
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    name: str,
    kind: schema('ConnectorKind'),
    enabled: bool,
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
  ConnectorDetail: {
    description: 'A connector with its settings; a pull connector also with its source settings (secrets redacted) and the run reading or reconciling now.',
    allOf: [
      schema('Connector'),
      obj(
        {
          settings: schema('ConnectorSettings'),
          source: schema('SourceSettings'),
          currentRun: { type: ['string', 'null'], description: 'pull connectors: the id of the run reading or reconciling now' },
          scimBaseUrl: { type: 'string', description: 'SCIM connectors: the Base URL (PUBLIC_BASE_URL, else the address of the request)' },
          settingsVersion: { type: 'string', description: "the settings' version, to send as `If-Match` when saving them" },
        },
        ['settings'],
      ),
    ],
  },
  NewConnector: obj(
    {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      kind: schema('ConnectorKind'),
      id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'default: a random UUID' },
      source: { ...schema('SourceSettings'), description: 'graph, ldap: the source settings, validated; secrets are sealed' },
      settings: { ...schema('ConnectorSettingsInput'), description: 'the rules; defaults fill gaps' },
    },
    ['name', 'kind'],
  ),
  CreatedConnector: {
    allOf: [
      schema('ConnectorDetail'),
      obj({ token: { type: 'string', description: "SCIM connectors: the connector's first bearer token, shown this once" }, scimBaseUrl: { type: 'string', description: 'SCIM connectors: the Base URL (Entra ID\'s "Tenant URL")' } }, []),
    ],
  },

  // ------------------------------------------------------------------ settings (the rules)
  ConnectorSettings: {
    type: 'object',
    description: "A connector's user sync and group sync settings (its rules) and its safety limits. Every part is validated; unknown keys are rejected.",
    properties: { user: schema('UserSyncSettings'), group: schema('GroupSyncSettings'), safety: schema('SafetySettings') },
    required: ['user', 'group', 'safety'],
  },
  ConnectorSettingsInput: {
    type: 'object',
    description: 'Settings as sent: any part of ConnectorSettings. PUT and a new connector: defaults fill what is left out; PATCH and preview: merged into the stored settings.',
    properties: { user: schema('UserSyncSettings'), group: schema('GroupSyncSettings'), safety: schema('SafetySettings') },
  },
  UserSyncSettings: {
    type: 'object',
    additionalProperties: true,
    properties: {
      operations: obj({ create: bool, update: bool, activate: bool, deactivate: bool }, []),
      username: attributeMapping,
      email: attributeMapping,
      displayName: attributeMapping,
      condition: { type: 'string', description: "SCIM filter: users that do not match are left out (and get the cleanup behaviour); '' for all" },
      customAttributes: { type: 'array', items: obj({ name: str, mapping: attributeMapping }) },
      copyBehaviour: { type: 'boolean', description: 'adopt an existing local user with the same username' },
      cleanup: { type: 'string', enum: ['deactivate', 'delete', 'leave'], description: 'for users deleted in the provider, out of scope, or left out by the condition' },
    },
  },
  GroupSyncSettings: {
    type: 'object',
    additionalProperties: true,
    properties: {
      defaultGroups: { ...strings, description: 'given to users when they are created' },
      alwaysGroups: { ...strings, description: 'every synced user is in these, re-applied on every run' },
      mode: { type: 'string', enum: ['onTheFly', 'manual'] },
      rename: { oneOf: [obj({ pattern: str, replacement: str }), { type: 'null' }], description: 'on-the-fly only: a regex rename of provider group names' },
      manualMappings: { type: 'array', items: obj({ source: str, targets: strings }), description: 'manual only' },
      createEmptyGroups: bool,
      onlyAssign: { ...strings, description: 'regexes on the directory group name: only these are assigned' },
      neverAssign: { ...strings, description: 'regexes: never assigned' },
      neverRemove: { ...strings, description: 'regexes: memberships in these groups are never removed' },
      membershipAuthority: { type: 'string', enum: ['keepUnmanaged', 'sourceOfTruth'] },
      deleteEmptyManagedGroups: bool,
      licences: { type: 'array', items: obj({ group: str, seats: int }) },
    },
  },
  SafetySettings: {
    type: 'object',
    additionalProperties: true,
    properties: {
      deletionLimit: obj(
        { count: { type: ['integer', 'null'] }, percent: { type: ['number', 'null'] } },
        [],
        { description: "hold a run's deactivations and deletions above either limit (null: no limit) until approved" },
      ),
    },
  },

  // ------------------------------------------------------------------ source settings (pull connectors)
  SourceSettings: {
    description: "A pull connector's source settings: Graph or LDAP, by the connector's kind. Answers show secrets only as `{set: true}` (or null); a secret left out of a request, or sent back as `{set: true}`, keeps its stored value.",
    anyOf: [schema('GraphSourceSettings'), schema('LdapSourceSettings')],
  },
  Secret: {
    description: 'In a request: the secret in clear (it is sealed at rest). In an answer: `{set: true}` when one is stored, null when not.',
    oneOf: [{ type: 'string', writeOnly: true }, obj({ set: { const: true } }), { type: 'null' }],
  },
  Schedule: {
    description: 'When the connector runs by itself.',
    oneOf: [
      obj({ kind: { const: 'off' } }),
      obj({ kind: { const: 'interval' }, minutes: { type: 'integer', minimum: 1, maximum: 10080 } }),
      obj({ kind: { const: 'cron' }, expression: { type: 'string', examples: ['*/10 * * * *'] }, timezone: { type: 'string', examples: ['Europe/Berlin'] } }, ['kind', 'expression']),
    ],
  },
  GraphSourceSettings: {
    type: 'object',
    title: 'Microsoft Graph (Entra ID)',
    description: 'The main fields; see src/sources/graph/config.ts. `tenantId` and `clientId` are needed; every other field has a default. Unknown settings are rejected (400 `invalid_settings`).',
    additionalProperties: true,
    properties: {
      tenantId: { type: 'string', description: 'the directory (tenant) id, or a domain such as contoso.onmicrosoft.com' },
      clientId: { type: 'string', description: 'the application (client) id' },
      credential: { type: 'string', enum: ['secret', 'certificate'], default: 'secret' },
      clientSecret: schema('Secret'),
      certificate: { type: 'string', description: 'PEM certificate registered on the app' },
      privateKey: schema('Secret'),
      credentialExpiresAt: { type: ['string', 'null'], description: 'when the secret expires (a certificate: read from it)' },
      cloud: { type: 'string', enum: ['global', 'usgov', 'usgov-dod', 'china', 'custom'], default: 'global' },
      authorityHost: { type: ['string', 'null'], description: 'custom cloud: https:// URL' },
      graphUrl: { type: ['string', 'null'], description: 'custom cloud: https:// URL' },
      tokenScope: { type: ['string', 'null'], description: 'custom cloud: the resource followed by /.default' },
      caCertificate: { type: ['string', 'null'], description: 'extra CA certificates (PEM) to trust' },
      scope: { type: 'string', enum: ['directory', 'application', 'groups'], default: 'directory' },
      applicationId: { type: ['string', 'null'], description: 'application scope: the enterprise app; default: this app' },
      groups: { ...strings, description: 'groups scope: group object ids or display names (at most 500)' },
      nestedGroups: { type: 'string', enum: ['flatten', 'direct'], default: 'flatten' },
      usernameAttribute: { type: 'string', default: 'userPrincipalName' },
      extraAttributes: { ...strings, description: 'more user properties to read (at most 100)' },
      guests: { type: 'string', enum: ['include', 'exclude'], default: 'include' },
      groupTypes: { type: 'string', enum: ['all', 'security'], default: 'all' },
      schedule: schema('Schedule'),
      fullSyncHours: { type: 'integer', minimum: 1, maximum: 720, default: 24 },
      concurrency: { type: 'integer', minimum: 1, maximum: 16, default: 4 },
    },
  },
  LdapSourceSettings: {
    type: 'object',
    title: 'LDAP / Active Directory',
    description:
      'The main fields; see src/sources/ldap/config.ts. `preset` fills attribute names and filters (each can be overridden); `url`, `bindDn` and `baseDn` are needed. Unknown settings are rejected (400 `invalid_settings`).',
    additionalProperties: true,
    properties: {
      preset: { type: 'string', enum: ['activeDirectory', 'openldap'] },
      url: { type: 'string', description: 'ldap://host[:port] or ldaps://host[:port]' },
      failoverUrls: { ...strings, description: 'more servers of the same directory, tried in order (at most 10)' },
      startTls: bool,
      caCertificate: { type: ['string', 'null'], description: 'PEM CA certificate(s) to trust; the system ones when null' },
      tlsServerName: nullableStr,
      bindDn: { type: 'string', description: 'a DN, user@domain or DOMAIN\\user' },
      bindPassword: schema('Secret'),
      baseDn: str,
      userBaseDn: nullableStr,
      userFilter: str,
      groupBaseDn: nullableStr,
      groupFilter: str,
      searchScope: { type: 'string', enum: ['sub', 'one'], default: 'sub' },
      attributes: {
        type: 'object',
        description: 'attribute names by role',
        properties: Object.fromEntries(['id', 'username', 'email', 'displayName', 'givenName', 'familyName', 'employeeNumber', 'title', 'department', 'groupName', 'member', 'memberOf'].map((k) => [k, str])),
      },
      extraAttributes: { ...strings, description: 'more user attributes to read (at most 100)' },
      membership: { type: 'string', enum: ['member', 'memberOf'], default: 'member' },
      nestedGroups: { type: 'string', enum: ['flatten', 'direct'], default: 'flatten' },
      nestedMethod: { type: 'string', enum: ['inChain', 'client'] },
      disabled: { oneOf: [obj({ attribute: str, match: { type: 'string', enum: ['bit', 'present', 'equals'] }, value: nullableStr }), { type: 'null' }] },
      changeTracking: { type: 'string', enum: ['usn', 'modifyTimestamp', 'none'] },
      pageSize: { type: 'integer', minimum: 10, maximum: 5000 },
      rangeSize: { type: ['integer', 'null'], minimum: 10, maximum: 100000 },
      timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
      connectTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 300, default: 10 },
      schedule: schema('Schedule'),
      fullSyncHours: { type: 'integer', minimum: 1, maximum: 720, default: 24 },
      concurrency: { type: 'integer', minimum: 1, maximum: 16, default: 4 },
    },
  },

  // ------------------------------------------------------------------ connection test, user search, sync one user
  ConnectionTest: obj(
    {
      ok: bool,
      checks: { type: 'array', items: obj({ name: str, ok: bool, message: str }) },
      missingPermissions: { ...strings, description: 'Graph: permissions the app lacks for these settings' },
      failure: { type: 'string', description: 'what stopped the test, when something did: `unreachable`, `tls`, `bind`, `base-dn`, …' },
    },
    ['ok', 'checks', 'missingPermissions'],
  ),
  UserSearch: obj(
    {
      found: bool,
      matches: { type: 'integer', description: 'entries that matched the username; the first is shown' },
      entry: obj({ dn: str, attributes: { type: 'object', additionalProperties: strings } }, ['attributes'], { description: "the provider's entry as read" }),
      record: obj({ id: str, doc: anyObject }, ['id', 'doc'], { description: 'the record the mirror would hold (a SCIM document)' }),
      skipped: { type: 'string', description: 'why the source leaves the user out' },
      groups: { type: 'array', items: obj({ id: str, name: str }), description: 'the provider groups the user is in' },
      directory: {
        description: 'what the current rules make of the record; null when the source leaves the user out',
        oneOf: [
          obj(
            {
              inScope: bool,
              reason: { type: 'string', description: 'why the user is not synced' },
              user: obj({ username: str, email: nullableStr, displayName: str, active: bool, attributes: { type: 'object', additionalProperties: str } }),
              groups: { type: 'array', items: obj({ name: str, because: str }) },
              excluded: { type: 'array', items: obj({ name: str, reason: str }) },
              existing: {
                oneOf: [obj({ id: str, username: str, active: bool, ownedBy: nullableStr, sameRecord: bool }), { type: 'null' }],
                description: 'the directory user with that username now, if any',
              },
            },
            ['inScope', 'groups', 'excluded', 'existing'],
          ),
          { type: 'null' },
        ],
      },
    },
    ['found', 'matches', 'groups', 'directory'],
  ),
  UserSyncResult: obj(
    {
      runId: str,
      outcome: { type: 'string', enum: ['synced', 'not-found', 'out-of-scope'] },
      reason: str,
      user: obj({ id: str, username: str, email: nullableStr, displayName: str, active: bool, groups: strings }, undefined, { description: 'the directory user and its groups' }),
      elapsedMs: int,
    },
    ['runId', 'outcome', 'elapsedMs'],
  ),
  Username: obj({ username: { type: 'string', minLength: 1, maxLength: 1024 } }),

  // ------------------------------------------------------------------ runs
  RunStatus: { type: 'string', enum: RUN_STATUS },
  RunCounters: {
    type: 'object',
    description: `counts of what a run did; only those that happened are present (${COUNTERS.join(', ')})`,
    properties: Object.fromEntries(COUNTERS.map((k) => [k, int])),
    additionalProperties: int,
  },
  Change: obj({ entity: { type: 'string', enum: ['user', 'group', 'membership'] }, entityId: str, op: str, data: {} }),
  HeldChange: obj({ userId: str, op: { type: 'string', enum: ['deactivate', 'delete'] }, data: { description: '`{username, reason}`' } }),
  PassReport: obj(
    {
      runId: str,
      status: str,
      counters: schema('RunCounters'),
      totalChanges: { type: 'integer', description: 'all changes of the run; `changes` lists the first of them' },
      changes: { type: 'array', items: schema('Change') },
      held: { type: 'array', items: schema('HeldChange'), description: 'deactivations and deletions held by the safety limit' },
      seats: { type: 'array', items: obj({ group: str, seats: int, before: int, after: int }), description: 'licence groups' },
      merges: { type: 'array', items: obj({ group: str, sources: strings }), description: 'directory groups fed by more than one provider group' },
      log: { type: 'array', items: obj({ level: str, message: str }) },
    },
    undefined,
    { description: 'What a full pass (re-evaluation, SCIM sync) or a preview did or would do.' },
  ),
  RunOutcome: obj(
    {
      runId: str,
      status: schema('RunStatus'),
      error: { type: 'string', description: 'why the run failed' },
      counters: schema('RunCounters'),
    },
    ['runId', 'status', 'counters'],
    { description: 'How a pull run (Graph, LDAP) ended.' },
  ),
  RunSummary: obj({
    id: str,
    connectorId: str,
    trigger: { type: 'string', description: '`manual`, `schedule`, `on-demand`, `startup`, `settings-change`, `push`, …' },
    status: schema('RunStatus'),
    phase: { type: ['string', 'null'], description: 'pull runs: `reading`, `reconciling`' },
    startedAt: dateTime,
    endedAt: { type: ['string', 'null'], format: 'date-time' },
    counters: schema('RunCounters'),
    peakRss: { type: 'integer', description: 'bytes' },
    error: nullableStr,
  }),
  Run: {
    allOf: [
      schema('RunSummary'),
      obj({
        progress: { description: 'the last progress: `{phase, done, total}`' },
        log: { type: 'array', items: obj({ at: dateTime, level: str, message: str }), description: 'the first 1000 lines' },
        held: {
          type: 'array',
          description: 'held deactivations and deletions with their decision',
          items: obj({ userId: str, op: str, status: { type: 'string', enum: ['held', 'approved', 'rejected'] }, username: str, reason: str }, ['userId', 'op', 'status'], { additionalProperties: true }),
        },
        changes: { type: 'array', items: obj({ seq: int, entity: str, entityId: str, op: str, data: {} }), description: 'the first 1000' },
      }),
    ],
  },
  RunProgress: obj(
    { status: schema('RunStatus'), phase: nullableStr, progress: {}, counters: schema('RunCounters'), error: nullableStr },
    undefined,
    { description: 'The data of a `progress` or `end` server-sent event.' },
  ),

  // ------------------------------------------------------------------ directory users, audit
  DirectoryUser: obj({
    id: str,
    username: str,
    email: nullableStr,
    displayName: str,
    active: bool,
    attributes: { type: 'object', additionalProperties: str },
    owner: { oneOf: [{ const: 'local' }, obj({ connectorId: str, sourceId: nullableStr })], description: "`local`, or the connector and provider record that own the user" },
    inScope: bool,
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
  DirectoryUserDetail: {
    allOf: [
      schema('DirectoryUser'),
      obj({
        groups: { type: 'array', items: obj({ id: str, name: str, managedBy: { type: 'string', description: '`local`, or the connector that manages the membership' } }) },
        history: { type: 'array', items: obj({ seq: int, at: dateTime, entity: { type: 'string', enum: ['user', 'membership'] }, op: str, runId: nullableStr, data: {} }), description: 'the last 100 changes of the user and its memberships, newest first (memberships name their user and group)' },
        targets: {
          type: 'array',
          description: 'the user in each target: the name the application has for it (when usersync created or adopted it), and whether a change waits or is parked',
          items: obj({
            targetId: str,
            target: str,
            kind: str,
            remoteName: nullableStr,
            origin: { type: ['string', 'null'], enum: ['created', 'adopted', null] },
            active: { type: ['boolean', 'null'] },
            state: { type: 'string', enum: ['delivered', 'pending', 'parked', 'not-delivered'] },
            error: nullableStr,
            updatedAt: { type: ['string', 'null'], format: 'date-time' },
          }),
        },
      }),
    ],
  },
  NewUser: obj(
    {
      username: { type: 'string', minLength: 1, maxLength: 255 },
      email: nullableStr,
      displayName: { type: 'string', description: 'default: the username' },
      active: { type: 'boolean', default: true },
      groups: { ...strings, description: 'group names; missing groups are created' },
    },
    ['username'],
  ),
  Session: obj({
    account: obj({ id: str, username: str, role: { type: 'string', enum: ['administrator', 'auditor'] }, mustChangePassword: bool }),
    csrfToken: { type: 'string', description: 'send it as the `X-CSRF-Token` header on every change made with the session cookie' },
  }),
  Account: obj({
    id: str,
    username: str,
    role: { type: 'string', enum: ['administrator', 'auditor'] },
    disabled: bool,
    locked: { type: 'boolean', description: 'locked by failed logins' },
    lockedUntil: { type: ['string', 'null'], format: 'date-time' },
    mustChangePassword: bool,
    lastLoginAt: { type: ['string', 'null'], format: 'date-time' },
    createdAt: dateTime,
  }),
  AdminToken: obj({ id: str, label: str, scope: { type: 'string', enum: ['admin', 'auditor', 'sync', 'sync-user'] }, createdAt: dateTime, revokedAt: { type: ['string', 'null'], format: 'date-time' } }),
  ScimToken: obj({ id: str, label: str, createdAt: dateTime, revokedAt: { type: ['string', 'null'], format: 'date-time' } }),
  DirectoryGroup: obj({
    id: str,
    name: str,
    owner: { description: "`'local'` or `{connectorId, sourceId}`" },
    memberCount: int,
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
  AuditEntry: obj({ seq: int, at: dateTime, actor: { type: 'string', examples: ['token:automation'] }, action: { type: 'string', examples: ['settings.update'] }, target: nullableStr, details: {} }),
};

// --------------------------------------------------------------------------------------------- paths

const connectorPath = { parameters: [parameter('ConnectorId')] };
const runPath = { parameters: [parameter('RunId')] };

const sourceBody = body(schema('SourceSettings'));
const settingsResponses = {
  '200': ok('Saved and re-evaluated: the settings, their new version and what the re-evaluation did.', obj({ settings: schema('ConnectorSettings'), settingsVersion: str, reevaluation: schema('PassReport') })),
  '202': ok('`?wait=false`: saved; the re-evaluation goes on.', obj({ settings: schema('ConnectorSettings'), settingsVersion: str, reevaluation: { const: 'started' } })),
  '412': error('`settings_changed`: someone saved the settings after the version named in `If-Match`; nothing was saved'),
  '400': error(`\`invalid_settings\` (details: every problem with its path); ${invalidBody}`),
  '404': response('NotFound'),
  ...guarded,
  '500': error('`reevaluation_failed`: the settings were saved, but re-evaluating the directory with them failed (a sync tries again); `internal`: anything else, nothing saved'),
};

const sourceSaveResponses = {
  '200': ok('Saved; secrets only said to be set.', schema('SourceSettings')),
  '400': error(`\`invalid_settings\` (details: every problem with its path); ${invalidBody}`),
  '404': response('NotFound'),
  '409': error(notPull),
  ...guarded,
};

const paths: Record<string, PathItemObject> = {
  '/api/openapi.json': {
    get: {
      operationId: 'getOpenApi',
      summary: 'This document',
      tags: ['meta'],
      security: [],
      responses: { '200': ok('The OpenAPI 3.1 description of the admin API.', { type: 'object' }) },
    },
  },

  '/api/connectors': {
    get: {
      operationId: 'listConnectors',
      summary: 'The connectors (without their settings)',
      tags: ['connectors'],
      responses: {
        '200': ok(
          'The connectors, oldest first, each with its latest run; SCIM connectors with their Base URL.',
          obj({
            connectors: {
              type: 'array',
              items: {
                allOf: [
                  schema('Connector'),
                  obj(
                    {
                      lastRun: { anyOf: [{ type: 'null' }, obj({ id: str, status: { type: 'string', enum: RUN_STATUS }, trigger: str, startedAt: dateTime, endedAt: { type: ['string', 'null'] }, error: nullableStr })] },
                      scimBaseUrl: str,
                    },
                    ['lastRun'],
                  ),
                ],
              },
            },
          }),
        ),
        ...guarded,
      },
    },
    post: {
      operationId: 'createConnector',
      summary: 'A new connector',
      description: "A SCIM connector's first bearer token is in the answer, once. A pull connector's source settings are validated and their secrets sealed.",
      tags: ['connectors'],
      requestBody: body(schema('NewConnector')),
      responses: {
        '201': ok('Created.', schema('CreatedConnector')),
        '400': error(`\`invalid_connector\` (kind, name or id); \`invalid_settings\` (settings or source, details: every problem); ${invalidBody}`),
        '409': error('`connector_exists`: a connector with that id exists already'),
        ...guarded,
      },
    },
  },
  '/api/connectors/{id}': {
    ...connectorPath,
    get: {
      operationId: 'getConnector',
      summary: 'A connector with its settings',
      tags: ['connectors'],
      responses: { '200': ok('The connector.', schema('ConnectorDetail')), '404': response('NotFound'), ...guarded },
    },
    patch: {
      operationId: 'updateConnector',
      summary: 'Rename, enable or disable a connector',
      description: "A disabled connector's SCIM requests are refused and it is not scheduled.",
      tags: ['connectors'],
      requestBody: body(obj({ name: { type: 'string', minLength: 1, maxLength: 200 }, enabled: bool }, [], { additionalProperties: false })),
      responses: { '200': ok('Changed.', schema('Connector')), '400': error(`\`invalid_connector\`; ${invalidBody}`), '404': response('NotFound'), ...guarded },
    },
    delete: {
      operationId: 'deleteConnector',
      summary: 'Delete a connector with its mirror and tokens (the directory keeps its users)',
      tags: ['connectors'],
      responses: { '204': { description: 'Deleted.' }, '404': response('NotFound'), '409': error('`busy`: a run is in progress (details: `{runId}`)'), ...guarded },
    },
  },
  '/api/connectors/{id}/source': {
    ...connectorPath,
    get: {
      operationId: 'getSource',
      summary: "A pull connector's source settings",
      tags: ['source'],
      responses: { '200': ok('The source settings; secrets only said to be set.', schema('SourceSettings')), '404': response('NotFound'), '409': error(notPull), ...guarded },
    },
    put: {
      operationId: 'replaceSource',
      summary: "Replace a pull connector's source settings",
      description: 'Defaults fill what is left out; stored secrets left out keep their value.',
      tags: ['source'],
      requestBody: sourceBody,
      responses: sourceSaveResponses,
    },
    patch: {
      operationId: 'updateSource',
      summary: "Update fields of a pull connector's source settings",
      description: 'Only the fields given change.',
      tags: ['source'],
      requestBody: sourceBody,
      responses: sourceSaveResponses,
    },
  },
  '/api/connectors/{id}/test': {
    ...connectorPath,
    post: {
      operationId: 'testConnector',
      summary: "Test a pull connector's connection",
      description: 'Graph: the token, each permission (named when missing), the scope. LDAP: connection, TLS, bind, base DNs, users and groups found. `failure` names the kind of failure. Writes an audit entry; changes nothing else.',
      tags: ['source'],
      responses: {
        '200': ok('The checks, passed or not (a failed test is still a 200).', schema('ConnectionTest')),
        '404': response('NotFound'),
        '409': error(notPull),
        ...guarded,
      },
    },
  },
  '/api/connectors/{id}/search-user': {
    ...connectorPath,
    post: {
      operationId: 'searchUser',
      summary: 'The test user search (LDAP)',
      description: 'The entry, the mirror record, its groups, and the directory user and groups the current rules would give it, with reasons. Writes nothing but an audit entry.',
      tags: ['source'],
      requestBody: body(schema('Username')),
      responses: {
        '200': ok('What was found.', schema('UserSearch')),
        '400': error(`\`invalid_username\`; ${invalidBody}`),
        '404': response('NotFound'),
        '409': error(`${notPull}; \`not_supported\`: the kind has no test user search (Graph)`),
        '502': response('LdapError'),
        ...guarded,
      },
    },
  },
  '/api/connectors/{id}/sync-user': {
    ...connectorPath,
    post: {
      operationId: 'syncUser',
      summary: 'Sync one user now (sync on login)',
      description: 'Reads one user from the provider, reconciles it, and answers with the directory user and its groups. The one operation a token made with `--scope sync-user` may call.',
      tags: ['sync'],
      requestBody: body(schema('Username')),
      responses: {
        '200': ok('The outcome; `synced` with the user, or `not-found` / `out-of-scope` with a reason.', schema('UserSyncResult')),
        '400': error(`\`invalid_username\`; ${invalidBody}`),
        '401': response('Unauthenticated'),
        '404': response('NotFound'),
        '409': error('`conflict`: a SCIM connector, a disabled connector, or one that cannot read one user'),
        '500': response('InternalError'),
        '502': response('LdapError'),
      },
    },
  },
  '/api/connectors/{id}/settings': {
    ...connectorPath,
    get: {
      operationId: 'getSettings',
      summary: "A connector's settings (its rules)",
      tags: ['settings'],
      responses: { '200': ok('The settings; the `ETag` header is their version, for `If-Match` when saving.', schema('ConnectorSettings')), '404': response('NotFound'), ...guarded },
    },
    put: {
      operationId: 'replaceSettings',
      summary: 'Replace the settings, then re-evaluate',
      description: 'The whole document; defaults fill gaps. Changing a rule re-evaluates the directory from the mirror, without asking the provider again.',
      tags: ['settings'],
      parameters: [parameter('Wait'), parameter('IfMatch')],
      requestBody: body(schema('ConnectorSettingsInput')),
      responses: settingsResponses,
    },
    patch: {
      operationId: 'updateSettings',
      summary: 'Update part of the settings, then re-evaluate',
      description: 'Merged into the stored settings, then validated whole.',
      tags: ['settings'],
      parameters: [parameter('Wait'), parameter('IfMatch')],
      requestBody: body(schema('ConnectorSettingsInput')),
      responses: settingsResponses,
    },
  },
  '/api/connectors/{id}/preview': {
    ...connectorPath,
    post: {
      operationId: 'preview',
      summary: 'The plan for candidate settings; nothing changes',
      description: 'The full plan for the current mirror and the candidate settings (the stored ones when none are given).',
      tags: ['settings'],
      parameters: [{ name: 'limit', in: 'query', description: 'changes to list (default 1000, at most 100000)', schema: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 } }],
      requestBody: body(obj({ settings: schema('ConnectorSettingsInput') }, []), 'Candidate settings, merged into the stored ones.', false),
      responses: {
        '200': ok('What a full pass would do, and what the targets would refuse of it.', {
          allOf: [
            schema('PassReport'),
            obj({
              settings: schema('ConnectorSettings'),
              targetProblems: {
                type: 'array',
                description: 'users the plan creates or changes that an enabled target receiving this connector would refuse (a missing e-mail, Confluence username rules, an unverified Cloud domain); at most 200',
                items: obj({ targetId: str, target: { type: 'string', description: "the target as a person reads it, e.g. `Jira 'Jira DC'`" }, username: str, problem: { type: 'string', description: 'why, as a sentence' } }),
              },
            }),
          ],
        }),
        '400': error(`\`invalid_settings\`; ${invalidBody}`),
        '404': response('NotFound'),
        ...guarded,
      },
    },
  },
  '/api/connectors/{id}/sync': {
    ...connectorPath,
    post: {
      operationId: 'syncConnector',
      summary: 'Sync now',
      description: 'SCIM: a full pass over the mirror now. Graph, LDAP: a run now, reading the provider (`mode`: a delta round when it can, a full read when asked or needed). Waits for the outcome unless `?wait=false`.',
      tags: ['sync'],
      parameters: [parameter('Wait')],
      requestBody: body(obj({ mode: { type: 'string', enum: ['auto', 'full', 'delta'], default: 'auto', description: 'pull connectors only' } }, []), undefined, false),
      responses: {
        '200': ok('Done: a pull run\'s outcome, or what a SCIM full pass did.', { anyOf: [schema('RunOutcome'), schema('PassReport')] }),
        '202': ok('`?wait=false`: started. A pull connector answers with the run id.', {
          oneOf: [obj({ runId: str, status: { const: 'running' } }), obj({ status: { const: 'started' } })],
        }),
        '400': error(`\`invalid_mode\`; ${invalidBody}`),
        '404': response('NotFound'),
        '409': error("`busy`: the connector is running already (details: `{runId}`, the running run's id, or null); `conflict`: disabled, or the service is stopping"),
        ...guarded,
      },
    },
  },

  '/api/runs': {
    get: {
      operationId: 'listRuns',
      summary: 'Runs, newest first',
      tags: ['runs'],
      parameters: [
        { name: 'connector', in: 'query', description: 'only runs of this connector', schema: str },
        { name: 'status', in: 'query', description: 'only runs with this status', schema: schema('RunStatus') },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
      ],
      responses: { '200': ok('The runs.', obj({ runs: { type: 'array', items: schema('RunSummary') } })), ...guarded },
    },
  },
  '/api/runs/{id}': {
    ...runPath,
    get: {
      operationId: 'getRun',
      summary: 'A run with its counters, log lines, held changes and changes',
      tags: ['runs'],
      responses: { '200': ok('The run.', schema('Run')), '404': response('NotFound'), ...guarded },
    },
  },
  '/api/runs/{id}/events': {
    ...runPath,
    get: {
      operationId: 'runEvents',
      summary: "A run's progress as server-sent events",
      description: "`progress` whenever the run's phase, progress or counters change (a run on another instance streams too), then `end` once it is no longer running; the stream then closes. Each event's data is a RunProgress.",
      tags: ['runs'],
      responses: {
        '200': { description: 'An event stream (`event: progress` …, then `event: end`).', content: { 'text/event-stream': { schema: { type: 'string', description: 'events whose data are RunProgress JSON' }, 'x-event-data': schema('RunProgress') } } },
        '404': response('NotFound'),
        ...guarded,
      },
    },
  },
  '/api/runs/{id}/approve': {
    ...runPath,
    post: {
      operationId: 'approveRun',
      summary: "Apply a run's held deactivations and deletions",
      description: 'Changes no longer wanted (the user is gone, or already inactive) are skipped.',
      tags: ['runs'],
      responses: {
        '200': ok('Applied.', obj({ applied: int, skipped: int })),
        '404': response('NotFound'),
        '409': error('`conflict`: the run has no held changes'),
        ...guarded,
      },
    },
  },
  '/api/runs/{id}/reject': {
    ...runPath,
    post: {
      operationId: 'rejectRun',
      summary: "Reject a run's held deactivations and deletions",
      tags: ['runs'],
      responses: {
        '200': ok('Rejected.', obj({ rejected: int })),
        '404': error('`not_found`: no such run'),
        '409': error('`conflict`: the run has no held changes'),
        ...guarded,
      },
    },
  },

  '/api/users': {
    get: {
      operationId: 'listUsers',
      summary: 'Directory users, by username',
      tags: ['users'],
      parameters: [
        { name: 'search', in: 'query', description: 'a part of the username (case-insensitive)', schema: str },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      ],
      responses: { '200': ok('The users.', obj({ users: { type: 'array', items: schema('DirectoryUser') } })), ...guarded },
    },
    post: {
      operationId: 'createUser',
      summary: 'A local user',
      description: 'Created by an administrator, owned by no connector (copy behaviour may adopt it).',
      tags: ['users'],
      requestBody: body(schema('NewUser')),
      responses: {
        '201': ok('Created.', schema('DirectoryUser')),
        '400': error(`\`invalid_user\`; ${invalidBody}`),
        '409': error('`username_taken`'),
        ...guarded,
      },
    },
  },
  '/api/users/{id}': {
    parameters: [parameter('UserId')],
    get: {
      operationId: 'getUser',
      summary: 'A directory user with its groups (and what manages each) and its history',
      tags: ['users'],
      responses: { '200': ok('The user.', schema('DirectoryUserDetail')), '404': response('NotFound'), ...guarded },
    },
  },

  '/api/session': {
    get: {
      operationId: 'getSession',
      summary: 'The logged-in account and its CSRF token',
      tags: ['session'],
      security: [],
      responses: { '200': ok('Logged in.', schema('Session')), '401': error('`unauthenticated`: not logged in') },
    },
    post: {
      operationId: 'login',
      summary: 'Log in: sets the HTTP-only session cookie',
      description: 'Failed logins count towards a lockout (LOGIN_LOCKOUT_ATTEMPTS in a row lock the account for LOGIN_LOCKOUT_MINUTES); one address may try LOGIN_RATE_PER_MINUTE times a minute.',
      tags: ['session'],
      security: [],
      requestBody: body(obj({ username: str, password: { type: 'string', writeOnly: true } })),
      responses: {
        '200': ok('Logged in; the `usersync_session` cookie is set.', schema('Session')),
        '400': error(`\`invalid_body\`: username or password missing; ${invalidBody}`),
        '401': error('`invalid_credentials`: the username or the password is wrong'),
        '403': error('`csrf_failed`: the request came from another site'),
        '423': error('`account_locked` (details: `{retryAfterSeconds}`)'),
        '429': error('`too_many_attempts` from this address (Retry-After says when to try again)'),
      },
    },
    delete: {
      operationId: 'logout',
      summary: 'Log out',
      tags: ['session'],
      responses: { '204': { description: 'Logged out; the cookie is cleared.' }, ...guarded },
    },
  },
  '/api/session/password': {
    post: {
      operationId: 'changeOwnPassword',
      summary: "Change the logged-in account's password",
      description: "The account's other sessions end.",
      tags: ['session'],
      requestBody: body(obj({ currentPassword: { type: 'string', writeOnly: true }, newPassword: { type: 'string', minLength: 12, maxLength: 256, writeOnly: true } })),
      responses: {
        '204': { description: 'Changed.' },
        '400': error('`wrong_password`: the current password is wrong; `weak_password`: the new one is refused (the message says why)'),
        ...guarded,
      },
    },
  },

  '/api/accounts': {
    get: {
      operationId: 'listAccounts',
      summary: 'Admin accounts',
      tags: ['accounts'],
      responses: { '200': ok('The accounts, by username.', obj({ accounts: { type: 'array', items: schema('Account') } })), ...guarded },
    },
    post: {
      operationId: 'createAccount',
      summary: 'A new admin account',
      description: 'Its owner must change the password at the first login.',
      tags: ['accounts'],
      requestBody: body(obj({ username: str, password: { type: 'string', minLength: 12, maxLength: 256, writeOnly: true }, role: { type: 'string', enum: ['administrator', 'auditor'] } })),
      responses: {
        '201': ok('Created.', schema('Account')),
        '400': error('`invalid_account`; `weak_password`'),
        '409': error('`username_taken`'),
        ...guarded,
      },
    },
  },
  '/api/accounts/{id}': {
    parameters: [{ name: 'id', in: 'path', required: true, description: 'the account id', schema: str }],
    patch: {
      operationId: 'updateAccount',
      summary: 'Change role, disable or enable, or set a new password (to be changed at the next login)',
      description: 'Disabling an account or setting its password ends its sessions. The last enabled administrator cannot be demoted or disabled.',
      tags: ['accounts'],
      requestBody: body(obj({ role: { type: 'string', enum: ['administrator', 'auditor'] }, disabled: bool, password: { type: 'string', writeOnly: true } }, [], { additionalProperties: false })),
      responses: {
        '200': ok('Changed.', schema('Account')),
        '400': error('`invalid_account`; `weak_password`'),
        '404': response('NotFound'),
        '409': error('`last_administrator`'),
        ...guarded,
      },
    },
    delete: {
      operationId: 'deleteAccount',
      summary: 'Delete an account',
      tags: ['accounts'],
      responses: { '204': { description: 'Deleted; its sessions ended.' }, '404': response('NotFound'), '409': error('`own_account`: the account making the request; `last_administrator`'), ...guarded },
    },
  },
  '/api/accounts/{id}/unlock': {
    parameters: [{ name: 'id', in: 'path', required: true, description: 'the account id', schema: str }],
    post: {
      operationId: 'unlockAccount',
      summary: 'Unlock an account locked by failed logins',
      tags: ['accounts'],
      responses: { '200': ok('Unlocked.', schema('Account')), '404': response('NotFound'), ...guarded },
    },
  },

  '/api/admin-tokens': {
    get: {
      operationId: 'listAdminTokens',
      summary: 'API tokens (never their values)',
      tags: ['accounts'],
      responses: { '200': ok('The tokens.', obj({ tokens: { type: 'array', items: schema('AdminToken') } })), ...guarded },
    },
    post: {
      operationId: 'createAdminToken',
      summary: 'A new API token, shown once',
      description: '`admin`: the whole API; `auditor`: read only; `sync`: start syncs and read runs; `sync-user`: only `POST /api/connectors/{id}/sync-user`.',
      tags: ['accounts'],
      requestBody: body(obj({ label: { type: 'string', minLength: 1, maxLength: 200 }, scope: { type: 'string', enum: ['admin', 'auditor', 'sync', 'sync-user'], default: 'admin' } }, ['label'])),
      responses: { '201': ok('Created; the token is in the answer, once.', obj({ token: str, info: schema('AdminToken') })), '400': error('`invalid_token`'), ...guarded },
    },
  },
  '/api/admin-tokens/{id}': {
    parameters: [{ name: 'id', in: 'path', required: true, description: 'the token id', schema: str }],
    delete: {
      operationId: 'revokeAdminToken',
      summary: 'Revoke an API token (within two seconds on every instance)',
      tags: ['accounts'],
      responses: { '204': { description: 'Revoked.' }, '404': response('NotFound'), ...guarded },
    },
  },

  '/api/connectors/{id}/tokens': {
    ...connectorPath,
    get: {
      operationId: 'listScimTokens',
      summary: "A SCIM connector's bearer tokens (never their values)",
      tags: ['connectors'],
      responses: { '200': ok('The tokens.', obj({ tokens: { type: 'array', items: schema('ScimToken') } })), '404': response('NotFound'), '409': error('`not_a_scim_connector`'), ...guarded },
    },
    post: {
      operationId: 'createScimToken',
      summary: 'Another SCIM bearer token, shown once',
      description: 'Rotation: create one, enter it in the identity provider, then revoke the old one. Several tokens may be valid at once.',
      tags: ['connectors'],
      requestBody: body(obj({ label: { type: 'string', maxLength: 200 } }, []), undefined, false),
      responses: {
        '201': ok('Created; the token is in the answer, once.', obj({ token: str, info: schema('ScimToken'), scimBaseUrl: str })),
        '400': error('`invalid_token`'),
        '404': response('NotFound'),
        '409': error('`not_a_scim_connector`'),
        ...guarded,
      },
    },
  },
  '/api/connectors/{id}/tokens/{tokenId}': {
    parameters: [parameter('ConnectorId'), { name: 'tokenId', in: 'path', required: true, description: 'the token id', schema: str }],
    delete: {
      operationId: 'revokeScimToken',
      summary: 'Revoke a SCIM bearer token (within two seconds)',
      tags: ['connectors'],
      responses: { '204': { description: 'Revoked.' }, '404': response('NotFound'), '409': error('`not_a_scim_connector`'), ...guarded },
    },
  },

  '/api/groups': {
    get: {
      operationId: 'listGroups',
      summary: 'Directory groups, by name',
      tags: ['users'],
      parameters: [
        { name: 'search', in: 'query', description: 'a part of the name (case-insensitive)', schema: str },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      ],
      responses: { '200': ok('The groups.', obj({ groups: { type: 'array', items: schema('DirectoryGroup') } })), '400': error('`invalid_limit`'), ...guarded },
    },
  },
  '/api/groups/{id}': {
    parameters: [{ name: 'id', in: 'path', required: true, description: 'the directory group id', schema: str }],
    get: {
      operationId: 'getGroup',
      summary: 'A directory group: members (and what manages each membership), the provider groups feeding it, its history',
      tags: ['users'],
      parameters: [{ name: 'limit', in: 'query', description: 'members listed', schema: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 } }],
      responses: {
        '200': ok(
          'The group.',
          {
            allOf: [
              schema('DirectoryGroup'),
              obj({
                members: { type: 'array', items: obj({ id: str, username: str, displayName: str, active: bool, managedBy: str }) },
                providerGroups: { type: 'array', items: obj({ connectorId: str, sourceId: str }) },
                history: { type: 'array', items: anyObject },
              }),
            ],
          },
        ),
        '404': response('NotFound'),
        ...guarded,
      },
    },
  },

  '/api/audit': {
    get: {
      operationId: 'listAudit',
      summary: 'The audit log, newest first',
      tags: ['audit'],
      parameters: [
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        { name: 'search', in: 'query', description: 'a part of the actor, action or target (case-insensitive)', schema: { type: 'string', maxLength: 200 } },
        { name: 'before', in: 'query', description: 'only entries older than the one with this seq (the next page: the last seq of this one)', schema: { type: 'integer' } },
      ],
      responses: { '200': ok('The entries.', obj({ entries: { type: 'array', items: schema('AuditEntry') } })), '400': error('`invalid_limit`, `invalid_search`, `invalid_before`'), ...guarded },
    },
  },
};

// --------------------------------------------------------------------------------------------- the document

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export const openApiDocument: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'usersync admin API',
    version,
    description: [
      'The admin REST API of usersync: connectors and their settings, source settings, preview, sync, runs with held changes, directory users, audit.',
      '',
      'Every operation but this document and logging in needs a session or an API token.',
      '',
      '- A browser logs in with `POST /api/session` and gets an HTTP-only cookie; every change it makes must carry the session\'s CSRF token in the `X-CSRF-Token` header (`GET /api/session` gives it). Administrators may do everything; auditors may only read (and preview, test and search).',
      '- Automation sends `Authorization: Bearer <token>` (`POST /api/admin-tokens`, or `usersync admin-token create`, prints one, once). Scopes: `admin` (everything), `auditor` (read only), `sync` (start syncs and read runs), `sync-user` (only `POST /api/connectors/{id}/sync-user`).',
      '',
      'Every change is written to the audit log with the account or token that made it.',
      '',
      'Errors are `{"error": {"code", "message", "details"?}}`. Besides the answers listed, Fastify\'s own 4xx (e.g. 413 for a body too large, 415 for a body that is not JSON) come in the same shape.',
      '',
      'Outside this API: `GET /healthz` and `GET /readyz` (no token), `GET /metrics` (Prometheus), and the SCIM 2.0 endpoints under `/scim/v2/{connectorId}`.',
    ].join('\n'),
    license: { name: 'UNLICENSED' },
  },
  jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
  tags: [
    { name: 'connectors', description: 'connectors' },
    { name: 'source', description: "pull connectors' source settings, connection test and test user search" },
    { name: 'settings', description: 'the rules: user sync, group sync, safety' },
    { name: 'sync', description: 'running a connector, or one user' },
    { name: 'runs', description: 'runs, their progress and held changes' },
    { name: 'users', description: 'directory users' },
    { name: 'audit', description: 'the audit log' },
    { name: 'session', description: 'logging in and out, one\'s own password' },
    { name: 'accounts', description: 'admin accounts and API tokens' },
    alertTag,
    targetTag,
    { name: 'meta', description: 'this description' },
  ],
  security: [{ adminToken: [] }, { session: [] }],
  paths: { ...paths, ...alertPaths, ...targetPaths },
  components: {
    schemas: { ...schemas, ...alertSchemas, ...targetSchemas },
    parameters: {
      ConnectorId: { name: 'id', in: 'path', required: true, description: 'the connector id', schema: str },
      RunId: { name: 'id', in: 'path', required: true, description: 'the run id', schema: str },
      UserId: { name: 'id', in: 'path', required: true, description: 'the directory user id', schema: str },
      IfMatch: {
        name: 'If-Match',
        in: 'header',
        description: "the settings' version the change was made on (`ETag` of GET …/settings, or `settingsVersion`): if someone saved meanwhile, the answer is 412 and nothing is saved. Without it a PUT replaces what is there, and a PATCH is merged into what is there at the moment of saving",
        schema: { type: 'string' },
      },
      Wait: {
        name: 'wait',
        in: 'query',
        description: '`false`: answer 202 at once, while the work goes on; otherwise wait for it',
        schema: { type: 'boolean', default: true },
      },
    },
    responses: {
      Unauthenticated: error('`unauthenticated`: not logged in and no API token, or not a valid one'),
      Forbidden: error('`forbidden`: the role or token scope does not allow it; `csrf_failed`: a session\'s change without its CSRF token, or from another site; `password_change_required`: change the password first'),
      NotFound: error('`not_found`: no such connector, run or user'),
      InternalError: error('`internal` (nothing was changed); `secret_unreadable`: a stored secret cannot be opened with the keys the service has'),
      LdapError: error('The LDAP server cannot be used: `ldap_unreachable`, `ldap_tls`, `ldap_bind`, `ldap_base_dn`, `ldap_timeout` or `ldap_protocol`'),
    },
    securitySchemes: {
      adminToken: { type: 'http', scheme: 'bearer', bearerFormat: 'usa_…', description: 'an API token (`POST /api/admin-tokens`, `usersync admin-token create`)' },
      session: { type: 'apiKey', in: 'cookie', name: 'usersync_session', description: 'set by `POST /api/session`; changes also need the `X-CSRF-Token` header' },
    },
  },
};
