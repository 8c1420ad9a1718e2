//! `mldeploy run` on a Docker host: the command once in a container of the serving release's
//! image, with its environment and on its network, its output printed as it comes; the
//! container is removed afterwards (and on Ctrl-C), whatever the command did.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::containers::{self, Spec, PROJECT_LABEL, ROLE_LABEL};
use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};

/// What the command's container is, to `containers::containers` (which skips it: it is not a
/// release) and to `destroy` (which removes one a crash left behind).
pub const RUN_ROLE: &str = "run";

/// What the command's container is made of: a release's image, environment and network.
#[derive(Debug, Clone)]
pub struct Like {
    pub image: String,
    pub env: Vec<String>,
    pub network: Option<String>,
}

impl Like {
    /// Container `id`'s environment and network (the serving release's, or a worker's), with
    /// `image`.
    pub async fn of(engine: &Engine, id: &str, image: &str) -> anyhow::Result<Like> {
        let inspect = engine
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error(e, engine, "inspecting the serving container"))?;
        Ok(Like {
            image: image.to_string(),
            env: inspect.config.and_then(|c| c.env).unwrap_or_default(),
            network: inspect.host_config.and_then(|h| h.network_mode),
        })
    }
}

/// Runs `command` in a container made `like` a release, printing each line with `line`;
/// returns the container's name and the command's exit code. Past `timeout` the container is
/// removed and the run fails (exit 1).
pub async fn run(
    engine: &Engine,
    project: &str,
    like: &Like,
    command: &[String],
    timeout: Duration,
    line: &mut dyn FnMut(&str),
) -> anyhow::Result<(String, i32)> {
    let name = format!(
        "{project}-run-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let body = ContainerCreateBody {
        image: Some(like.image.clone()),
        cmd: Some(command.to_vec()),
        env: Some(like.env.clone()),
        labels: Some(HashMap::from([
            (PROJECT_LABEL.to_string(), project.to_string()),
            (ROLE_LABEL.to_string(), RUN_ROLE.to_string()),
        ])),
        host_config: Some(HostConfig {
            network_mode: like.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| engine_error(e, engine, &format!("creating container {name}")))?;
    let undo = crate::undo::Undo::begin();
    {
        let (engine, id) = (engine.clone(), created.id.clone());
        undo.push(format!("removed container {name}"), move || async move {
            containers::remove(&engine, &id).await
        });
    }
    let ran = tokio::time::timeout(timeout, run_created(engine, &created.id, &name, line)).await;
    let removed = containers::remove(engine, &created.id).await;
    undo.finish();
    let code = match ran {
        Ok(code) => code?,
        Err(_) => {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the command had not ended after --timeout {}, so its container {name} was removed; raise --timeout for a longer one",
                    crate::targets::ecs::watcher::human_duration(timeout)
                ),
            ))
        }
    };
    removed?;
    Ok((name, code))
}

/// Starts the created container, prints its output as it comes, and returns its exit code.
async fn run_created(
    engine: &Engine,
    id: &str,
    name: &str,
    line: &mut dyn FnMut(&str),
) -> anyhow::Result<i32> {
    engine
        .docker
        .start_container(id, None)
        .await
        .map_err(|e| engine_error(e, engine, &format!("starting container {name}")))?;
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(true)
        .build();
    let mut logs = engine.docker.logs(id, Some(options));
    let mut partial = String::new();
    while let Some(chunk) = logs.next().await {
        let chunk = chunk.map_err(|e| engine_error(e, engine, "reading the command's output"))?;
        partial.push_str(&chunk.to_string());
        while let Some(end) = partial.find('\n') {
            let text: String = partial.drain(..=end).collect();
            line(text.trim_end_matches(['\n', '\r']));
        }
    }
    if !partial.is_empty() {
        line(&partial);
    }
    let options = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let mut waited = engine.docker.wait_container(id, Some(options));
    match waited.next().await {
        Some(Ok(answer)) => Ok(i32::try_from(answer.status_code).unwrap_or(1)),
        // bollard reports a non-zero exit status as this error, with the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
            Ok(i32::try_from(code).unwrap_or(1))
        }
        Some(Err(e)) => Err(engine_error(e, engine, &format!("waiting for {name}"))),
        None => Err(anyhow::anyhow!(
            "the engine ended the wait for {name} without its exit code"
        )),
    }
}

/// `[deploy] release_command` on a Docker host: run once in a container of the new release
/// (`spec`'s image, environment and network) before it replaces the serving one. When it fails,
/// nothing is replaced and the error has its last lines.
pub async fn release_command(
    engine: &Engine,
    project: &str,
    spec: &Spec,
    command: &[String],
    timeout: Duration,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    let shown = command.join(" ");
    printer.info(format!(
        "Running the release command `{shown}` with {} before it serves",
        spec.image
    ));
    let like = Like {
        image: spec.image.clone(),
        env: spec.env.clone(),
        network: spec.network.clone(),
    };
    let mut last: Vec<String> = Vec::new();
    let mut line = |text: &str| {
        printer.info(format!("  | {text}"));
        last.push(text.to_string());
        if last.len() > 10 {
            last.remove(0);
        }
    };
    let (name, code) = run(engine, project, &like, command, timeout, &mut line)
        .await
        .map_err(|e| {
            e.context(format!(
                "the release command `{shown}` did not finish, so nothing was replaced"
            ))
        })?;
    if code == 0 {
        return Ok(());
    }
    let tail = last.join("\n  ");
    Err(exit::error(
        ExitStatus::Failed,
        format!("the release command `{shown}` exited with code {code} (container {name}), so nothing was replaced: the serving container still serves; its last lines:\n  {tail}"),
    ))
}

/// (id, name) of the project's one-off containers still there: a `run` killed before it could
/// remove its own (`destroy` removes them before the network they are on).
pub async fn leftovers(engine: &Engine, project: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(containers::in_role(
        engine,
        project,
        RUN_ROLE,
        "listing the project's one-off containers",
    )
    .await?
    .into_iter()
    .filter_map(|c| {
        let name = c.names?.first()?.trim_start_matches('/').to_string();
        Some((c.id?, name))
    })
    .collect())
}
