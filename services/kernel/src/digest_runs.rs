//! A lookup by digest for an append-only SQLite table, kept as sorted runs instead of one
//! B-tree index.
//!
//! Why: digests are uniformly random, so each new entry of an ordinary index lands on its own
//! page of that index, and SQLite's WAL logs whole pages. Once the index outgrows what one
//! commit fills, every row inserted writes about one page (4 KiB) to the WAL and again at the
//! checkpoint, and that cost grows with the table: a digest index was most of what the anchor
//! wrote per event, and why its rate fell over a long run.
//!
//! How: the source rows are left unindexed until [`RUN_ENTRIES`] of them wait; they are then
//! written, sorted, as one *run* of a `WITHOUT ROWID` table keyed `(run, digest, row_key)`. A new
//! run has the highest number, so its entries are appended: pages written once, full. When
//! [`RUNS_PER_MERGE`] runs written from the tail exist they are merged into one run of 32,768
//! entries or more ([`MERGED_CLASSES`]), which stays as it is: each entry is written twice,
//! a few dozen bytes each time. A lookup seeks each live run (up to 7 written from the tail,
//! and one per 32,768 rows beyond: 30 at a million rows, 305 at ten million, 1.2–1.6 ms in a
//! replica on the 2-core machine) and scans the unindexed tail (about [`RUN_ENTRIES`] rows, by
//! key range).
//!
//! A merge is written in chunks by digest range, each in a transaction of its own
//! ([`DigestRuns::merge_step`]), never in the transaction that inserted the rows: merging
//! 262,144 entries at once held the anchor's writer for half a second, and capture waited on
//! the anchor meanwhile. The catalog says where each merge stands, so one cut short goes on
//! where its last chunk ended; its new run is looked up only once complete, and the runs it
//! replaces until then.
//!
//! SQLite only. PostgreSQL's WAL records each index entry, not its page, and keeps its B-tree
//! index.
//!
//! The owner creates the two tables in its migrations, with exactly these columns:
//! ```sql
//! CREATE TABLE <runs> (run INTEGER NOT NULL, digest TEXT NOT NULL, row_key INTEGER NOT NULL,
//!     PRIMARY KEY (run, digest, row_key)) WITHOUT ROWID;
//! CREATE TABLE <catalog> (run INTEGER PRIMARY KEY, last_row_key INTEGER NOT NULL,
//!     entries INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'live',
//!     merging_into INTEGER, written_below TEXT);
//! ```
//! Every source row with key ≤ `MAX(last_row_key)` is in exactly one live run; the rest are
//! the tail. That holds because the source's key only grows (an `AUTOINCREMENT` key with a
//! single writer) and its rows are never deleted.

use sqlx::SqliteConnection;

/// Unindexed source rows that make a new run. A lookup scans at most this many rows.
pub const RUN_ENTRIES: i64 = 4096;
/// Runs of one size class merged into one run of the next class.
pub const RUNS_PER_MERGE: usize = 8;
/// Size classes merged, from class 0 (runs written from the tail): runs of the classes above
/// stay as they are. Merging the
/// runs of 32,768 too (class 1, into runs of 262,144) wrote each entry a third time: 0.4 KB
/// more per event of the million-event soak (6.9 KB against 6.5), and its merges, 0.5 s of
/// work each for the anchor and the evidence read model at every 262,144 rows, were the soak's
/// two dips of 20 %. The price: a lookup seeks one run per 32,768 rows, not per 262,144.
pub const MERGED_CLASSES: u32 = 1;

/// The digest column of a source table and the two tables that index it.
#[derive(Debug, Clone, Copy)]
pub struct DigestRuns {
    /// The indexed table.
    pub source: &'static str,
    /// Its integer key, growing with each row inserted.
    pub key: &'static str,
    /// Its digest column.
    pub digest: &'static str,
    /// The table of runs: `(run, digest, row_key)`.
    pub runs: &'static str,
    /// One row per live run: `(run, last_row_key, entries)`.
    pub catalog: &'static str,
    /// Source keys that make a new run: [`RUN_ENTRIES`] but in tests.
    pub run_entries: i64,
}

/// A live run, as the catalog lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    run: i64,
    last_row_key: i64,
    entries: i64,
}

impl Run {
    /// 0 for a run written from the tail, 1 for one merged from those, and so on: the runs
    /// merged together are of one class, so an entry is rewritten once per class.
    fn size_class(&self, run_entries: i64) -> u32 {
        let mut class = 0;
        let mut bound = run_entries.max(1).saturating_mul(RUNS_PER_MERGE as i64);
        while self.entries >= bound {
            class += 1;
            match bound.checked_mul(RUNS_PER_MERGE as i64) {
                Some(next) => bound = next,
                None => break,
            }
        }
        class
    }
}

impl DigestRuns {
    /// The keys of the source rows whose digest is the parameter `param` (e.g. `$1`), as a
    /// subquery: one seek per live run, and the tail by key range. One statement, so it reads
    /// one snapshot of the runs and the tail.
    pub fn keys_with_digest(&self, param: &str) -> String {
        let DigestRuns {
            source,
            key,
            digest,
            runs,
            catalog,
            ..
        } = self;
        format!(
            "SELECT row_key FROM {runs} WHERE run IN (SELECT run FROM {catalog} WHERE state = 'live') \
             AND digest = {param} \
             UNION ALL \
             SELECT {key} FROM {source} \
             WHERE {key} > (SELECT COALESCE(MAX(last_row_key), 0) FROM {catalog}) AND {digest} = {param}"
        )
    }

    /// `(last key in a run, last key of the source, number for a new run)`.
    fn bounds_sql(&self) -> String {
        let DigestRuns {
            source,
            key,
            catalog,
            ..
        } = self;
        format!(
            "SELECT COALESCE(MAX(last_row_key), 0) AS indexed, \
                    (SELECT COALESCE(MAX({key}), 0) FROM {source}) AS last, \
                    COALESCE(MAX(run), 0) + 1 AS run \
             FROM {catalog}"
        )
    }

    /// The statements that write run `run` of the source rows with keys in (`after`, `upto`],
    /// sorted (so appended), and list it in the catalog.
    fn write_run(&self, run: i64, after: i64, upto: i64) -> [Statement; 2] {
        let DigestRuns {
            source,
            key,
            digest,
            runs,
            catalog,
            ..
        } = self;
        [
            Statement {
                sql: format!(
                    "INSERT INTO {runs} (run, digest, row_key) \
                     SELECT $1, {digest}, {key} FROM {source} WHERE {key} > $2 AND {key} <= $3 \
                     ORDER BY {digest}, {key}"
                ),
                binds: vec![Bind::Int(run), Bind::Int(after), Bind::Int(upto)],
            },
            // Its entries are the rows the statement before it inserted (`changes()`, on the
            // same connection).
            Statement {
                sql: format!(
                    "INSERT INTO {catalog} (run, last_row_key, entries) VALUES ($1, $2, changes())"
                ),
                binds: vec![Bind::Int(run), Bind::Int(upto)],
            },
        ]
    }

    fn catalog_sql(&self) -> String {
        let catalog = self.catalog;
        format!(
            "SELECT run, last_row_key, entries, state, merging_into, written_below \
             FROM {catalog} ORDER BY run"
        )
    }

    /// Where `step` writes a chunk, the query of the digest that ends it: for a merge that has
    /// written the digests below `from`, the [`chunk_per_run`](Self::chunk_per_run)-th digest
    /// above `from` in the merge's first run. The runs merged sample one distribution, so each
    /// adds about as many entries to the chunk. It finds none once fewer are left: the chunk
    /// then takes the rest.
    fn chunk_end(&self, step: &MergeStep) -> Option<Statement> {
        let MergeStep::Write {
            first_member, from, ..
        } = step
        else {
            return None;
        };
        let runs = self.runs;
        Some(Statement {
            sql: format!(
                "SELECT digest AS value FROM {runs} WHERE run = $1 AND digest > $2 \
                 ORDER BY digest LIMIT 1 OFFSET $3"
            ),
            binds: vec![
                Bind::Int(*first_member),
                Bind::Text(from.clone()),
                Bind::Int(self.chunk_per_run()),
            ],
        })
    }

    /// Entries each run merged adds to a chunk: a chunk of [`RUNS_PER_MERGE`] runs is about
    /// two runs written from the tail.
    fn chunk_per_run(&self) -> i64 {
        (self.run_entries / 4).max(1)
    }

    /// The statements of `step`, given the end of its chunk where it writes one (see
    /// [`chunk_end_sql`](Self::chunk_end_sql)).
    fn step_statements(&self, step: &MergeStep, chunk_end: Option<String>) -> Vec<Statement> {
        let DigestRuns { runs, catalog, .. } = self;
        match step {
            MergeStep::Begin(merge) => vec![
                Statement {
                    sql: format!(
                        "INSERT INTO {catalog} (run, last_row_key, entries, state, written_below) \
                         VALUES ($1, $2, 0, 'writing', '')"
                    ),
                    binds: vec![Bind::Int(merge.run), Bind::Int(merge.last_row_key)],
                },
                Statement {
                    sql: format!(
                        "UPDATE {catalog} SET merging_into = $1 \
                         WHERE run IN (SELECT value FROM json_each($2))"
                    ),
                    binds: vec![Bind::Int(merge.run), Bind::Text(merge.members.clone())],
                },
            ],
            MergeStep::Write {
                target,
                members,
                from,
                ..
            } => {
                let upper = if chunk_end.is_some() {
                    " AND digest < $4"
                } else {
                    ""
                };
                let mut binds = vec![
                    Bind::Int(*target),
                    Bind::Text(members.clone()),
                    Bind::Text(from.clone()),
                ];
                binds.extend(chunk_end.iter().map(|end| Bind::Text(end.clone())));
                let chunk = Statement {
                    sql: format!(
                        "INSERT INTO {runs} (run, digest, row_key) \
                         SELECT $1, digest, row_key FROM {runs} \
                         WHERE run IN (SELECT value FROM json_each($2)) AND digest >= $3{upper} \
                         ORDER BY digest, row_key"
                    ),
                    binds,
                };
                match chunk_end {
                    Some(end) => vec![
                        chunk,
                        Statement {
                            sql: format!("UPDATE {catalog} SET written_below = $1 WHERE run = $2"),
                            binds: vec![Bind::Text(end), Bind::Int(*target)],
                        },
                    ],
                    // The last chunk: the new run replaces the merged ones, in one transaction.
                    None => vec![
                        chunk,
                        Statement {
                            sql: format!(
                                "UPDATE {catalog} SET state = 'live', written_below = NULL, \
                                 entries = (SELECT COALESCE(SUM(entries), 0) FROM {catalog} \
                                            WHERE merging_into = $1) \
                                 WHERE run = $1"
                            ),
                            binds: vec![Bind::Int(*target)],
                        },
                        Statement {
                            sql: format!(
                                "UPDATE {catalog} SET state = 'retired' WHERE merging_into = $1"
                            ),
                            binds: vec![Bind::Int(*target)],
                        },
                    ],
                }
            }
            MergeStep::Drop { run } => vec![
                Statement {
                    sql: format!("DELETE FROM {runs} WHERE run = $1"),
                    binds: vec![Bind::Int(*run)],
                },
                Statement {
                    sql: format!("DELETE FROM {catalog} WHERE run = $1"),
                    binds: vec![Bind::Int(*run)],
                },
            ],
        }
    }

    /// The step the catalog `listed` (by run) calls for next: a merge under way is written
    /// on, then the runs it replaced are dropped, then the next merge begins.
    fn next_step(&self, listed: &[CatalogEntry]) -> Option<MergeStep> {
        if let Some(target) = listed.iter().find(|r| r.state == "writing") {
            let members: Vec<i64> = listed
                .iter()
                .filter(|r| r.merging_into == Some(target.run))
                .map(|r| r.run)
                .collect();
            return Some(MergeStep::Write {
                target: target.run,
                first_member: members.first().copied().unwrap_or(target.run),
                members: serde_json::to_string(&members).unwrap_or_default(),
                from: target.written_below.clone().unwrap_or_default(),
            });
        }
        if let Some(retired) = listed.iter().find(|r| r.state == "retired") {
            return Some(MergeStep::Drop { run: retired.run });
        }
        let live: Vec<Run> = listed
            .iter()
            .filter(|r| r.state == "live" && r.merging_into.is_none())
            .map(|r| Run {
                run: r.run,
                last_row_key: r.last_row_key,
                entries: r.entries,
            })
            .collect();
        let group = runs_to_merge(&live, self.run_entries)?;
        let members: Vec<i64> = group.iter().map(|r| r.run).collect();
        Some(MergeStep::Begin(Merge {
            run: listed.iter().map(|r| r.run).max().unwrap_or(0) + 1,
            members: serde_json::to_string(&members).unwrap_or_default(),
            last_row_key: group.iter().map(|r| r.last_row_key).max().unwrap_or(0),
        }))
    }

    /// Writes the tail as a new run once `run_entries` keys wait. Call it in the writer's
    /// transaction that inserted the rows (sqlx), and [`merge_step`](Self::merge_step) after
    /// it, in transactions of their own. Returns how many runs it wrote (0 or 1).
    pub async fn extend(&self, c: &mut SqliteConnection) -> Result<usize, sqlx::Error> {
        let (indexed, last, run): (i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(self.bounds_sql()))
                .fetch_one(&mut *c)
                .await?;
        if last - indexed < self.run_entries {
            return Ok(0);
        }
        for statement in self.write_run(run, indexed, last) {
            statement.execute_sqlx(c).await?;
        }
        Ok(1)
    }

    /// One step of merging runs, in the caller's transaction: a merge begun, one chunk of it
    /// written (about two runs' worth of entries), or a run it replaced dropped. Returns
    /// whether there may be more to do. A merge is written in chunks, each transaction short,
    /// so that the writer's other transactions wait for one chunk at most, never for a whole
    /// merge; its new run is listed live, and the runs it replaces retired, by the last one.
    /// A merge cut short (a crash, a shutdown) goes on from its last committed chunk.
    pub async fn merge_step(&self, c: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
        let listed: Vec<CatalogRow> = sqlx::query_as(sqlx::AssertSqlSafe(self.catalog_sql()))
            .fetch_all(&mut *c)
            .await?;
        let listed: Vec<CatalogEntry> = listed.into_iter().map(CatalogEntry::from).collect();
        let Some(step) = self.next_step(&listed) else {
            return Ok(false);
        };
        let chunk_end = match self.chunk_end(&step) {
            Some(query) => query.fetch_text_sqlx(c).await?,
            None => None,
        };
        for statement in self.step_statements(&step, chunk_end) {
            statement.execute_sqlx(c).await?;
        }
        Ok(true)
    }

    /// [`extend`](Self::extend) and every [`merge_step`](Self::merge_step) due, on a diesel
    /// connection, for a read model's projector, in its transaction: a read model's merge
    /// holds up only its own projector, never a capture.
    pub fn extend_read_model(
        &self,
        c: &mut diesel::SqliteConnection,
    ) -> diesel::QueryResult<usize> {
        use diesel::RunQueryDsl;
        let bounds: Bounds = diesel::sql_query(self.bounds_sql()).get_result(c)?;
        let mut written = 0;
        if bounds.last - bounds.indexed >= self.run_entries {
            for statement in self.write_run(bounds.run, bounds.indexed, bounds.last) {
                statement.execute_diesel(c)?;
            }
            written = 1;
        }
        loop {
            let listed: Vec<CatalogRowByName> = diesel::sql_query(self.catalog_sql()).load(c)?;
            let listed: Vec<CatalogEntry> = listed.into_iter().map(CatalogEntry::from).collect();
            let Some(step) = self.next_step(&listed) else {
                return Ok(written);
            };
            let chunk_end = match self.chunk_end(&step) {
                Some(query) => query.fetch_text_diesel(c)?,
                None => None,
            };
            for statement in self.step_statements(&step, chunk_end) {
                statement.execute_diesel(c)?;
            }
        }
    }
}

/// A statement that writes runs or the catalog, and its parameters: built once, run by sqlx
/// (the anchor) or diesel (read models).
struct Statement {
    sql: String,
    binds: Vec<Bind>,
}

enum Bind {
    Int(i64),
    Text(String),
}

impl Statement {
    fn sqlx(&self) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str()));
        for bind in &self.binds {
            query = match bind {
                Bind::Int(n) => query.bind(*n),
                Bind::Text(t) => query.bind(t.as_str()),
            };
        }
        query
    }

    fn diesel(
        &self,
    ) -> diesel::query_builder::BoxedSqlQuery<
        '_,
        diesel::sqlite::Sqlite,
        diesel::query_builder::SqlQuery,
    > {
        use diesel::sql_types::{BigInt, Text};
        let mut query = diesel::sql_query(self.sql.as_str()).into_boxed::<diesel::sqlite::Sqlite>();
        for bind in &self.binds {
            query = match bind {
                Bind::Int(n) => query.bind::<BigInt, _>(*n),
                Bind::Text(t) => query.bind::<Text, _>(t.clone()),
            };
        }
        query
    }

    async fn execute_sqlx(&self, c: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        self.sqlx().execute(c).await?;
        Ok(())
    }

    fn execute_diesel(&self, c: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
        use diesel::RunQueryDsl;
        self.diesel().execute(c)?;
        Ok(())
    }

    /// The text column `value` of the first row a query returns, if any.
    async fn fetch_text_sqlx(
        &self,
        c: &mut SqliteConnection,
    ) -> Result<Option<String>, sqlx::Error> {
        use sqlx::Row;
        let row = self.sqlx().fetch_optional(c).await?;
        row.map(|row| row.try_get("value")).transpose()
    }

    fn fetch_text_diesel(
        &self,
        c: &mut diesel::SqliteConnection,
    ) -> diesel::QueryResult<Option<String>> {
        use diesel::RunQueryDsl;
        let rows: Vec<TextValue> = self.diesel().load(c)?;
        Ok(rows.into_iter().next().map(|row| row.value))
    }
}

/// A read model's digest lookups on either backend's diesel connection: SQLite keeps sorted
/// runs, PostgreSQL its B-tree index on the digest column (nothing to extend, nothing to look
/// up beforehand).
pub trait DigestLookup {
    /// Extends `runs` with the rows the projector just wrote (in its transaction).
    fn extend_digest_runs(&mut self, runs: &DigestRuns) -> diesel::QueryResult<usize>;

    /// The `column` (text) of the source rows whose digest is `digest`, to filter by; or
    /// `None`, to filter by the digest column alone: where the backend indexes that column, and
    /// where more than `at_most` rows have the digest (binding them all would cost more than
    /// the scan, and SQLite binds at most 32,766 values in a statement).
    fn with_digest(
        &mut self,
        runs: &DigestRuns,
        column: &str,
        digest: &str,
        at_most: usize,
    ) -> diesel::QueryResult<Option<Vec<String>>>;
}

impl DigestLookup for diesel::SqliteConnection {
    fn extend_digest_runs(&mut self, runs: &DigestRuns) -> diesel::QueryResult<usize> {
        runs.extend_read_model(self)
    }

    fn with_digest(
        &mut self,
        runs: &DigestRuns,
        column: &str,
        digest: &str,
        at_most: usize,
    ) -> diesel::QueryResult<Option<Vec<String>>> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let DigestRuns { source, key, .. } = runs;
        // One more than `at_most` tells that there are too many.
        let values: Vec<Value> = diesel::sql_query(format!(
            "SELECT {column} AS value FROM {source} WHERE {key} IN ({}) LIMIT ?2",
            runs.keys_with_digest("?1")
        ))
        .bind::<diesel::sql_types::Text, _>(digest)
        .bind::<diesel::sql_types::BigInt, _>(i64::try_from(at_most).unwrap_or(i64::MAX - 1) + 1)
        .load(self)?;
        Ok((values.len() <= at_most).then(|| values.into_iter().map(|v| v.value).collect()))
    }
}

impl DigestLookup for diesel::PgConnection {
    fn extend_digest_runs(&mut self, _: &DigestRuns) -> diesel::QueryResult<usize> {
        Ok(0)
    }

    fn with_digest(
        &mut self,
        _: &DigestRuns,
        _: &str,
        _: &str,
        _: usize,
    ) -> diesel::QueryResult<Option<Vec<String>>> {
        Ok(None)
    }
}

/// A merge to begin: runs `members` (a JSON array) into the new run `run`.
struct Merge {
    run: i64,
    members: String,
    last_row_key: i64,
}

/// One step of [`DigestRuns::merge_step`].
enum MergeStep {
    /// List the merge's new run as being written, and its runs as merging into it.
    Begin(Merge),
    /// Write the next chunk of `target`: the entries of `members` (a JSON array, in order,
    /// whose first is `first_member`) from digest `from` on.
    Write {
        target: i64,
        members: String,
        first_member: i64,
        from: String,
    },
    /// Drop a run a merge replaced: its entries and its catalog row.
    Drop { run: i64 },
}

/// A catalog row. `state` is `live` (looked up), `writing` (a merge's new run, complete for
/// the digests below `written_below`) or `retired` (replaced by a merge, to be dropped); a
/// live run being merged names its new run in `merging_into`.
struct CatalogEntry {
    run: i64,
    last_row_key: i64,
    entries: i64,
    state: String,
    merging_into: Option<i64>,
    written_below: Option<String>,
}

/// A catalog row as sqlx reads it.
type CatalogRow = (i64, i64, i64, String, Option<i64>, Option<String>);

impl From<CatalogRow> for CatalogEntry {
    fn from((run, last_row_key, entries, state, merging_into, written_below): CatalogRow) -> Self {
        CatalogEntry {
            run,
            last_row_key,
            entries,
            state,
            merging_into,
            written_below,
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Bounds {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    indexed: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    run: i64,
}

/// A catalog row as diesel reads it.
#[derive(diesel::QueryableByName)]
struct CatalogRowByName {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    run: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_row_key: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    entries: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    merging_into: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    written_below: Option<String>,
}

impl From<CatalogRowByName> for CatalogEntry {
    fn from(r: CatalogRowByName) -> Self {
        CatalogEntry::from((
            r.run,
            r.last_row_key,
            r.entries,
            r.state,
            r.merging_into,
            r.written_below,
        ))
    }
}

#[derive(diesel::QueryableByName)]
struct TextValue {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// The oldest [`RUNS_PER_MERGE`] runs of the smallest size class merged
/// ([`MERGED_CLASSES`]) that has that many.
fn runs_to_merge(listed: &[Run], run_entries: i64) -> Option<Vec<Run>> {
    let mut classes: Vec<u32> = listed
        .iter()
        .map(|r| r.size_class(run_entries))
        .filter(|class| *class < MERGED_CLASSES)
        .collect();
    classes.sort_unstable();
    classes.dedup();
    classes.into_iter().find_map(|class| {
        let group: Vec<Run> = listed
            .iter()
            .filter(|r| r.size_class(run_entries) == class)
            .take(RUNS_PER_MERGE)
            .copied()
            .collect();
        (group.len() == RUNS_PER_MERGE).then_some(group)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(run: i64, entries: i64) -> Run {
        Run {
            run,
            last_row_key: run * 10_000,
            entries,
        }
    }

    #[test]
    fn size_classes_grow_by_the_merge_factor() {
        let class = |entries| run(1, entries).size_class(RUN_ENTRIES);
        assert_eq!(class(RUN_ENTRIES), 0);
        assert_eq!(class(RUN_ENTRIES * 8 - 1), 0);
        assert_eq!(class(RUN_ENTRIES * 8), 1);
        assert_eq!(class(RUN_ENTRIES * 64), 2);
        assert_eq!(class(i64::MAX), 16);
    }

    #[test]
    fn the_smallest_full_class_is_merged_oldest_first() {
        let mut listed: Vec<Run> = (1..=7).map(|n| run(n, RUN_ENTRIES)).collect();
        assert_eq!(
            runs_to_merge(&listed, RUN_ENTRIES),
            None,
            "seven runs of a class wait"
        );
        listed.insert(0, run(0, RUN_ENTRIES * 8));
        listed.push(run(8, RUN_ENTRIES + 3));
        listed.push(run(9, RUN_ENTRIES));
        let group = runs_to_merge(&listed, RUN_ENTRIES).expect("eight of class 0");
        let largest: Vec<Run> = (1..=9).map(|n| run(n, RUN_ENTRIES * 64)).collect();
        assert_eq!(
            runs_to_merge(&largest, RUN_ENTRIES),
            None,
            "runs of the class above the last merged one stay"
        );
        let merged: Vec<Run> = (1..=9).map(|n| run(n, RUN_ENTRIES * 8)).collect();
        assert_eq!(
            runs_to_merge(&merged, RUN_ENTRIES),
            None,
            "runs merged once stay as they are"
        );
        assert_eq!(
            group.iter().map(|r| r.run).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
    }

    const SMALL: DigestRuns = DigestRuns {
        source: "files",
        key: "seq",
        digest: "digest",
        runs: "file_digest_runs",
        catalog: "file_digest_run_catalog",
        run_entries: 4,
    };

    async fn source() -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        sqlx::raw_sql(
            "CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL);
             CREATE TABLE file_digest_runs (run INTEGER NOT NULL, digest TEXT NOT NULL,
                 row_key INTEGER NOT NULL, PRIMARY KEY (run, digest, row_key)) WITHOUT ROWID;
             CREATE TABLE file_digest_run_catalog (run INTEGER PRIMARY KEY,
                 last_row_key INTEGER NOT NULL, entries INTEGER NOT NULL,
                 state TEXT NOT NULL DEFAULT 'live', merging_into INTEGER, written_below TEXT);",
        )
        .execute(&mut c)
        .await
        .expect("tables");
        c
    }

    async fn insert_file(c: &mut sqlx::SqliteConnection, digest: &str) {
        sqlx::query("INSERT INTO files (digest) VALUES ($1)")
            .bind(digest)
            .execute(c)
            .await
            .expect("insert");
    }

    fn digest_of(n: u64) -> String {
        chain_core::HashAlg::Sha3_256
            .hash(&n.to_be_bytes())
            .to_hex()
    }

    async fn keys_of(c: &mut sqlx::SqliteConnection, digest: &str) -> Vec<i64> {
        let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{} ORDER BY 1",
            SMALL.keys_with_digest("$1")
        )))
        .bind(digest)
        .fetch_all(&mut *c)
        .await
        .expect("lookup");
        rows.into_iter().map(|(k,)| k).collect()
    }

    #[tokio::test]
    async fn every_row_is_found_once_whether_in_a_run_merged_or_in_the_tail() {
        let mut c = source().await;
        let mut written = 0;
        // 301 rows in appends of 3: runs of 4+ keys, merged in classes of 8, and a tail.
        for batch in 0..101u64 {
            for n in batch * 3..(batch * 3 + 3).min(301) {
                insert_file(&mut c, &digest_of(n % 300)).await;
            }
            written += SMALL.extend(&mut c).await.expect("extend");
            while SMALL.merge_step(&mut c).await.expect("merge") {}
        }
        let (runs, indexed, entries): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), MAX(last_row_key), SUM(entries) FROM file_digest_run_catalog",
        )
        .fetch_one(&mut c)
        .await
        .expect("catalog");
        let (in_runs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM file_digest_runs")
            .fetch_one(&mut c)
            .await
            .expect("runs");
        assert!(written > 8, "runs were written and merged: {written}");
        assert!(runs < 16, "merging keeps the runs few: {runs}");
        assert_eq!(in_runs, entries, "the catalog counts each run's entries");
        assert_eq!(
            in_runs, indexed,
            "every key up to the last run's is in one run"
        );
        assert!(
            301 - indexed < 4 + 3,
            "the tail is shorter than a run and an append"
        );
        assert!(301 > indexed, "and this run leaves one");
        for n in 1..300u64 {
            assert_eq!(keys_of(&mut c, &digest_of(n)).await, vec![n as i64 + 1]);
        }
        // Row 301 repeats the digest of row 1: a lookup finds both, one in a run, one not.
        assert_eq!(keys_of(&mut c, &digest_of(0)).await, vec![1, 301]);
        assert!(keys_of(&mut c, &digest_of(300)).await.is_empty());
    }

    /// `(live runs, entries listed for them, entries in them, distinct keys in them, the
    /// last key indexed, runs being written or retired)`.
    async fn catalog_state(c: &mut sqlx::SqliteConnection) -> (i64, i64, i64, i64, i64, i64) {
        sqlx::query_as(
            "WITH live AS (SELECT run FROM file_digest_run_catalog WHERE state = 'live')
             SELECT (SELECT COUNT(*) FROM live),
                    (SELECT COALESCE(SUM(entries), 0) FROM file_digest_run_catalog
                     WHERE state = 'live'),
                    (SELECT COUNT(*) FROM file_digest_runs WHERE run IN live),
                    (SELECT COUNT(DISTINCT row_key) FROM file_digest_runs WHERE run IN live),
                    (SELECT COALESCE(MAX(last_row_key), 0) FROM file_digest_run_catalog),
                    (SELECT COUNT(*) FROM file_digest_run_catalog WHERE state <> 'live')",
        )
        .fetch_one(&mut *c)
        .await
        .expect("catalog")
    }

    /// Merges are written a chunk per step. After every step, committed or rolled back, each
    /// row is found once by its digest, and every key indexed is in exactly one live run.
    #[tokio::test]
    async fn a_merge_written_in_chunks_answers_every_lookup_after_every_step() {
        use sqlx::Connection;
        let mut c = source().await;
        let (mut steps, mut rolled_back, mut seen_part_written) = (0, 0, false);
        // 700 rows in appends of 5: runs of 5, merged eight at a time in chunks of about 8.
        for append in 0..140u64 {
            for n in append * 5..append * 5 + 5 {
                insert_file(&mut c, &digest_of(n)).await;
            }
            SMALL.extend(&mut c).await.expect("extend");
            loop {
                // Every fifth step is cut short: rolled back, as a crash would leave it.
                if steps % 5 == 4 {
                    let mut tx = c.begin().await.expect("begin");
                    SMALL.merge_step(&mut tx).await.expect("merge");
                    drop(tx);
                    rolled_back += 1;
                }
                let more = SMALL.merge_step(&mut c).await.expect("merge");
                steps += 1;
                let (live, listed, entries, keys, indexed, other) = catalog_state(&mut c).await;
                assert_eq!(listed, entries, "step {steps}: live runs counted");
                assert_eq!(entries, keys, "step {steps}: no key in two live runs");
                assert_eq!(
                    entries, indexed,
                    "step {steps}: every key indexed is in a run"
                );
                assert!(live > 0);
                let (writing,): (Option<String>,) = sqlx::query_as(
                    "SELECT MAX(written_below) FROM file_digest_run_catalog WHERE state = 'writing'",
                )
                .fetch_one(&mut c)
                .await
                .expect("writing");
                seen_part_written |= writing.is_some_and(|below| !below.is_empty());
                let last = append * 5 + 5;
                for n in [0, last / 3, last / 2, last.saturating_sub(6), last - 1] {
                    assert_eq!(
                        keys_of(&mut c, &digest_of(n)).await,
                        vec![n as i64 + 1],
                        "step {steps}: row {}",
                        n + 1
                    );
                }
                if !more {
                    assert_eq!(other, 0, "nothing left being written or retired");
                    break;
                }
            }
        }
        assert!(seen_part_written, "a merge was seen part written");
        assert!(rolled_back > 10, "{rolled_back}");
        let (live, _, entries, _, indexed, _) = catalog_state(&mut c).await;
        assert!(live <= 700 / 32 + 7, "merging keeps the runs few: {live}");
        assert!(700 - indexed < 4 + 5, "{indexed}");
        let (stale,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM file_digest_runs")
            .fetch_one(&mut c)
            .await
            .expect("runs");
        assert_eq!(stale, entries, "the runs merged away are dropped");
        for n in 0..700u64 {
            assert_eq!(keys_of(&mut c, &digest_of(n)).await, vec![n as i64 + 1]);
        }
    }

    #[tokio::test]
    async fn a_lookup_seeks_each_run_and_reads_only_the_tail_of_the_source() {
        let mut c = source().await;
        for n in 0..40u64 {
            insert_file(&mut c, &digest_of(n)).await;
            SMALL.extend(&mut c).await.expect("extend");
        }
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            SMALL.keys_with_digest("$1")
        )))
        .bind(digest_of(1))
        .fetch_all(&mut c)
        .await
        .expect("plan");
        let plan: Vec<&str> = plan.iter().map(|(_, _, _, d)| d.as_str()).collect();
        assert!(
            plan.iter()
                .any(|d| d
                    .starts_with("SEARCH file_digest_runs USING PRIMARY KEY (run=? AND digest=?)")),
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH files USING INTEGER PRIMARY KEY (rowid>?)")),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.starts_with("SCAN files") || d.starts_with("SCAN file_digest_runs")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_read_model_finds_every_row_of_a_digest_unless_there_are_too_many() {
        use diesel::{Connection, RunQueryDsl};
        let mut c = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        diesel::sql_query(
            "CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL)",
        )
        .execute(&mut c)
        .expect("source");
        diesel::sql_query(
            "CREATE TABLE file_digest_runs (run INTEGER NOT NULL, digest TEXT NOT NULL, \
             row_key INTEGER NOT NULL, PRIMARY KEY (run, digest, row_key)) WITHOUT ROWID",
        )
        .execute(&mut c)
        .expect("runs");
        diesel::sql_query(
            "CREATE TABLE file_digest_run_catalog (run INTEGER PRIMARY KEY, \
             last_row_key INTEGER NOT NULL, entries INTEGER NOT NULL, \
             state TEXT NOT NULL DEFAULT 'live', merging_into INTEGER, written_below TEXT)",
        )
        .execute(&mut c)
        .expect("catalog");
        let shared = digest_of(0);
        let insert = |digest: &str, c: &mut diesel::SqliteConnection| {
            diesel::sql_query("INSERT INTO files (digest) VALUES (?)")
                .bind::<diesel::sql_types::Text, _>(digest)
                .execute(c)
                .expect("row");
        };
        // Rows 1, 5, 9 and 12 share a digest; a run takes all twelve; 13 and 14 stay the tail.
        for n in 1..=12u64 {
            let digest = if [1, 5, 9, 12].contains(&n) {
                shared.clone()
            } else {
                digest_of(n)
            };
            insert(&digest, &mut c);
        }
        assert_eq!(SMALL.extend_read_model(&mut c).expect("extend"), 1);
        #[derive(diesel::QueryableByName)]
        struct Counts {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            listed: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            written: i64,
        }
        let counts: Counts = diesel::sql_query(
            "SELECT (SELECT SUM(entries) FROM file_digest_run_catalog) AS listed, \
                    (SELECT COUNT(*) FROM file_digest_runs) AS written",
        )
        .get_result(&mut c)
        .expect("counts");
        assert_eq!(
            (counts.listed, counts.written),
            (12, 12),
            "the catalog counts the run"
        );
        insert(&shared, &mut c);
        insert(&shared, &mut c);
        assert_eq!(SMALL.extend_read_model(&mut c).expect("extend"), 0);
        let found = |c: &mut diesel::SqliteConnection, at_most| {
            c.with_digest(&SMALL, "CAST(seq AS TEXT)", &shared, at_most)
                .expect("lookup")
                .map(|mut keys| {
                    keys.sort_by_key(|k| k.parse::<i64>().unwrap_or_default());
                    keys
                })
        };
        let all: Vec<String> = [1, 5, 9, 12, 13, 14].map(|n: i32| n.to_string()).to_vec();
        assert_eq!(found(&mut c, 6), Some(all.clone()));
        assert_eq!(found(&mut c, 100), Some(all));
        assert_eq!(
            found(&mut c, 5),
            None,
            "too many to bind: filter by the column"
        );
        assert_eq!(
            c.with_digest(&SMALL, "CAST(seq AS TEXT)", &digest_of(99), 5)
                .expect("lookup"),
            Some(Vec::new())
        );
    }
}
