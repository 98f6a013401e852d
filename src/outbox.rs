//! Delivering custody events to the central service: exactly once in effect, in order per COI
//! identifier, through outages of any length. Events wait in the journal's outbox; each round
//! posts the due ones (COIs in parallel, each COI's events one after another), then the journal
//! records every outcome in one transaction (the agent composes the steps, so no journal is
//! held while the service answers). A crash between a post and its record only means the event
//! is posted again, and the central service recognises it by its idempotency key.

use std::time::Duration;

use crate::central::{CentralClient, CentralError};
use crate::journal::outbox::{Outcome, PendingEvent};
use crate::journal::utc_text;

/// How long to wait before retrying an event the central service could not take.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first: Duration,
    pub cap: Duration,
}

/// 1 s doubling to 5 min: a blip is retried at once, an outage of hours costs one attempt per
/// event every five minutes, and jitter keeps many workstations from retrying in step.
impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub retried: usize,
    pub parked: usize,
}

/// Events posted per COI in one round, and COIs posted to in parallel: enough to drain a
/// backlog quickly, few enough that one round's transaction stays short.
pub const PER_COI: usize = 256;
pub const PARALLEL_COIS: usize = 16;

/// Posts due events (as [`crate::journal::Journal::due_events`] groups them): COIs in
/// parallel, each COI's events one after another. Returns every outcome, for the journal to
/// record in one transaction, and the counts. No journal is held while the service answers.
pub async fn post_due(
    groups: Vec<Vec<PendingEvent>>,
    client: &CentralClient,
    policy: RetryPolicy,
    now: jiff::Timestamp,
) -> (Vec<(PendingEvent, Outcome)>, Round) {
    let mut tasks = tokio::task::JoinSet::new();
    for group in groups {
        let client = client.clone();
        tasks.spawn(async move { deliver_group(group, &client, policy, now).await });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        // A panicking task would be a bug; its events stay pending and go again next round.
        if let Ok(group) = done {
            outcomes.extend(group);
        }
    }
    let mut round = Round::default();
    for (_, outcome) in &outcomes {
        match outcome {
            Outcome::Delivered => round.delivered += 1,
            Outcome::Retry { .. } => round.retried += 1,
            Outcome::Parked { .. } => round.parked += 1,
        }
    }
    (outcomes, round)
}

/// One COI's events, one after another: a refusal parks that event and goes on (waiting would
/// not change the answer); unavailability stops the COI here, so later events never overtake.
async fn deliver_group(
    group: Vec<PendingEvent>,
    client: &CentralClient,
    policy: RetryPolicy,
    now: jiff::Timestamp,
) -> Vec<(PendingEvent, Outcome)> {
    let mut outcomes = Vec::with_capacity(group.len());
    for event in group {
        let outcome = match client.post_event(&event.event_id, &event.payload).await {
            Ok(_) => Outcome::Delivered,
            Err(CentralError::Rejected { status, message }) => Outcome::Parked {
                error: format!("{status}: {message}"),
            },
            Err(err) => {
                let delay = backoff(policy, event.attempts, &event.event_id);
                let next = now.checked_add(delay).unwrap_or(now);
                outcomes.push((
                    event,
                    Outcome::Retry {
                        next_attempt_at: utc_text(next),
                        error: err.to_string(),
                    },
                ));
                break;
            }
        };
        outcomes.push((event, outcome));
    }
    outcomes
}

/// `first * 2^attempts`, capped, minus up to 20 % jitter derived from the event id.
fn backoff(policy: RetryPolicy, attempts: i64, event_id: &str) -> Duration {
    let exponent = attempts.clamp(0, 30) as u32;
    let full = policy
        .first
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(policy.cap);
    let spread = event_id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 200;
    full.mul_f64(1.0 - spread as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let policy = RetryPolicy::default();
        let first = backoff(policy, 0, "a");
        assert!(
            first <= Duration::from_secs(1) && first >= Duration::from_millis(800),
            "{first:?}"
        );
        let fifth = backoff(policy, 4, "a");
        assert!(
            fifth <= Duration::from_secs(16) && fifth >= Duration::from_millis(12_800),
            "{fifth:?}"
        );
        let late = backoff(policy, 50, "a");
        assert!(
            late <= Duration::from_secs(300) && late >= Duration::from_secs(240),
            "{late:?}"
        );
        assert_ne!(
            backoff(policy, 3, "event-1"),
            backoff(policy, 3, "event-2"),
            "jitter differs per event"
        );
    }
}
