//! TLS for the shared journal's connections, with libpq's parameters and meanings, so that a
//! URL that works with `psql` works here:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default), `allow` | when the server offers it | not checked |
//! | `require` | always | not checked; with `sslrootcert`, checked as `verify-ca` (as libpq does) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root, and for the host connected to |
//!
//! The trusted roots are the PEM file `sslrootcert` names, or Mozilla's (`webpki-roots`) without
//! it or with `sslrootcert=system`. tokio-postgres knows neither `verify-*` nor `sslrootcert`,
//! so both are taken out of the URL here, before it reads the rest. "Not checked" is libpq's
//! choice too: the connection is encrypted, but a server in the middle would not be noticed;
//! use `verify-full` across networks you do not trust.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a URL asks of TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// `sslmode`, as libpq names it.
    pub(crate) mode: Mode,
    /// `sslrootcert`: a PEM file of trusted roots, or `None` for Mozilla's.
    pub(crate) root_cert: Option<PathBuf>,
}

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of `url`'s query: the settings, and the URL that
    /// tokio-postgres reads. An error names the parameter and never repeats the URL.
    pub(crate) fn split(url: &str) -> Result<(Self, String), String> {
        let mut settings = Self {
            mode: Mode::Prefer,
            root_cert: None,
        };
        let Some((base, query)) = url.split_once('?') else {
            return Ok((settings, url.to_owned()));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    settings.mode = match decode(value)?.as_str() {
                        "disable" => Mode::Disable,
                        "allow" | "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(format!(
                                "sslmode={other}: expected disable, allow, prefer, require, \
                                 verify-ca or verify-full"
                            ));
                        }
                    }
                }
                "sslrootcert" => {
                    let path = decode(value)?;
                    settings.root_cert = match path.as_str() {
                        "" => return Err("sslrootcert: empty".into()),
                        "system" => None,
                        _ => Some(PathBuf::from(path)),
                    };
                }
                _ => kept.push(pair),
            }
        }
        // libpq: with a root certificate, `require` checks the chain as `verify-ca` does.
        if settings.mode == Mode::Require && settings.root_cert.is_some() {
            settings.mode = Mode::VerifyCa;
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((settings, url))
    }

    /// The mode tokio-postgres negotiates with.
    pub(crate) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector, or `None` for `disable`. Reads `sslrootcert` (an error names the file).
    pub(crate) fn connector(&self) -> Result<Option<MakeRustlsConnect>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let algorithms = provider.signature_verification_algorithms;
        let chain = match self.mode {
            Mode::Disable => return Ok(None),
            Mode::Prefer | Mode::Require => None,
            Mode::VerifyCa | Mode::VerifyFull => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider)
                    .build()
                    .map_err(|e| format!("TLS: {e}"))?,
            ),
        };
        let config = match chain {
            Some(webpki) if self.mode == Mode::VerifyFull => builder.with_webpki_verifier(webpki),
            chain => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient { chain, algorithms })),
        };
        Ok(Some(MakeRustlsConnect::new(config.with_no_client_auth())))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let Some(path) = &self.root_cert else {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        };
        let named = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| named(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| named(&e))?;
        if certificates.is_empty() {
            return Err(named(&"no PEM certificate in it"));
        }
        let mut roots = RootCertStore::empty();
        for certificate in certificates {
            roots.add(certificate).map_err(|e| named(&e))?;
        }
        Ok(roots)
    }
}

fn decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a bad %-escape in the URL's sslmode or sslrootcert")?;
                out.push(hex);
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "sslmode or sslrootcert is not UTF-8".into())
}

/// What libpq checks of the server's certificate short of `verify-full`: with `chain`
/// (`verify-ca`), that it reaches a trusted root, whatever name it carries; without
/// (`prefer`, `require`), nothing. The handshake's signatures are checked against the
/// certificate either way, so the session is encrypted to its holder.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_are_taken_out_of_the_url() {
        let (settings, url) =
            TlsSettings::split("postgres://u@h/db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(settings.mode, Mode::VerifyFull);
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        let (settings, url) =
            TlsSettings::split("postgres://u@h/db?sslrootcert=%2Ftmp%2Fca.pem&sslmode=require")
                .unwrap();
        assert_eq!(
            settings,
            TlsSettings {
                mode: Mode::VerifyCa,
                root_cert: Some("/tmp/ca.pem".into())
            },
            "require with a root certificate checks the chain, as libpq does"
        );
        assert_eq!(url, "postgres://u@h/db");
        let (settings, url) = TlsSettings::split("postgres://u:secret@h/db").unwrap();
        assert_eq!(settings.mode, Mode::Prefer, "libpq's default");
        assert_eq!(url, "postgres://u:secret@h/db");
        let error = TlsSettings::split("postgres://u:secret@h/db?sslmode=on").unwrap_err();
        assert!(
            error.contains("sslmode=on") && !error.contains("secret"),
            "{error}"
        );
    }

    #[test]
    fn a_root_certificate_file_that_cannot_be_read_is_named() {
        let settings = TlsSettings {
            mode: Mode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        let error = settings.connector().err().unwrap();
        assert!(
            error.starts_with("sslrootcert /nonexistent/ca.pem:"),
            "{error}"
        );
    }
}
