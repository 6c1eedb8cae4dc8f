//! The identity store: organisations and API keys, on SQLite or in PostgreSQL's `identity`
//! schema (which every service reads, to check keys).

use super::{Caller, Organisation, OrganisationRole, Role};
use crate::db::Database;
use crate::envelope::now_rfc3339;
use crate::problem::ApiError;
use chain_core::HashAlg;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// How long a checked key is trusted without asking the store again: a key revoked in the
/// store stops working in every process within this time (at once in the process that revoked
/// it).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Identity {
    db: Database,
    /// Key hash → its caller and when the store last confirmed it.
    cache: Arc<RwLock<HashMap<String, (Caller, Instant)>>>,
    cache_ttl: Duration,
}

/// An API key as listed (never the key itself, which is shown once).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ApiKey {
    pub key_id: String,
    pub organisation_id: String,
    pub role: Role,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
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

type KeyRow = (String, String, String, String, Option<String>);

fn key_of(row: KeyRow) -> Result<ApiKey, ApiError> {
    let (key_id, organisation_id, role, created_at, revoked_at) = row;
    let role = Role::from_name(&role).ok_or_else(|| {
        ApiError::Internal(format!("key {key_id} holds an unknown role {role:?}"))
    })?;
    Ok(ApiKey {
        key_id,
        organisation_id,
        role,
        created_at,
        revoked_at,
    })
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
        let (_, key) = self
            .create_organisation("admin", OrganisationRole::Admin)
            .await?;
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
            return self
                .create_organisation("admin", OrganisationRole::Admin)
                .await;
        };
        let (_, key) = self.insert_key(&organisation_id, Role::Admin).await?;
        Ok((
            Organisation {
                organisation_id,
                name,
                role: OrganisationRole::Admin,
            },
            key,
        ))
    }

    /// Creates an organisation and its first key (of the first of its
    /// [`OrganisationRole::key_roles`]); 409 when the name is taken.
    pub async fn create_organisation(
        &self,
        name: &str,
        role: OrganisationRole,
    ) -> Result<(Organisation, String), ApiError> {
        let org = Organisation {
            organisation_id: uuid::Uuid::now_v7().to_string(),
            name: name.to_string(),
            role,
        };
        let key = new_key()?;
        let key_role = role.key_roles()[0];
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
                    "INSERT INTO api_keys (key_hash, key_id, organisation_id, role, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(key_hash(&key))
                .bind(uuid::Uuid::now_v7().simple().to_string())
                .bind(&org.organisation_id)
                .bind(key_role.as_str())
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

    /// The organisation `organisation_id`, if it exists.
    pub async fn organisation(
        &self,
        organisation_id: &str,
    ) -> Result<Option<Organisation>, ApiError> {
        let row: Option<(String, String, String)> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT organisation_id, name, role FROM organisations WHERE organisation_id = $1",
            )
            .bind(organisation_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(db_err)?;
        row.map(|(organisation_id, name, role)| {
            let role = OrganisationRole::from_name(&role).ok_or_else(|| {
                ApiError::Internal(format!(
                    "organisation {organisation_id} holds an unknown role {role:?}"
                ))
            })?;
            Ok(Organisation {
                organisation_id,
                name,
                role,
            })
        })
        .transpose()
    }

    async fn insert_key(
        &self,
        organisation_id: &str,
        role: Role,
    ) -> Result<(ApiKey, String), ApiError> {
        let key = new_key()?;
        let listed = ApiKey {
            key_id: uuid::Uuid::now_v7().simple().to_string(),
            organisation_id: organisation_id.to_string(),
            role,
            created_at: now_rfc3339(),
            revoked_at: None,
        };
        crate::on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (key_hash, key_id, organisation_id, role, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key_hash(&key))
            .bind(&listed.key_id)
            .bind(&listed.organisation_id)
            .bind(role.as_str())
            .bind(&listed.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(db_err)?;
        Ok((listed, key))
    }

    /// A new key of `role` for `organisation` (whose role must allow it: 409 otherwise, since
    /// it depends on the organisation, not on the request alone). Returns it listed, and the
    /// key itself, shown once.
    pub async fn mint_key(
        &self,
        organisation: &Organisation,
        role: Role,
    ) -> Result<(ApiKey, String), ApiError> {
        if !organisation.role.key_roles().contains(&role) {
            let allowed: Vec<&str> = organisation
                .role
                .key_roles()
                .iter()
                .map(|r| r.as_str())
                .collect();
            return Err(ApiError::InvalidState(format!(
                "an organisation of role {} holds keys of role {}, not {}",
                organisation.role.as_str(),
                allowed.join(" or "),
                role.as_str()
            )));
        }
        self.insert_key(&organisation.organisation_id, role).await
    }

    /// The keys of `organisation_id`, oldest first, revoked ones included.
    pub async fn keys(&self, organisation_id: &str) -> Result<Vec<ApiKey>, ApiError> {
        let rows: Vec<KeyRow> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT key_id, organisation_id, role, created_at, revoked_at FROM api_keys
                 WHERE organisation_id = $1 ORDER BY created_at, key_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
        .map_err(db_err)?;
        rows.into_iter().map(key_of).collect()
    }

    /// Revokes key `key_id` of `organisation_id`: it stops working here at once and in every
    /// other process within [`KEY_CACHE_TTL`]. Revoking a revoked key changes nothing. None when
    /// the organisation holds no such key; 409 for the admin's last working key.
    pub async fn revoke_key(
        &self,
        organisation_id: &str,
        key_id: &str,
    ) -> Result<Option<ApiKey>, ApiError> {
        let now = now_rfc3339();
        let outcome = crate::on_pool!(&self.db, writer, |pool, begin| async {
            let mut tx = pool.begin_with(begin).await?;
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT k.role, o.role FROM api_keys k
                 JOIN organisations o ON o.organisation_id = k.organisation_id
                 WHERE k.organisation_id = $1 AND k.key_id = $2",
            )
            .bind(organisation_id)
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((_, org_role)) = row else {
                return Ok::<_, sqlx::Error>(Revocation::NoSuchKey);
            };
            if org_role == OrganisationRole::Admin.as_str() {
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM api_keys
                     WHERE organisation_id = $1 AND key_id <> $2 AND revoked_at IS NULL",
                )
                .bind(organisation_id)
                .bind(key_id)
                .fetch_one(&mut *tx)
                .await?;
                if others == 0 {
                    return Ok(Revocation::LastAdminKey);
                }
            }
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $3
                 WHERE organisation_id = $1 AND key_id = $2 AND revoked_at IS NULL",
            )
            .bind(organisation_id)
            .bind(key_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            let row: KeyRow = sqlx::query_as(
                "SELECT key_id, organisation_id, role, created_at, revoked_at FROM api_keys
                 WHERE organisation_id = $1 AND key_id = $2",
            )
            .bind(organisation_id)
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Revocation::Revoked(row))
        }
        .await)
        .map_err(db_err)?;
        match outcome {
            Revocation::NoSuchKey => Ok(None),
            Revocation::LastAdminKey => Err(ApiError::InvalidState(
                "this is the admin's last working key: mint another before revoking it".into(),
            )),
            Revocation::Revoked(row) => {
                // This process stops trusting it at once.
                if let Ok(mut cache) = self.cache.write() {
                    cache.retain(|_, (caller, _)| caller.key_id != key_id);
                }
                key_of(row).map(Some)
            }
        }
    }

    /// The caller a key stands for: 401 for an unknown or revoked key.
    pub async fn authenticate(&self, key: &str) -> Result<Caller, ApiError> {
        let hash = key_hash(key);
        let cached = self.cache.read().ok().and_then(|c| {
            c.get(&hash)
                .filter(|(_, checked)| checked.elapsed() < self.cache_ttl)
                .map(|(caller, _)| caller.clone())
        });
        if let Some(caller) = cached {
            return Ok(caller);
        }
        let row: Option<(String, String, String, String, String)> =
            crate::on_pool!(&self.db, reader, |pool| {
                sqlx::query_as(
                    "SELECT o.organisation_id, o.name, o.role, k.key_id, k.role FROM api_keys k
                     JOIN organisations o ON o.organisation_id = k.organisation_id
                     WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
                )
                .bind(&hash)
                .fetch_optional(pool)
                .await
            })
            .map_err(db_err)?;
        let Some((organisation_id, name, org_role, key_id, role)) = row else {
            if let Ok(mut c) = self.cache.write() {
                c.remove(&hash);
            }
            return Err(ApiError::Unauthorized("the API key is not valid".into()));
        };
        let (Some(organisation_role), Some(role)) = (
            OrganisationRole::from_name(&org_role),
            Role::from_name(&role),
        ) else {
            tracing::error!(%organisation_id, %org_role, %role, "a key or its organisation holds a role this version does not know");
            return Err(ApiError::Forbidden(format!(
                "the key's role {role:?} (of an organisation of role {org_role:?}) is not one this service knows"
            )));
        };
        let caller = Caller {
            organisation_id,
            name,
            organisation_role,
            key_id,
            role,
        };
        if let Ok(mut c) = self.cache.write() {
            c.insert(hash, (caller.clone(), Instant::now()));
        }
        Ok(caller)
    }
}

enum Revocation {
    NoSuchKey,
    LastAdminKey,
    Revoked(KeyRow),
}
