// Strict JSON parser (RFC 8259 with the extra rules of docs/receipts.md §3.3).
//
// JSON.parse cannot be used: it keeps the last of two duplicate keys, accepts lone surrogate
// escapes, turns 1e400 into Infinity, and loses the text of numbers (so `1.0` could not be told
// from `1`, nor 2^64 − 1 read exactly). This parser rejects:
//   - a byte order mark, and bytes that are not UTF-8;
//   - anything outside the RFC 8259 grammar (trailing commas, comments, single quotes, raw
//     control characters in strings, leading zeros, text after the value, …);
//   - duplicate object keys at any depth (compared after unescaping: "a" and "\u0061" clash);
//   - a `\u` escape of a lone surrogate;
//   - a number whose magnitude does not fit a finite double;
//   - nesting deeper than MAX_NESTING levels (the top-level value is level 1; each array or
//     object inside another adds one; an array or object at level 128 is refused).
//
// Values come back as: null, true, false, JS strings, JS arrays, `Map` for objects (key order
// kept, no prototype surprises with keys such as "__proto__"), and `JsonNumber` for numbers,
// which keeps the literal text beside the correctly rounded double.

/** Deepest level at which an array or object is accepted (level 1 = the top-level value). */
export const MAX_NESTING = 127;

/** A JSON number: its literal text and the IEEE 754 double it denotes. */
export class JsonNumber {
  constructor(text, value) {
    this.text = text;
    this.value = value;
    Object.freeze(this);
  }

  /** §3.2: a non-negative integer literal — no sign, fraction or exponent (`1`, not `1.0`). */
  get isIntegerLiteral() {
    return /^(0|[1-9][0-9]*)$/.test(this.text);
  }
}

/** Why a text is not strict JSON; `position` is the 0-based character offset. */
export class StrictJsonError extends Error {
  constructor(message, position) {
    super(message);
    this.name = 'StrictJsonError';
    this.position = position;
  }
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Parses `input` (UTF-8 bytes as a Uint8Array or ArrayBuffer, or a string) strictly.
 * Throws StrictJsonError for a text that is not strict JSON, or for an input of another type.
 * A string input must be well-formed UTF-16 (no lone surrogate code units), as bytes must be
 * valid UTF-8.
 */
export function parseStrictJson(input) {
  const text = decodeInput(input);
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.parseValue(1);
  parser.skipWhitespace();
  if (parser.pos !== text.length) parser.fail('unexpected text after the JSON value');
  return value;
}

function decodeInput(input) {
  if (typeof input === 'string') {
    if (input.charCodeAt(0) === 0xfeff) throw new StrictJsonError('the text starts with a byte order mark', 0);
    const lone = LONE_SURROGATE.exec(input);
    if (lone) throw new StrictJsonError('the text contains a lone surrogate code unit', lone.index);
    return input;
  }
  if (input instanceof ArrayBuffer) input = new Uint8Array(input);
  if (!(input instanceof Uint8Array)) throw new StrictJsonError(`no JSON text was given (expected bytes or a string, got ${input === null ? 'null' : typeof input})`, 0);
  if (input.length >= 3 && input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) {
    throw new StrictJsonError('the file starts with a byte order mark (BOM)', 0);
  }
  try {
    return fatalUtf8.decode(input);
  } catch {
    throw new StrictJsonError('the file is not valid UTF-8', 0);
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const SIMPLE_ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Parser {
  constructor(text) {
    this.text = text;
    this.pos = 0;
  }

  fail(message, at = this.pos) {
    throw new StrictJsonError(`${message} (${describePosition(this.text, at)})`, at);
  }

  // RFC 8259 whitespace is exactly space, tab, line feed and carriage return.
  skipWhitespace() {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  parseValue(level) {
    const c = this.text[this.pos];
    if (c === '{' || c === '[') {
      if (level > MAX_NESTING) this.fail(`JSON nested more than ${MAX_NESTING} levels deep`);
      return c === '{' ? this.parseObject(level) : this.parseArray(level);
    }
    if (c === '"') return this.parseString();
    if (c === '-' || (c >= '0' && c <= '9')) return this.parseNumber();
    for (const [word, value] of [['true', true], ['false', false], ['null', null]]) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail(c === undefined ? 'unexpected end of the text' : `unexpected character ${JSON.stringify(c)}`);
  }

  parseObject(level) {
    const members = new Map();
    this.pos++; // {
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return members;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail('expected a member name in double quotes');
      const keyAt = this.pos;
      const key = this.parseString();
      // Two readers must never see two different documents in one text (§3.3).
      if (members.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail('expected ":" after a member name');
      this.pos++;
      this.skipWhitespace();
      members.set(key, this.parseValue(level + 1));
      this.skipWhitespace();
      const c = this.text[this.pos++];
      if (c === '}') return members;
      if (c !== ',') this.fail('expected "," or "}" in an object', this.pos - 1);
      this.skipWhitespace();
    }
  }

  parseArray(level) {
    const items = [];
    this.pos++; // [
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.parseValue(level + 1));
      this.skipWhitespace();
      const c = this.text[this.pos++];
      if (c === ']') return items;
      if (c !== ',') this.fail('expected "," or "]" in an array', this.pos - 1);
      this.skipWhitespace();
    }
  }

  parseNumber() {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) this.fail('invalid number');
    const text = m[0];
    // A digit right after the match means a leading zero such as 01, which JSON forbids.
    const next = this.text[this.pos + text.length];
    if (next !== undefined && next >= '0' && next <= '9') this.fail('invalid number (leading zero)');
    // Number() of a JSON number literal is the correctly rounded double (ECMAScript
    // StringToNumber), as serde_json with float_roundtrip gives the reference.
    const value = Number(text);
    if (!Number.isFinite(value)) this.fail(`number ${text} does not fit a finite double`);
    this.pos += text.length;
    return new JsonNumber(text, value);
  }

  parseString() {
    const t = this.text;
    this.pos++; // opening quote
    let out = '';
    let runStart = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string');
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('raw control character in a string (it must be escaped)');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(runStart, this.pos);
      out += this.parseEscape();
      runStart = this.pos;
    }
  }

  // One escape sequence starting at a backslash; a surrogate pair is two `\u` escapes.
  parseEscape() {
    const t = this.text;
    const escapeAt = this.pos;
    const kind = t[this.pos + 1];
    if (kind !== 'u') {
      if (!Object.hasOwn(SIMPLE_ESCAPES, kind)) this.fail('invalid escape in a string');
      this.pos += 2;
      return SIMPLE_ESCAPES[kind];
    }
    const unit = this.readUnicodeEscape();
    if (unit >= 0xdc00 && unit <= 0xdfff) this.fail('\\u escape of a lone low surrogate', escapeAt);
    if (unit < 0xd800 || unit > 0xdbff) return String.fromCharCode(unit);
    // A high surrogate must be followed at once by the \u escape of a low surrogate.
    if (t[this.pos] !== '\\' || t[this.pos + 1] !== 'u') this.fail('\\u escape of a lone high surrogate', escapeAt);
    const low = this.readUnicodeEscape();
    if (low < 0xdc00 || low > 0xdfff) this.fail('\\u escape of a lone high surrogate', escapeAt);
    return String.fromCharCode(unit, low);
  }

  readUnicodeEscape() {
    const hex = this.text.slice(this.pos + 2, this.pos + 6);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape (four hex digits needed)');
    this.pos += 6;
    return parseInt(hex, 16);
  }
}

function describePosition(text, at) {
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const column = at - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/** True for a parsed JSON object. */
export function isJsonObject(value) {
  return value instanceof Map;
}

/**
 * A parsed value as plain JavaScript, for display: objects become plain objects (own data
 * properties, so a key "__proto__" is an ordinary key), numbers become their doubles.
 */
export function toPlain(value) {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toPlain(v)]));
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof JsonNumber) return value.value;
  return value;
}
