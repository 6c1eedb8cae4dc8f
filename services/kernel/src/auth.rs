//! Organisations and their API keys (`Authorization: Bearer <key>`). Keys are 256-bit random
//! strings shown once; only their SHA3-256 hash is stored.

use crate::db::Database;
use crate::envelope::now_rfc3339;
use crate::http::ValidJson;
use crate::problem::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chain_core::HashAlg;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages organisations.
    Admin,
    /// Records and reads facts for itself.
    Member,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The role stored as `name`; None for a name this version does not know (a role added by
    /// a later version must not pass for another).
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Admin, Role::Member]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// An organisation, as authenticated from its API key.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Organisation {
    pub organisation_id: String,
    pub name: String,
    pub role: Role,
}

/// How long a checked key is trusted without asking the store again: a key revoked in the
/// store stops working in every process within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Identity {
    db: Database,
    /// Key hash → its organisation and when the store last confirmed it.
    cache: Arc<RwLock<HashMap<String, (Organisation, Instant)>>>,
    cache_ttl: Duration,
}

fn key_hash(key: &str) -> String {
    HashAlg::Sha3_256.hash(key.as_bytes()).to_hex()
}

fn new_key() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("random source: {e}")))?;
    Ok(format!("vt_{}", hex::encode(bytes)))
}

fn db_err(e: sqlx::Error) -> ApiError {
    ApiError::unavailable("the identity store", e)
}

impl Identity {
    pub fn new(db: &Database) -> Self {
        Identity {
            db: db.clone(),
            cache: Arc::default(),
            cache_ttl: KEY_CACHE_TTL,
        }
    }

    /// The same store, trusting a checked key for `ttl` instead of [`KEY_CACHE_TTL`].
    pub fn with_key_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self.cache = Arc::default();
        self
    }

    /// Creates the admin organisation and its key on first start; returns the key then (and
    /// only then), so it can be shown once.
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, ApiError> {
        let admins: i64 = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM organisations WHERE role = 'admin'")
                .fetch_one(pool)
                .await
        })
        .map_err(db_err)?;
        if admins > 0 {
            return Ok(None);
        }
        let (_, key) = self.create_organisation("admin", Role::Admin).await?;
        Ok(Some(key))
    }

    /// A new API key for the admin organisation (created when there is none), for an operator
    /// on the host who lost the first one. Keys minted earlier stay valid.
    pub async fn mint_admin_key(&self) -> Result<(Organisation, String), ApiError> {
        let admin: Option<(String, String)> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT organisation_id, name FROM organisations WHERE role = 'admin'
                 ORDER BY created_at, organisation_id LIMIT 1",
            )
            .fetch_optional(pool)
            .await
        })
        .map_err(db_err)?;
        let Some((organisation_id, name)) = admin else {
            return self.create_organisation("admin", Role::Admin).await;
        };
        let key = new_key()?;
        crate::on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (key_hash, organisation_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(key_hash(&key))
            .bind(&organisation_id)
            .bind(now_rfc3339())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(db_err)?;
        Ok((
            Organisation {
                organisation_id,
                name,
                role: Role::Admin,
            },
            key,
        ))
    }

    pub async fn create_organisation(
        &self,
        name: &str,
        role: Role,
    ) -> Result<(Organisation, String), ApiError> {
        let org = Organisation {
            organisation_id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            role,
        };
        let key = new_key()?;
        let now = now_rfc3339();
        let inserted = crate::on_pool!(&self.db, writer, |pool, begin| async {
            let mut tx = pool.begin_with(begin).await?;
            let inserted = sqlx::query(
                "INSERT INTO organisations (organisation_id, name, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(&org.organisation_id)
            .bind(&org.name)
            .bind(role.as_str())
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted > 0 {
                sqlx::query(
                    "INSERT INTO api_keys (key_hash, organisation_id, created_at) VALUES ($1, $2, $3)",
                )
                .bind(key_hash(&key))
                .bind(&org.organisation_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(inserted)
        }
        .await)
        .map_err(db_err)?;
        if inserted == 0 {
            return Err(ApiError::InvalidState(format!(
                "an organisation named {name:?} already exists"
            )));
        }
        Ok((org, key))
    }

    pub async fn authenticate(&self, key: &str) -> Result<Organisation, ApiError> {
        let hash = key_hash(key);
        let cached = self.cache.read().ok().and_then(|c| {
            c.get(&hash)
                .filter(|(_, checked)| checked.elapsed() < self.cache_ttl)
                .map(|(org, _)| org.clone())
        });
        if let Some(org) = cached {
            return Ok(org);
        }
        let row: Option<(String, String, String)> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT o.organisation_id, o.name, o.role FROM api_keys k
                 JOIN organisations o ON o.organisation_id = k.organisation_id
                 WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(db_err)?;
        let Some((organisation_id, name, role)) = row else {
            if let Ok(mut c) = self.cache.write() {
                c.remove(&hash);
            }
            return Err(ApiError::Unauthorized("the API key is not valid".into()));
        };
        let Some(role) = Role::from_name(&role) else {
            tracing::error!(%organisation_id, %role, "an organisation holds a role this version does not know");
            return Err(ApiError::Forbidden(format!(
                "the organisation's role {role:?} is not one this service knows"
            )));
        };
        let org = Organisation {
            organisation_id,
            name,
            role,
        };
        if let Ok(mut c) = self.cache.write() {
            c.insert(hash, (org.clone(), Instant::now()));
        }
        Ok(org)
    }
}

impl FromRequest for Organisation {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let identity = req.app_data::<web::Data<Identity>>().cloned();
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_string));
        Box::pin(async move {
            let identity = identity
                .ok_or_else(|| ApiError::Internal("identity store not configured".into()))?;
            let key = match auth {
                None => {
                    return Err(ApiError::Unauthorized(
                        "an API key is required: send Authorization: Bearer <key>".into(),
                    ));
                }
                Some(Err(_)) => {
                    return Err(ApiError::Unauthorized(
                        "the Authorization header is not text".into(),
                    ));
                }
                Some(Ok(v)) => match v.strip_prefix("Bearer ") {
                    Some(k) if !k.trim().is_empty() => k.trim().to_string(),
                    _ => {
                        return Err(ApiError::Unauthorized(
                            "the Authorization header must be: Bearer <key>".into(),
                        ));
                    }
                },
            };
            identity.authenticate(&key).await
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisation {
    /// Unique display name, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedOrganisation {
    pub organisation: Organisation,
    /// The organisation's API key. Shown once: store it now.
    pub api_key: String,
}

/// Create an organisation and its API key (admin only).
#[utoipa::path(
    post, path = "/organisations", tag = "organisations",
    request_body = CreateOrganisation,
    responses(
        (status = 201, body = CreatedOrganisation),
        (status = 401, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 409, body = crate::Problem), (status = 422, body = crate::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn create_organisation(
    caller: Organisation,
    identity: web::Data<Identity>,
    ValidJson(body): ValidJson<CreateOrganisation>,
) -> Result<HttpResponse, ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only an admin organisation can create organisations".into(),
        ));
    }
    crate::strict_json::check_text_field(&body.name, 200)
        .map_err(|m| ApiError::field("name", m))?;
    // Names are compared for uniqueness without the blanks around them.
    let name = body.name.trim();
    let (organisation, api_key) = identity.create_organisation(name, Role::Member).await?;
    Ok(HttpResponse::Created().json(CreatedOrganisation {
        organisation,
        api_key,
    }))
}

/// The organisation the API key belongs to.
#[utoipa::path(
    get, path = "/organisations/me", tag = "organisations",
    responses((status = 200, body = Organisation), (status = 401, body = crate::Problem)),
    security(("api_key" = []))
)]
pub async fn me(caller: Organisation) -> HttpResponse {
    HttpResponse::Ok().json(caller)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource!("/organisations", post => create_organisation))
        .service(crate::resource!("/organisations/me", get => me));
}

#[cfg(test)]
mod role_tests {
    use super::*;

    #[test]
    fn only_known_role_names_are_roles() {
        assert_eq!(Role::from_name("admin"), Some(Role::Admin));
        assert_eq!(Role::from_name("member"), Some(Role::Member));
        for unknown in ["auditor", "Admin", "", "member "] {
            assert_eq!(Role::from_name(unknown), None, "{unknown:?}");
        }
        for role in [Role::Admin, Role::Member] {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
        }
    }
}
