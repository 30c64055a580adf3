// Owns the circuit breaker state machine: closed -> open after N consecutive failures,
// open -> half-open after the cool-down, half-open -> closed after M trial successes
// (at most M trials in flight), half-open -> open on any trial failure.
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::IntGauge;

/// The externally visible breaker state; the gauge value is in parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow (0).
    Closed,
    /// A limited number of trial calls probe the upstream (1).
    HalfOpen,
    /// Calls fail fast with `BreakerOpen` (2).
    Open,
}

impl BreakerState {
    /// Value of `polyshop_circuit_breaker_state`: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// How a call ended, from the breaker's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Any answer below 500, 4xx included: the upstream is alive.
    Success,
    /// Connect error, timeout of a full per-try budget, or 5xx.
    Failure,
    /// Says nothing about the upstream (our deadline cut the try short, the caller
    /// dropped the future, the request could not be built): just frees a trial slot.
    Neutral,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Debug)]
struct Inner {
    state: State,
    // Bumped on every transition so outcomes of calls admitted under an earlier state
    // (e.g. a slow call from before the breaker opened) cannot move the new state.
    generation: u64,
}

pub(crate) struct Breaker {
    upstream: String,
    failures_to_open: u32,
    successes_to_close: u32,
    cooldown: Duration,
    gauge: IntGauge,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(crate) fn new(
        upstream: &str,
        failures_to_open: u32,
        successes_to_close: u32,
        cooldown: Duration,
        gauge: IntGauge,
    ) -> Self {
        gauge.set(BreakerState::Closed.gauge_value());
        Self {
            upstream: upstream.to_owned(),
            failures_to_open: failures_to_open.max(1),
            successes_to_close: successes_to_close.max(1),
            cooldown,
            gauge,
            inner: Mutex::new(Inner {
                state: State::Closed { failures: 0 },
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the state half-written (every
        // update is a single assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Admits a call or says how long until the breaker may admit one.
    pub(crate) fn acquire(self: &Arc<Self>, now: Instant) -> Result<Permit, Duration> {
        let mut inner = self.lock();
        let trial = match &mut inner.state {
            State::Closed { .. } => false,
            State::Open { until } => {
                if now < *until {
                    return Err(*until - now);
                }
                self.transition(
                    &mut inner,
                    State::HalfOpen {
                        in_flight: 1,
                        successes: 0,
                    },
                );
                true
            }
            State::HalfOpen { in_flight, .. } => {
                if *in_flight >= self.successes_to_close {
                    // Trials are in flight and will decide soon; one second is the
                    // smallest Retry-After a client can be given anyway.
                    return Err(Duration::from_secs(1));
                }
                *in_flight += 1;
                true
            }
        };
        Ok(Permit {
            breaker: Arc::clone(self),
            generation: inner.generation,
            trial,
            done: false,
        })
    }

    fn finish(&self, generation: u64, trial: bool, outcome: Outcome, now: Instant) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        match &mut inner.state {
            State::Closed { failures } => match outcome {
                Outcome::Success => *failures = 0,
                Outcome::Neutral => {}
                Outcome::Failure => {
                    *failures += 1;
                    if *failures >= self.failures_to_open {
                        self.transition(
                            &mut inner,
                            State::Open {
                                until: now + self.cooldown,
                            },
                        );
                    }
                }
            },
            State::HalfOpen {
                in_flight,
                successes,
            } => {
                debug_assert!(trial, "a permit of the half-open generation is a trial");
                *in_flight = in_flight.saturating_sub(1);
                match outcome {
                    Outcome::Neutral => {}
                    Outcome::Success => {
                        *successes += 1;
                        if *successes >= self.successes_to_close {
                            self.transition(&mut inner, State::Closed { failures: 0 });
                        }
                    }
                    Outcome::Failure => {
                        self.transition(
                            &mut inner,
                            State::Open {
                                until: now + self.cooldown,
                            },
                        );
                    }
                }
            }
            // No permit is ever issued under an Open generation.
            State::Open { .. } => {}
        }
    }

    fn transition(&self, inner: &mut Inner, to: State) {
        inner.state = to;
        inner.generation += 1;
        let state = match inner.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        };
        // Set under the lock so the gauge can never show an older state than the breaker.
        self.gauge.set(state.gauge_value());
        tracing::warn!(upstream = %self.upstream, state = state.as_str(), "circuit breaker");
    }
}

/// The right to make one try. Report how it went with [`Permit::record`]; dropping it
/// unreported (the caller's future was cancelled) counts as neutral, so a half-open
/// breaker never leaks a trial slot.
pub(crate) struct Permit {
    breaker: Arc<Breaker>,
    generation: u64,
    trial: bool,
    done: bool,
}

impl Permit {
    pub(crate) fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.breaker
            .finish(self.generation, self.trial, outcome, Instant::now());
    }

    #[cfg(test)]
    fn record_at(mut self, outcome: Outcome, now: Instant) {
        self.done = true;
        self.breaker
            .finish(self.generation, self.trial, outcome, now);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.finish(
                self.generation,
                self.trial,
                Outcome::Neutral,
                Instant::now(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(n: u32, m: u32, cooldown_s: u64) -> (Arc<Breaker>, IntGauge) {
        let gauge = IntGauge::new("g", "test gauge").unwrap();
        let b = Breaker::new(
            "inventory",
            n,
            m,
            Duration::from_secs(cooldown_s),
            gauge.clone(),
        );
        (Arc::new(b), gauge)
    }

    fn fail_n(b: &Arc<Breaker>, n: u32, now: Instant) {
        for _ in 0..n {
            b.acquire(now).unwrap().record_at(Outcome::Failure, now);
        }
    }

    #[test]
    fn opens_after_n_consecutive_failures_only() {
        let (b, gauge) = breaker(3, 2, 60);
        let t0 = Instant::now();
        fail_n(&b, 2, t0);
        b.acquire(t0).unwrap().record_at(Outcome::Success, t0); // resets the streak
        fail_n(&b, 2, t0);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(gauge.get(), 0);
        fail_n(&b, 1, t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(gauge.get(), 2);
        let wait = b.acquire(t0 + Duration::from_secs(10)).err().unwrap();
        assert_eq!(wait, Duration::from_secs(50));
    }

    #[test]
    fn neutral_outcomes_neither_count_nor_reset() {
        let (b, _) = breaker(2, 1, 60);
        let t0 = Instant::now();
        fail_n(&b, 1, t0);
        b.acquire(t0).unwrap().record_at(Outcome::Neutral, t0);
        drop(b.acquire(t0).unwrap());
        fail_n(&b, 1, t0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn half_open_after_cooldown_then_closes_after_m_successes() {
        let (b, gauge) = breaker(1, 2, 60);
        let t0 = Instant::now();
        fail_n(&b, 1, t0);
        let t1 = t0 + Duration::from_secs(60);
        let p1 = b.acquire(t1).unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(gauge.get(), 1);
        let p2 = b.acquire(t1).unwrap();
        // Budget of M trials in flight is used up.
        assert_eq!(b.acquire(t1).err(), Some(Duration::from_secs(1)));
        p1.record_at(Outcome::Success, t1);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        p2.record_at(Outcome::Success, t1);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn a_half_open_failure_reopens_for_a_full_cooldown() {
        let (b, gauge) = breaker(1, 2, 60);
        let t0 = Instant::now();
        fail_n(&b, 1, t0);
        let t1 = t0 + Duration::from_secs(61);
        let p1 = b.acquire(t1).unwrap();
        let p2 = b.acquire(t1).unwrap();
        p1.record_at(Outcome::Failure, t1);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(gauge.get(), 2);
        // The other trial's late success belongs to the old generation and changes nothing.
        p2.record_at(Outcome::Success, t1);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.acquire(t1 + Duration::from_secs(59)).err(),
            Some(Duration::from_secs(1))
        );
        assert!(b.acquire(t1 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_dropped_trial_frees_its_slot() {
        let (b, _) = breaker(1, 1, 1);
        let t0 = Instant::now();
        fail_n(&b, 1, t0);
        let t1 = t0 + Duration::from_secs(1);
        let p = b.acquire(t1).unwrap();
        assert!(b.acquire(t1).is_err());
        drop(p);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.acquire(t1).unwrap().record_at(Outcome::Success, t1);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn late_failures_from_before_the_open_do_not_extend_it() {
        let (b, _) = breaker(1, 1, 60);
        let t0 = Instant::now();
        let slow = b.acquire(t0).unwrap();
        fail_n(&b, 1, t0);
        slow.record_at(Outcome::Failure, t0 + Duration::from_secs(30));
        assert!(b.acquire(t0 + Duration::from_secs(60)).is_ok());
    }
}
