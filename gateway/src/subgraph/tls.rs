//! TLS to `https://` subgraphs: the rustls client configuration (ring's
//! cryptography) a subgraph's [`SubgraphOptions`] make. The subgraph's
//! certificate is verified against the system's root certificates plus the
//! subgraph's CA file, for the host its URL names; a client certificate is
//! presented when the subgraph asks (mutual TLS); `h2` and `http/1.1` are
//! offered by ALPN (`h2` alone when the subgraph speaks HTTP/2 only).
//!
//! Every file is read and checked when the options are turned into a
//! configuration (at start and on a supergraph reload, so renewed
//! certificates are picked up then), each problem naming its setting.

use std::{
    path::Path,
    sync::{Arc, OnceLock},
};

use rustls::{
    ClientConfig, RootCertStore,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::{CertifiedKey, SingleCertAndKey},
};

use crate::subgraph::options::{Field, OptionsError, SubgraphOptions};

/// The ALPN protocol of HTTP/2.
pub const H2: &[u8] = b"h2";

/// The system's root certificates, read once, when the first TLS
/// configuration is made (a gateway without `https://` subgraphs never
/// reads them). A system without any leaves the store empty: only
/// subgraphs with a CA file can then be verified (a warning says so).
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if !found.errors.is_empty() || ignored > 0 {
            tracing::warn!(
                added,
                ignored,
                errors = ?found.errors,
                "some of the system's root certificates could not be read"
            );
        }
        if added == 0 {
            tracing::warn!(
                "no system root certificates found (install ca-certificates): \
                 https:// subgraphs are verified only with their SUBGRAPH_CA_FILES"
            );
        }
        roots
    })
}

/// The TLS configuration of a subgraph reached with `options`.
pub fn client_config(options: &SubgraphOptions) -> Result<Arc<ClientConfig>, OptionsError> {
    let mut roots = system_roots().clone();
    if let Some(path) = &options.ca_file {
        for cert in certificates(path, Field::CaFile)? {
            roots.add(cert).map_err(|e| {
                OptionsError::new(
                    Field::CaFile,
                    format!("{}: not a CA certificate: {e}", path.display()),
                )
            })?;
        }
    }
    let provider = Arc::new(ring_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| OptionsError::new(Field::CaFile, e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&options.client_cert, &options.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => builder.with_client_cert_resolver(Arc::new(
            SingleCertAndKey::from(certified_key(cert, key, &provider)?),
        )),
        (Some(_), None) => {
            return Err(OptionsError::new(
                Field::ClientKey,
                "not set for a subgraph with a client certificate: set both or neither",
            ));
        }
        (None, Some(_)) => {
            return Err(OptionsError::new(
                Field::ClientCert,
                "not set for a subgraph with a client key: set both or neither",
            ));
        }
    };
    config.alpn_protocols = if options.http2 {
        vec![H2.to_vec()]
    } else {
        vec![H2.to_vec(), b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// rustls' cryptography from ring. rustls 0.23.48 deprecated it for its
/// lack of post-quantum key exchange (aws-lc-rs has it); ring is chosen all
/// the same, as aws-lc-rs needs cmake and builds for minutes. Classical
/// X25519/ECDHE is what the subgraph connection gets.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The client certificate chain in `cert` with the private key in `key`,
/// refused unless the key is the certificate's.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, OptionsError> {
    let chain = certificates(cert, Field::ClientCert)?;
    let der = PrivateKeyDer::from_pem_slice(&read(key, Field::ClientKey)?).map_err(|e| {
        OptionsError::new(
            Field::ClientKey,
            format!("{}: no PEM private key: {e}", key.display()),
        )
    })?;
    let signing = provider.key_provider.load_private_key(der).map_err(|e| {
        OptionsError::new(
            Field::ClientKey,
            format!("{}: not a usable private key: {e}", key.display()),
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // A key whose public half the provider cannot tell is taken on trust.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(OptionsError::new(
            Field::ClientKey,
            format!(
                "{} is not the key of the certificate in {}",
                key.display(),
                cert.display()
            ),
        )),
        Err(e) => Err(OptionsError::new(
            Field::ClientCert,
            format!("{}: not a certificate: {e}", cert.display()),
        )),
    }
}

/// The PEM certificates in the file at `path` (at least one).
fn certificates(path: &Path, field: Field) -> Result<Vec<CertificateDer<'static>>, OptionsError> {
    let pem = read(path, field)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            OptionsError::new(field, format!("{}: unreadable PEM: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(OptionsError::new(
            field,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

/// The bytes of the file at `path`.
fn read(path: &Path, field: Field) -> Result<Vec<u8>, OptionsError> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(OptionsError::new(
            field,
            format!("{:?}: a path with a NUL byte", path.display()),
        ));
    }
    std::fs::read(path)
        .map_err(|e| OptionsError::new(field, format!("{}: cannot be read: {e}", path.display())))
}
