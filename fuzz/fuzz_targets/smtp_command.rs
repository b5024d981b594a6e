//! One command line into the SMTP command parser: never panics, whatever
//! the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let _ = ferrymail_proto::smtp::command::parse(line);
});
