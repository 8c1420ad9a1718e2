//! `mldeploy build`: the image for the project's context, tagged by the context's content hash,
//! built by the engine from a streamed tar, with the engine's steps shown as they come.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::ImageInspect;
use futures_util::StreamExt;
use serde::Serialize;

use super::context::{BuildContext, BuildInputs};
use super::engine::{engine_error, Engine};
use super::platform::Platform;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::output::{human_bytes, Printer};

pub const LABEL_PROJECT: &str = "mldeploy.project";
pub const LABEL_CONTEXT_HASH: &str = "mldeploy.context-hash";
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";

/// The image a context makes, before it is built: its tag and where it comes from.
#[derive(Debug)]
pub struct ImagePlan {
    pub context: BuildContext,
    /// `ctx-` and the first 16 hex digits of the content hash.
    pub tag: String,
    pub content_hash: String,
    /// The local reference: `<project>:<tag>`.
    pub local_ref: String,
    pub git_commit: Option<String>,
}

/// An image the engine has.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    /// `<project>:<tag>`
    pub image: String,
    pub tag: String,
    pub image_id: String,
    pub context_hash: String,
    pub context_files: usize,
    pub context_bytes: u64,
    pub git_commit: Option<String>,
    /// False when the engine already had this image and nothing was built.
    pub built: bool,
    /// What the image was built for, as the engine recorded it: `linux/amd64`.
    pub platform: Platform,
}

impl std::fmt::Display for BuiltImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.image)
    }
}

/// Scans and hashes the context (on the blocking pool: it reads every file), before deciding
/// whether to build.
pub async fn plan(config: &Config) -> anyhow::Result<ImagePlan> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || plan_now(&config)).await?
}

fn plan_now(config: &Config) -> anyhow::Result<ImagePlan> {
    let context = BuildContext::scan(&config.image.context, &config.image.dockerfile)?;
    let content_hash = context.content_hash(&BuildInputs {
        build_args: &config.image.build_args,
        platform: config.image.platform.as_deref(),
        target: config.image.target.as_deref(),
    })?;
    let tag = format!("ctx-{}", &content_hash[..16]);
    Ok(ImagePlan {
        local_ref: format!("{}:{tag}", config.project.name),
        tag,
        content_hash,
        git_commit: git_commit(&config.image.context),
        context,
    })
}

/// The engine's record of a local image, or None when it has no such reference.
pub async fn inspect_local(
    engine: &Engine,
    reference: &str,
) -> anyhow::Result<Option<ImageInspect>> {
    match engine.docker.inspect_image(reference).await {
        Ok(image) => Ok(Some(image)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(engine_error(e, engine, "inspecting the local image")),
    }
}

/// The platform the engine recorded for a local image.
pub async fn local_platform(engine: &Engine, reference: &str) -> anyhow::Result<Platform> {
    inspect_local(engine, reference)
        .await?
        .as_ref()
        .and_then(Platform::of_local)
        .ok_or_else(|| {
            exit::error(
                ExitStatus::Failed,
                format!("the engine has no platform recorded for {reference}"),
            )
        })
}

/// The platform a build is for, and where that comes from (for messages): `image.platform`,
/// else the engine's own.
pub async fn wanted_platform(
    engine: &Engine,
    config: &Config,
) -> anyhow::Result<(Platform, String)> {
    Ok(
        match config.image.platform.as_deref().and_then(Platform::parse) {
            Some(p) => (
                p,
                format!(
                    "image.platform = {}",
                    config.image.platform.as_deref().unwrap_or_default()
                ),
            ),
            None => {
                let native = engine.platform().await?;
                let asked = format!("the engine's own platform, {native}");
                (native, asked)
            }
        },
    )
}

/// Builds the plan's image, streaming the context and showing the engine's steps, and checks
/// that it is for the platform asked for: `image.platform`, else the engine's own. The engine's
/// classic builder does not tell platforms apart in its cache: it answers a build for one
/// platform with layers it built for another, or fails on them ("does not match the specified
/// platform"). Either is built once more without the cache, and refused when it persists.
pub async fn build(
    engine: &Engine,
    config: &Config,
    plan: ImagePlan,
    printer: &Printer,
) -> anyhow::Result<BuiltImage> {
    let (wanted, asked) = wanted_platform(engine, config).await?;
    let why = match build_once(engine, config, plan, printer, false).await {
        Ok(built) if built.platform.satisfies(&wanted) => return Ok(built),
        Ok(built) => format!("its build cache gave a {} image", built.platform),
        Err(e) if platform_refused(&e) => {
            "its build cache held layers of another platform".to_string()
        }
        Err(e) => return Err(e),
    };
    printer.info(format!(
        "Building for {asked}, the engine failed: {why} (its classic builder's cache does not tell platforms apart). Building again without the cache"
    ));
    let failed = match build_once(engine, config, self::plan(config).await?, printer, true).await {
        Ok(again) if again.platform.satisfies(&wanted) => return Ok(again),
        Ok(again) => format!("built a {} image instead", again.platform),
        Err(e) if platform_refused(&e) => format!("failed ({e:#})"),
        Err(e) => return Err(e),
    };
    Err(exit::error(
        ExitStatus::Usage,
        format!(
            "{asked}: the Docker engine at {} {failed}, so it cannot build this Dockerfile for {wanted}. Build where it can (a {wanted} machine, or BuildKit: `docker buildx build --platform {wanted}`), or change image.platform",
            engine.host
        ),
    ))
}

/// Whether the engine stopped a build because a layer it had was for another platform.
fn platform_refused(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains("does not match the specified platform")
}

async fn build_once(
    engine: &Engine,
    config: &Config,
    plan: ImagePlan,
    printer: &Printer,
    no_cache: bool,
) -> anyhow::Result<BuiltImage> {
    printer.info(format!(
        "Building {} from {} ({} files, {})",
        plan.local_ref,
        config.image.context.display(),
        plan.context.files,
        human_bytes(plan.context.bytes)
    ));
    let mut labels = HashMap::from([
        (LABEL_PROJECT.to_string(), config.project.name.clone()),
        (LABEL_CONTEXT_HASH.to_string(), plan.content_hash.clone()),
    ]);
    if let Some(commit) = &plan.git_commit {
        labels.insert(LABEL_REVISION.to_string(), commit.clone());
    }
    let build_args: HashMap<String, String> = config.image.build_args.clone().into_iter().collect();
    let mut options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .dockerfile(&plan.context.dockerfile)
        .t(&plan.local_ref)
        .rm(true)
        .forcerm(true)
        .nocache(no_cache)
        .buildargs(&build_args)
        .labels(&labels);
    if let Some(platform) = &config.image.platform {
        options = options.platform(platform);
    }
    if let Some(target) = &config.image.target {
        options = options.target(target);
    }

    let (files, bytes) = (plan.context.files, plan.context.bytes);
    let (tar, writer) = plan.context.into_tar_stream();
    let mut stream =
        engine
            .docker
            .build_image(options.build(), None, Some(bollard::body_stream(tar)));

    let line = printer.spinner();
    let mut step: Option<String> = None;
    let mut image_id: Option<String> = None;
    let mut failure: Option<String> = None;
    // Read the stream to its end: the engine reports a failed step inside it.
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    for l in text
                        .lines()
                        .map(str::trim_end)
                        .filter(|l| !l.trim().is_empty())
                    {
                        if l.starts_with("Step ") {
                            step = Some(l.to_string());
                            line.step(&format!("  {l}"));
                        } else {
                            line.note(l.trim());
                            printer.detail(l);
                        }
                    }
                }
                if let Some(id) = info.aux.and_then(|aux| aux.id) {
                    image_id = Some(id);
                }
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(detail);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => failure = Some(error),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                failure = Some(message)
            }
            Err(e) => {
                line.finish();
                return Err(engine_error(e, engine, "building the image"));
            }
        }
    }
    line.finish();
    let tar_result = writer.await;

    if let Some(message) = failure {
        let at = step.map(|s| format!(" at {s}")).unwrap_or_default();
        return Err(exit::error(
            ExitStatus::Failed,
            format!("the build failed{at}: {}", message.trim()),
        ));
    }
    // A context the engine could not be sent in full is a failed build even if the engine said nothing.
    tar_result.map_err(anyhow::Error::from).and_then(|r| r)?;

    let image_id = match image_id {
        Some(id) => id,
        None => inspect_local(engine, &plan.local_ref)
            .await?
            .and_then(|image| image.id)
            .ok_or_else(|| {
                exit::error(
                    ExitStatus::Failed,
                    format!(
                        "the engine finished without an image for {}",
                        plan.local_ref
                    ),
                )
            })?,
    };
    let platform = local_platform(engine, &plan.local_ref).await?;
    printer.info(format!(
        "Built {} ({}, {platform})",
        plan.local_ref,
        short_id(&image_id)
    ));
    Ok(BuiltImage {
        platform,
        image: plan.local_ref,
        tag: plan.tag,
        image_id,
        context_hash: plan.content_hash,
        context_files: files,
        context_bytes: bytes,
        git_commit: plan.git_commit,
        built: true,
    })
}

pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The commit of the git checkout the context is in, read from `.git` without running git.
fn git_commit(start: &Path) -> Option<String> {
    let mut dir = start.canonicalize().ok()?;
    loop {
        let git = dir.join(".git");
        if git.is_dir() {
            return resolve_head(&git);
        }
        if git.is_file() {
            // A worktree or submodule: `.git` names the real git directory.
            let text = std::fs::read_to_string(&git).ok()?;
            let target = text.strip_prefix("gitdir:")?.trim();
            return resolve_head(&dir.join(target));
        }
        dir = dir.parent()?.to_path_buf();
    }
}

fn resolve_head(git: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return Some(head.to_string());
    };
    let common = std::fs::read_to_string(git.join("commondir"))
        .map(|c| git.join(c.trim()))
        .unwrap_or_else(|_| git.to_path_buf());
    for base in [git, common.as_path()] {
        if let Ok(id) = std::fs::read_to_string(base.join(reference)) {
            return Some(id.trim().to_string());
        }
        if let Ok(packed) = std::fs::read_to_string(base.join("packed-refs")) {
            if let Some(id) = packed
                .lines()
                .find_map(|l| l.strip_suffix(reference).and_then(|p| p.strip_suffix(' ')))
            {
                return Some(id.to_string());
            }
        }
    }
    None // an unborn branch: no commit yet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_git_commit_is_read_from_loose_and_packed_refs() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let sub = dir.path().join("app");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(git_commit(&sub), None, "no commit on an unborn branch");

        std::fs::write(
            git.join("packed-refs"),
            "# pack-refs\nabc123 refs/heads/main\n",
        )
        .unwrap();
        assert_eq!(git_commit(&sub).as_deref(), Some("abc123"));
        std::fs::write(git.join("refs/heads/main"), "def456\n").unwrap();
        assert_eq!(git_commit(&sub).as_deref(), Some("def456"));
    }

    #[test]
    fn short_ids_drop_the_algorithm() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
