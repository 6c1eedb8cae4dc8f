//! The court's verification page (`/verify`): a court drops an evidence file or pastes a
//! digest; the file is hashed in the browser and never sent; the registration is looked up by
//! digest with the court's key, and its receipt verified in the browser, step by step, by the
//! JavaScript verifier (`frontend/verifier/`, written from `docs/receipts.md`) against the
//! genesis the court chooses. Verified, it prints as the evidence certificate, whose QR code
//! leads back here. The server only serves the page, the scripts and the QR code.

use crate::EvidenceService;
use actix_web::{HttpRequest, HttpResponse, web};
use chain_core::ContentHashAlg;
use serde::Deserialize;
use veritrace_kernel::{ApiError, FieldError, resource};
use veritrace_label::LabelCode;

pub fn templates() -> Result<tera::Tera, tera::Error> {
    let mut t = tera::Tera::default();
    t.add_raw_template(
        "court_verify.html",
        include_str!("../../../../frontend/templates/court_verify.html"),
    )?;
    Ok(t)
}

/// The page's own script and the verifier's modules, vendored cryptography included: served
/// from the binary, so nothing is fetched from elsewhere at run time.
macro_rules! assets {
    ($($url:literal => $file:literal),* $(,)?) => {
        &[$(($url, include_bytes!(concat!("../../../../frontend/", $file)) as &[u8])),*]
    };
}

const ASSETS: &[(&str, &[u8])] = assets! {
    "court/court.js" => "court/court.js",
    "vendor/crypto.js" => "vendor/crypto.js",
    "verifier/block-time.js" => "verifier/block-time.js",
    "verifier/bytes.js" => "verifier/bytes.js",
    "verifier/document.js" => "verifier/document.js",
    "verifier/errors.js" => "verifier/errors.js",
    "verifier/fields.js" => "verifier/fields.js",
    "verifier/genesis.js" => "verifier/genesis.js",
    "verifier/hashes.js" => "verifier/hashes.js",
    "verifier/jcs.js" => "verifier/jcs.js",
    "verifier/keys.js" => "verifier/keys.js",
    "verifier/merkle.js" => "verifier/merkle.js",
    "verifier/messages.js" => "verifier/messages.js",
    "verifier/receipt-shape.js" => "verifier/receipt-shape.js",
    "verifier/signatures.js" => "verifier/signatures.js",
    "verifier/strict-json.js" => "verifier/strict-json.js",
    "verifier/validator-set.js" => "verifier/validator-set.js",
    "verifier/verify.js" => "verifier/verify.js",
};

/// `GET /verify`: the page, with the genesis this server runs on for the court to compare with
/// its own copy.
pub async fn page(
    svc: web::Data<EvidenceService>,
    templates: web::Data<CourtTemplates>,
) -> Result<HttpResponse, ApiError> {
    let genesis = svc.receipts.as_ref().map(|r| r.genesis());
    let mut ctx = tera::Context::new();
    ctx.insert(
        "chain_id",
        &genesis.map(|g| g.chain_id.as_str()).unwrap_or("?"),
    );
    ctx.insert(
        "hash_alg",
        &genesis.map(|g| g.hash_alg.name()).unwrap_or("?"),
    );
    // The genesis' own spelling of its scheme.
    let signature_alg = genesis
        .and_then(|g| serde_json::to_value(g.signature_alg).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    ctx.insert("signature_alg", &signature_alg.as_deref().unwrap_or("?"));
    let json = serde_json::to_string(&genesis).map_err(|e| ApiError::Internal(e.to_string()))?;
    // Inside <script>, "</script" would end the element: `<` never appears raw.
    ctx.insert("genesis_json", &json.replace('<', "\\u003c"));
    let html = templates
        .0
        .render("court_verify.html", &ctx)
        .map_err(|e| ApiError::Internal(format!("court page: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// The page's templates, parsed once.
pub struct CourtTemplates(pub tera::Tera);

#[derive(Deserialize)]
pub struct QrQuery {
    algorithm: Option<String>,
    digest: Option<String>,
}

/// `GET /verify/qr.svg?algorithm=…&digest=…`: the QR code of this page for one file's digest
/// (`/verify#<algorithm>:<digest>`: a fragment, so opening it sends the digest to no one until
/// the reader looks it up), for the certificate.
pub async fn qr(req: HttpRequest, query: web::Query<QrQuery>) -> Result<HttpResponse, ApiError> {
    let (algorithm, digest) = checked_digest(query.algorithm.as_deref(), query.digest.as_deref())
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let info = req.connection_info();
    let link = format!(
        "{}://{}/verify#{}:{digest}",
        info.scheme(),
        info.host(),
        algorithm.name()
    );
    let code = LabelCode::encode(&link).map_err(|e| ApiError::field("digest", e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(code.svg(&link, 4)))
}

/// A document algorithm and a digest of its length, lowercased.
fn checked_digest(
    algorithm: Option<&str>,
    digest: Option<&str>,
) -> Result<(ContentHashAlg, String), FieldError> {
    let field = |name: &str, message: String| FieldError {
        field: name.into(),
        message,
    };
    let algorithm = algorithm
        .and_then(ContentHashAlg::from_name)
        .ok_or_else(|| {
            field(
                "algorithm",
                format!(
                    "must be one of {}",
                    ContentHashAlg::ALL.map(|a| a.name()).join(", ")
                ),
            )
        })?;
    let digest = digest.unwrap_or_default().to_ascii_lowercase();
    let want = algorithm.digest_len() * 2;
    if digest.len() != want || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(field(
            "digest",
            format!(
                "must be {want} hex characters, a {} digest",
                algorithm.name()
            ),
        ));
    }
    Ok((algorithm, digest))
}

/// `GET /assets/{path}`: one of [`ASSETS`].
pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let (_, bytes) = ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| ApiError::NotFound(format!("no asset {path}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(*bytes))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/verify", get => page))
        .service(resource!("/verify/qr.svg", get => qr))
        .service(resource!("/assets/{path:.*}", get => asset));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_against_their_algorithm() {
        let ok = checked_digest(Some("sha-256"), Some(&"AB".repeat(32))).unwrap();
        assert_eq!(
            (ok.0, ok.1.as_str()),
            (ContentHashAlg::Sha256, &*"ab".repeat(32))
        );
        assert_eq!(
            checked_digest(Some("sha-512"), Some(&"ab".repeat(32)))
                .unwrap_err()
                .field,
            "digest"
        );
        assert_eq!(
            checked_digest(Some("md5"), Some("ab")).unwrap_err().field,
            "algorithm"
        );
        assert_eq!(
            checked_digest(Some("sha-256"), Some(&"zz".repeat(32)))
                .unwrap_err()
                .field,
            "digest"
        );
    }

    #[test]
    fn the_page_and_every_asset_it_names_are_built_in() {
        let page = include_str!("../../../../frontend/templates/court_verify.html");
        for script in page.split("src=\"/assets/").skip(1) {
            let path = &script[..script.find('"').unwrap()];
            assert!(ASSETS.iter().any(|(p, _)| *p == path), "{path} not served");
        }
        // Every module an asset imports by a relative path is served too.
        for (path, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for import in text.split("from '").skip(1) {
                let target = &import[..import.find('\'').unwrap()];
                let resolved = if let Some(rest) = target.strip_prefix("./") {
                    format!("{dir}/{rest}")
                } else if let Some(rest) = target.strip_prefix("../") {
                    rest.to_string()
                } else if let Some(rest) = target.strip_prefix("/assets/") {
                    rest.to_string()
                } else {
                    continue;
                };
                assert!(
                    ASSETS.iter().any(|(p, _)| *p == resolved),
                    "{path} imports {target}, which is not served"
                );
            }
        }
    }
}
