//! `Idempotency-Key`: a client that sends a POST again (after a timeout, a dropped connection)
//! with the same key gets the first answer, and nothing is recorded twice.
//!
//! The middleware [`idempotent`] claims the key (per organisation) before the route runs, keeps
//! the route's answer when it is a success, and answers a later request with the same key from
//! what it kept:
//! - same method, path and body: the first answer, with `Idempotent-Replayed: true`;
//! - anything else: 422 problem+json, type `idempotency-key-reused`;
//! - while the first request is still being processed: 409, type `idempotency-key-in-use`.
//!
//! Only a success (2xx) is kept: an answer that recorded nothing (a 4xx, a 5xx) releases the key,
//! so the client may correct its request and send it again under the same key. A request that
//! a crash interrupts after its claim keeps the key claimed and unanswered: a retry is told so
//! (409), since whether it took effect is not known here. Keys are kept for
//! `http.idempotency_retention_hours` (at least 24), across restarts.

use crate::ApiError;
use crate::auth::Caller;
use crate::db::Database;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpResponse, ResponseError, web};
use chain_core::HashAlg;
use std::time::Duration;
use tokio::sync::watch;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// Set on an answer replayed from the first request's.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// Longest key accepted, in bytes (a UUID is 36).
pub const MAX_KEY_BYTES: usize = 255;
/// The shortest retention a configuration can ask for.
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Where the keys of this process's service are kept, shared through `app_data`.
#[derive(Clone)]
pub struct IdempotencyKeys {
    db: Database,
    retention: Duration,
}

/// What the claim of a key found.
#[derive(Debug, PartialEq)]
enum Claim {
    /// The key is this request's now.
    New,
    /// The first request with this key was answered; here is its answer.
    Answered(KeptAnswer),
    /// The key was used with another request.
    OtherRequest,
    /// The first request with this key has not been answered.
    Unanswered { age: Duration },
}

/// A success kept for replay.
#[derive(Debug, PartialEq)]
struct KeptAnswer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
}

type KeyRow = (
    String,
    i64,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

impl IdempotencyKeys {
    /// Keys in `db`, which [`crate::migrate::IDEMPOTENCY`] has migrated, kept for `retention`
    /// (raised to [`MIN_RETENTION`]).
    pub fn new(db: Database, retention: Duration) -> Self {
        IdempotencyKeys {
            db,
            retention: retention.max(MIN_RETENTION),
        }
    }

    /// Keys in `db`, kept as `http.idempotency_retention_hours` says.
    pub fn configured(db: Database, http: &crate::config::HttpConfig) -> Self {
        let hours = http.idempotency_retention_hours;
        IdempotencyKeys::new(db, Duration::from_secs(hours.saturating_mul(3600)))
    }

    fn cutoff_ms(&self) -> i64 {
        now_ms().saturating_sub(i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX))
    }

    async fn claim(
        &self,
        organisation: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, sqlx::Error> {
        // Twice at most: the row found may be released between the insert and the read.
        for _ in 0..2 {
            let cutoff = self.cutoff_ms();
            let inserted = crate::on_pool!(&self.db, writer, |pool| {
                // An expired key is free again, whether or not the sweep came by yet.
                sqlx::query(
                    "DELETE FROM idempotency_keys
                     WHERE organisation_id = $1 AND idempotency_key = $2 AND created_at_ms < $3",
                )
                .bind(organisation)
                .bind(key)
                .bind(cutoff)
                .execute(pool)
                .await?;
                sqlx::query(
                    "INSERT INTO idempotency_keys
                        (organisation_id, idempotency_key, fingerprint, created_at_ms)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(organisation)
                .bind(key)
                .bind(fingerprint)
                .bind(now_ms())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
            if inserted == 1 {
                return Ok(Claim::New);
            }
            let row: Option<KeyRow> = crate::on_pool!(&self.db, writer, |pool| {
                sqlx::query_as(
                    "SELECT fingerprint, created_at_ms, status, content_type, location, body
                     FROM idempotency_keys WHERE organisation_id = $1 AND idempotency_key = $2",
                )
                .bind(organisation)
                .bind(key)
                .fetch_optional(pool)
                .await
            })?;
            let Some((kept_fingerprint, created_at_ms, status, content_type, location, body)) = row
            else {
                continue;
            };
            if kept_fingerprint != fingerprint {
                return Ok(Claim::OtherRequest);
            }
            return Ok(match status {
                Some(status) => Claim::Answered(KeptAnswer {
                    status: u16::try_from(status).unwrap_or(200),
                    content_type,
                    location,
                    body: body.unwrap_or_default(),
                }),
                None => Claim::Unanswered {
                    age: Duration::from_millis(
                        u64::try_from(now_ms().saturating_sub(created_at_ms)).unwrap_or(0),
                    ),
                },
            });
        }
        Ok(Claim::OtherRequest)
    }

    async fn keep(
        &self,
        organisation: &str,
        key: &str,
        answer: &KeptAnswer,
    ) -> Result<(), sqlx::Error> {
        crate::on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "UPDATE idempotency_keys
                 SET status = $3, content_type = $4, location = $5, body = $6
                 WHERE organisation_id = $1 AND idempotency_key = $2",
            )
            .bind(organisation)
            .bind(key)
            .bind(i32::from(answer.status))
            .bind(answer.content_type.as_deref())
            .bind(answer.location.as_deref())
            .bind(answer.body.as_slice())
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    async fn release(&self, organisation: &str, key: &str) -> Result<(), sqlx::Error> {
        crate::on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "DELETE FROM idempotency_keys
                 WHERE organisation_id = $1 AND idempotency_key = $2 AND status IS NULL",
            )
            .bind(organisation)
            .bind(key)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Forgets the keys older than the retention; returns how many.
    pub async fn sweep(&self) -> Result<u64, sqlx::Error> {
        let cutoff = self.cutoff_ms();
        crate::on_pool!(&self.db, writer, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at_ms < $1")
                .bind(cutoff)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
    }

    /// Sweeps hourly until `shutdown`.
    pub async fn sweep_hourly(self, mut shutdown: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.changed() => return,
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(forgotten = n, "expired idempotency keys forgotten"),
                Err(err) => tracing::warn!(%err, "cannot forget expired idempotency keys"),
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The key of a header value: 1 to [`MAX_KEY_BYTES`] visible ASCII characters, optionally
/// quoted (the header is a structured-field string in the IETF draft; bare keys are common).
fn parse_key(value: &header::HeaderValue) -> Result<String, ApiError> {
    let invalid = |why: &str| ApiError::field(HEADER, why.to_string());
    let text = value
        .to_str()
        .map_err(|_| invalid("must be visible ASCII characters"))?;
    let key = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid(&format!("must be 1 to {MAX_KEY_BYTES} characters")));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) || key.contains('"') {
        return Err(invalid(
            "must be visible ASCII characters without spaces or quotes",
        ));
    }
    Ok(key.to_string())
}

/// What makes two requests the same: method, path with query, and body.
fn fingerprint(method: &Method, uri: &str, body: &[u8]) -> String {
    let body = HashAlg::Sha3_256.hash(body).to_hex();
    let mut text = Vec::with_capacity(method.as_str().len() + uri.len() + body.len() + 2);
    text.extend_from_slice(method.as_str().as_bytes());
    text.push(0);
    text.extend_from_slice(uri.as_bytes());
    text.push(0);
    text.extend_from_slice(body.as_bytes());
    HashAlg::Sha3_256.hash(&text).to_hex()
}

impl KeptAnswer {
    fn response(&self) -> HttpResponse {
        let mut res =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK));
        if let Some(ct) = &self.content_type {
            res.insert_header((header::CONTENT_TYPE, ct.as_str()));
        }
        if let Some(location) = &self.location {
            res.insert_header((header::LOCATION, location.as_str()));
        }
        res.insert_header((REPLAYED_HEADER, "true"));
        res.body(self.body.clone())
    }
}

fn header_text<B>(res: &HttpResponse<B>, name: header::HeaderName) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The middleware (`App::wrap(from_fn(idempotent))`): see the module docs. A POST without the
/// header, one whose caller is not authenticated (the route answers it), and every request of a
/// process without [`IdempotencyKeys`] in `app_data` pass through untouched.
pub async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let pass = req.method() != Method::POST || !req.headers().contains_key(HEADER);
    let keys = req.app_data::<web::Data<IdempotencyKeys>>().cloned();
    let (Some(keys), false) = (keys, pass) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match req.headers().get(HEADER).map(parse_key) {
        Some(Ok(key)) => key,
        Some(Err(err)) => return Ok(req.error_response(err).map_into_boxed_body()),
        None => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let Ok(caller) = Caller::from_request(req.request(), &mut Payload::None).await else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let organisation = caller.organisation_id;
    let mut payload = req.take_payload();
    let body = match crate::http::read_body(req.request(), &mut payload).await {
        Ok(body) => body,
        Err(err) => return Ok(req.error_response(err).map_into_boxed_body()),
    };
    let uri = req.uri().to_string();
    let print = fingerprint(req.method(), &uri, &body);
    req.set_payload(Payload::from(body));
    let unavailable = |e: sqlx::Error| ApiError::unavailable("the idempotency key store", e);
    match keys.claim(&organisation, &key, &print).await {
        Ok(Claim::New) => {}
        Ok(Claim::Answered(answer)) => {
            return Ok(req.into_response(answer.response()).map_into_boxed_body());
        }
        Ok(Claim::OtherRequest) => {
            let err = ApiError::IdempotencyKeyReused(format!(
                "{HEADER} {key:?} was used with another request (method, path or body); \
                 send this one under a new key"
            ));
            return Ok(req.error_response(err).map_into_boxed_body());
        }
        Ok(Claim::Unanswered { age }) => {
            let err = ApiError::IdempotencyKeyInUse(format!(
                "the first request with {HEADER} {key:?} (sent {} s ago) has not been answered: \
                 retry once it is; if it was interrupted, look up whether it took effect \
                 before sending it again under a new key",
                age.as_secs()
            ));
            return Ok(req.error_response(err).map_into_boxed_body());
        }
        Err(e) => return Ok(req.error_response(unavailable(e)).map_into_boxed_body()),
    }
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(err) => {
            if let Err(e) = keys.release(&organisation, &key).await {
                tracing::warn!(err = %e, "cannot release an idempotency key");
            }
            return Err(err);
        }
    };
    if !res.status().is_success() {
        if let Err(e) = keys.release(&organisation, &key).await {
            tracing::warn!(err = %e, "cannot release an idempotency key");
        }
        return Ok(res.map_into_boxed_body());
    }
    let (http_req, res) = res.into_parts();
    let status = res.status();
    let content_type = header_text(&res, header::CONTENT_TYPE);
    let location = header_text(&res, header::LOCATION);
    let (res, body) = res.into_parts();
    let body = match actix_web::body::to_bytes(body).await {
        Ok(body) => body,
        Err(_) => {
            // The answer cannot be kept (nor sent): the key stays claimed and unanswered.
            let err = ApiError::Internal("the answer's body could not be read".into());
            return Ok(ServiceResponse::new(http_req, err.error_response()));
        }
    };
    let kept = KeptAnswer {
        status: status.as_u16(),
        content_type,
        location,
        body: body.to_vec(),
    };
    if let Err(e) = keys.keep(&organisation, &key, &kept).await {
        // Recorded, but a retry will hear 409 rather than this answer.
        tracing::warn!(err = %e, "cannot keep the answer of an idempotency key");
    }
    Ok(ServiceResponse::new(
        http_req,
        res.set_body(BoxBody::new(body)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        let ok = |v: &str| parse_key(&header::HeaderValue::from_str(v).unwrap());
        assert_eq!(ok("abc-123").unwrap(), "abc-123");
        assert_eq!(ok("\"quoted\"").unwrap(), "quoted");
        assert_eq!(ok(&"k".repeat(MAX_KEY_BYTES)).unwrap().len(), MAX_KEY_BYTES);
        for bad in [
            "",
            "\"\"",
            "with space",
            "a\"b",
            &"k".repeat(MAX_KEY_BYTES + 1),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(
                matches!(&err, ApiError::Validation(e) if e[0].field == HEADER),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let base = fingerprint(&Method::POST, "/evidence", b"{}");
        assert_eq!(base, fingerprint(&Method::POST, "/evidence", b"{}"));
        assert_ne!(base, fingerprint(&Method::PUT, "/evidence", b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/evidence/batch", b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/evidence?x=1", b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/evidence", b"{ }"));
    }

    async fn keys_on(db: &TestDb) -> (Database, IdempotencyKeys) {
        let db = db.open("service").await;
        crate::migrate::run(&db, "idempotency", crate::migrate::IDEMPOTENCY)
            .await
            .unwrap();
        (db.clone(), IdempotencyKeys::new(db, MIN_RETENTION))
    }

    crate::backend_tests! {
        async fn claims_are_kept_and_released(db: TestDb) {
            let (_db, keys) = keys_on(&db).await;
            assert_eq!(keys.claim("org-a", "k1", "f1").await.unwrap(), Claim::New);
            assert!(matches!(
                keys.claim("org-a", "k1", "f1").await.unwrap(),
                Claim::Unanswered { .. }
            ));
            assert_eq!(
                keys.claim("org-a", "k1", "f2").await.unwrap(),
                Claim::OtherRequest
            );
            // Keys are per organisation.
            assert_eq!(keys.claim("org-b", "k1", "f2").await.unwrap(), Claim::New);
            let answer = KeptAnswer {
                status: 201,
                content_type: Some("application/json".into()),
                location: Some("/evidence/x".into()),
                body: b"{\"id\":1}".to_vec(),
            };
            keys.keep("org-a", "k1", &answer).await.unwrap();
            assert_eq!(
                keys.claim("org-a", "k1", "f1").await.unwrap(),
                Claim::Answered(answer)
            );
            // An answered key is not released; an unanswered one is.
            keys.release("org-a", "k1").await.unwrap();
            assert!(matches!(
                keys.claim("org-a", "k1", "f1").await.unwrap(),
                Claim::Answered(_)
            ));
            keys.release("org-b", "k1").await.unwrap();
            assert_eq!(keys.claim("org-b", "k1", "f3").await.unwrap(), Claim::New);
        }

        async fn expired_keys_are_free_again(db: TestDb) {
            let (db, keys) = keys_on(&db).await;
            assert_eq!(keys.claim("org", "old", "f1").await.unwrap(), Claim::New);
            let long_ago = now_ms() - i64::try_from(MIN_RETENTION.as_millis()).unwrap() - 1;
            let age = |key: &'static str| {
                let db = db.clone();
                async move {
                    crate::on_pool!(&db, writer, |pool| {
                        sqlx::query(
                            "UPDATE idempotency_keys SET created_at_ms = $1, status = 201
                             WHERE idempotency_key = $2",
                        )
                        .bind(long_ago)
                        .bind(key)
                        .execute(pool)
                        .await
                        .map(|_| ())
                    })
                    .unwrap();
                }
            };
            age("old").await;
            // Expired, so claimed anew, with another body.
            assert_eq!(keys.claim("org", "old", "f2").await.unwrap(), Claim::New);
            assert_eq!(keys.claim("org", "other", "f1").await.unwrap(), Claim::New);
            age("other").await;
            assert_eq!(keys.sweep().await.unwrap(), 1);
            assert!(matches!(
                keys.claim("org", "old", "f2").await.unwrap(),
                Claim::Unanswered { .. }
            ));
            assert_eq!(keys.claim("org", "other", "f9").await.unwrap(), Claim::New);
        }
    }
}
