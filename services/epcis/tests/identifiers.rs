//! EPC URIs, GS1 Digital Links, check digits and product keys: what is accepted, what is
//! refused and why, and the product key an SGTIN and its Digital Link share.

use veritrace_epcis::identifiers::{
    EpcUriKind, Identifier, IdentifierError, IdentifierLevel, ProductKey, check_absolute_uri,
    check_class_identifier, check_identifier, check_instance_identifier, gs1_check_digit,
    parse_digital_link, parse_epc_uri, parse_gtin,
};

/// The reason a malformed EPC URI is refused for.
fn epc_reason(uri: &str) -> String {
    match parse_epc_uri(uri) {
        Err(IdentifierError::MalformedEpcUri { reason, .. }) => reason,
        other => panic!("{uri} should be refused as a malformed EPC URI, got {other:?}"),
    }
}

/// The reason a malformed Digital Link is refused for.
fn digital_link_reason(uri: &str) -> String {
    match parse_digital_link(uri) {
        Err(IdentifierError::MalformedDigitalLink { reason, .. }) => reason,
        other => panic!("{uri} should be refused as a malformed Digital Link, got {other:?}"),
    }
}

fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "'{text}' should say '{part}'");
}

#[test]
fn gs1_check_digits_are_mod_10_with_weights_3_and_1_from_the_right() {
    assert_eq!(gs1_check_digit("400638133393"), Some('1')); // EAN-13 4006381333931
    assert_eq!(gs1_check_digit("9638507"), Some('4')); // GTIN-8 96385074
    assert_eq!(gs1_check_digit("1061414107346"), Some('4'));
    assert_eq!(gs1_check_digit("00614141123456789"), Some('0')); // SSCC
    assert_eq!(gs1_check_digit(""), None);
    assert_eq!(gs1_check_digit("12a4"), None);
}

#[test]
fn gtins_of_8_12_13_and_14_digits_are_normalised_to_14() {
    assert_eq!(parse_gtin("96385074").as_deref(), Ok("00000096385074"));
    assert_eq!(parse_gtin("614141000418").as_deref(), Ok("00614141000418"));
    assert_eq!(parse_gtin("4006381333931").as_deref(), Ok("04006381333931"));
    assert_eq!(
        parse_gtin("10614141073464").as_deref(),
        Ok("10614141073464")
    );
}

#[test]
fn a_gtin_with_a_wrong_check_digit_or_length_is_refused() {
    let wrong_check = parse_gtin("10614141073461").unwrap_err().to_string();
    assert_contains(&wrong_check, "should end in 4");
    let wrong_length = parse_gtin("10614141073").unwrap_err().to_string();
    assert_contains(&wrong_length, "8, 12, 13 or 14 digits, not 11");
    assert!(parse_gtin("1061414107346X").is_err());
    assert!(parse_gtin("").is_err());
}

#[test]
fn every_epc_scheme_accepts_its_pure_identity_form() {
    for uri in [
        "urn:epc:id:sgtin:0614141.107346.2017",
        "urn:epc:id:sgtin:0614141.812345.6789%2F", // an escaped '/' in the serial
        "urn:epc:id:sgtin:0614141.812345.a.b",     // a '.' in the serial (the last component)
        "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:id:sgln:0614141.12345.400",
        "urn:epc:id:sgln:952005385.011.ts4711",
        "urn:epc:id:grai:0614141.12345.400",
        "urn:epc:id:giai:0614141.12345400",
        "urn:epc:id:giai:952005385.w2",
        "urn:epc:id:gsrn:0614141.1234567890",
        "urn:epc:id:gsrnp:0614141.1234567890",
        "urn:epc:id:gdti:0614141.12345.400",
        "urn:epc:id:gdti:95252084.0001.0003555480001000",
        "urn:epc:id:cpi:0614141.123ABC.123456789",
        "urn:epc:id:cpi:0614141.5PQ7%2FZ43.12345",
        "urn:epc:id:sgcn:4012345.67890.04711",
        "urn:epc:id:ginc:0614141.xyz47%2F11",
        "urn:epc:id:gsin:0614141.123456789",
        "urn:epc:id:itip:4012345.012345.01.02.987",
        "urn:epc:id:upui:1234567.089456.51qIgY)%3C%26Jp3*j7'SDB",
        "urn:epc:id:pgln:1234567.89012",
        "urn:epc:id:bic:CSQU3054383",
        "urn:epc:id:imovn:9176187",
        "urn:epc:id:gid:95100000.12345.400",
        "urn:epc:id:usdod:2S194.12345678901",
        "urn:epc:id:adi:2S194.12345A1.A1B2C3",
        "urn:epc:id:adi:2S194..%23A1B2C3", // no part number; a serial starting with '#'
        "urn:epc:class:lgtin:4012345.012345.998877",
        "urn:epc:class:lgtin:4023333.002000.2019-10-07",
        "urn:epc:idpat:sgtin:4012345.098765.*",
        "urn:epc:idpat:sgtin:4012345.*.*",
        "urn:epc:idpat:sgtin:*.*.*",
        "urn:epc:idpat:sscc:0614141.*",
        "urn:epc:idpat:gid:95100000.12345.*",
    ] {
        if let Err(error) = parse_epc_uri(uri) {
            panic!("{uri} should be accepted: {error}");
        }
    }
}

#[test]
fn epc_uri_kinds_and_components_are_read() {
    let sgtin = parse_epc_uri("urn:epc:id:sgtin:0614141.107346.2017").unwrap();
    assert_eq!(sgtin.kind(), EpcUriKind::Id);
    assert_eq!(sgtin.scheme(), "sgtin");
    assert_eq!(sgtin.components(), ["0614141", "107346", "2017"]);
    let lgtin = parse_epc_uri("urn:epc:class:lgtin:4012345.012345.998877").unwrap();
    assert_eq!(lgtin.kind(), EpcUriKind::Class);
    let pattern = parse_epc_uri("urn:epc:idpat:sgtin:4012345.098765.*").unwrap();
    assert_eq!(pattern.kind(), EpcUriKind::Pattern);
}

#[test]
fn malformed_epc_uris_are_refused_saying_which_component_and_why() {
    let cases = [
        // Company prefix and item reference must make 13 digits.
        ("urn:epc:id:sgtin:0614141.10734.2018", "must make 13 digits"),
        ("urn:epc:id:sgtin:0614141.107346", "expected 3 component(s)"),
        ("urn:epc:id:sgtin:0614141.1073X6.2018", "must be digits"),
        (
            "urn:epc:id:sgtin:06141.1073461.2018",
            "a GS1 Company Prefix has 6 to 12",
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.",
            "the serial number is empty",
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.123456789012345678901",
            "more than 20",
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.20/17",
            "'/', a character not allowed",
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.20%2G",
            "not an escape allowed",
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.20%41",
            "not an escape allowed",
        ),
        ("urn:epc:id:sscc:0614141.123456789", "must make 17 digits"),
        ("urn:epc:id:sgln:0614141.1234.0", "must make 12 digits"),
        (
            "urn:epc:id:gdti:0614141.12345.123456789012345678",
            "more than 17",
        ),
        (
            "urn:epc:id:cpi:0614141.123abc.1",
            "'a', a character not allowed",
        ),
        ("urn:epc:id:cpi:0614141.123ABC.0123", "has no leading zero"),
        (
            "urn:epc:id:giai:0614141.12345678901234567890123X",
            "more than 23",
        ),
        (
            "urn:epc:id:bic:CSQU3054384",
            "wrong check digit (should be 3)",
        ),
        (
            "urn:epc:id:imovn:9176188",
            "wrong check digit (should be 7)",
        ),
        ("urn:epc:id:gid:95100000.012345.400", "has no leading zero"),
        ("urn:epc:id:gid:268435456.1.1", "exceeds 268435455"),
        ("urn:epc:id:foo:0614141.1", "'foo' is not an EPC scheme"),
        (
            "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
            "pure-identity",
        ),
        (
            "urn:epc:class:sgtin:0614141.107346.1",
            "'sgtin' is not an EPC scheme of urn:epc:class:",
        ),
        (
            "urn:epc:idpat:sgtin:4012345.*.1",
            "every component after a '*' is '*'",
        ),
        ("urn:epc:idpat:bic:*", "no pattern URI for 'bic'"),
        ("URN:EPC:id:sgtin:0614141.107346.2017", "lower case"),
    ];
    for (uri, reason) in cases {
        assert_contains(&epc_reason(uri), reason);
    }
}

#[test]
fn digital_links_of_every_primary_key_are_accepted_on_any_host() {
    for uri in [
        "https://id.gs1.org/01/70614141123451/21/2017",
        "https://id.gs1.org/01/09506000134352/21/12345",
        "https://id.gs1.org/01/04012345123456/10/998877",
        "https://id.gs1.org/01/04012345987652",
        "https://id.gs1.org/01/96385074", // a GTIN-8 as written
        "https://id.gs1.org/01/09506000134352/22/2A/10/ABC/21/12345",
        "https://id.gs1.org/01/09506000134352/235/51qIgY)%3C%26Jp3",
        "https://example.com/01/09506000134352/21/1%2F2?17=261231", // any host; data attributes
        "https://id.gs1.org/00/006141411234567890",
        "https://id.gs1.org/253/4012345000054987",
        "https://id.gs1.org/255/06141411234525678",
        "https://id.gs1.org/401/0614141xyz",
        "https://id.gs1.org/402/06141411234567890",
        "https://id.gs1.org/414/9506000134307",
        "https://id.example.com/414/4012345000054/254/32a%2Fb",
        "https://id.gs1.org/417/4012345000054",
        "https://id.example.com/8003/040123450007718765",
        "https://id.gs1.org/8004/4000001111",
        "https://id.gs1.org/8006/106141410734640102/21/1",
        "https://id.gs1.org/8010/0614141ABC-1/8011/12",
        "https://id.gs1.org/8013/1987654Ad4X4bL5ttr2310c2K",
        "https://id.gs1.org/8017/061414112345678902/8019/1",
        "https://id.gs1.org/8018/061414112345678902",
        "http://id.gs1.org/01/70614141123451/21/2017",
    ] {
        match parse_digital_link(uri) {
            Ok(Some(_)) => {}
            other => panic!("{uri} should be a well-formed Digital Link, got {other:?}"),
        }
    }
}

#[test]
fn a_digital_link_is_read_into_its_keys() {
    let link = parse_digital_link("https://ID.example.com/01/09506000134352/10/L%2F1/21/7")
        .unwrap()
        .unwrap();
    assert_eq!(link.host(), "id.example.com");
    assert_eq!(link.primary_key(), ("01", "09506000134352"));
    assert_eq!(link.qualifier("10"), Some("L/1"));
    assert_eq!(link.qualifier("21"), Some("7"));
    assert_eq!(link.level(), IdentifierLevel::Instance);
}

#[test]
fn malformed_digital_links_are_refused_saying_why() {
    let cases = [
        (
            "https://id.gs1.org/01/70614141123452/21/2018",
            "should end in 1",
        ),
        ("https://example.com/01/70614141123452", "should end in 1"),
        (
            "https://id.gs1.org/01/7061414112345/21/2018",
            "should end in 8",
        ),
        (
            "https://id.gs1.org/01/706141411234/21/2018",
            "should end in 0",
        ),
        ("https://id.gs1.org/01/0614141123451", "should end in 2"),
        (
            "https://id.gs1.org/00/006141411234567891",
            "should end in 0",
        ),
        ("https://id.gs1.org/414/9506000134308", "should end in 7"),
        (
            "https://id.gs1.org/01/70614141123451/99/1",
            "'99' is not a key qualifier of 01",
        ),
        (
            "https://id.gs1.org/01/70614141123451/21/2017/10/A",
            "do not fit primary key 01",
        ),
        (
            "https://id.gs1.org/01/70614141123451/254/1",
            "the qualifiers 254 do not fit primary key 01",
        ),
        (
            "https://id.gs1.org/00/006141411234567890/21/1",
            "it takes no qualifier",
        ),
        ("https://id.gs1.org/01/70614141123451/21", "21 has no value"),
        (
            "https://id.gs1.org/01/70614141123451/21/",
            "21 has no value",
        ),
        (
            "https://id.gs1.org/01/70614141123451/21/123456789012345678901",
            "1 to 20",
        ),
        (
            "https://id.gs1.org/01/70614141123451/21/a~b",
            "'~' is not in GS1's character set 82",
        ),
        (
            "https://id.gs1.org/01/70614141123451/21/a%ZZ",
            "not a percent-escape",
        ),
        ("https://id.gs1.org/8003/140123450007718765", "filler 0"),
        (
            "https://id.gs1.org/8006/10614141073464010",
            "piece number and total",
        ),
        ("https://id.gs1.org/8010/0614141abc", "capital letters"),
        (
            "https://id.gs1.org/gtin/70614141123451",
            "the path starts with a GS1 primary key",
        ),
    ];
    for (uri, reason) in cases {
        assert_contains(&digital_link_reason(uri), reason);
    }
}

#[test]
fn http_uris_that_are_not_digital_links_are_other_uris() {
    for uri in [
        "https://example.org/8005/123",
        "https://example.com/253/", // no: see below
        "https://transaction.acme.com/po/12345678",
        "https://id.example.org/document1",
        "geo:42.698334,23.319941",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ] {
        if uri == "https://example.com/253/" {
            // A primary key without a value is a malformed Digital Link, whatever the host.
            assert!(check_identifier(uri).is_err());
            continue;
        }
        assert_eq!(check_identifier(uri), Ok(Identifier::Other), "{uri}");
    }
}

#[test]
fn absolute_uris_need_a_scheme_and_no_spaces() {
    for uri in [
        "urn:x:y",
        "https://example.com/a",
        "ni:///sha-256;abc?ver=CBV2.0",
        "example:x",
    ] {
        assert_eq!(check_absolute_uri(uri), Ok(()), "{uri}");
    }
    for (uri, reason) in [
        ("shipping", "no scheme"),
        ("1http://x", "is not a URI scheme"),
        ("urn:", "nothing follows the scheme"),
        ("urn:a b", "a space or a control character"),
        ("urn:a\tb", "a space or a control character"),
    ] {
        assert_contains(&check_absolute_uri(uri).unwrap_err().to_string(), reason);
    }
}

#[test]
fn instance_and_class_levels_are_kept_apart() {
    // One object each.
    for uri in [
        "urn:epc:id:sgtin:0614141.107346.2017",
        "https://id.gs1.org/01/70614141123451/21/2017",
        "https://id.gs1.org/00/006141411234567890",
        "https://id.gs1.org/8003/040123450007718765",
        "https://id.gs1.org/414/9506000134307",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ] {
        assert!(check_instance_identifier(uri).is_ok(), "{uri}");
        let refused = check_class_identifier(uri);
        let is_private = check_identifier(uri).unwrap().level().is_none();
        assert_eq!(refused.is_err(), !is_private, "{uri}");
    }
    // Classes each.
    for uri in [
        "urn:epc:class:lgtin:4012345.012345.998877",
        "urn:epc:idpat:sgtin:4012345.098765.*",
        "https://id.gs1.org/01/04012345987652",
        "https://id.gs1.org/01/04012345123456/10/998877",
        "https://id.gs1.org/8003/04012345000771",
    ] {
        assert!(check_class_identifier(uri).is_ok(), "{uri}");
        assert!(
            matches!(
                check_instance_identifier(uri),
                Err(IdentifierError::ClassWhereInstanceExpected { .. })
            ),
            "{uri}"
        );
    }
}

#[test]
fn an_sgtin_gives_the_gtin_of_tds_with_the_indicator_digit_first() {
    // TDS §7.1: item reference "107346" = indicator 1 + item reference 07346, so the GTIN is
    // 1 0614141 07346 + check digit 4. The CBV 2.0 event hash reference implementation
    // converts this very URN to https://id.gs1.org/01/10614141073464/21/2018 (its pre-hash
    // strings in the conformance folder, event-hash/*.prehashes).
    let key = ProductKey::from_epc("urn:epc:id:sgtin:0614141.107346.2018").unwrap();
    assert_eq!(key.gtin(), "10614141073464");
    assert_eq!(key.serial(), Some("2018"));
    assert_eq!(key.lot(), None);
    assert_eq!(key.digital_link_path(), "/01/10614141073464/21/2018");
    assert_eq!(
        key.digital_link(),
        "https://id.gs1.org/01/10614141073464/21/2018"
    );
    // Indicator 0: the GTIN-13 in a GTIN-14.
    let key = ProductKey::from_epc("urn:epc:id:sgtin:4000001.065432.99886655").unwrap();
    assert_eq!(key.gtin(), "04000001654321");
}

#[test]
fn an_sgtin_and_its_digital_link_give_one_key() {
    let from_urn = ProductKey::from_epc("urn:epc:id:sgtin:0614141.107346.2018").unwrap();
    let from_link =
        ProductKey::from_epc("https://example.com/01/10614141073464/21/2018?17=261231").unwrap();
    assert_eq!(from_urn, from_link);
    // Lots likewise, and the escapes of either form decode to the same serial or lot.
    let lot_urn = ProductKey::from_epc("urn:epc:class:lgtin:4012345.012345.99%2F8877").unwrap();
    let lot_link =
        ProductKey::from_epc("https://id.gs1.org/01/04012345123456/10/99%2F8877").unwrap();
    assert_eq!(lot_urn, lot_link);
    assert_eq!(lot_urn.lot(), Some("99/8877"));
    assert_eq!(lot_urn.serial(), None);
    assert_eq!(
        lot_urn.digital_link_path(),
        "/01/04012345123456/10/99%2F8877"
    );
    // A GTIN-8 in a link is the same GTIN-14 as `GET /01/{gtin}` gives.
    let short = ProductKey::from_epc("https://id.gs1.org/01/96385074").unwrap();
    assert_eq!(short, ProductKey::from_gtin("00000096385074").unwrap());
    assert_eq!(short, ProductKey::from_gtin("96385074").unwrap());
    // A pattern of a whole GTIN names the product.
    let pattern = ProductKey::from_epc("urn:epc:idpat:sgtin:4012345.012345.*").unwrap();
    assert_eq!(pattern, ProductKey::from_gtin("04012345123456").unwrap());
}

#[test]
fn identifiers_that_name_no_product_give_no_key() {
    for uri in [
        "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:id:sgln:0614141.12345.400",
        "urn:epc:idpat:sgtin:4012345.*.*",
        "https://id.gs1.org/414/9506000134307",
        "https://id.gs1.org/01/70614141123452/21/2018", // wrong check digit
        "urn:epc:id:sgtin:0614141.10734.2018",          // malformed
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "not a uri",
    ] {
        assert_eq!(ProductKey::from_epc(uri), None, "{uri}");
    }
}

#[test]
fn non_ascii_input_is_refused_not_panicked_on() {
    for uri in [
        "https://id.gs1.org/8003/0é012345000771",
        "https://id.gs1.org/8006/1061414107346é0102",
        "https://id.gs1.org/01/1061414107346é",
        "https://id.gs1.org/01/10614141073464/21/sé",
        "urn:epc:id:sgtin:0614141.107346.sé",
        "urn:epc:id:sgtin:06141é1.107346.1",
        "urn:epc:id:bic:CSQU305438é",
        "urn:epc:id:imovn:917618é",
    ] {
        assert!(check_identifier(uri).is_err(), "{uri}");
    }
    assert!(parse_gtin("1061414107346é").is_err());
    assert_eq!(
        ProductKey::from_epc("https://id.gs1.org/01/1061414107346é"),
        None
    );
}
