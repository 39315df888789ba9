//! The core's message log, as `xl dmesg` shows it: a tracing layer that
//! keeps the last lines logged at INFO or above.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines kept.
const KEEP_LINES: usize = 2000;

/// A shared ring of log lines.
#[derive(Clone)]
pub struct MessageLog {
    lines: Arc<Mutex<VecDeque<String>>>,
    start: Instant,
}

impl Default for MessageLog {
    fn default() -> Self {
        Self {
            lines: Arc::default(),
            start: Instant::now(),
        }
    }
}

impl MessageLog {
    /// The lines kept, oldest first; `clear` empties the log after.
    pub fn lines(&self, clear: bool) -> Vec<String> {
        let mut lines = self.lines.lock().expect("log lock");
        let copy = lines.iter().cloned().collect();
        if clear {
            lines.clear();
        }
        copy
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().expect("log lock");
        if lines.len() == KEEP_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for MessageLog {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::INFO || meta.target() == "console" {
            return;
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let at = self.start.elapsed();
        self.push(format!(
            "({:>5}.{:06}) {:<5} {}",
            at.as_secs(),
            at.subsec_micros(),
            meta.level(),
            // Whatever reached the line (a guest's text, a path), it stays
            // one line and drives no terminal.
            protocol::text::escape_controls(&fields.0)
        ));
    }
}
