// The shape of a target's settings and their defaults. Pure and free of Node imports: the admin UI's
// form starts from these same defaults (validation is in settings.ts).

import type { ScheduleSettings } from '../domain/schedule.ts';
import type { TargetKind } from './types.ts';

export type CleanupPolicy = 'deactivate' | 'delete' | 'remove-groups' | 'none';
export type GroupScopeMode = 'all' | 'only' | 'except';

export interface TargetSettings {
  /** see AppConnection.baseUrl */
  baseUrl: string;
  /** token: a Personal Access Token (Data Center) or the directory API key (Cloud); basic: username and password */
  authType: 'token' | 'basic';
  username: string | null;
  /** the token or password; sealed at rest */
  secret?: string;
  caCertificate: string | null;
  timeoutSeconds: number;
  /** tries after the first for 429, 5xx and timeouts */
  retries: number;
  /** requests in flight at once */
  concurrency: number;
  /** rounds a failing change is tried before it is parked */
  maxAttempts: number;
  /** which connectors' users (and groups) it receives */
  connectors: 'all' | string[];
  /** which groups it receives: exact names (any case) or /regular expressions/ */
  groups: { mode: GroupScopeMode; patterns: string[] };
  /** every user, or only members of a group it receives (e.g. Bitbucket for developers only) */
  users: 'all' | 'group-members';
  /** users created by an administrator in usersync (no connector) */
  localUsers: boolean;
  /** a user who leaves the scope, or is deleted in the directory */
  cleanup: CleanupPolicy;
  /** a group that already exists in the application is used (adopted) instead of parked; adopted groups are never deleted */
  adoptExistingGroups: boolean;
  /** Bitbucket cannot deactivate: an inactive user loses its groups (and the licence groups), or is deleted */
  bitbucketInactive: 'remove-groups' | 'delete';
  /** Bitbucket: groups that grant the licence (e.g. stash-users), taken from inactive users although usersync did not add them */
  licenceGroups: string[];
  /** Jira: who takes over the projects and components of a lead who is deactivated or deleted */
  defaultProjectLead: string | null;
  defaultComponentLead: string | null;
  /** Atlassian Cloud: the organisation's verified e-mail domains; other addresses are refused before sending */
  verifiedDomains: string[];
  /** scheduled full comparisons */
  comparisonSchedule: ScheduleSettings;
  /** whether a scheduled comparison repairs what the ledger owns (a comparison on demand chooses) */
  comparisonFix: boolean;
}

export const TARGET_SECRET_FIELD = 'secret';

export function defaultTargetSettings(kind: TargetKind): TargetSettings {
  return {
    baseUrl: kind === 'atlassian-cloud' ? 'https://api.atlassian.com/scim/directory/' : '',
    authType: 'token',
    username: null,
    caCertificate: null,
    timeoutSeconds: 30,
    retries: 4,
    concurrency: 8,
    maxAttempts: 5,
    connectors: 'all',
    groups: { mode: 'all', patterns: [] },
    users: 'all',
    localUsers: true,
    cleanup: kind === 'bitbucket' ? 'remove-groups' : 'deactivate',
    adoptExistingGroups: true,
    bitbucketInactive: 'remove-groups',
    licenceGroups: kind === 'bitbucket' ? ['stash-users'] : [],
    defaultProjectLead: null,
    defaultComponentLead: null,
    verifiedDomains: [],
    comparisonSchedule: { kind: 'off' },
    comparisonFix: true,
  };
}
