//! GS1 identifiers as EPCIS carries them, checked for their form:
//!
//! - EPC URIs (`urn:epc:id:…`, `urn:epc:class:…`, `urn:epc:idpat:…`) against the pure-identity
//!   syntax of the GS1 EPC Tag Data Standard (TDS 2.x, §6–§8): the number of components, digits
//!   where digits, GS1 Company Prefix and reference lengths that sum to the key's length, and
//!   the characters (and `%`-escapes) a serial may hold;
//! - GS1 Digital Link URIs (`https://id.gs1.org/01/{gtin}/21/{serial}`, on any host) against
//!   the format of each Application Identifier in their path and its GS1 mod-10 check digit;
//! - any other URI only for being absolute (`scheme:rest`): EPCIS 2.0 lets a private identifier
//!   be any absolute URI, but a URI that claims to be GS1 must be GS1;
//! - the [`ProductKey`] (GTIN-14, lot, serial) the provenance look-ups use, so that an SGTIN URN
//!   and the Digital Link of the same item meet in one key.
//!
//! Hand-written parsers, not regular expressions: each fault is named (which component, why).

use std::fmt;

/// Why a URI is not an identifier of the form it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("'{uri}' is not an absolute URI: {reason}")]
    NotAbsoluteUri { uri: String, reason: String },
    #[error("'{uri}' is not a well-formed EPC URI: {reason}")]
    MalformedEpcUri { uri: String, reason: String },
    #[error("'{uri}' is not a well-formed GS1 Digital Link URI: {reason}")]
    MalformedDigitalLink { uri: String, reason: String },
    #[error(
        "'{uri}' names a class of objects (a product, a lot or a pattern), not one object: \
         it belongs in a quantity list (epcClass), not here"
    )]
    ClassWhereInstanceExpected { uri: String },
    #[error(
        "'{uri}' names one object, not a class of objects: an epcClass is an LGTIN \
         (urn:epc:class:lgtin:…), an EPC pattern (urn:epc:idpat:…) or a Digital Link of a GTIN \
         with at most a lot (/01/{{gtin}}/10/{{lot}})"
    )]
    InstanceWhereClassExpected { uri: String },
    #[error("'{value}' is not a valid GTIN: {reason}")]
    InvalidGtin { value: String, reason: String },
}

// ---------------------------------------------------------------------------------------------
// GS1 check digits and GTINs
// ---------------------------------------------------------------------------------------------

/// The GS1 mod-10 check digit of `digits` (the key without its check digit): weights 3 and 1
/// alternate from the rightmost digit. `None` if `digits` is empty or holds a non-digit.
pub fn gs1_check_digit(digits: &str) -> Option<char> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 0 { digit * 3 } else { digit }
        })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10)
}

/// Whether `key` (all digits, its last one the check digit) has the right GS1 check digit.
fn has_valid_check_digit(key: &str) -> bool {
    match split_check_digit(key) {
        Some((body, check)) => gs1_check_digit(body).is_some_and(|digit| check.starts_with(digit)),
        None => false,
    }
}

/// A key split into its body and its last character, the check digit.
fn split_check_digit(key: &str) -> Option<(&str, &str)> {
    let body_len = key.len().checked_sub(1).filter(|len| *len > 0)?;
    key.split_at_checked(body_len)
}

/// A GTIN as `GET /01/{gtin}` takes it: 8, 12, 13 or 14 digits with a valid check digit,
/// normalised to 14 digits (left-padded with zeros, as GS1 stores GTINs).
pub fn parse_gtin(value: &str) -> Result<String, IdentifierError> {
    let invalid = |reason: String| IdentifierError::InvalidGtin {
        value: value.to_owned(),
        reason,
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("a GTIN is digits only".to_owned()));
    }
    if ![8, 12, 13, 14].contains(&value.len()) {
        return Err(invalid(format!(
            "a GTIN has 8, 12, 13 or 14 digits, not {}",
            value.len()
        )));
    }
    if !has_valid_check_digit(value) {
        return Err(invalid(check_digit_reason(value)));
    }
    Ok(format!("{value:0>14}"))
}

/// "the check digit should be N", for a key whose check digit is wrong.
fn check_digit_reason(key: &str) -> String {
    let expected = split_check_digit(key)
        .and_then(|(body, _)| gs1_check_digit(body))
        .map_or_else(|| "?".to_owned(), String::from);
    format!("wrong check digit: {key} should end in {expected}")
}

// ---------------------------------------------------------------------------------------------
// Absolute URIs
// ---------------------------------------------------------------------------------------------

/// Checks that `uri` is an absolute URI, `scheme:rest` (RFC 3986 §3.1 scheme, a non-empty rest)
/// with no space or control character: what EPCIS 2.0 asks of a private identifier.
pub fn check_absolute_uri(uri: &str) -> Result<(), IdentifierError> {
    let not_absolute = |reason: &str| IdentifierError::NotAbsoluteUri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(not_absolute(
            "it has no scheme (an absolute URI is scheme:rest, e.g. urn:… or https://…)",
        ));
    };
    let mut scheme_chars = scheme.chars();
    let scheme_is_valid = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_is_valid {
        return Err(not_absolute(&format!(
            "'{scheme}' is not a URI scheme (a letter, then letters, digits, '+', '-' or '.')"
        )));
    }
    if rest.is_empty() {
        return Err(not_absolute("nothing follows the scheme"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(not_absolute("it holds a space or a control character"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Identifiers in EPCIS fields
// ---------------------------------------------------------------------------------------------

/// An identifier checked for its form: a GS1 one (EPC URI or Digital Link) or any other
/// absolute URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Epc(EpcUri),
    DigitalLink(DigitalLink),
    /// An absolute URI that claims no GS1 form (a private identifier).
    Other,
}

/// Whether an identifier names one object or a class of objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierLevel {
    Instance,
    Class,
}

impl Identifier {
    /// The level of a GS1 identifier; `None` for a private one, whose level only its owner knows.
    pub fn level(&self) -> Option<IdentifierLevel> {
        match self {
            Identifier::Epc(epc) => Some(match epc.kind() {
                EpcUriKind::Id => IdentifierLevel::Instance,
                EpcUriKind::Class | EpcUriKind::Pattern => IdentifierLevel::Class,
            }),
            Identifier::DigitalLink(link) => Some(link.level()),
            Identifier::Other => None,
        }
    }
}

/// Checks any identifier an EPCIS field may hold: an absolute URI; and if it is an EPC URI
/// (`urn:epc:…`) or a GS1 Digital Link (a path starting with a GS1 primary key, on any host),
/// a well-formed one.
pub fn check_identifier(uri: &str) -> Result<Identifier, IdentifierError> {
    check_absolute_uri(uri)?;
    if starts_with_ignore_case(uri, "urn:epc:") {
        return parse_epc_uri(uri).map(Identifier::Epc);
    }
    Ok(match parse_digital_link(uri)? {
        Some(link) => Identifier::DigitalLink(link),
        None => Identifier::Other,
    })
}

/// [`check_identifier`] for a field that names objects one by one (`epcList`, `parentID`,
/// `childEPCs`, input and output EPC lists, locations, parties): a GS1 class-level identifier
/// is refused.
pub fn check_instance_identifier(uri: &str) -> Result<Identifier, IdentifierError> {
    let identifier = check_identifier(uri)?;
    if identifier.level() == Some(IdentifierLevel::Class) {
        return Err(IdentifierError::ClassWhereInstanceExpected {
            uri: uri.to_owned(),
        });
    }
    Ok(identifier)
}

/// [`check_identifier`] for an `epcClass` of a quantity list: a GS1 instance-level identifier
/// is refused.
pub fn check_class_identifier(uri: &str) -> Result<Identifier, IdentifierError> {
    let identifier = check_identifier(uri)?;
    if identifier.level() == Some(IdentifierLevel::Instance) {
        return Err(IdentifierError::InstanceWhereClassExpected {
            uri: uri.to_owned(),
        });
    }
    Ok(identifier)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

// ---------------------------------------------------------------------------------------------
// EPC URIs (TDS pure identity, class and pattern URIs)
// ---------------------------------------------------------------------------------------------

/// The three EPC URI forms EPCIS carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpcUriKind {
    /// `urn:epc:id:<scheme>:…`, one object.
    Id,
    /// `urn:epc:class:<scheme>:…`, a class (LGTIN: a GTIN and a lot).
    Class,
    /// `urn:epc:idpat:<scheme>:…`, the objects matching a pattern (`*` components).
    Pattern,
}

/// A well-formed EPC URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpcUri {
    kind: EpcUriKind,
    scheme: &'static str,
    /// The components as written (escapes kept), separated in the URI by `.`.
    components: Vec<String>,
}

impl EpcUri {
    pub fn kind(&self) -> EpcUriKind {
        self.kind
    }

    /// The scheme: `sgtin`, `sscc`, `lgtin`, …
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The components as written (`%`-escapes kept; `*` in a pattern).
    pub fn components(&self) -> &[String] {
        &self.components
    }
}

/// One component of an EPC URI, as TDS defines it.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// A GS1 Company Prefix: 6 to 12 digits.
    CompanyPrefix,
    /// Digits that, with the company prefix, make `total` digits.
    Reference { name: &'static str, total: usize },
    /// GS3A3 characters (TDS §5), 1 to `max` of them (an escape counts as one).
    Text { name: &'static str, max: usize },
    /// GS3A3 characters that, with the company prefix, make at most `total` characters.
    TextAfterPrefix { name: &'static str, total: usize },
    /// CSET 39 characters (`0-9 A-Z -`, `#` as `%23`, `/` as `%2F`) that, with the company
    /// prefix, make at most `total` characters.
    Cset39AfterPrefix { name: &'static str, total: usize },
    /// Exactly `min..=max` digits, leading zeros significant.
    Digits {
        name: &'static str,
        min: usize,
        max: usize,
    },
    /// A decimal number without leading zeros, at most `max_digits` digits.
    NumberWithoutLeadingZero {
        name: &'static str,
        max_digits: usize,
    },
    /// A decimal number without leading zeros, at most `max`.
    Integer { name: &'static str, max: u64 },
    /// An ISO 6346 container code (BIC) with its check digit.
    ContainerCode,
    /// An IMO vessel number with its check digit.
    ImoNumber,
    /// A CAGE code (5 characters) or DoDAAC (6 characters).
    CageOrDodaac,
    /// ADI characters (`0-9 A-Z -`, `/` as `%2F`), `min..=max` of them; a serial may begin
    /// with `#` (`%23`).
    AdiText {
        name: &'static str,
        min: usize,
        max: usize,
        serial: bool,
    },
}

use Part::*;

/// An EPC scheme: its components in order, and whether `urn:epc:idpat:` may use it.
struct EpcScheme {
    name: &'static str,
    parts: &'static [Part],
    pattern_allowed: bool,
}

/// A scheme TDS §8 defines pattern URIs for.
const fn scheme(name: &'static str, parts: &'static [Part]) -> EpcScheme {
    EpcScheme {
        name,
        parts,
        pattern_allowed: true,
    }
}

const fn scheme_without_pattern(name: &'static str, parts: &'static [Part]) -> EpcScheme {
    EpcScheme {
        name,
        parts,
        pattern_allowed: false,
    }
}

const fn reference(name: &'static str, total: usize) -> Part {
    Reference { name, total }
}

const fn text(name: &'static str, max: usize) -> Part {
    Text { name, max }
}

const fn digits(name: &'static str, min: usize, max: usize) -> Part {
    Digits { name, min, max }
}

const fn integer(name: &'static str, max: u64) -> Part {
    Integer { name, max }
}

const ITEM_REFERENCE: Part = reference("item reference and indicator", 13);
const SERIAL_20: Part = text("serial number", 20);

/// `urn:epc:id:` schemes (TDS §6.3).
const ID_SCHEMES: &[EpcScheme] = &[
    scheme("sgtin", &[CompanyPrefix, ITEM_REFERENCE, SERIAL_20]),
    scheme("sscc", &[CompanyPrefix, reference("serial reference", 17)]),
    scheme(
        "sgln",
        &[
            CompanyPrefix,
            reference("location reference", 12),
            text("extension", 20),
        ],
    ),
    scheme(
        "grai",
        &[
            CompanyPrefix,
            reference("asset type", 12),
            text("serial number", 16),
        ],
    ),
    scheme(
        "giai",
        &[
            CompanyPrefix,
            TextAfterPrefix {
                name: "individual asset reference",
                total: 30,
            },
        ],
    ),
    scheme("gsrn", &[CompanyPrefix, reference("service reference", 17)]),
    scheme(
        "gsrnp",
        &[CompanyPrefix, reference("service reference", 17)],
    ),
    scheme(
        "gdti",
        &[
            CompanyPrefix,
            reference("document type", 12),
            text("serial number", 17),
        ],
    ),
    scheme(
        "cpi",
        &[
            CompanyPrefix,
            Cset39AfterPrefix {
                name: "component/part reference",
                total: 30,
            },
            NumberWithoutLeadingZero {
                name: "serial number",
                max_digits: 12,
            },
        ],
    ),
    scheme(
        "sgcn",
        &[
            CompanyPrefix,
            reference("coupon reference", 12),
            digits("serial component", 1, 12),
        ],
    ),
    scheme(
        "ginc",
        &[
            CompanyPrefix,
            TextAfterPrefix {
                name: "consignment reference",
                total: 30,
            },
        ],
    ),
    scheme("gsin", &[CompanyPrefix, reference("shipper reference", 16)]),
    scheme(
        "itip",
        &[
            CompanyPrefix,
            ITEM_REFERENCE,
            digits("piece number", 2, 2),
            digits("total pieces", 2, 2),
            SERIAL_20,
        ],
    ),
    scheme(
        "upui",
        &[
            CompanyPrefix,
            ITEM_REFERENCE,
            text("third-party serialised extension", 28),
        ],
    ),
    scheme("pgln", &[CompanyPrefix, reference("party reference", 12)]),
    scheme_without_pattern("bic", &[ContainerCode]),
    scheme_without_pattern("imovn", &[ImoNumber]),
    scheme(
        "gid",
        &[
            integer("general manager number", (1 << 28) - 1),
            integer("object class", (1 << 24) - 1),
            integer("serial number", (1 << 36) - 1),
        ],
    ),
    scheme(
        "usdod",
        &[CageOrDodaac, integer("serial number", (1 << 36) - 1)],
    ),
    scheme(
        "adi",
        &[
            CageOrDodaac,
            AdiText {
                name: "original part number",
                min: 0,
                max: 32,
                serial: false,
            },
            AdiText {
                name: "serial number",
                min: 1,
                max: 30,
                serial: true,
            },
        ],
    ),
];

/// `urn:epc:class:` schemes (TDS §6.4).
const CLASS_SCHEMES: &[EpcScheme] = &[scheme_without_pattern(
    "lgtin",
    &[CompanyPrefix, ITEM_REFERENCE, text("lot number", 20)],
)];

/// Parses an EPC URI: `urn:epc:id:`, `urn:epc:class:` or `urn:epc:idpat:`, each component
/// checked against TDS.
pub fn parse_epc_uri(uri: &str) -> Result<EpcUri, IdentifierError> {
    let malformed = |reason: String| IdentifierError::MalformedEpcUri {
        uri: uri.to_owned(),
        reason,
    };
    let Some(body) = uri.strip_prefix("urn:epc:") else {
        return Err(malformed(
            "an EPC URI begins with 'urn:epc:' in lower case".to_owned(),
        ));
    };
    let (form, rest) = body.split_once(':').unwrap_or((body, ""));
    let (kind, schemes) = match form {
        "id" => (EpcUriKind::Id, ID_SCHEMES),
        "class" => (EpcUriKind::Class, CLASS_SCHEMES),
        "idpat" => (EpcUriKind::Pattern, ID_SCHEMES),
        "tag" | "raw" => {
            return Err(malformed(format!(
                "'urn:epc:{form}:' is a tag encoding; EPCIS carries pure-identity EPC URIs \
                 (urn:epc:id:…)"
            )));
        }
        other => {
            return Err(malformed(format!(
                "'{other}' is not an EPC URI form (id, class or idpat)"
            )));
        }
    };
    let (scheme_name, value) = rest.split_once(':').unwrap_or((rest, ""));
    let Some(scheme) = schemes.iter().find(|s| s.name == scheme_name) else {
        let known: Vec<&str> = schemes.iter().map(|s| s.name).collect();
        return Err(malformed(format!(
            "'{scheme_name}' is not an EPC scheme of urn:epc:{form}: (known: {})",
            known.join(", ")
        )));
    };
    if kind == EpcUriKind::Pattern && !scheme.pattern_allowed {
        return Err(malformed(format!(
            "TDS defines no pattern URI for '{scheme_name}'"
        )));
    }
    let components = split_components(value, scheme.parts.len()).map_err(&malformed)?;
    check_components(scheme, kind, &components).map_err(&malformed)?;
    Ok(EpcUri {
        kind,
        scheme: scheme.name,
        components: components.into_iter().map(str::to_owned).collect(),
    })
}

/// Splits `value` into `count` `.`-separated components; the last keeps any further `.` (a
/// serial may hold one).
fn split_components(value: &str, count: usize) -> Result<Vec<&str>, String> {
    let components: Vec<&str> = value.splitn(count, '.').collect();
    if components.len() != count {
        return Err(format!(
            "expected {count} component(s) separated by '.', found {}",
            components.len()
        ));
    }
    Ok(components)
}

fn check_components(
    scheme: &EpcScheme,
    kind: EpcUriKind,
    components: &[&str],
) -> Result<(), String> {
    let company_prefix = match scheme.parts.first() {
        Some(CompanyPrefix) => components.first().copied().filter(|c| *c != "*"),
        _ => None,
    };
    let mut wildcard_seen = false;
    for (part, component) in scheme.parts.iter().zip(components) {
        if kind == EpcUriKind::Pattern {
            // TDS §8: once a component is `*`, every later one is `*` too.
            if *component == "*" {
                wildcard_seen = true;
                continue;
            }
            if wildcard_seen {
                return Err(format!(
                    "'{component}' follows a '*': in a pattern, every component after a '*' is '*'"
                ));
            }
        }
        check_part(*part, component, company_prefix)?;
    }
    Ok(())
}

fn check_part(part: Part, value: &str, company_prefix: Option<&str>) -> Result<(), String> {
    let prefix_len = company_prefix.map_or(0, str::len);
    match part {
        CompanyPrefix => check_company_prefix(value),
        Reference { name, total } => {
            check_digits(name, value)?;
            if prefix_len + value.len() != total {
                return Err(format!(
                    "the company prefix ({prefix_len} digits) and the {name} '{value}' \
                     ({} digits) must make {total} digits",
                    value.len()
                ));
            }
            Ok(())
        }
        Text { name, max } => check_length(name, value, gs3a3_len(name, value)?, 1, max),
        TextAfterPrefix { name, total } => {
            let len = gs3a3_len(name, value)?;
            check_length(name, value, len, 1, total.saturating_sub(prefix_len))
        }
        Cset39AfterPrefix { name, total } => {
            let len = cset39_len(name, value)?;
            check_length(name, value, len, 1, total.saturating_sub(prefix_len))
        }
        Digits { name, min, max } => {
            check_digits(name, value)?;
            check_length(name, value, value.len(), min, max)
        }
        NumberWithoutLeadingZero { name, max_digits } => {
            check_number_without_leading_zero(name, value)?;
            check_length(name, value, value.len(), 1, max_digits)
        }
        Integer { name, max } => {
            check_number_without_leading_zero(name, value)?;
            match value.parse::<u64>() {
                Ok(number) if number <= max => Ok(()),
                _ => Err(format!("the {name} '{value}' exceeds {max}")),
            }
        }
        ContainerCode => check_container_code(value),
        ImoNumber => check_imo_number(value),
        CageOrDodaac => check_cage_or_dodaac(value),
        AdiText {
            name,
            min,
            max,
            serial,
        } => {
            let len = adi_len(name, value, serial)?;
            check_length(name, value, len, min, max)
        }
    }
}

fn check_company_prefix(value: &str) -> Result<(), String> {
    check_digits("company prefix", value)?;
    if !(6..=12).contains(&value.len()) {
        return Err(format!(
            "the company prefix '{value}' has {} digits; a GS1 Company Prefix has 6 to 12",
            value.len()
        ));
    }
    Ok(())
}

fn check_digits(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {name} '{value}' must be digits"));
    }
    Ok(())
}

fn check_number_without_leading_zero(name: &str, value: &str) -> Result<(), String> {
    check_digits(name, value)?;
    if value.len() > 1 && value.starts_with('0') {
        return Err(format!(
            "the {name} '{value}' is a number and has no leading zero"
        ));
    }
    Ok(())
}

fn check_length(name: &str, value: &str, len: usize, min: usize, max: usize) -> Result<(), String> {
    if len < min {
        return Err(if min == 1 {
            format!("the {name} is empty")
        } else {
            format!("the {name} '{value}' has {len} characters, fewer than {min}")
        });
    }
    if len > max {
        return Err(format!(
            "the {name} '{value}' has {len} characters, more than {max}"
        ));
    }
    Ok(())
}

/// The escapes TDS allows in a GS3A3 component (`"`, `%`, `&`, `/`, `<`, `>`, `?`).
const GS3A3_ESCAPES: [&str; 7] = ["22", "25", "26", "2F", "3C", "3E", "3F"];

/// The length of a GS3A3 component (TDS §5: letters, digits, `!'()*+,-.:;=_`, and the escapes
/// of `"%&/<>?`), an escape counting as one character.
fn gs3a3_len(name: &str, value: &str) -> Result<usize, String> {
    count_escaped(name, value, &GS3A3_ESCAPES, |c| {
        c.is_ascii_alphanumeric() || "!'()*+,-.:;=_".contains(c)
    })
}

/// The length of a CSET 39 component as TDS writes it in a URI (`#` as `%23`, `/` as `%2F`).
fn cset39_len(name: &str, value: &str) -> Result<usize, String> {
    count_escaped(name, value, &["23", "2F"], |c| {
        c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-'
    })
}

/// The length of an ADI component (TDS §6.3.21: `0-9 A-Z -`, `/` as `%2F`; a serial may
/// begin with `#`, `%23`).
fn adi_len(name: &str, value: &str, serial: bool) -> Result<usize, String> {
    let (hash_len, rest) = match value.strip_prefix("%23") {
        Some(rest) if serial => (1, rest),
        _ => (0, value),
    };
    let len = count_escaped(name, rest, &["2F"], |c| {
        c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-'
    })?;
    Ok(hash_len + len)
}

/// Counts the characters of `value`, each either `allowed` or one of the `%XX` escapes in
/// `escapes` (hex digits in either case).
fn count_escaped(
    name: &str,
    value: &str,
    escapes: &[&str],
    allowed: impl Fn(char) -> bool,
) -> Result<usize, String> {
    let mut count = 0;
    let mut chars = value.char_indices();
    while let Some((index, c)) = chars.next() {
        if c == '%' {
            let escape = value.get(index + 1..index + 3).unwrap_or("");
            if !escapes.iter().any(|e| e.eq_ignore_ascii_case(escape)) {
                let allowed_escapes: Vec<String> =
                    escapes.iter().map(|e| format!("%{e}")).collect();
                return Err(format!(
                    "the {name} '{value}' holds '%{escape}', not an escape allowed there ({})",
                    allowed_escapes.join(" ")
                ));
            }
            chars.nth(1);
        } else if !allowed(c) {
            return Err(format!(
                "the {name} '{value}' holds '{c}', a character not allowed there"
            ));
        }
        count += 1;
    }
    Ok(count)
}

/// ISO 6346 container code: owner code (3 letters), category (U, J or Z), 6 digits, check digit.
fn check_container_code(value: &str) -> Result<(), String> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 11
        && bytes[..3].iter().all(u8::is_ascii_uppercase)
        && matches!(bytes[3], b'U' | b'J' | b'Z')
        && bytes[4..].iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err(format!(
            "the container code '{value}' is not an ISO 6346 code (3 letters, U/J/Z, 7 digits)"
        ));
    }
    let sum: u32 = bytes[..10]
        .iter()
        .enumerate()
        .map(|(position, &byte)| iso6346_value(byte) << position)
        .sum();
    let expected = sum % 11 % 10;
    if u32::from(bytes[10] - b'0') != expected {
        return Err(format!(
            "the container code '{value}' has a wrong check digit (should be {expected})"
        ));
    }
    Ok(())
}

/// ISO 6346 character values: digits as themselves, letters from A = 10 upwards skipping the
/// multiples of 11.
fn iso6346_value(byte: u8) -> u32 {
    if byte.is_ascii_digit() {
        return u32::from(byte - b'0');
    }
    let mut value = 10;
    for _ in b'A'..byte {
        value += 1;
        if value % 11 == 0 {
            value += 1;
        }
    }
    value
}

/// IMO vessel number: 7 digits, the last the check digit (weights 7 to 2, mod 10).
fn check_imo_number(value: &str) -> Result<(), String> {
    let bytes = value.as_bytes();
    if bytes.len() != 7 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(format!("the IMO number '{value}' must be 7 digits"));
    }
    let sum: u32 = bytes[..6]
        .iter()
        .zip((2..=7).rev())
        .map(|(&byte, weight)| u32::from(byte - b'0') * weight)
        .sum();
    if u32::from(bytes[6] - b'0') != sum % 10 {
        return Err(format!(
            "the IMO number '{value}' has a wrong check digit (should be {})",
            sum % 10
        ));
    }
    Ok(())
}

fn check_cage_or_dodaac(value: &str) -> Result<(), String> {
    let well_formed = matches!(value.len(), 5 | 6)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !well_formed {
        return Err(format!(
            "'{value}' is neither a CAGE code (5 characters) nor a DoDAAC (6), in digits and \
             capital letters"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GS1 Digital Link URIs
// ---------------------------------------------------------------------------------------------

/// The format of an Application Identifier's value (GS1 General Specifications §3).
#[derive(Debug, Clone, Copy)]
enum AiFormat {
    /// Exactly `digits` digits, the last a check digit.
    NumericWithCheckDigit { digits: usize },
    /// A GTIN: 8, 12, 13 or 14 digits with check digit.
    Gtin,
    /// `digits` digits with check digit, then an optional serial of up to `serial_max` CSET 82
    /// characters (digits only if `serial_numeric`); `leading_zero`: the first digit is a zero
    /// filler (GRAI).
    KeyWithSerial {
        digits: usize,
        serial_max: usize,
        serial_numeric: bool,
        leading_zero: bool,
    },
    /// 1 to `max` CSET 82 characters.
    Text { max: usize },
    /// 1 to `max` CSET 39 characters.
    Cset39 { max: usize },
    /// 1 to `max` digits.
    DigitsUpTo { max: usize },
    /// ITIP: a GTIN-14 (check digit), then piece number and total pieces, two digits each.
    Itip,
    /// UIC with extension: one digit, then three CSET 82 characters.
    UicExtension,
}

/// A GS1 Application Identifier a Digital Link path may hold.
struct ApplicationIdentifier {
    code: &'static str,
    name: &'static str,
    format: AiFormat,
    /// For a primary key, the qualifier sequences it admits, each in path order; a path's
    /// qualifiers are an ordered selection of one of them.
    qualifiers: &'static [&'static [&'static str]],
}

const fn ai(
    code: &'static str,
    name: &'static str,
    format: AiFormat,
    qualifiers: &'static [&'static [&'static str]],
) -> ApplicationIdentifier {
    ApplicationIdentifier {
        code,
        name,
        format,
        qualifiers,
    }
}

const fn key_with_serial(digits: usize, serial_max: usize, serial_numeric: bool) -> AiFormat {
    AiFormat::KeyWithSerial {
        digits,
        serial_max,
        serial_numeric,
        leading_zero: false,
    }
}

/// The GS1 Digital Link primary keys (GS1 Digital Link Standard, URI syntax).
const PRIMARY_KEYS: &[ApplicationIdentifier] = &[
    ai(
        "01",
        "GTIN",
        AiFormat::Gtin,
        &[&["22", "10", "21"], &["235"]],
    ),
    ai(
        "00",
        "SSCC",
        AiFormat::NumericWithCheckDigit { digits: 18 },
        &[],
    ),
    ai("253", "GDTI", key_with_serial(13, 17, false), &[]),
    ai("255", "GCN", key_with_serial(13, 12, true), &[]),
    ai("401", "GINC", AiFormat::Text { max: 30 }, &[]),
    ai(
        "402",
        "GSIN",
        AiFormat::NumericWithCheckDigit { digits: 17 },
        &[],
    ),
    ai(
        "414",
        "GLN",
        AiFormat::NumericWithCheckDigit { digits: 13 },
        &[&["254"], &["7040"]],
    ),
    ai(
        "417",
        "party GLN",
        AiFormat::NumericWithCheckDigit { digits: 13 },
        &[&["7040"]],
    ),
    ai(
        "8003",
        "GRAI",
        AiFormat::KeyWithSerial {
            digits: 14,
            serial_max: 16,
            serial_numeric: false,
            leading_zero: true,
        },
        &[],
    ),
    ai("8004", "GIAI", AiFormat::Text { max: 30 }, &[&["7040"]]),
    ai("8006", "ITIP", AiFormat::Itip, &[&["22", "10", "21"]]),
    ai("8010", "CPID", AiFormat::Cset39 { max: 30 }, &[&["8011"]]),
    ai("8013", "GMN", AiFormat::Text { max: 25 }, &[&["7040"]]),
    ai(
        "8017",
        "GSRN (provider)",
        AiFormat::NumericWithCheckDigit { digits: 18 },
        &[&["8019"]],
    ),
    ai(
        "8018",
        "GSRN (recipient)",
        AiFormat::NumericWithCheckDigit { digits: 18 },
        &[&["8019"]],
    ),
];

/// The key qualifiers those primary keys admit.
const QUALIFIERS: &[ApplicationIdentifier] = &[
    ai(
        "22",
        "consumer product variant",
        AiFormat::Text { max: 20 },
        &[],
    ),
    ai("10", "batch or lot number", AiFormat::Text { max: 20 }, &[]),
    ai("21", "serial number", AiFormat::Text { max: 20 }, &[]),
    ai(
        "235",
        "third-party serialised extension",
        AiFormat::Text { max: 28 },
        &[],
    ),
    ai("254", "GLN extension", AiFormat::Text { max: 20 }, &[]),
    ai("7040", "UIC with extension", AiFormat::UicExtension, &[]),
    ai(
        "8011",
        "CPID serial number",
        AiFormat::DigitsUpTo { max: 12 },
        &[],
    ),
    ai(
        "8019",
        "service relation instance number",
        AiFormat::DigitsUpTo { max: 10 },
        &[],
    ),
];

/// The host of GS1's own resolver: every path there is a Digital Link.
const GS1_RESOLVER_HOST: &str = "id.gs1.org";

/// A well-formed GS1 Digital Link URI: its primary key and key qualifiers, values decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalLink {
    host: String,
    primary_key: (&'static str, String),
    qualifiers: Vec<(&'static str, String)>,
}

impl DigitalLink {
    /// The host (any: Digital Link allows any domain), lower-cased.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The primary key: its Application Identifier (`01`, `00`, `414`, …) and value.
    pub fn primary_key(&self) -> (&str, &str) {
        (self.primary_key.0, &self.primary_key.1)
    }

    /// The key qualifiers in path order: Application Identifier and decoded value.
    pub fn qualifiers(&self) -> &[(&'static str, String)] {
        &self.qualifiers
    }

    /// The decoded value of one key qualifier (`"21"` for the serial), if present.
    pub fn qualifier(&self, code: &str) -> Option<&str> {
        self.qualifiers
            .iter()
            .find(|(ai, _)| *ai == code)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the link names one object or a class: a GTIN (or ITIP) without serial, a GDTI or
    /// GCN without serial and a GRAI without serial name classes; the rest name one thing.
    pub fn level(&self) -> IdentifierLevel {
        let (code, value) = (self.primary_key.0, self.primary_key.1.as_str());
        let is_class = match code {
            "01" => self.qualifier("21").is_none() && self.qualifier("235").is_none(),
            "8006" => self.qualifier("21").is_none(),
            "253" | "255" => value.len() == 13,
            "8003" => value.len() == 14,
            _ => false,
        };
        if is_class {
            IdentifierLevel::Class
        } else {
            IdentifierLevel::Instance
        }
    }
}

/// Parses a GS1 Digital Link URI. `Ok(None)` if `uri` is not one (not http(s), or its path does
/// not start with a GS1 primary key — except on `id.gs1.org`, where every path must be a
/// Digital Link); an error if it is one but malformed: unknown or misplaced qualifier, a value
/// of the wrong form, a wrong check digit.
pub fn parse_digital_link(uri: &str) -> Result<Option<DigitalLink>, IdentifierError> {
    let malformed = |reason: String| IdentifierError::MalformedDigitalLink {
        uri: uri.to_owned(),
        reason,
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Ok(None);
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after_authority) = rest.split_at(authority_end);
    let host = authority.to_ascii_lowercase();
    let path = after_authority.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let on_gs1_resolver = host == GS1_RESOLVER_HOST;
    let first = segments.first().copied().unwrap_or_default();
    let Some(primary) = PRIMARY_KEYS.iter().find(|key| key.code == first) else {
        if on_gs1_resolver {
            return Err(malformed(format!(
                "on {GS1_RESOLVER_HOST} the path starts with a GS1 primary key ({})",
                codes(PRIMARY_KEYS)
            )));
        }
        return Ok(None);
    };
    let pairs = pair_segments(&segments).map_err(&malformed)?;
    let link = read_key_path(host, primary, &pairs).map_err(&malformed)?;
    Ok(Some(link))
}

fn codes(identifiers: &[ApplicationIdentifier]) -> String {
    identifiers
        .iter()
        .map(|ai| ai.code)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pairs the path segments as `/{ai}/{value}`.
fn pair_segments<'a>(segments: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut pairs = Vec::with_capacity(segments.len() / 2);
    for chunk in segments.chunks(2) {
        match chunk {
            [code, value] if !value.is_empty() => pairs.push((*code, *value)),
            ["", ..] => return Err("the path has an empty segment".to_owned()),
            [code, ..] => return Err(format!("Application Identifier {code} has no value")),
            [] => {}
        }
    }
    Ok(pairs)
}

/// Reads the primary key and its qualifiers (the first pair is the primary key's).
fn read_key_path(
    host: String,
    primary: &'static ApplicationIdentifier,
    pairs: &[(&str, &str)],
) -> Result<DigitalLink, String> {
    let Some(((_, primary_value), qualifier_pairs)) = pairs.split_first() else {
        return Err(format!("the {} has no value", primary.name));
    };
    let primary_value = check_ai_value(primary, primary_value)?;
    let mut qualifiers = Vec::with_capacity(qualifier_pairs.len());
    for (code, raw_value) in qualifier_pairs {
        let Some(qualifier) = QUALIFIERS.iter().find(|q| q.code == *code) else {
            return Err(format!(
                "'{code}' is not a key qualifier of {} ({}){}",
                primary.code,
                primary.name,
                allowed_qualifiers_hint(primary)
            ));
        };
        qualifiers.push((qualifier.code, check_ai_value(qualifier, raw_value)?));
    }
    let codes: Vec<&str> = qualifiers.iter().map(|(code, _)| *code).collect();
    let qualifiers_fit = codes.is_empty()
        || primary
            .qualifiers
            .iter()
            .any(|sequence| is_ordered_selection(&codes, sequence));
    if !qualifiers_fit {
        return Err(format!(
            "the qualifiers {} do not fit primary key {} ({}){}",
            codes.join("/"),
            primary.code,
            primary.name,
            allowed_qualifiers_hint(primary)
        ));
    }
    Ok(DigitalLink {
        host,
        primary_key: (primary.code, primary_value),
        qualifiers,
    })
}

fn allowed_qualifiers_hint(primary: &ApplicationIdentifier) -> String {
    if primary.qualifiers.is_empty() {
        return ": it takes no qualifier".to_owned();
    }
    let sequences: Vec<String> = primary.qualifiers.iter().map(|s| s.join("/")).collect();
    format!(": it takes, in this order, {}", sequences.join(" or "))
}

/// Whether `codes` picks elements of `sequence` in its order, none twice.
fn is_ordered_selection(codes: &[&str], sequence: &[&str]) -> bool {
    let mut remaining = sequence.iter();
    codes
        .iter()
        .all(|code| remaining.by_ref().any(|allowed| allowed == code))
}

/// Decodes and checks one Application Identifier value; returns it decoded.
fn check_ai_value(ai: &ApplicationIdentifier, raw: &str) -> Result<String, String> {
    let value = percent_decode(raw).map_err(|reason| format!("{} '{raw}': {reason}", ai.name))?;
    check_ai_format(ai, &value)
        .map_err(|reason| format!("{} ({}) '{value}': {reason}", ai.name, ai.code))?;
    Ok(value)
}

fn check_ai_format(ai: &ApplicationIdentifier, value: &str) -> Result<(), String> {
    match ai.format {
        AiFormat::NumericWithCheckDigit { digits } => check_numeric_key(value, digits),
        AiFormat::Gtin => parse_gtin(value).map(drop).map_err(|error| match error {
            IdentifierError::InvalidGtin { reason, .. } => reason,
            other => other.to_string(),
        }),
        AiFormat::KeyWithSerial {
            digits,
            serial_max,
            serial_numeric,
            leading_zero,
        } => {
            let (key, serial) = split_leading(value, digits);
            if leading_zero && !key.starts_with('0') {
                return Err("the first digit is the filler 0".to_owned());
            }
            check_numeric_key(key, digits)?;
            if serial_numeric {
                check_digits_up_to(serial, 0, serial_max)
            } else {
                check_cset82(serial, 0, serial_max)
            }
        }
        AiFormat::Text { max } => check_cset82(value, 1, max),
        AiFormat::Cset39 { max } => {
            let is_cset39 = value.chars().all(|c| {
                c.is_ascii_digit() || c.is_ascii_uppercase() || matches!(c, '#' | '-' | '/')
            });
            if !is_cset39 {
                return Err("only digits, capital letters, '#', '-' and '/' are allowed".to_owned());
            }
            check_char_count(value, 1, max)
        }
        AiFormat::DigitsUpTo { max } => check_digits_up_to(value, 1, max),
        AiFormat::Itip => {
            let (gtin, pieces) = split_leading(value, 14);
            check_numeric_key(gtin, 14)?;
            if pieces.len() != 4 || !pieces.bytes().all(|b| b.is_ascii_digit()) {
                return Err(
                    "a GTIN-14 is followed by piece number and total, two digits each".to_owned(),
                );
            }
            Ok(())
        }
        AiFormat::UicExtension => {
            let mut chars = value.chars();
            if !chars.next().is_some_and(|c| c.is_ascii_digit()) || value.chars().count() != 4 {
                return Err("a digit followed by three characters".to_owned());
            }
            check_cset82(chars.as_str(), 3, 3)
        }
    }
}

/// The first `len` bytes of `value` and the rest; all of `value` first if it is shorter or
/// `len` falls inside a character (then the key is not digits, as the check will say).
fn split_leading(value: &str, len: usize) -> (&str, &str) {
    value.split_at_checked(len).unwrap_or((value, ""))
}

/// A fixed-length all-digit GS1 key whose last digit is its check digit.
fn check_numeric_key(value: &str, digits: usize) -> Result<(), String> {
    if value.len() != digits || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("must be {digits} digits"));
    }
    if !has_valid_check_digit(value) {
        return Err(check_digit_reason(value));
    }
    Ok(())
}

fn check_digits_up_to(value: &str, min: usize, max: usize) -> Result<(), String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be digits".to_owned());
    }
    check_char_count(value, min, max)
}

/// GS1 AI encodable character set 82.
fn is_cset82(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c)
}

fn check_cset82(value: &str, min: usize, max: usize) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| !is_cset82(*c)) {
        return Err(format!(
            "'{c}' is not in GS1's character set 82 (letters, digits and !\"%&'()*+,-./:;<=>?_)"
        ));
    }
    check_char_count(value, min, max)
}

fn check_char_count(value: &str, min: usize, max: usize) -> Result<(), String> {
    let count = value.chars().count();
    if count < min || count > max {
        return Err(if min == max {
            format!("must be {max} characters, not {count}")
        } else {
            format!("must be {min} to {max} characters, not {count}")
        });
    }
    Ok(())
}

/// Decodes a path segment's `%XX` escapes; its raw characters must be those RFC 3986 allows in
/// a path segment.
fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let hex = raw.get(index + 1..index + 3).unwrap_or("");
            let value = u8::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)
                .ok_or_else(|| format!("'%{hex}' is not a percent-escape"))?;
            decoded.push(value);
            index += 3;
        } else if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
            decoded.push(byte);
            index += 1;
        } else {
            let c = raw[index..].chars().next().unwrap_or('?');
            return Err(format!("'{c}' must be percent-encoded in a URI"));
        }
    }
    String::from_utf8(decoded).map_err(|_| "its percent-escapes are not UTF-8".to_owned())
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as a Digital Link path
/// value is written.
/// `value` with every byte but the URI unreserved ones (RFC 3986) percent-encoded: a lot or
/// serial as one Digital Link path segment.
pub fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Decodes the `%XX` escapes of an EPC URI component (already checked well-formed).
fn decode_epc_component(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| component.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(value) => {
                decoded.push(value);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Product keys
// ---------------------------------------------------------------------------------------------

/// The canonical key of a product, lot or item for provenance look-ups: a GTIN-14 and, if the
/// identifier carries them, a lot and a serial (decoded, as GS1 defines them, not as a URI
/// writes them). An SGTIN URN and the Digital Link of the same item give the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductKey {
    gtin: String,
    lot: Option<String>,
    serial: Option<String>,
}

impl ProductKey {
    /// The key of an SGTIN (`urn:epc:id:sgtin:`: GTIN and serial), an LGTIN
    /// (`urn:epc:class:lgtin:`: GTIN and lot), an SGTIN pattern naming a whole GTIN
    /// (`urn:epc:idpat:sgtin:CP.IR.*`), or a Digital Link with primary key 01 (GTIN, with lot
    /// `10` and serial `21` if present; the variant `22` and extension `235` do not enter the
    /// key). `None` for anything else, or a malformed identifier.
    pub fn from_epc(uri: &str) -> Option<ProductKey> {
        match check_identifier(uri).ok()? {
            Identifier::Epc(epc) => Self::from_epc_uri(&epc),
            Identifier::DigitalLink(link) => Self::from_digital_link(&link),
            Identifier::Other => None,
        }
    }

    /// The key of a GTIN alone (`GET /01/{gtin}`): 8, 12, 13 or 14 digits, check digit verified.
    pub fn from_gtin(gtin: &str) -> Result<ProductKey, IdentifierError> {
        Ok(ProductKey {
            gtin: parse_gtin(gtin)?,
            lot: None,
            serial: None,
        })
    }

    fn from_epc_uri(epc: &EpcUri) -> Option<ProductKey> {
        let [company_prefix, item_reference, third] = epc.components() else {
            return None;
        };
        let gtin = gtin_from_company_prefix(company_prefix, item_reference)?;
        let (lot, serial) = match (epc.kind(), epc.scheme()) {
            (EpcUriKind::Id, "sgtin") => (None, Some(decode_epc_component(third))),
            (EpcUriKind::Class, "lgtin") => (Some(decode_epc_component(third)), None),
            (EpcUriKind::Pattern, "sgtin") if third == "*" => (None, None),
            _ => return None,
        };
        Some(ProductKey { gtin, lot, serial })
    }

    fn from_digital_link(link: &DigitalLink) -> Option<ProductKey> {
        let ("01", gtin) = link.primary_key() else {
            return None;
        };
        Some(ProductKey {
            gtin: parse_gtin(gtin).ok()?,
            lot: link.qualifier("10").map(str::to_owned),
            serial: link.qualifier("21").map(str::to_owned),
        })
    }

    /// The GTIN, 14 digits.
    pub fn gtin(&self) -> &str {
        &self.gtin
    }

    pub fn lot(&self) -> Option<&str> {
        self.lot.as_deref()
    }

    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// The Digital Link path of the key, `/01/{gtin}[/10/{lot}][/21/{serial}]`, lot and serial
    /// percent-encoded.
    pub fn digital_link_path(&self) -> String {
        let mut path = format!("/01/{}", self.gtin);
        if let Some(lot) = &self.lot {
            path.push_str("/10/");
            path.push_str(&percent_encode(lot));
        }
        if let Some(serial) = &self.serial {
            path.push_str("/21/");
            path.push_str(&percent_encode(serial));
        }
        path
    }

    /// The key as a Digital Link on GS1's resolver, `https://id.gs1.org/01/…`.
    pub fn digital_link(&self) -> String {
        format!("https://{GS1_RESOLVER_HOST}{}", self.digital_link_path())
    }
}

impl fmt::Display for ProductKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.digital_link_path())
    }
}

/// The GTIN-14 of an SGTIN/LGTIN's company prefix and item reference (TDS §7.1: the indicator
/// digit, first of the item reference, moves to the front; the check digit is computed).
fn gtin_from_company_prefix(company_prefix: &str, item_reference: &str) -> Option<String> {
    let (indicator, item_reference) = item_reference.split_at_checked(1)?;
    let body = format!("{indicator}{company_prefix}{item_reference}");
    let check_digit = gs1_check_digit(&body).filter(|_| body.len() == 13)?;
    Some(format!("{body}{check_digit}"))
}
