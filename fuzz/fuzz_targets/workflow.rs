//! Workflow JSON parsing and validation: any bytes get an answer (a workflow or errors
//! with JSON pointers), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = switchboard::workflow::validate_str(text) {
            for e in errors {
                assert!(e.pointer.is_empty() || e.pointer.starts_with('/'), "{}", e.pointer);
            }
        }
    }
});
