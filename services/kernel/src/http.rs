//! HTTP pieces every service uses: the strict JSON body extractor, the problem+json fallback
//! routes, and the request-span middleware.

use crate::problem::{ApiError, FieldError};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

/// Request-body limit, shared through `app_data`.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A JSON body deserialised into `T`, with every failure mapped to a problem naming its cause:
/// 415 without a JSON content type, 413 over the size limit, 400 for malformed JSON, 422 with
/// the dotted path of the field at fault for a missing, unknown or ill-typed field.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<BodyLimit>()
            .or_else(|| req.app_data::<web::Data<BodyLimit>>().map(|d| d.get_ref()))
            .map(|l| l.0)
            .unwrap_or(256 * 1024);
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared_len.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(ValidJson)
        })
    }
}

/// Where receipts are served, for the `receipt_url` of command answers. Shared through
/// `app_data`; without it (the embedded mode: one process serves everything) links are relative,
/// `/receipts/{event_id}`. In distributed mode the anchor serves receipts, so a domain service
/// is given the anchor's public URL (`http.receipts_url`) and links are absolute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiptLinks {
    /// Empty, or `http(s)://host[:port][/prefix]` without a trailing slash.
    base: String,
}

impl ReceiptLinks {
    /// `None` gives relative links. A base must be an absolute `http://` or `https://` URL
    /// without query or fragment; a trailing `/` is dropped.
    pub fn new(base: Option<&str>) -> Result<ReceiptLinks, String> {
        let Some(base) = base.map(str::trim).filter(|b| !b.is_empty()) else {
            return Ok(ReceiptLinks::default());
        };
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("http.receipts_url must start with http:// or https://, got {base:?}")
            })?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || base.contains(['?', '#']) || base.contains(char::is_whitespace) {
            return Err(format!(
                "http.receipts_url must be a URL like https://anchor.example[:port][/prefix], got {base:?}"
            ));
        }
        Ok(ReceiptLinks {
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// The URL of `event_id`'s receipt.
    pub fn receipt_url(&self, event_id: &str) -> String {
        format!("{}/receipts/{event_id}", self.base)
    }
}

impl FromRequest for ReceiptLinks {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(req
            .app_data::<ReceiptLinks>()
            .cloned()
            .unwrap_or_default()))
    }
}

/// Query parameters deserialised into `T`; a bad parameter is a 422 naming it.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(
            req.query_string().as_bytes(),
        ));
        std::future::ready(
            serde_path_to_error::deserialize(de)
                .map(ValidQuery)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let message = e.inner().to_string();
                    ApiError::Validation(vec![FieldError::new(
                        field_name(&path, &message),
                        message,
                    )])
                }),
        )
    }
}

/// Parses `body` as `T`: 400 when it is not JSON at all, 422 naming the field otherwise.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_name(&path, &message), message)])
    })
}

/// Dotted path of the field at fault. serde reports a missing field at its parent, so its name
/// is taken from the message.
fn field_name(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    // (An unknown field's path already ends with its name.)
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    if let Some(name) = named {
        return if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
    }
    if parent.is_empty() {
        "(body)".to_string()
    } else {
        parent.to_string()
    }
}

/// The fallback for unknown routes: a problem, not an empty 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound(format!(
        "no resource at {} {}",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        algorithm: String,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        inner: Inner,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(e)) => e[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Query {
        limit: Option<i64>,
    }

    #[actix_web::test]
    async fn names_the_query_parameter_at_fault() {
        let req = actix_web::test::TestRequest::get()
            .uri("/x?limit=abc")
            .to_http_request();
        match ValidQuery::<Query>::extract(&req).await {
            Err(ApiError::Validation(e)) => assert_eq!(e[0].field, "limit"),
            other => panic!("expected a validation error, got {:?}", other.map(|q| q.0)),
        }
        let req = actix_web::test::TestRequest::get()
            .uri("/x?limit=5")
            .to_http_request();
        assert_eq!(
            ValidQuery::<Query>::extract(&req).await.unwrap().0.limit,
            Some(5)
        );
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_of(r#"{"inner":{"algorithm":"x"}}"#), "title");
        assert_eq!(field_of(r#"{"title":"t","inner":{}}"#), "inner.algorithm");
        assert_eq!(
            field_of(r#"{"title":1,"inner":{"algorithm":"x"}}"#),
            "title"
        );
        assert_eq!(
            field_of(r#"{"title":"t","inner":{"algorithm":"x"},"extra":1}"#),
            "extra"
        );
        assert!(matches!(
            parse_json::<Body>(b"{not json"),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn receipt_links_are_relative_by_default_and_absolute_when_configured() {
        let id = "0190f0c0-0000-7000-8000-000000000000";
        assert_eq!(
            ReceiptLinks::new(None).unwrap().receipt_url(id),
            format!("/receipts/{id}")
        );
        assert_eq!(
            ReceiptLinks::new(Some("  ")).unwrap(),
            ReceiptLinks::default()
        );
        assert_eq!(
            ReceiptLinks::new(Some("https://anchor.example:8443/veritrace/"))
                .unwrap()
                .receipt_url(id),
            format!("https://anchor.example:8443/veritrace/receipts/{id}")
        );
        for bad in [
            "anchor:8080",
            "ftp://anchor",
            "http://",
            "http:///receipts",
            "https://a.example/?x=1",
            "https://a.example/#top",
            "https://a example",
        ] {
            let err = ReceiptLinks::new(Some(bad)).expect_err(bad);
            assert!(err.contains("http.receipts_url"), "{bad}: {err}");
        }
    }
}
