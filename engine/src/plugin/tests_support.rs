//! Helpers shared by the sandbox tests and the ABI fuzzing.

use super::*;
use crate::store::{sled::SledStore, Durability};

/// A manifest with one action `go`, plugin id `wat`.
pub const MANIFEST: &str = r#"{"id":"wat","version":"1.0.0","abi":1,"actions":[{"name":"go"}]}"#;

/// A host on a throw-away store with tight limits (300 ms, 8 MiB).
pub fn host() -> (tempfile::TempDir, Arc<PluginHost>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SledStore::open(dir.path(), 8 << 20, Durability::None).expect("store"));
    let config = PluginConfig { timeout_ms: 300, memory_mb: 8, table_elements: 1000, ..PluginConfig::default() };
    let host = PluginHost::new(
        config,
        store,
        net::Net::new(Default::default()),
        directory::Directories::new(Default::default()),
    )
    .expect("host");
    (dir, host)
}
