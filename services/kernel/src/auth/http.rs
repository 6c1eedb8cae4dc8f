//! `/organisations`: organisations and their keys over the API. The admin manages every
//! organisation; an organisation manages its own keys (rotation is a new key, then the old one
//! revoked). Another organisation's keys are a 404, as if it did not exist.

use super::{ApiKey, Caller, Identity, Organisation, OrganisationRole, Role};
use crate::http::ValidJson;
use crate::problem::ApiError;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// `member` (the default), `auditor` or `court`. There is one admin organisation.
    #[serde(default)]
    pub role: Option<NewOrganisationRole>,
}

/// The roles an organisation created over the API may hold: there is one admin organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewOrganisationRole {
    Member,
    Auditor,
    Court,
}

impl From<NewOrganisationRole> for OrganisationRole {
    fn from(role: NewOrganisationRole) -> Self {
        match role {
            NewOrganisationRole::Member => OrganisationRole::Member,
            NewOrganisationRole::Auditor => OrganisationRole::Auditor,
            NewOrganisationRole::Court => OrganisationRole::Court,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedOrganisation {
    pub organisation: Organisation,
    /// The organisation's first API key (a writer's for a member). Shown once: store it now.
    pub api_key: String,
    pub key: ApiKey,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintKey {
    /// The new key's role, one its organisation may hold (a member's: `writer` or `reader`).
    /// Default: the first of those.
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// The key itself. Shown once: store it now.
    pub api_key: String,
}

/// Create an organisation and its first API key (admin only).
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
    caller: Caller,
    identity: web::Data<Identity>,
    ValidJson(body): ValidJson<CreateOrganisation>,
) -> Result<HttpResponse, ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only the admin organisation creates organisations".into(),
        ));
    }
    crate::strict_json::check_text_field(&body.name, 200)
        .map_err(|m| ApiError::field("name", m))?;
    let role = body
        .role
        .map(OrganisationRole::from)
        .unwrap_or(OrganisationRole::Member);
    // Names are compared for uniqueness without the blanks around them.
    let name = body.name.trim();
    let (organisation, api_key) = identity.create_organisation(name, role).await?;
    let key = identity
        .keys(&organisation.organisation_id)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("a new organisation has no key".into()))?;
    Ok(HttpResponse::Created().json(CreatedOrganisation {
        organisation,
        api_key,
        key,
    }))
}

/// Who the API key stands for: its organisation and the key's role.
#[utoipa::path(
    get, path = "/organisations/me", tag = "organisations",
    responses((status = 200, body = Caller), (status = 401, body = crate::Problem)),
    security(("api_key" = []))
)]
pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(caller)
}

/// An organisation's name and role, for itself and for those who read every registration: the
/// admin, auditors and courts (a court must know who registered a file it verifies). For
/// anyone else, the same 404 as for an unknown one.
#[utoipa::path(
    get, path = "/organisations/{organisation_id}", tag = "organisations",
    params(("organisation_id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses(
        (status = 200, body = Organisation),
        (status = 401, body = crate::Problem), (status = 404, body = crate::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn organisation(
    caller: Caller,
    identity: web::Data<Identity>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let organisation_id = path.into_inner();
    let not_found = || ApiError::NotFound(format!("no organisation {organisation_id}"));
    if !(caller.organisation_id == organisation_id
        || caller.reads_everything()
        || caller.is_court())
    {
        return Err(not_found());
    }
    let organisation = identity
        .organisation(&organisation_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(organisation))
}

/// The organisation `organisation_id` as `caller` may manage it: the admin any, an
/// organisation itself; for anyone else, the same 404 as for an unknown one.
async fn managed(
    caller: &Caller,
    identity: &Identity,
    organisation_id: &str,
) -> Result<Organisation, ApiError> {
    let not_found = || ApiError::NotFound(format!("no organisation {organisation_id}"));
    if caller.role != Role::Admin && caller.organisation_id != organisation_id {
        return Err(not_found());
    }
    identity
        .organisation(organisation_id)
        .await?
        .ok_or_else(not_found)
}

/// An organisation's API keys, revoked ones included (never the keys themselves).
#[utoipa::path(
    get, path = "/organisations/{organisation_id}/keys", tag = "organisations",
    params(("organisation_id" = String, Path)),
    responses(
        (status = 200, body = Vec<ApiKey>),
        (status = 401, body = crate::Problem), (status = 404, body = crate::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn list_keys(
    caller: Caller,
    identity: web::Data<Identity>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let organisation = managed(&caller, &identity, &path).await?;
    Ok(HttpResponse::Ok().json(identity.keys(&organisation.organisation_id).await?))
}

/// Mint an API key for an organisation: the admin for any, an organisation's writer (or
/// auditor, or court) key for its own. To rotate a key, mint its successor, then revoke it.
#[utoipa::path(
    post, path = "/organisations/{organisation_id}/keys", tag = "organisations",
    params(("organisation_id" = String, Path)),
    request_body = MintKey,
    responses(
        (status = 201, body = CreatedKey),
        (status = 401, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "The organisation does not hold keys of that role"),
        (status = 422, body = crate::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn mint_key(
    caller: Caller,
    identity: web::Data<Identity>,
    path: web::Path<String>,
    ValidJson(body): ValidJson<MintKey>,
) -> Result<HttpResponse, ApiError> {
    let organisation = managed(&caller, &identity, &path).await?;
    let role = match (caller.role, body.role) {
        (Role::Admin, Some(role)) => role,
        (Role::Admin, None) => organisation.role.key_roles()[0],
        (own, requested) => {
            let Some(&default) = own.mints().first() else {
                return Err(ApiError::Forbidden(format!(
                    "a key of role {} mints no keys",
                    own.as_str()
                )));
            };
            let role = requested.unwrap_or(default);
            if !own.mints().contains(&role) {
                return Err(ApiError::Forbidden(format!(
                    "a key of role {} cannot mint a key of role {}",
                    own.as_str(),
                    role.as_str()
                )));
            }
            role
        }
    };
    let (key, api_key) = identity.mint_key(&organisation, role).await?;
    Ok(HttpResponse::Created().json(CreatedKey { key, api_key }))
}

/// Revoke an API key: it stops working at once on this service and within 30 s on every
/// other. The admin revokes any key; an organisation its own (a reader key only itself).
#[utoipa::path(
    post, path = "/organisations/{organisation_id}/keys/{key_id}/revocation", tag = "organisations",
    params(("organisation_id" = String, Path), ("key_id" = String, Path)),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 404, body = crate::Problem), (status = 409, body = crate::Problem),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_key(
    caller: Caller,
    identity: web::Data<Identity>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (organisation_id, key_id) = path.into_inner();
    let organisation = managed(&caller, &identity, &organisation_id).await?;
    if caller.role != Role::Admin && caller.role.mints().is_empty() && caller.key_id != key_id {
        return Err(ApiError::Forbidden(format!(
            "a key of role {} revokes only itself",
            caller.role.as_str()
        )));
    }
    let revoked = identity
        .revoke_key(&organisation.organisation_id, &key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no key {key_id} of this organisation")))?;
    Ok(HttpResponse::Ok().json(revoked))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource!("/organisations", post => create_organisation))
        .service(crate::resource!("/organisations/me", get => me))
        .service(crate::resource!(
            "/organisations/{organisation_id}",
            get => organisation
        ))
        .service(crate::resource!(
            "/organisations/{organisation_id}/keys",
            get => list_keys,
            post => mint_key
        ))
        .service(crate::resource!(
            "/organisations/{organisation_id}/keys/{key_id}/revocation",
            post => revoke_key
        ));
}

/// The identity service's paths in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_organisation, me, organisation, list_keys, mint_key, revoke_key))]
pub struct IdentityApi;
