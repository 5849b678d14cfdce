// Which directory users and groups a target receives, and whether the application will accept a user as
// it is. Pure: the delivery, the full comparison and the preview all decide with these.

import type { TargetSettings } from './settings.ts';
import type { DirectoryGroupView, DirectoryUserView } from '../store/targets.ts';
import type { TargetKind, WantedUser } from './types.ts';

export type { DirectoryGroupView, DirectoryUserView };

type ScopeSettings = Pick<TargetSettings, 'connectors' | 'groups' | 'users' | 'localUsers'>;

const regexCache = new Map<string, RegExp>();

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.length > 2 && pattern.startsWith('/') && pattern.endsWith('/')) {
    let re = regexCache.get(pattern);
    if (!re) {
      re = new RegExp(pattern.slice(1, -1), 'iu');
      if (regexCache.size > 1000) regexCache.clear();
      regexCache.set(pattern, re);
    }
    return re.test(name);
  }
  return pattern.toLowerCase() === name.toLowerCase();
}

function connectorChosen(s: ScopeSettings, owner: string | null): boolean {
  if (owner === null) return true;
  return s.connectors === 'all' || s.connectors.includes(owner);
}

export function groupInScope(s: ScopeSettings, g: DirectoryGroupView): boolean {
  if (!connectorChosen(s, g.ownerConnectorId)) return false;
  if (s.groups.mode === 'all') return true;
  const hit = s.groups.patterns.some((p) => patternMatches(p, g.name));
  return s.groups.mode === 'only' ? hit : !hit;
}

/** Why a user is not delivered (undefined: it is). `groupsInScope`: how many of its groups the target receives. */
export function userOutOfScope(s: ScopeSettings, u: DirectoryUserView | undefined, groupsInScope: number): string | undefined {
  if (!u) return 'deleted in the directory';
  if (!u.inScope) return "out of its connector's scope";
  if (u.ownerConnectorId === null && !s.localUsers) return 'a local user, and this target does not receive local users';
  if (!connectorChosen(s, u.ownerConnectorId)) return 'its connector is not delivered to this target';
  if (s.users === 'group-members' && groupsInScope === 0) return 'not a member of any group this target receives';
  return undefined;
}

export function wantedUser(u: DirectoryUserView): WantedUser {
  const a = u.attributes;
  return {
    name: u.username,
    email: u.email,
    displayName: u.displayName || u.username,
    active: u.active,
    directoryId: u.id,
    ...(a.givenName ? { givenName: a.givenName } : {}),
    ...(a.familyName ? { familyName: a.familyName } : {}),
  };
}

const KIND_NAMES: Record<TargetKind, string> = { jira: 'Jira', confluence: 'Confluence', bitbucket: 'Bitbucket', 'atlassian-cloud': 'Atlassian Cloud' };

export function kindName(kind: TargetKind): string {
  return KIND_NAMES[kind];
}

const CONFLUENCE_FORBIDDEN = /[\\,+<>'"]/;

/**
 * What the application would refuse about this user, as a sentence (undefined: nothing). Checked before
 * sending, and in the preview of a connector's settings.
 */
export function userProblem(kind: TargetKind, s: Pick<TargetSettings, 'verifiedDomains'>, u: Pick<WantedUser, 'name' | 'email'>): string | undefined {
  const app = KIND_NAMES[kind];
  if (!u.name.trim()) return `${app} needs a username`;
  if (u.name.length > 255) return `the username is longer than the 255 characters ${app} allows`;
  if (!u.email) return `${app} needs an e-mail address and '${u.name}' has none`;
  if (!/^[^@\s]+@[^@\s]+$/.test(u.email)) return `'${u.email}' is not an e-mail address ${app} accepts`;
  if (kind === 'confluence') {
    if (u.name !== u.name.toLowerCase()) return `Confluence usernames must be lowercase; '${u.name}' is not (add a lowercase transform to the username)`;
    if (/\s/.test(u.name)) return `Confluence usernames must not contain spaces; '${u.name}' does`;
    if (CONFLUENCE_FORBIDDEN.test(u.name)) return `Confluence usernames must not contain \\ , + < > ' or "; '${u.name}' does`;
    if (u.name === 'anonymous') return "'anonymous' is reserved in Confluence";
  }
  if (kind === 'atlassian-cloud') {
    const domain = u.email.slice(u.email.lastIndexOf('@') + 1).toLowerCase();
    if (!s.verifiedDomains.includes(domain)) return `${u.email} is not on a verified domain of the Atlassian organisation (${s.verifiedDomains.join(', ') || 'none listed'})`;
  }
  return undefined;
}
