// Change the signed-in account's password; required before anything else when the account must.

import type { FormEvent } from 'react';
import { useState } from 'react';
import { api } from '../api.ts';
import { ErrorMessage, Notice, PageHeader, TextField, useAction } from '../components.tsx';
import { useSession } from '../session.tsx';

export function ChangePasswordPage({ forced = false }: { forced?: boolean }) {
  const { account, refresh, signOut } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [done, setDone] = useState(false);
  const action = useAction();
  const mismatch = again !== '' && next !== again ? 'The two new passwords are not the same.' : undefined;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (mismatch || !next) return;
    const ok = await action.run(async () => {
      await api.post('/session/password', { currentPassword: current, newPassword: next });
      return true;
    });
    if (ok) {
      setCurrent('');
      setNext('');
      setAgain('');
      setDone(true);
      await refresh();
    }
  };

  return (
    <form className={forced ? 'card login-card' : 'card narrow'} onSubmit={submit}>
      {forced ? <h1>Choose a new password</h1> : <PageHeader title="Change password" />}
      {forced ? (
        <p>
          The account <strong>{account.username}</strong> has a password that must be changed before you go on.
        </p>
      ) : null}
      <TextField label="Current password" type="password" value={current} onChange={setCurrent} autoComplete="current-password" required />
      <TextField label="New password" type="password" value={next} onChange={setNext} autoComplete="new-password" required hint="At least 12 characters; a passphrase of several words is good." />
      <TextField label="New password again" type="password" value={again} onChange={setAgain} autoComplete="new-password" required problem={mismatch} />
      <ErrorMessage error={action.error} />
      {done ? <Notice kind="success">Your password has been changed.</Notice> : null}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={action.busy || !!mismatch}>
          {action.busy ? 'Changing…' : 'Change password'}
        </button>
        {forced ? (
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        ) : null}
      </div>
    </form>
  );
}
