// Translation of a compiled SCIM filter (domain/scim/query.ts) into SQL for SQLite and PostgreSQL.
// Every expression is two-valued (never NULL), so `not` means what the in-memory evaluator means.
// Case-insensitive comparisons read the search document or key columns, both folded in JavaScript,
// and compare with a folded literal: the databases never fold case themselves. Literals are always
// bound parameters; attribute names come from the schema, never from the request.

import type { RawBuilder } from 'kysely';
import { sql } from 'kysely';
import type { Condition, DocPath } from '../domain/scim/query.ts';
import type { ResourceKind } from '../domain/scim/schema.ts';
import type { Dialect } from './db.ts';

type Sql = RawBuilder<unknown>;

interface Ctx {
  dialect: Dialect;
  kind: ResourceKind;
  /** alias of the mirror table row */
  row: string;
  /** the connector being queried: lets a lookup start from an index of its own rows */
  connectorId?: string;
}

/** The folded value of a `value eq "…"` among the top-level conjuncts of an element condition. */
function valueEquality(c: Condition): string | undefined {
  if (c.k === 'and') return valueEquality(c.a) ?? valueEquality(c.b);
  if (c.k === 'cmp' && c.op === 'eq' && c.kind === 'string' && c.path.extension === null && c.path.names.join('.') === 'value') return c.value as string;
  return undefined;
}

/** Indexed columns standing in for document paths. */
function column(ctx: Ctx, path: DocPath): Sql | undefined {
  if (path.extension !== null) return undefined;
  const key = path.names.join('.');
  const r = sql.ref(ctx.row);
  switch (key) {
    case 'id':
      return sql`${r}.id`;
    case 'externalId':
      return sql`${r}.external_id`;
    case 'userName':
      return ctx.kind === 'User' ? sql`${r}.user_name_key` : undefined;
    case 'displayName':
      return ctx.kind === 'Group' ? sql`${r}.display_name_key` : undefined;
    case 'meta.created':
      return sql`${r}.created_at`;
    case 'meta.lastModified':
      return sql`${r}.updated_at`;
    default:
      return undefined;
  }
}

function jsonKeys(path: DocPath): string[] {
  return path.extension === null ? path.names : [path.extension, ...path.names];
}

/** SQLite JSON path `$."a"."b"` (keys quoted, as URNs contain ':' and '.'). */
function sqlitePath(keys: string[]): string {
  return '$' + keys.map((k) => `."${k.replace(/"/g, '')}"`).join('');
}

/** The text value at a path of a JSON document expression. */
function jsonText(ctx: Ctx, docExpr: Sql, keys: string[]): Sql {
  if (ctx.dialect === 'sqlite') return sql`json_extract(${docExpr}, ${sqlitePath(keys)})`;
  return sql`(${docExpr} #>> ${sql.val(keys)}::text[])`;
}

/** The JSON value (not unwrapped) at a path, for presence tests and array iteration. */
function jsonValue(ctx: Ctx, docExpr: Sql, keys: string[]): Sql {
  if (ctx.dialect === 'sqlite') return sql`json_extract(${docExpr}, ${sqlitePath(keys)})`;
  return sql`(${docExpr} #> ${sql.val(keys)}::text[])`;
}

function compare(ctx: Ctx, expr: Sql, cond: Extract<Condition, { k: 'cmp' }>): Sql {
  const v = cond.value;
  if (cond.kind === 'boolean') {
    // ne is handled by the caller as not(eq)
    if (ctx.dialect === 'sqlite') return sql`(${expr} IS NOT NULL AND ${expr} = ${v ? 1 : 0})`;
    return sql`(${expr} IS NOT NULL AND ${expr} = ${v ? 'true' : 'false'})`;
  }
  if (cond.kind === 'number') {
    const num = ctx.dialect === 'postgres' ? sql`(${expr})::numeric` : expr;
    const op = { eq: '=', gt: '>', ge: '>=', lt: '<', le: '<=' }[cond.op as 'eq'] ?? '=';
    return sql`(${expr} IS NOT NULL AND ${num} ${sql.raw(op)} ${v})`;
  }
  const s = v as string;
  // PostgreSQL compares in the database's collation unless told otherwise; "C" is code point order,
  // as SQLite's BINARY and the in-memory evaluator.
  const x = ctx.dialect === 'postgres' ? sql`(${expr} COLLATE "C")` : expr;
  switch (cond.op) {
    case 'eq':
      return sql`(${expr} IS NOT NULL AND ${x} = ${s})`;
    case 'co':
      return ctx.dialect === 'sqlite'
        ? sql`(${expr} IS NOT NULL AND instr(${expr}, ${s}) > 0)`
        : sql`(${expr} IS NOT NULL AND strpos(${expr}, ${s}) > 0)`;
    case 'sw':
      return sql`(${expr} IS NOT NULL AND substr(${expr}, 1, ${[...s].length}) = ${s})`;
    case 'ew': {
      const n = [...s].length;
      if (n === 0) return sql`(${expr} IS NOT NULL)`;
      return sql`(${expr} IS NOT NULL AND length(${expr}) >= ${n} AND substr(${expr}, length(${expr}) - ${n - 1}) = ${s})`;
    }
    case 'gt':
      return sql`(${expr} IS NOT NULL AND ${x} > ${s})`;
    case 'ge':
      return sql`(${expr} IS NOT NULL AND ${x} >= ${s})`;
    case 'lt':
      return sql`(${expr} IS NOT NULL AND ${x} < ${s})`;
    case 'le':
      return sql`(${expr} IS NOT NULL AND ${x} <= ${s})`;
    default:
      throw new Error(`unexpected operator ${cond.op}`);
  }
}

/**
 * Translate a condition. `doc` is the JSON document the paths are relative to: the row's search
 * document at the top, an array element inside `elem`.
 */
function translate(ctx: Ctx, cond: Condition, doc: Sql, top: boolean): Sql {
  switch (cond.k) {
    case 'and':
      return sql`(${translate(ctx, cond.a, doc, top)} AND ${translate(ctx, cond.b, doc, top)})`;
    case 'or':
      return sql`(${translate(ctx, cond.a, doc, top)} OR ${translate(ctx, cond.b, doc, top)})`;
    case 'not':
      return sql`(NOT ${translate(ctx, cond.c, doc, top)})`;
    case 'const':
      return cond.value ? sql`(1 = 1)` : sql`(1 = 0)`;
    case 'pr': {
      const col = top ? column(ctx, cond.path) : undefined;
      if (col) return sql`(${col} IS NOT NULL)`;
      return sql`(${jsonValue(ctx, doc, jsonKeys(cond.path))} IS NOT NULL)`;
    }
    case 'cmp': {
      if (cond.op === 'ne') return sql`(NOT ${translate(ctx, { ...cond, op: 'eq' }, doc, top)})`;
      const col = top ? column(ctx, cond.path) : undefined;
      const keys = jsonKeys(cond.path);
      let expr: Sql;
      if (col) expr = col;
      else if (cond.kind === 'boolean' && ctx.dialect === 'sqlite') {
        // json_extract gives 1/0 for true/false; make sure the stored value really is a boolean
        expr = sql`(CASE WHEN json_type(${doc}, ${sqlitePath(keys)}) IN ('true', 'false') THEN json_extract(${doc}, ${sqlitePath(keys)}) END)`;
      } else if (cond.kind === 'boolean') {
        expr = sql`(CASE WHEN jsonb_typeof(${jsonValue(ctx, doc, keys)}) = 'boolean' THEN ${jsonText(ctx, doc, keys)} END)`;
      } else if (cond.kind === 'string' || cond.kind === 'dateTime') {
        // only string values compare as strings (a stored number or object never matches)
        expr =
          ctx.dialect === 'sqlite'
            ? sql`(CASE WHEN json_type(${doc}, ${sqlitePath(keys)}) = 'text' THEN json_extract(${doc}, ${sqlitePath(keys)}) END)`
            : sql`(CASE WHEN jsonb_typeof(${jsonValue(ctx, doc, keys)}) = 'string' THEN ${jsonText(ctx, doc, keys)} END)`;
      } else expr = jsonText(ctx, doc, keys);
      return compare(ctx, expr, cond);
    }
    case 'elem': {
      const keys = jsonKeys(cond.path);
      const email = top && ctx.kind === 'User' && ctx.connectorId !== undefined && cond.path.extension === null && keys.join('.') === 'emails' ? valueEquality(cond.c) : undefined;
      if (email !== undefined) {
        // Narrow through the e-mail index first; the element condition below keeps the exact meaning.
        const narrowed = sql`${sql.ref(ctx.row)}.id IN (SELECT ue.user_id FROM mirror_user_emails ue WHERE ue.connector_id = ${ctx.connectorId} AND ue.value_key = ${email})`;
        return sql`(${narrowed} AND ${translate(ctx, cond, doc, false)})`;
      }
      if (ctx.dialect === 'sqlite') {
        const inner = translate(ctx, cond.c, sql`e.value`, false);
        // like PostgreSQL below, only an array is iterated (json_each would also walk an object's members)
        return sql`(json_type(${doc}, ${sqlitePath(keys)}) = 'array' AND EXISTS (SELECT 1 FROM json_each(${doc}, ${sqlitePath(keys)}) AS e WHERE json_type(e.value) = 'object' AND ${inner}))`;
      }
      const inner = translate(ctx, cond.c, sql`e.value`, false);
      return sql`EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(${jsonValue(ctx, doc, keys)}) = 'array' THEN ${jsonValue(ctx, doc, keys)} ELSE '[]'::jsonb END) AS e(value) WHERE jsonb_typeof(e.value) = 'object' AND ${inner})`;
    }
    case 'member': {
      const r = sql.ref(ctx.row);
      if (cond.side === 'groupHasMember') {
        return cond.value === null
          ? sql`EXISTS (SELECT 1 FROM mirror_members m WHERE m.connector_id = ${r}.connector_id AND m.group_id = ${r}.id)`
          : sql`EXISTS (SELECT 1 FROM mirror_members m WHERE m.connector_id = ${r}.connector_id AND m.group_id = ${r}.id AND m.member_id = ${cond.value})`;
      }
      return cond.value === null
        ? sql`EXISTS (SELECT 1 FROM mirror_members m WHERE m.connector_id = ${r}.connector_id AND m.member_id = ${r}.id)`
        : sql`EXISTS (SELECT 1 FROM mirror_members m WHERE m.connector_id = ${r}.connector_id AND m.member_id = ${r}.id AND m.group_id = ${cond.value})`;
    }
  }
}

/** The WHERE expression for a compiled filter over the mirror table aliased `row`. */
export function filterToSql(dialect: Dialect, kind: ResourceKind, row: string, cond: Condition, connectorId?: string): Sql {
  const ctx: Ctx = { dialect, kind, row, ...(connectorId !== undefined ? { connectorId } : {}) };
  return translate(ctx, cond, sql`${sql.ref(row)}.search`, true);
}
