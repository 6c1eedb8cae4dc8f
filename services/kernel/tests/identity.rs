//! Organisations, roles and API keys on SQLite and on PostgreSQL.

use std::time::Duration;
use veritrace_kernel::ApiError;
use veritrace_kernel::auth::{Identity, OrganisationRole, Role};
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
        assert_eq!((admin.role, admin.organisation_role), (Role::Admin, OrganisationRole::Admin));

        let (bank, bank_key) = identity
            .create_organisation("Bank", OrganisationRole::Member)
            .await
            .expect("create");
        let caller = identity.authenticate(&bank_key).await.expect("member key");
        assert_eq!(caller.organisation_id, bank.organisation_id);
        assert_eq!(caller.role, Role::Writer, "a member's first key writes");
        assert!(matches!(
            identity.create_organisation("Bank", OrganisationRole::Court).await,
            Err(ApiError::InvalidState(_))
        ));
        assert!(matches!(
            identity.authenticate("vt_not-a-key").await,
            Err(ApiError::Unauthorized(_))
        ));
        let (court, court_key) = identity
            .create_organisation("Court", OrganisationRole::Court)
            .await
            .expect("create");
        assert_eq!(identity.authenticate(&court_key).await.expect("court key").role, Role::Court);

        // A key revoked in the store: a process that checked it a moment ago trusts it until its
        // cache entry expires (KEY_CACHE_TTL); one whose entry has expired refuses it at once.
        let fresh = Identity::new(&database).with_key_cache_ttl(Duration::ZERO);
        let before = fresh.authenticate(&court_key).await.expect("before revocation");
        let other = Identity::new(&database);
        assert_eq!(other.authenticate(&court_key).await.expect("cached here"), before);
        let revoked = identity
            .revoke_key(&court.organisation_id, &before.key_id)
            .await
            .expect("revoke")
            .expect("the court's key");
        assert!(revoked.revoked_at.is_some());
        // The revoking process stops at once; another within its cache's lifetime.
        assert!(matches!(identity.authenticate(&court_key).await, Err(ApiError::Unauthorized(_))));
        assert!(matches!(fresh.authenticate(&court_key).await, Err(ApiError::Unauthorized(_))));
        assert_eq!(other.authenticate(&court_key).await.expect("still cached"), before);
        // Revoking again changes nothing; another organisation's key id is not found.
        let again = identity.revoke_key(&court.organisation_id, &before.key_id).await.expect("again");
        assert_eq!(again.expect("still listed").revoked_at, revoked.revoked_at);
        assert!(identity.revoke_key(&bank.organisation_id, &before.key_id).await.expect("asked").is_none());
    }

    async fn keys_are_minted_in_the_roles_their_organisation_holds(db: TestDb) {
        let database = db.open("identity").await;
        migrate::run(&database, "identity", migrate::IDENTITY).await.expect("migrate");
        let identity = Identity::new(&database);
        let admin_key = identity.bootstrap_admin().await.expect("bootstrap").expect("first start");
        let admin = identity.authenticate(&admin_key).await.expect("admin");
        let (bank, _) = identity.create_organisation("Bank", OrganisationRole::Member).await.unwrap();
        let (reader, reader_key) = identity.mint_key(&bank, Role::Reader).await.expect("a reader key");
        assert_eq!(identity.authenticate(&reader_key).await.unwrap().role, Role::Reader);
        for wrong in [Role::Admin, Role::Auditor, Role::Court] {
            assert!(
                matches!(identity.mint_key(&bank, wrong).await, Err(ApiError::InvalidState(_))),
                "{wrong:?}"
            );
        }
        let keys = identity.keys(&bank.organisation_id).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1], reader);

        // The admin's last working key cannot be revoked: nobody could manage the platform.
        let refused = identity.revoke_key(&admin.organisation_id, &admin.key_id).await;
        assert!(matches!(refused, Err(ApiError::InvalidState(_))), "{refused:?}");
        let (_, second) = identity.mint_admin_key().await.expect("another admin key");
        identity
            .revoke_key(&admin.organisation_id, &admin.key_id)
            .await
            .expect("with another key left")
            .expect("listed");
        assert_eq!(identity.authenticate(&second).await.unwrap().role, Role::Admin);
    }

    async fn keys_from_before_roles_keep_what_they_could_do(db: TestDb) {
        // The stores as the first identity migration left them, with an admin and a member.
        let database = db.open("identity").await;
        migrate::run(&database, "identity", &migrate::IDENTITY[..1]).await.expect("migrate 1");
        veritrace_kernel::on_pool!(&database, writer, |pool| {
            sqlx::raw_sql(
                "INSERT INTO organisations VALUES ('o-admin', 'admin', 'admin', '2026-01-01T00:00:00Z');
                 INSERT INTO organisations VALUES ('o-bank', 'Bank', 'member', '2026-01-01T00:00:00Z');
                 INSERT INTO api_keys VALUES ('c7b1b9b6c55a3f0e49e3a1d0e8f8d7c4f1e2d3c4b5a69788a9b0c1d2e3f40516', 'o-admin', '2026-01-01T00:00:00Z', NULL);
                 INSERT INTO api_keys VALUES ('aa00000000000000000000000000000000000000000000000000000000000000', 'o-bank', '2026-01-01T00:00:00Z', NULL);
                 INSERT INTO api_keys VALUES ('bb00000000000000000000000000000000000000000000000000000000000000', 'o-bank', '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z');",
            )
            .execute(pool)
            .await
            .map(|_| ())
        })
        .expect("old rows");
        migrate::run(&database, "identity", migrate::IDENTITY).await.expect("migrate 2");
        let identity = Identity::new(&database);
        let admin_keys = identity.keys("o-admin").await.unwrap();
        assert_eq!(admin_keys.len(), 1);
        assert_eq!(admin_keys[0].role, Role::Admin);
        let bank_keys = identity.keys("o-bank").await.unwrap();
        assert_eq!(bank_keys.len(), 2);
        assert!(bank_keys.iter().all(|k| k.role == Role::Writer));
        assert_eq!(bank_keys.iter().filter(|k| k.revoked_at.is_some()).count(), 1);
        let bank = identity.organisation("o-bank").await.unwrap().expect("kept");
        assert_eq!(bank.role, OrganisationRole::Member);
        // New organisations of the new roles, and their keys, fit the migrated tables.
        identity.create_organisation("Regulator", OrganisationRole::Auditor).await.expect("auditor");
        identity.mint_key(&bank, Role::Reader).await.expect("a reader key for an old member");
    }
}
