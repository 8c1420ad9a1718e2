//! Where the smoke test's requests go: to the load balancer itself, also when the service's URL
//! names its domain (SNI, Host and the certificate check use the domain; the connection goes to
//! the load balancer's addresses, so a DNS record not made or not propagated yet does not
//! matter), and what a refused certificate says.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Requests to `host` connect to `load_balancer`'s addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub host: String,
    pub load_balancer: String,
}

/// A DNS resolver that answers for [`Via`]'s host with the load balancer's addresses, and for
/// any other name as the system does.
#[derive(Debug, Clone, Default)]
pub struct ViaResolver {
    via: Option<Via>,
}

impl ViaResolver {
    pub fn new(via: Option<Via>) -> ViaResolver {
        ViaResolver { via }
    }
}

type Addresses = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for ViaResolver {
    type Response = Addresses;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addresses, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = match &self.via {
            Some(via) if via.host.eq_ignore_ascii_case(name.as_str()) => via.load_balancer.clone(),
            _ => name.as_str().to_string(),
        };
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(found.into_iter())
        })
    }
}

/// What was wrong with the certificate a connection was refused over, when that is why it
/// failed: waiting does not change a certificate, so the smoke test fails at once.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(problem)) = e.downcast_ref::<rustls::Error>()
        {
            return Some(match problem {
                rustls::CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => {
                    let names: Vec<&str> = presented.iter().map(|n| plain_name(n)).collect();
                    format!(
                        "the certificate it presented is for {}, not {}",
                        names.join(", "),
                        expected.to_str()
                    )
                }
                other => format!("its certificate was refused: {other}"),
            });
        }
        // An io::Error's source() is what it wraps' source, skipping the wrapped error itself
        // (tokio-rustls wraps rustls' error so, and hyper-rustls wraps that again).
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// `a.example.com` from webpki's `DnsName("a.example.com")`; other names as they are.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .unwrap_or(presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_mismatch_names_what_the_certificate_is_for() {
        let presented = vec!["DnsName(\"a.example.com\")".to_string()];
        let expected = rustls::pki_types::ServerName::try_from("b.example.com").unwrap();
        // As hyper-rustls reports it: tokio-rustls' io::Error, wrapped in another.
        let err = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
                expected,
                presented,
            }),
        ));
        let said = certificate_problem(&err).unwrap();
        assert_eq!(
            said,
            "the certificate it presented is for a.example.com, not b.example.com"
        );
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_problem(&plain), None);
    }
}
