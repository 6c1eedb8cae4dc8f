//! Every schema change exists for both backends, under the same number and name.

use std::collections::BTreeSet;
use std::path::Path;

fn files(backend: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    let mut out = BTreeSet::new();
    for component in std::fs::read_dir(&root).expect("migrations directory") {
        let component = component.expect("entry").path();
        for file in std::fs::read_dir(&component).expect("component directory") {
            let file = file.expect("entry").path();
            out.insert(format!(
                "{}/{}",
                component
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default(),
                file.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            ));
        }
    }
    out
}

#[test]
fn sqlite_and_postgres_migrations_pair_up() {
    let sqlite = files("sqlite");
    let postgres = files("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite.symmetric_difference(&postgres).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "a migration exists for one backend only"
    );
}
