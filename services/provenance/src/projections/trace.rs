//! A product's history across partners: the events naming it (under any spelling of its GS1
//! key: SGTIN or LGTIN URN, Digital Link), then, level by level, the events of what it was
//! aggregated into (an AggregationEvent naming it a child: its parent, a case or a pallet, and
//! that parent's own parents) and of what it was transformed from (a TransformationEvent
//! naming it an output: its inputs, ingredients or components, and theirs).
//!
//! Containment is followed without its time window: the parent's whole history is shown,
//! each event marked as the parent's, so a reader sees what happened to the container.

use super::{
    EventRow, Model, epcis_event_identifiers, epcis_event_products, epcis_events,
    published_products,
};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use utoipa::ToSchema;
use veritrace_epcis::identifiers::ProductKey;
use veritrace_kernel::read_model::{ReadModelError, readable_by};
use veritrace_kernel::with_read_conn;

/// How far from the product the walk goes, and how many events it gathers at most.
pub const MAX_DEPTH: u32 = 8;
pub const MAX_EVENTS: usize = 1000;

/// How an event of the history concerns the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// It names the product itself.
    Product,
    /// It names something the product was aggregated into (directly or further up).
    AggregatedInto,
    /// It names something the product was made from (directly or further upstream).
    TransformedFrom,
}

/// One event of a product's history.
#[derive(Debug, Clone)]
pub struct TracedEvent {
    pub row: EventRow,
    pub relation: Relation,
    /// 0 for the product's own events, 1 for its parent's or inputs', and so on.
    pub depth: u32,
    /// The identifier through which the event was reached.
    pub via: String,
}

type Named = (String, String, i64); // identifier, role, position

/// The product's history as `readers` may read it (None: all), oldest event first; whether
/// the walk stopped at [`MAX_EVENTS`].
pub async fn history(
    model: &Model,
    key: ProductKey,
    readers: Option<Vec<String>>,
) -> Result<(Vec<TracedEvent>, bool), ReadModelError> {
    with_read_conn!(model, |c| {
        let mut q = epcis_event_products::table
            .select((
                epcis_event_products::identifier,
                epcis_event_products::role,
                epcis_event_products::position,
            ))
            .into_boxed();
        q = if key.lot().is_some() || key.serial().is_some() {
            q.filter(epcis_event_products::product.eq(key.digital_link_path()))
        } else {
            q.filter(epcis_event_products::gtin.eq(key.gtin().to_owned()))
        };
        let mut frontier: Vec<Named> = q.limit(MAX_EVENTS as i64).load(c)?;
        let mut reached: BTreeMap<i64, (Relation, u32, String)> = BTreeMap::new();
        let mut followed: HashSet<String> = HashSet::new();
        for (identifier, _, position) in &frontier {
            reached
                .entry(*position)
                .or_insert((Relation::Product, 0, identifier.clone()));
            followed.insert(identifier.clone());
        }
        let mut relation_of: BTreeMap<String, Relation> = BTreeMap::new();
        for depth in 1..=MAX_DEPTH {
            if reached.len() >= MAX_EVENTS {
                break;
            }
            // Each event where a reached identifier is a child (follow its parent) or an
            // output (follow its inputs), with the relation what is found there will bear.
            let steps: Vec<(i64, &'static [&'static str], Relation)> = frontier
                .iter()
                .filter_map(|(identifier, role, position)| {
                    let inherited = relation_of.get(identifier).copied();
                    match role.as_str() {
                        "child" | "child_epc_class" => Some((
                            *position,
                            &["parent"][..],
                            inherited.unwrap_or(Relation::AggregatedInto),
                        )),
                        "output" | "output_epc_class" => Some((
                            *position,
                            &["input", "input_epc_class"][..],
                            inherited.unwrap_or(Relation::TransformedFrom),
                        )),
                        _ => None,
                    }
                })
                .collect();
            if steps.is_empty() {
                break;
            }
            let positions: Vec<i64> = steps.iter().map(|(p, ..)| *p).collect();
            let around: Vec<Named> = epcis_event_identifiers::table
                .filter(epcis_event_identifiers::position.eq_any(&positions))
                .filter(epcis_event_identifiers::role.eq_any([
                    "parent",
                    "input",
                    "input_epc_class",
                ]))
                .select((
                    epcis_event_identifiers::identifier,
                    epcis_event_identifiers::role,
                    epcis_event_identifiers::position,
                ))
                .load(c)?;
            let mut next = Vec::new();
            for (identifier, role, position) in around {
                let step = steps
                    .iter()
                    .find(|(p, follow, _)| *p == position && follow.contains(&role.as_str()));
                if let Some((_, _, relation)) = step
                    && followed.insert(identifier.clone())
                {
                    relation_of.insert(identifier.clone(), *relation);
                    next.push(identifier);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = epcis_event_identifiers::table
                .filter(epcis_event_identifiers::identifier.eq_any(&next))
                .select((
                    epcis_event_identifiers::identifier,
                    epcis_event_identifiers::role,
                    epcis_event_identifiers::position,
                ))
                .limit(MAX_EVENTS as i64)
                .load(c)?;
            for (identifier, _, position) in &frontier {
                let relation = relation_of
                    .get(identifier)
                    .copied()
                    .unwrap_or(Relation::Product);
                reached
                    .entry(*position)
                    .or_insert((relation, depth, identifier.clone()));
            }
        }
        let truncated = reached.len() >= MAX_EVENTS;
        let positions: Vec<i64> = reached.keys().copied().take(MAX_EVENTS).collect();
        let mut q = epcis_events::table
            .filter(epcis_events::position.eq_any(positions))
            .into_boxed();
        if let Some(readers) = readers
            && let Some(allowed) =
                readable_by::<super::EpcisEvents, _>(epcis_events::event_id, readers)
        {
            q = q.filter(allowed);
        }
        let rows: Vec<EventRow> = q
            .order((epcis_events::event_time.asc(), epcis_events::position.asc()))
            .select(EventRow::as_select())
            .load(c)?;
        let traced = rows
            .into_iter()
            .filter_map(|row| {
                let (relation, depth, via) = reached.get(&row.position)?.clone();
                Some(TracedEvent {
                    row,
                    relation,
                    depth,
                    via,
                })
            })
            .collect();
        Ok((traced, truncated))
    })
}

/// Whether any event names the product (its GTIN alone: any event naming the GTIN).
pub async fn is_named(model: &Model, key: ProductKey) -> Result<bool, ReadModelError> {
    with_read_conn!(model, |c| {
        let mut q = epcis_event_products::table
            .select(epcis_event_products::position)
            .into_boxed();
        q = if key.lot().is_some() || key.serial().is_some() {
            q.filter(epcis_event_products::product.eq(key.digital_link_path()))
        } else {
            q.filter(epcis_event_products::gtin.eq(key.gtin().to_owned()))
        };
        Ok(q.first::<i64>(c).optional()?.is_some())
    })
}

/// The brand owner who made GTIN `gtin`'s history public; None while it is not public.
pub async fn published_by(model: &Model, gtin: &str) -> Result<Option<String>, ReadModelError> {
    let gtin = gtin.to_owned();
    with_read_conn!(model, |c| {
        Ok(published_products::table
            .find(&gtin)
            .select(published_products::organisation)
            .first::<String>(c)
            .optional()?)
    })
}

/// Whether `organisation` captured any event naming GTIN `gtin`: only such an organisation may
/// publish the GTIN (its page shows what the publisher captured or was shared).
pub async fn captured_by(
    model: &Model,
    gtin: &str,
    organisation: &str,
) -> Result<bool, ReadModelError> {
    let (gtin, organisation) = (gtin.to_owned(), organisation.to_owned());
    with_read_conn!(model, |c| {
        let positions = epcis_event_products::table
            .filter(epcis_event_products::gtin.eq(gtin))
            .select(epcis_event_products::position);
        Ok(epcis_events::table
            .filter(epcis_events::organisation.eq(organisation))
            .filter(epcis_events::position.eq_any(positions))
            .select(epcis_events::position)
            .first::<i64>(c)
            .optional()?
            .is_some())
    })
}
