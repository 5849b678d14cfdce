// Deterministic directory data as LDIF: ou=people (inetOrgPerson) and ou=groups (groupOfNames, nested).

import { mulberry32 as rng } from '../random.ts';

export interface DirectoryLdifOptions {
  /** default dc=example,dc=test; entries go under ou=people,<baseDn> and ou=groups,<baseDn> (created by startSlapd) */
  baseDn?: string;
  users: number;
  groups: number;
  /** user → group edges; at least one per group (groupOfNames needs a member), duplicates are skipped */
  memberships: number;
  /** group → group edges; a group only ever contains groups with a higher index, so there are no cycles */
  nestedGroups: number;
  /** how many users (spread evenly) are locked with pwdAccountLockedTime: 000001010000Z (ppolicy) */
  disabledUsers?: number;
  seed: number;
  /** mail domain, default example.test */
  mailDomain?: string;
}

const GIVEN = ['Ada', 'Alan', 'Barbara', 'Claude', 'Donald', 'Edsger', 'Frances', 'Grace', 'Hedy', 'John', 'Katherine', 'Ken', 'Leslie', 'Linus', 'Margaret', 'Niklaus', 'Radia', 'Shafi', 'Tim', 'Vint', 'Åsa', 'Zoë', 'José', 'Ngozi'];
const FAMILY = ['Lovelace', 'Turing', 'Liskov', 'Shannon', 'Knuth', 'Dijkstra', 'Allen', 'Hopper', 'Lamarr', 'McCarthy', 'Johnson', 'Thompson', 'Lamport', 'Torvalds', 'Hamilton', 'Wirth', 'Perlman', 'Goldwasser', 'Berners-Lee', 'Cerf', 'Müller', "O'Brien", 'García', 'Okafor'];

/** an LDIF attribute line; values that are not SAFE-STRINGs (RFC 2849) are base64-encoded */
function line(attr: string, value: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(value) && !value.endsWith(' ')
    ? `${attr}: ${value}`
    : `${attr}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

export const userUid = (i: number): string => `user${String(i).padStart(6, '0')}`;
export const groupCn = (i: number): string => `group${String(i).padStart(5, '0')}`;

/**
 * Users `uid=user000000,ou=people,<base>` … and groups `cn=group00000,ou=groups,<base>` …, the same text for the
 * same options. Group sizes are skewed (a few large groups, many small ones), as in real directories.
 */
export function generateDirectoryLdif(o: DirectoryLdifOptions): string {
  const base = o.baseDn ?? 'dc=example,dc=test';
  const domain = o.mailDomain ?? 'example.test';
  const random = rng(o.seed);
  const people = `ou=people,${base}`;
  const groupsDn = `ou=groups,${base}`;
  const out: string[] = [];
  const disabledEvery = o.disabledUsers ? Math.max(1, Math.floor(o.users / o.disabledUsers)) : 0;
  let disabled = 0;

  for (let i = 0; i < o.users; i++) {
    const given = GIVEN[Math.floor(random() * GIVEN.length)]!;
    const family = FAMILY[Math.floor(random() * FAMILY.length)]!;
    const uid = userUid(i);
    out.push(
      `dn: uid=${uid},${people}`,
      'objectClass: inetOrgPerson',
      `uid: ${uid}`,
      line('cn', `${given} ${family}`),
      line('sn', family),
      line('givenName', given),
      `mail: ${uid}@${domain}`,
      `employeeNumber: ${100000 + i}`,
    );
    if (disabledEvery && i % disabledEvery === 0 && disabled < o.disabledUsers!) {
      out.push('pwdAccountLockedTime: 000001010000Z');
      disabled++;
    }
    out.push('');
  }

  if (o.groups > 0) {
    const users = new Array<Set<number>>(o.groups);
    const nested = new Array<Set<number>>(o.groups);
    for (let g = 0; g < o.groups; g++) {
      users[g] = new Set();
      nested[g] = new Set();
    }
    // skewed choice of group: the square of a uniform number favours low indexes
    const pickGroup = (): number => Math.min(o.groups - 1, Math.floor(random() * random() * o.groups));
    if (o.users > 0) {
      for (let g = 0; g < o.groups; g++) users[g]!.add(Math.floor(random() * o.users));
      for (let e = o.groups; e < o.memberships; e++) users[pickGroup()]!.add(Math.floor(random() * o.users));
    }
    if (o.groups > 1) {
      for (let e = 0; e < o.nestedGroups; e++) {
        const a = Math.floor(random() * o.groups);
        const b = Math.floor(random() * o.groups);
        if (a !== b) nested[Math.min(a, b)]!.add(Math.max(a, b));
      }
    }
    for (let g = 0; g < o.groups; g++) {
      const cn = groupCn(g);
      out.push(`dn: cn=${cn},${groupsDn}`, 'objectClass: groupOfNames', `cn: ${cn}`, `description: generated group ${g}`);
      for (const u of [...users[g]!].sort((x, y) => x - y)) out.push(`member: uid=${userUid(u)},${people}`);
      for (const c of [...nested[g]!].sort((x, y) => x - y)) out.push(`member: cn=${groupCn(c)},${groupsDn}`);
      // groupOfNames must have a member: a group without users or groups lists the base entry
      if (users[g]!.size === 0 && nested[g]!.size === 0) out.push(`member: ${base}`);
      out.push('');
    }
  }
  return out.join('\n') + '\n';
}
