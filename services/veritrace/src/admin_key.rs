//! `veritrace admin-key`: mints a new admin API key straight in the identity store, for the
//! operator of the host (whoever can read the data directory or the database) who lost the
//! key the first start showed.

use veritrace_kernel::auth::Identity;
use veritrace_kernel::config::Config;
use veritrace_kernel::db::Database;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Mints the key in the store `config` names: `database.url`'s identity schema (distributed
/// mode) or `data_dir/identity.db` (embedded). Never creates a store: a data directory or
/// schema that does not exist yet is an error, since the first start makes its own key.
pub async fn mint(config: &Config) -> Result<String, BoxError> {
    let (db, place) = match &config.database.url {
        Some(url) => (
            Database::postgres(&config.database, "identity", "admin-key")?,
            format!(
                "the identity schema of {}",
                veritrace_kernel::db::redact(url)
            ),
        ),
        None => {
            let path = config.data_dir.join("identity.db");
            if !path.is_file() {
                return Err(format!(
                    "no identity store at {}: is {} the data directory of a platform that has \
                     started once? (--data-dir names another one)",
                    path.display(),
                    config.data_dir.display()
                )
                .into());
            }
            let db = Database::open(&path).await?;
            (db, path.display().to_string())
        }
    };
    let organisations: Result<i64, sqlx::Error> = veritrace_kernel::on_pool!(&db, reader, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM organisations")
            .fetch_one(pool)
            .await
    });
    if let Err(e) = organisations {
        return Err(format!(
            "cannot read organisations in {place}: {e} (has the identity service started once?)"
        )
        .into());
    }
    let (admin, key) = Identity::new(&db)
        .mint_admin_key()
        .await
        .map_err(|e| format!("cannot mint a key in {place}: {e}"))?;
    Ok(format!(
        "new API key for {} ({}, admin), in {place}:\n  {key}\n(shown once: store it now; earlier keys stay valid)\n",
        admin.name, admin.organisation_id
    ))
}
