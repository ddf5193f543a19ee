//! Whether the bridge as a whole is falling behind (docs/operations.md "Falling
//! behind"), decided from periodic samples of the client queues: pure, the caller
//! passes the samples and the time, so tests drive the clock.
//!
//! One slow client is not the bridge falling behind: its queue fills, it is closed
//! with `4008`, and everyone else carries on. The bridge is behind when *many*
//! connections at once have events that have waited longer than [`Rules::lag`] to be
//! written: then the cause is shared (the bridge's CPU, its network), not one client's.
//! "Many" is a share of the connections with a floor, so that a handful of slow
//! clients on a small bridge does not count either.
//!
//! The decision has hysteresis, so a flapping measure does not flap the alarm: it
//! takes [`Rules::enter_after`] samples in a row over the threshold to become behind,
//! and [`Rules::leave_after`] samples in a row under half of it to recover. While it
//! lasts a warning is due every [`Rules::warn_every`], not at every sample.

use std::time::{Duration, Instant};

/// What one pass over the client connections found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Connections whose lag can be seen (WebSocket: the age of their oldest queued
    /// event frame is known).
    pub connections: usize,
    /// Of those, the connections whose oldest queued event frame has waited longer
    /// than [`Rules::lag`].
    pub lagging: usize,
    /// Event frames queued across every connection (SSE streams included), not yet
    /// written to their sockets.
    pub queued_frames: u64,
    /// How long the oldest queued event frame of any connection has waited.
    pub oldest: Duration,
}

/// When the bridge counts as behind, and how often it says so.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// A connection whose oldest queued event frame is older than this is lagging.
    pub lag: Duration,
    /// The share of the connections that must lag at once (0..=1) ...
    pub share: f64,
    /// ... and at least this many of them.
    pub min_lagging: usize,
    /// Samples in a row over the threshold before the bridge is behind.
    pub enter_after: u32,
    /// Samples in a row under half the threshold before it has caught up.
    pub leave_after: u32,
    /// How often the warning is repeated while the bridge stays behind.
    pub warn_every: Duration,
}

impl Default for Rules {
    /// Sampled once a second (see `egress::backlog`): behind after two seconds in a
    /// row with a quarter of the connections (at least 4) a second late; caught up
    /// after three seconds with fewer than half that many.
    fn default() -> Self {
        Rules {
            lag: Duration::from_secs(1),
            share: 0.25,
            min_lagging: 4,
            enter_after: 2,
            leave_after: 3,
            warn_every: Duration::from_secs(30),
        }
    }
}

impl Rules {
    /// How many lagging connections, of `connections`, make a sample "behind".
    pub fn threshold(&self, connections: usize) -> usize {
        let share = (self.share * connections as f64).ceil() as usize;
        share.max(self.min_lagging).max(1)
    }

    fn over(&self, sample: &Sample) -> bool {
        sample.lagging >= self.threshold(sample.connections)
    }

    /// Well under the threshold: half of it, so a measure hovering at the threshold
    /// neither enters nor leaves.
    fn clear(&self, sample: &Sample) -> bool {
        sample.lagging * 2 < self.threshold(sample.connections)
    }
}

/// What the caller should log after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Warn: the bridge is behind, `for_` this long so far (zero when it just became
    /// behind).
    Behind { sample: Sample, for_: Duration },
    /// Say it has caught up after being behind for `lasted`.
    CaughtUp { sample: Sample, lasted: Duration },
}

/// The state between samples.
#[derive(Debug)]
pub struct Watch {
    rules: Rules,
    /// Since when the bridge is behind; `None` while it keeps up.
    behind_since: Option<Instant>,
    /// Samples in a row that point the other way (towards behind while keeping up,
    /// towards caught up while behind).
    streak: u32,
    /// When the last warning was due.
    warned_at: Option<Instant>,
}

impl Watch {
    pub fn new(rules: Rules) -> Self {
        Watch {
            rules,
            behind_since: None,
            streak: 0,
            warned_at: None,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn is_behind(&self) -> bool {
        self.behind_since.is_some()
    }

    /// Takes the sample made at `now`; returns what to log, if anything.
    pub fn observe(&mut self, sample: Sample, now: Instant) -> Option<Report> {
        match self.behind_since {
            None => {
                if !self.rules.over(&sample) {
                    self.streak = 0;
                    return None;
                }
                self.streak += 1;
                if self.streak < self.rules.enter_after {
                    return None;
                }
                self.streak = 0;
                self.behind_since = Some(now);
                self.warned_at = Some(now);
                Some(Report::Behind {
                    sample,
                    for_: Duration::ZERO,
                })
            }
            Some(since) => {
                if self.rules.clear(&sample) {
                    self.streak += 1;
                    if self.streak >= self.rules.leave_after {
                        self.streak = 0;
                        self.behind_since = None;
                        self.warned_at = None;
                        let lasted = now.saturating_duration_since(since);
                        return Some(Report::CaughtUp { sample, lasted });
                    }
                    return None;
                }
                self.streak = 0;
                let warned_at = self.warned_at.unwrap_or(since);
                if now.saturating_duration_since(warned_at) < self.rules.warn_every {
                    return None;
                }
                self.warned_at = Some(now);
                Some(Report::Behind {
                    sample,
                    for_: now.saturating_duration_since(since),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn sample(connections: usize, lagging: usize) -> Sample {
        Sample {
            connections,
            lagging,
            queued_frames: lagging as u64 * 10,
            oldest: SECOND * 2,
        }
    }

    /// Feeds one sample a second from `t0`, and returns what was reported.
    fn run(watch: &mut Watch, t0: Instant, samples: &[Sample]) -> Vec<Option<Report>> {
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| watch.observe(*s, t0 + SECOND * i as u32))
            .collect()
    }

    #[test]
    fn the_threshold_is_a_share_with_a_floor() {
        let rules = Rules::default();
        assert_eq!(rules.threshold(0), 4);
        assert_eq!(rules.threshold(10), 4, "a quarter of 10 is under the floor");
        assert_eq!(rules.threshold(17), 5, "rounded up");
        assert_eq!(rules.threshold(10_000), 2_500);
        let none = Rules {
            min_lagging: 0,
            share: 0.0,
            ..rules
        };
        assert_eq!(
            none.threshold(100),
            1,
            "never 0: an idle bridge is not behind"
        );
    }

    #[test]
    fn one_slow_client_or_a_few_never_make_the_bridge_behind() {
        let mut watch = Watch::new(Rules::default());
        let t0 = Instant::now();
        // One stalled client among 8, then 3 among 8 (under the floor of 4), then
        // 300 among 10 000 (under a quarter), for a minute each.
        for (connections, lagging) in [(8, 1), (8, 3), (10_000, 300)] {
            let reports = run(&mut watch, t0, &vec![sample(connections, lagging); 60]);
            assert!(reports.iter().all(Option::is_none), "{reports:?}");
            assert!(!watch.is_behind());
        }
    }

    #[test]
    fn many_lagging_at_once_make_it_behind_after_two_samples_in_a_row() {
        let mut watch = Watch::new(Rules::default());
        let t0 = Instant::now();
        let over = sample(100, 30);
        let under = sample(100, 10);
        // A single sample over the threshold is a blip, not a state.
        let reports = run(&mut watch, t0, &[over, under, over, under]);
        assert!(reports.iter().all(Option::is_none));
        assert!(!watch.is_behind());
        let reports = run(&mut watch, t0 + SECOND * 10, &[over, over]);
        assert_eq!(reports[0], None);
        assert_eq!(
            reports[1],
            Some(Report::Behind {
                sample: over,
                for_: Duration::ZERO
            })
        );
        assert!(watch.is_behind());
    }

    #[test]
    fn it_recovers_only_well_under_the_threshold_for_three_samples_in_a_row() {
        let mut watch = Watch::new(Rules::default());
        let t0 = Instant::now();
        let over = sample(100, 30);
        run(&mut watch, t0, &[over, over]);
        assert!(watch.is_behind());
        // The threshold is 25: 20 is under it but not under half of it (12.5), so
        // the bridge stays behind; 12 is clear, but the run is broken by a 20.
        let hovering = sample(100, 20);
        let clear = sample(100, 12);
        let reports = run(
            &mut watch,
            t0 + SECOND * 2,
            &[hovering, hovering, clear, clear, hovering, clear, clear],
        );
        assert!(reports.iter().all(Option::is_none), "{reports:?}");
        assert!(watch.is_behind());
        let reports = run(&mut watch, t0 + SECOND * 9, &[clear]);
        assert_eq!(
            reports[0],
            Some(Report::CaughtUp {
                sample: clear,
                lasted: SECOND * 8
            }),
            "behind from t0+1s (the second sample) to t0+9s"
        );
        assert!(!watch.is_behind());
    }

    #[test]
    fn the_warning_is_repeated_every_30_seconds_while_it_lasts() {
        let mut watch = Watch::new(Rules::default());
        let t0 = Instant::now();
        let over = sample(1000, 900);
        // Two minutes behind, one sample a second.
        let reports = run(&mut watch, t0, &vec![over; 121]);
        let warned: Vec<(usize, Duration)> = reports
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Some(Report::Behind { for_, .. }) => Some((i, *for_)),
                other => {
                    assert!(other.is_none(), "{other:?}");
                    None
                }
            })
            .collect();
        assert_eq!(
            warned,
            [
                (1, Duration::ZERO),
                (31, SECOND * 30),
                (61, SECOND * 60),
                (91, SECOND * 90)
            ]
        );
    }

    #[test]
    fn a_clock_that_stalls_or_goes_back_does_not_warn_or_panic() {
        let mut watch = Watch::new(Rules::default());
        let t0 = Instant::now() + SECOND * 100;
        let over = sample(100, 90);
        watch.observe(over, t0);
        watch.observe(over, t0);
        assert!(watch.is_behind());
        assert_eq!(watch.observe(over, t0 - SECOND * 50), None);
        let clear = sample(100, 0);
        for _ in 0..2 {
            assert_eq!(watch.observe(clear, t0 - SECOND * 60), None);
        }
        assert!(matches!(
            watch.observe(clear, t0 - SECOND * 60),
            Some(Report::CaughtUp { lasted, .. }) if lasted == Duration::ZERO
        ));
    }
}
