//! Outbound proxies for mldeploy's own HTTP requests (the smoke test, the model gate, MLflow's
//! API), read from the environment as the AWS SDK and curl read them: `HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, in either case (hyper-util's matcher, the one the
//! SDK's own client uses). HTTPS goes through a CONNECT tunnel; plain HTTP is sent to the proxy
//! in absolute form. A proxy's `user:password@` becomes its `Proxy-Authorization`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::header::HeaderValue;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::proxy::matcher::Matcher;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxies the environment names, shared by a client's connector and its requests.
#[derive(Clone)]
pub struct Proxies(pub(super) Arc<Matcher>);

impl Proxies {
    pub fn from_env() -> Proxies {
        Proxies(Arc::new(Matcher::from_env()))
    }

    /// The `Proxy-Authorization` a plain-HTTP request to `url` carries through its proxy (a
    /// tunnel sends its own in the CONNECT).
    pub fn authorization(&self, url: &Uri) -> Option<HeaderValue> {
        if url.scheme_str() != Some("http") {
            return None;
        }
        self.0.intercept(url)?.basic_auth().cloned()
    }
}

/// Connects directly, through a tunnel, or to the proxy, as [`Proxies`] says for each URL.
#[derive(Clone)]
pub struct ProxyConnector<C> {
    inner: C,
    proxies: Proxies,
}

impl<C> ProxyConnector<C> {
    pub fn new(inner: C, proxies: Proxies) -> ProxyConnector<C> {
        ProxyConnector { inner, proxies }
    }
}

impl<C> Service<Uri> for ProxyConnector<C>
where
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Response: Read + Write + Connection + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = Conn<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxies.0.intercept(&dst);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            match intercept {
                None => Ok(Conn {
                    io: inner.call(dst).await.map_err(Into::into)?,
                    proxied: false,
                }),
                Some(proxy) if dst.scheme_str() == Some("https") => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), inner);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    let io = tunnel.call(dst).await.map_err(|e| -> BoxError {
                        format!("through the proxy {}: {e}", proxy.uri()).into()
                    })?;
                    Ok(Conn { io, proxied: false })
                }
                Some(proxy) => Ok(Conn {
                    io: inner.call(proxy.uri().clone()).await.map_err(Into::into)?,
                    proxied: true,
                }),
            }
        })
    }
}

/// A connection, saying whether it goes to a proxy that wants absolute-form requests.
pub struct Conn<T> {
    io: T,
    proxied: bool,
}

impl<T: Connection> Connection for Conn<T> {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl<T: Read + Unpin> Read for Conn<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Conn<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
