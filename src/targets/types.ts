// What a target application can do, as one small interface per application kind. The delivery engine
// (src/targets/delivery.ts) decides what to change; an application client only speaks its REST API.
// Every client method either succeeds or throws a TargetError whose `code` the engine acts on.

export type TargetKind = 'jira' | 'confluence' | 'bitbucket' | 'atlassian-cloud';

export const TARGET_KINDS: readonly TargetKind[] = ['jira', 'confluence', 'bitbucket', 'atlassian-cloud'];

/** A user as the application has it. */
export interface AppUser {
  /** the username (Cloud SCIM: userName) */
  name: string;
  email: string | null;
  displayName: string;
  active: boolean;
  /** the application's own id where it has one that calls need (Cloud SCIM id, Jira key, Bitbucket id) */
  id?: string;
}

export interface AppGroup {
  name: string;
  /** Cloud SCIM group id; the Data Center products address groups by name */
  id?: string;
}

/** A user as the directory wants it in the application. */
export interface WantedUser {
  name: string;
  email: string | null;
  displayName: string;
  active: boolean;
  /** the directory user's id (Cloud SCIM externalId) */
  directoryId: string;
  givenName?: string;
  familyName?: string;
}

export type TargetErrorCode =
  /** the user, group or membership already exists */
  | 'exists'
  | 'not-found'
  /** no licence seat left (Confluence 402, Bitbucket 403 on a licensed group, Jira's licence messages) */
  | 'licence'
  /** the application refused the values (400), e.g. an invalid username */
  | 'invalid'
  /** the credentials were refused (401) */
  | 'auth'
  /** the credentials lack a permission (403) */
  | 'forbidden'
  /** the application cannot do this at all (e.g. Confluence has no rename) */
  | 'unsupported'
  /** 409 other than "exists", e.g. deleting oneself */
  | 'conflict'
  /** 429 after the retries */
  | 'throttled'
  /** 5xx, timeouts, refused or dropped connections after the retries */
  | 'unavailable'
  | 'failed';

export class TargetError extends Error {
  constructor(
    readonly code: TargetErrorCode,
    message: string,
    readonly status?: number,
    /** from Retry-After, when the application sent one */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TargetError';
  }

  /** whether the whole application is the problem (so no one change is to blame) */
  get appWide(): boolean {
    return this.code === 'auth' || this.code === 'throttled' || this.code === 'unavailable';
  }
}

export interface TargetCheck {
  name: string;
  ok: boolean;
  message: string;
}

/**
 * One application's user directory. Methods are idempotent where the application allows it:
 * adding an existing membership or removing a missing one succeeds.
 */
export interface TargetApp {
  readonly kind: TargetKind;

  /** reach the application, check the credentials and the admin permission */
  test(): Promise<TargetCheck[]>;

  // Reads, for the full comparison. Pages are yielded as they arrive.
  listUsers(): AsyncIterable<AppUser[]>;
  listGroups(): AsyncIterable<AppGroup[]>;
  /** usernames of the group's direct members, inactive ones included */
  listMembers(group: AppGroup): AsyncIterable<string[]>;
  getUser(name: string): Promise<AppUser | undefined>;

  // Writes.
  /** 'exists' when the username is taken; people sign in through SSO, so no usable password is set */
  createUser(user: WantedUser): Promise<AppUser>;
  /** change e-mail, display name and, where the application can, the username (`user.name` ≠ `current.name`) */
  updateUser(current: AppUser, user: WantedUser): Promise<AppUser>;
  /** 'unsupported' on Bitbucket, which has no deactivation */
  setActive(user: AppUser, active: boolean): Promise<void>;
  deleteUser(user: AppUser): Promise<void>;
  /** 'exists' when the name is taken */
  createGroup(name: string): Promise<AppGroup>;
  deleteGroup(group: AppGroup): Promise<void>;
  addMembers(user: AppUser, groups: AppGroup[]): Promise<void>;
  removeMembers(user: AppUser, groups: AppGroup[]): Promise<void>;

  /**
   * Jira: hand the projects and components a user leads to the configured default leads, before the
   * user is deactivated or deleted. Returns a sentence per item handed over.
   */
  handOverLeads?(user: AppUser): Promise<string[]>;

  close?(): Promise<void>;
}

export type TargetAuth = { type: 'token'; token: string } | { type: 'basic'; username: string; password: string };

/** How to reach one application; secrets already opened. */
export interface AppConnection {
  /**
   * Jira and Bitbucket: the base URL (`https://jira.example.com`, or with a context path);
   * Confluence: the base URL with its context path (`https://wiki.example.com/confluence`);
   * Atlassian Cloud: the SCIM directory URL (`https://api.atlassian.com/scim/directory/<directoryId>`).
   */
  baseUrl: string;
  auth: TargetAuth;
  /** per request; a request that takes longer is a timeout (retried) */
  timeoutMs: number;
  /** tries after the first for 429, 5xx, timeouts and dropped connections */
  retries: number;
  /** the longest single wait between tries, Retry-After included */
  maxRetryWaitMs: number;
  /** PEM of a CA to trust for an application with an internal certificate */
  caCertificate?: string;
  /** Jira: who takes over the projects and components of a deactivated or deleted lead */
  defaultProjectLead?: string;
  defaultComponentLead?: string;
}
