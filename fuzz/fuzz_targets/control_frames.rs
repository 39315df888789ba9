//! Bytes from a client of the control socket: decoding must give a
//! request or an error, never panic or allocate what was not sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::control::{read_frame, write_frame, Request, Response};

fuzz_target!(|data: &[u8]| {
    // A stream of frames, as hypd reads them, until the first error.
    let mut input = data;
    for _ in 0..16 {
        match read_frame::<Request>(&mut input) {
            Ok(request) => {
                // What decodes must encode and decode to the same.
                let mut bytes = Vec::new();
                write_frame(&mut bytes, &request).unwrap();
                let again: Request = read_frame(&mut bytes.as_slice()).unwrap();
                assert_eq!(format!("{request:?}"), format!("{again:?}"));
            }
            Err(_) => break,
        }
    }
    // And the replies, as xl reads them.
    let _ = read_frame::<Response>(&mut &data[..]);
});
