//! Which products the public sees: a brand owner publishes a GTIN, and the page behind the
//! product's Digital Link then shows the events of its history that the owner may read (those
//! it captured and those shared with it). The first organisation to publish a GTIN, among
//! those that captured events naming it, is its brand owner here; no other may publish or
//! withdraw it. Stream `product-<gtin>`.

use serde::{Deserialize, Serialize};

/// A brand owner made a product's history public. The envelope's `organisation` is the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPublished {
    /// The GTIN-14.
    pub gtin: String,
}

/// The brand owner took it back: the page answers as for an unknown product again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductWithdrawn {
    pub gtin: String,
}

/// The stream of GTIN `gtin`'s publication.
pub fn product_stream(gtin: &str) -> String {
    format!("product-{gtin}")
}

/// Where a GTIN's publication stands, folded from its stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publication {
    /// Who published it first; None if nobody ever did.
    pub owner: Option<String>,
    pub published: bool,
    /// When it was last published or withdrawn.
    pub changed_at: Option<String>,
    /// The stream's version.
    pub version: u64,
}

/// A change of one GTIN's publication, as the stream records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicationChange {
    Published,
    Withdrawn,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicationError {
    #[error("GTIN {gtin} is published by another organisation, its brand owner here")]
    OwnedByAnother { gtin: String },
    #[error("GTIN {gtin} is not published")]
    NotPublished { gtin: String },
}

impl Publication {
    /// The state after one recorded change by `organisation` at `at`.
    pub fn apply(mut self, change: PublicationChange, organisation: &str, at: &str) -> Self {
        self.owner.get_or_insert_with(|| organisation.to_owned());
        self.published = change == PublicationChange::Published;
        self.changed_at = Some(at.to_owned());
        self.version += 1;
        self
    }

    /// Whether `organisation` publishing `gtin` changes anything: None when it is published
    /// already; an error when another organisation owns it.
    pub fn publish(
        &self,
        gtin: &str,
        organisation: &str,
    ) -> Result<Option<ProductPublished>, PublicationError> {
        self.check_owner(gtin, organisation)?;
        Ok((!self.published).then(|| ProductPublished {
            gtin: gtin.to_owned(),
        }))
    }

    /// Whether `organisation` withdrawing `gtin` changes anything: an error when it is not
    /// published, or another organisation owns it.
    pub fn withdraw(
        &self,
        gtin: &str,
        organisation: &str,
    ) -> Result<ProductWithdrawn, PublicationError> {
        self.check_owner(gtin, organisation)?;
        if !self.published {
            return Err(PublicationError::NotPublished {
                gtin: gtin.to_owned(),
            });
        }
        Ok(ProductWithdrawn {
            gtin: gtin.to_owned(),
        })
    }

    fn check_owner(&self, gtin: &str, organisation: &str) -> Result<(), PublicationError> {
        match &self.owner {
            Some(owner) if owner != organisation => Err(PublicationError::OwnedByAnother {
                gtin: gtin.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GTIN: &str = "09506000134352";

    #[test]
    fn the_first_publisher_owns_the_gtin_and_alone_changes_it() {
        let nobody = Publication::default();
        assert!(nobody.publish(GTIN, "brand").expect("free").is_some());
        let published = nobody.apply(PublicationChange::Published, "brand", "t1");
        assert_eq!(published.owner.as_deref(), Some("brand"));
        assert_eq!(published.version, 1);
        // Publishing again changes nothing.
        assert_eq!(published.publish(GTIN, "brand"), Ok(None));
        assert!(matches!(
            published.publish(GTIN, "rival"),
            Err(PublicationError::OwnedByAnother { .. })
        ));
        assert!(matches!(
            published.withdraw(GTIN, "rival"),
            Err(PublicationError::OwnedByAnother { .. })
        ));
        let withdrawn = published.apply(PublicationChange::Withdrawn, "brand", "t2");
        assert!(!withdrawn.published);
        assert_eq!(withdrawn.changed_at.as_deref(), Some("t2"));
        assert!(matches!(
            withdrawn.withdraw(GTIN, "brand"),
            Err(PublicationError::NotPublished { .. })
        ));
        // Withdrawn, it stays the owner's: a rival cannot take it over.
        assert!(matches!(
            withdrawn.publish(GTIN, "rival"),
            Err(PublicationError::OwnedByAnother { .. })
        ));
        assert!(withdrawn.publish(GTIN, "brand").expect("owner").is_some());
    }
}
