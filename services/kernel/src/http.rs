//! HTTP pieces every service uses: the strict JSON body extractor, the problem+json fallback
//! routes, and the request-span middleware.

use crate::problem::{ApiError, FieldError};
use crate::strict_json::{self, Fault};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::dev::{Extensions, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Request-body limit, shared through `app_data`.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// How long a request's body may take to arrive once its head has, shared through `app_data`.
#[derive(Clone, Copy, Debug)]
pub struct BodyTimeout(pub Duration);

/// Without a [`BodyTimeout`] in `app_data`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A JSON body deserialised into `T`, with every failure mapped to a problem naming its cause:
/// 415 without a JSON content type, 413 over the size limit, 400 for malformed JSON, 422 with
/// the dotted path of the field at fault for a missing, unknown or ill-typed field.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
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
        let read = read_body(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_json(&read.await?).map(ValidJson)
        })
    }
}

/// Reads a request's whole body within the [`BodyLimit`] and [`BodyTimeout`] of `app_data`:
/// 413 over the limit (declared or sent), 408 when it does not arrive in time.
pub fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> + 'static {
    let limit = req
        .app_data::<BodyLimit>()
        .or_else(|| req.app_data::<web::Data<BodyLimit>>().map(|d| d.get_ref()))
        .map(|l| l.0)
        .unwrap_or(256 * 1024);
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let timeout = req
        .app_data::<BodyTimeout>()
        .map(|t| t.0)
        .unwrap_or(DEFAULT_BODY_TIMEOUT);
    let mut payload = payload.take();
    async move {
        if declared_len.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let read = async {
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::MalformedJson(e.to_string()))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ))
        })?
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
        let pairs = form_urlencoded::parse(req.query_string().as_bytes());
        for (name, value) in pairs {
            if let Err(message) =
                strict_json::check_text(&name).and_then(|()| strict_json::check_text(&value))
            {
                return std::future::ready(Err(ApiError::field(name.into_owned(), message)));
            }
        }
        let de = serde_urlencoded::Deserializer::new(pairs);
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

/// Parses `body` as `T`: 400 when it is not JSON at all, 422 naming the field otherwise,
/// including every rule of [`strict_json`] (nesting, exact numbers, unique keys, no control
/// characters).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    match strict_json::check(body) {
        Ok(()) => {}
        Err(Fault::Refused { field, message }) => return Err(ApiError::field(field, message)),
        Err(Fault::Syntax) => {
            // The parser's own message says where the syntax breaks.
            let message = serde_json::from_slice::<serde::de::IgnoredAny>(body)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "not a JSON text".to_string());
            return Err(ApiError::MalformedJson(message));
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    integral_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_name(&path, &message), message)])
    })
}

/// `371.0` and `3.71e2` are the integer 371, as in JSON Schema and in the canonical form
/// (RFC 8785 writes both as `371`): an integer field accepts them. [`strict_json`] has bounded
/// integral values to ±(2^53 − 1), where the conversion is exact; nesting to 32 levels.
fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= strict_json::MAX_SAFE_INTEGER
            {
                *n = serde_json::Number::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        serde_json::Value::Object(members) => {
            members.values_mut().for_each(integral_numbers_as_integers)
        }
        _ => {}
    }
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

/// Open connections per client address, and the bound on them. Registered with
/// `HttpServer::on_connect` ([`ClientConnections::on_connect`]), each connection carries a
/// [`ConnectionSlot`] that counts it while it is open; [`refuse_excess_connections`] answers
/// the requests of a connection opened beyond the bound with 429 and closes it. Connections that
/// never send a request are closed by the server's request-head timeout.
#[derive(Clone, Debug)]
pub struct ClientConnections {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of one client, counted until it closes.
#[derive(Debug)]
pub struct ConnectionSlot {
    client: IpAddr,
    /// Opened while the client already held `limit` connections.
    excess: bool,
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ClientConnections {
    pub fn new(limit: usize) -> Self {
        ClientConnections {
            limit: limit.max(1),
            open: Arc::default(),
        }
    }

    /// Counts a new connection (the `on_connect` hook of `HttpServer`).
    pub fn on_connect(&self, conn: &dyn Any, data: &mut Extensions) {
        let Some(peer) = conn
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|s| s.peer_addr().ok())
        else {
            return;
        };
        let client = peer.ip();
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        let count = open.entry(client).or_insert(0);
        *count += 1;
        data.insert(ConnectionSlot {
            client,
            excess: *count > self.limit,
            limit: self.limit,
            open: self.open.clone(),
        });
    }

    /// Connections open now from `client`.
    pub fn open_from(&self, client: IpAddr) -> usize {
        self.open
            .lock()
            .map(|o| o.get(&client).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.client)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// What [`refuse_excess_connections`] answers with.
pub type MiddlewareFuture<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>;

/// Middleware (`App::wrap_fn`): a request on a connection opened beyond its client's bound is
/// answered 429 problem+json, and the connection is closed.
pub fn refuse_excess_connections<S, B>(req: ServiceRequest, srv: &S) -> MiddlewareFuture<B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let refusal = req.conn_data::<ConnectionSlot>().and_then(|slot| {
        slot.excess.then(|| {
            ApiError::TooManyConnections(format!(
                "{} holds more than {} open connections; reuse or close some",
                slot.client, slot.limit
            ))
        })
    });
    if let Some(refusal) = refusal {
        let mut res = actix_web::ResponseError::error_response(&refusal);
        res.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        let (req, _) = req.into_parts();
        return Box::pin(std::future::ready(Ok(
            ServiceResponse::new(req, res).map_into_right_body()
        )));
    }
    let fut = srv.call(req);
    Box::pin(async move { Ok(fut.await?.map_into_left_body()) })
}

/// A resource at `path` whose other methods are answered 405 problem+json with the `Allow`
/// header (`TRACE /evidence` is a method the resource lacks, not a resource that is missing).
/// Routes are added to it as usual; [`resource!`](crate::resource) does both at once.
pub fn resource(path: &str, allow: &[&str]) -> actix_web::Resource {
    let allow = allow
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    web::resource(path).default_service(web::to(move |req: HttpRequest| {
        let allow = allow.clone();
        async move {
            let mut res =
                actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed(format!(
                    "{} {} is not served; allowed: {allow}",
                    req.method(),
                    req.path()
                )));
            if let Ok(value) = header::HeaderValue::from_str(&allow) {
                res.headers_mut().insert(header::ALLOW, value);
            }
            res
        }
    }))
}

/// `resource!("/evidence", post => register, get => list)`: a [`resource`] with a route per
/// method, its `Allow` header following from the same list.
#[macro_export]
macro_rules! resource {
    ($path:expr, $($method:ident => $handler:expr),+ $(,)?) => {
        $crate::http::resource($path, &[$(stringify!($method)),+])
            $(.route($crate::http::web_routes::$method().to($handler)))+
    };
}

#[doc(hidden)]
pub use actix_web::web as web_routes;

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

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Versioned {
        expected_version: u64,
    }

    #[test]
    fn integral_numbers_fill_integer_fields() {
        for body in [
            r#"{"expected_version":3}"#,
            r#"{"expected_version":3.0}"#,
            r#"{"expected_version":0.3e1}"#,
        ] {
            assert_eq!(
                parse_json::<Versioned>(body.as_bytes())
                    .unwrap()
                    .expected_version,
                3,
                "{body}"
            );
        }
        assert!(matches!(
            parse_json::<Versioned>(br#"{"expected_version":3.5}"#),
            Err(ApiError::Validation(_))
        ));
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
