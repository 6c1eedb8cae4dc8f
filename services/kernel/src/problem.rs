//! Errors at the HTTP edge, as RFC 7807 `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An RFC 7807 problem document.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:veritrace:problem:validation`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields at fault, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field at fault, named by its dotted path in the request body (`content_hash.digest`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request is invalid: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// Query parameters a query interface cannot take (an unknown name, a malformed value):
    /// 400, as the EPCIS REST binding's `QueryParameterException`, each named.
    #[error("the query parameters are invalid: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    QueryParameters(Vec<FieldError>),
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The resource exists; the method is not one it serves.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The stream moved on since the caller read it: reread and retry.
    #[error("{0}")]
    VersionConflict(String),
    /// The command does not apply to the aggregate's current state.
    #[error("{0}")]
    InvalidState(String),
    /// A business key the command claims belongs to another record, which `detail` names.
    #[error("{0}")]
    Duplicate(String),
    /// An `Idempotency-Key` already used with another request (method, path or body).
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// The first request with this `Idempotency-Key` has not been answered (or was interrupted).
    #[error("{0}")]
    IdempotencyKeyInUse(String),
    #[error("{0}")]
    Unavailable(String),
    /// The client did not send its request body within the time allowed.
    #[error("{0}")]
    RequestTimeout(String),
    /// The client holds more connections than one client may.
    #[error("{0}")]
    TooManyConnections(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// 503 saying `what` cannot be reached: `cause` (a database's or a peer's own error text)
    /// is logged, never shown to the client.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "{} is unavailable", what);
        ApiError::Unavailable(format!("{what} is unavailable; retry shortly"))
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::MalformedJson(_) => ("malformed-json", "Malformed JSON"),
            ApiError::Validation(_) => ("validation", "Invalid request"),
            ApiError::QueryParameters(_) => ("query-parameters", "Invalid query parameters"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Unauthorized(_) => ("unauthorized", "Missing or invalid API key"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            ApiError::VersionConflict(_) => ("version-conflict", "Stream version conflict"),
            ApiError::InvalidState(_) => ("invalid-state", "Command does not apply"),
            ApiError::Duplicate(_) => ("duplicate", "Already recorded"),
            ApiError::IdempotencyKeyReused(_) => (
                "idempotency-key-reused",
                "Idempotency key used with another request",
            ),
            ApiError::IdempotencyKeyInUse(_) => {
                ("idempotency-key-in-use", "Idempotency key in use")
            }
            ApiError::Unavailable(_) => ("unavailable", "Service temporarily unavailable"),
            ApiError::RequestTimeout(_) => ("request-timeout", "Request body not received in time"),
            ApiError::TooManyConnections(_) => ("too-many-connections", "Too many connections"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (slug, title) = self.kind();
        let detail = match self {
            // Internals are logged, not shown.
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_string(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:veritrace:problem:{slug}"),
            title: title.to_string(),
            status: self.status_code().as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) | ApiError::QueryParameters(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::QueryParameters(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::VersionConflict(_)
            | ApiError::InvalidState(_)
            | ApiError::Duplicate(_)
            | ApiError::IdempotencyKeyInUse(_) => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::Unauthorized(_) => {
                resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::Unavailable(_) | ApiError::IdempotencyKeyInUse(_) => {
                resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ApiError::RequestTimeout(_) | ApiError::TooManyConnections(_) => {
                // The rest of a late body may still arrive, and an excess connection must go:
                // neither connection serves another request.
                resp.force_close();
                if matches!(self, ApiError::TooManyConnections(_)) {
                    resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
                }
            }
            _ => {}
        }
        resp.body(serde_json::to_string(&self.to_problem()).unwrap_or_default())
    }
}
