//! The read side (diesel): case files as `GET /cases/{case_reference}` serves them, kept up to
//! date from the cases event store by the projector. The pool, the checkpoint and the
//! transaction that applies a batch and moves it are the kernel's
//! ([`veritrace_kernel::read_model`]).

use crate::domain::{CaseEvent, ExhibitStatus};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veritrace_kernel::http::ReceiptLinks;
use veritrace_kernel::read_model::{
    self, ApplyError, ProjectedTables, ReadModelError, readable_by, readers_of,
};
use veritrace_kernel::with_read_conn;

pub const PROJECTION: &str = "case_exhibits";

diesel::table! {
    case_exhibits (evidence_id) {
        evidence_id -> Text,
        case_reference -> Text,
        registrant -> Text,
        algorithm -> Text,
        digest -> Text,
        title -> Text,
        status -> Text,
        registered_at -> Text,
        registered_event_id -> Text,
        added_event_id -> Text,
        withdrawn_at -> Nullable<Text>,
        withdrawal_reason -> Nullable<Text>,
        version -> BigInt,
    }
}

veritrace_kernel::filtered_by_readers!(case_exhibits);

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = case_exhibits)]
pub struct ExhibitRow {
    pub evidence_id: String,
    pub case_reference: String,
    pub registrant: String,
    pub algorithm: String,
    pub digest: String,
    pub title: String,
    pub status: String,
    pub registered_at: String,
    pub registered_event_id: String,
    pub added_event_id: String,
    pub withdrawn_at: Option<String>,
    pub withdrawal_reason: Option<String>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ExhibitContentHash {
    pub algorithm: String,
    pub digest: String,
}

/// An exhibit of a case file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ExhibitView {
    pub evidence_id: String,
    /// The organisation that registered the evidence.
    pub registrant: String,
    /// The hash of the evidence file, as registered.
    pub content_hash: ExhibitContentHash,
    pub title: String,
    /// `registered` or `withdrawn`.
    pub status: String,
    /// When the evidence service recorded the registration.
    pub registered_at: String,
    /// When it was withdrawn, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
    /// The `CaseExhibitAdded` event that filed it in the case.
    pub event_id: String,
    /// Where the receipt of `event_id` is served: it attests that the exhibit was in the case
    /// file no later than its block's time.
    pub receipt_url: String,
    /// The evidence service's `EvidenceRegistered` event it comes from.
    pub registered_event_id: String,
    /// Where the receipt of `registered_event_id` is served: it attests the registration.
    pub registration_receipt_url: String,
}

/// An exhibit as the read model holds it, and who may read it: whoever may read any of its
/// events (the admin and auditors read everything).
#[derive(Debug, Clone)]
pub struct FiledExhibit {
    pub row: ExhibitRow,
    pub readers: Vec<String>,
}

impl FiledExhibit {
    /// As the API shows it, with its receipts' links.
    pub fn view(self, links: &ReceiptLinks) -> ExhibitView {
        let r = self.row;
        ExhibitView {
            receipt_url: links.receipt_url(&r.added_event_id),
            registration_receipt_url: links.receipt_url(&r.registered_event_id),
            evidence_id: r.evidence_id,
            registrant: r.registrant,
            content_hash: ExhibitContentHash {
                algorithm: r.algorithm,
                digest: r.digest,
            },
            title: r.title,
            status: r.status,
            registered_at: r.registered_at,
            withdrawn_at: r.withdrawn_at,
            withdrawal_reason: r.withdrawal_reason,
            event_id: r.added_event_id,
            registered_event_id: r.registered_event_id,
        }
    }
}

/// How case events change `case_exhibits` (and who may read each exhibit).
pub struct CaseExhibits;

impl ProjectedTables for CaseExhibits {
    const PROJECTION: &'static str = PROJECTION;

    veritrace_kernel::apply_on_each_backend!(|c, event| {
        let env = &event.envelope;
        let case_event = CaseEvent::from_parts(&env.event_type, &env.payload)
            .map_err(ApplyError::Unappliable)?;
        let evidence_id = case_event.evidence_id().to_string();
        let version = env.stream_version as i64;
        match case_event {
            CaseEvent::CaseExhibitAdded(a) => {
                diesel::insert_into(case_exhibits::table)
                    .values(ExhibitRow {
                        evidence_id: a.evidence_id,
                        case_reference: a.case_reference,
                        registrant: a.registrant,
                        algorithm: a.content_hash.algorithm.name().to_string(),
                        digest: a.content_hash.digest,
                        title: a.title,
                        status: ExhibitStatus::Registered.name().into(),
                        registered_at: a.registered_at,
                        registered_event_id: a.registered_event_id,
                        added_event_id: env.id.to_string(),
                        withdrawn_at: None,
                        withdrawal_reason: None,
                        version,
                    })
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
            CaseEvent::CaseExhibitWithdrawn(w) => {
                diesel::update(case_exhibits::table.find(&evidence_id))
                    .set((
                        case_exhibits::status.eq(ExhibitStatus::Withdrawn.name()),
                        // The withdrawal's time, which the event carries over from the evidence.
                        case_exhibits::withdrawn_at.eq(Some(env.occurred_at.clone())),
                        case_exhibits::withdrawal_reason.eq(Some(w.reason)),
                        case_exhibits::version.eq(version),
                    ))
                    .execute(c)?;
            }
            CaseEvent::CaseExhibitShared(_) => {
                diesel::update(case_exhibits::table.find(&evidence_id))
                    .set(case_exhibits::version.eq(version))
                    .execute(c)?;
            }
        }
        // The exhibit is readable by whoever may read any of its events.
        Ok(vec![evidence_id])
    });
}

/// The exhibits of one case a caller may read.
#[derive(Debug, Clone)]
pub struct CaseFilter {
    pub case_reference: String,
    /// Only exhibits one of these readers may read (None: every exhibit).
    pub readable_by: Option<Vec<String>>,
    pub limit: i64,
}

/// The case files' read model: the kernel's, fed with [`CaseExhibits`].
pub type Model = read_model::ReadModel<CaseExhibits>;

/// The exhibits of a case, newest registration first.
pub async fn exhibits(
    model: &Model,
    filter: CaseFilter,
) -> Result<Vec<FiledExhibit>, ReadModelError> {
    with_read_conn!(model, |c| {
        let mut q = case_exhibits::table
            .filter(case_exhibits::case_reference.eq(filter.case_reference))
            .into_boxed();
        if let Some(readers) = filter.readable_by
            && let Some(allowed) =
                readable_by::<CaseExhibits, _>(case_exhibits::evidence_id, readers)
        {
            q = q.filter(allowed);
        }
        let rows = q
            .order((
                case_exhibits::registered_at.desc(),
                case_exhibits::evidence_id.desc(),
            ))
            .limit(filter.limit)
            .select(ExhibitRow::as_select())
            .load(c)?;
        let ids: Vec<&str> = rows.iter().map(|r| r.evidence_id.as_str()).collect();
        let mut readers = readers_of::<CaseExhibits, _>(c, &ids)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let readers = readers.remove(&row.evidence_id).unwrap_or_default();
                FiledExhibit { row, readers }
            })
            .collect())
    })
}
