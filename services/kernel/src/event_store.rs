//! The event store: streams of events with optimistic concurrency, and the outbox rows that
//! the relay publishes, written in the same transaction.
//!
//! Appends go through one writer task that commits whatever appends are waiting in a single
//! transaction (group commit): one fsync serves many requests, and each request still gets its
//! own answer (its events committed, or a version conflict that wrote nothing).

use crate::db::{Database, PgDatabase};
use crate::envelope::{EventEnvelope, SealedEnvelope};
use chain_core::Digest;
use sqlx::{PgPool, SqlitePool};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 512;

/// Committed groups held in memory for the consumers of [`EventStore::feed`]; one that falls
/// further behind reads the store instead.
const FEED_GROUPS: usize = 256;

/// Longest an append waits for the relay to work off a backlog over its limit
/// ([`EventStore::limit_backlog`]) before it is committed anyway: a bound on the slowdown, and
/// no deadlock if a relay's own progress ever waited on an append of this store.
const MAX_BACKLOG_WAIT: Duration = Duration::from_secs(2);

/// Cheap to clone: the writer hands each committed event to the feed's readers (relay,
/// projector) and to its caller, so the envelope and its text are shared, not copied.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub position: i64,
    pub envelope: Arc<EventEnvelope>,
    pub canonical: Arc<str>,
    pub digest: Digest,
    /// Who may read it: [`StreamAppend::readers`] and the recording organisation.
    pub readers: Vec<String>,
}

/// Most readers an append may name (besides the recording organisation).
pub const MAX_READERS: usize = 64;

/// Longest business key a domain may claim.
pub const MAX_CLAIM_KEY_BYTES: usize = 512;

#[derive(Debug, thiserror::Error, Clone)]
pub enum EventStoreError {
    #[error("stream {stream} is at version {actual}, the command expected {expected}")]
    Conflict {
        stream: String,
        expected: u64,
        actual: u64,
    },
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("the event store holds an unreadable event at position {position}: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error("{key} is already claimed by {stream} (event {event_id})")]
    Duplicate {
        key: String,
        stream: String,
        event_id: String,
    },
}

impl From<EventStoreError> for crate::problem::ApiError {
    fn from(e: EventStoreError) -> Self {
        use crate::problem::ApiError;
        match e {
            EventStoreError::Conflict { .. } => {
                ApiError::VersionConflict(format!("{e}; read the current state and retry"))
            }
            EventStoreError::Unavailable(cause) => ApiError::unavailable("the event store", cause),
            // The holder is another record, perhaps another organisation's: a domain that knows
            // the caller may see it names it; by default only the key is named.
            EventStoreError::Duplicate { key, .. } => {
                ApiError::Duplicate(format!("{key} is already recorded"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn unavailable(e: sqlx::Error) -> EventStoreError {
    // Every database failure is reported as "try again": a client retrying an append that was
    // refused for a non-transient reason gets the same refusal, and nothing half-written exists.
    EventStoreError::Unavailable(e.to_string())
}

/// Events read in position order, for a consumer that must not stop at one it cannot read.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// The readable events, in position order.
    pub events: Vec<StoredEvent>,
    /// The rows whose envelope or digest cannot be read, in position order.
    pub unreadable: Vec<UnreadableEvent>,
    /// The highest position read, readable or not; 0 when nothing was read.
    pub last: i64,
}

/// A stored event a consumer cannot process, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableEvent {
    pub position: i64,
    pub reason: String,
}

/// The consumer name of the outbox relay in `set_aside_events`.
pub const RELAY_CONSUMER: &str = "relay";

/// Events to append to one stream, if it is at `expected_version` (0: a new stream).
pub struct StreamAppend {
    pub stream: String,
    pub expected_version: u64,
    pub events: Vec<SealedEnvelope>,
    /// Business keys this append claims for its stream, in the same transaction: a key
    /// already claimed (by any stream) refuses the whole append with
    /// [`EventStoreError::Duplicate`] naming the holder.
    pub claims: Vec<String>,
    /// Who may read these events besides the organisation that records them (which always
    /// may): organisation ids, and [`crate::access::COURTS`] where every court may. Kept
    /// beside each event, never hashed into it; the relay publishes it and the anchor grants
    /// receipts by it.
    pub readers: Vec<String>,
}

/// One caller's appends: committed all together or not at all.
struct AppendJob {
    appends: Vec<StreamAppend>,
    reply: oneshot::Sender<Result<Vec<Vec<StoredEvent>>, EventStoreError>>,
}

#[derive(Clone)]
pub struct EventStore {
    jobs: mpsc::Sender<AppendJob>,
    db: Database,
    committed: watch::Receiver<i64>,
    groups: broadcast::Sender<Arc<CommittedGroup>>,
    backlog: Arc<Backlog>,
    metrics: Option<std::sync::Arc<crate::telemetry::Metrics>>,
}

/// The events one transaction committed: every event at positions `after + 1 ..= through`, in
/// position order.
#[derive(Debug)]
pub struct CommittedGroup {
    pub after: i64,
    pub through: i64,
    pub events: Vec<StoredEvent>,
}

/// How far the relay may fall behind the writer before appends wait for it.
struct Backlog {
    /// Most committed events not yet confirmed by the bus; 0: no limit.
    limit: AtomicI64,
    /// The highest position the bus confirmed ([`EventStore::mark_published`]).
    published: watch::Sender<i64>,
}

impl Backlog {
    /// Waits, up to [`MAX_BACKLOG_WAIT`], until at most `limit` events up to `head` wait for
    /// the bus.
    async fn wait_below_limit(&self, head: i64) {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit <= 0 || head - *self.published.borrow() <= limit {
            return;
        }
        let mut published = self.published.subscribe();
        let waited =
            tokio::time::timeout(MAX_BACKLOG_WAIT, published.wait_for(|p| head - *p <= limit))
                .await;
        if waited.is_err() {
            tracing::warn!(
                head,
                published = *self.published.borrow(),
                limit,
                "the relay is far behind; appending anyway"
            );
        }
    }
}

/// Columns every read returns, in this order.
type EventRow = (i64, String, String, String);

/// The oldest outbox entries and their events (SQLite walks the outbox and finds each event by
/// its key).
const UNPUBLISHED_SQLITE: &str = "SELECT e.position, e.envelope, e.digest, e.readers
     FROM outbox o JOIN events e ON e.position = o.position ORDER BY o.position LIMIT $1";
/// The same on PostgreSQL: the outbox's oldest positions as an array, each event found by its
/// key. Joined, even laterally, PostgreSQL went by its statistics, which lag a table that grows
/// and empties all day: with the outbox once large it hashed every event ever stored to find
/// the few at the end, which made each read grow with the store (quadratic over a run).
const UNPUBLISHED_POSTGRES: &str = "SELECT position, envelope, digest, readers FROM events
     WHERE position = ANY(ARRAY(SELECT position FROM outbox ORDER BY position LIMIT $1))
     ORDER BY position";

impl EventStore {
    /// Starts the writer task on `db`. The event store's migrations must have run.
    pub async fn start(db: &Database) -> Result<EventStore, EventStoreError> {
        const HEAD: &str = "SELECT COALESCE(MAX(position), 0) FROM events";
        let head: i64 = crate::on_pool!(db, reader, |pool| sqlx::query_scalar(HEAD)
            .fetch_one(pool)
            .await)
        .map_err(unavailable)?;
        let (jobs, rx) = mpsc::channel(4096);
        let (committed_tx, committed) = watch::channel(head);
        let (groups, _) = broadcast::channel(FEED_GROUPS);
        let backlog = Arc::new(Backlog {
            limit: AtomicI64::new(0),
            published: watch::Sender::new(head),
        });
        tokio::spawn(writer_task(
            db.clone(),
            rx,
            Committer {
                head: committed_tx,
                groups: groups.clone(),
                backlog: backlog.clone(),
            },
        ));
        Ok(EventStore {
            jobs,
            db: db.clone(),
            committed,
            groups,
            backlog,
            metrics: None,
        })
    }

    /// From now on, appends wait (up to two seconds each) while more than `limit` committed
    /// events wait for the bus, so that capture cannot outrun publishing and anchoring by more
    /// than `limit` events; 0 lifts the limit. For a store whose relay runs in this process,
    /// on a bus that an outage cannot stop (the embedded mode's).
    pub fn limit_backlog(&self, limit: usize) {
        self.backlog
            .limit
            .store(i64::try_from(limit).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// A reader of the events committed from now on, handed over in memory where it can be
    /// (see [`EventFeed`]).
    pub fn feed(&self) -> EventFeed {
        EventFeed {
            store: self.clone(),
            groups: self.groups.subscribe(),
        }
    }

    /// The same store, counting in `metrics` the events it appends and those it sets aside.
    pub fn observed_by(mut self, metrics: std::sync::Arc<crate::telemetry::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Appends `events` to `stream` if the stream is at `expected_version` (0: a new stream).
    /// The events' `stream_version`s must continue from `expected_version`. Returns once the
    /// events and their outbox rows are durably committed.
    pub async fn append(
        &self,
        stream: &str,
        expected_version: u64,
        events: Vec<SealedEnvelope>,
    ) -> Result<Vec<StoredEvent>, EventStoreError> {
        let mut stored = self
            .append_all(vec![StreamAppend {
                stream: stream.to_string(),
                expected_version,
                events,
                claims: Vec::new(),
                readers: Vec::new(),
            }])
            .await?;
        Ok(stored.pop().unwrap_or_default())
    }

    /// Appends to several streams atomically: every append is committed, or none is (a
    /// version conflict on any stream fails them all).
    pub async fn append_all(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<Vec<StoredEvent>>, EventStoreError> {
        let mut streams = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for a in &appends {
            if !a.claims.is_empty() && a.events.is_empty() {
                return Err(EventStoreError::Invalid(format!(
                    "stream {} claims keys without appending an event",
                    a.stream
                )));
            }
            for key in &a.claims {
                // A key the database could not index would fail the whole commit group.
                if key.is_empty() || key.len() > MAX_CLAIM_KEY_BYTES || key.contains('\0') {
                    return Err(EventStoreError::Invalid(format!(
                        "a claimed key must be 1 to {MAX_CLAIM_KEY_BYTES} bytes without NUL"
                    )));
                }
                if !keys.insert(key.as_str()) {
                    return Err(EventStoreError::Invalid(format!(
                        "key {key:?} is claimed twice in one append"
                    )));
                }
            }
            if a.readers.len() > MAX_READERS
                || a.readers
                    .iter()
                    .any(|r| r.is_empty() || r.len() > 128 || r.contains('\0'))
            {
                return Err(EventStoreError::Invalid(format!(
                    "an access list holds at most {MAX_READERS} readers of 1 to 128 bytes without NUL"
                )));
            }
            if !streams.insert(a.stream.as_str()) {
                return Err(EventStoreError::Invalid(format!(
                    "stream {} appears twice in one append",
                    a.stream
                )));
            }
            for (i, e) in a.events.iter().enumerate() {
                if e.envelope.stream != a.stream
                    || e.envelope.stream_version != a.expected_version + 1 + i as u64
                {
                    return Err(EventStoreError::Invalid(format!(
                        "event {} does not continue stream {} from version {}",
                        e.envelope.id, a.stream, a.expected_version
                    )));
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(AppendJob { appends, reply })
            .await
            .map_err(|_| EventStoreError::Unavailable("the writer has stopped".into()))?;
        let stored = answer
            .await
            .map_err(|_| EventStoreError::Unavailable("the writer has stopped".into()))??;
        if let Some(metrics) = &self.metrics {
            // Every append counts, a command's or a reaction's, by the service that recorded it.
            let mut services = stored.iter().flatten().map(|e| e.envelope.service.as_str());
            if let Some(first) = services.next() {
                let mut count = 1;
                for service in services {
                    if service == first {
                        count += 1;
                    } else {
                        metrics.events_appended.with_label_values(&[service]).inc();
                    }
                }
                metrics
                    .events_appended
                    .with_label_values(&[first])
                    .inc_by(count);
            }
        }
        Ok(stored)
    }

    /// Position of the last committed event; changes on every commit.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }

    pub async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEvent>, EventStoreError> {
        let rows: Vec<EventRow> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT position, envelope, digest, readers FROM events WHERE stream = $1 ORDER BY stream_version",
            )
            .bind(stream)
            .fetch_all(pool)
            .await
        })
        .map_err(unavailable)?;
        rows.into_iter().map(row_to_event).collect()
    }

    /// Events after `position`, in commit order; rows that cannot be read are reported apart.
    pub async fn read_after(
        &self,
        position: i64,
        limit: i64,
    ) -> Result<ReadBatch, EventStoreError> {
        let rows: Vec<EventRow> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT position, envelope, digest, readers FROM events WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(position)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
        .map_err(unavailable)?;
        Ok(read_batch(rows))
    }

    /// Outbox entries not yet confirmed by the bus, oldest first; rows that cannot be read are
    /// reported apart.
    pub async fn unpublished(&self, limit: i64) -> Result<ReadBatch, EventStoreError> {
        let sql = match self.db {
            Database::Sqlite(_) => UNPUBLISHED_SQLITE,
            Database::Postgres(_) => UNPUBLISHED_POSTGRES,
        };
        let rows: Vec<EventRow> = crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(sql).bind(limit).fetch_all(pool).await
        })
        .map_err(unavailable)?;
        Ok(read_batch(rows))
    }

    /// Records that `consumer` cannot process `events` and moves on past them, once each (a
    /// second call for the same event changes nothing). For [`RELAY_CONSUMER`] they also leave
    /// the outbox, in the same transaction. The events stay in the store as they are.
    pub async fn set_aside(
        &self,
        consumer: &str,
        events: &[UnreadableEvent],
    ) -> Result<(), EventStoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = crate::envelope::now_rfc3339();
        // Only the events set aside by this call are counted and logged: a retry of the same
        // batch finds them recorded already.
        let new: Vec<&UnreadableEvent> = crate::on_pool!(&self.db, writer, |pool, begin| async {
            let mut tx = pool.begin_with(begin).await?;
            let mut new = Vec::new();
            for e in events {
                let inserted = sqlx::query(
                    "INSERT INTO set_aside_events (consumer, position, reason, set_aside_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (consumer, position) DO NOTHING",
                )
                .bind(consumer)
                .bind(e.position)
                .bind(&e.reason)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted > 0 {
                    new.push(e);
                }
                if consumer == RELAY_CONSUMER {
                    sqlx::query("DELETE FROM outbox WHERE position = $1")
                        .bind(e.position)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await.map(|()| new)
        }
        .await)
        .map_err(unavailable)?;
        if let Some(m) = &self.metrics {
            m.events_set_aside
                .with_label_values(&[consumer])
                .inc_by(new.len() as u64);
        }
        for e in new {
            tracing::error!(
                consumer,
                position = e.position,
                reason = %e.reason,
                "event set aside: it cannot be processed; the events behind it go on \
                 (listed in set_aside_events)"
            );
        }
        Ok(())
    }

    /// How many events each consumer has set aside, by consumer name.
    pub async fn set_aside_counts(&self) -> Result<Vec<(String, i64)>, EventStoreError> {
        crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_as(
                "SELECT consumer, COUNT(*) FROM set_aside_events GROUP BY consumer ORDER BY consumer",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(unavailable)
    }

    /// Removes confirmed entries from the outbox.
    pub async fn mark_published(&self, positions: &[i64]) -> Result<(), EventStoreError> {
        let Some(&last) = positions.iter().max() else {
            return Ok(());
        };
        match &self.db {
            Database::Sqlite(db) => {
                sqlx::query("DELETE FROM outbox WHERE position IN (SELECT value FROM json_each(?))")
                    .bind(serde_json::to_string(positions).unwrap_or_default())
                    .execute(&db.writer)
                    .await
                    .map(|_| ())
            }
            Database::Postgres(db) => sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
                .bind(positions)
                .execute(&db.pool)
                .await
                .map(|_| ()),
        }
        .map_err(unavailable)?;
        // The relay publishes in commit order: what it confirms last is how far it got.
        self.backlog.published.send_replace(last);
        Ok(())
    }

    pub async fn outbox_len(&self) -> Result<i64, EventStoreError> {
        crate::on_pool!(&self.db, reader, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
                .fetch_one(pool)
                .await
        })
        .map_err(unavailable)
    }

    /// The database this store writes to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A candidate for the exclusive right to do `role` for this store; no I/O until
    /// [`Lease::check`]. See [`Lease`].
    pub fn lease(&self, role: LeaseRole) -> Lease {
        Lease {
            db: match &self.db {
                Database::Postgres(db) => Some(db.clone()),
                Database::Sqlite(_) => None,
            },
            role,
            conn: None,
            held: false,
        }
    }
}

/// Events in commit order for one consumer: each group the writer commits is handed over in
/// memory, as the writer holds it, instead of being read back and parsed; the store is read
/// instead wherever the groups do not continue exactly from the consumer's position (at its
/// start, after falling more than a few hundred groups behind, or where another process
/// appends too, as in the distributed mode).
pub struct EventFeed {
    store: EventStore,
    groups: broadcast::Receiver<Arc<CommittedGroup>>,
}

impl EventFeed {
    /// Events after `position`, as [`EventStore::read_after`] gives them: at most about
    /// `limit` (a group is not split), none if none was committed.
    pub async fn read_after(
        &mut self,
        position: i64,
        limit: i64,
    ) -> Result<ReadBatch, EventStoreError> {
        let mut batch = ReadBatch {
            last: position,
            ..ReadBatch::default()
        };
        while (batch.events.len() as i64) < limit {
            match self.groups.try_recv() {
                Ok(group) if group.through <= batch.last => {}
                Ok(group) if group.after == batch.last => {
                    batch.events.extend(group.events.iter().cloned());
                    batch.last = group.through;
                }
                Err(broadcast::error::TryRecvError::Empty) => break,
                // A gap (groups missed, or another process's appends): what was taken is
                // still in order; the store gives the rest.
                Ok(_) | Err(_) if !batch.events.is_empty() => break,
                Ok(_) | Err(_) => return self.store.read_after(position, limit).await,
            }
        }
        if batch.events.is_empty() {
            return self.store.read_after(position, limit).await;
        }
        Ok(batch)
    }
}

/// Work only one process may do per store at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseRole {
    /// Publishing the outbox: two relays would interleave their rounds and break per-stream
    /// order.
    Relay,
    /// Projecting events into the read model: two projectors would do the same writes twice.
    Projector,
}

impl LeaseRole {
    fn lock_name(self) -> &'static str {
        match self {
            LeaseRole::Relay => "relay",
            LeaseRole::Projector => "project",
        }
    }
}

/// The exclusive right to do a [`LeaseRole`] for one store. PostgreSQL: a session advisory
/// lock (`hashtextextended('<schema>/<role>')`) on a connection the lease keeps, so it ends with
/// the connection, and a crashed process's lease with it; a standby keeps its connection too and
/// retries the lock on it. SQLite: one process owns the file; always held.
pub struct Lease {
    db: Option<crate::db::PgDatabase>,
    role: LeaseRole,
    conn: Option<sqlx::PgConnection>,
    held: bool,
}

impl Lease {
    /// Whether this process holds the lease now: a held lease is checked on its connection
    /// (lost with it); otherwise the lock is tried, on a connection opened when there is none.
    /// An error means the database cannot be asked; the lease is then not held.
    pub async fn check(&mut self) -> Result<bool, EventStoreError> {
        let Some(db) = &self.db else {
            return Ok(true);
        };
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                self.held = false;
                let conn = db.pool.acquire().await.map_err(unavailable)?.detach();
                self.conn.insert(conn)
            }
        };
        let result = if self.held {
            sqlx::query("SELECT 1")
                .execute(&mut *conn)
                .await
                .map(|_| true)
        } else {
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("{}/{}", db.schema, self.role.lock_name()))
                .fetch_one(&mut *conn)
                .await
        };
        match result {
            Ok(held) => {
                self.held = held;
                Ok(held)
            }
            Err(e) => {
                // The connection, and any lock it held, is gone.
                self.conn = None;
                self.held = false;
                Err(unavailable(e))
            }
        }
    }
}

/// Splits rows into the events that can be read and those that cannot.
fn read_batch(rows: Vec<EventRow>) -> ReadBatch {
    let mut batch = ReadBatch::default();
    for row in rows {
        batch.last = batch.last.max(row.0);
        match row_to_event(row) {
            Ok(event) => batch.events.push(event),
            Err(EventStoreError::Corrupt { position, reason }) => {
                batch.unreadable.push(UnreadableEvent { position, reason })
            }
            Err(other) => batch.unreadable.push(UnreadableEvent {
                position: batch.last,
                reason: other.to_string(),
            }),
        }
    }
    batch
}

fn row_to_event(
    (position, canonical, digest, readers): EventRow,
) -> Result<StoredEvent, EventStoreError> {
    let corrupt = |reason: String| EventStoreError::Corrupt { position, reason };
    let envelope: EventEnvelope =
        serde_json::from_str(&canonical).map_err(|e| corrupt(e.to_string()))?;
    let digest: Digest = digest
        .parse()
        .map_err(|e: chain_core::hash::DigestParseError| corrupt(e.to_string()))?;
    let readers = serde_json::from_str(&readers).map_err(|e| corrupt(format!("readers: {e}")))?;
    Ok(StoredEvent {
        position,
        envelope: Arc::new(envelope),
        canonical: canonical.into(),
        digest,
        readers,
    })
}

/// What the writer tells of each commit: the head position, the group to the feed's readers,
/// and the backlog it waits on.
struct Committer {
    head: watch::Sender<i64>,
    groups: broadcast::Sender<Arc<CommittedGroup>>,
    backlog: Arc<Backlog>,
}

impl Committer {
    /// Hands the committed group to the feed (if anyone reads it) before moving the head, so a
    /// reader woken by the head finds the group waiting.
    fn committed(&self, outcome: &GroupOutcome) {
        let head = outcome.through;
        if self.groups.receiver_count() > 0
            && let Some(group) = outcome.group()
        {
            let _ = self.groups.send(Arc::new(group));
        }
        self.head.send_if_modified(|h| {
            let moved = head > *h;
            if moved {
                *h = head;
            }
            moved
        });
    }
}

async fn writer_task(db: Database, mut rx: mpsc::Receiver<AppendJob>, committer: Committer) {
    while let Some(first) = rx.recv().await {
        // Appends that arrive meanwhile join this group.
        let head = *committer.head.borrow();
        committer.backlog.wait_below_limit(head).await;
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let span = tracing::debug_span!("commit_group", appends = jobs.len());
        let outcome = match &db {
            Database::Sqlite(db) => {
                commit_group_sqlite(&db.writer, &mut jobs)
                    .instrument(span)
                    .await
            }
            Database::Postgres(db) => commit_group_postgres(db, &mut jobs).instrument(span).await,
        };
        match outcome {
            Ok(outcome) => {
                committer.committed(&outcome);
                for (job, result) in jobs.into_iter().zip(outcome.results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "event store commit failed; nothing of the group was written");
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A committed group: each job's answer, and the positions it took.
struct GroupOutcome {
    results: Vec<Result<Vec<Vec<StoredEvent>>, EventStoreError>>,
    /// The head before the group: the last position committed when the group began to write
    /// (SQLite: the file's one writer; PostgreSQL: read under the append lock).
    after: i64,
    /// The highest position the group took, or the head before it.
    through: i64,
}

impl GroupOutcome {
    /// The group as the feed hands it over; None when it committed nothing, or when its
    /// events do not fill their positions exactly (the feed's readers then read the store).
    fn group(&self) -> Option<CommittedGroup> {
        let after = self.after;
        let mut events: Vec<StoredEvent> = self
            .results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flatten()
            .flatten()
            .cloned()
            .collect();
        events.sort_by_key(|e| e.position);
        let fills = events.len() as i64 == self.through - after
            && events.first().is_some_and(|e| e.position == after + 1);
        fills.then_some(CommittedGroup {
            after,
            through: self.through,
            events,
        })
    }
}

/// The streams a group touches, each once.
fn group_streams(jobs: &[AppendJob]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    jobs.iter()
        .flat_map(|j| j.appends.iter().map(|a| a.stream.clone()))
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// The keys a group claims, each once.
fn group_keys(jobs: &[AppendJob]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    jobs.iter()
        .flat_map(|j| j.appends.iter().flat_map(|a| a.claims.iter().cloned()))
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

/// Who holds a claimed key: the stream and the first event of the append that claimed it.
type Holders = std::collections::HashMap<String, (String, String)>;

/// What [`decide`] gives: the events to insert, in order, each with its access list as
/// stored; each job's verdict; the claims to insert.
type Decided<'a> = (
    Vec<(&'a SealedEnvelope, String)>,
    Vec<Option<EventStoreError>>,
    Vec<NewClaim>,
);

/// A claim an accepted job makes: key, stream, event id.
type NewClaim = (String, String, String);

/// Decides each job against the streams' current versions and the keys already claimed (as
/// read: stream and version; key, stream and event id), as
/// the earlier jobs of the group leave them: the events to insert, in order, each job's
/// conflict if it has one, and the claims to insert.
fn decide(
    jobs: &[AppendJob],
    versions: Vec<(String, i64)>,
    holders: Vec<(String, String, String)>,
) -> Decided<'_> {
    let mut versions: std::collections::HashMap<String, u64> =
        versions.into_iter().map(|(s, v)| (s, v as u64)).collect();
    let mut holders: Holders = holders
        .into_iter()
        .map(|(key, stream, event_id)| (key, (stream, event_id)))
        .collect();
    let mut accepted = Vec::with_capacity(jobs.len());
    let mut verdicts = Vec::with_capacity(jobs.len());
    let mut claims = Vec::new();
    for job in jobs {
        let conflict = job.appends.iter().find_map(|a| {
            let actual = versions.get(&a.stream).copied().unwrap_or(0);
            (actual != a.expected_version).then(|| EventStoreError::Conflict {
                stream: a.stream.clone(),
                expected: a.expected_version,
                actual,
            })
        });
        let duplicate = || {
            job.appends.iter().find_map(|a| {
                a.claims.iter().find_map(|key| {
                    holders
                        .get(key)
                        .map(|(stream, event_id)| EventStoreError::Duplicate {
                            key: key.clone(),
                            stream: stream.clone(),
                            event_id: event_id.clone(),
                        })
                })
            })
        };
        let verdict = conflict.or_else(duplicate);
        if verdict.is_none() {
            for a in &job.appends {
                versions.insert(a.stream.clone(), a.expected_version + a.events.len() as u64);
                accepted.extend(a.events.iter().map(|e| {
                    (
                        e,
                        readers_text(&readers_of(&a.readers, &e.envelope.organisation)),
                    )
                }));
                // append_all refuses claims without events.
                let Some(first) = a.events.first() else {
                    continue;
                };
                for key in &a.claims {
                    let holder = (a.stream.clone(), first.envelope.id.to_string());
                    holders.insert(key.clone(), holder.clone());
                    claims.push((key.clone(), holder.0, holder.1));
                }
            }
        }
        verdicts.push(verdict);
    }
    (accepted, verdicts, claims)
}

/// Who may read an event `organisation` recorded with an append's `readers`: the recording
/// organisation, then those readers, each once, in that order.
fn readers_of(readers: &[String], organisation: &str) -> Vec<String> {
    let mut all = vec![organisation.to_string()];
    for r in readers {
        if !all.contains(r) {
            all.push(r.clone());
        }
    }
    all
}

/// An access list as stored: a JSON array of strings.
fn readers_text(readers: &[String]) -> String {
    serde_json::to_string(readers).unwrap_or_else(|_| "[]".into())
}

/// The claims' rows, column by column.
#[derive(Default)]
struct ClaimRows {
    keys: Vec<String>,
    streams: Vec<String>,
    event_ids: Vec<String>,
    positions: Vec<i64>,
}

/// The claims' rows, with the positions of the claiming events.
fn claim_rows(
    claims: &[NewClaim],
    positions: &std::collections::HashMap<String, i64>,
) -> Result<ClaimRows, EventStoreError> {
    let mut rows = ClaimRows::default();
    for (key, stream, event_id) in claims {
        let position = *positions
            .get(event_id)
            .ok_or_else(|| EventStoreError::Corrupt {
                position: 0,
                reason: format!("claiming event {event_id} committed without a position"),
            })?;
        rows.keys.push(key.clone());
        rows.streams.push(stream.clone());
        rows.event_ids.push(event_id.clone());
        rows.positions.push(position);
    }
    Ok(rows)
}

/// Each job's answer once the group committed, given the position of every inserted event.
/// The committed envelopes move out of `jobs` into the answer: nothing of them is copied.
fn answers(
    jobs: &mut [AppendJob],
    verdicts: Vec<Option<EventStoreError>>,
    positions: &std::collections::HashMap<String, i64>,
    before: i64,
) -> GroupOutcome {
    let mut head = before;
    let mut results = Vec::with_capacity(jobs.len());
    for (job, verdict) in jobs.iter_mut().zip(verdicts) {
        if let Some(conflict) = verdict {
            results.push(Err(conflict));
            continue;
        }
        let stored_job: Result<Vec<Vec<StoredEvent>>, EventStoreError> = job
            .appends
            .iter_mut()
            .map(|a| {
                let readers = &a.readers;
                std::mem::take(&mut a.events)
                    .into_iter()
                    .map(|e| {
                        let position =
                            *positions.get(&e.envelope.id.to_string()).ok_or_else(|| {
                                EventStoreError::Corrupt {
                                    position: 0,
                                    reason: format!(
                                        "event {} committed without a position",
                                        e.envelope.id
                                    ),
                                }
                            })?;
                        head = head.max(position);
                        let readers = readers_of(readers, &e.envelope.organisation);
                        Ok(StoredEvent {
                            position,
                            envelope: Arc::new(e.envelope),
                            canonical: e.canonical.into(),
                            digest: e.digest,
                            readers,
                        })
                    })
                    .collect()
            })
            .collect();
        results.push(stored_job);
    }
    GroupOutcome {
        results,
        after: before,
        through: head,
    }
}

/// Commits a group of jobs in one transaction with few statements: SQLite statements cost a
/// hop to sqlx's worker thread each, so the lookups take their keys as one JSON array
/// parameter (`json_each`), and the events go in as multi-row inserts
/// ([`row_chunks`](crate::db::row_chunks)), whose bound values SQLite does not parse.
/// One row of `events` as the SQLite store inserts it ([`insert_events_sqlite`]).
pub struct NewEventRow<'a> {
    pub event_id: String,
    pub stream: &'a str,
    pub stream_version: i64,
    pub event_type: &'a str,
    /// The canonical envelope: the bytes its digest is taken over.
    pub envelope: &'a str,
    pub digest: String,
    pub recorded_at: &'a str,
    /// Its access list as stored: a JSON array of strings.
    pub readers: &'a str,
}

/// Inserts `rows` into `events` in `tx`, in their order: multi-row statements of a few cached
/// shapes ([`crate::db::row_chunks`]). Returns each row's (position, event id). The store's
/// append and the bench's ceiling of its storage both write this way, so the ceiling times
/// exactly the platform's statements.
pub async fn insert_events_sqlite(
    tx: &mut sqlx::SqliteConnection,
    rows: &[NewEventRow<'_>],
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let mut inserted = Vec::with_capacity(rows.len());
    for chunk in crate::db::row_chunks(rows.len(), crate::db::ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at, readers) ",
        );
        insert.push_values(&rows[chunk], |mut row, r| {
            row.push_bind(r.event_id.as_str())
                .push_bind(r.stream)
                .push_bind(r.stream_version)
                .push_bind(r.event_type)
                .push_bind(r.envelope)
                .push_bind(r.digest.as_str())
                .push_bind(r.recorded_at)
                .push_bind(r.readers);
        });
        insert.push(" RETURNING position, event_id");
        inserted.extend(
            insert
                .build_query_as::<(i64, String)>()
                .fetch_all(&mut *tx)
                .await?,
        );
    }
    Ok(inserted)
}

async fn commit_group_sqlite(
    pool: &SqlitePool,
    jobs: &mut [AppendJob],
) -> Result<GroupOutcome, EventStoreError> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    // Current version of every stream the group touches.
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT j.value, COALESCE((SELECT MAX(e.stream_version) FROM events e WHERE e.stream = j.value), 0)
         FROM json_each(?) AS j",
    )
    .bind(serde_json::to_string(&group_streams(jobs)).unwrap_or_default())
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    let keys = group_keys(jobs);
    let holders: Vec<(String, String, String)> = if keys.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT claim_key, stream, event_id FROM claims
             WHERE claim_key IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(&keys).unwrap_or_default())
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?
    };
    let (accepted, verdicts, claims) = decide(jobs, rows, holders);

    let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
    let mut positions = std::collections::HashMap::with_capacity(accepted.len());
    if !accepted.is_empty() {
        let rows: Vec<NewEventRow> = accepted
            .iter()
            .map(|(e, readers)| NewEventRow {
                event_id: e.envelope.id.to_string(),
                stream: &e.envelope.stream,
                stream_version: e.envelope.stream_version as i64,
                event_type: &e.envelope.event_type,
                envelope: &e.canonical,
                digest: e.digest.to_hex(),
                recorded_at: &e.envelope.recorded_at,
                readers,
            })
            .collect();
        let inserted = insert_events_sqlite(&mut tx, &rows)
            .await
            .map_err(unavailable)?;
        positions.extend(inserted.into_iter().map(|(p, id)| (id, p)));
        sqlx::query("INSERT INTO outbox (position) SELECT position FROM events WHERE position > ?")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    if !claims.is_empty() {
        let c = claim_rows(&claims, &positions)?;
        let rows: Vec<serde_json::Value> = (0..c.keys.len())
            .map(|i| serde_json::json!([c.keys[i], c.streams[i], c.event_ids[i], c.positions[i]]))
            .collect();
        sqlx::query(
            "INSERT INTO claims (claim_key, stream, event_id, position)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(answers(jobs, verdicts, &positions, before))
}

/// PostgreSQL: one transaction of a few round trips. The advisory lock serialises appends to
/// the schema across processes, so positions become visible in the order they were assigned:
/// a reader following `position > checkpoint` can never skip an event committed late with a
/// smaller position.
/// Current version of each stream of `$1` (distinct names), each found by its own probe of the
/// `(stream, stream_version)` index. Joined instead, PostgreSQL guessed ten streams, hashed
/// them and read the whole events table once per group: quadratic over a run.
const STREAM_VERSIONS_POSTGRES: &str =
    "SELECT s.stream, COALESCE((SELECT MAX(e.stream_version) FROM events e WHERE e.stream = s.stream), 0)::BIGINT
     FROM UNNEST($1::TEXT[]) AS s(stream)";

async fn commit_group_postgres(
    db: &PgDatabase,
    jobs: &mut [AppendJob],
) -> Result<GroupOutcome, EventStoreError> {
    let pool: &PgPool = &db.pool;
    let mut tx = pool.begin().await.map_err(unavailable)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{}/append", db.schema))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    // Read under the lock, by a statement of its own (its snapshot is taken after the lock is
    // held): every earlier append is committed and none can come between.
    let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
    let rows: Vec<(String, i64)> = sqlx::query_as(STREAM_VERSIONS_POSTGRES)
        .bind(group_streams(jobs))
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
    // Under the append lock: no other writer claims between this read and the insert.
    let keys = group_keys(jobs);
    let holders: Vec<(String, String, String)> = if keys.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT claim_key, stream, event_id FROM claims WHERE claim_key = ANY($1::TEXT[])",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?
    };
    let (accepted, verdicts, claims) = decide(jobs, rows, holders);

    let mut positions = std::collections::HashMap::with_capacity(accepted.len());
    if !accepted.is_empty() {
        let mut ids = Vec::with_capacity(accepted.len());
        let mut streams = Vec::with_capacity(accepted.len());
        let mut versions = Vec::with_capacity(accepted.len());
        let mut types = Vec::with_capacity(accepted.len());
        let mut envelopes = Vec::with_capacity(accepted.len());
        let mut digests = Vec::with_capacity(accepted.len());
        let mut recorded = Vec::with_capacity(accepted.len());
        let mut readers = Vec::with_capacity(accepted.len());
        for (e, readers_of_e) in &accepted {
            ids.push(e.envelope.id.to_string());
            streams.push(e.envelope.stream.as_str());
            versions.push(e.envelope.stream_version as i64);
            types.push(e.envelope.event_type.as_str());
            envelopes.push(e.canonical.as_str());
            digests.push(e.digest.to_hex());
            recorded.push(e.envelope.recorded_at.as_str());
            readers.push(readers_of_e.as_str());
        }
        // Identity values are drawn in the order the SELECT yields its rows, so positions
        // follow the given order.
        let inserted: Vec<(i64, String)> = sqlx::query_as(
            "WITH new AS (
                INSERT INTO events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at, readers)
                SELECT id::UUID, stream, version, event_type, envelope, digest, recorded_at, readers
                FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
                    WITH ORDINALITY AS r(id, stream, version, event_type, envelope, digest, recorded_at, readers, n)
                ORDER BY n
                RETURNING position, event_id
             ), queued AS (
                INSERT INTO outbox (position) SELECT position FROM new
             )
             SELECT position, event_id::TEXT FROM new",
        )
        .bind(&ids)
        .bind(&streams)
        .bind(&versions)
        .bind(&types)
        .bind(&envelopes)
        .bind(&digests)
        .bind(&recorded)
        .bind(&readers)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        positions.extend(inserted.into_iter().map(|(p, id)| (id, p)));
    }
    if !claims.is_empty() {
        let c = claim_rows(&claims, &positions)?;
        sqlx::query(
            "INSERT INTO claims (claim_key, stream, event_id, position)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[])",
        )
        .bind(&c.keys)
        .bind(&c.streams)
        .bind(&c.event_ids)
        .bind(&c.positions)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(answers(jobs, verdicts, &positions, before))
}

#[cfg(test)]
mod claim_tests {
    use super::*;
    use actix_web::ResponseError;

    #[test]
    fn a_duplicate_claim_is_a_409_problem_naming_the_key_only() {
        let e = EventStoreError::Duplicate {
            key: "seller-1:no-7".into(),
            stream: "invoice-3".into(),
            event_id: "0192e0c4-0000-7000-8000-000000000000".into(),
        };
        let api = crate::problem::ApiError::from(e);
        assert_eq!(api.status_code().as_u16(), 409);
        let problem = api.to_problem();
        assert_eq!(problem.problem_type, "urn:veritrace:problem:duplicate");
        assert!(
            problem.detail.contains("seller-1:no-7"),
            "{}",
            problem.detail
        );
        // Not the holder: it may be another organisation's record.
        assert!(!problem.detail.contains("invoice-3"), "{}", problem.detail);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::testing::TestDb;

    /// The PostgreSQL plans of the relay's read and of a group's stream versions, over a store
    /// whose events far outnumber its outbox: each event found by its key, never the events
    /// table read whole (which made both grow with every event ever stored).
    #[tokio::test]
    async fn the_relay_and_the_stream_versions_never_read_every_event() {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let store = db.open("kernel").await;
        crate::migrate::run(&store, "event_store", crate::migrate::EVENT_STORE)
            .await
            .expect("the event store's tables");
        let Database::Postgres(pg) = &store else {
            unreachable!("a PostgreSQL test database")
        };
        // Statistics as a busy store has them: taken while the events were few and the outbox
        // long, since when the events grew tenfold and the outbox emptied but for its tail.
        let events = |from: i64, to: i64| {
            format!(
                "INSERT INTO events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at, readers)
                 SELECT gen_random_uuid(), 'stream-' || i, 1, 'Noted', repeat('x', 500), md5(i::TEXT), 'now', '[]'
                 FROM generate_series({from}, {to}) AS i"
            )
        };
        for statement in [
            events(1, 2_000),
            "ANALYZE events".into(),
            events(2_001, 20_000),
            "INSERT INTO outbox (position) SELECT position FROM events".into(),
            "ANALYZE outbox".into(),
            "DELETE FROM outbox WHERE position <= 19750".into(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&pg.pool)
                .await
                .expect("events and an outbox");
        }
        // As the platform runs them: prepared, their parameters bound.
        let streams: Vec<String> = (19_750..20_000).map(|i| format!("stream-{i}")).collect();
        for analyzed in [false, true] {
            if analyzed {
                sqlx::query("ANALYZE")
                    .execute(&pg.pool)
                    .await
                    .expect("analyzed");
            }
            let plans: [Vec<String>; 2] = [
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN {UNPUBLISHED_POSTGRES}"
                )))
                .bind(500_i64)
                .fetch_all(&pg.pool)
                .await
                .expect("the relay's plan"),
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN {STREAM_VERSIONS_POSTGRES}"
                )))
                .bind(&streams)
                .fetch_all(&pg.pool)
                .await
                .expect("the stream versions' plan"),
            ];
            for plan in plans {
                let plan = plan.join("\n");
                assert!(!plan.contains("Seq Scan on events"), "{plan}");
                assert!(!plan.contains("Merge Join"), "{plan}");
                assert!(plan.contains("Index"), "{plan}");
            }
        }
    }
}
