//! `veritrace bench provenance`: EPCIS capture documents (1,000 events each by default)
//! captured and anchored on the embedded platform, and in the same run the evidence bench
//! with the same load, so that the two domains' rates are read side by side.

use super::{BenchOptions, BenchReport};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Debug, Clone)]
pub struct ProvenanceBenchOptions {
    /// EPCIS events to capture (and as many evidence registrations after them).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Events per capture document (and per evidence batch), 1 to 1000.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Also print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The two runs, provenance first.
#[derive(Debug, serde::Serialize)]
pub struct ProvenanceBenchReport {
    pub provenance: BenchReport,
    pub evidence: BenchReport,
}

impl std::fmt::Display for ProvenanceBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.provenance, self.evidence)?;
        writeln!(
            f,
            "provenance end to end {:.0} events/s, {:.2}x the evidence bench's {:.0} in the same run",
            self.provenance.end_to_end_rate(),
            self.provenance.end_to_end_rate() / self.evidence.end_to_end_rate(),
            self.evidence.end_to_end_rate()
        )
    }
}

/// Runs the provenance bench, then the evidence bench with the same load, each on a fresh
/// embedded platform.
pub async fn run(opts: &ProvenanceBenchOptions) -> Result<ProvenanceBenchReport, BoxError> {
    let options = |name: &str| -> Result<BenchOptions, BoxError> {
        Ok(BenchOptions {
            domain: crate::domains::find(name)
                .ok_or_else(|| format!("no domain {name} is registered"))?,
            events: opts.events,
            concurrency: opts.concurrency,
            batch: opts.batch,
            rate: None,
        })
    };
    let provenance = super::run(options("provenance")?).await?;
    let evidence = super::run(options("evidence")?).await?;
    Ok(ProvenanceBenchReport {
        provenance,
        evidence,
    })
}
