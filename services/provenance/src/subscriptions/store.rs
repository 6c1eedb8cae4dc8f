//! Where named queries and subscriptions are kept: tables beside the provenance event store
//! (sqlx, both backends).

use veritrace_kernel::db::Database;
use veritrace_kernel::migrate::Migration;
use veritrace_kernel::on_pool;

pub const MIGRATIONS: &[Migration] = &[veritrace_kernel::migration!(
    1,
    "queries_and_subscriptions",
    "provenance/subscriptions_0001_queries_and_subscriptions.sql"
)];

/// A named query as kept.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedQuery {
    pub name: String,
    pub query: serde_json::Value,
    pub created_at: String,
}

/// A subscription as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub subscription_id: String,
    pub organisation: String,
    pub query_name: String,
    pub readers: Option<Vec<String>>,
    pub dest: String,
    pub signature_token: Option<String>,
    pub stream: bool,
    pub schedule_json: Option<String>,
    pub report_if_empty: bool,
    pub initial_record_time: String,
    pub created_at: String,
    pub delivered_through: i64,
    pub last_notified_at: Option<String>,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub due: bool,
}

/// A row as selected: `columns!()` (sqlx reads tuples of up to 16 columns).
type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    Option<String>,
    i64,
    String,
    String,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
);

/// The columns a [`Row`] holds, in its order (a macro: sqlx takes static SQL only).
macro_rules! columns {
    () => {
        "subscription_id, organisation, query_name, readers_json, dest, signature_token, \
         stream, schedule_json, report_if_empty, initial_record_time, created_at, \
         delivered_through, last_notified_at, attempts, next_attempt_ms, due"
    };
}

fn subscription(row: Row) -> Subscription {
    let readers = row
        .3
        .as_deref()
        .and_then(|r| serde_json::from_str::<Vec<String>>(r).ok());
    Subscription {
        subscription_id: row.0,
        organisation: row.1,
        query_name: row.2,
        readers,
        dest: row.4,
        signature_token: row.5,
        stream: row.6 != 0,
        schedule_json: row.7,
        report_if_empty: row.8 != 0,
        initial_record_time: row.9,
        created_at: row.10,
        delivered_through: row.11,
        last_notified_at: row.12,
        attempts: row.13,
        next_attempt_ms: row.14,
        due: row.15 != 0,
    }
}

#[derive(Clone)]
pub struct SubscriptionStore {
    db: Database,
}

impl SubscriptionStore {
    pub fn new(db: Database) -> Self {
        SubscriptionStore { db }
    }

    /// Keeps a new named query; false when the organisation has one of that name.
    pub async fn create_query(
        &self,
        organisation: &str,
        q: &NamedQuery,
    ) -> Result<bool, sqlx::Error> {
        let json = q.query.to_string();
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "INSERT INTO epcis_named_queries (organisation, name, query_json, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(organisation)
            .bind(&q.name)
            .bind(&json)
            .bind(&q.created_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// The organisation's named queries, by name.
    pub async fn queries(&self, organisation: &str) -> Result<Vec<NamedQuery>, sqlx::Error> {
        let rows: Vec<(String, String, String)> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT name, query_json, created_at FROM epcis_named_queries
                 WHERE organisation = $1 ORDER BY name",
            )
            .bind(organisation)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(named_query).collect())
    }

    pub async fn query(
        &self,
        organisation: &str,
        name: &str,
    ) -> Result<Option<NamedQuery>, sqlx::Error> {
        let row: Option<(String, String, String)> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT name, query_json, created_at FROM epcis_named_queries
                 WHERE organisation = $1 AND name = $2",
            )
            .bind(organisation)
            .bind(name)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(named_query))
    }

    /// Deletes a named query and its subscriptions; false when there was none.
    pub async fn delete_query(&self, organisation: &str, name: &str) -> Result<bool, sqlx::Error> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "DELETE FROM epcis_subscriptions WHERE organisation = $1 AND query_name = $2",
            )
            .bind(organisation)
            .bind(name)
            .execute(pool)
            .await?;
            sqlx::query("DELETE FROM epcis_named_queries WHERE organisation = $1 AND name = $2")
                .bind(organisation)
                .bind(name)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() == 1)
        })
    }

    pub async fn create_subscription(&self, s: &Subscription) -> Result<(), sqlx::Error> {
        let readers = s
            .readers
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(concat!(
                "INSERT INTO epcis_subscriptions (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ))
            .bind(&s.subscription_id)
            .bind(&s.organisation)
            .bind(&s.query_name)
            .bind(&readers)
            .bind(&s.dest)
            .bind(&s.signature_token)
            .bind(i64::from(s.stream))
            .bind(&s.schedule_json)
            .bind(i64::from(s.report_if_empty))
            .bind(&s.initial_record_time)
            .bind(&s.created_at)
            .bind(s.delivered_through)
            .bind(&s.last_notified_at)
            .bind(s.attempts)
            .bind(s.next_attempt_ms)
            .bind(i64::from(s.due))
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// The subscriptions of one named query, or (`query_name` None) every subscription.
    pub async fn subscriptions(
        &self,
        organisation: Option<&str>,
        query_name: Option<&str>,
    ) -> Result<Vec<Subscription>, sqlx::Error> {
        let rows: Vec<Row> = on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM epcis_subscriptions
                 WHERE (CAST($1 AS TEXT) IS NULL OR organisation = $1)
                   AND (CAST($2 AS TEXT) IS NULL OR query_name = $2)
                 ORDER BY created_at, subscription_id"
            ))
            .bind(organisation)
            .bind(query_name)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(subscription).collect())
    }

    /// Deletes one subscription; false when there was none.
    pub async fn delete_subscription(
        &self,
        organisation: &str,
        query_name: &str,
        subscription_id: &str,
    ) -> Result<bool, sqlx::Error> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "DELETE FROM epcis_subscriptions
                 WHERE organisation = $1 AND query_name = $2 AND subscription_id = $3",
            )
            .bind(organisation)
            .bind(query_name)
            .bind(subscription_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// Records an acknowledged delivery of the events after `after` through `through`: false
    /// when the subscription moved meanwhile (deleted, or delivered by another process).
    pub async fn delivered(
        &self,
        subscription_id: &str,
        after: i64,
        through: i64,
        at: &str,
        still_due: bool,
    ) -> Result<bool, sqlx::Error> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "UPDATE epcis_subscriptions
                 SET delivered_through = $3, last_notified_at = $4, attempts = 0,
                     next_attempt_ms = 0, last_error = NULL, due = $5
                 WHERE subscription_id = $1 AND delivered_through = $2",
            )
            .bind(subscription_id)
            .bind(after)
            .bind(through)
            .bind(at)
            .bind(i64::from(still_due))
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// Records a failed delivery: the next attempt waits until `next_attempt_ms`.
    pub async fn failed(
        &self,
        subscription_id: &str,
        attempts: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query(
                "UPDATE epcis_subscriptions
                 SET attempts = $2, next_attempt_ms = $3, last_error = $4
                 WHERE subscription_id = $1",
            )
            .bind(subscription_id)
            .bind(attempts)
            .bind(next_attempt_ms)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// A scheduled subscription's time has come.
    pub async fn mark_due(&self, subscription_id: &str) -> Result<(), sqlx::Error> {
        on_pool!(&self.db, writer, |pool| {
            sqlx::query("UPDATE epcis_subscriptions SET due = 1 WHERE subscription_id = $1")
                .bind(subscription_id)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }
}

fn named_query((name, json, created_at): (String, String, String)) -> NamedQuery {
    NamedQuery {
        name,
        query: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
        created_at,
    }
}
