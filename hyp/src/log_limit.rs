//! [`LogLimit`]: at most a few log lines a second about what one domain
//! does, so a guest cannot flood the host's log (or push every other line
//! out of `xl dmesg`); what is held back is counted and said on the next
//! line that goes out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines a domain's events may log per window.
const BURST: u32 = 10;
/// The window.
const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Budget {
    window_start: Instant,
    used: u32,
    suppressed: u64,
}

/// A log budget for one source (a domain, a device).
#[derive(Debug)]
pub struct LogLimit {
    budget: Mutex<Budget>,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self {
            budget: Mutex::new(Budget {
                window_start: Instant::now(),
                used: 0,
                suppressed: 0,
            }),
        }
    }
}

/// What [`LogLimit::admit`] allows: log the line, saying how many were
/// held back before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Lines held back since the last one that went out.
    pub suppressed: u64,
}

impl std::fmt::Display for Admitted {
    /// Nothing, or ` (N similar lines suppressed)`, to end the line with.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.suppressed {
            0 => Ok(()),
            n => write!(f, " ({n} similar lines suppressed)"),
        }
    }
}

impl LogLimit {
    /// May one more line go out? `None` (counted) while over budget.
    pub fn admit(&self) -> Option<Admitted> {
        let mut budget = self.budget.lock().expect("log limit lock");
        let now = Instant::now();
        if now.duration_since(budget.window_start) >= WINDOW {
            budget.window_start = now;
            budget.used = 0;
        }
        if budget.used >= BURST {
            budget.suppressed += 1;
            return None;
        }
        budget.used += 1;
        Some(Admitted {
            suppressed: std::mem::take(&mut budget.suppressed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_out_then_the_rest_is_counted() {
        let limit = LogLimit::default();
        for _ in 0..BURST {
            assert_eq!(limit.admit(), Some(Admitted { suppressed: 0 }));
        }
        for _ in 0..1000 {
            assert_eq!(limit.admit(), None);
        }
        limit.budget.lock().unwrap().window_start -= WINDOW;
        let next = limit.admit().unwrap();
        assert_eq!(next.suppressed, 1000);
        assert_eq!(next.to_string(), " (1000 similar lines suppressed)");
        assert_eq!(limit.admit().unwrap().to_string(), "");
    }
}
