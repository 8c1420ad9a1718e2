//! The engine's push endpoint, read message by message with each layer's id.
//!
//! bollard's typed `PushImageInfo` has no `id` field, so the layer a message is about would be
//! lost. Over a unix socket or plain TCP mldeploy therefore reads the same endpoint itself, as raw
//! JSON messages (hyper and hyperlocal are what bollard uses underneath). For engines behind TLS
//! it uses bollard's stream, and progress is shown without layer ids.

use std::collections::HashMap;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::ecr::RegistryLogin;
use super::engine::{engine_error, Engine};
use crate::exit::{self, Classify, ExitStatus};

/// One message of a push, as the engine sends it.
#[derive(Debug, Default, Deserialize)]
pub struct PushMessage {
    pub id: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "progressDetail")]
    pub progress: Option<Progress>,
    pub error: Option<String>,
    #[serde(rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    pub aux: Option<PushAux>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Progress {
    pub current: Option<u64>,
    pub total: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PushAux {
    #[serde(rename = "Digest")]
    pub digest: Option<String>,
}

impl PushMessage {
    pub fn error_message(&self) -> Option<String> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| self.error.clone())
    }

    /// The pushed manifest's digest: from `aux`, else from the status line
    /// `<tag>: digest: sha256:... size: N`.
    pub fn digest(&self) -> Option<String> {
        self.aux
            .as_ref()
            .and_then(|a| a.digest.clone())
            .or_else(|| {
                let status = self.status.as_deref()?;
                let rest = &status[status.find("digest: ")? + "digest: ".len()..];
                rest.split_whitespace().next().map(str::to_string)
            })
    }
}

/// `X-Registry-Auth`: the login as URL-safe base64 JSON, sent to the engine for this push only.
pub fn registry_auth_header(login: &RegistryLogin) -> String {
    let json = serde_json::json!({
        "username": login.username,
        "password": login.password,
        "serveraddress": login.server,
    });
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// Starts the push of `repository:tag` and returns the engine's messages as they arrive.
pub async fn push_messages(
    engine: &Engine,
    repository: &str,
    tag: &str,
    login: &RegistryLogin,
) -> anyhow::Result<std::pin::Pin<Box<dyn Stream<Item = anyhow::Result<PushMessage>> + Send>>> {
    let path = format!(
        "/v{}/images/{repository}/push?tag={tag}",
        engine.api_version
    );
    let auth = registry_auth_header(login);
    let response = if let Some(socket) = engine.socket_path() {
        let client: Client<_, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(hyperlocal::UnixConnector);
        let uri: hyper::Uri = hyperlocal::Uri::new(socket, &path).into();
        client.request(push_request(uri, &auth)?).await
    } else if let Some(base) = engine.http_address() {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("{base}{path}").parse()?;
        client.request(push_request(uri, &auth)?).await
    } else {
        return Ok(typed_messages(engine, repository, tag, login));
    };
    let response = response.classify_with(ExitStatus::Environment, || {
        format!(
            "pushing the image: lost the Docker engine at {}",
            engine.host
        )
    })?;

    let status = response.status();
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(exit::error(
            ExitStatus::Failed,
            format!("the engine refused to push {repository}:{tag} ({status}): {message}"),
        ));
    }

    // The body is newline-separated JSON; a message may span frames.
    let lines = futures_util::stream::unfold(
        (response.into_body(), BytesMut::new(), false),
        |(mut body, mut buf, mut done)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(pos + 1);
                    return Some((parse_line(&line), (body, buf, done)));
                }
                if done {
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let line = buf.split();
                    return Some((parse_line(&line), (body, buf, done)));
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => {
                        done = true;
                        buf.clear();
                        let err = anyhow::Error::new(e).context(exit::Classified {
                            status: ExitStatus::Environment,
                            message: "the push was cut off: the Docker engine went away"
                                .to_string(),
                        });
                        return Some((Err(err), (body, buf, done)));
                    }
                    None => done = true,
                }
            }
        },
    );
    Ok(Box::pin(lines.filter_map(|r| async move {
        match r {
            Ok(None) => None,
            Ok(Some(m)) => Some(Ok(m)),
            Err(e) => Some(Err(e)),
        }
    })))
}

fn push_request(uri: hyper::Uri, auth: &str) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    Ok(hyper::Request::post(uri)
        .header("Content-Type", "application/json")
        .header("X-Registry-Auth", auth)
        .body(Full::new(Bytes::new()))?)
}

fn parse_line(line: &[u8]) -> anyhow::Result<Option<PushMessage>> {
    let text = std::str::from_utf8(line).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("the engine sent a push message mldeploy cannot read ({e}): {text}")
    })?))
}

/// bollard's typed stream, for engines reached over TLS: the same messages without layer ids.
fn typed_messages(
    engine: &Engine,
    repository: &str,
    tag: &str,
    login: &RegistryLogin,
) -> std::pin::Pin<Box<dyn Stream<Item = anyhow::Result<PushMessage>> + Send>> {
    let credentials = bollard::auth::DockerCredentials {
        username: Some(login.username.clone()),
        password: Some(login.password.clone()),
        serveraddress: Some(login.server.clone()),
        ..Default::default()
    };
    let options = bollard::query_parameters::PushImageOptionsBuilder::default()
        .tag(tag)
        .build();
    let engine = engine.clone();
    let stream = engine
        .docker
        .clone()
        .push_image(repository, Some(options), Some(credentials));
    Box::pin(stream.map(move |item| {
        match item {
            Ok(info) => Ok(PushMessage {
                status: info.status,
                progress: info.progress_detail.map(|p| Progress {
                    current: p.current.and_then(|c| u64::try_from(c).ok()),
                    total: p.total.and_then(|t| u64::try_from(t).ok()),
                }),
                error_detail: info
                    .error_detail
                    .map(|d| ErrorDetail { message: d.message }),
                ..Default::default()
            }),
            Err(bollard::errors::Error::DockerStreamError { error }) => Ok(PushMessage {
                error: Some(error),
                ..Default::default()
            }),
            Err(e) => Err(engine_error(e, &engine, "pushing the image")),
        }
    }))
}

/// What a registry error means for the exit code: a refused login or an unreachable registry is
/// the environment (3); anything else is a failed push (1).
pub fn classify_push_error(message: &str) -> ExitStatus {
    let m = message.to_ascii_lowercase();
    let environment = [
        "unauthorized",
        "denied",
        "authentication required",
        "no basic auth credentials",
        "connection refused",
        "no such host",
        "i/o timeout",
        "x509",
        "certificate",
    ];
    if environment.iter().any(|e| m.contains(e)) {
        ExitStatus::Environment
    } else {
        ExitStatus::Failed
    }
}

/// How a layer's push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOutcome {
    Pushed,
    /// The registry had it already, in this repository or mounted from another.
    AlreadyThere,
}

/// The outcome a layer's status text tells, or None while it is still going.
pub fn layer_outcome(status: &str) -> Option<LayerOutcome> {
    match status {
        "Pushed" => Some(LayerOutcome::Pushed),
        s if s == "Layer already exists" || s.starts_with("Mounted from") => {
            Some(LayerOutcome::AlreadyThere)
        }
        _ => None,
    }
}

/// Layer sizes seen so far, for the summary line.
#[derive(Debug, Default)]
pub struct LayerTally {
    sizes: HashMap<String, u64>,
    pushed: Vec<String>,
    existing: Vec<String>,
}

impl LayerTally {
    pub fn record(&mut self, id: &str, status: &str, total: Option<u64>) {
        if let Some(total) = total {
            self.sizes.insert(id.to_string(), total);
        }
        let list = match layer_outcome(status) {
            Some(LayerOutcome::Pushed) => &mut self.pushed,
            Some(LayerOutcome::AlreadyThere) => &mut self.existing,
            None => return,
        };
        if !list.iter().any(|l| l == id) {
            list.push(id.to_string());
        }
    }

    pub fn pushed_layers(&self) -> usize {
        self.pushed.len()
    }

    pub fn existing_layers(&self) -> usize {
        self.existing.len()
    }

    pub fn pushed_bytes(&self) -> u64 {
        self.pushed.iter().filter_map(|id| self.sizes.get(id)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_comes_from_aux_or_from_the_status_line() {
        let m: PushMessage = serde_json::from_str(
            r#"{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:aa","Size":528}}"#,
        )
        .unwrap();
        assert_eq!(m.digest().as_deref(), Some("sha256:aa"));
        let m: PushMessage =
            serde_json::from_str(r#"{"status":"v1: digest: sha256:bb size: 528"}"#).unwrap();
        assert_eq!(m.digest().as_deref(), Some("sha256:bb"));
    }

    #[test]
    fn layer_messages_keep_their_id() {
        let m: PushMessage = serde_json::from_str(
            r#"{"status":"Pushing","progressDetail":{"current":512,"total":2048},"id":"7be2e609912c"}"#,
        )
        .unwrap();
        assert_eq!(m.id.as_deref(), Some("7be2e609912c"));
        assert_eq!(m.progress.unwrap().total, Some(2048));
    }

    #[test]
    fn registry_refusals_are_environment_errors() {
        assert_eq!(
            classify_push_error("unauthorized: authentication required"),
            ExitStatus::Environment
        );
        assert_eq!(classify_push_error("manifest invalid"), ExitStatus::Failed);
    }

    #[test]
    fn the_auth_header_is_url_safe_base64_json() {
        let login = RegistryLogin {
            username: "AWS".into(),
            password: "p?>".into(),
            server: "host".into(),
        };
        let header = registry_auth_header(&login);
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(header)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["password"], "p?>");
    }
}
