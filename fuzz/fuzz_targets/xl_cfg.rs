//! xl.cfg text, as a user's file or a command-line override: the parser
//! must return a configuration or an error, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolstack::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The whole input as a file, and its last line as an override too.
    let overrides: Vec<String> = text.lines().last().map(String::from).into_iter().collect();
    let _ = config::parse("fuzz.cfg", &text, &[]);
    let _ = config::parse("fuzz.cfg", &text, &overrides);
    let _ = config::parse_disk_spec(&[text.to_string()]);
});
