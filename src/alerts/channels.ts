// Sending one alert to one channel: a webhook (an HTTP POST of JSON, signed with HMAC-SHA256 when a
// secret is set) or e-mail through an SMTP server (nodemailer). A failure is answered as a sentence an
// administrator can act on, never thrown: the caller records it and tries again later.

import { createHmac } from 'node:crypto';
import net from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { StoredAlertSettings } from './settings.ts';

export const WEBHOOK_TIMEOUT_MS = 10_000;
/** each step of an SMTP conversation (connect, greeting, a command) may take this long */
export const SMTP_TIMEOUT_MS = 10_000;
export const SIGNATURE_HEADER = 'x-usersync-signature';
export const TIMESTAMP_HEADER = 'x-usersync-timestamp';

export interface AlertRecord {
  seq: number;
  at: string;
  kind: string;
  connectorId: string | null;
  subject: string;
  message: string;
  details: Record<string, unknown>;
}

export type ChannelResult = { ok: true } | { ok: false; error: string };

export interface SendOptions {
  timeoutMs?: number;
  /** stops a send in progress (the service is stopping) */
  signal?: AbortSignal;
}

// ------------------------------------------------------------------------------------------- webhook

/** The JSON a webhook receives. */
export function webhookBody(alert: AlertRecord): string {
  return JSON.stringify({
    kind: alert.kind,
    subject: alert.subject,
    message: alert.message,
    connectorId: alert.connectorId,
    details: alert.details,
    at: alert.at,
    seq: alert.seq,
    service: 'usersync',
  });
}

/** `sha256=<hex HMAC-SHA256 of the raw body>`, as sent in X-Usersync-Signature. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

const TLS_TRUST = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function errorCode(e: unknown): string | undefined {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = err?.cause?.code ?? err?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A failed fetch as a sentence; the URL's path is left out, as it may hold a token (as Slack's do). */
function webhookFailure(e: unknown, url: URL, timeoutMs: number): string {
  const where = url.host;
  const err = e as Error & { cause?: Error };
  if (err?.name === 'TimeoutError') return `the webhook at ${where} did not answer within ${timeoutMs / 1000} seconds`;
  if (err?.name === 'AbortError') return 'sending was stopped because the service is stopping';
  const code = errorCode(e);
  if (code === 'ECONNREFUSED') return `could not connect to the webhook at ${where}: the connection was refused`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name ${url.hostname} of the webhook was not found (DNS)`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return `could not connect to the webhook at ${where} in time`;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return `the webhook at ${where} closed the connection before answering`;
  if (code && TLS_TRUST.has(code)) return `the TLS certificate of the webhook at ${where} is not trusted (${code})`;
  return `the request to the webhook at ${where} failed (${err?.cause?.message ?? err?.message ?? String(e)})`;
}

/** POST the alert; any 2xx answer is success. Redirects are not followed: a POST is not repeated elsewhere. */
export async function sendWebhook(cfg: { url: string; secret: string | null }, alert: AlertRecord, opts: SendOptions = {}): Promise<ChannelResult> {
  const timeoutMs = opts.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const url = new URL(cfg.url);
  const body = webhookBody(alert);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'usersync-alerts' };
  if (cfg.secret !== null) {
    headers[SIGNATURE_HEADER] = signBody(cfg.secret, body);
    headers[TIMESTAMP_HEADER] = String(Math.floor(Date.now() / 1000));
  }
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal });
  } catch (e) {
    return { ok: false, error: webhookFailure(e, url, timeoutMs) };
  }
  // read (a little of) the answer, so the connection can be reused, and to quote it on failure
  let text = '';
  try {
    text = (await res.text()).slice(0, 200).replace(/\s+/g, ' ').trim();
  } catch {
    // the answer's status is what counts
  }
  if (res.status >= 200 && res.status < 300) return { ok: true };
  if (res.status >= 300 && res.status < 400) {
    return { ok: false, error: `the webhook at ${url.host} answered HTTP ${res.status} (a redirect${res.headers.get('location') ? ` to ${safeLocation(res.headers.get('location')!, url)}` : ''}); enter the address it redirects to` };
  }
  return { ok: false, error: `the webhook at ${url.host} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${text ? `: ${text}` : ''}` };
}

function safeLocation(location: string, base: URL): string {
  try {
    const u = new URL(location, base);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : '/…'}`;
  } catch {
    return 'another address';
  }
}

// ------------------------------------------------------------------------------------------- e-mail

export type SmtpConfig = Omit<StoredAlertSettings['email'], 'enabled' | 'password'> & { password: string | null };

/** nodemailer's options for these settings: `security` decides between TLS at once, STARTTLS required, or none. */
export function smtpOptions(cfg: SmtpConfig, timeoutMs = SMTP_TIMEOUT_MS): SMTPTransport.Options {
  const host = cfg.host ?? '';
  return {
    host,
    port: cfg.port,
    secure: cfg.security === 'tls',
    requireTLS: cfg.security === 'starttls',
    ignoreTLS: cfg.security === 'none',
    ...(cfg.username !== null ? { auth: { user: cfg.username, pass: cfg.password ?? '' } } : {}),
    tls: {
      minVersion: 'TLSv1.2',
      ...(cfg.caCertificate ? { ca: cfg.caCertificate } : {}),
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs * 3,
    // the message is built from our own text: no file or URL content is ever to be read into it
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

export function emailSubject(alert: AlertRecord): string {
  return `[usersync] ${alert.subject}`;
}

/** The plain-text body: the message, then what identifies the alert. */
export function emailText(alert: AlertRecord): string {
  const lines = [alert.message, ''];
  if (alert.connectorId) lines.push(`Connector: ${alert.connectorId}`);
  lines.push(`Alert: ${alert.kind} (#${alert.seq}), raised ${alert.at}`);
  lines.push('', '-- ', 'usersync');
  return `${lines.join('\n')}\n`;
}

/** A failed SMTP conversation as a sentence (nodemailer's error codes, the server's answer quoted). */
function smtpFailure(e: unknown, cfg: SmtpConfig, timeoutMs: number): string {
  const err = e as Error & { code?: string; response?: string; responseCode?: number };
  const where = `${cfg.host}:${cfg.port}`;
  const said = err.response ? ` (the server said: ${err.response.replace(/\s+/g, ' ').slice(0, 200)})` : '';
  const msg = (err.message ?? String(e)).replace(/\s+/g, ' ').trim();
  if (/wrong version number|packet length too long|unknown protocol/i.test(msg)) {
    return `the SMTP server ${where} does not speak TLS from the start: with security 'tls' use its SMTPS port (usually 465), or choose 'starttls' (usually port 587)`;
  }
  if (/self[- ]signed|certificate|CERT_|unable to verify/i.test(msg)) {
    return `the certificate of the SMTP server ${where} is not trusted (${msg}); if an internal CA signed it, add that CA certificate to the e-mail settings`;
  }
  if (/STARTTLS/.test(msg)) {
    return `the SMTP server ${where} does not offer STARTTLS${said || ` (${msg})`}; choose security 'tls' if it speaks TLS from the start (usually port 465), or 'none' for a relay without encryption`;
  }
  const cause = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|EHOSTUNREACH|ENETUNREACH)\b/.exec(msg)?.[1];
  if (cause === 'ECONNREFUSED') return `could not connect to the SMTP server ${where}: the connection was refused`;
  if (cause === 'ENOTFOUND' || cause === 'EAI_AGAIN' || err.code === 'EDNS') return `the host name ${cfg.host} of the SMTP server was not found (DNS)`;
  if (cause === 'EHOSTUNREACH' || cause === 'ENETUNREACH') return `the SMTP server ${where} cannot be reached from here (${cause})`;
  if (cause === 'ECONNRESET') return `the SMTP server ${where} closed the connection`;
  switch (err.code) {
    case 'ETIMEDOUT':
      return `the SMTP server ${where} did not answer within ${timeoutMs / 1000} seconds`;
    case 'ETLS':
    case 'EREQUIRETLS':
      return `a TLS connection to the SMTP server ${where} could not be made (${msg}); check 'security' and the port (465 is usually 'tls', 587 'starttls')`;
    case 'EAUTH':
    case 'ENOAUTH':
      return `the SMTP server ${where} refused the username or password${said}`;
    case 'EENVELOPE':
      return `the SMTP server ${where} refused the sender or a recipient${said || ` (${msg})`}`;
    case 'EMESSAGE':
      return `the SMTP server ${where} refused the message${said || ` (${msg})`}`;
    case 'ESOCKET':
    case 'ECONNECTION':
      return `the connection to the SMTP server ${where} failed (${msg})`;
    default:
      return `sending the e-mail through ${where} failed (${msg})${said}`;
  }
}

/** Send the alert to every recipient in one message. */
export async function sendEmail(cfg: SmtpConfig, alert: AlertRecord, opts: SendOptions = {}): Promise<ChannelResult> {
  const timeoutMs = opts.timeoutMs ?? SMTP_TIMEOUT_MS;
  if (!cfg.host || !cfg.from || cfg.to.length === 0) return { ok: false, error: 'e-mail needs an SMTP host, a sender and at least one recipient' };
  const transport = nodemailer.createTransport(smtpOptions(cfg, timeoutMs));
  const stop = () => transport.close();
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    const info = await transport.sendMail({ from: cfg.from, to: cfg.to, subject: emailSubject(alert), text: emailText(alert) });
    if (info.rejected.length > 0 && info.accepted.length === 0) {
      return { ok: false, error: `the SMTP server ${cfg.host}:${cfg.port} refused every recipient (${info.rejected.map(String).join(', ')})` };
    }
    return { ok: true };
  } catch (e) {
    if (opts.signal?.aborted) return { ok: false, error: 'sending was stopped because the service is stopping' };
    return { ok: false, error: smtpFailure(e, cfg, timeoutMs) };
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    transport.close();
  }
}
