// The two presets of an LDAP connector, Active Directory and OpenLDAP: the filters, attribute names and
// rules that choosing one fills in (config.ts completes and validates the settings from them). Pure data
// with no imports, so that the admin UI's LDAP form offers exactly these values.

export type LdapPreset = 'activeDirectory' | 'openldap';

export interface LdapAttributeNames {
  /** the immutable id: the mirror id (objectGUID, entryUUID, nsUniqueId, …) */
  id: string;
  username: string;
  email: string;
  displayName: string;
  givenName: string;
  familyName: string;
  employeeNumber: string;
  title: string;
  department: string;
  groupName: string;
  /** on a group: its members' DNs */
  member: string;
  /** on a user or group: the DNs of the groups it is a member of */
  memberOf: string;
}

export interface DisabledRule {
  attribute: string;
  /** bit: the value's bits include `value` (userAccountControl 2); present: any value; equals: a value equals `value` */
  match: 'bit' | 'present' | 'equals';
  value: string | null;
}

/** The settings a preset fills in (see LdapSourceSettings in config.ts for what each means). */
export interface LdapPresetFields {
  userFilter: string;
  groupFilter: string;
  attributes: LdapAttributeNames;
  nestedMethod: 'inChain' | 'client';
  disabled: DisabledRule | null;
  changeTracking: 'usn' | 'modifyTimestamp' | 'none';
  pageSize: number;
  rangeSize: number | null;
}

export const AD_ATTRIBUTES: LdapAttributeNames = {
  id: 'objectGUID',
  username: 'sAMAccountName',
  email: 'mail',
  displayName: 'displayName',
  givenName: 'givenName',
  familyName: 'sn',
  employeeNumber: 'employeeID',
  title: 'title',
  department: 'department',
  groupName: 'cn',
  member: 'member',
  memberOf: 'memberOf',
};

export const OPENLDAP_ATTRIBUTES: LdapAttributeNames = {
  id: 'entryUUID',
  username: 'uid',
  email: 'mail',
  displayName: 'displayName',
  givenName: 'givenName',
  familyName: 'sn',
  employeeNumber: 'employeeNumber',
  title: 'title',
  department: 'departmentNumber',
  groupName: 'cn',
  member: 'member',
  memberOf: 'memberOf',
};

export const LDAP_PRESETS: Record<LdapPreset, LdapPresetFields> = {
  activeDirectory: {
    // objectClass=user alone also matches computers
    userFilter: '(&(objectCategory=person)(objectClass=user))',
    groupFilter: '(objectClass=group)',
    attributes: AD_ATTRIBUTES,
    nestedMethod: 'inChain',
    disabled: { attribute: 'userAccountControl', match: 'bit', value: '2' },
    changeTracking: 'usn',
    pageSize: 500,
    rangeSize: null,
  },
  openldap: {
    userFilter: '(objectClass=inetOrgPerson)',
    groupFilter: '(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))',
    attributes: OPENLDAP_ATTRIBUTES,
    nestedMethod: 'client',
    // the ppolicy overlay's lock; 000001010000Z means locked for good
    disabled: { attribute: 'pwdAccountLockedTime', match: 'present', value: null },
    changeTracking: 'modifyTimestamp',
    pageSize: 500,
    rangeSize: null,
  },
};
