// RFC 7643 §5–§7 discovery documents, generated from the schema definitions.

import type { AttributeDef, ResourceTypeDef, SchemaDef } from '../../domain/scim/schema.ts';
import { LIST_RESPONSE_SCHEMA, RESOURCE_TYPES, SCHEMAS } from '../../domain/scim/schema.ts';

export const MAX_RESULTS = 1000;

export function serviceProviderConfig(base: string): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    documentationUri: 'https://datatracker.ietf.org/doc/html/rfc7644',
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'Authentication with the connector\'s bearer token (Authorization: Bearer <token>)',
        specUri: 'https://datatracker.ietf.org/doc/html/rfc6750',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

export function resourceType(t: ResourceTypeDef, base: string): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    id: t.kind,
    name: t.kind,
    endpoint: t.endpoint,
    description: t.core.description,
    schema: t.core.id,
    schemaExtensions: t.extensions.map((e) => ({ schema: e.id, required: false })),
    meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/${t.kind}` },
  };
}

function attributeJson(a: AttributeDef): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: a.name,
    type: a.type,
    multiValued: a.multiValued,
    description: a.description,
    required: a.required,
    caseExact: a.caseExact,
    mutability: a.mutability,
    returned: a.returned,
    uniqueness: a.uniqueness,
  };
  if (a.canonicalValues?.length) out.canonicalValues = a.canonicalValues;
  if (a.referenceTypes?.length) out.referenceTypes = a.referenceTypes;
  if (a.subAttributes) out.subAttributes = a.subAttributes.map(attributeJson);
  return out;
}

export function schemaJson(s: SchemaDef, base: string): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id: s.id,
    name: s.name,
    description: s.description,
    attributes: s.attributes.map(attributeJson),
    meta: { resourceType: 'Schema', location: `${base}/Schemas/${s.id}` },
  };
}

export function listResponse(resources: unknown[], total = resources.length, startIndex = 1): Record<string, unknown> {
  return { schemas: [LIST_RESPONSE_SCHEMA], totalResults: total, Resources: resources, startIndex, itemsPerPage: resources.length };
}

export const allResourceTypes = (base: string) => Object.values(RESOURCE_TYPES).map((t) => resourceType(t, base));
export const allSchemas = (base: string) => SCHEMAS.map((s) => schemaJson(s, base));
