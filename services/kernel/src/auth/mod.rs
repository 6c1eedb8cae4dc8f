//! Organisations, their roles and their API keys (`Authorization: Bearer <key>`).
//!
//! An organisation is the platform's `admin`, a `member` (a party that records facts), an
//! `auditor` (a regulator, who reads everything) or a `court` (which looks registrations up by
//! content hash across organisations). Each API key holds one role its organisation may hold
//! ([`OrganisationRole::key_roles`]): a member's keys write or only read. Keys are 256-bit random
//! strings shown once; only their SHA3-256 hash is stored.

mod http;
mod store;

pub use http::{
    CreateOrganisation, CreatedKey, CreatedOrganisation, IdentityApi, MintKey, configure,
};
pub use store::{ApiKey, Identity, KEY_CACHE_TTL};

use crate::problem::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use utoipa::ToSchema;

/// What an organisation is to the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationRole {
    /// Operates the platform: creates organisations, manages every key, reads everything.
    Admin,
    /// A party: records facts and reads its own (and what others share with it).
    Member,
    /// A regulator: reads every record and receipt, records nothing.
    Auditor,
    /// A court: looks registrations up by content hash across organisations, records nothing.
    Court,
}

/// What one API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The admin organisation's keys.
    Admin,
    /// A member's key that records facts and reads them.
    Writer,
    /// A member's key that only reads.
    Reader,
    /// An auditor's keys.
    Auditor,
    /// A court's keys.
    Court,
}

impl OrganisationRole {
    pub const ALL: [OrganisationRole; 4] = [
        OrganisationRole::Admin,
        OrganisationRole::Member,
        OrganisationRole::Auditor,
        OrganisationRole::Court,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrganisationRole::Admin => "admin",
            OrganisationRole::Member => "member",
            OrganisationRole::Auditor => "auditor",
            OrganisationRole::Court => "court",
        }
    }

    /// The role stored as `name`; None for a name this version does not know (a role added by
    /// a later version must not pass for another).
    pub fn from_name(name: &str) -> Option<OrganisationRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The roles its keys may hold; the first is what its first key gets.
    pub fn key_roles(self) -> &'static [Role] {
        match self {
            OrganisationRole::Admin => &[Role::Admin],
            OrganisationRole::Member => &[Role::Writer, Role::Reader],
            OrganisationRole::Auditor => &[Role::Auditor],
            OrganisationRole::Court => &[Role::Court],
        }
    }
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Writer,
        Role::Reader,
        Role::Auditor,
        Role::Court,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Auditor => "auditor",
            Role::Court => "court",
        }
    }

    /// The role stored as `name`; None for one this version does not know.
    pub fn from_name(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The roles of the keys a key of this role may mint for its own organisation: a writer's
    /// and a reader's; an auditor's and a court's, their own. A reader mints none.
    pub fn mints(self) -> &'static [Role] {
        match self {
            Role::Admin => &[Role::Admin],
            Role::Writer => &[Role::Writer, Role::Reader],
            Role::Reader => &[],
            Role::Auditor => &[Role::Auditor],
            Role::Court => &[Role::Court],
        }
    }
}

/// An organisation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Organisation {
    pub organisation_id: String,
    pub name: String,
    pub role: OrganisationRole,
}

/// Who sends a request, as its API key says: the organisation and the key's own role. The
/// checks a route makes are methods here, so that one rule has one place.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Caller {
    pub organisation_id: String,
    /// The organisation's name.
    pub name: String,
    pub organisation_role: OrganisationRole,
    /// The key's id (`GET /organisations/{id}/keys` lists them).
    pub key_id: String,
    /// The key's role.
    pub role: Role,
}

impl Caller {
    /// Whether it may record facts (for its own organisation).
    pub fn may_record(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Writer)
    }

    /// 403 unless it may record facts: what a read-only key is told on every command.
    pub fn require_recording(&self) -> Result<(), ApiError> {
        if self.may_record() {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "a key of role {} records nothing; use a writer key",
            self.role.as_str()
        )))
    }

    /// Whether it reads every record and receipt of every domain: the admin and auditors.
    pub fn reads_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor)
    }

    /// Whether it is a court's key.
    pub fn is_court(&self) -> bool {
        self.role == Role::Court
    }

    /// The access-list entries it reads through, for a query to filter by
    /// (`read_model::readable_by`): its organisation, and [`COURTS`](crate::access::COURTS)
    /// for a court's key. None for the admin and auditors, who read everything.
    pub fn reads_as(&self) -> Option<Vec<String>> {
        if self.reads_everything() {
            return None;
        }
        let mut readers = vec![self.organisation_id.clone()];
        if self.is_court() {
            readers.push(crate::access::COURTS.to_string());
        }
        Some(readers)
    }

    /// Whether a record whose readers are `readers` (organisation ids, and
    /// [`COURTS`](crate::access::COURTS) where courts may see it) is visible to it.
    pub fn may_read(&self, readers: &[String]) -> bool {
        self.reads_everything()
            || readers.iter().any(|r| r == &self.organisation_id)
            || (self.is_court() && readers.iter().any(|r| r == crate::access::COURTS))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let identity = req.app_data::<web::Data<Identity>>().cloned();
        let key = bearer_key(req);
        Box::pin(async move {
            let identity = identity
                .ok_or_else(|| ApiError::Internal("identity store not configured".into()))?;
            identity.authenticate(&key?).await
        })
    }
}

/// The API key of `Authorization: Bearer <key>`.
fn bearer_key(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("an API key is required: send Authorization: Bearer <key>".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    match value.strip_prefix("Bearer ") {
        Some(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be: Bearer <key>".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_role_names_are_roles() {
        for role in OrganisationRole::ALL {
            assert_eq!(OrganisationRole::from_name(role.as_str()), Some(role));
        }
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
        }
        for unknown in ["regulator", "Admin", "", "member ", "writer"] {
            assert_eq!(OrganisationRole::from_name(unknown), None, "{unknown:?}");
        }
        for unknown in ["member", "Writer", "", "court "] {
            assert_eq!(Role::from_name(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_key_mints_only_roles_its_organisation_may_hold() {
        for org in OrganisationRole::ALL {
            for key in org.key_roles() {
                for minted in key.mints() {
                    assert!(
                        org.key_roles().contains(minted),
                        "{org:?} {key:?} {minted:?}"
                    );
                }
            }
        }
        assert!(Role::Reader.mints().is_empty());
    }

    fn caller(role: Role) -> Caller {
        Caller {
            organisation_id: "org-a".into(),
            name: "A".into(),
            organisation_role: OrganisationRole::Member,
            key_id: "k".into(),
            role,
        }
    }

    #[test]
    fn who_reads_what() {
        let mine = vec!["org-a".to_string()];
        let theirs = vec!["org-b".to_string()];
        let for_courts = vec!["org-b".to_string(), crate::access::COURTS.to_string()];
        assert!(caller(Role::Reader).may_read(&mine));
        assert!(!caller(Role::Reader).may_read(&theirs));
        assert!(!caller(Role::Reader).may_read(&for_courts));
        assert!(caller(Role::Auditor).may_read(&theirs));
        assert!(caller(Role::Admin).may_read(&theirs));
        assert!(!caller(Role::Court).may_read(&theirs));
        assert!(caller(Role::Court).may_read(&for_courts));
        assert!(caller(Role::Writer).may_record() && caller(Role::Admin).may_record());
        for role in [Role::Reader, Role::Auditor, Role::Court] {
            assert!(caller(role).require_recording().is_err(), "{role:?}");
        }
    }
}
