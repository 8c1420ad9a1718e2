//! Whether a Docker-target release came up: its readiness answer, asked from outside the
//! container, and the ways it can fail early (it exited or keeps restarting, with its exit code
//! and last lines; it listens on loopback only, which no one outside it can reach).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::containers::last_lines;
use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};
use crate::smoke::{Answer, Prober, SmokeRequest};

/// Waits until the container answers `ready_path` with 2xx on `port`. Fails at once when it
/// exits (with its last lines) or when it listens on loopback only, which no one outside it
/// can reach; fails at the deadline saying what it last saw.
pub async fn wait_ready(
    engine: &Engine,
    id: &str,
    base_url: &str,
    ready_path: &str,
    container_port: u16,
    deadline: Duration,
) -> anyhow::Result<()> {
    wait_ready_through(
        &Prober::new(None)?,
        engine,
        id,
        base_url,
        ready_path,
        container_port,
        deadline,
    )
    .await
}

/// [`wait_ready`] with a given client: one that sends the proxy's release header, say.
pub async fn wait_ready_through(
    prober: &Prober,
    engine: &Engine,
    id: &str,
    base_url: &str,
    ready_path: &str,
    container_port: u16,
    deadline: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let url = format!("{base_url}{ready_path}");
    let request = SmokeRequest::ready(ready_path);
    loop {
        let inspect = engine
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error(e, engine, "inspecting the new container"))?;
        let state = inspect.state.clone().unwrap_or_default();
        // A container that was restarted shows exit code 0 while it runs again: its last exit's
        // code is in the engine's events.
        let last_exit = match inspect.restart_count.unwrap_or(0) > 0 {
            true => last_exit_code(engine, id, inspect.created.as_deref()).await,
            false => None,
        };
        if let Some(exited) = exited_before_ready(&inspect, last_exit) {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the new container {exited} before it was ready; its last lines:\n{}",
                    last_lines(engine, id).await
                ),
            ));
        }
        let answer = prober.send(&url, &request).await;
        // Nothing answers on the port (directly), or the proxy cannot reach the app (502): an
        // app bound to loopback inside its container is the likely reason, and can be read.
        let unanswered = matches!(
            answer,
            Answer::Unreachable(_) | Answer::Http { status: 502, .. }
        );
        if let Some(listening) = state
            .pid
            .filter(|_| unanswered && engine.socket_path().is_some())
            .and_then(|pid| loopback_only(pid, container_port))
        {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the app listens on {listening} inside the container, so nothing outside the container can reach it: bind 0.0.0.0:{container_port} instead (uvicorn: --host 0.0.0.0; Flask: app.run(host=\"0.0.0.0\"))"
                ),
            ));
        }
        let last = match answer {
            Answer::Http { status, .. } if (200..300).contains(&status) => return Ok(()),
            // The candidate is asked over plain HTTP: no certificate comes into it.
            Answer::Untrusted(why) => why,
            Answer::Http { status, body, .. } => {
                format!("GET {url} answered {status}: {}", body.trim())
            }
            Answer::Unreachable(why) => format!("GET {url}: {why}"),
        };
        if start.elapsed() >= deadline {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the new container was not ready within {}s; last: {last}; its last lines:\n{}",
                    deadline.as_secs(),
                    last_lines(engine, id).await
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How a new container that is not up and steady went down, if it did: it stopped, or it
/// exited and its restart policy started it again. A container under `unless-stopped` looks
/// running between restarts (Running stays true while Restarting is set), so the engine's
/// restart count and Restarting flag say what "running" alone hides: a new container has
/// restarted only if its process ended.
/// `last_exit` is the code of its last exit when known from the engine's events.
pub fn exited_before_ready(
    inspect: &bollard::models::ContainerInspectResponse,
    last_exit: Option<i64>,
) -> Option<String> {
    let state = inspect.state.as_ref()?;
    let restarts = inspect.restart_count.unwrap_or(0);
    let restarting = state.restarting == Some(true);
    let running = state.running == Some(true);
    if running && !restarting && restarts == 0 {
        return None;
    }
    let code = last_exit.or(state.exit_code).unwrap_or_default();
    let oom = if state.oom_killed == Some(true) {
        ", killed for using more than its memory limit"
    } else {
        ""
    };
    Some(if restarts > 0 || restarting {
        format!(
            "exited (exit code {code}{oom}) and was restarted {} time(s): it is crash-looping",
            restarts.max(1)
        )
    } else {
        format!("exited (exit code {code}{oom})")
    })
}

/// The exit code of the container's last exit, from the engine's `die` events since it was
/// created (`created`, RFC 3339); None when the engine keeps no such event.
async fn last_exit_code(engine: &Engine, id: &str, created: Option<&str>) -> Option<i64> {
    let since = created
        .and_then(|c| humantime::parse_rfc3339(c).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs().saturating_sub(1))
        .unwrap_or(0);
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs()
        + 1;
    let options = bollard::query_parameters::EventsOptions {
        since: Some(since.to_string()),
        until: Some(until.to_string()),
        filters: Some(HashMap::from([
            ("container".to_string(), vec![id.to_string()]),
            ("event".to_string(), vec!["die".to_string()]),
        ])),
    };
    let mut events = engine.docker.events(Some(options));
    let mut code = None;
    while let Some(Ok(event)) = events.next().await {
        code = event
            .actor
            .and_then(|a| a.attributes)
            .and_then(|a| a.get("exitCode").and_then(|c| c.parse().ok()))
            .or(code);
    }
    code
}

/// When the process `pid` listens on `port` on a loopback address only, that address. Read from
/// the host's /proc, so it works whatever the image holds (a local engine only).
pub fn loopback_only(pid: i64, port: u16) -> Option<String> {
    let mut text = String::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            text.push_str(&t);
        }
    }
    listening_on_loopback_only(&text, port)
}

/// The same, over the text of /proc/net/tcp and tcp6 (tested on its own).
pub fn listening_on_loopback_only(tables: &str, port: u16) -> Option<String> {
    let port_hex = format!("{port:04X}");
    let mut loopback = None;
    for line in tables.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st ...; st 0A is LISTEN.
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        let Some((addr, p)) = local.split_once(':') else {
            continue;
        };
        if *state != "0A" || p != port_hex {
            continue;
        }
        match addr {
            "0100007F" => loopback = Some(format!("127.0.0.1:{port}")),
            "00000000000000000000000001000000" => loopback = Some(format!("[::1]:{port}")),
            _ => return None, // listening on a reachable address too
        }
    }
    loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    #[test]
    fn a_crash_looping_container_that_looks_running_is_caught() {
        use bollard::models::{ContainerInspectResponse, ContainerState};
        let inspect = |running, restarting, restarts, exit_code| ContainerInspectResponse {
            state: Some(ContainerState {
                running: Some(running),
                restarting: Some(restarting),
                exit_code: Some(exit_code),
                ..Default::default()
            }),
            restart_count: Some(restarts),
            ..Default::default()
        };
        assert_eq!(exited_before_ready(&inspect(true, false, 0, 0), None), None);
        // Between restarts the engine reports Running with Restarting set.
        assert_eq!(
            exited_before_ready(&inspect(true, true, 1, 3), None).as_deref(),
            Some("exited (exit code 3) and was restarted 1 time(s): it is crash-looping")
        );
        // Restarted and up again for the moment (exit code 0 while it runs): still a crash
        // loop, with the code of its last exit from the engine's events.
        assert_eq!(
            exited_before_ready(&inspect(true, false, 2, 0), Some(3)).as_deref(),
            Some("exited (exit code 3) and was restarted 2 time(s): it is crash-looping")
        );
        assert_eq!(
            exited_before_ready(&inspect(false, false, 0, 1), None).as_deref(),
            Some("exited (exit code 1)")
        );
    }

    #[test]
    fn a_listener_on_loopback_only_is_found() {
        let tables = format!("{HEADER}   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n");
        assert_eq!(
            listening_on_loopback_only(&tables, 8080),
            Some("127.0.0.1:8080".into())
        );
        assert_eq!(
            listening_on_loopback_only(&tables, 80),
            None,
            "another port"
        );
    }

    #[test]
    fn a_listener_on_every_address_is_reachable() {
        let tables = format!(
            "{HEADER}   0: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 1\n   1: 00000000:1F90 00000000:0000 0A 0 0 0 0 0 2\n"
        );
        assert_eq!(listening_on_loopback_only(&tables, 8080), None);
    }
}
