// Who is signed in: the account, its role and the CSRF token of its session.

import type { ReactNode } from 'react';
import { createContext, useCallback, useContext, useEffect, useState } from 'react';
import type { Account, Session } from './api.ts';
import { ApiError, api, errorMessage, onSessionLost, setCsrfToken } from './api.ts';

export interface SessionState {
  account: Account;
  /** administrators change things; auditors only read */
  canChange: boolean;
  signOut: () => Promise<void>;
  /** after a password change */
  refresh: () => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export type SessionStatus = { state: 'loading' } | { state: 'signed-out'; reason?: string } | { state: 'error'; message: string } | { state: 'signed-in'; session: Session };

export function useSessionLoader(): [SessionStatus, (s: Session) => void, () => Promise<void>, () => Promise<void>] {
  const [status, setStatus] = useState<SessionStatus>({ state: 'loading' });

  const apply = useCallback((s: Session) => {
    setCsrfToken(s.csrfToken);
    setStatus({ state: 'signed-in', session: s });
  }, []);

  const load = useCallback(async () => {
    try {
      apply(await api.get<Session>('/session'));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        setCsrfToken('');
        setStatus({ state: 'signed-out' });
      } else setStatus({ state: 'error', message: errorMessage(e) });
    }
  }, [apply]);

  useEffect(() => {
    void load();
    onSessionLost(() => {
      setCsrfToken('');
      setStatus({ state: 'signed-out', reason: 'Your session has ended. Sign in again to go on.' });
    });
  }, [load]);

  const signOut = useCallback(async () => {
    try {
      await api.del('/session');
    } catch {
      // signed out either way
    }
    setCsrfToken('');
    setStatus({ state: 'signed-out', reason: 'You are signed out.' });
  }, []);

  return [status, apply, load, signOut];
}

export function SessionProvider({ session, signOut, refresh, children }: { session: Session; signOut: () => Promise<void>; refresh: () => Promise<void>; children: ReactNode }) {
  const value: SessionState = { account: session.account, canChange: session.account.role === 'administrator', signOut, refresh };
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
