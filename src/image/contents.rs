//! What an image holds for a model: its `python3`'s version and installed distributions, learned
//! once per image by running `python3` in a throwaway container (no network, nothing mounted,
//! removed after), and kept in the user's cache under the image's id: an unchanged image costs
//! nothing, a changed one about a second.

use std::path::PathBuf;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;

use super::build::inspect_local;
use super::engine::{engine_error, Engine};
use crate::model_fit::{normalize, ImageFacts};

/// Prints `{"python": "3.11.2", "packages": {"xgboost": "3.2.0", ...}}`.
const PROBE: &str = "import json, sys\nimport importlib.metadata as m\nprint(json.dumps({'python': sys.version.split()[0], 'packages': {d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}}))";

/// What `image` (a local reference) holds; None when the engine does not have it.
pub async fn facts(engine: &Engine, image: &str) -> anyhow::Result<Option<ImageFacts>> {
    let Some(inspected) = inspect_local(engine, image).await? else {
        return Ok(None);
    };
    let id = inspected.id.unwrap_or_default();
    let cached = cache_file(&id);
    if let Some(facts) = cached
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<ImageFacts>(&b).ok())
    {
        return Ok(Some(facts));
    }
    let facts = probe(engine, &id).await?;
    if let Some(path) = cached {
        // A cache that cannot be written only costs the next run the probe again.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(bytes) = serde_json::to_vec(&facts) {
            let _ = std::fs::write(&path, bytes);
        }
    }
    Ok(Some(facts))
}

/// `$XDG_CACHE_HOME/mldeploy/image-facts/<id>.json` (or under `~/.cache`).
fn cache_file(id: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let name = id.trim_start_matches("sha256:");
    (!name.is_empty()).then(|| {
        base.join("mldeploy/image-facts")
            .join(format!("{name}.json"))
    })
}

/// Runs the probe in a container of the image; an image without a working `python3` has no
/// Python and no packages.
async fn probe(engine: &Engine, id: &str) -> anyhow::Result<ImageFacts> {
    let body = ContainerCreateBody {
        image: Some(id.to_string()),
        entrypoint: Some(vec!["python3".into(), "-c".into(), PROBE.into()]),
        cmd: Some(Vec::new()),
        network_disabled: Some(true),
        labels: Some(std::collections::HashMap::from([(
            "mldeploy.probe".to_string(),
            "image-contents".to_string(),
        )])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .map_err(|e| {
            engine_error(
                e,
                engine,
                "creating a container to read the image's packages",
            )
        })?;
    let id = created.id;
    let result = run(engine, &id).await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = engine.docker.remove_container(&id, Some(remove)).await;
    result
}

async fn run(engine: &Engine, id: &str) -> anyhow::Result<ImageFacts> {
    if engine.docker.start_container(id, None).await.is_err() {
        return Ok(ImageFacts::default()); // no python3 to start
    }
    let mut waits = engine.docker.wait_container(id, None);
    let mut code = None;
    while let Some(next) = waits.next().await {
        match next {
            Ok(w) => code = Some(w.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = Some(c),
            Err(e) => return Err(engine_error(e, engine, "waiting for the image's python3")),
        }
    }
    if code != Some(0) {
        return Ok(ImageFacts::default());
    }
    let options = LogsOptionsBuilder::default().stdout(true).build();
    let mut logs = engine.docker.logs(id, Some(options));
    let mut out = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
    }
    let parsed: ImageFacts = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    Ok(ImageFacts {
        python: parsed.python,
        packages: parsed
            .packages
            .into_iter()
            .map(|(name, version)| (normalize(&name), version))
            .collect(),
    })
}
