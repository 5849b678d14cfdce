// Admin accounts: who may sign in, as administrator or read-only auditor.

import { useState } from 'react';
import type { AccountRow, Role } from '../../api.ts';
import { api } from '../../api.ts';
import { ACTIONS_COLUMN, Badge, DataTable, ErrorMessage, Loading, Notice, Section, SelectField, TextField, useAction, useConfirm, useLoad } from '../../components.tsx';
import { formatDate } from '../../format.ts';
import { useSession } from '../../session.tsx';

const ROLES = [
  ['administrator', 'Administrator'],
  ['auditor', 'Auditor (read only)'],
] as const;

export function AccountsSettings() {
  const { account: me } = useSession();
  const accounts = useLoad((signal) => api.get<{ accounts: AccountRow[] }>('/accounts', undefined, signal), []);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('auditor');
  const [passwordFor, setPasswordFor] = useState<AccountRow>();
  const [newPassword, setNewPassword] = useState('');
  const [note, setNote] = useState('');
  const [confirm, dialog] = useConfirm();
  const action = useAction();

  const change = async (a: AccountRow, patch: Record<string, unknown>, done: string) => {
    setNote('');
    const ok = await action.run(async () => {
      await api.patch(`/accounts/${encodeURIComponent(a.id)}`, patch);
      return true;
    });
    if (ok) setNote(done);
    accounts.reload();
  };

  const create = async () => {
    setNote('');
    const ok = await action.run(async () => {
      await api.post('/accounts', { username: username.trim(), password, role });
      return true;
    });
    if (ok) {
      setNote(`The account ${username.trim()} is created. Give its password to its owner, who will choose a new one.`);
      setUsername('');
      setPassword('');
      accounts.reload();
    }
  };

  const remove = async (a: AccountRow) => {
    if (!(await confirm({ title: `Delete the account ${a.username}?`, message: <p>It can no longer sign in. Its entries in the audit log stay.</p>, confirmLabel: 'Delete account', danger: true }))) return;
    setNote('');
    const ok = await action.run(async () => {
      await api.del(`/accounts/${encodeURIComponent(a.id)}`);
      return true;
    });
    if (ok) setNote(`The account ${a.username} is deleted.`);
    accounts.reload();
  };

  const unlock = async (a: AccountRow) => {
    setNote('');
    const ok = await action.run(async () => {
      await api.post(`/accounts/${encodeURIComponent(a.id)}/unlock`);
      return true;
    });
    if (ok) setNote(`The account ${a.username} is unlocked.`);
    accounts.reload();
  };

  return (
    <>
      {dialog}
      <Section title="Accounts" description="Administrators change settings; auditors read everything and change nothing.">
        <div aria-live="polite">{note ? <Notice kind="success">{note}</Notice> : null}</div>
        <ErrorMessage error={accounts.error || action.error} />
        {accounts.data ? (
          <DataTable
            caption="Accounts"
            columns={['Username', 'Role', 'State', 'Last sign-in', 'Created', ACTIONS_COLUMN]}
            rows={accounts.data.accounts}
            empty="No accounts."
            row={(a) => (
              <tr key={a.id}>
                <td>
                  {a.username}
                  {a.id === me.id ? <span className="sub"> (you)</span> : null}
                </td>
                <td>
                  <label className="sr-only" htmlFor={`role-${a.id}`}>
                    Role of {a.username}
                  </label>
                  <select id={`role-${a.id}`} value={a.role} disabled={action.busy || a.id === me.id} onChange={(e) => void change(a, { role: e.target.value }, `${a.username} is now ${e.target.value === 'administrator' ? 'an administrator' : 'an auditor'}.`)}>
                    {ROLES.map(([v, l]) => (
                      <option key={v} value={v}>
                        {l}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  {a.disabled ? <Badge tone="warn">disabled</Badge> : <Badge tone="good">active</Badge>} {a.locked ? <Badge tone="bad">locked</Badge> : null}
                </td>
                <td>{formatDate(a.lastLoginAt)}</td>
                <td>{formatDate(a.createdAt)}</td>
                <td className="row-actions">
                  {a.locked ? (
                    <button type="button" className="small" onClick={() => void unlock(a)} disabled={action.busy} aria-label={`Unlock ${a.username}`}>
                      Unlock
                    </button>
                  ) : null}
                  <button type="button" className="small" onClick={() => setPasswordFor(a)} disabled={action.busy} aria-label={`Set a password for ${a.username}`}>
                    Set password
                  </button>
                  {a.id !== me.id ? (
                    <>
                      <button
                        type="button"
                        className="small"
                        onClick={() => void change(a, { disabled: !a.disabled }, `The account ${a.username} is ${a.disabled ? 'enabled' : 'disabled'}.`)}
                        disabled={action.busy}
                        aria-label={`${a.disabled ? 'Enable' : 'Disable'} ${a.username}`}
                      >
                        {a.disabled ? 'Enable' : 'Disable'}
                      </button>
                      <button type="button" className="small danger-outline" onClick={() => void remove(a)} disabled={action.busy} aria-label={`Delete ${a.username}`}>
                        Delete
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            )}
          />
        ) : (
          <Loading />
        )}
        {passwordFor ? (
          <form
            className="inline-form boxed"
            onSubmit={(e) => {
              e.preventDefault();
              void change(passwordFor, { password: newPassword }, `The password of ${passwordFor.username} is set; they will be asked to choose a new one.`).then(() => {
                setPasswordFor(undefined);
                setNewPassword('');
              });
            }}
          >
            <TextField label={`New password for ${passwordFor.username}`} type="password" autoComplete="new-password" value={newPassword} onChange={setNewPassword} required />
            <button type="submit" className="primary" disabled={!newPassword || action.busy}>
              Set password
            </button>
            <button type="button" onClick={() => setPasswordFor(undefined)}>
              Cancel
            </button>
          </form>
        ) : null}
      </Section>
      <Section title="Add an account">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void create();
          }}
        >
          <div className="field-row">
            <TextField label="New account's username" value={username} onChange={setUsername} autoComplete="off" required />
            <TextField label="First password" type="password" autoComplete="new-password" value={password} onChange={setPassword} required hint="The owner is asked to change it at the first sign-in." />
            <SelectField label="Role" value={role} onChange={setRole} options={ROLES} />
          </div>
          <div className="form-actions">
            <button type="submit" className="primary" disabled={action.busy || !username.trim() || !password}>
              Add account
            </button>
          </div>
        </form>
      </Section>
    </>
  );
}
