//! The read side (diesel): EPCIS events as the query interface serves them, each with the
//! identifiers it names by role, kept up to date from the provenance event store by the
//! projector. The pool, the checkpoint and the transaction are the kernel's
//! ([`veritrace_kernel::read_model`]).

pub mod query;
pub mod trace;

use crate::domain::{EpcisEventCaptured, ProvenanceEvent, event_as_served};
use diesel::prelude::*;
use veritrace_epcis::document::{EpcRole, identifiers_of};
use veritrace_epcis::identifiers::ProductKey;
use veritrace_epcis::vocabulary::{biz_step_key, disposition_key};
use veritrace_kernel::event_store::StoredEvent;
use veritrace_kernel::read_model::{self, ApplyError, ProjectedTables};

pub const PROJECTION: &str = "epcis_events";

diesel::table! {
    epcis_events (event_id) {
        event_id -> Text,
        position -> BigInt,
        record_id -> Text,
        capture_id -> Text,
        organisation -> Text,
        event_type -> Text,
        event_time -> Text,
        record_time -> Text,
        action -> Nullable<Text>,
        biz_step -> Nullable<Text>,
        disposition -> Nullable<Text>,
        read_point -> Nullable<Text>,
        biz_location -> Nullable<Text>,
        canonical_hash -> Text,
        event_json -> Text,
        context_json -> Text,
    }
}

diesel::table! {
    epcis_event_identifiers (identifier, role, position) {
        identifier -> Text,
        role -> Text,
        position -> BigInt,
    }
}

diesel::table! {
    epcis_event_products (product, identifier, role, position) {
        product -> Text,
        gtin -> Text,
        identifier -> Text,
        role -> Text,
        position -> BigInt,
    }
}

diesel::table! {
    published_products (gtin) {
        gtin -> Text,
        organisation -> Text,
        published_at -> Text,
    }
}

diesel::table! {
    capture_jobs (capture_id) {
        capture_id -> Text,
        organisation -> Text,
        position -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    epcis_events,
    epcis_event_identifiers,
    epcis_event_products
);
veritrace_kernel::filtered_by_readers!(epcis_events);

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = epcis_events)]
// `None` is NULL, not DEFAULT: SQLite takes a multi-row insert only without DEFAULT values.
#[diesel(treat_none_as_default_value = false)]
pub struct EventRow {
    pub event_id: String,
    pub position: i64,
    pub record_id: String,
    pub capture_id: String,
    pub organisation: String,
    pub event_type: String,
    pub event_time: String,
    pub record_time: String,
    pub action: Option<String>,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    pub canonical_hash: String,
    pub event_json: String,
    pub context_json: String,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = epcis_event_identifiers)]
// Without it diesel's SQLite batch insert would not compile for these rows either: it takes
// every derived field as one that may be DEFAULT.
#[diesel(treat_none_as_default_value = false)]
pub struct IdentifierRow {
    pub identifier: String,
    pub role: String,
    pub position: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = epcis_event_products)]
// Without it diesel's SQLite batch insert would not compile for these rows either: it takes
// every derived field as one that may be DEFAULT.
#[diesel(treat_none_as_default_value = false)]
pub struct ProductRow {
    pub product: String,
    pub gtin: String,
    pub identifier: String,
    pub role: String,
    pub position: i64,
}

/// The product rows of an event's identifiers: those with a GS1 product key.
pub fn products_of(identifiers: &[IdentifierRow]) -> Vec<ProductRow> {
    identifiers
        .iter()
        .filter_map(|i| {
            let key = ProductKey::from_epc(&i.identifier)?;
            Some(ProductRow {
                product: key.digital_link_path(),
                gtin: key.gtin().to_owned(),
                identifier: i.identifier.clone(),
                role: i.role.clone(),
                position: i.position,
            })
        })
        .collect()
}

/// How the identifier table names a role.
pub fn role_name(role: EpcRole) -> &'static str {
    match role {
        EpcRole::Epc => "epc",
        EpcRole::Parent => "parent",
        EpcRole::Child => "child",
        EpcRole::Input => "input",
        EpcRole::Output => "output",
        EpcRole::EpcClass => "epc_class",
        EpcRole::ChildEpcClass => "child_epc_class",
        EpcRole::InputEpcClass => "input_epc_class",
        EpcRole::OutputEpcClass => "output_epc_class",
    }
}

/// The rows of one captured event: what the queries filter on, pulled out of the event.
pub fn rows_of(
    captured: &EpcisEventCaptured,
    stored: &StoredEvent,
) -> Result<(EventRow, Vec<IdentifierRow>), ApplyError> {
    let env = &stored.envelope;
    let event = &captured.event;
    let text = |member: &str| {
        event
            .get(member)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let id_of = |member: &str| {
        event
            .get(member)
            .and_then(|v| v.get("id"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let served = event_as_served(captured, &env.recorded_at);
    let json = |v: &serde_json::Value| {
        serde_json::to_string(v).map_err(|e| ApplyError::Unappliable(e.to_string()))
    };
    let row = EventRow {
        event_id: captured.event_id.clone(),
        position: stored.position,
        record_id: env.id.to_string(),
        capture_id: captured.capture_id.clone(),
        organisation: env.organisation.clone(),
        event_type: text("type").unwrap_or_default(),
        // The envelope's occurred_at is the eventTime in UTC to the millisecond.
        event_time: env.occurred_at.clone(),
        record_time: env.recorded_at.clone(),
        action: text("action"),
        biz_step: text("bizStep").map(|s| biz_step_key(&s)),
        disposition: text("disposition").map(|s| disposition_key(&s)),
        read_point: id_of("readPoint"),
        biz_location: id_of("bizLocation"),
        canonical_hash: captured.canonical_hash.clone(),
        event_json: json(&served)?,
        context_json: json(&captured.context)?,
    };
    let mut identifiers: Vec<IdentifierRow> = identifiers_of(event)
        .into_iter()
        .map(|(role, identifier)| IdentifierRow {
            identifier,
            role: role_name(role).to_owned(),
            position: stored.position,
        })
        .collect();
    identifiers.sort_by(|a, b| (&a.identifier, &a.role).cmp(&(&b.identifier, &b.role)));
    identifiers.dedup_by(|a, b| (&a.identifier, &a.role) == (&b.identifier, &b.role));
    Ok((row, identifiers))
}

/// How provenance events change the tables (and who may read each EPCIS event).
pub struct EpcisEvents;

impl ProjectedTables for EpcisEvents {
    const PROJECTION: &'static str = PROJECTION;

    // A batch is mostly captures: the rows of consecutive ones (the events, each identifier
    // they name, each product among those) go in one statement per table; any other event
    // first writes the captures before it, so order holds.
    veritrace_kernel::apply_batch_on_each_backend!(|c, events| {
        let mut applied = Vec::with_capacity(events.len());
        let mut captured_rows: Vec<EventRow> = Vec::new();
        let mut identifier_rows: Vec<IdentifierRow> = Vec::new();
        let mut product_rows: Vec<ProductRow> = Vec::new();
        // Writes the captures waiting, each table's rows in as few statements as they fit.
        macro_rules! insert_captured {
            () => {
                veritrace_kernel::insert_rows!(c, epcis_events::table, captured_rows, 16);
                veritrace_kernel::insert_rows!(
                    c,
                    epcis_event_identifiers::table,
                    identifier_rows,
                    3
                );
                veritrace_kernel::insert_rows!(c, epcis_event_products::table, product_rows, 5);
                captured_rows.clear();
                identifier_rows.clear();
                product_rows.clear();
            };
        }
        for event in events {
            let env = &event.envelope;
            let unappliable = |reason: String| ApplyError::Unappliable(reason).at(event.position);
            let decoded =
                ProvenanceEvent::from_parts(&env.event_type, env.type_version, &env.payload)
                    .map_err(unappliable)?;
            let captured = match decoded {
                ProvenanceEvent::EpcisEventCaptured(captured) => captured,
                ProvenanceEvent::ProductPublished(p) => {
                    insert_captured!();
                    diesel::insert_into(published_products::table)
                        .values((
                            published_products::gtin.eq(&p.gtin),
                            published_products::organisation.eq(&env.organisation),
                            published_products::published_at.eq(&env.recorded_at),
                        ))
                        .on_conflict(published_products::gtin)
                        .do_update()
                        .set(published_products::published_at.eq(&env.recorded_at))
                        .execute(c)?;
                    applied.push(Vec::new());
                    continue;
                }
                ProvenanceEvent::ProductWithdrawn(w) => {
                    insert_captured!();
                    diesel::delete(published_products::table.find(&w.gtin)).execute(c)?;
                    applied.push(Vec::new());
                    continue;
                }
                // A capture job's outcome is read from its stream; this lists it.
                ProvenanceEvent::CaptureJobCompleted(job) => {
                    insert_captured!();
                    diesel::insert_into(capture_jobs::table)
                        .values((
                            capture_jobs::capture_id.eq(&job.capture_id),
                            capture_jobs::organisation.eq(&env.organisation),
                            capture_jobs::position.eq(event.position),
                        ))
                        .on_conflict_do_nothing()
                        .execute(c)?;
                    applied.push(Vec::new());
                    continue;
                }
            };
            let (row, identifiers) = rows_of(&captured, event).map_err(|e| e.at(event.position))?;
            if env.stream_version > 1 {
                // An error declaration: the event is served as declared from now on, in its
                // place (its first capture may be among the rows waiting).
                insert_captured!();
                diesel::update(epcis_events::table.find(&row.event_id))
                    .set((
                        epcis_events::record_id.eq(&row.record_id),
                        epcis_events::record_time.eq(&row.record_time),
                        epcis_events::event_json.eq(&row.event_json),
                        epcis_events::context_json.eq(&row.context_json),
                    ))
                    .execute(c)?;
                applied.push(vec![captured.event_id]);
                continue;
            }
            product_rows.extend(products_of(&identifiers));
            identifier_rows.extend(identifiers);
            captured_rows.push(row);
            applied.push(vec![captured.event_id]);
        }
        insert_captured!();
        Ok(applied)
    });
}

/// The provenance read model: the kernel's, fed with [`EpcisEvents`].
pub type Model = read_model::ReadModel<EpcisEvents>;
