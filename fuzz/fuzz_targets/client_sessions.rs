#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| push_bridge::fuzzing::client_sessions(data));
