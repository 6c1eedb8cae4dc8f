//! Organisations and API keys on SQLite and on PostgreSQL.

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
    }
}
