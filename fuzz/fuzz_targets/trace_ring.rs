//! A guest's trace ring as `hypd` reads it: bytes the guest wrote as it
//! liked (header, records, session words), collected for the session the
//! session byte names, then joined into journeys and analysed as `xl
//! trace` does. Reading must stay inside the ring and keep only records
//! whose party and step fit the ring, and the analysis must answer, with
//! an analysis or an error, whatever the records say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::control::{RingDump, TraceDump};
use protocol::trace::{Party, TraceRing, HEADER_BYTES};

fuzz_target!(|data: &[u8]| {
    let Some((&session, bytes)) = data.split_first() else {
        return;
    };
    // The ring's memory: the fuzzer's bytes, in an 8-byte aligned buffer
    // at least a header long.
    let words = bytes.len().max(HEADER_BYTES).div_ceil(8);
    let mut memory = vec![0u64; words];
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        memory[i] = u64::from_le_bytes(word);
    }
    // SAFETY: the vector is 8-byte aligned, `words * 8` bytes long, and
    // outlives the ring, which nothing else uses.
    let ring = unsafe { TraceRing::new(memory.as_mut_ptr().cast(), words as u64 * 8) };
    let session = u32::from(session);
    let got = ring.collect(session, Party::Guest);
    assert!(got.records.len() <= ring.capacity() as usize);
    let dump = TraceDump {
        domid: 1,
        name: "fuzz".into(),
        vdev: "xvda".into(),
        kind: "vbd".into(),
        placement: "service-vm".into(),
        device: got.records.first().map_or(0, |r| r.data[0]),
        tsc_khz: 2_300_000,
        requested: 1000,
        timed_out: false,
        stopped: false,
        rings: vec![RingDump {
            party: Party::Guest,
            records: got.records,
            dropped: got.dropped,
            invalid: got.invalid,
        }],
    };
    if let Ok(analysis) = toolstack::trace::analyse(&dump) {
        let _ = toolstack::trace::svg(&analysis);
    }
});
