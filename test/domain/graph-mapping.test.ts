// The pure parts of the Graph source: settings validation, Graph → SCIM mapping, schedules.

import { describe, expect, it } from 'vitest';
import { nextRun, validateSchedule } from '../../src/domain/schedule.ts';
import { ENTERPRISE_USER_SCHEMA, SOURCE_USER_SCHEMA } from '../../src/domain/scim/schema.ts';
import { SettingsError } from '../../src/domain/settings-validate.ts';
import type { GraphSourceSettings } from '../../src/sources/graph/config.ts';
import { readKey, redactGraphSource, userSelect, validateGraphSource } from '../../src/sources/graph/config.ts';
import { externalAddress, mapGroup, mapUser } from '../../src/sources/graph/map.ts';

const TENANT = '4c3b1a2d-0000-4000-8000-000000000001';
const CLIENT = '4c3b1a2d-0000-4000-8000-000000000002';
const base = (extra: Record<string, unknown> = {}): GraphSourceSettings => validateGraphSource({ tenantId: TENANT, clientId: CLIENT, clientSecret: 's3cret', ...extra });

function issues(input: unknown): string[] {
  try {
    validateGraphSource(input);
  } catch (e) {
    if (e instanceof SettingsError) return e.errors.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

describe('Graph source settings', () => {
  it('fills defaults: whole directory, flattened nesting, userPrincipalName, every 15 minutes, a full read daily', () => {
    const s = base();
    expect(s).toMatchObject({ scope: 'directory', nestedGroups: 'flatten', usernameAttribute: 'userPrincipalName', guests: 'include', schedule: { kind: 'interval', minutes: 15 }, fullSyncHours: 24, concurrency: 4, cloud: 'global' });
  });

  it('names every problem with its path', () => {
    expect(issues({ tenantId: 'x y', clientId: 'nope', credential: 'password', cloud: 'mars', extraAttributes: ['ok', 'not ok'], unknown: 1 })).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^tenantId: /),
        expect.stringMatching(/^clientId: /),
        expect.stringMatching(/^credential: /),
        expect.stringMatching(/^cloud: /),
        expect.stringMatching(/^extraAttributes\[1\]: /),
        "unknown: unknown setting 'unknown'",
      ]),
    );
    expect(issues({ tenantId: TENANT, clientId: CLIENT, clientSecret: 'x', scope: 'groups' })).toEqual(["groups: the 'groups' scope needs at least one group"]);
    expect(issues({ tenantId: TENANT, clientId: CLIENT, clientSecret: 'x', cloud: 'custom', authorityHost: 'http://login.example' })).toEqual(['authorityHost: must be an https:// URL', 'graphUrl: is required']);
    expect(issues('text')).toEqual([': the source settings must be a JSON object']);
  });

  it('accepts a tenant domain, and keeps a stored secret when an update leaves it out', () => {
    const first = base({ tenantId: 'contoso.onmicrosoft.com' });
    const next = validateGraphSource({ tenantId: 'contoso.onmicrosoft.com', clientId: CLIENT, guests: 'exclude' }, first);
    expect(next.clientSecret).toBe('s3cret');
    expect(next.guests).toBe('exclude');
  });

  it('shows secrets only as set', () => {
    const shown = redactGraphSource(base());
    expect(shown.clientSecret).toEqual({ set: true });
    expect(JSON.stringify(shown)).not.toContain('s3cret');
  });

  it('selects the username attribute and the extra attributes; what is read changes the read key', () => {
    const s = base({ usernameAttribute: 'employeeId', extraAttributes: ['officeLocation', 'extension_abc_costCenter'] });
    expect(userSelect(s)).toEqual(expect.arrayContaining(['id', 'accountEnabled', 'employeeId', 'officeLocation', 'extension_abc_costCenter']));
    expect(readKey(s)).not.toBe(readKey(base()));
    expect(readKey(base({ schedule: { kind: 'off' } }))).toBe(readKey(base())); // the schedule does not change what is read
  });
});

describe('Graph users and groups as SCIM documents', () => {
  const s = base({ extraAttributes: ['officeLocation'] });

  it('maps the properties SCIM has names for, and keeps the others under the source extension', () => {
    const m = mapUser(
      {
        id: 'u1',
        userPrincipalName: 'ada@contoso.com',
        mail: 'ada.lovelace@contoso.com',
        displayName: 'Ada Lovelace',
        givenName: 'Ada',
        surname: 'Lovelace',
        accountEnabled: false,
        employeeId: 'E1',
        department: 'Maths',
        jobTitle: 'Analyst',
        businessPhones: ['+44 1'],
        mobilePhone: null,
        officeLocation: 'B7',
        userType: 'Member',
      },
      s,
    );
    expect('doc' in m).toBe(true);
    if (!('doc' in m)) return;
    expect(m.doc).toMatchObject({
      userName: 'ada@contoso.com',
      displayName: 'Ada Lovelace',
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      emails: [{ value: 'ada.lovelace@contoso.com', type: 'work', primary: true }],
      phoneNumbers: [{ value: '+44 1', type: 'work' }],
      title: 'Analyst',
      active: false,
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: 'E1', department: 'Maths' },
      [SOURCE_USER_SCHEMA]: { userPrincipalName: 'ada@contoso.com', officeLocation: 'B7', userType: 'Member' },
    });
    expect(m.doc.schemas).toEqual(expect.arrayContaining([ENTERPRISE_USER_SCHEMA, SOURCE_USER_SCHEMA]));
  });

  it('a guest is named by its own address; guests can be left out; a user without the username attribute is skipped', () => {
    expect(externalAddress('ann_fabrikam.com#EXT#@contoso.onmicrosoft.com')).toBe('ann@fabrikam.com');
    expect(externalAddress('bob@contoso.com')).toBeUndefined();
    const guest = { id: 'g', userPrincipalName: 'ann_fabrikam.com#EXT#@contoso.onmicrosoft.com', userType: 'Guest', mail: null };
    const m = mapUser(guest, s);
    expect('doc' in m && m.doc.userName).toBe('ann@fabrikam.com');
    expect(mapUser(guest, base({ guests: 'exclude' }))).toMatchObject({ skip: 'guest' });
    expect(mapUser({ id: 'x', userPrincipalName: 'x@contoso.com' }, base({ usernameAttribute: 'onPremisesSamAccountName' }))).toMatchObject({ skip: 'no-username' });
  });

  it('an account Graph does not call disabled is active; a group needs a name', () => {
    const m = mapUser({ id: 'u', userPrincipalName: 'u@contoso.com' }, s);
    expect('doc' in m && m.doc.active).toBe(true);
    expect(mapGroup({ id: 'g', displayName: 'Team' })).toMatchObject({ displayName: 'Team' });
    expect(mapGroup({ id: 'g', displayName: null })).toBeUndefined();
  });
});

describe('schedules', () => {
  it('validates interval and cron schedules with a clear message', () => {
    expect(validateSchedule({ kind: 'interval', minutes: 10 })).toEqual({ kind: 'interval', minutes: 10 });
    expect(validateSchedule(null)).toEqual({ kind: 'off' });
    expect(() => validateSchedule({ kind: 'interval', minutes: 0 })).toThrow(/1 to 10080/);
    expect(() => validateSchedule({ kind: 'cron', expression: '61 * * * *' })).toThrow(/not valid/);
    expect(() => validateSchedule({ kind: 'cron', expression: '* * *' })).toThrow(/five fields/);
    expect(() => validateSchedule({ kind: 'cron', expression: '0 * * * *', timezone: 'Mars/Olympus' })).toThrow(/unknown time zone/);
  });

  it('computes the next run from the last start', () => {
    const at = new Date('2026-11-22T10:07:00Z');
    expect(nextRun({ kind: 'interval', minutes: 15 }, null, at)).toEqual(at);
    expect(nextRun({ kind: 'interval', minutes: 15 }, new Date('2026-11-22T10:00:00Z'), at)).toEqual(new Date('2026-11-22T10:15:00Z'));
    expect(nextRun({ kind: 'cron', expression: '*/10 * * * *' }, new Date('2026-11-22T10:00:30Z'), at)).toEqual(new Date('2026-11-22T10:10:00Z'));
    // 02:00 in Berlin is 01:00 UTC in winter
    expect(nextRun({ kind: 'cron', expression: '0 2 * * *', timezone: 'Europe/Berlin' }, new Date('2026-11-22T10:00:00Z'), at)).toEqual(new Date('2026-11-23T01:00:00Z'));
    expect(nextRun({ kind: 'off' }, null, at)).toBeNull();
  });
});
