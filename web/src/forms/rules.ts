// What the page can check and show of the rules without asking the service, with the service's own code
// (pure, bundled into the page): the settings validation of src/domain/settings-check.ts and the group
// mapping of src/domain/rules.ts (whole names, case-insensitive). The service checks everything again when
// saving.

import { groupTargets, isNeverRemove, wholeNameRegex } from '../../../src/domain/rules.ts';
import { SettingsError, validateSettings } from '../../../src/domain/settings-check.ts';
import type { ConnectorSettings, GroupSyncSettings, SettingsIssue } from '../api.ts';

export { wholeNameRegex };

/** The problem with a group-name pattern, or undefined (as the service checks onlyAssign and the like). */
export function patternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'a pattern cannot be empty';
  try {
    wholeNameRegex(pattern);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

export interface GroupOutcome {
  /** the provider group's name */
  name: string;
  /** directory groups it feeds */
  targets: string[];
  /** names left out, and why */
  excluded: { name: string; reason: string }[];
  /** directory groups whose memberships are never removed */
  neverRemove: string[];
  /** why the settings cannot be applied yet (a pattern that is not a valid regular expression) */
  problem?: string;
}

/** What the group settings do with one provider group (groupTargets of the service). */
export function groupOutcome(settings: GroupSyncSettings, providerGroupName: string): GroupOutcome {
  try {
    const { targets, excluded } = groupTargets(settings, providerGroupName);
    return { name: providerGroupName, targets, excluded, neverRemove: targets.filter((t) => isNeverRemove(settings, t)) };
  } catch (e) {
    return { name: providerGroupName, targets: [], excluded: [], neverRemove: [], problem: (e as Error).message };
  }
}

/**
 * The problems of the settings being edited, with the paths and messages the service would answer; none
 * when the check itself fails (the service then has the last word).
 */
export function localIssues(s: ConnectorSettings): SettingsIssue[] {
  try {
    validateSettings(s);
    return [];
  } catch (e) {
    return e instanceof SettingsError ? e.errors : [];
  }
}
