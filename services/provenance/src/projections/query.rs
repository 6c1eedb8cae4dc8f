//! EPCIS 2.0 SimpleEventQuery over the read model: the filters of `GET /events` (and the
//! resources that narrow it, `/epcs/{epc}/events`, `/eventTypes/{type}/events`, …), one page
//! at a time in capture order.

use super::{EventRow, Model, epcis_event_identifiers, epcis_events};
use diesel::prelude::*;
use veritrace_kernel::read_model::{ReadModelError, readable_by};
use veritrace_kernel::with_read_conn;

/// An identifier a `MATCH_` parameter gives: one EPC (or class, or any URI) exactly, or an EPC
/// pattern (`urn:epc:idpat:sgtin:0614141.*.*`), which matches every EPC of its prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentifierMatch {
    Exactly(String),
    Prefix(String),
}

impl IdentifierMatch {
    /// Reads one value of a `MATCH_` parameter: an `urn:epc:idpat:` pattern, whose `*`
    /// components may only end it (TDS §6: fields after a `*` are `*`), becomes the prefix of
    /// the EPCs it matches; anything else is matched exactly.
    pub fn parse(value: &str) -> Result<IdentifierMatch, String> {
        let Some(rest) = value.strip_prefix("urn:epc:idpat:") else {
            return Ok(IdentifierMatch::Exactly(value.to_owned()));
        };
        let Some(star) = rest.find('*') else {
            return Ok(IdentifierMatch::Exactly(format!("urn:epc:id:{rest}")));
        };
        let (fixed, wild) = rest.split_at(star);
        if !wild.split('.').all(|part| part == "*")
            || !(fixed.ends_with('.') || fixed.ends_with(':'))
        {
            return Err(format!(
                "{value:?} is not an EPC pattern: only whole trailing components may be `*`"
            ));
        }
        Ok(IdentifierMatch::Prefix(format!("urn:epc:id:{fixed}")))
    }

    /// The SQL `LIKE` pattern (escape `\`) of a prefix.
    fn like(prefix: &str) -> String {
        let mut p = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }
}

/// One `MATCH_` parameter: events naming one of `identifiers` in one of `roles`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierFilter {
    /// Role names as the identifier table holds them ([`super::role_name`]).
    pub roles: Vec<&'static str>,
    pub identifiers: Vec<IdentifierMatch>,
}

/// The filters of a query: each present one must hold (an event lacking the field never
/// matches it); within one, any of its values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub event_types: Vec<String>,
    pub ge_event_time: Option<String>,
    pub lt_event_time: Option<String>,
    pub ge_record_time: Option<String>,
    pub lt_record_time: Option<String>,
    pub actions: Vec<String>,
    pub biz_steps: Vec<String>,
    pub dispositions: Vec<String>,
    pub read_points: Vec<String>,
    pub biz_locations: Vec<String>,
    pub event_ids: Vec<String>,
    pub identifiers: Vec<IdentifierFilter>,
    /// Only events captured after this position (the page token).
    pub after: Option<i64>,
    /// Only events one of these readers may read (None: every event).
    pub readable_by: Option<Vec<String>>,
}

/// A page of events in capture order, and whether more follow.
#[derive(Debug)]
pub struct EventPage {
    pub rows: Vec<EventRow>,
    /// The position to continue after, when more events match.
    pub next_after: Option<i64>,
}

/// Up to `per_page` events matching `query`, oldest capture first.
pub async fn events(
    model: &Model,
    query: EventQuery,
    per_page: i64,
) -> Result<EventPage, ReadModelError> {
    with_read_conn!(model, |c| {
        let mut q = epcis_events::table.into_boxed();
        macro_rules! any_of {
            ($column:expr, $values:expr) => {
                if !$values.is_empty() {
                    q = q.filter($column.eq_any($values.clone()));
                }
            };
        }
        any_of!(epcis_events::event_type, query.event_types);
        any_of!(epcis_events::action, query.actions);
        any_of!(epcis_events::biz_step, query.biz_steps);
        any_of!(epcis_events::disposition, query.dispositions);
        any_of!(epcis_events::read_point, query.read_points);
        any_of!(epcis_events::biz_location, query.biz_locations);
        any_of!(epcis_events::event_id, query.event_ids);
        if let Some(t) = &query.ge_event_time {
            q = q.filter(epcis_events::event_time.ge(t.clone()));
        }
        if let Some(t) = &query.lt_event_time {
            q = q.filter(epcis_events::event_time.lt(t.clone()));
        }
        if let Some(t) = &query.ge_record_time {
            q = q.filter(epcis_events::record_time.ge(t.clone()));
        }
        if let Some(t) = &query.lt_record_time {
            q = q.filter(epcis_events::record_time.lt(t.clone()));
        }
        for filter in &query.identifiers {
            let mut naming = epcis_event_identifiers::table
                .filter(epcis_event_identifiers::role.eq_any(filter.roles.clone()))
                .select(epcis_event_identifiers::position)
                .into_boxed();
            let mut any = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("0 = 1"))
                as Box<dyn BoxableExpression<_, _, SqlType = diesel::sql_types::Bool>>;
            for m in &filter.identifiers {
                any = match m {
                    IdentifierMatch::Exactly(id) => {
                        Box::new(any.or(epcis_event_identifiers::identifier.eq(id.clone())))
                    }
                    IdentifierMatch::Prefix(prefix) => Box::new(
                        any.or(epcis_event_identifiers::identifier
                            .like(IdentifierMatch::like(prefix))
                            .escape('\\')),
                    ),
                };
            }
            naming = naming.filter(any);
            q = q.filter(epcis_events::position.eq_any(naming));
        }
        if let Some(after) = query.after {
            q = q.filter(epcis_events::position.gt(after));
        }
        if let Some(readers) = query.readable_by
            && let Some(allowed) =
                readable_by::<super::EpcisEvents, _>(epcis_events::event_id, readers)
        {
            q = q.filter(allowed);
        }
        let mut rows: Vec<EventRow> = q
            .order(epcis_events::position.asc())
            .limit(per_page + 1)
            .select(EventRow::as_select())
            .load(c)?;
        let next_after = if rows.len() as i64 > per_page {
            rows.truncate(per_page as usize);
            rows.last().map(|r| r.position)
        } else {
            None
        };
        Ok(EventPage { rows, next_after })
    })
}

/// The event types of the events one of `readers` may read (None: every event).
pub async fn event_types(
    model: &Model,
    readers: Option<Vec<String>>,
) -> Result<Vec<String>, ReadModelError> {
    with_read_conn!(model, |c| {
        let mut q = epcis_events::table
            .select(epcis_events::event_type)
            .distinct()
            .into_boxed();
        if let Some(readers) = readers
            && let Some(allowed) =
                readable_by::<super::EpcisEvents, _>(epcis_events::event_id, readers)
        {
            q = q.filter(allowed);
        }
        Ok(q.order(epcis_events::event_type).load(c)?)
    })
}

/// A page of capture jobs (`organisation`'s; None: everyone's) after position `after`, in
/// capture order: their ids and positions, at most `per_page`, and whether more follow.
pub async fn capture_jobs(
    model: &Model,
    organisation: Option<String>,
    after: i64,
    per_page: i64,
) -> Result<(Vec<(String, i64)>, bool), ReadModelError> {
    use super::capture_jobs as jobs;
    with_read_conn!(model, |c| {
        let mut q = jobs::table
            .filter(jobs::position.gt(after))
            .select((jobs::capture_id, jobs::position))
            .into_boxed();
        if let Some(org) = organisation.clone() {
            q = q.filter(jobs::organisation.eq(org));
        }
        let mut rows: Vec<(String, i64)> =
            q.order(jobs::position.asc()).limit(per_page + 1).load(c)?;
        let more = rows.len() as i64 > per_page;
        rows.truncate(per_page as usize);
        Ok((rows, more))
    })
}

/// Most values a listing (`/epcs`, `/readPoints`, `/bizLocations`) answers.
pub const LISTING_LIMIT: i64 = 1000;

/// The read points, or (`biz_location`) the business locations, of the events one of
/// `readers` may read (None: every event), in order, at most [`LISTING_LIMIT`].
pub async fn locations(
    model: &Model,
    biz_location: bool,
    readers: Option<Vec<String>>,
) -> Result<Vec<String>, ReadModelError> {
    with_read_conn!(model, |c| {
        macro_rules! distinct {
            ($column:expr) => {{
                let mut q = epcis_events::table
                    .select($column)
                    .filter($column.is_not_null())
                    .distinct()
                    .into_boxed();
                if let Some(readers) = readers.clone()
                    && let Some(allowed) =
                        readable_by::<super::EpcisEvents, _>(epcis_events::event_id, readers)
                {
                    q = q.filter(allowed);
                }
                q.order($column)
                    .limit(LISTING_LIMIT)
                    .load::<Option<String>>(c)?
            }};
        }
        let values = if biz_location {
            distinct!(epcis_events::biz_location)
        } else {
            distinct!(epcis_events::read_point)
        };
        Ok(values.into_iter().flatten().collect())
    })
}

/// The EPCs (instance identifiers: `epcList`, `parentID`, `childEPCs`, `inputEPCList`,
/// `outputEPCList`) the events one of `readers` may read name, in order, at most
/// [`LISTING_LIMIT`].
pub async fn epcs(
    model: &Model,
    readers: Option<Vec<String>>,
) -> Result<Vec<String>, ReadModelError> {
    with_read_conn!(model, |c| {
        let mut readable = epcis_events::table
            .select(epcis_events::position)
            .into_boxed();
        if let Some(readers) = readers.clone()
            && let Some(allowed) =
                readable_by::<super::EpcisEvents, _>(epcis_events::event_id, readers)
        {
            readable = readable.filter(allowed);
        }
        Ok(epcis_event_identifiers::table
            .filter(
                epcis_event_identifiers::role.eq_any(["epc", "parent", "child", "input", "output"]),
            )
            .filter(epcis_event_identifiers::position.eq_any(readable))
            .select(epcis_event_identifiers::identifier)
            .distinct()
            .order(epcis_event_identifiers::identifier)
            .limit(LISTING_LIMIT)
            .load(c)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epc_patterns_become_prefixes_and_ids_stay_exact() {
        use IdentifierMatch::*;
        assert_eq!(
            IdentifierMatch::parse("urn:epc:idpat:sgtin:0614141.107346.*").unwrap(),
            Prefix("urn:epc:id:sgtin:0614141.107346.".into())
        );
        assert_eq!(
            IdentifierMatch::parse("urn:epc:idpat:sgtin:0614141.*.*").unwrap(),
            Prefix("urn:epc:id:sgtin:0614141.".into())
        );
        assert_eq!(
            IdentifierMatch::parse("urn:epc:idpat:sgtin:0614141.107346.2017").unwrap(),
            Exactly("urn:epc:id:sgtin:0614141.107346.2017".into())
        );
        assert_eq!(
            IdentifierMatch::parse("https://id.gs1.org/01/09520123456788/21/12345").unwrap(),
            Exactly("https://id.gs1.org/01/09520123456788/21/12345".into())
        );
        assert!(IdentifierMatch::parse("urn:epc:idpat:sgtin:0614141.*.2017").is_err());
        assert!(IdentifierMatch::parse("urn:epc:idpat:sgtin:06141*").is_err());
        assert_eq!(IdentifierMatch::like("a_b%c"), r"a\_b\%c%");
    }
}
