// Rules: pure functions from mirror records (SCIM-shaped, for every kind of source) to the desired
// directory state. These are the defaults; the user and group sync settings refine them.

import { workEmail } from './scim/resource.ts';
import type { ScimDoc } from './scim/resource.ts';
import { foldCase } from './scim/schema.ts';

export interface DesiredUser {
  username: string;
  email: string | null;
  displayName: string;
  active: boolean;
  attributes: Record<string, string>;
}

export interface DesiredGroup {
  name: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

/** userName → username, work e-mail → email, displayName or name.formatted → display name, active → active. */
export function defaultUserRule(doc: ScimDoc): DesiredUser {
  const name = (doc.name ?? {}) as Record<string, unknown>;
  const username = String(doc.userName);
  const given = [str(name.givenName), str(name.familyName)].filter(Boolean).join(' ');
  return {
    username,
    email: workEmail(doc) ?? null,
    displayName: str(doc.displayName) ?? str(name.formatted) ?? (given || username),
    active: doc.active !== false,
    attributes: {},
  };
}

/** Groups as sent: the provider group becomes the directory group of the same name. */
export function defaultGroupRule(doc: ScimDoc): DesiredGroup {
  return { name: String(doc.displayName) };
}

/** The key that makes directory usernames and group names unique regardless of case. */
export const directoryKey = foldCase;

export type UserField = 'username' | 'email' | 'displayName' | 'active' | 'attributes';

/** Field-level differences between the directory's current user and the desired one. */
export function userDiff(current: DesiredUser, desired: DesiredUser): Partial<Record<UserField, { from: unknown; to: unknown }>> {
  const diff: Partial<Record<UserField, { from: unknown; to: unknown }>> = {};
  if (current.username !== desired.username) diff.username = { from: current.username, to: desired.username };
  if (current.email !== desired.email) diff.email = { from: current.email, to: desired.email };
  if (current.displayName !== desired.displayName) diff.displayName = { from: current.displayName, to: desired.displayName };
  if (current.active !== desired.active) diff.active = { from: current.active, to: desired.active };
  if (JSON.stringify(current.attributes) !== JSON.stringify(desired.attributes)) diff.attributes = { from: current.attributes, to: desired.attributes };
  return diff;
}
