//! Fuzz target `reassembly`: see `zk_wire_fuzz::reassembly` for the input format and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zk_wire_fuzz::reassembly::run(data));
