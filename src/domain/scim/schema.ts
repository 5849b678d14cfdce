// SCIM 2.0 core schemas (RFC 7643 §4, §8.7) as data: they drive validation, normalisation,
// filter semantics (caseExact) and the /Schemas discovery endpoint alike.

export type AttributeType =
  | 'string'
  | 'boolean'
  | 'decimal'
  | 'integer'
  | 'dateTime'
  | 'reference'
  | 'complex'
  | 'binary';

export interface AttributeDef {
  name: string;
  type: AttributeType;
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned: 'always' | 'never' | 'default' | 'request';
  uniqueness: 'none' | 'server' | 'global';
  canonicalValues?: string[];
  referenceTypes?: string[];
  subAttributes?: AttributeDef[];
}

export interface SchemaDef {
  id: string;
  name: string;
  description: string;
  attributes: AttributeDef[];
  /** any attribute name (letters, digits, `_`) is a single-valued, case-insensitive string */
  open?: boolean;
}

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
/**
 * Attributes a source reads that SCIM has no name for (a Graph `$select`ed property, an LDAP attribute),
 * under their own names, so that mappings and conditions can use them.
 */
export const SOURCE_USER_SCHEMA = 'urn:usersync:params:scim:schemas:extension:source:2.0:User';
export const LIST_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
/** Entra adds this to group creates; it carries nothing we need, so it is accepted and dropped. */
export const MS_ADSCIM_GROUP_SCHEMA = 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group';

type Opts = Partial<Omit<AttributeDef, 'name' | 'type'>>;

function attr(name: string, type: AttributeType, opts: Opts = {}): AttributeDef {
  return {
    name,
    type,
    multiValued: false,
    description: opts.description ?? name,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...opts,
  };
}

function multiComplex(name: string, subs: AttributeDef[], opts: Opts = {}): AttributeDef {
  return attr(name, 'complex', { multiValued: true, subAttributes: subs, ...opts });
}

/** The value/display/type/primary shape shared by emails, phoneNumbers, ims, photos, roles, … */
function typedValues(name: string, types: string[], valueType: AttributeType = 'string'): AttributeDef {
  return multiComplex(name, [
    attr('value', valueType),
    attr('display', 'string'),
    attr('type', 'string', { canonicalValues: types }),
    attr('primary', 'boolean'),
  ]);
}

export const COMMON_ATTRIBUTES: AttributeDef[] = [
  attr('id', 'string', { caseExact: true, mutability: 'readOnly', returned: 'always', uniqueness: 'server' }),
  attr('externalId', 'string', { caseExact: true }),
];

const userSchema: SchemaDef = {
  id: USER_SCHEMA,
  name: 'User',
  description: 'User Account',
  attributes: [
    attr('userName', 'string', { required: true, uniqueness: 'server', description: 'Unique identifier for the User, typically used to sign in.' }),
    attr('name', 'complex', {
      subAttributes: [
        attr('formatted', 'string'),
        attr('familyName', 'string'),
        attr('givenName', 'string'),
        attr('middleName', 'string'),
        attr('honorificPrefix', 'string'),
        attr('honorificSuffix', 'string'),
      ],
    }),
    attr('displayName', 'string'),
    attr('nickName', 'string'),
    attr('profileUrl', 'reference', { referenceTypes: ['external'] }),
    attr('title', 'string'),
    attr('userType', 'string'),
    attr('preferredLanguage', 'string'),
    attr('locale', 'string'),
    attr('timezone', 'string'),
    attr('active', 'boolean'),
    attr('password', 'string', { mutability: 'writeOnly', returned: 'never' }),
    typedValues('emails', ['work', 'home', 'other']),
    typedValues('phoneNumbers', ['work', 'home', 'mobile', 'fax', 'pager', 'other']),
    typedValues('ims', ['aim', 'gtalk', 'icq', 'xmpp', 'msn', 'skype', 'qq', 'yahoo']),
    typedValues('photos', ['photo', 'thumbnail'], 'reference'),
    multiComplex('addresses', [
      attr('formatted', 'string'),
      attr('streetAddress', 'string'),
      attr('locality', 'string'),
      attr('region', 'string'),
      attr('postalCode', 'string'),
      attr('country', 'string'),
      attr('type', 'string', { canonicalValues: ['work', 'home', 'other'] }),
      attr('primary', 'boolean'),
    ]),
    multiComplex(
      'groups',
      [
        attr('value', 'string', { mutability: 'readOnly' }),
        attr('$ref', 'reference', { mutability: 'readOnly', referenceTypes: ['User', 'Group'], caseExact: true }),
        attr('display', 'string', { mutability: 'readOnly' }),
        attr('type', 'string', { mutability: 'readOnly', canonicalValues: ['direct', 'indirect'] }),
      ],
      { mutability: 'readOnly', returned: 'request' },
    ),
    typedValues('entitlements', []),
    typedValues('roles', []),
    typedValues('x509Certificates', [], 'binary'),
  ],
};

const groupSchema: SchemaDef = {
  id: GROUP_SCHEMA,
  name: 'Group',
  description: 'Group',
  attributes: [
    attr('displayName', 'string', { required: true, uniqueness: 'server', description: 'A human-readable name for the Group.' }),
    multiComplex('members', [
      attr('value', 'string', { mutability: 'immutable', caseExact: true }),
      attr('$ref', 'reference', { mutability: 'immutable', referenceTypes: ['User', 'Group'], caseExact: true }),
      attr('display', 'string', { mutability: 'readOnly' }),
      attr('type', 'string', { mutability: 'immutable', canonicalValues: ['User', 'Group'] }),
    ]),
  ],
};

const enterpriseUserSchema: SchemaDef = {
  id: ENTERPRISE_USER_SCHEMA,
  name: 'EnterpriseUser',
  description: 'Enterprise User',
  attributes: [
    attr('employeeNumber', 'string'),
    attr('costCenter', 'string'),
    attr('organization', 'string'),
    attr('division', 'string'),
    attr('department', 'string'),
    attr('manager', 'complex', {
      subAttributes: [
        attr('value', 'string', { caseExact: true }),
        attr('$ref', 'reference', { referenceTypes: ['User'], caseExact: true }),
        attr('displayName', 'string', { mutability: 'readOnly' }),
      ],
    }),
  ],
};

const sourceUserSchema: SchemaDef = {
  id: SOURCE_USER_SCHEMA,
  name: 'SourceUser',
  description: 'Attributes of the identity provider that SCIM has no name for, under their own names (strings)',
  attributes: [],
  open: true,
};

const OPEN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const openAttributes = new Map<string, AttributeDef>();

/** An attribute of an extension: one it defines, or, in an open extension, any well-formed name. */
export function extensionAttribute(ext: SchemaDef, name: string): AttributeDef | undefined {
  const defined = findByName(ext.attributes, name);
  if (defined || !ext.open || !OPEN_NAME.test(name)) return defined;
  let def = openAttributes.get(name);
  if (!def) {
    def = attr(name, 'string');
    if (openAttributes.size < 10_000) openAttributes.set(name, def);
  }
  return def;
}

export const SCHEMAS: SchemaDef[] = [userSchema, groupSchema, enterpriseUserSchema, sourceUserSchema];

export type ResourceKind = 'User' | 'Group';

export interface ResourceTypeDef {
  kind: ResourceKind;
  endpoint: string;
  core: SchemaDef;
  extensions: SchemaDef[];
}

export const RESOURCE_TYPES: Record<ResourceKind, ResourceTypeDef> = {
  User: { kind: 'User', endpoint: '/Users', core: userSchema, extensions: [enterpriseUserSchema, sourceUserSchema] },
  Group: { kind: 'Group', endpoint: '/Groups', core: groupSchema, extensions: [] },
};

/** meta is described by RFC 7643 §3.1 but not part of any schema resource. */
export const META_ATTRIBUTE: AttributeDef = attr('meta', 'complex', {
  mutability: 'readOnly',
  subAttributes: [
    attr('resourceType', 'string', { mutability: 'readOnly', caseExact: true }),
    attr('created', 'dateTime', { mutability: 'readOnly' }),
    attr('lastModified', 'dateTime', { mutability: 'readOnly' }),
    attr('location', 'reference', { mutability: 'readOnly', caseExact: true }),
    attr('version', 'string', { mutability: 'readOnly', caseExact: true }),
  ],
});

function findByName(list: readonly AttributeDef[] | undefined, name: string): AttributeDef | undefined {
  if (!list) return undefined;
  const lower = name.toLowerCase();
  return list.find((a) => a.name.toLowerCase() === lower);
}

export function subAttribute(def: AttributeDef, name: string): AttributeDef | undefined {
  return findByName(def.subAttributes, name);
}

/** A resolved attribute reference: `urn:…:User:manager.value` → schema enterprise, attribute manager, sub value. */
export interface ResolvedAttribute {
  /** null for the core schema (and common attributes), else the extension's URN */
  extension: string | null;
  def: AttributeDef;
  sub?: AttributeDef;
}

/**
 * Resolve `uri? attr (.sub)?` for a resource type, case-insensitively. `uri` is either the core schema
 * (same as no uri) or one of the type's extensions. Returns undefined when unknown.
 */
export function resolveAttribute(
  type: ResourceTypeDef,
  uri: string | undefined,
  name: string,
  sub?: string,
): ResolvedAttribute | undefined {
  let extension: string | null = null;
  let def: AttributeDef | undefined;
  if (uri === undefined || uri.toLowerCase() === type.core.id.toLowerCase()) {
    def =
      findByName(COMMON_ATTRIBUTES, name) ??
      findByName(type.core.attributes, name) ??
      (name.toLowerCase() === 'meta' ? META_ATTRIBUTE : undefined);
  } else {
    const ext = type.extensions.find((e) => e.id.toLowerCase() === uri.toLowerCase());
    if (!ext) return undefined;
    extension = ext.id;
    def = extensionAttribute(ext, name);
  }
  if (!def) return undefined;
  if (sub === undefined) return { extension, def };
  if (def.type !== 'complex') return undefined;
  const subDef = subAttribute(def, sub);
  if (!subDef) return undefined;
  return { extension, def, sub: subDef };
}

export function extensionFor(type: ResourceTypeDef, uri: string): SchemaDef | undefined {
  return type.extensions.find((e) => e.id.toLowerCase() === uri.toLowerCase());
}

/** Split `urn:a:b:User:manager.value` into uri and the attribute part; plain names have no uri. */
export function splitUri(path: string): { uri?: string; rest: string } {
  if (!/^urn:/i.test(path)) return { rest: path };
  const idx = path.lastIndexOf(':');
  return { uri: path.slice(0, idx), rest: path.slice(idx + 1) };
}

/** The one case folding used everywhere (stored search documents, SQL parameters, in-memory filters). */
export function foldCase(value: string): string {
  return value.toLowerCase();
}
