//! Organisations and API keys on SQLite and on PostgreSQL.

use std::time::Duration;
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::{Identity, Role};
use veritrace_kernel::backend_tests;
use veritrace_kernel::migrate;

backend_tests! {
    async fn keys_authenticate_their_organisation_and_names_are_unique(db: TestDb) {
        let database = db.open("identity").await;
        migrate::run(&database, "identity", migrate::IDENTITY).await.expect("migrate");
        // Applying the same migrations again is a no-op.
        migrate::run(&database, "identity", migrate::IDENTITY).await.expect("migrate twice");
        let identity = Identity::new(&database);
        let admin_key = identity.bootstrap_admin().await.expect("bootstrap").expect("first start");
        assert!(identity.bootstrap_admin().await.expect("bootstrap").is_none(), "only once");
        let admin = identity.authenticate(&admin_key).await.expect("admin key");
        assert_eq!(admin.role, Role::Admin);

        let (court, court_key) = identity.create_organisation("Court", Role::Member).await.expect("create");
        assert_eq!(identity.authenticate(&court_key).await.expect("member key"), court);
        assert!(matches!(
            identity.create_organisation("Court", Role::Member).await,
            Err(ApiError::InvalidState(_))
        ));
        assert!(matches!(
            identity.authenticate("vt_not-a-key").await,
            Err(ApiError::Unauthorized(_))
        ));

        // A key revoked in the store: a process that checked it a moment ago trusts it until its
        // cache entry expires (KEY_CACHE_TTL); one whose entry has expired refuses it at once.
        let fresh = Identity::new(&database).with_key_cache_ttl(Duration::ZERO);
        assert_eq!(fresh.authenticate(&court_key).await.expect("before revocation"), court);
        let revoked = veritrace_kernel::on_pool!(&database, writer, |pool| {
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE organisation_id = $2")
                .bind("2026-11-26T00:00:00Z")
                .bind(&court.organisation_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .expect("revoke");
        assert_eq!(revoked, 1);
        assert_eq!(identity.authenticate(&court_key).await.expect("still cached"), court);
        assert!(matches!(
            fresh.authenticate(&court_key).await,
            Err(ApiError::Unauthorized(_))
        ));
    }
}
