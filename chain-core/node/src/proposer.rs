//! Who proposes each round: Tendermint's proposer priorities, read as a ranking per height.
//!
//! Each height, CometBFT adds every validator's power to its priority, picks the highest
//! priority (ties: the lower index) and takes the total power off the one it picked. The pick
//! had the highest of priorities summing to `total`, so it keeps more than `-total`: no
//! validator ever runs a whole turn ahead of its share. After `total` heights each priority is
//! then a multiple of `total` above `-total` and they sum to zero, so all are zero again: over
//! any `total` consecutive heights each validator is picked exactly `power` times.
//!
//! Malachite asks for a proposer per round as well, and giving round `r` to the `r`-th step
//! after the height's own would repeat a heavy validator for several rounds in a row (as the
//! weighted round robin this replaces did: one validator of power P could hold P rounds of one
//! height). So a height *ranks* its validators by the priority they compete with at that
//! height, and round `r` goes to `ranking[r mod n]`: round 0 is CometBFT's proposer, each later
//! round goes to another validator, and a dead validator costs at most one round per height.
//!
//! Priorities start at zero at a set's first height, so the schedule depends only on the set
//! and on the heights since it took effect: nothing to persist, nothing carried across sets.
//! From zero they always sum to zero, so CometBFT's centring never changes them. Its rescaling
//! (when the spread exceeds twice the total) is left out: the bound above already keeps every
//! priority within `(n - 1) * total`, and rescaling would break the period that lets a height
//! be reached in fewer than `total` steps. Only a large, skewed set can reach that spread;
//! there our order can differ from what CometBFT's would be.

/// Largest total power the priorities run on. Each height's ranking costs up to this many
/// steps of `n` validators, so totals above it are scaled down (see [`Priorities::new`]).
pub const MAX_SCHEDULED_TOTAL: u64 = 1 << 16;

/// Proposer priorities of one validator set at the start of one height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priorities {
    /// The powers the schedule runs on, in the set's order.
    powers: Vec<i64>,
    total: i64,
    priorities: Vec<i64>,
}

impl Priorities {
    /// The set's first height: every priority is zero.
    ///
    /// Powers are divided by their greatest common divisor, which changes no choice and keeps
    /// the period (`total` heights) short. A total still above [`MAX_SCHEDULED_TOTAL`] is
    /// scaled down to about that, every validator keeping at least 1: each proposer share is
    /// then within about (n + 1) / 2^16 of the power share rather than exact, in exchange for
    /// a bounded cost per height (genesis allows totals up to 2^53 - 1).
    pub fn new(powers: &[u64]) -> Priorities {
        let divisor = powers.iter().fold(0, |g, &p| gcd(g, p)).max(1);
        let reduced: Vec<u64> = powers.iter().map(|p| p / divisor).collect();
        let reduced_total: u128 = reduced.iter().map(|&p| u128::from(p)).sum();
        let cap = u128::from(MAX_SCHEDULED_TOTAL);
        let scheduled: Vec<i64> = reduced
            .iter()
            .map(|&p| {
                let p = u128::from(p);
                let p = if reduced_total <= cap || p == 0 {
                    p
                } else {
                    // Nearest share of the cap; at most the cap, so it fits.
                    ((p * cap + reduced_total / 2) / reduced_total).max(1)
                };
                i64::try_from(p).unwrap_or(i64::MAX)
            })
            .collect();
        Priorities {
            total: scheduled.iter().sum(),
            priorities: vec![0; scheduled.len()],
            powers: scheduled,
        }
    }

    /// The priorities at the start of the height `heights_since_epoch_start` heights after
    /// the set's first. They repeat every `total` heights, so at most `total` steps are run.
    pub fn at(powers: &[u64], heights_since_epoch_start: u64) -> Priorities {
        let mut priorities = Priorities::new(powers);
        let period = u64::try_from(priorities.total).unwrap_or(0);
        let steps = heights_since_epoch_start.checked_rem(period).unwrap_or(0);
        for _ in 0..steps {
            priorities.advance();
        }
        priorities
    }

    /// Moves on to the next height and returns this height's round-0 proposer: everyone
    /// gains its power, the highest priority proposes and pays the total.
    pub fn advance(&mut self) -> Option<usize> {
        for (priority, power) in self.priorities.iter_mut().zip(&self.powers) {
            *priority += power;
        }
        let proposer = self.highest()?;
        self.priorities[proposer] -= self.total;
        Some(proposer)
    }

    /// This height's proposers by round: validator indices, highest priority first, ties to
    /// the lower index. Ranked by the priority after this height's increment, the one
    /// CometBFT compares, so the first is the validator [`Priorities::advance`] picks.
    pub fn ranking(&self) -> Vec<usize> {
        let mut ranking: Vec<usize> = (0..self.priorities.len()).collect();
        ranking.sort_by_key(|&i| std::cmp::Reverse(self.priorities[i] + self.powers[i]));
        ranking
    }

    pub fn priorities(&self) -> &[i64] {
        &self.priorities
    }

    /// The total power the schedule runs on: its period in heights.
    pub fn total(&self) -> i64 {
        self.total
    }

    /// The powers the schedule runs on (reduced, and scaled above [`MAX_SCHEDULED_TOTAL`]).
    pub fn powers(&self) -> &[i64] {
        &self.powers
    }

    /// Index of the highest priority, the lower index on ties (`None` for no validators).
    fn highest(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, &priority) in self.priorities.iter().enumerate() {
            if best.is_none_or(|b| priority > self.priorities[b]) {
                best = Some(i);
            }
        }
        best
    }
}

/// Validator indices in the order they propose the rounds of the height
/// `heights_since_epoch_start` heights after the set's first.
pub fn ranking(powers: &[u64], heights_since_epoch_start: u64) -> Vec<usize> {
    Priorities::at(powers, heights_since_epoch_start).ranking()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// splitmix64: a seeded, dependency-free source of test cases.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform enough in `lo..=hi` for test cases.
        pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
            lo + self.next_u64() % (hi - lo + 1)
        }

        /// Random sets of 1 to 10 validators with powers up to `max_power`, then skewed ones.
        pub fn power_sets(&mut self, cases: usize, max_power: u64) -> Vec<Vec<u64>> {
            let mut sets: Vec<Vec<u64>> = (0..cases)
                .map(|_| {
                    let n = self.range(1, 10);
                    (0..n).map(|_| self.range(1, max_power)).collect()
                })
                .collect();
            sets.extend(skewed_sets(max_power));
            sets
        }
    }

    pub(crate) fn skewed_sets(max_power: u64) -> Vec<Vec<u64>> {
        vec![
            vec![max_power, 1, 1],
            vec![1, 1, max_power],
            vec![max_power, 1],
            vec![max_power, max_power - 1, 1],
            vec![max_power, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            vec![1, max_power, max_power, max_power],
            vec![2, 1, 1],
            vec![1, 1],
        ]
    }

    /// Walks `total` heights from `start`, checking every height on the way, and returns how
    /// many round-0 turns each validator had.
    fn walk_one_period(powers: &[u64], start: u64) -> Vec<u64> {
        let mut state = Priorities::at(powers, start);
        let n = powers.len();
        let total = state.total();
        let mut turns = vec![0u64; n];
        for _ in 0..total {
            let ranking = state.ranking();
            let mut sorted = ranking.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                (0..n).collect::<Vec<_>>(),
                "{powers:?}: not a ranking"
            );
            let proposer = state.advance().expect("a non-empty set has a proposer");
            assert_eq!(ranking[0], proposer, "{powers:?}: round 0 is not the pick");
            turns[proposer] += 1;
            // From zero the priorities stay centred, and none falls a whole turn ahead.
            assert_eq!(state.priorities().iter().sum::<i64>(), 0, "{powers:?}");
            assert!(
                state.priorities().iter().all(|&p| p > -total),
                "{powers:?}: {:?}",
                state.priorities()
            );
        }
        turns
    }

    #[test]
    fn over_total_power_heights_each_validator_proposes_its_power() {
        let mut rng = Rng(0x5eed_0001);
        for powers in rng.power_sets(120, 1000) {
            let start = rng.next_u64();
            let state = Priorities::new(&powers);
            let turns = walk_one_period(&powers, start);
            // A period in reduced powers; the shares are those of the powers themselves.
            let expected: Vec<u64> = state.powers().iter().map(|&p| p as u64).collect();
            assert_eq!(turns, expected, "{powers:?} from {start}");
            let divisor = powers[0] / expected[0];
            assert!(
                powers.iter().zip(&expected).all(|(p, e)| *p == e * divisor),
                "{powers:?} scheduled as {expected:?}"
            );
        }
    }

    #[test]
    fn the_ranking_of_a_height_is_the_state_walked_to_it() {
        let mut rng = Rng(0x5eed_0002);
        for powers in rng.power_sets(100, 300) {
            let mut walked = Priorities::new(&powers);
            let total = walked.total() as u64;
            let checkpoints: Vec<u64> = {
                let mut c: Vec<u64> = (0..4).map(|_| rng.range(0, 2 * total)).collect();
                c.sort_unstable();
                c
            };
            let mut height = 0u64;
            for k in checkpoints {
                while height < k {
                    walked.advance();
                    height += 1;
                }
                assert_eq!(Priorities::at(&powers, k), walked, "{powers:?} at {k}");
                assert_eq!(ranking(&powers, k), walked.ranking(), "{powers:?} at {k}");
            }
            // The schedule repeats with the total, which is what makes reducing k safe.
            let k = rng.range(0, total);
            let periods = rng.range(1, u64::MAX / total - 1);
            assert_eq!(
                ranking(&powers, k),
                ranking(&powers, k + periods * total),
                "{powers:?}"
            );
        }
    }

    #[test]
    fn a_common_factor_of_the_powers_changes_nothing() {
        let mut rng = Rng(0x5eed_0003);
        for powers in rng.power_sets(100, 60) {
            let factor = rng.range(2, 1000);
            let scaled: Vec<u64> = powers.iter().map(|p| p * factor).collect();
            // CometBFT's steps on the powers as given, against the reduced schedule.
            let mut unreduced: Vec<i64> = vec![0; powers.len()];
            let total: i64 = scaled.iter().map(|&p| p as i64).sum();
            let mut reduced = Priorities::new(&scaled);
            for k in 0..(2 * total / factor as i64) as u64 {
                let mut expected: Vec<usize> = (0..powers.len()).collect();
                expected.sort_by_key(|&i| std::cmp::Reverse(unreduced[i] + scaled[i] as i64));
                assert_eq!(reduced.ranking(), expected, "{scaled:?} at {k}");
                if k % 17 == 0 {
                    assert_eq!(ranking(&scaled, k), expected, "{scaled:?} at {k}");
                }
                for (p, w) in unreduced.iter_mut().zip(&scaled) {
                    *p += *w as i64;
                }
                unreduced[expected[0]] -= total;
                reduced.advance();
            }
        }
    }

    #[test]
    fn heights_and_rounds_of_any_set_always_rank_every_validator_once() {
        let mut rng = Rng(0x5eed_0004);
        for powers in rng.power_sets(100, 1000) {
            for _ in 0..3 {
                let k = rng.next_u64();
                let ranking = ranking(&powers, k);
                let mut sorted = ranking.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..powers.len()).collect::<Vec<_>>(), "{powers:?}");
                // Determinism: nothing but the inputs decides.
                assert_eq!(ranking, super::ranking(&powers.clone(), k));
            }
        }
    }

    #[test]
    fn totals_beyond_the_cap_run_on_scaled_powers_at_bounded_cost() {
        let max = chain_core::genesis::MAX_TOTAL_POWER;
        let sets = [
            vec![max / 2, max / 4, max / 4 - 1],
            vec![max - 2, 1, 1],
            vec![(3 << 40) + 1, 1 << 40, 1 << 40, 7],
            (1..=10).map(|i| i * 1_000_003).collect(),
            (1..=10).map(|i| i * 1_000_003 + i % 3).collect(),
        ];
        for powers in sets {
            let state = Priorities::new(&powers);
            let total = state.total() as u64;
            assert!(
                total <= MAX_SCHEDULED_TOTAL + powers.len() as u64,
                "{powers:?}"
            );
            assert!(state.powers().iter().all(|&p| p >= 1), "{powers:?}");
            let real_total: u128 = powers.iter().map(|&p| u128::from(p)).sum();
            for (&real, &scheduled) in powers.iter().zip(state.powers()) {
                // |real / real_total - scheduled / total| <= (n + 1) / total
                let share = u128::from(real) * u128::from(total);
                let off = share.abs_diff(scheduled as u128 * real_total);
                assert!(
                    off <= (powers.len() as u128 + 1) * real_total,
                    "{powers:?}: {real} scheduled as {scheduled} of {total}"
                );
            }
            // Far heights cost no more than near ones.
            for k in [u64::MAX, u64::MAX - 1, 1 << 53] {
                assert_eq!(ranking(&powers, k).len(), powers.len());
            }
            let turns = walk_one_period(&powers, u64::MAX);
            let expected: Vec<u64> = state.powers().iter().map(|&p| p as u64).collect();
            assert_eq!(turns, expected, "{powers:?}");
        }
    }

    #[test]
    fn an_empty_set_has_no_proposer() {
        let mut state = Priorities::new(&[]);
        assert_eq!(state.advance(), None);
        assert!(ranking(&[], 5).is_empty());
    }
}
