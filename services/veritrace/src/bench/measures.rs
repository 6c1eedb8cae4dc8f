//! Figures the bench derives from what it observed: latency percentiles, the rate over each
//! stretch of a long run, and what the process itself used (peak memory, bytes written).

use std::time::Duration;

pub use crate::bench_chain::percentile;

/// p50, p99 and max of `values` (milliseconds), or `None` for none.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.sort_by(|a, b| a.total_cmp(b));
        Some(Spread {
            p50: percentile(&values, 0.50)?,
            p99: percentile(&values, 0.99)?,
            max: *values.last()?,
        })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50, self.p99, self.max
        )
    }
}

/// The stretch a run's rate is reported per: 100,000 events from 500,000 up (the soak), else a
/// tenth of the run (at least one event).
pub fn stretch(events: usize) -> usize {
    if events >= 500_000 {
        100_000
    } else {
        events.div_ceil(10).max(1)
    }
}

/// Events per second over each successive `stretch` of events, given when each group of
/// events was done (since the start, ascending) and its size. A stretch's rate is taken
/// between the group that closes it and the one that closed the stretch before: the events
/// done in between over the time in between. That is not exactly `stretch` events when groups
/// are large (a one-second block anchors thousands): counting `stretch` over that time would
/// read a stretch that a block boundary shortened as a burst, and the next as a stall.
/// Stretches that one group closes together share its rate; a last, partial stretch is left
/// out.
pub fn rate_per_stretch(done: &[(Duration, usize)], stretch: usize) -> Vec<f64> {
    let stretch = stretch.max(1);
    let mut rates = Vec::new();
    let (mut count, mut closed) = (0usize, 0usize);
    let (mut since, mut count_since) = (Duration::ZERO, 0usize);
    for &(at, n) in done {
        count += n;
        let now_closed = count / stretch;
        if now_closed > closed {
            let k = now_closed - closed;
            let secs = (at - since).as_secs_f64().max(1e-9);
            rates.extend(std::iter::repeat_n((count - count_since) as f64 / secs, k));
            closed = now_closed;
            since = at;
            count_since = count;
        }
    }
    rates
}

/// The largest departure of any of `rates` from their mean, as a fraction of the mean.
pub fn largest_departure(rates: &[f64]) -> Option<f64> {
    if rates.is_empty() {
        return None;
    }
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    rates
        .iter()
        .map(|r| (r - mean).abs() / mean)
        .max_by(|a, b| a.total_cmp(b))
}

/// What this process used so far, from Linux's `/proc/self` (zeros elsewhere).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessUse {
    /// Peak resident memory (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Bytes this process caused to be written to storage (`write_bytes`).
    pub written: u64,
}

impl ProcessUse {
    pub fn now() -> ProcessUse {
        let field = |file: &str, name: &str| -> u64 {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok())
                })
                .unwrap_or(0)
        };
        ProcessUse {
            peak_rss: field("/proc/self/status", "VmHWM:") * 1024,
            written: field("/proc/self/io", "write_bytes:"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn spread_is_nearest_rank_with_the_max() {
        let s = Spread::of((1..=100).rev().map(f64::from).collect()).expect("values");
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert_eq!(Spread::of(Vec::new()), None);
    }

    #[test]
    fn rates_are_per_stretch_and_drop_the_partial_tail() {
        // 10 events a second for 2 s, then 5 a second, 10 per stretch, 5 left over.
        let mut done = Vec::new();
        for i in 1..=20 {
            done.push((secs(i as f64 * 0.1), 1));
        }
        for i in 1..=15 {
            done.push((secs(2.0 + i as f64 * 0.2), 1));
        }
        let rates = rate_per_stretch(&done, 10);
        assert_eq!(rates.len(), 3);
        assert!((rates[0] - 10.0).abs() < 1e-6 && (rates[1] - 10.0).abs() < 1e-6);
        assert!((rates[2] - 5.0).abs() < 1e-6, "{rates:?}");
        // A group closing two stretches gives both the rate over its span.
        let rates = rate_per_stretch(&[(secs(1.0), 10), (secs(3.0), 20)], 10);
        assert_eq!(rates, vec![10.0, 10.0, 10.0]);
    }

    #[test]
    fn a_steady_rate_in_large_groups_reads_steady() {
        // 10 events a second, done in one group a second, 15 per stretch: the stretches close
        // after 2, 1 and 2 groups. Counting 15 per stretch would read 7.5, 15 and 7.5.
        let done: Vec<(Duration, usize)> = (1..=5).map(|s| (secs(s as f64), 10)).collect();
        assert_eq!(rate_per_stretch(&done, 15), vec![10.0, 10.0, 10.0]);
    }

    #[test]
    fn departure_is_relative_to_the_mean() {
        assert_eq!(largest_departure(&[]), None);
        let d = largest_departure(&[90.0, 100.0, 110.0]).expect("rates");
        assert!((d - 0.1).abs() < 1e-9);
    }

    #[test]
    fn stretches_are_a_tenth_or_100k() {
        assert_eq!(stretch(20_000), 2_000);
        assert_eq!(stretch(1_000_000), 100_000);
        assert_eq!(stretch(3), 1);
    }

    #[test]
    fn this_process_has_a_peak_rss_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(ProcessUse::now().peak_rss > 0);
        }
    }
}
