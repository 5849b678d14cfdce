// Sign in with an admin account. Lockouts and rate limits are told as sentences.

import type { FormEvent } from 'react';
import { useState } from 'react';
import type { Session } from '../api.ts';
import { ApiError, api, errorMessage } from '../api.ts';
import { ErrorMessage, Notice, TextField } from '../components.tsx';

/** The service's answers are sentences already (locked: for how long; rate limited: when to retry). */
function loginError(e: unknown): string {
  if (e instanceof ApiError && e.code === 'invalid_credentials') return 'The username or the password is not right.';
  return errorMessage(e);
}

export function LoginPage({ onSignedIn, notice }: { onSignedIn: (s: Session) => void; notice?: string | undefined }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      onSignedIn(await api.post<Session>('/session', { username, password }));
    } catch (err) {
      setError(loginError(err));
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login" id="main">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <p className="brand">
          <span aria-hidden="true" className="brand-mark">
            ⇄
          </span>{' '}
          usersync
        </p>
        <h1 id="login-title">Sign in</h1>
        {notice && !error ? <Notice>{notice}</Notice> : null}
        <TextField label="Username" value={username} onChange={setUsername} autoComplete="username" required />
        <TextField label="Password" type="password" value={password} onChange={setPassword} autoComplete="current-password" required />
        <ErrorMessage error={error} />
        <button type="submit" className="primary wide" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="hint">The first administrator's password is printed once when the service first starts.</p>
      </form>
    </main>
  );
}
