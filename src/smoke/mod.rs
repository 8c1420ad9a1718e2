//! The smoke test through the load balancer: after a deployment, GET `service.ready_path` at the
//! service's URL, then send the `[smoke]` request when one is configured, and decide whether the
//! service really answers.
//!
//! A new load balancer's DNS name can take minutes to resolve and a new target a moment to take
//! traffic, so connection errors and 502/503/504 answers are retried until the deadline; an
//! answer that is wrong (another status, a body that should be JSON and is not) fails at once.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::config::Smoke;
use crate::exit::{self, ExitStatus};
use crate::output::Printer;

mod proxy;
#[cfg(test)]
mod proxy_tests;
mod route;

use proxy::{Proxies, ProxyConnector};
pub use route::Via;
use route::{certificate_problem, ViaResolver};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between tries of a request that is not answered yet.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// How much of a wrong answer's body goes into the error.
const BODY_EXCERPT: usize = 200;

/// One request of the smoke test and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokeCheck {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub millis: u64,
}

/// A request to send and what must come back.
#[derive(Debug, Clone)]
pub struct SmokeRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    pub expect_status: u16,
}

impl SmokeRequest {
    /// GET of the readiness path: any 2xx.
    pub fn ready(path: &str) -> SmokeRequest {
        SmokeRequest {
            method: Method::GET,
            path: path.to_string(),
            body: None,
            expect_status: 200,
        }
    }

    /// The `[smoke]` request of mldeploy.toml.
    pub fn configured(smoke: &Smoke) -> anyhow::Result<SmokeRequest> {
        Ok(SmokeRequest {
            method: Method::from_bytes(smoke.method.as_bytes())
                .with_context(|| format!("smoke.method {:?}", smoke.method))?,
            path: smoke.path.clone(),
            body: smoke.body.clone(),
            expect_status: smoke.expect_status,
        })
    }

    fn body_is_json(&self) -> bool {
        self.body
            .as_deref()
            .is_some_and(|b| serde_json::from_str::<serde_json::Value>(b).is_ok())
    }
}

/// What one try got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// No answer: DNS, connection or timeout, in words.
    Unreachable(String),
    /// The connection was refused over the service's TLS certificate, in words.
    Untrusted(String),
    Http {
        status: u16,
        content_type: Option<String>,
        body: String,
    },
}

/// The `model_path` a readiness answer names, when it is JSON that names one (the example
/// app's `/ready` does): what the app itself says it serves.
pub fn model_named(body: &str) -> Option<String> {
    let answer: serde_json::Value = serde_json::from_str(body).ok()?;
    answer.get("model_path")?.as_str().map(str::to_string)
}

/// What to do with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Pass,
    /// Not (yet) right, and may come right: try again until the deadline.
    Retry(String),
    /// Wrong, and waiting will not help.
    Fail(String),
}

/// Judges one answer to `request`. The readiness GET passes on any 2xx and retries anything else
/// (a service may be healthy before it is ready); the configured request must get exactly its
/// status, and JSON back when it sent JSON or the answer says it is JSON.
pub fn judge(request: &SmokeRequest, answer: &Answer, is_ready_check: bool) -> Judgement {
    match answer {
        Answer::Unreachable(why) => Judgement::Retry(why.clone()),
        Answer::Untrusted(why) => Judgement::Fail(why.clone()),
        Answer::Http {
            status,
            content_type,
            body,
        } => {
            let said = format!("answered {status}{}", excerpt(body));
            if is_ready_check {
                return if (200..300).contains(status) {
                    Judgement::Pass
                } else {
                    Judgement::Retry(said)
                };
            }
            if *status != request.expect_status {
                return if matches!(status, 502..=504) {
                    Judgement::Retry(said)
                } else {
                    Judgement::Fail(format!("{said}, expected {}", request.expect_status))
                };
            }
            let says_json = content_type
                .as_deref()
                .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
            if (says_json || request.body_is_json())
                && request.method != Method::HEAD
                && serde_json::from_str::<serde_json::Value>(body).is_err()
            {
                return Judgement::Fail(format!(
                    "answered {status} but the body is not JSON{}",
                    excerpt(body)
                ));
            }
            Judgement::Pass
        }
    }
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let cut: String = body.chars().take(BODY_EXCERPT).collect();
    let more = if cut.len() < body.len() { "…" } else { "" };
    format!(": {cut}{more}")
}

/// An HTTP(S) client for the service's URL: rustls with the system's roots, through the hyper
/// stack the AWS SDK already brings, and through the proxies the environment names.
pub struct Prober {
    client: Client<
        hyper_rustls::HttpsConnector<ProxyConnector<HttpConnector<ViaResolver>>>,
        Full<Bytes>,
    >,
    proxies: Proxies,
    /// A header every request carries: the one a blue/green deployment's test listener rule
    /// routes on, to reach the new revision.
    header: Option<(String, String)>,
}

impl Prober {
    /// A client that connects where names resolve, except `via`'s host: to its load balancer.
    pub fn new(via: Option<Via>) -> anyhow::Result<Prober> {
        Prober::through(via, Proxies::from_env())
    }

    /// The same, through `proxies` rather than the environment's.
    fn through(via: Option<Via>, proxies: Proxies) -> anyhow::Result<Prober> {
        let mut http = HttpConnector::new_with_resolver(ViaResolver::new(via));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .context("cannot load this machine's TLS root certificates for the smoke test")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector::new(http, proxies.clone()));
        Ok(Prober {
            client: Client::builder(TokioExecutor::new()).build(https),
            proxies,
            header: None,
        })
    }

    /// The same client, with `name: value` on every request.
    pub fn with_header(via: Option<Via>, name: &str, value: &str) -> anyhow::Result<Prober> {
        Ok(Prober {
            header: Some((name.to_string(), value.to_string())),
            ..Prober::new(via)?
        })
    }

    /// Sends one request; any failure to get an answer is an [`Answer::Unreachable`].
    pub async fn send(&self, url: &str, request: &SmokeRequest) -> Answer {
        let mut builder = Request::builder()
            .method(request.method.clone())
            .uri(url)
            .header(USER_AGENT, concat!("mldeploy/", env!("CARGO_PKG_VERSION")));
        if let Some((name, value)) = &self.header {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(auth) = url
            .parse()
            .ok()
            .and_then(|uri| self.proxies.authorization(&uri))
        {
            builder = builder.header(hyper::header::PROXY_AUTHORIZATION, auth);
        }
        if request.body.is_some() {
            let kind = if request.body_is_json() {
                "application/json"
            } else {
                "text/plain"
            };
            builder = builder.header(CONTENT_TYPE, kind);
        }
        let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
        let built = match builder.body(body) {
            Ok(r) => r,
            Err(e) => return Answer::Unreachable(format!("cannot make a request to {url}: {e}")),
        };
        let exchange = async {
            let response = self.client.request(built).await?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: Bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, content_type, body))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Err(_) => {
                Answer::Unreachable(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
            }
            Ok(Err(e)) => match certificate_problem(e.as_ref()) {
                Some(why) => Answer::Untrusted(why),
                None => Answer::Unreachable(crate::aws::cause_chain(e.as_ref())),
            },
            Ok(Ok((status, content_type, body))) => Answer::Http {
                status: status.as_u16(),
                content_type,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
        }
    }
}

/// Runs the smoke test against `base_url`: the readiness GET, then the configured request.
/// Exit 1 with what was sent and what came back when it fails; each passing request is printed.
pub async fn run(
    base_url: &str,
    via: Option<&Via>,
    ready_path: &str,
    smoke: Option<&Smoke>,
    deadline: Duration,
    printer: &Printer,
) -> anyhow::Result<Vec<SmokeCheck>> {
    let prober = Prober::new(via.cloned())?;
    run_through(&prober, base_url, ready_path, smoke, deadline, printer).await
}

/// [`run`], with a given client (one that sends the test route's header, say).
pub async fn run_through(
    prober: &Prober,
    base_url: &str,
    ready_path: &str,
    smoke: Option<&Smoke>,
    deadline: Duration,
    printer: &Printer,
) -> anyhow::Result<Vec<SmokeCheck>> {
    let start = Instant::now();
    let mut requests = vec![(SmokeRequest::ready(ready_path), true)];
    if let Some(smoke) = smoke {
        requests.push((SmokeRequest::configured(smoke)?, false));
    }
    let mut checks = Vec::new();
    for (request, is_ready_check) in requests {
        let url = format!("{}{}", base_url.trim_end_matches('/'), request.path);
        let what = format!("{} {url}", request.method);
        loop {
            let sent = Instant::now();
            let answer = prober.send(&url, &request).await;
            let millis = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
            match judge(&request, &answer, is_ready_check) {
                Judgement::Pass => {
                    let status = match answer {
                        Answer::Http { status, .. } => status,
                        Answer::Unreachable(_) | Answer::Untrusted(_) => 0,
                    };
                    printer.info(format!(
                        "Smoke test: {what} -> {} ({millis} ms)",
                        status_text(status)
                    ));
                    checks.push(SmokeCheck {
                        method: request.method.to_string(),
                        url: url.clone(),
                        status,
                        millis,
                    });
                    break;
                }
                Judgement::Fail(why) => {
                    return Err(exit::error(
                        ExitStatus::Failed,
                        format!("smoke test failed: {what} {why}"),
                    ))
                }
                Judgement::Retry(why) => {
                    if start.elapsed() + RETRY_PAUSE >= deadline {
                        return Err(exit::error(
                            ExitStatus::Failed,
                            format!(
                                "smoke test failed: {what} did not answer as expected within {}s; last: {why}",
                                deadline.as_secs()
                            ),
                        ));
                    }
                    printer.detail(format!("smoke test: {what}: {why}; trying again"));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
    Ok(checks)
}

fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// A fresh value for a test route's header (the ECS test listener rule, the Docker proxy's
/// candidate route): 128 bits from the standard library's randomly keyed
/// hasher (its keys come from the operating system's random source).
pub fn route_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (0..2u64)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            format!("{:016x}", h.finish())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, content_type: Option<&str>, body: &str) -> Answer {
        Answer::Http {
            status,
            content_type: content_type.map(str::to_string),
            body: body.to_string(),
        }
    }

    fn predict() -> SmokeRequest {
        SmokeRequest {
            method: Method::POST,
            path: "/predict".into(),
            body: Some(r#"{"features": [[1.0]]}"#.into()),
            expect_status: 200,
        }
    }

    #[test]
    fn the_ready_check_waits_for_any_2xx() {
        let ready = SmokeRequest::ready("/ready");
        assert_eq!(judge(&ready, &http(204, None, ""), true), Judgement::Pass);
        assert!(matches!(
            judge(&ready, &http(503, None, "loading model"), true),
            Judgement::Retry(w) if w == "answered 503: loading model"
        ));
        assert!(matches!(
            judge(&ready, &Answer::Unreachable("dns error".into()), true),
            Judgement::Retry(_)
        ));
    }

    #[test]
    fn a_prediction_must_get_its_status_and_json() {
        let req = predict();
        assert_eq!(
            judge(
                &req,
                &http(200, Some("application/json"), r#"{"prediction": 4.5}"#),
                false
            ),
            Judgement::Pass
        );
        assert!(matches!(
            judge(&req, &http(200, Some("text/html"), "<html>oops</html>"), false),
            Judgement::Fail(w) if w.contains("body is not JSON: <html>oops</html>")
        ));
        assert!(matches!(
            judge(&req, &http(500, None, "Traceback"), false),
            Judgement::Fail(w) if w == "answered 500: Traceback, expected 200"
        ));
    }

    #[test]
    fn gateway_errors_are_retried_not_failed() {
        for status in [502, 503, 504] {
            assert!(matches!(
                judge(&predict(), &http(status, None, ""), false),
                Judgement::Retry(_)
            ));
        }
    }

    #[test]
    fn long_bodies_are_cut_in_errors() {
        let body = "x".repeat(1000);
        let Judgement::Fail(why) = judge(&predict(), &http(500, None, &body), false) else {
            panic!()
        };
        assert!(why.len() < 300 && why.contains('…'), "{why}");
    }
}
