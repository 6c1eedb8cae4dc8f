//! Who may read a record: its access list. A domain decides, for each event it records, the
//! organisations entitled to read it (issuer, holder, receiver, financier…), and
//! [`COURTS`] where every court may. The event store keeps the list beside the event
//! ([`crate::event_store::StreamAppend::readers`]), the relay publishes it, the anchor grants
//! receipts by it, and the domain's read side honours it
//! ([`crate::auth::Caller::may_read`]). The admin and auditors read everything.
//!
//! The list is not part of the hashed envelope: a domain that wants it anchored puts it in its
//! payload too (evidence does, for the parties it shares a registration with).

/// The reader that stands for every court.
pub const COURTS: &str = "role:court";
