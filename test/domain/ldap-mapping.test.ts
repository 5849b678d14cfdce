// LDAP settings and mapping as pure functions: presets and validation, objectGUID and SID conversion, DN
// comparison, ranged attribute names, disabled-account rules, entries to SCIM records, and what the rules
// make of one user (the test user search).

import { describe, expect, it } from 'vitest';
import type { SettingsError } from '../../src/domain/settings-validate.ts';
import { DEFAULT_SETTINGS } from '../../src/domain/settings.ts';
import { previewUser } from '../../src/domain/rules.ts';
import { readKey, redactLdapSource, validateLdapSource } from '../../src/sources/ldap/config.ts';
import { dnKey, guidToString, isDisabled, mapGroup, mapUser, parseRange, sidToString, toEntry } from '../../src/sources/ldap/map.ts';
import { escapeValue } from '../../src/sources/ldap/source.ts';

const AD = { url: 'ldaps://dc1.corp.example:636', bindDn: 'CN=sync,OU=Service,DC=corp,DC=example', bindPassword: 'pw', baseDn: 'DC=corp,DC=example' };

function issues(input: unknown, previous?: Parameters<typeof validateLdapSource>[1]): string[] {
  try {
    validateLdapSource(input, previous);
    return [];
  } catch (e) {
    return (e as SettingsError).errors.map((i) => `${i.path}: ${i.message}`);
  }
}

describe('LDAP settings', () => {
  it('fills Active Directory defaults from the preset', () => {
    const s = validateLdapSource(AD);
    expect(s).toMatchObject({
      preset: 'activeDirectory',
      userFilter: '(&(objectCategory=person)(objectClass=user))',
      attributes: { id: 'objectGUID', username: 'sAMAccountName', employeeNumber: 'employeeID' },
      disabled: { attribute: 'userAccountControl', match: 'bit', value: '2' },
      changeTracking: 'usn',
      nestedMethod: 'inChain',
      membership: 'member',
      nestedGroups: 'flatten',
    });
  });

  it('fills OpenLDAP defaults, and a change of preset starts the attribute names afresh but keeps the password', () => {
    const ad = validateLdapSource({ ...AD, attributes: { username: 'userPrincipalName' } });
    expect(ad.attributes.username).toBe('userPrincipalName');
    const ol = validateLdapSource({ preset: 'openldap', url: 'ldap://ldap.example:389', baseDn: 'dc=example,dc=com' }, ad);
    expect(ol.attributes).toMatchObject({ id: 'entryUUID', username: 'uid' });
    expect(ol.bindPassword).toBe('pw');
    expect(ol.changeTracking).toBe('modifyTimestamp');
    expect(ol.disabled).toEqual({ attribute: 'pwdAccountLockedTime', match: 'present', value: null });
  });

  it('names every problem with its path', () => {
    expect(
      issues({ url: 'https://dc1', bindDn: '', baseDn: 'corp', userFilter: 'uid=x', groupFilter: '(&(cn=a)', attributes: { id: 'object GUID', colour: 'x' }, pageSize: 6000, disabled: { attribute: 'userAccountControl', match: 'bit', value: 'two' }, startTls: 'yes' }).sort(),
    ).toEqual(
      [
        'url: must be ldap://host[:port] or ldaps://host[:port]',
        'bindDn: is required',
        'bindPassword: is required',
        'baseDn: must be a distinguished name such as OU=People,DC=example,DC=com',
        'userFilter: must be an LDAP filter in parentheses, e.g. (objectClass=person)',
        'groupFilter: is not a valid LDAP filter: its parentheses do not balance',
        "attributes.colour: unknown attribute role 'colour'",
        'attributes.id: must be an attribute name (letters, digits, -) or OID',
        'pageSize: must be a whole number from 10 to 5000',
        "disabled.value: 'bit' needs the bit mask as a number, e.g. '2'",
        'startTls: must be true or false',
      ].sort(),
    );
  });

  it('checks failover URLs like the URL', () => {
    expect(validateLdapSource({ ...AD, failoverUrls: ['ldaps://dc2.corp.example:636/'] }).failoverUrls).toEqual(['ldaps://dc2.corp.example:636']);
    expect(issues({ ...AD, failoverUrls: ['ldaps://dc2', 'http://dc3'] })).toEqual(['failoverUrls[1]: must be ldap://host[:port] or ldaps://host[:port]']);
    expect(issues({ ...AD, failoverUrls: 'ldaps://dc2' })).toEqual(['failoverUrls: must be a list of ldap:// or ldaps:// URLs']);
  });

  it('refuses AD-only choices on other servers, and StartTLS on ldaps://', () => {
    expect(issues({ ...AD, preset: 'openldap', changeTracking: 'usn', nestedMethod: 'inChain', startTls: true })).toEqual([
      "startTls: StartTLS upgrades an ldap:// connection; an ldaps:// URL is encrypted already",
      "changeTracking: 'usn' (uSNChanged) is Active Directory's; use 'modifyTimestamp' for other servers",
      "nestedMethod: 'inChain' is Active Directory's matching rule; other servers ignore it: use 'client'",
    ]);
  });

  it('accepts user@domain and DOMAIN\\user bind names, and shows the password only as set', () => {
    expect(issues({ ...AD, bindDn: 'sync@corp.example' })).toEqual([]);
    expect(issues({ ...AD, bindDn: 'CORP\\sync' })).toEqual([]);
    const shown = redactLdapSource(validateLdapSource(AD));
    expect(shown.bindPassword).toEqual({ set: true });
    expect(JSON.stringify(shown)).not.toContain('"pw"');
  });

  it('changes its read key when what is read changes, not when the schedule does', () => {
    const a = validateLdapSource(AD);
    expect(readKey(validateLdapSource({ ...AD, schedule: { kind: 'interval', minutes: 5 } }))).toBe(readKey(a));
    expect(readKey(validateLdapSource({ ...AD, userFilter: '(objectClass=user)' }))).not.toBe(readKey(a));
  });
});

describe('LDAP values', () => {
  it('turns objectGUID bytes into the canonical string', () => {
    const bytes = Buffer.from('9f59c878243 0c34eb12fd307527f8aa5'.replace(/ /g, ''), 'hex');
    expect(guidToString(bytes)).toBe('78c8599f-3024-4ec3-b12f-d307527f8aa5');
  });

  it('turns a binary SID into S-1-5-21-…', () => {
    const sid = Buffer.from('010500000000000515000000a065cf7e784b9b5fe77c8770e8030000', 'hex');
    expect(sidToString(sid)).toBe('S-1-5-21-2127521184-1604012920-1887927527-1000');
  });

  it('compares DNs without regard to case or spaces around separators', () => {
    expect(dnKey('CN=Ada Lovelace, OU=People ,DC=Example,DC=Com')).toBe(dnKey('cn=ada lovelace,ou=people,dc=example,dc=com'));
    expect(dnKey('cn=a,dc=x')).not.toBe(dnKey('cn=b,dc=x'));
  });

  it('reads ranged attribute names', () => {
    expect(parseRange('member;range=0-1499', 'member')).toEqual({ low: 0, high: 1499 });
    expect(parseRange('Member;Range=1500-*', 'member')).toEqual({ low: 1500, high: null });
    expect(parseRange('memberOf;range=0-1', 'member')).toBeUndefined();
    expect(parseRange('member', 'member')).toBeUndefined();
  });

  it('escapes filter values so a username cannot change the filter', () => {
    expect(escapeValue('a*)(uid=*')).toBe('a\\2a\\29\\28uid=\\2a');
    expect(escapeValue('back\\slash\u0000')).toBe('back\\5cslash\\00');
  });

  it('recognises disabled accounts by bit, by presence and by value', () => {
    const e = (attrs: Record<string, string | string[]>) => toEntry({ dn: 'cn=x', ...attrs });
    const uac = { attribute: 'userAccountControl', match: 'bit' as const, value: '2' };
    expect(isDisabled(e({ userAccountControl: '514' }), uac)).toBe(true);
    expect(isDisabled(e({ userAccountControl: '66050' }), uac)).toBe(true);
    expect(isDisabled(e({ userAccountControl: '512' }), uac)).toBe(false);
    expect(isDisabled(e({ userAccountControl: '66048' }), uac)).toBe(false);
    expect(isDisabled(e({}), uac)).toBe(false);
    expect(isDisabled(e({ pwdAccountLockedTime: '000001010000Z' }), { attribute: 'pwdaccountlockedtime', match: 'present', value: null })).toBe(true);
    expect(isDisabled(e({ nsAccountLock: 'true' }), { attribute: 'nsAccountLock', match: 'equals', value: 'TRUE' })).toBe(true);
    expect(isDisabled(e({ nsAccountLock: 'false' }), { attribute: 'nsAccountLock', match: 'equals', value: 'TRUE' })).toBe(false);
    expect(isDisabled(e({ userAccountControl: '514' }), null)).toBe(false);
  });
});

describe('LDAP entries as SCIM records', () => {
  const s = validateLdapSource({ ...AD, extraAttributes: ['company', 'extensionAttribute1'] });
  const guid = Buffer.from('9f59c8782430c34eb12fd307527f8aa5', 'hex');

  it('maps an AD user, the id from objectGUID and the extras under the source extension', () => {
    const entry = toEntry({
      dn: 'CN=Ada Lovelace,OU=People,DC=corp,DC=example',
      objectGUID: guid,
      sAMAccountName: 'alovelace',
      userPrincipalName: 'ada@corp.example',
      givenName: 'Ada',
      sn: 'Lovelace',
      displayName: 'Ada Lovelace',
      mail: 'ada@corp.example',
      employeeID: 'E-1815',
      department: 'Analytics',
      title: 'Countess',
      telephoneNumber: '+44 20 1234',
      userAccountControl: '514',
      company: 'Analytical Engines',
      extensionAttribute1: ['a', 'b'],
    });
    const m = mapUser(entry, s);
    expect(m).toEqual({
      id: '78c8599f-3024-4ec3-b12f-d307527f8aa5',
      doc: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', 'urn:usersync:params:scim:schemas:extension:source:2.0:User'],
        userName: 'alovelace',
        name: { givenName: 'Ada', familyName: 'Lovelace' },
        displayName: 'Ada Lovelace',
        title: 'Countess',
        emails: [{ value: 'ada@corp.example', type: 'work', primary: true }],
        phoneNumbers: [{ value: '+44 20 1234', type: 'work' }],
        active: false,
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { employeeNumber: 'E-1815', department: 'Analytics' },
        'urn:usersync:params:scim:schemas:extension:source:2.0:User': {
          dn: 'CN=Ada Lovelace,OU=People,DC=corp,DC=example',
          sAMAccountName: 'alovelace',
          userPrincipalName: 'ada@corp.example',
          company: 'Analytical Engines',
          extensionAttribute1: 'a,b',
        },
      },
    });
  });

  it('leaves out entries without an id or a username, and groups without a name', () => {
    expect(mapUser(toEntry({ dn: 'cn=x', sAMAccountName: 'x' }), s)).toMatchObject({ skip: 'no-id' });
    expect(mapUser(toEntry({ dn: 'cn=x', objectGUID: guid }), s)).toMatchObject({ skip: 'no-username' });
    expect(mapGroup(toEntry({ dn: 'cn=g', objectGUID: guid }), s)).toBeUndefined();
    expect(mapGroup(toEntry({ dn: 'cn=g', objectGUID: guid, cn: 'Engineers' }), s)).toEqual({ id: '78c8599f-3024-4ec3-b12f-d307527f8aa5', doc: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Engineers' } });
  });
});

describe('one user explained by the rules (test user search)', () => {
  const doc = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'ada', displayName: 'Ada', active: true, emails: [{ value: 'ada@example.com', type: 'work', primary: true }] };

  it('gives the directory user and each group with its reason', () => {
    const settings = {
      ...DEFAULT_SETTINGS,
      group: { ...DEFAULT_SETTINGS.group, rename: { pattern: 'ad-(.*)', replacement: 'jira-$1' }, neverAssign: ['jira-admins'], alwaysGroups: ['everyone'], defaultGroups: ['newcomers'] },
    };
    const p = previewUser(settings, doc, ['ad-dev', 'ad-admins', 'plain'], true);
    expect(p.user).toMatchObject({ username: 'ada', email: 'ada@example.com', active: true });
    expect(p.groups).toEqual([
      { name: 'jira-dev', because: "member of 'ad-dev', mapped to 'jira-dev'" },
      { name: 'plain', because: "member of 'plain'" },
      { name: 'everyone', because: 'always group' },
      { name: 'newcomers', because: 'default group for new users' },
    ]);
    expect(p.excluded).toEqual([{ name: 'jira-admins', reason: "matches neverAssign pattern 'jira-admins'" }]);
    // an existing user does not get the default groups again
    expect(previewUser(settings, doc, [], false).groups.map((g) => g.name)).toEqual(['everyone']);
  });

  it('says why a user is left out', () => {
    const settings = { ...DEFAULT_SETTINGS, user: { ...DEFAULT_SETTINGS.user, condition: 'userName sw "svc-"' } };
    expect(previewUser(settings, doc, ['dev'], true)).toEqual({ inScope: false, reason: 'left out by the condition', groups: [], excluded: [] });
  });
});
