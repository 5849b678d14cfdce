// Small building blocks shared by the pages: fields with labels and problems, status badges, errors,
// copy buttons, a confirmation dialog, loading data.

import type { ReactNode } from 'react';
import { createContext, useCallback, useContext, useEffect, useId, useRef, useState } from 'react';
import { Link } from 'react-router';
import type { Counters, RunStatus, SettingsIssue } from './api.ts';
import { ApiError, errorMessage } from './api.ts';
import { counterEntries, formatNumber } from './format.ts';

// ------------------------------------------------------------------------------------------ loading

export interface Loaded<T> {
  data: T | undefined;
  error: string;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
}

/** Load data when the component appears and whenever `deps` change; `reload()` loads again. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState('');
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    load(controller.signal)
      .then((d) => {
        if (controller.signal.aborted) return;
        setData(d);
        setError('');
      })
      .catch((e: unknown) => {
        if (!controller.signal.aborted) setError(errorMessage(e));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, setData };
}

// ------------------------------------------------------------------------------------------- layout

export function PageHeader({ title, children, back }: { title: ReactNode; children?: ReactNode; back?: { to: string; label: string } }) {
  return (
    <header className="page-header">
      <div>
        {back ? (
          <p className="back">
            <Link to={back.to}>← {back.label}</Link>
          </p>
        ) : null}
        <h1>{title}</h1>
      </div>
      {children ? <div className="actions">{children}</div> : null}
    </header>
  );
}

export function Section({ title, children, description, id }: { title: string; children: ReactNode; description?: ReactNode; id?: string }) {
  const hid = useId();
  return (
    <section className="card" aria-labelledby={hid} id={id}>
      <h2 id={hid}>{title}</h2>
      {description ? <p className="muted">{description}</p> : null}
      {children}
    </section>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="loading" role="status">
      {what}…
    </p>
  );
}

/** An error as a sentence, announced to screen readers. */
export function ErrorMessage({ error, issues }: { error: string | null | undefined; issues?: SettingsIssue[] }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      <p>{error}</p>
      {issues && issues.length > 0 ? (
        <ul>
          {issues.map((i, n) => (
            <li key={n}>
              <code>{i.path || 'settings'}</code>: {i.message}
              {i.position !== undefined ? ` (at position ${i.position})` : ''}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function Notice({ children, kind = 'info' }: { children: ReactNode; kind?: 'info' | 'success' | 'warning' }) {
  return (
    <div className={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

/** A region whose changes are read out: progress, saved, copied. */
export function LiveRegion({ children, className }: { children: ReactNode; className?: string }) {
  return (
    <div aria-live="polite" className={className}>
      {children}
    </div>
  );
}

// ------------------------------------------------------------------------------------------- badges

const STATUS_TEXT: Record<string, string> = {
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  aborted: 'aborted',
  held: 'held for approval',
  approved: 'approved',
  rejected: 'rejected',
};

export function StatusBadge({ status }: { status: RunStatus | string | null | undefined }) {
  if (!status) return <span className="badge badge-none">never ran</span>;
  return <span className={`badge badge-${status}`}>{STATUS_TEXT[status] ?? status}</span>;
}

export function Badge({ children, tone = 'neutral' }: { children: ReactNode; tone?: 'neutral' | 'good' | 'bad' | 'warn' | 'info' }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

export function YesNo({ value, yes = 'yes', no = 'no' }: { value: boolean; yes?: string; no?: string }) {
  return <Badge tone={value ? 'good' : 'neutral'}>{value ? yes : no}</Badge>;
}

export function CounterList({ counters, empty = 'Nothing counted yet.' }: { counters: Counters | null | undefined; empty?: string }) {
  const entries = counterEntries(counters);
  if (entries.length === 0) return <p className="muted">{empty}</p>;
  return (
    <dl className="counters">
      {entries.map(([k, label, n]) => (
        <div key={k} className="counter">
          <dt>{label}</dt>
          <dd>{formatNumber(n)}</dd>
        </div>
      ))}
    </dl>
  );
}

// ------------------------------------------------------------------------------------------- fields

/** Settings problems from the service, by path, for the fields to show next to themselves. */
export const IssuesContext = createContext<SettingsIssue[]>([]);

/** Problems at `path` or inside it (`path.x`, `path[0]`). */
export function useIssues(path: string | undefined): string[] {
  const issues = useContext(IssuesContext);
  if (path === undefined) return [];
  return issues
    .filter((i) => i.path === path || i.path.startsWith(`${path}.`) || i.path.startsWith(`${path}[`))
    .map((i) => (i.path === path ? i.message : `${i.path.slice(path.length).replace(/^\./, '')}: ${i.message}`) + (i.position !== undefined ? ` (at position ${i.position})` : ''));
}

interface FieldShell {
  label: ReactNode;
  hint?: ReactNode;
  /** the settings path, for the service's problems */
  path?: string;
  /** a problem found in the page */
  problem?: string | undefined;
  className?: string;
}

function useFieldProblems(path: string | undefined, problem: string | undefined): string[] {
  const server = useIssues(path);
  return problem ? [problem, ...server] : server;
}

/** A labelled field: the label, the control made by `control` (given its id and ARIA attributes), the hint and the problems. */
function Field({ label, hint, path, problem, className, control }: FieldShell & { control: (attrs: ReturnType<typeof controlProps>) => ReactNode }) {
  const id = useId();
  const problems = useFieldProblems(path, problem);
  return (
    <div className={`field${problems.length ? ' field-invalid' : ''}${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      {control(controlProps(id, hint, problems))}
      <FieldNotes id={id} hint={hint} problems={problems} />
    </div>
  );
}

/** The hint and the problems under a field, named by its `aria-describedby`. */
function FieldNotes({ id, hint, problems }: { id: string; hint: ReactNode; problems: string[] }) {
  return (
    <>
      {hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {problems.length ? (
        <p className="problem" id={`${id}-problem`}>
          {problems.join(' ')}
        </p>
      ) : null}
    </>
  );
}

function describedBy(id: string, hint: unknown, problems: string[]): string | undefined {
  const ids = [hint ? `${id}-hint` : '', problems.length ? `${id}-problem` : ''].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

/** The control's id, and its invalid state and description from the hint and the problems. */
function controlProps(id: string, hint: unknown, problems: string[]) {
  return { id, 'aria-invalid': problems.length ? true : undefined, 'aria-describedby': describedBy(id, hint, problems) };
}

export function TextField(
  props: FieldShell & {
    value: string;
    onChange: (v: string) => void;
    type?: string;
    placeholder?: string;
    required?: boolean;
    autoComplete?: string;
    readOnly?: boolean;
    disabled?: boolean;
    spellCheck?: boolean;
    mono?: boolean;
    name?: string;
  },
) {
  return (
    <Field
      {...props}
      control={(attrs) => (
        <input
          {...attrs}
          name={props.name}
          type={props.type ?? 'text'}
          value={props.value}
          placeholder={props.placeholder}
          required={props.required}
          autoComplete={props.autoComplete ?? 'off'}
          readOnly={props.readOnly}
          disabled={props.disabled}
          spellCheck={props.spellCheck ?? false}
          className={props.mono ? 'mono' : undefined}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
    />
  );
}

export function NumberField(props: FieldShell & { value: number | null; onChange: (v: number | null) => void; min?: number; max?: number; step?: number; placeholder?: string; disabled?: boolean }) {
  return (
    <Field
      {...props}
      control={(attrs) => (
        <input
          {...attrs}
          type="number"
          inputMode="numeric"
          value={props.value ?? ''}
          min={props.min}
          max={props.max}
          step={props.step}
          placeholder={props.placeholder}
          disabled={props.disabled}
          onChange={(e) => props.onChange(e.target.value === '' ? null : Number(e.target.value))}
        />
      )}
    />
  );
}

export function TextArea(props: FieldShell & { value: string; onChange: (v: string) => void; rows?: number; placeholder?: string; mono?: boolean; disabled?: boolean; readOnly?: boolean }) {
  return (
    <Field
      {...props}
      control={(attrs) => (
        <textarea
          {...attrs}
          value={props.value}
          rows={props.rows ?? 4}
          placeholder={props.placeholder}
          spellCheck={false}
          disabled={props.disabled}
          readOnly={props.readOnly}
          className={props.mono ? 'mono' : undefined}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
    />
  );
}

/** A list of strings edited as lines of text. */
const lines = (t: string): string[] =>
  t
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

export function LinesField(props: FieldShell & { value: string[]; onChange: (v: string[]) => void; rows?: number; placeholder?: string; mono?: boolean; disabled?: boolean }) {
  const [text, setText] = useState(props.value.join('\n'));
  // follow changes from outside (reset, reload) without fighting the typing
  useEffect(() => {
    setText((t) => (lines(t).join('\n') === props.value.join('\n') ? t : props.value.join('\n')));
  }, [props.value]);
  return (
    <TextArea
      {...props}
      rows={props.rows ?? 3}
      value={text}
      onChange={(t) => {
        setText(t);
        props.onChange(lines(t));
      }}
    />
  );
}

export function SelectField<T extends string>(props: FieldShell & { value: T; onChange: (v: T) => void; options: readonly (readonly [T, string])[]; disabled?: boolean }) {
  return (
    <Field
      {...props}
      control={(attrs) => (
        <select
          {...attrs}
          value={props.value}
          disabled={props.disabled}
          onChange={(e) => props.onChange(e.target.value as T)}
        >
          {props.options.map(([v, label]) => (
            <option key={v} value={v}>
              {label}
            </option>
          ))}
        </select>
      )}
    />
  );
}

export function CheckboxField(props: { label: ReactNode; checked: boolean; onChange: (v: boolean) => void; hint?: ReactNode; path?: string; disabled?: boolean }) {
  const id = useId();
  const problems = useIssues(props.path);
  return (
    <div className={`field field-check${problems.length ? ' field-invalid' : ''}`}>
      <input
        id={id}
        type="checkbox"
        checked={props.checked}
        disabled={props.disabled}
        aria-describedby={describedBy(id, props.hint, problems)}
        onChange={(e) => props.onChange(e.target.checked)}
      />
      <label htmlFor={id}>{props.label}</label>
      <FieldNotes id={id} hint={props.hint} problems={problems} />
    </div>
  );
}

export function RadioGroup<T extends string>(props: { legend: ReactNode; value: T; onChange: (v: T) => void; options: readonly (readonly [T, string, ReactNode?])[]; path?: string; disabled?: boolean }) {
  const name = useId();
  const problems = useIssues(props.path);
  return (
    <fieldset className={`field radio-group${problems.length ? ' field-invalid' : ''}`} disabled={props.disabled}>
      <legend>{props.legend}</legend>
      {props.options.map(([v, label, hint]) => (
        <div key={v} className="radio">
          <input type="radio" id={`${name}-${v}`} name={name} value={v} checked={props.value === v} onChange={() => props.onChange(v)} />
          <label htmlFor={`${name}-${v}`}>
            {label}
            {hint ? <span className="hint"> — {hint}</span> : null}
          </label>
        </div>
      ))}
      {problems.length ? <p className="problem">{problems.join(' ')}</p> : null}
    </fieldset>
  );
}

// ------------------------------------------------------------------------------------------- copying

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // older browsers, or no permission: select and copy
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** A value shown read-only with a Copy button (SCIM Base URL, tokens). */
export function CopyField({ label, value, secret = false }: { label: string; value: string; secret?: boolean }) {
  const id = useId();
  const [status, setStatus] = useState('');
  return (
    <div className="field copy-field">
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <input id={id} type="text" readOnly value={value} className={`mono${secret ? ' secret' : ''}`} onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          aria-label={`Copy ${label}`}
          onClick={async () => {
            const ok = await copyText(value);
            setStatus(ok ? `${label} copied to the clipboard.` : 'Copying failed: select the text and copy it yourself.');
          }}
        >
          Copy
        </button>
      </div>
      <p className="hint" aria-live="polite">
        {status}
      </p>
    </div>
  );
}

// ------------------------------------------------------------------------------------------- confirm

interface ConfirmRequest {
  title: string;
  message: ReactNode;
  confirmLabel: string;
  danger: boolean;
  resolve: (ok: boolean) => void;
}

/** A modal confirmation (the browser's <dialog>: focus is kept inside, Escape cancels). */
export function useConfirm(): [(opts: { title: string; message: ReactNode; confirmLabel: string; danger?: boolean }) => Promise<boolean>, ReactNode] {
  const [req, setReq] = useState<ConfirmRequest | null>(null);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (req && d && !d.open) d.showModal();
  }, [req]);
  const close = (ok: boolean) => {
    ref.current?.close();
    req?.resolve(ok);
    setReq(null);
  };
  const confirm = useCallback(
    (opts: { title: string; message: ReactNode; confirmLabel: string; danger?: boolean }) =>
      new Promise<boolean>((resolve) => setReq({ ...opts, danger: opts.danger ?? false, resolve })),
    [],
  );
  const titleId = useId();
  const element = req ? (
    <dialog ref={ref} className="dialog" aria-labelledby={titleId} onCancel={() => close(false)}>
      <h2 id={titleId}>{req.title}</h2>
      <div className="dialog-body">{req.message}</div>
      <div className="dialog-actions">
        <button type="button" onClick={() => close(false)}>
          Cancel
        </button>
        <button type="button" className={req.danger ? 'danger' : 'primary'} onClick={() => close(true)}>
          {req.confirmLabel}
        </button>
      </div>
    </dialog>
  ) : null;
  return [confirm, element];
}

// --------------------------------------------------------------------------------------------- actions

/** Run an action, remembering its error (as a sentence) and whether it is busy. */
export function useAction(): {
  busy: boolean;
  error: string;
  issues: SettingsIssue[];
  run: <T>(work: () => Promise<T>) => Promise<T | undefined>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [issues, setIssues] = useState<SettingsIssue[]>([]);
  const run = useCallback(async <T,>(work: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError('');
    setIssues([]);
    try {
      return await work();
    } catch (e) {
      setError(errorMessage(e));
      setIssues(e instanceof ApiError ? e.issues : []);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => {
    setError('');
    setIssues([]);
  }, []);
  return { busy, error, issues, run, clear };
}

// --------------------------------------------------------------------------------------------- tables

/** The heading of a column of row actions: named for screen readers only. */
export const ACTIONS_COLUMN = <span className="sr-only">Actions</span>;

/**
 * A table with a column heading per entry of `columns` (null ones left out) and a row per entry of
 * `rows`, or the `empty` text across all columns. The caption is for screen readers unless
 * `showCaption`; `wrap` puts the table in a horizontally scrolling box.
 */
export function DataTable<T>(props: {
  caption?: ReactNode;
  showCaption?: boolean;
  columns: ReactNode[];
  rows: readonly T[];
  row: (r: T, i: number) => ReactNode;
  empty?: ReactNode;
  className?: string;
  wrap?: boolean;
}) {
  const columns = props.columns.filter((c) => c !== null && c !== undefined && c !== false);
  const table = (
    <table className={props.className}>
      {props.caption !== undefined ? <caption className={props.showCaption ? undefined : 'sr-only'}>{props.caption}</caption> : null}
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th key={i} scope="col">
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.length === 0 && props.empty !== undefined ? (
          <tr>
            <td colSpan={columns.length} className="empty">
              {props.empty}
            </td>
          </tr>
        ) : null}
        {props.rows.map(props.row)}
      </tbody>
    </table>
  );
  return props.wrap === false ? table : <div className="table-wrap">{table}</div>;
}

export function JsonBlock({ value, label }: { value: unknown; label?: string }) {
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/** The outcome of a connection test: each check with its sentence (anything more, e.g. missing permissions, as children). */
export function ConnectionChecks({ ok, failure, checks, children }: { ok: boolean; failure?: string | undefined; checks: { name: string; ok: boolean; message: string }[]; children?: ReactNode }) {
  return (
    <div className={`test-result ${ok ? 'ok' : 'bad'}`}>
      <h3>{ok ? 'The connection works.' : `The test found a problem${failure ? ` (${failure})` : ''}.`}</h3>
      <ul className="checks" aria-label="Connection checks">
        {checks.map((c, i) => (
          <li key={i} className={c.ok ? 'ok' : 'bad'}>
            <span className="check-mark" aria-hidden="true">
              {c.ok ? '✓' : '✗'}
            </span>
            <span className="sr-only">{c.ok ? 'passed' : 'failed'}: </span>
            <strong>{c.name}</strong>: {c.message}
          </li>
        ))}
      </ul>
      {children}
    </div>
  );
}
