//! Webhook payload mapping: any mapping source applied to any payload, and any endpoint
//! definition checked, without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::webhook::{self, Endpoint, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Array(parts)) = serde_json::from_slice::<Value>(data) else { return };
    let payload = parts.get(1).cloned().unwrap_or(Value::Null);
    if let Some(Ok(source)) = parts.first().map(|s| serde_json::from_value::<Source>(s.clone())) {
        let _ = webhook::extract(&source, &payload);
    }
    if let Some(Ok(endpoint)) = parts.get(2).map(|e| serde_json::from_value::<Endpoint>(e.clone())) {
        let _ = endpoint.check();
    }
    let _ = webhook::new_ticket_object(payload.as_object().cloned().unwrap_or_default());
});
