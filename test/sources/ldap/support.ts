// A running service plus a real slapd, with helpers to create LDAP connectors and to read what the server
// itself says (as its administrator) for comparison.

import type { Slapd, SlapdOptions } from '../../support/slapd/index.ts';
import { startSlapd } from '../../support/slapd/index.ts';
import type { ServiceRig } from '../../support/service-rig.ts';
import { startServiceRig } from '../../support/service-rig.ts';
import type { Dialect } from '../../../src/store/db.ts';

export interface LdapRig extends ServiceRig {
  ldap: Slapd;
  /** source settings that point a connector at the slapd, as its limited sync account */
  source(extra?: Record<string, unknown>): Record<string, unknown>;
  createConnector(id: string, extra?: Record<string, unknown>, settings?: unknown): Promise<void>;
  /** what the server says: uid → { groups (nested, by dynlist's memberOf), disabled } */
  serverView(): Promise<Map<string, { groups: string[]; disabled: boolean; mail: string | undefined }>>;
}

export function slapdSource(ldap: Slapd, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    preset: 'openldap',
    url: ldap.url,
    bindDn: ldap.bindDn,
    bindPassword: ldap.bindPassword,
    baseDn: ldap.baseDn,
    userBaseDn: ldap.peopleDn,
    groupBaseDn: ldap.groupsDn,
    schedule: { kind: 'off' },
    ...extra,
  };
}

const cnOf = (dn: string) => /^cn=([^,]+)/i.exec(dn)?.[1] ?? dn;

export async function startLdapRig(dialect: Dialect, slapd: SlapdOptions, opts: { schedulerTickMs?: number } = {}): Promise<LdapRig> {
  const ldap = await startSlapd(slapd);
  const base = await startServiceRig(dialect, opts);
  return {
    ...base,
    ldap,
    source: (extra = {}) => slapdSource(ldap, extra),
    async createConnector(id, extra = {}, settings) {
      const res = await base.api('/connectors', { method: 'POST', body: { id, name: `LDAP ${id}`, kind: 'ldap', source: slapdSource(ldap, extra), ...(settings ? { settings } : {}) } });
      if (res.status !== 201) throw new Error(`creating connector ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async serverView() {
      const client = ldap.client();
      try {
        await client.bind(ldap.adminDn, ldap.adminPassword);
        const { searchEntries } = await client.search(ldap.peopleDn, { filter: '(objectClass=inetOrgPerson)', attributes: ['uid', 'memberOf', 'pwdAccountLockedTime', 'mail'] });
        const out = new Map<string, { groups: string[]; disabled: boolean; mail: string | undefined }>();
        for (const e of searchEntries) {
          const memberOf = ([] as string[]).concat((e.memberOf as string | string[] | undefined) ?? []);
          const locked = ([] as string[]).concat((e.pwdAccountLockedTime as string | string[] | undefined) ?? []);
          out.set(String(e.uid), { groups: memberOf.map(cnOf).sort(), disabled: locked.length > 0, mail: e.mail ? String(e.mail) : undefined });
        }
        return out;
      } finally {
        await client.unbind();
      }
    },
    async close() {
      await base.close();
      await ldap.stop();
    },
  };
}
