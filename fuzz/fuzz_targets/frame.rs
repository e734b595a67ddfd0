//! Fuzz target `frame`: see `zk_wire_fuzz::frame` for the input format and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zk_wire_fuzz::frame::run(data));
