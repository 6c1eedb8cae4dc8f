//! The one bound on every JSON body a service accepts, checked on the raw bytes before serde
//! reads them: whatever passes can be stored, read back, published, anchored and verified
//! exactly as it was sent, on both backends.
//!
//! - Nesting is at most [`MAX_DEPTH`] levels: every reader on the way (the event store, the bus
//!   message around a batch of envelopes, the anchor, the receipt around the envelope, a
//!   verifier's 128-level limit of `docs/receipts.md` §3.3) adds a few levels of its own.
//! - A number must survive RFC 8785 canonicalisation, which writes it as an IEEE 754 double: its
//!   canonical form must denote exactly the value sent (`1.0` is `1`, fine; `0.1` stays `0.1`;
//!   `0.10000000000000000001` would become `0.1`, refused), and an integral value must lie within
//!   ±(2^53 − 1), as I-JSON (RFC 7493) asks. A client keeps every digit by sending a string.
//! - Object keys are unique at every depth (receipts refuse duplicates; the last one silently
//!   winning would record something the client did not mean).
//! - Strings (keys included) hold no control characters (C0, DEL, C1) other than tab, line feed
//!   and carriage return, and no unpaired surrogate: PostgreSQL cannot store NUL, and the same input must get
//!   the same answer on both backends.

use std::collections::HashSet;

/// Deepest nesting of objects and arrays in a request body; the top-level object is level 1.
pub const MAX_DEPTH: usize = 32;

/// Why a body was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    /// Not JSON at all: the caller lets the JSON parser say why.
    Syntax,
    /// Well-formed JSON that breaks a rule above: `field` is the dotted path at fault
    /// (`metadata.items[2].name`, `(body)` for the whole body).
    Refused { field: String, message: String },
}

/// Checks `body` against every rule of the module.
pub fn check(body: &[u8]) -> Result<(), Fault> {
    let text = std::str::from_utf8(body).map_err(|_| Fault::Syntax)?;
    let mut scanner = Scanner {
        b: text.as_bytes(),
        i: 0,
        path: Vec::new(),
    };
    scanner.value(0)?;
    scanner.ws();
    if scanner.i != scanner.b.len() {
        return Err(Fault::Syntax);
    }
    Ok(())
}

/// Checks one text value (a JSON string, a query parameter) against the string rule.
pub fn check_text(s: &str) -> Result<(), String> {
    match s.chars().find(|c| is_refused_char(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "control character U+{:04X} is not allowed in text",
            c as u32
        )),
    }
}

/// A text field of a command (a title, a reason, a name): the string rule, not blank, at most
/// `max_chars` characters. The one rule for every domain and both backends.
pub fn check_text_field(s: &str, max_chars: usize) -> Result<(), String> {
    let n = s.chars().count();
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if n > max_chars {
        return Err(format!("must be at most {max_chars} characters, got {n}"));
    }
    check_text(s)
}

/// [`check_text`] as a JSON Schema (ECMA-262) pattern, for the OpenAPI document.
pub const TEXT_PATTERN: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";
/// [`check_text_field`]'s character rule as a pattern (the length goes in `maxLength`).
pub const TEXT_FIELD_PATTERN: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";

/// The name under which [`value_schema`] is a component of the OpenAPI document.
pub const VALUE_SCHEMA_NAME: &str = "JsonValue";

/// JSON Schema of any value this module accepts (but the nesting bound, which JSON Schema
/// cannot state): text strings, booleans, null, integers within ±(2^53 − 1), other numbers,
/// and arrays and objects of such values. It refers to itself as [`VALUE_SCHEMA_NAME`].
pub fn value_schema() -> serde_json::Value {
    let itself = format!("#/components/schemas/{VALUE_SCHEMA_NAME}");
    serde_json::json!({
        "description": "A JSON value recorded exactly as sent: strings without control characters \
                        but tab and line breaks, integers within ±(2^53 − 1), other numbers that \
                        keep their value as IEEE 754 doubles, nested at most 32 levels in a body.",
        "anyOf": [
            {"type": "string", "pattern": TEXT_PATTERN},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "array", "items": {"$ref": itself}},
            {
                "type": "object",
                "propertyNames": {"type": "string", "pattern": TEXT_PATTERN},
                "additionalProperties": {"$ref": itself}
            }
        ]
    })
}

/// Control characters (C0 but tab, line feed and carriage return; DEL; C1).
fn is_refused_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Largest integer every JSON reader holds exactly (I-JSON, RFC 7493 §2.2): 2^53 − 1.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

enum Segment {
    Key(String),
    Index(usize),
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    path: Vec<Segment>,
}

impl Scanner<'_> {
    fn field(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            "(body)".to_string()
        } else {
            out
        }
    }

    fn refuse(&self, message: impl Into<String>) -> Fault {
        Fault::Refused {
            field: self.field(),
            message: message.into(),
        }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Result<u8, Fault> {
        self.b.get(self.i).copied().ok_or(Fault::Syntax)
    }

    fn expect(&mut self, byte: u8) -> Result<(), Fault> {
        self.ws();
        if self.peek()? == byte {
            self.i += 1;
            Ok(())
        } else {
            Err(Fault::Syntax)
        }
    }

    /// A value whose enclosing containers are `depth` levels deep.
    fn value(&mut self, depth: usize) -> Result<(), Fault> {
        self.ws();
        match self.peek()? {
            b'{' | b'[' if depth + 1 > MAX_DEPTH => Err(self.refuse(format!(
                "nested deeper than {MAX_DEPTH} levels of objects and arrays"
            ))),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => {
                let s = self.string()?;
                check_text(&s).map_err(|m| self.refuse(m))
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Fault::Syntax),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fault> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Fault::Syntax)
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Fault> {
        self.i += 1; // '{'
        let mut keys = HashSet::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return Err(Fault::Syntax);
            }
            let key = self.string()?;
            self.path.push(Segment::Key(key.clone()));
            check_text(&key).map_err(|m| self.refuse(format!("in a key: {m}")))?;
            if !keys.insert(key) {
                return Err(self.refuse("duplicate key: each key may appear once in an object"));
            }
            self.expect(b':')?;
            self.value(depth)?;
            self.path.pop();
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Fault::Syntax),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Fault> {
        self.i += 1; // '['
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.path.push(Segment::Index(index));
            self.value(depth)?;
            self.path.pop();
            index += 1;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Fault::Syntax),
            }
        }
    }

    /// A string token, unescaped; an unpaired surrogate is refused.
    fn string(&mut self) -> Result<String, Fault> {
        self.i += 1; // '"'
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && !matches!(self.b[self.i], b'"' | b'\\' | 0..=0x1f) {
                self.i += 1;
            }
            // The input is UTF-8 and the run stops at ASCII bytes only.
            out.push_str(std::str::from_utf8(&self.b[start..self.i]).map_err(|_| Fault::Syntax)?);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let c = self.peek()?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(Fault::Syntax),
                    }
                }
                _ => return Err(Fault::Syntax), // a raw control character
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Fault> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Fault::Syntax)?;
        let text = std::str::from_utf8(digits).map_err(|_| Fault::Syntax)?;
        if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(Fault::Syntax);
        }
        self.i += 4;
        u32::from_str_radix(text, 16).map_err(|_| Fault::Syntax)
    }

    fn unicode_escape(&mut self) -> Result<char, Fault> {
        let unpaired = |s: &Self| s.refuse("an unpaired UTF-16 surrogate is not text");
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.b[self.i..].starts_with(b"\\u") {
                    return Err(unpaired(self));
                }
                self.i += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(unpaired(self));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(unpaired(self)),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| unpaired(self))
    }

    fn number(&mut self) -> Result<(), Fault> {
        let start = self.i;
        let digits = |s: &mut Self| {
            let from = s.i;
            while s.i < s.b.len() && s.b[s.i].is_ascii_digit() {
                s.i += 1;
            }
            s.i - from
        };
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return Err(Fault::Syntax);
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(Fault::Syntax);
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(Fault::Syntax);
            }
        }
        // The grammar above admits ASCII only.
        let literal = std::str::from_utf8(&self.b[start..self.i]).map_err(|_| Fault::Syntax)?;
        let value: f64 = literal.parse().map_err(|_| Fault::Syntax)?;
        if !value.is_finite() {
            return Err(self.refuse(format!(
                "the number {literal} is beyond the range of an IEEE 754 double; send it as a string"
            )));
        }
        if value.fract() == 0.0 && value.abs() > MAX_SAFE_INTEGER {
            return Err(self.refuse(format!(
                "the integer {literal} is beyond ±(2^53 − 1), which not every reader holds \
                 exactly (RFC 7493); send it as a string"
            )));
        }
        let canonical = chain_core::canonical::to_canonical_bytes(&value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| self.refuse("the number cannot be canonicalised"))?;
        if Decimal::parse(literal) != Decimal::parse(&canonical) {
            return Err(self.refuse(format!(
                "the number {literal} would be recorded as {canonical}: numbers are hashed as \
                 IEEE 754 doubles (RFC 8785); send it as a string to keep every digit"
            )));
        }
        Ok(())
    }
}

/// The exact value of a decimal literal: sign, significant digits (no leading or trailing
/// zeros) and the power of ten of the last one. Zero is one value, whatever its sign.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    /// `None` for an exponent too large to compare (its double is infinite or zero, which the
    /// caller has already checked, so such a literal never equals its canonical form).
    fn parse(literal: &str) -> Option<Decimal> {
        let (negative, rest) = match literal.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, literal),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all: String = format!("{int}{frac}");
        let trimmed_start = all.trim_start_matches('0');
        let digits = trimmed_start.trim_end_matches('0');
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        let trailing = (trimmed_start.len() - digits.len()) as i64;
        let exp = match exp {
            Some(e) => e.parse::<i64>().ok()?,
            None => 0,
        };
        Some(Decimal {
            negative,
            digits: digits.to_string(),
            exponent: exp.checked_sub(frac.len() as i64)?.checked_add(trailing)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> (String, String) {
        match check(body.as_bytes()) {
            Err(Fault::Refused { field, message }) => (field, message),
            other => panic!("{body}: expected a refusal, got {other:?}"),
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn nesting_is_bounded() {
        assert_eq!(check(nested(MAX_DEPTH).as_bytes()), Ok(()));
        let (field, message) = refused(&nested(MAX_DEPTH + 1));
        assert_eq!(field, vec!["a"; MAX_DEPTH].join("."));
        assert!(message.contains("nested deeper"), "{message}");
        // Arrays count as levels too, and far deeper input is refused without recursing.
        let arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            check(arrays.as_bytes()),
            Err(Fault::Refused { .. })
        ));
    }

    #[test]
    fn numbers_must_survive_canonicalisation() {
        for ok in [
            "1",
            "-1",
            "1.0",
            "1e2",
            "0.1",
            "-0",
            "0.000001",
            "9007199254740991",
            "9007199254740991",
            "-9007199254740991",
            "1e15",
            "1.5e-7",
            "123.456",
            "0e999999999999999999999",
        ] {
            assert_eq!(check(format!("{{\"n\":{ok}}}").as_bytes()), Ok(()), "{ok}");
        }
        for bad in [
            "9007199254740992",
            "9007199254740993",
            "1152921504606846976",
            "1152921504606847000",
            "5.120686398107859e+16",
            "1e21",
            "1234567890123456789012345678901234567890",
            "0.10000000000000000001",
            "1e400",
            "-1e400",
            "1e-400",
            "3.141592653589793238462643383279",
        ] {
            let (field, message) = refused(&format!("{{\"m\":{{\"n\":{bad}}}}}"));
            assert_eq!(field, "m.n", "{bad}");
            assert!(message.contains(bad), "{message}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_depth() {
        assert_eq!(refused(r#"{"a":1,"a":2}"#).0, "a");
        assert_eq!(refused(r#"{"x":[{"b":1},{"b":1,"\u0062":2}]}"#).0, "x[1].b");
        assert_eq!(check(br#"{"a":{"a":1},"b":{"a":1}}"#), Ok(()));
    }

    #[test]
    fn control_characters_and_lone_surrogates_are_refused() {
        assert_eq!(refused(r#"{"name":"a\u0000b"}"#).0, "name");
        assert_eq!(refused(r#"{"name":"bell\u0007"}"#).0, "name");
        assert_eq!(refused(r#"{"name":"del\u007f"}"#).0, "name");
        assert_eq!(refused(r#"{"k\u0001":1}"#).0, "k\u{1}");
        assert_eq!(refused(r#"{"s":["\ud800"]}"#).0, "s[0]");
        assert_eq!(refused(r#"{"s":"\udc00x"}"#).0, "s");
        assert_eq!(
            check("{\"s\":\"tab\\tnew\\nline\\r \\ud83d\\ude00 \u{e9}\"}".as_bytes()),
            Ok(())
        );
        assert_eq!(refused(r#"{"c1":"\u0085"}"#).0, "c1");
        assert!(check_text("ok\ttext\r\n").is_ok());
        assert!(check_text("nul\0").is_err());
        assert!(check_text_field("  ", 10).is_err());
        assert!(check_text_field("ok", 1).is_err());
        assert!(check_text_field(" ok ", 4).is_ok());
    }

    #[test]
    fn syntax_errors_are_left_to_the_parser() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":01}",
            "[1,]",
            "{\"a\":1}x",
            "\"\u{1}\"",
            "{\"a\":-}",
            "nul",
        ] {
            assert_eq!(check(bad.as_bytes()), Err(Fault::Syntax), "{bad:?}");
        }
        assert_eq!(check(b"\xff"), Err(Fault::Syntax));
        assert_eq!(check(br#" {"a" : [ 1 , true , null , "x" ] } "#), Ok(()));
    }
}
