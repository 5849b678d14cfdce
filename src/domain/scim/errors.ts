import { ERROR_SCHEMA } from './schema.ts';

/** RFC 7644 §3.12 scimType values. */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/** An error that is answered to the client as a SCIM Error response; never a crash. */
export class ScimError extends Error {
  constructor(
    public readonly status: number,
    message: string,
    public readonly scimType?: ScimType,
  ) {
    super(message);
    this.name = 'ScimError';
  }

  toJSON(): Record<string, unknown> {
    return {
      schemas: [ERROR_SCHEMA],
      status: String(this.status),
      ...(this.scimType ? { scimType: this.scimType } : {}),
      detail: this.message,
    };
  }
}

export const badRequest = (scimType: ScimType, detail: string): ScimError => new ScimError(400, detail, scimType);
export const notFound = (detail: string): ScimError => new ScimError(404, detail);
export const conflict = (detail: string): ScimError => new ScimError(409, detail, 'uniqueness');
