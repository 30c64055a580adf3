//! Live counters behind `GET /api/stats` (atomics) and the business metrics
//! `polyshop_pricing_calculations_total{tier}` / `polyshop_pricing_calculation_duration_seconds`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use crate::pricing::{self, PriceInput, Quote, Tier};

/// Buckets from 1 µs: a calculation takes well under a microsecond to a few.
const CALC_BUCKETS: [f64; 12] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.01,
];

/// Counters of the pricing engine.
pub struct Stats {
    requests: AtomicU64,
    calculations: AtomicU64,
    calc_nanos: AtomicU64,
    by_tier: [IntCounter; 4],
    duration: Histogram,
}

impl Stats {
    /// Creates the counters and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tiers = IntCounterVec::new(
            Opts::new(
                "polyshop_pricing_calculations_total",
                "Prices calculated, by tier.",
            ),
            &["tier"],
        )?;
        registry.register(Box::new(tiers.clone()))?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "polyshop_pricing_calculation_duration_seconds",
                "Time to calculate one price.",
            )
            .buckets(CALC_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(duration.clone()))?;
        // Resolve the four label values once: no label lookup per calculation.
        let by_tier = Tier::ALL.map(|t| tiers.with_label_values(&[t.as_str()]));
        Ok(Self {
            requests: AtomicU64::new(0),
            calculations: AtomicU64::new(0),
            calc_nanos: AtomicU64::new(0),
            by_tier,
            duration,
        })
    }

    /// Prices one line and records it.
    pub fn quote(&self, input: &PriceInput) -> Quote {
        let start = Instant::now();
        let q = pricing::quote(input);
        self.record(q.tier, start.elapsed());
        q
    }

    fn record(&self, tier: Tier, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.calculations.fetch_add(1, Ordering::Relaxed);
        self.calc_nanos.fetch_add(nanos, Ordering::Relaxed);
        let idx = Tier::ALL.iter().position(|t| *t == tier).unwrap_or(0);
        self.by_tier[idx].inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one pricing request (any of the /api routes that price).
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests served so far.
    pub fn requests_processed(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Mean time of one calculation in microseconds (0 before the first).
    pub fn avg_calculation_time_us(&self) -> f64 {
        let n = self.calculations.load(Ordering::Relaxed);
        if n == 0 {
            return 0.0;
        }
        let us = self.calc_nanos.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0;
        (us * 1000.0).round() / 1000.0
    }
}
