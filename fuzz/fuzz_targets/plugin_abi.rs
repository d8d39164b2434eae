//! The plugin ABI boundary: the fuzzing guest (`switchboard::plugin::fuzz_guest`) runs
//! the fuzzer's bytes as host calls with arbitrary pointers, lengths, operations and
//! requests. Every call must end in an output or a plugin error, within its deadline,
//! and the host must keep serving.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use switchboard::plugin::directory::Directories;
use switchboard::plugin::fuzz_guest::{decode, encode, guest_wat};
use switchboard::plugin::net::Net;
use switchboard::plugin::{CallContext, PluginConfig, PluginHost};
use switchboard::store::{sled::SledStore, Durability};

const MANIFEST: &str = r#"{"id":"wat","version":"1.0.0","abi":1,"actions":[{"name":"go"}]}"#;

struct Fixture {
    rt: tokio::runtime::Runtime,
    host: Arc<PluginHost>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).unwrap());
        let config = PluginConfig { timeout_ms: 300, memory_mb: 8, table_elements: 1000, ..PluginConfig::default() };
        let host = rt.block_on(async {
            let host =
                PluginHost::new(config, store, Net::new(Default::default()), Directories::new(Default::default()))
                    .unwrap();
            host.install(&wat::parse_str(guest_wat(MANIFEST)).unwrap(), "fuzz", switchboard::plugin::Installer::Admin)
                .await
                .unwrap();
            host
        });
        Fixture { rt, host, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (program, status) = decode(data);
    f.rt.block_on(async {
        let ctx = || CallContext { ticket: Value::Null, idempotency_key: None };
        if let Err(e) = f.host.call("wat", "go", encode(&program, status), ctx()).await {
            assert!(!e.code.is_empty() && e.code.len() <= 64 && e.message.len() <= 4096, "{e:?}");
        }
        // Still serving: an empty program answers "no result" cleanly.
        let again = f.host.call("wat", "go", encode(&[], 0), ctx()).await;
        assert_eq!(again.unwrap_err().code, "protocol");
    });
});
