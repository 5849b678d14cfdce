// Helpers shared by the settings of sources and alert channels (flat fields, PEM certificates), and the
// validation of a connector's settings (user sync, group sync, safety), which lives in settings-check.ts
// (pure, so that the admin UI can run it too) and is re-exported from here.

import { X509Certificate } from 'node:crypto';

export type { SettingsIssue } from './settings-check.ts';
export { SettingsError, settingsPatch, validateSettings } from './settings-check.ts';

/**
 * Readers for the flat fields of a source's settings (`merged`: defaults, stored and input together), each
 * reporting its problem through `bad` and answering a usable value, so that every problem is found in one
 * pass.
 */
export function fieldReaders(merged: Record<string, unknown>, bad: (path: string, message: string) => void) {
  return {
    /** a trimmed string; undefined when absent (reported when required) or not a string */
    str(k: string, required: boolean): string | undefined {
      const v = merged[k];
      if (v === undefined || v === null || v === '') {
        if (required) bad(k, 'is required');
        return undefined;
      }
      if (typeof v !== 'string') {
        bad(k, 'must be a string');
        return undefined;
      }
      if (v.includes('\u0000')) {
        bad(k, 'must not contain NUL characters');
        return undefined;
      }
      return v.trim();
    },
    oneOf<T extends string>(k: string, values: readonly T[]): T {
      const v = merged[k];
      if (typeof v !== 'string' || !values.includes(v as T)) {
        bad(k, `must be one of ${values.map((x) => `'${x}'`).join(', ')}`);
        return values[0]!;
      }
      return v as T;
    },
  };
}

/** A PEM certificate Node can read. */
export function isPemCertificate(value: string): boolean {
  try {
    new X509Certificate(value);
    return true;
  } catch {
    return false;
  }
}
