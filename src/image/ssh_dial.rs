//! An engine reached over ssh the way `docker -H ssh://user@host:port` reaches it: each connection
//! is the user's own `ssh` client (their config, agent and known hosts, never a prompt) running
//! `docker system dial-stdio` on the far side, with HTTP spoken over its standard input and output.
//!
//! bollard has an `ssh` feature, but 0.21 hands the destination to the openssh crate without its
//! `ssh://` scheme, so a port in the address (`ssh://vm:2222`) is taken as part of the host name;
//! the transport here is bollard's custom-transport hook around a hyper client, as its own are.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where an `ssh://[user@]host[:port]` address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshDestination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshDestination {
    pub fn parse(address: &str) -> Option<SshDestination> {
        let rest = address.strip_prefix("ssh://")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_string()), hostport),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port.parse().ok()?)),
            _ => (hostport, None),
        };
        if host.is_empty() {
            return None;
        }
        Some(SshDestination {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// The ssh arguments up to and including the host, as the docker CLI passes them.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args = vec![
            "-o".to_string(),
            "BatchMode=yes".to_string(),
            "-o".to_string(),
            "ConnectTimeout=30".to_string(),
            "-T".to_string(),
        ];
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--".to_string(), self.host.clone()]);
        args
    }

    /// How a user would try the same login by hand.
    pub fn by_hand(&self) -> String {
        let mut line = "ssh".to_string();
        if let Some(port) = self.port {
            line.push_str(&format!(" -p {port}"));
        }
        match &self.user {
            Some(user) => line.push_str(&format!(" {user}@{}", self.host)),
            None => line.push_str(&format!(" {}", self.host)),
        }
        line
    }

    /// What ssh itself says when it tries to run `docker version` there: the reason a
    /// connection failed (a refused port, a key the host does not take, an unknown host key).
    pub async fn diagnose(&self) -> String {
        let output = Command::new("ssh")
            .args(self.ssh_args())
            .args(["docker", "version", "--format", "{{.Server.APIVersion}}"])
            .stdin(Stdio::null())
            .output()
            .await;
        match output {
            Err(e) => format!("cannot run ssh: {e}"),
            Ok(out) if out.status.success() => "ssh logs in and docker answers there".to_string(),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stderr);
                let last = text.lines().rev().find(|l| !l.trim().is_empty());
                last.unwrap_or("ssh failed without saying why")
                    .trim()
                    .to_string()
            }
        }
    }
}

/// The ssh client's pipes as one duplex stream.
pub struct SshStream {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// The stream as hyper reads and writes it.
pub struct SshConnection(TokioIo<SshStream>);

impl hyper::rt::Read for SshConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for SshConnection {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Opens one ssh connection per HTTP connection the client pool asks for.
#[derive(Clone)]
pub struct SshConnector {
    args: Arc<Vec<String>>,
}

impl tower_service::Service<hyper::Uri> for SshConnector {
    type Response = SshConnection;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SshConnection>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: hyper::Uri) -> Self::Future {
        let args = self.args.clone();
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(args.iter())
                .args(["docker", "system", "dial-stdio"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            Ok(SshConnection(TokioIo::new(SshStream {
                _child: child,
                stdin,
                stdout,
            })))
        })
    }
}

/// The body type of bollard's requests, named through its public request type.
trait BodyOf {
    type Body;
}
impl<B> BodyOf for hyper::Request<B> {
    type Body = B;
}
type BollardBody = <bollard::BollardRequest as BodyOf>::Body;

/// A bollard client whose every connection is `ssh ... docker system dial-stdio`.
pub fn connect(
    destination: &SshDestination,
    timeout: u64,
) -> Result<bollard::Docker, bollard::errors::Error> {
    let connector = SshConnector {
        args: Arc::new(destination.ssh_args()),
    };
    let client: Arc<Client<SshConnector, BollardBody>> =
        Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    bollard::Docker::connect_with_custom_transport(
        move |request: bollard::BollardRequest| {
            let client = client.clone();
            async move { Ok(client.request(request).await?) }
        },
        Some("http://docker.engine"),
        timeout,
        bollard::API_DEFAULT_VERSION,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_give_user_host_and_port() {
        let d = SshDestination::parse("ssh://deploy@vm.example.com:2222").expect("parses");
        assert_eq!(d.user.as_deref(), Some("deploy"));
        assert_eq!(d.host, "vm.example.com");
        assert_eq!(d.port, Some(2222));
        assert_eq!(
            d.ssh_args()[5..],
            ["-l", "deploy", "-p", "2222", "--", "vm.example.com"]
        );
        assert_eq!(d.by_hand(), "ssh -p 2222 deploy@vm.example.com");
        let plain = SshDestination::parse("ssh://vm").expect("parses");
        assert_eq!((plain.user, plain.port), (None, None));
        assert!(SshDestination::parse("ssh://vm:notaport").is_none());
        assert!(SshDestination::parse("tcp://vm:2376").is_none());
    }
}
