//! Console buffers: the recent output of each domain, replayed to `xl
//! console` and then followed live.
//!
//! Everything here is bounded, whatever a guest writes and however slowly
//! a reader reads: each domain keeps its last [`KEEP_BYTES`], and each
//! follower is fed through a channel of [`FOLLOWER_LINES`] lines. A
//! follower that falls that far behind misses lines; it is told how many
//! bytes it missed, in the stream itself, as soon as there is room (or,
//! if the output has stopped, once it has caught up).

use protocol::domain::DomId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Bytes of recent output kept per domain.
const KEEP_BYTES: usize = 64 * 1024;
/// Lines a follower may fall behind by before it misses some.
const FOLLOWER_LINES: usize = 256;

/// What a reader is told when it missed `bytes` bytes.
pub fn missed_notice(bytes: usize) -> Vec<u8> {
    format!("\r\n[hypd: {bytes} bytes of console output missed: this reader fell behind]\r\n")
        .into_bytes()
}

/// One `xl console` following a domain.
struct Follower {
    tx: SyncSender<Vec<u8>>,
    /// Bytes it missed and has not been told of.
    missed: Arc<AtomicUsize>,
}

impl Follower {
    /// Hands `bytes` on, or counts them as missed; false once the
    /// follower has gone.
    fn offer(&mut self, bytes: &[u8]) -> bool {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            match self.tx.try_send(missed_notice(missed)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.missed
                        .fetch_add(missed + bytes.len(), Ordering::AcqRel);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        match self.tx.try_send(bytes.to_vec()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.missed.fetch_add(bytes.len(), Ordering::AcqRel);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A reader's end of a console: what it missed while its output came
/// quicker than it read (see [`missed_notice`]), and the lines to come.
pub struct Following {
    /// The lines, as they come.
    pub lines: Receiver<Vec<u8>>,
    /// Bytes missed and not yet told of.
    pub missed: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Console {
    recent: VecDeque<u8>,
    followers: Vec<Follower>,
}

/// Every domain's console.
#[derive(Default)]
pub struct Consoles {
    consoles: Mutex<HashMap<DomId, Console>>,
}

impl Consoles {
    /// Adds a line of output from `domid`.
    pub fn line(&self, domid: DomId, line: &str) {
        let mut consoles = self.consoles.lock().expect("consoles lock");
        let console = consoles.entry(domid).or_default();
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        console.recent.extend(&bytes);
        let excess = console.recent.len().saturating_sub(KEEP_BYTES);
        console.recent.drain(..excess);
        console.followers.retain_mut(|f| f.offer(&bytes));
    }

    /// The recent output and a reader's end of what comes next.
    pub fn follow(&self, domid: DomId) -> (Vec<u8>, Following) {
        let (tx, rx) = sync_channel(FOLLOWER_LINES);
        let missed = Arc::new(AtomicUsize::new(0));
        let mut consoles = self.consoles.lock().expect("consoles lock");
        let console = consoles.entry(domid).or_default();
        console.followers.push(Follower {
            tx,
            missed: Arc::clone(&missed),
        });
        let following = Following { lines: rx, missed };
        (console.recent.iter().copied().collect(), following)
    }

    /// Drops a destroyed domain's console; its followers see the end.
    pub fn close(&self, domid: DomId) {
        self.consoles.lock().expect("consoles lock").remove(&domid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_falls_behind_misses_lines_and_is_told_how_many_bytes() {
        let consoles = Consoles::default();
        let (recent, following) = consoles.follow(1);
        let rx = following.lines;
        assert!(recent.is_empty());
        for i in 0..FOLLOWER_LINES + 100 {
            consoles.line(1, &format!("line {i:04}"));
        }
        let got: Vec<Vec<u8>> = rx.try_iter().collect();
        assert_eq!(got.len(), FOLLOWER_LINES, "the channel holds what it holds");
        consoles.line(1, "after");
        let notice = String::from_utf8(rx.try_recv().unwrap()).unwrap();
        assert!(
            notice.contains("1000 bytes of console output missed"),
            "100 lines of 10 bytes: {notice:?}"
        );
        assert_eq!(rx.try_recv().unwrap(), b"after\n");
        let kept = consoles.follow(1).0;
        assert!(kept.len() <= KEEP_BYTES);
    }
}
