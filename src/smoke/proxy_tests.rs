//! The smoke test's client against sockets of this test: HTTPS through a proxy.

use std::sync::Arc;

use hyper_util::client::proxy::matcher::Matcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::proxy::Proxies;
use super::*;

/// HTTPS through a proxy: a CONNECT to the origin carrying the proxy's credentials, then TLS
/// inside the tunnel (the origin's first byte is a TLS handshake record, 0x16).
#[tokio::test]
async fn https_goes_through_a_connect_tunnel_with_the_proxys_credentials() {
    let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_port = origin.local_addr().unwrap().port();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    let proxy_side = tokio::spawn(async move {
        let (mut client, _) = proxy.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(client.read_u8().await.unwrap());
        }
        let mut upstream = TcpStream::connect(("127.0.0.1", origin_port))
            .await
            .unwrap();
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        String::from_utf8(head).unwrap()
    });
    let origin_side = tokio::spawn(async move {
        let (mut stream, _) = origin.accept().await.unwrap();
        stream.read_u8().await.unwrap()
    });
    let matcher = Matcher::builder()
        .https(format!("http://user:pass@127.0.0.1:{proxy_port}"))
        .build();
    let prober = Prober::through(None, Proxies(Arc::new(matcher))).unwrap();
    let answer = prober
        .send(
            &format!("https://127.0.0.1:{origin_port}/ready"),
            &SmokeRequest::ready("/ready"),
        )
        .await;
    // The origin speaks no TLS back: no answer, but the handshake went through the tunnel.
    assert!(!matches!(answer, Answer::Http { .. }), "{answer:?}");
    // Bounded: a client that bypassed the proxy would leave the proxy waiting forever.
    let within = std::time::Duration::from_secs(5);
    let head = tokio::time::timeout(within, proxy_side)
        .await
        .expect("the proxy was never asked")
        .unwrap();
    assert_eq!(
        tokio::time::timeout(within, origin_side)
            .await
            .unwrap()
            .unwrap(),
        0x16
    );
    assert!(
        head.starts_with(&format!("CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\n")),
        "{head}"
    );
    // base64("user:pass")
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic dxnlcjpwyxnz"),
        "{head}"
    );
}
