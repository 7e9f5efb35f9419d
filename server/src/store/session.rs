//! Sessionizing at ingest: which visit each event belongs to, and the per-event deltas that let
//! queries sum visits, bounces and durations without grouping events by visit.

use std::collections::HashMap;

use super::event::{Acquisition, Event, SessionFacts};

/// A visit ends after this long without an event.
pub const IDLE_MICROS: i64 = 30 * 60 * 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    pub session_id: u64,
    pub last_ts_micros: i64,
    /// True while the visit is a single pageview: it is counted as a bounce until its next
    /// event, which then carries `bounce_delta = -1`.
    pub bounce_open: bool,
    pub entry_page: String,
    pub acquisition: Acquisition,
}

type Key = (String, u64);

/// The visitor → open visit map. Not thread-safe by design: only the writer thread owns it, so
/// the order events are sessionized in is the order they are committed in.
#[derive(Default)]
pub struct Sessionizer {
    open: HashMap<Key, OpenSession>,
    /// The state of each key before the current batch touched it, to undo a failed commit.
    undo: HashMap<Key, Option<OpenSession>>,
}

impl Sessionizer {
    pub fn from_open(sessions: impl IntoIterator<Item = (String, u64, OpenSession)>) -> Self {
        let open = sessions
            .into_iter()
            .map(|(site, visitor, s)| ((site, visitor), s))
            .collect();
        Self {
            open,
            undo: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Assigns `event` to a visit and returns the facts to store with it.
    pub fn assign(&mut self, event: &Event, new_session_id: impl FnOnce() -> u64) -> SessionFacts {
        let key = (event.site_id.clone(), event.visitor_id);
        let previous = self.open.get(&key).cloned();
        self.undo
            .entry(key.clone())
            .or_insert_with(|| previous.clone());
        let ts = event.ts_micros;
        match previous {
            Some(mut open) if ts - open.last_ts_micros <= IDLE_MICROS => {
                let facts = SessionFacts {
                    session_id: open.session_id,
                    is_entry: false,
                    bounce_delta: if open.bounce_open { -1 } else { 0 },
                    duration_ms: (ts - open.last_ts_micros).max(0) / 1000,
                    entry_page: open.entry_page.clone(),
                    acquisition: open.acquisition.clone(),
                };
                open.bounce_open = false;
                open.last_ts_micros = open.last_ts_micros.max(ts);
                self.open.insert(key, open);
                facts
            }
            _ => {
                let open = OpenSession {
                    session_id: new_session_id(),
                    last_ts_micros: ts,
                    bounce_open: event.is_pageview(),
                    entry_page: event.pathname.clone(),
                    acquisition: event.acquisition.clone(),
                };
                let facts = SessionFacts {
                    session_id: open.session_id,
                    is_entry: true,
                    bounce_delta: i8::from(open.bounce_open),
                    duration_ms: 0,
                    entry_page: open.entry_page.clone(),
                    acquisition: open.acquisition.clone(),
                };
                self.open.insert(key, open);
                facts
            }
        }
    }

    /// The batch was committed: its assignments stand.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    /// The batch was not committed: forget its assignments.
    pub fn rollback(&mut self) {
        for (key, previous) in self.undo.drain() {
            match previous {
                Some(open) => self.open.insert(key, open),
                None => self.open.remove(&key),
            };
        }
    }

    /// Drops visits idle for longer than the timeout as of `now_micros`.
    pub fn expire(&mut self, now_micros: i64) {
        self.open
            .retain(|_, open| now_micros - open.last_ts_micros <= IDLE_MICROS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, path: &str, minute: i64) -> Event {
        Event {
            ts_micros: minute * 60 * 1_000_000,
            site_id: "example.com".into(),
            name: name.into(),
            visitor_id: 7,
            pathname: path.into(),
            ..Default::default()
        }
    }

    fn ids() -> impl FnMut() -> u64 {
        let mut next = 100;
        move || {
            next += 1;
            next
        }
    }

    #[test]
    fn deltas_sum_to_visits_bounces_and_duration() {
        let mut s = Sessionizer::default();
        let mut id = ids();
        let a = s.assign(&event("pageview", "/", 0), &mut id);
        let b = s.assign(&event("pageview", "/pricing", 5), &mut id);
        let c = s.assign(&event("Signup", "/pricing", 7), &mut id);
        assert_eq!((a.is_entry, a.bounce_delta, a.duration_ms), (true, 1, 0));
        assert_eq!(
            (b.is_entry, b.bounce_delta, b.duration_ms),
            (false, -1, 5 * 60_000)
        );
        assert_eq!(
            (c.is_entry, c.bounce_delta, c.duration_ms),
            (false, 0, 2 * 60_000)
        );
        assert_eq!(a.session_id, c.session_id);
        assert_eq!(c.entry_page, "/", "entry page sticks to the visit");
    }

    #[test]
    fn thirty_idle_minutes_start_a_new_visit() {
        let mut s = Sessionizer::default();
        let mut id = ids();
        let a = s.assign(&event("pageview", "/", 0), &mut id);
        let b = s.assign(&event("pageview", "/", 30), &mut id);
        let c = s.assign(&event("pageview", "/", 61), &mut id);
        assert_eq!(
            a.session_id, b.session_id,
            "exactly 30 minutes still continues"
        );
        assert_ne!(b.session_id, c.session_id);
        assert_eq!((c.is_entry, c.bounce_delta), (true, 1));
    }

    #[test]
    fn a_visit_starting_with_a_custom_event_never_bounces() {
        let mut s = Sessionizer::default();
        let mut id = ids();
        let a = s.assign(&event("Download", "/", 0), &mut id);
        let b = s.assign(&event("pageview", "/", 1), &mut id);
        assert_eq!(a.bounce_delta + b.bounce_delta, 0);
    }

    #[test]
    fn rollback_forgets_the_uncommitted_batch() {
        let mut s = Sessionizer::default();
        let mut id = ids();
        let first = s.assign(&event("pageview", "/", 0), &mut id);
        s.commit();
        s.assign(&event("pageview", "/b", 1), &mut id);
        s.rollback();
        let again = s.assign(&event("pageview", "/b", 1), &mut id);
        assert_eq!(again.session_id, first.session_id);
        assert_eq!(
            again.bounce_delta, -1,
            "the visit is still open as a bounce after rollback"
        );
    }
}
