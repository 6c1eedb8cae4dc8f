//! The registry of domains: the one place the binary names them. `up` and `serve` start them,
//! `audit` reads their stores, the OpenAPI document merges their paths, readiness watches
//! them, and tests hold the deployment files (`deploy/postgres/init.sql`, `compose.yaml`)
//! against this list.

use veritrace_kernel::domain::Domain;

/// Every domain the platform runs.
pub const DOMAINS: &[&dyn Domain] = &[
    veritrace_evidence::DOMAIN,
    veritrace_cases::DOMAIN,
    veritrace_provenance::DOMAIN,
];

/// The registered domain called `name`.
pub fn find(name: &str) -> Option<&'static dyn Domain> {
    DOMAINS.iter().copied().find(|d| d.name() == name)
}

/// The domain `veritrace bench` loads: the first that offers a load.
pub fn benchmarked() -> Result<&'static dyn Domain, String> {
    DOMAINS
        .iter()
        .copied()
        .find(|d| d.bench_request("probe", 1).is_some())
        .ok_or_else(|| "no registered domain offers a benchmark load".into())
}

/// Names that a domain cannot take: the other services and the shared schemas.
pub const RESERVED_NAMES: &[&str] = &["identity", "anchor", "audit", "public"];

#[cfg(test)]
mod tests {
    use super::*;
    use veritrace_kernel::domain::is_domain_name;

    #[test]
    fn every_domain_has_a_usable_name_of_its_own() {
        let mut seen = std::collections::BTreeSet::new();
        for d in DOMAINS {
            assert!(is_domain_name(d.name()), "{:?}", d.name());
            assert!(!RESERVED_NAMES.contains(&d.name()), "{:?}", d.name());
            assert!(seen.insert(d.name()), "{:?} registered twice", d.name());
            assert!(find(d.name()).is_some());
        }
    }
}
