// RFC 7644 §3.4.2.2 filter grammar, with the leniencies Entra ID needs:
// - an unquoted comparison value is read as a string (`externalId eq jyoung`, old Entra documentation);
// - a value path followed by a sub-attribute is a comparable path (`emails[type eq "work"].value eq "x"`).
// The bare-bracket form `emails[type eq "work"] eq "x"` is rejected. Errors carry the character position.

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type Literal = string | number | boolean | null;

export interface AttrPath {
  /** the schema URN when the path was written fully qualified */
  uri?: string;
  attr: string;
  /** `emails[type eq "work"]` — a filter on the elements of a multi-valued attribute */
  valueFilter?: Filter;
  sub?: string;
}

export type Filter =
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; filter: Filter }
  | { op: 'pr'; path: AttrPath }
  /** `raw`: the text of an unquoted number or true/false, which a string attribute compares with as written */
  | { op: CompareOp; path: AttrPath; value: Literal; raw?: string }
  /** `emails[type eq "work" and value co "x"]` used as a whole expression */
  | { op: 'has'; path: AttrPath; filter: Filter };

export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    public readonly position: number,
  ) {
    super(`${message} at position ${position}`);
    this.name = 'FilterSyntaxError';
  }
}

const MAX_DEPTH = 50;

const COMPARE_OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

type Token =
  | { t: 'word'; v: string; pos: number }
  | { t: 'string'; v: string; pos: number }
  | { t: 'number'; v: number; raw: string; pos: number }
  | { t: '(' | ')' | '[' | ']'; pos: number }
  | { t: 'end'; pos: number };

// An attribute path: URN-qualified names contain ':' and '.', sub-attributes may start with '$'.
const WORD = /[^\s()[\]"]+/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?(?=[\s()[\]]|$)/y;
// JSON string syntax: control characters must be escaped
// eslint-disable-next-line no-control-regex
const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;

// A UTF-16 unit that is half of a surrogate pair without its other half.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Control characters other than the whitespace between tokens.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

/**
 * Neither database can hold U+0000 or an unpaired surrogate (PostgreSQL refuses the first, both turn the
 * second into U+FFFD), so a literal containing one could only be compared dishonestly: refuse it.
 */
function unrepresentable(s: string): number {
  const control = CONTROL.exec(s);
  const lone = LONE_SURROGATE.exec(s);
  if (!control) return lone ? lone.index : -1;
  return lone ? Math.min(control.index, lone.index) : control.index;
}

function tokenize(input: string): Token[] {
  const bad = unrepresentable(input);
  if (bad >= 0) throw new FilterSyntaxError('invalid character', bad);
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === '[' || c === ']') {
      tokens.push({ t: c, pos: i });
      i++;
      continue;
    }
    if (c === '"') {
      STRING.lastIndex = i;
      const m = STRING.exec(input);
      if (!m) throw new FilterSyntaxError('unterminated or invalid string', i);
      const v = JSON.parse(m[0]) as string;
      if (v.includes('\u0000') || LONE_SURROGATE.test(v)) throw new FilterSyntaxError('invalid character escape in string', i);
      tokens.push({ t: 'string', v, pos: i });
      i += m[0].length;
      continue;
    }
    NUMBER.lastIndex = i;
    const n = NUMBER.exec(input);
    if (n) {
      tokens.push({ t: 'number', v: Number(n[0]), raw: n[0], pos: i });
      i += n[0].length;
      continue;
    }
    WORD.lastIndex = i;
    const w = WORD.exec(input);
    if (!w) throw new FilterSyntaxError(`unexpected character '${c}'`, i);
    tokens.push({ t: 'word', v: w[0], pos: i });
    i += w[0].length;
  }
  tokens.push({ t: 'end', pos: input.length });
  return tokens;
}

const NAME = /^[A-Za-z$][\w$-]*$/;

/** Parse `urn:…:attr.sub` / `attr.sub` / `attr` (no brackets). */
function parsePathWord(word: string, pos: number): AttrPath {
  let uri: string | undefined;
  let rest = word;
  if (/^urn:/i.test(word)) {
    const idx = word.lastIndexOf(':');
    uri = word.slice(0, idx);
    rest = word.slice(idx + 1);
    if (uri.length <= 4) throw new FilterSyntaxError(`invalid schema URN in '${word}'`, pos);
  }
  const parts = rest.split('.');
  if (parts.length > 2 || parts.some((p) => !NAME.test(p))) {
    throw new FilterSyntaxError(`invalid attribute path '${word}'`, pos);
  }
  const path: AttrPath = { attr: parts[0]! };
  if (uri !== undefined) path.uri = uri;
  if (parts[1] !== undefined) path.sub = parts[1];
  return path;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.i]!;
  }
  private next(): Token {
    return this.tokens[this.i++]!;
  }
  private isWord(tok: Token, w: string): boolean {
    return tok.t === 'word' && tok.v.toLowerCase() === w;
  }
  private expect(t: Token['t'], what: string): Token {
    const tok = this.next();
    if (tok.t !== t) throw new FilterSyntaxError(`expected ${what}`, tok.pos);
    return tok;
  }

  parseFilter(inBrackets: boolean): Filter {
    const f = this.parseOr(inBrackets);
    return f;
  }

  private parseOr(inBrackets: boolean): Filter {
    let left = this.parseAnd(inBrackets);
    while (this.isWord(this.peek(), 'or')) {
      this.next();
      left = { op: 'or', left, right: this.parseAnd(inBrackets) };
    }
    return left;
  }

  private parseAnd(inBrackets: boolean): Filter {
    let left = this.parseUnary(inBrackets);
    while (this.isWord(this.peek(), 'and')) {
      this.next();
      left = { op: 'and', left, right: this.parseUnary(inBrackets) };
    }
    return left;
  }

  private depth = 0;

  private parseUnary(inBrackets: boolean): Filter {
    const tok = this.peek();
    // bounded recursion: a deeply parenthesised filter is refused, not a stack overflow
    if (tok.t === '(' || this.isWord(tok, 'not')) {
      if (++this.depth > MAX_DEPTH) throw new FilterSyntaxError('filter nested too deeply', tok.pos);
      try {
        return this.parseGroup(inBrackets);
      } finally {
        this.depth--;
      }
    }
    return this.parseAttrExp(inBrackets);
  }

  private parseGroup(inBrackets: boolean): Filter {
    const tok = this.peek();
    if (this.isWord(tok, 'not')) {
      this.next();
      this.expect('(', "'(' after 'not'");
      const inner = this.parseFilter(inBrackets);
      this.expect(')', "')'");
      return { op: 'not', filter: inner };
    }
    if (tok.t === '(') {
      this.next();
      const inner = this.parseFilter(inBrackets);
      this.expect(')', "')'");
      return inner;
    }
    return this.parseAttrExp(inBrackets);
  }

  private parseAttrExp(inBrackets: boolean): Filter {
    const tok = this.next();
    if (tok.t !== 'word') throw new FilterSyntaxError('expected an attribute path', tok.pos);
    const path = parsePathWord(tok.v, tok.pos);
    if (this.peek().t === '[') {
      const open = this.next();
      if (inBrackets) throw new FilterSyntaxError('nested value filters are not allowed', open.pos);
      if (path.sub !== undefined) throw new FilterSyntaxError('a value filter must follow the attribute name', open.pos);
      const inner = this.parseFilter(true);
      this.expect(']', "']'");
      path.valueFilter = inner;
      const after = this.peek();
      // `emails[type eq "work"].value eq "x"` — the tokenizer reads `.value` as a word starting with '.'
      if (after.t === 'word' && after.v.startsWith('.')) {
        this.next();
        const sub = after.v.slice(1);
        if (!NAME.test(sub)) throw new FilterSyntaxError(`invalid sub-attribute '${sub}'`, after.pos + 1);
        path.sub = sub;
        return this.parseComparison(path);
      }
      if (after.t === 'word' && (COMPARE_OPS.has(after.v.toLowerCase()) || after.v.toLowerCase() === 'pr')) {
        throw new FilterSyntaxError(
          `a value filter cannot be compared directly; name a sub-attribute, e.g. '${path.attr}[…].value'`,
          after.pos,
        );
      }
      return { op: 'has', path: { ...path, valueFilter: undefined } as AttrPath, filter: inner };
    }
    return this.parseComparison(path);
  }

  private parseComparison(path: AttrPath): Filter {
    const opTok = this.next();
    if (opTok.t !== 'word') throw new FilterSyntaxError('expected an operator', opTok.pos);
    const op = opTok.v.toLowerCase();
    if (op === 'pr') return { op: 'pr', path };
    if (!COMPARE_OPS.has(op)) throw new FilterSyntaxError(`unknown operator '${opTok.v}'`, opTok.pos);
    const valTok = this.next();
    let value: Literal;
    let raw: string | undefined;
    switch (valTok.t) {
      case 'string':
        value = valTok.v;
        break;
      case 'number':
        value = valTok.v;
        raw = valTok.raw;
        break;
      case 'word': {
        const lower = valTok.v.toLowerCase();
        if (lower === 'true' || lower === 'false') {
          value = lower === 'true';
          raw = valTok.v;
        } else if (lower === 'null') value = null;
        else if (lower === 'and' || lower === 'or' || lower === 'not') {
          throw new FilterSyntaxError('expected a comparison value', valTok.pos);
        } else value = valTok.v; // unquoted value, read as a string
        break;
      }
      default:
        throw new FilterSyntaxError('expected a comparison value', valTok.pos);
    }
    return raw === undefined ? { op: op as CompareOp, path, value } : { op: op as CompareOp, path, value, raw };
  }

  end(): void {
    const tok = this.peek();
    if (tok.t !== 'end') throw new FilterSyntaxError('unexpected input', tok.pos);
  }
}

/** Parse a filter, throwing FilterSyntaxError (with a position) on anything outside the grammar. */
export function parseFilter(input: string): Filter {
  return parseWhole(input, false);
}

/** `inBrackets`: the text between a PATCH path's brackets, where value filters cannot nest. */
function parseWhole(input: string, inBrackets: boolean): Filter {
  if (input.trim() === '') throw new FilterSyntaxError('empty filter', 0);
  if (input.length > 10_000) throw new FilterSyntaxError('filter too long', 10_000);
  const parser = new Parser(tokenize(input));
  const f = parser.parseFilter(inBrackets);
  parser.end();
  checkDepth(f, 0);
  return f;
}

function checkDepth(f: Filter, depth: number): void {
  if (depth > 50) throw new FilterSyntaxError('filter nested too deeply', 0);
  switch (f.op) {
    case 'and':
    case 'or':
      checkDepth(f.left, depth + 1);
      checkDepth(f.right, depth + 1);
      break;
    case 'not':
    case 'has':
      checkDepth(f.filter, depth + 1);
      break;
    default:
      if (f.path.valueFilter) checkDepth(f.path.valueFilter, depth + 1);
  }
}

/** Parse a PATCH path: `attr`, `attr.sub`, `urn:…:attr.sub`, `attr[filter]`, `attr[filter].sub`. */
export function parsePatchPath(input: string): AttrPath {
  const open = input.indexOf('[');
  if (open < 0) {
    if (/\s/.test(input.trim())) throw new FilterSyntaxError(`invalid path '${input}'`, 0);
    return parsePathWord(input.trim(), 0);
  }
  const close = input.lastIndexOf(']');
  if (close < open) throw new FilterSyntaxError("expected ']'", input.length);
  const head = parsePathWord(input.slice(0, open).trim(), 0);
  if (head.sub !== undefined) throw new FilterSyntaxError('a value filter must follow the attribute name', open);
  const inner = input.slice(open + 1, close);
  let valueFilter: Filter;
  try {
    valueFilter = parseWhole(inner, true);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new FilterSyntaxError(e.message.replace(/ at position \d+$/, ''), open + 1 + e.position);
    throw e;
  }
  const tail = input.slice(close + 1).trim();
  const path: AttrPath = { ...head, valueFilter };
  if (tail !== '') {
    if (!tail.startsWith('.') || !NAME.test(tail.slice(1))) throw new FilterSyntaxError(`invalid sub-attribute '${tail}'`, close + 1);
    path.sub = tail.slice(1);
  }
  return path;
}
