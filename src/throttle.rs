//! Log lines about hostile or broken clients, at most one per interval: an
//! attack of thousands of connections must not become thousands of lines.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts occurrences of one kind of event; [`Throttle::note`] says when to
/// log and how many went unlogged since the last line.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    unlogged: u64,
    total: u64,
}

/// What to put in the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Occurrences since the previous line, this one included.
    pub count: u64,
    /// Occurrences since the start.
    pub total: u64,
}

impl Throttle {
    pub const fn new(every: Duration) -> Throttle {
        Throttle { every, state: Mutex::new(State { last: None, unlogged: 0, total: 0 }) }
    }

    /// One occurrence at `now`: `Some` when a line is due (the first one,
    /// then at most one per interval).
    pub fn note(&self, now: Instant) -> Option<Due> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.unlogged += 1;
        s.total += 1;
        let due = s.last.is_none_or(|t| now.saturating_duration_since(t) >= self.every);
        if !due {
            return None;
        }
        s.last = Some(now);
        let count = std::mem::take(&mut s.unlogged);
        Some(Due { count, total: s.total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_once_per_interval() {
        let t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(t.note(t0), Some(Due { count: 1, total: 1 }));
        assert_eq!(t.note(t0 + Duration::from_millis(10)), None);
        assert_eq!(t.note(t0 + Duration::from_millis(900)), None);
        assert_eq!(t.note(t0 + Duration::from_millis(1000)), Some(Due { count: 3, total: 4 }));
        assert_eq!(t.note(t0 + Duration::from_millis(1001)), None);
    }
}
