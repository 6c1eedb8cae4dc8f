//! The read side (diesel): evidence records as the query endpoints serve them, kept up to date
//! from the event store by the projector. What is the evidence domain's own lives here (its
//! table, rows and views, how each event changes the table, its queries); the pool, the
//! checkpoint and the transaction that applies a batch and moves it are the kernel's
//! ([`veritrace_kernel::read_model`]).

use crate::domain::{EvidenceEvent, EvidenceRegistered, EvidenceStatus};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use veritrace_kernel::EventEnvelope;
use veritrace_kernel::digest_runs::{DigestLookup, DigestRuns, RUN_ENTRIES};
use veritrace_kernel::event_store::StoredEvent;
use veritrace_kernel::read_model::{
    self, ApplyError, ProjectedTables, ReadModelError, readable_by, readers_of,
};
use veritrace_kernel::with_read_conn;

pub const PROJECTION: &str = "evidence_records";

diesel::table! {
    evidence_records (evidence_id) {
        evidence_id -> Text,
        organisation -> Text,
        algorithm -> Text,
        digest -> Text,
        title -> Text,
        case_reference -> Nullable<Text>,
        metadata -> Nullable<Text>,
        status -> Text,
        registered_at -> Text,
        registered_event_id -> Text,
        withdrawn_at -> Nullable<Text>,
        withdrawal_reason -> Nullable<Text>,
        version -> BigInt,
        occurred_at -> Text,
        file_name -> Nullable<Text>,
        size_bytes -> Nullable<BigInt>,
    }
}

veritrace_kernel::filtered_by_readers!(evidence_records);

/// Records by their file's digest: sorted runs on SQLite (see
/// [`veritrace_kernel::digest_runs`]), the index `evidence_records_by_digest` on PostgreSQL.
const RECORD_DIGESTS: DigestRuns = DigestRuns {
    source: "evidence_records",
    key: "rowid",
    digest: "digest",
    runs: "evidence_record_digest_runs",
    catalog: "evidence_record_digest_run_catalog",
    run_entries: RUN_ENTRIES,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = evidence_records)]
// `None` is NULL, not DEFAULT: SQLite takes a multi-row insert only without DEFAULT values.
#[diesel(treat_none_as_default_value = false)]
pub struct EvidenceRow {
    pub evidence_id: String,
    pub organisation: String,
    pub algorithm: String,
    pub digest: String,
    pub title: String,
    pub case_reference: Option<String>,
    pub metadata: Option<String>,
    pub status: String,
    pub registered_at: String,
    pub registered_event_id: String,
    pub withdrawn_at: Option<String>,
    pub withdrawal_reason: Option<String>,
    pub version: i64,
    pub occurred_at: String,
    pub file_name: Option<String>,
    pub size_bytes: Option<i64>,
}

/// An evidence record as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct EvidenceView {
    pub evidence_id: String,
    pub organisation: String,
    pub content_hash: ContentHashView,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The file's name, as the registrant gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The file's size in bytes, as the registrant gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub size_bytes: Option<u64>,
    /// `registered` or `withdrawn`.
    pub status: String,
    /// When the registered fact happened (the registering event's `occurred_at`): as the
    /// registrant stated it, else when it was recorded. RFC 3339 UTC with milliseconds.
    #[schema(format = DateTime, example = "2026-01-31T09:30:00.000Z")]
    pub occurred_at: String,
    /// When the registration was recorded (its event's `recorded_at`).
    #[schema(format = DateTime, example = "2026-01-31T09:41:07.123Z")]
    pub registered_at: String,
    /// The event that registered it: its receipt is at `/receipts/{registered_event_id}`.
    pub registered_event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
    /// Stream version; send it as `expected_version` with a command on this record.
    pub version: i64,
    /// The organisations the registrant shared it with (`POST /evidence/{id}/sharing`).
    pub shared_with: Vec<String>,
    /// Who may read it: the registrant, `shared_with`, and `role:court` (every court); the
    /// admin and auditors read everything.
    #[serde(skip)]
    pub readers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct ContentHashView {
    pub algorithm: String,
    pub digest: String,
}

impl EvidenceView {
    /// The view of `r`, readable by `readers` and every court: kept as the registrant, then
    /// the others sorted, so a view reads the same whichever way it was built (an event
    /// stored before access lists were kept lists its registrant alone).
    fn of(r: EvidenceRow, readers: Vec<String>) -> Self {
        let mut others: Vec<String> = readers
            .into_iter()
            .chain(
                EvidenceRecords::EVERY_RECORD_READERS
                    .iter()
                    .map(|c| c.to_string()),
            )
            .filter(|x| *x != r.organisation)
            .collect();
        others.sort();
        others.dedup();
        let shared_with = others
            .iter()
            .filter(|x| *x != veritrace_kernel::access::COURTS)
            .cloned()
            .collect();
        let mut readers = vec![r.organisation.clone()];
        readers.extend(others);
        EvidenceView {
            evidence_id: r.evidence_id,
            organisation: r.organisation,
            content_hash: ContentHashView {
                algorithm: r.algorithm,
                digest: r.digest,
            },
            title: r.title,
            case_reference: r.case_reference,
            metadata: r.metadata.and_then(|m| serde_json::from_str(&m).ok()),
            file_name: r.file_name,
            size_bytes: r.size_bytes.and_then(|n| u64::try_from(n).ok()),
            status: r.status,
            occurred_at: r.occurred_at,
            registered_at: r.registered_at,
            registered_event_id: r.registered_event_id,
            withdrawn_at: r.withdrawn_at,
            withdrawal_reason: r.withdrawal_reason,
            version: r.version,
            shared_with,
            readers,
        }
    }
}

impl EvidenceView {
    /// The view of a record that `event` (an `EvidenceRegistered`) just created: exactly what
    /// the read model holds once it has projected that event.
    pub fn registered(event: &StoredEvent) -> Option<EvidenceView> {
        let env = &event.envelope;
        match EvidenceEvent::from_envelope(env).ok()? {
            EvidenceEvent::EvidenceRegistered(r) => Some(EvidenceView::of(
                registered_row(env, r),
                event.readers.clone(),
            )),
            _ => None,
        }
    }
}

impl EvidenceView {
    /// The view of a record folded from its stream's events, exactly as the read model holds
    /// it once it has projected them all: what a command answers when the read model lags.
    pub fn from_stream(events: &[StoredEvent]) -> Option<EvidenceView> {
        let mut row: Option<EvidenceRow> = None;
        let mut readers: Vec<String> = Vec::new();
        for e in events {
            let env = &e.envelope;
            for r in &e.readers {
                if !readers.contains(r) {
                    readers.push(r.clone());
                }
            }
            match EvidenceEvent::from_envelope(env).ok()? {
                EvidenceEvent::EvidenceRegistered(r) => row = Some(registered_row(env, r)),
                EvidenceEvent::EvidenceShared(_) => {
                    row.as_mut()?.version = env.stream_version as i64
                }
                EvidenceEvent::EvidenceWithdrawn(w) => {
                    let r = row.as_mut()?;
                    r.status = status_name(EvidenceStatus::Withdrawn).into();
                    r.withdrawn_at = Some(env.recorded_at.clone());
                    r.withdrawal_reason = Some(w.reason);
                    r.version = env.stream_version as i64;
                }
            }
        }
        row.map(|r| EvidenceView::of(r, readers))
    }
}

/// The read-model row an `EvidenceRegistered` event creates.
fn registered_row(env: &EventEnvelope, r: EvidenceRegistered) -> EvidenceRow {
    EvidenceRow {
        evidence_id: r.evidence_id,
        organisation: env.organisation.clone(),
        algorithm: r.content_hash.algorithm.name().to_string(),
        digest: r.content_hash.digest,
        title: r.title,
        case_reference: r.case_reference,
        metadata: r.metadata.map(|m| serde_json::Value::Object(m).to_string()),
        status: status_name(EvidenceStatus::Registered).into(),
        registered_at: env.recorded_at.clone(),
        registered_event_id: env.id.to_string(),
        withdrawn_at: None,
        withdrawal_reason: None,
        version: env.stream_version as i64,
        occurred_at: env.occurred_at.clone(),
        file_name: r.file_name,
        // At most 2^53 − 1 (`decide_register`, the schema).
        size_bytes: r.size_bytes.and_then(|n| i64::try_from(n).ok()),
    }
}

/// Filters of the evidence list.
#[derive(Debug, Default, Clone)]
pub struct EvidenceFilter {
    /// Only records one of these readers may read (None: every record).
    pub readable_by: Option<Vec<String>>,
    pub evidence_id: Option<String>,
    pub digest: Option<String>,
    pub algorithm: Option<String>,
    pub case_reference: Option<String>,
    pub limit: i64,
}

/// How evidence events change `evidence_records`.
pub struct EvidenceRecords;

/// Writes the rows of registrations (skipping any already there: a batch may be applied
/// twice).
trait RegisteredRows {
    fn insert_registered(&mut self, rows: &[EvidenceRow]) -> QueryResult<()>;
}

/// SQLite: multi-row inserts.
impl RegisteredRows for diesel::SqliteConnection {
    fn insert_registered(&mut self, rows: &[EvidenceRow]) -> QueryResult<()> {
        veritrace_kernel::insert_rows!(self, evidence_records::table, rows, 16);
        Ok(())
    }
}

/// PostgreSQL takes each column as one array: one statement, prepared once, whatever the
/// number of rows; a multi-row insert is a statement of its own for every count of rows, with
/// sixteen parameters a row to bind and plan.
const INSERT_REGISTERED_POSTGRES: &str = "INSERT INTO evidence_records (evidence_id, organisation,
         algorithm, digest, title, case_reference, metadata, status, registered_at,
         registered_event_id, withdrawn_at, withdrawal_reason, version, occurred_at, file_name,
         size_bytes)
     SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[],
         $13::BIGINT[], $14::TEXT[], $15::TEXT[], $16::BIGINT[])
     ON CONFLICT DO NOTHING";

impl RegisteredRows for diesel::PgConnection {
    fn insert_registered(&mut self, rows: &[EvidenceRow]) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text};
        if rows.is_empty() {
            return Ok(());
        }
        let text = |f: fn(&EvidenceRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
        let maybe = |f: fn(&EvidenceRow) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
        diesel::sql_query(INSERT_REGISTERED_POSTGRES)
            .bind::<Array<Text>, _>(text(|r| &r.evidence_id))
            .bind::<Array<Text>, _>(text(|r| &r.organisation))
            .bind::<Array<Text>, _>(text(|r| &r.algorithm))
            .bind::<Array<Text>, _>(text(|r| &r.digest))
            .bind::<Array<Text>, _>(text(|r| &r.title))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.case_reference.as_deref()))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.metadata.as_deref()))
            .bind::<Array<Text>, _>(text(|r| &r.status))
            .bind::<Array<Text>, _>(text(|r| &r.registered_at))
            .bind::<Array<Text>, _>(text(|r| &r.registered_event_id))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.withdrawn_at.as_deref()))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.withdrawal_reason.as_deref()))
            .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.version).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(text(|r| &r.occurred_at))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.file_name.as_deref()))
            .bind::<Array<Nullable<BigInt>>, _>(
                rows.iter().map(|r| r.size_bytes).collect::<Vec<_>>(),
            )
            .execute(self)?;
        Ok(())
    }
}

impl ProjectedTables for EvidenceRecords {
    const PROJECTION: &'static str = PROJECTION;
    // Every registration is readable by every court (`domain::readers`).
    const EVERY_RECORD_READERS: &'static [&'static str] = &[veritrace_kernel::access::COURTS];

    // A batch is mostly registrations: the rows of consecutive ones go in one statement; a
    // sharing or withdrawal first writes the registrations before it, so order holds.
    veritrace_kernel::apply_batch_on_each_backend!(|c, events| {
        // Writes the registrations waiting in `$rows`, then forgets them.
        macro_rules! insert_registered {
            ($rows:ident) => {
                c.insert_registered(&$rows)?;
                $rows.clear();
            };
        }
        let mut applied = Vec::with_capacity(events.len());
        let mut registered: Vec<EvidenceRow> = Vec::new();
        for event in events {
            let env = &event.envelope;
            // Whatever version it was stored at, read as the current one.
            let e = EvidenceEvent::from_envelope(env)
                .map_err(|reason| ApplyError::Unappliable(reason).at(event.position))?;
            if !matches!(e, EvidenceEvent::EvidenceRegistered(_)) {
                insert_registered!(registered);
            }
            let record = match e {
                EvidenceEvent::EvidenceRegistered(r) => {
                    let id = r.evidence_id.clone();
                    registered.push(registered_row(env, r));
                    id
                }
                EvidenceEvent::EvidenceShared(s) => {
                    diesel::update(evidence_records::table.find(&s.evidence_id))
                        .set(evidence_records::version.eq(env.stream_version as i64))
                        .execute(c)?;
                    s.evidence_id
                }
                EvidenceEvent::EvidenceWithdrawn(w) => {
                    diesel::update(evidence_records::table.find(&w.evidence_id))
                        .set((
                            evidence_records::status.eq(status_name(EvidenceStatus::Withdrawn)),
                            evidence_records::withdrawn_at.eq(Some(env.recorded_at.clone())),
                            evidence_records::withdrawal_reason.eq(Some(w.reason)),
                            evidence_records::version.eq(env.stream_version as i64),
                        ))
                        .execute(c)?;
                    w.evidence_id
                }
            };
            // The record is readable by whoever may read any of its events.
            applied.push(vec![record]);
        }
        insert_registered!(registered);
        c.extend_digest_runs(&RECORD_DIGESTS)?;
        Ok(applied)
    });
}

/// The evidence read model: the kernel's, fed with [`EvidenceRecords`].
pub type Model = read_model::ReadModel<EvidenceRecords>;

/// The record `id`, whoever may read it (the caller checks `readers`).
pub async fn get(model: &Model, id: String) -> Result<Option<EvidenceView>, ReadModelError> {
    Ok(list(
        model,
        EvidenceFilter {
            evidence_id: Some(id),
            limit: 1,
            ..EvidenceFilter::default()
        },
    )
    .await?
    .pop())
}

/// The records `filter` selects, newest registration first.
pub async fn list(
    model: &Model,
    filter: EvidenceFilter,
) -> Result<Vec<EvidenceView>, ReadModelError> {
    with_read_conn!(model, |c| {
        let mut q = evidence_records::table.into_boxed();
        if let Some(id) = filter.evidence_id {
            q = q.filter(evidence_records::evidence_id.eq(id));
        }
        if let Some(readers) = filter.readable_by
            && let Some(allowed) =
                readable_by::<EvidenceRecords, _>(evidence_records::evidence_id, readers)
        {
            q = q.filter(allowed);
        }
        if let Some(d) = filter.digest {
            // SQLite: the ids from the digest runs, and each record's own digest checked, so
            // that a damaged run can hide a record but never answer with another. A file
            // registered more often than that is found by a scan.
            if let Some(ids) = c.with_digest(&RECORD_DIGESTS, "evidence_id", &d, 10_000)? {
                q = q.filter(evidence_records::evidence_id.eq_any(ids));
            }
            q = q.filter(evidence_records::digest.eq(d));
        }
        if let Some(a) = filter.algorithm {
            q = q.filter(evidence_records::algorithm.eq(a));
        }
        if let Some(r) = filter.case_reference {
            q = q.filter(evidence_records::case_reference.eq(r));
        }
        let rows = q
            .order(evidence_records::registered_at.desc())
            .limit(filter.limit)
            .select(EvidenceRow::as_select())
            .load(c)?;
        let ids: Vec<&str> = rows.iter().map(|r| r.evidence_id.as_str()).collect();
        let mut readers = readers_of::<EvidenceRecords, _>(c, &ids)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let readers = readers.remove(&r.evidence_id).unwrap_or_default();
                EvidenceView::of(r, readers)
            })
            .collect())
    })
}

pub fn status_name(s: EvidenceStatus) -> &'static str {
    match s {
        EvidenceStatus::Registered => "registered",
        EvidenceStatus::Withdrawn => "withdrawn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EvidenceShared, EvidenceWithdrawn, RegisterEvidence};
    use chain_core::ContentHashAlg;
    use std::sync::Arc;
    use veritrace_kernel::testing::TestDb;

    fn registered(id: &str) -> EvidenceEvent {
        let command = RegisterEvidence {
            algorithm: ContentHashAlg::Sha256,
            digest: format!("{:0>64}", id.len()),
            title: format!("exhibit {id}"),
            case_reference: None,
            metadata: None,
            file_name: Some(format!("{id}.pdf")),
            size_bytes: None,
        };
        crate::domain::decide_register(id, command).expect("a valid registration")
    }

    fn stored(position: i64, stream_version: u64, e: &EvidenceEvent) -> StoredEvent {
        StoredEvent {
            position,
            envelope: Arc::new(EventEnvelope {
                id: uuid::Uuid::now_v7(),
                service: "evidence".into(),
                stream: "evidence-x".into(),
                stream_version,
                event_type: e.event_type().into(),
                type_version: e.type_version(),
                occurred_at: "2026-01-01T00:00:00.000Z".into(),
                recorded_at: format!("2026-01-01T00:00:0{position}.000Z"),
                organisation: "org-a".into(),
                payload: e.payload(),
            }),
            canonical: "".into(),
            digest: chain_core::HashAlg::Sha3_256.hash(b""),
            readers: vec!["org-a".into()],
        }
    }

    async fn model(db: &TestDb) -> Model {
        let db = db.open("evidence").await;
        veritrace_kernel::migrate::run(&db, "evidence", crate::MIGRATIONS)
            .await
            .expect("the evidence tables");
        Model::open(&db).await.expect("the read model")
    }

    /// (id, status, version, withdrawal reason), by id.
    async fn records(model: &Model) -> Vec<(String, String, i64, Option<String>)> {
        list(
            model,
            EvidenceFilter {
                limit: 100,
                ..EvidenceFilter::default()
            },
        )
        .await
        .expect("the records")
        .into_iter()
        .map(|v| (v.evidence_id, v.status, v.version, v.withdrawal_reason))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
    }

    veritrace_kernel::backend_tests! {
        /// Registrations go in together, yet a withdrawal or a sharing in between sees the
        /// registration before it, and one applied twice stays one record.
        async fn a_batch_keeps_its_order_across_grouped_registrations(db: TestDb) {
            let model = model(&db).await;
            let withdrawn = EvidenceEvent::EvidenceWithdrawn(EvidenceWithdrawn {
                evidence_id: "a".into(),
                reason: "filed in error".into(),
            });
            let shared = EvidenceEvent::EvidenceShared(EvidenceShared {
                evidence_id: "b".into(),
                organisation_id: "org-b".into(),
            });
            let batch: Arc<[StoredEvent]> = vec![
                stored(1, 1, &registered("a")),
                stored(2, 1, &registered("b")),
                stored(3, 2, &withdrawn),
                stored(4, 1, &registered("c")),
                stored(5, 1, &registered("c")),
                stored(6, 2, &shared),
            ]
            .into();
            assert_eq!(model.apply(batch, 6).await.expect("applied"), 6);
            let (registered_, withdrawn_) = ("registered".to_string(), "withdrawn".to_string());
            assert_eq!(
                records(&model).await,
                [
                    ("a".into(), withdrawn_, 2, Some("filed in error".into())),
                    ("b".into(), registered_.clone(), 2, None),
                    ("c".into(), registered_, 1, None),
                ]
            );
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 6);
        }

        /// Enough records for SQLite to index their digests in runs: a lookup by digest finds
        /// each, whether in a run or not yet, and every record of a digest registered twice.
        async fn records_are_found_by_digest_in_runs_and_after_them(db: TestDb) {
            let model = model(&db).await;
            // Applied 1,000 at a time: runs of keys 1–5,000 and 5,001–10,000, then the tail.
            let count = 3 * RUN_ENTRIES + 300;
            let digest_of = |i: i64| format!("{:064x}", i * 7919);
            let registration = |i: i64, digest: String| {
                let command = RegisterEvidence {
                    algorithm: ContentHashAlg::Sha256,
                    digest,
                    title: format!("exhibit {i}"),
                    case_reference: None,
                    metadata: None,
                    file_name: None,
                    size_bytes: None,
                };
                let e = crate::domain::decide_register(&format!("r{i}"), command).expect("valid");
                stored(i, 1, &e)
            };
            let events: Vec<StoredEvent> = (1..=count)
                .map(|i| registration(i, digest_of(i)))
                // The file of record 1, registered again last: one in a run, one after.
                .chain([registration(count + 1, digest_of(1))])
                .collect();
            for chunk in events.chunks(1000) {
                let last = chunk.last().expect("a chunk").position;
                model.apply(chunk.to_vec().into(), last).await.expect("applied");
            }
            let by_digest = |digest: String| {
                let model = model.clone();
                async move {
                    let mut ids: Vec<String> = list(
                        &model,
                        EvidenceFilter {
                            digest: Some(digest),
                            limit: 10,
                            ..EvidenceFilter::default()
                        },
                    )
                    .await
                    .expect("listed")
                    .into_iter()
                    .map(|v| v.evidence_id)
                    .collect();
                    ids.sort();
                    ids
                }
            };
            for i in [2, 5000, 5001, 10_000, 10_001, count] {
                assert_eq!(by_digest(digest_of(i)).await, [format!("r{i}")]);
            }
            assert_eq!(
                by_digest(digest_of(1)).await,
                ["r1".to_string(), format!("r{}", count + 1)]
            );
            assert!(by_digest(digest_of(count + 5)).await.is_empty());
            if let read_model::ReadPool::Sqlite(pool) = model.pool() {
                #[derive(QueryableByName)]
                struct Runs {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    runs: i64,
                }
                let mut c = pool.get().expect("a connection");
                let found: Runs = diesel::sql_query(
                    "SELECT COUNT(*) AS runs FROM evidence_record_digest_run_catalog",
                )
                .get_result(&mut c)
                .expect("the catalog");
                assert_eq!(found.runs, 2, "two runs, and the tail after them");
            }
        }

        /// An event that does not read as evidence fails its batch by its position, and
        /// nothing of the batch is written.
        async fn an_unreadable_event_fails_the_batch_at_its_position(db: TestDb) {
            let model = model(&db).await;
            let mut bad = stored(2, 1, &registered("b"));
            Arc::make_mut(&mut bad.envelope).payload = serde_json::json!({ "evidence_id": "b" });
            let batch: Arc<[StoredEvent]> =
                vec![stored(1, 1, &registered("a")), bad, stored(3, 1, &registered("c"))].into();
            let err = model.apply(batch, 3).await.expect_err("unappliable");
            assert!(
                matches!(err, ReadModelError::Unappliable { position: 2, .. }),
                "{err}"
            );
            assert!(records(&model).await.is_empty());
            assert_eq!(model.checkpoint().await.expect("checkpoint"), 0);
        }
    }
}
