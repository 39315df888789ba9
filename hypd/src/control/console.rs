//! Console buffers: the recent output of each domain, replayed to `xl
//! console` and then followed live.

use protocol::domain::DomId;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

/// Bytes of recent output kept per domain.
const KEEP_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Console {
    recent: VecDeque<u8>,
    followers: Vec<Sender<Vec<u8>>>,
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
        console.followers.retain(|f| f.send(bytes.clone()).is_ok());
    }

    /// The recent output and a receiver of what comes next.
    pub fn follow(&self, domid: DomId) -> (Vec<u8>, Receiver<Vec<u8>>) {
        let (tx, rx) = channel();
        let mut consoles = self.consoles.lock().expect("consoles lock");
        let console = consoles.entry(domid).or_default();
        console.followers.push(tx);
        (console.recent.iter().copied().collect(), rx)
    }

    /// Drops a destroyed domain's console; its followers see the end.
    pub fn close(&self, domid: DomId) {
        self.consoles.lock().expect("consoles lock").remove(&domid);
    }
}
