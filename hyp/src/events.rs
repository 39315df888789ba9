//! What the core tells the world: console lines, state changes, reports.

use protocol::domain::{DomId, DomainState};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

/// Something that happened in a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete line the domain wrote to its console.
    Console {
        /// The domain.
        domid: DomId,
        /// The line, without its newline.
        line: String,
    },
    /// The domain changed state (shut down, crashed, paused, ...).
    State {
        /// The domain.
        domid: DomId,
        /// Its new state.
        state: DomainState,
        /// Why, for a shutdown or crash.
        message: Option<String>,
    },
    /// The domain handed over a postcard-encoded
    /// [`protocol::report::Report`].
    Report {
        /// The domain.
        domid: DomId,
        /// The encoded report, as the guest passed it.
        bytes: Vec<u8>,
    },
}

/// Fans events out to every subscriber.
#[derive(Default)]
pub struct EventHub {
    subscribers: Mutex<Vec<Sender<Event>>>,
}

impl EventHub {
    /// A new receiver of every event from now on.
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = channel();
        self.subscribers.lock().expect("event hub lock").push(tx);
        rx
    }

    /// Sends `event` to every live subscriber.
    pub fn publish(&self, event: Event) {
        let mut subscribers = self.subscribers.lock().expect("event hub lock");
        subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// Assembles a domain's console bytes into lines.
#[derive(Default)]
pub struct LineAssembler {
    partial: Vec<u8>,
}

/// Longest console line kept; longer lines are split.
const MAX_LINE: usize = 1024;

impl LineAssembler {
    /// Adds bytes and returns the lines they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' || self.partial.len() == MAX_LINE {
                lines.push(
                    String::from_utf8_lossy(&self.partial)
                        .trim_end_matches('\r')
                        .to_string(),
                );
                self.partial.clear();
                if byte == b'\n' {
                    continue;
                }
            }
            self.partial.push(byte);
        }
        lines
    }
}
