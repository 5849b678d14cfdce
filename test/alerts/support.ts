// What alerts are sent to in the tests: a real SMTP server (the smtp-server package) on a free loopback port
// that keeps every message it accepts, and a local HTTP webhook receiver that records every request and
// answers with the status the test chooses.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerOptions } from 'smtp-server';
import { freePort } from '../support/process.ts';

export interface ReceivedMail {
  /** MAIL FROM */
  from: string;
  /** RCPT TO, in order */
  to: string[];
  /** the Subject header, unfolded */
  subject: string;
  /** every header, names lower-case, unfolded */
  headers: Record<string, string>;
  /** the body, decoded (quoted-printable or 7bit) */
  text: string;
  /** the username the client authenticated with, if it did */
  user?: string;
  /** whether the message came over TLS (SMTPS or after STARTTLS) */
  secure: boolean;
}

export interface SmtpSink {
  port: number;
  mails: ReceivedMail[];
  close(): Promise<void>;
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`), as nodemailer writes headers with quotes or brackets. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([QB])\?([^?]*)\?=/gi, (_m, _charset: string, enc: string, data: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_h, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'),
    );
}

/** Minimal parsing of the messages nodemailer writes for us: headers, then a quoted-printable or 7bit text body. */
function parseMessage(raw: string): { headers: Record<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = decodeWords(line.slice(i + 1).trim());
  }
  let text = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    const bytes = text.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    text = Buffer.from(bytes, 'latin1').toString('utf8');
  } else if (/base64/i.test(headers['content-transfer-encoding'] ?? '')) {
    text = Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { headers, text: text.replace(/\r\n/g, '\n') };
}

/**
 * Start an SMTP server. `tls`: a certificate to offer STARTTLS with (or, with `implicitTls`, SMTPS);
 * `auth`: the one username and password it accepts (authentication is then required).
 */
export async function startSmtpSink(opts: { tls?: { cert: string; key: string }; implicitTls?: boolean; auth?: { username: string; password: string } } = {}): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const options: SMTPServerOptions = {
    secure: Boolean(opts.tls && opts.implicitTls),
    ...(opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {}),
    disabledCommands: [...(opts.tls ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])],
    authOptional: !opts.auth,
    logger: false,
    onAuth(auth, _session, callback) {
      if (opts.auth && auth.username === opts.auth.username && auth.password === opts.auth.password) return callback(null, { user: auth.username });
      return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const { headers, text } = parseMessage(Buffer.concat(chunks).toString('latin1'));
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: headers.subject ?? '',
          headers,
          text,
          ...(typeof session.user === 'string' ? { user: session.user } : {}),
          secure: session.secure,
        });
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** the raw body, as signed */
  body: string;
}

export interface WebhookReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** the status the next requests get (default 204) */
  status: number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(path = '/hooks/usersync'): Promise<WebhookReceiver> {
  const receiver = { requests: [] as ReceivedRequest[], status: 204 } as WebhookReceiver;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = receiver.status;
      res.end(receiver.status >= 400 ? 'receiver is down' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}
