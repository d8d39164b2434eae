//! HTTPS: the server's certificate and key (`tls_cert`, `tls_key`, PEM), loaded at start
//! and again on SIGHUP — a renewed certificate (certbot, an internal CA) is picked up by
//! new connections without a restart; a file that does not load keeps the old one and
//! says why in the log. Connections established before keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The current certificate, replaced on reload.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

/// Reads the chain and key into a server configuration (HTTP/1.1 and HTTP/2 by ALPN).
fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    // ring, named here: more than one provider is linked in (through HTTP clients), and
    // the process default may not be installed yet when the server starts.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{} and its key: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Tls {
    /// Loads the certificate and key; an error names the file and the problem.
    pub fn new(cert: &Path, key: &Path) -> Result<Self, String> {
        let current = RwLock::new(load(cert, key)?);
        Ok(Self { cert: cert.to_path_buf(), key: key.to_path_buf(), current })
    }

    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Loads the files again; on failure the current certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = load(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads on every SIGHUP for as long as the process runs.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP: certificates are not reloaded");
                return;
            };
            let tls = self.clone();
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays"),
                    }
                }
            });
        }
    }
}
