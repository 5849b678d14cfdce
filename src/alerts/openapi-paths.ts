// The OpenAPI 3.1 description of the alert API (src/alerts/routes.ts), to be merged into the admin API's
// document (src/admin/openapi.ts): `alertPaths` into `paths`, `alertSchemas` into `components.schemas`, and
// `alertTag` into `tags`. It refers to the document's shared `Error` schema and its `Unauthenticated`,
// `Forbidden` and `InternalError` responses.

import type { PathItemObject, ResponseObject, SchemaObject } from '../admin/openapi.ts';

const ref = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });
const ok = (description: string, schema: SchemaObject): ResponseObject => ({ description, content: { 'application/json': { schema } } });
const error = (description: string): ResponseObject => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const guarded = { '401': response('Unauthenticated'), '403': response('Forbidden'), '500': response('InternalError') };

const str: SchemaObject = { type: 'string' };
const nullableStr: SchemaObject = { type: ['string', 'null'] };
const dateTime: SchemaObject = { type: 'string', format: 'date-time' };
const isSet: SchemaObject = { type: 'object', properties: { set: { type: 'boolean' } }, required: ['set'], additionalProperties: false, readOnly: true };
const secretInput = (what: string): SchemaObject => ({
  description: `${what}: a string sets it, null clears it, left out (or the {"set": true} a GET shows) keeps it`,
  anyOf: [{ type: 'string', minLength: 1, maxLength: 1024, writeOnly: true }, { type: 'null' }, { type: 'object', properties: { set: { const: true } }, required: ['set'] }],
});

const KINDS = ['held-run', 'target-parked', 'target-unavailable', 'connector-failing', 'credential-expiry', 'test'];

const webhook = (secret: SchemaObject): SchemaObject => ({
  type: 'object',
  description: 'A POST of JSON `{kind, subject, message, connectorId, details, at, seq, service: "usersync"}` for each alert; any 2xx answer is success (10 s timeout, redirects not followed). With a secret: `X-Usersync-Signature: sha256=<hex HMAC-SHA256 of the raw body>` and `X-Usersync-Timestamp` (Unix seconds).',
  properties: {
    enabled: { type: 'boolean', default: false },
    url: { type: ['string', 'null'], format: 'uri', description: 'http:// or https://, without a user name or password; required when enabled' },
    secret,
  },
  additionalProperties: false,
});

const email = (password: SchemaObject): SchemaObject => ({
  type: 'object',
  description: 'A plain-text e-mail for each alert through an SMTP server, the subject prefixed `[usersync]`.',
  properties: {
    enabled: { type: 'boolean', default: false },
    host: { type: ['string', 'null'], description: 'host name or IP address; required when enabled' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 587 },
    security: { type: 'string', enum: ['tls', 'starttls', 'none'], default: 'starttls', description: '`tls`: TLS from the start (usually port 465); `starttls`: STARTTLS required (usually 587); `none`: no encryption (a local relay; no username then)' },
    username: { type: ['string', 'null'], description: 'authenticate with this username (and the password); null: no authentication' },
    password,
    from: { type: ['string', 'null'], format: 'email', description: 'the sender address; required when enabled' },
    to: { type: 'array', items: { type: 'string', format: 'email' }, maxItems: 50, description: 'recipients; at least one when enabled' },
    caCertificate: { type: ['string', 'null'], description: 'a PEM CA certificate to trust for the SMTP server (an internal CA), besides the usual ones' },
  },
  additionalProperties: false,
});

const rules: SchemaObject = {
  type: 'object',
  properties: {
    failingRuns: { type: 'integer', minimum: 1, maximum: 100, default: 3, description: 'consecutive failed or aborted runs of one connector that raise an alert (once per streak)' },
    credentialExpiryDays: { type: 'integer', minimum: 1, maximum: 365, default: 30, description: 'a Graph client secret or certificate expiring within this many days (or expired) raises an alert' },
  },
  additionalProperties: false,
};

const delivery: SchemaObject = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, at: dateTime, attempts: { type: 'integer' }, error: { type: 'string', description: 'why the last attempt failed, as a sentence' } },
  required: ['ok', 'at', 'attempts'],
};

const channelResult: SchemaObject = {
  description: 'null: the channel is not enabled',
  oneOf: [
    { type: 'object', properties: { ok: { const: true } }, required: ['ok'] },
    { type: 'object', properties: { ok: { const: false }, error: { type: 'string', description: 'what went wrong, as a sentence' } }, required: ['ok', 'error'] },
    { type: 'null' },
  ],
};

export const alertSchemas: Record<string, SchemaObject> = {
  AlertSettings: {
    type: 'object',
    description: 'Where alerts go and when they are raised; secrets are only said to be set.',
    properties: {
      webhook: webhook({ ...isSet, description: 'the signing secret' }),
      email: email({ ...isSet, description: 'the SMTP password' }),
      rules,
    },
    required: ['webhook', 'email', 'rules'],
  },
  AlertSettingsInput: {
    type: 'object',
    description: 'The whole settings: defaults fill what is left out, except the secrets, which are kept when left out.',
    properties: { webhook: webhook(secretInput('the signing secret')), email: email(secretInput('the SMTP password')), rules },
    additionalProperties: false,
  },
  Alert: {
    type: 'object',
    properties: {
      seq: { type: 'integer' },
      at: dateTime,
      kind: { type: 'string', enum: KINDS },
      connectorId: nullableStr,
      subject: str,
      message: str,
      details: { type: 'object', additionalProperties: true, description: 'by kind, e.g. `{runId, held}` for `held-run`, `{credential, expiresAt, daysLeft}` for `credential-expiry`' },
      deliveries: { type: 'object', properties: { webhook: delivery, email: delivery }, description: 'what each channel did; `{}` when no channel was enabled' },
      deliveredAt: { type: ['string', 'null'], format: 'date-time', description: 'when every enabled channel had taken it; null while it is retried, or once given up' },
      nextAttemptAt: { type: ['string', 'null'], format: 'date-time', description: 'the next delivery attempt; null when none is planned' },
      attempts: { type: 'integer' },
    },
    required: ['seq', 'at', 'kind', 'connectorId', 'subject', 'message', 'details', 'deliveries', 'deliveredAt', 'nextAttemptAt', 'attempts'],
  },
};

export const alertTag = { name: 'alerts', description: 'alerts by webhook and e-mail: settings, a test, the history' };

export const alertPaths: Record<string, PathItemObject> = {
  '/api/alerts/settings': {
    get: {
      operationId: 'getAlertSettings',
      summary: 'The alert settings',
      tags: ['alerts'],
      responses: { '200': ok('The settings; secrets only said to be set.', ref('AlertSettings')), ...guarded },
    },
    put: {
      operationId: 'replaceAlertSettings',
      summary: 'Replace the alert settings',
      description: 'Administrators only. Defaults fill what is left out; the secrets left out keep their value. Written to the audit log (the fields changed, never the secrets).',
      tags: ['alerts'],
      requestBody: { required: true, content: { 'application/json': { schema: ref('AlertSettingsInput') } } },
      responses: {
        '200': ok('Saved; secrets only said to be set.', ref('AlertSettings')),
        '400': error("`invalid_settings` (details: every problem with its path, e.g. `email.to[1]`); `invalid_body`: the body is not a JSON object; or Fastify's own code for malformed JSON"),
        ...guarded,
      },
    },
  },
  '/api/alerts/test': {
    post: {
      operationId: 'testAlerts',
      summary: 'Send a test alert to each enabled channel now',
      description: 'Administrators only. A failure is reported in the answer as a sentence, not as an error status. The test is kept in the history (never retried) and written to the audit log.',
      tags: ['alerts'],
      responses: {
        '200': ok('What each channel did.', { type: 'object', properties: { webhook: channelResult, email: channelResult }, required: ['webhook', 'email'] }),
        ...guarded,
      },
    },
  },
  '/api/alerts': {
    get: {
      operationId: 'listAlerts',
      summary: 'The alerts raised, newest first, with their delivery',
      tags: ['alerts'],
      parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } }],
      responses: {
        '200': ok('The alerts.', { type: 'object', properties: { alerts: { type: 'array', items: ref('Alert') } }, required: ['alerts'] }),
        '400': error('`invalid_limit`'),
        ...guarded,
      },
    },
  },
};
