//! Native TLS (`[server.tls]`): wss:// and https:// on the one listener, with rustls
//! on the aws-lc-rs provider. Most sites terminate TLS at a reverse proxy; this is for
//! those that do not.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls.cert {path}: {message}")]
    Cert { path: String, message: String },
    #[error("server.tls.key {path}: {message}")]
    Key { path: String, message: String },
    #[error("server.tls: the certificate and key do not fit together: {0}")]
    Mismatch(rustls::Error),
}

pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certs(&config.cert)?;
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|e| TlsError::Key {
        path: config.key.display().to_string(),
        message: format!("no readable PEM private key ({e})"),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Mismatch)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |message: String| TlsError::Cert {
        path: path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(format!("cannot read ({e})")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("not a PEM certificate chain ({e})")))?;
    if certs.is_empty() {
        return Err(error("holds no certificate".into()));
    }
    Ok(certs)
}
