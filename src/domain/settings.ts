// A connector's user sync and group sync settings (its rules) and its safety limits, as stored with the
// connector. Validation lives in settings-validate.ts; evaluation in rules.ts.

/** A value taken from the source record and transformed. */
export interface AttributeMapping {
  /**
   * SCIM attribute path in the mirror record: `userName`, `name.givenName`, `emails[type eq "work"].value`,
   * `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`. Optional when the first
   * transform is a template.
   */
  source?: string;
  /** applied in order */
  transforms?: Transform[];
}

export type Transform =
  /** JavaScript regular expression; `$1`… in the replacement refer to capture groups */
  | { fn: 'regexReplace'; pattern: string; replacement: string; flags?: string }
  | { fn: 'lower' }
  | { fn: 'upper' }
  | { fn: 'trim' }
  /** `${name.givenName} ${name.familyName}`; `${value}` is the current value */
  | { fn: 'template'; template: string }
  /** keep the current value unless it is empty; otherwise the first non-empty of these paths */
  | { fn: 'firstNonEmpty'; sources: string[] };

export interface CustomAttribute {
  name: string;
  mapping: AttributeMapping;
}

export type CleanupBehaviour = 'deactivate' | 'delete' | 'leave';

export interface UserSyncSettings {
  operations: { create: boolean; update: boolean; activate: boolean; deactivate: boolean };
  username: AttributeMapping;
  email: AttributeMapping;
  displayName: AttributeMapping;
  /** SCIM filter: users that do not match are left out (and get the cleanup behaviour); empty: all */
  condition: string;
  customAttributes: CustomAttribute[];
  /** adopt an existing local user with the same username (keeping its groups and attributes) */
  copyBehaviour: boolean;
  /** for users deleted in the provider, out of scope, or left out by the condition */
  cleanup: CleanupBehaviour;
}

export interface ManualMapping {
  /** the provider group's displayName (case-insensitive) */
  source: string;
  targets: string[];
}

export interface LicenceGroup {
  /** directory group name (case-insensitive) */
  group: string;
  seats: number;
}

export interface GroupSyncSettings {
  /** groups given to users when they are created (not re-applied) */
  defaultGroups: string[];
  /** groups every synced user is in, re-applied on every run */
  alwaysGroups: string[];
  mode: 'onTheFly' | 'manual';
  /** on-the-fly only: optional regex rename of provider group names */
  rename: { pattern: string; replacement: string } | null;
  /** manual only */
  manualMappings: ManualMapping[];
  /** create mapped groups even when they have no members */
  createEmptyGroups: boolean;
  /** regexes on the directory group name (whole-name, case-insensitive): only these are assigned */
  onlyAssign: string[];
  /** regexes: never assigned (applied after onlyAssign) */
  neverAssign: string[];
  /** regexes: memberships in these groups are never removed */
  neverRemove: string[];
  /** keepUnmanaged: leave memberships the provider does not manage; sourceOfTruth: remove them */
  membershipAuthority: 'keepUnmanaged' | 'sourceOfTruth';
  /** delete a group this connector created once the provider deleted it and it has no members */
  deleteEmptyManagedGroups: boolean;
  licences: LicenceGroup[];
}

export interface SafetySettings {
  /** hold deactivations and deletions of a run above either limit (null: no limit) */
  deletionLimit: { count: number | null; percent: number | null };
}

export interface ConnectorSettings {
  user: UserSyncSettings;
  group: GroupSyncSettings;
  safety: SafetySettings;
}

export const DEFAULT_SETTINGS: ConnectorSettings = {
  user: {
    operations: { create: true, update: true, activate: true, deactivate: true },
    username: { source: 'userName' },
    email: { source: 'emails[type eq "work"].value', transforms: [{ fn: 'firstNonEmpty', sources: ['emails[primary eq true].value', 'emails.value'] }] },
    displayName: { source: 'displayName', transforms: [{ fn: 'firstNonEmpty', sources: ['name.formatted'] }, { fn: 'firstNonEmpty', sources: ['${name.givenName} ${name.familyName}'] }] },
    condition: '',
    customAttributes: [],
    copyBehaviour: false,
    cleanup: 'deactivate',
  },
  group: {
    defaultGroups: [],
    alwaysGroups: [],
    mode: 'onTheFly',
    rename: null,
    manualMappings: [],
    createEmptyGroups: true,
    onlyAssign: [],
    neverAssign: [],
    neverRemove: [],
    membershipAuthority: 'keepUnmanaged',
    deleteEmptyManagedGroups: false,
    licences: [],
  },
  safety: { deletionLimit: { count: null, percent: null } },
};
