//! Signed-in operators of the screens (issue #12): a random session id (the cookie) for each,
//! ended after the configured idle time. Kept in memory: a restart signs everyone out, which
//! is the safe side. A station's scanner reads are recorded under the operator signed in at
//! that station's screen (the receipt screen for receipt scanners, the print screen for verify
//! scanners).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::operators::Role;
use crate::reconcile::Step;

/// The most sessions kept at once (a workstation has a handful of people); the least recently
/// used goes first.
const MAX_SESSIONS: usize = 64;

/// A signed-in operator, as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub operator: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug)]
struct Entry {
    session: Session,
    last_used: Instant,
    /// The station screen this session last opened, when, and the order on it (a print
    /// station's order page).
    station: Option<(Step, Instant, Option<String>)>,
}

#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Starts a session for `session`; its id (64 hex digits from the OS's random source).
    ///
    /// # Errors
    /// The OS's random source could not be read.
    pub fn start(&self, session: Session, now: Instant) -> std::io::Result<String> {
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        let id = crate::journal::audit::hex(&bytes);
        let mut entries = super::lock(&self.entries);
        self.expire(&mut entries, now);
        if entries.len() >= MAX_SESSIONS
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(id, _)| id.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(
            id.clone(),
            Entry {
                session,
                last_used: now,
                station: None,
            },
        );
        Ok(id)
    }

    fn expire(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        entries.retain(|_, e| now.saturating_duration_since(e.last_used) < self.idle);
    }

    /// The session `id`, if it is live at `now`; `touch` counts this as the operator's activity
    /// (a page or an action, not a background refresh).
    pub fn get(&self, id: &str, now: Instant, touch: bool) -> Option<Session> {
        let mut entries = super::lock(&self.entries);
        self.expire(&mut entries, now);
        let entry = entries.get_mut(id)?;
        if touch {
            entry.last_used = now;
        }
        Some(entry.session.clone())
    }

    /// Records that session `id` has `step`'s station screen open, showing order `coi` if any.
    pub fn at_station(&self, id: &str, step: Step, coi: Option<&str>, now: Instant) {
        if let Some(entry) = super::lock(&self.entries).get_mut(id) {
            entry.station = Some((step, now, coi.map(str::to_owned)));
        }
    }

    /// Ends session `id`.
    pub fn end(&self, id: &str) {
        super::lock(&self.entries).remove(id);
    }

    /// Ends every session of `operator` (disabled by an admin).
    pub fn end_operator(&self, operator: &str) {
        super::lock(&self.entries).retain(|_, e| e.session.operator != operator);
    }

    /// The operator signed in at `step`'s station screen most recently, if still live: a scan
    /// from that station's scanner is theirs. It is not their activity: a scanner keeps no one
    /// signed in who walked away from the screen.
    pub fn station_operator(&self, step: Step, now: Instant) -> Option<String> {
        self.station(step, now).map(|(operator, _)| operator)
    }

    /// The operator signed in at `step`'s station screen most recently (if still live), and
    /// the order that screen shows, if any.
    pub fn station(&self, step: Step, now: Instant) -> Option<(String, Option<String>)> {
        let mut entries = super::lock(&self.entries);
        self.expire(&mut entries, now);
        let entry = entries
            .values()
            .filter(|e| e.station.as_ref().is_some_and(|(s, _, _)| *s == step))
            .max_by_key(|e| e.station.as_ref().map(|(_, at, _)| *at))?;
        let coi = entry.station.as_ref().and_then(|(_, _, coi)| coi.clone());
        Some((entry.session.operator.clone(), coi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(operator: &str) -> Session {
        Session {
            operator: operator.to_owned(),
            name: operator.to_uppercase(),
            role: Role::Tech,
        }
    }

    #[test]
    fn a_session_ends_after_the_idle_time_unless_used() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let id = sessions.start(session("t1"), t0).expect("random");
        assert_eq!(id.len(), 64);
        let later = t0 + Duration::from_secs(50);
        assert!(sessions.get(&id, later, true).is_some());
        // Used at 50 s: live until 110 s; a background refresh does not extend it.
        assert!(
            sessions
                .get(&id, t0 + Duration::from_secs(100), false)
                .is_some()
        );
        assert!(
            sessions
                .get(&id, t0 + Duration::from_secs(110), false)
                .is_none()
        );
        assert!(sessions.get("not-a-session", t0, true).is_none());
    }

    #[test]
    fn a_station_scan_belongs_to_whoever_opened_that_station_last() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let a = sessions.start(session("t1"), t0).expect("random");
        let b = sessions.start(session("t2"), t0).expect("random");
        assert_eq!(sessions.station_operator(Step::Receipt, t0), None);
        sessions.at_station(&a, Step::Receipt, None, t0);
        sessions.at_station(
            &b,
            Step::Verify,
            Some("CHA999925000042"),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(
            sessions.station(Step::Verify, t0 + Duration::from_secs(2)),
            Some(("t2".to_owned(), Some("CHA999925000042".to_owned())))
        );
        assert_eq!(
            sessions.station_operator(Step::Receipt, t0 + Duration::from_secs(2)),
            Some("t1".to_owned())
        );
        sessions.end(&a);
        assert_eq!(
            sessions.station_operator(Step::Receipt, t0 + Duration::from_secs(2)),
            None
        );
        sessions.end_operator("t2");
        assert!(sessions.get(&b, t0, false).is_none());
    }
}
