//! TLS for PostgreSQL connections: rustls with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// A connector that trusts Mozilla's root certificates, the operating system's when
/// `system_roots` is set, and the CA certificates in `ca_file`.
pub(crate) fn connector(
    ca_file: Option<&Path>,
    system_roots: bool,
) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if system_roots {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why = found
                .errors
                .first()
                .map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(StoreError::Configuration(format!(
                "cannot load the operating system's root certificates: {why}"
            )));
        }
        // Certificates the platform holds but rustls cannot parse are skipped, as browsers do.
        roots.add_parsable_certificates(found.certs);
    }
    if let Some(path) = ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            StoreError::Configuration(format!(
                "cannot read CA certificates from `{}`: {e}",
                path.display()
            ))
        };
        let mut added = 0;
        for certificate in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
            roots
                .add(certificate.map_err(|e| bad(&e))?)
                .map_err(|e| bad(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(&"the file holds no certificate"));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Configuration(format!("TLS setup failed: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
