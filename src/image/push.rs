//! `mldeploy push`: the project's image into its ECR repository, built only when needed and
//! pushed only when ECR does not already hold it.

use futures_util::StreamExt;
use serde::Serialize;

use super::build::{self, short_id};
use super::ecr::{self, Repository};
use super::engine::{engine_error, Engine};
use super::platform::{self, Platform};
use super::push_stream::{classify_push_error, layer_outcome, push_messages, LayerTally};
use crate::aws::Aws;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::output::{human_bytes, Printer};

/// What `push` did; `--output json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// `<repositoryUri>:<tag>@<digest>`: the reference to deploy.
    pub image: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// False when ECR already held this image and nothing was sent.
    pub pushed: bool,
    /// Whether an image was built by this run.
    pub built: bool,
    pub repository_created: bool,
    pub layers_pushed: usize,
    pub layers_existing: usize,
    pub bytes_pushed: u64,
    pub git_commit: Option<String>,
    /// What the image was built for: `linux/amd64`.
    pub platform: Platform,
}

impl std::fmt::Display for PushReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.image)
    }
}

/// Why a push can be skipped, decided before anything is built or sent.
#[derive(Debug, PartialEq, Eq)]
enum PushAction {
    /// ECR holds this tag and the local image is that very image.
    Skip { digest: String },
    /// ECR holds this tag and there is no local image: the tag is the context's content hash, so
    /// ECR's image was built from this exact context.
    SkipNoLocal { digest: String },
    /// Build if needed, then push.
    Push { build: bool },
}

fn decide(
    ecr_digest: Option<String>,
    local_digests: Option<Vec<String>>,
    uri: &str,
    rebuild: bool,
) -> PushAction {
    match (ecr_digest, local_digests) {
        (Some(digest), Some(repo_digests))
            if !rebuild && repo_digests.contains(&format!("{uri}@{digest}")) =>
        {
            PushAction::Skip { digest }
        }
        (Some(digest), None) if !rebuild => PushAction::SkipNoLocal { digest },
        (_, local) => PushAction::Push {
            build: rebuild || local.is_none(),
        },
    }
}

/// Builds when needed and pushes. `accept` sees the image's platform once it is known (built,
/// local, or read from the registry) and before anything in AWS changes: a target refuses there
/// an image it cannot run.
pub async fn push(
    engine: &Engine,
    aws: &Aws,
    config: &Config,
    printer: &Printer,
    rebuild: bool,
    accept: &dyn Fn(&str, &Platform) -> anyhow::Result<()>,
) -> anyhow::Result<PushReport> {
    let plan = build::plan(config).await?;
    let client = aws.ecr();
    let found = ecr::describe(&client, &config.project.name).await?;
    let ecr_digest = match &found {
        Some(_) => ecr::digest_for_tag(&client, &config.project.name, &plan.tag).await?,
        None => None,
    };
    let found_uri = found
        .as_ref()
        .map(|(uri, _)| uri.clone())
        .unwrap_or_default();
    let local_image = build::inspect_local(engine, &plan.local_ref).await?;
    // The registry digests the engine knows for the local image; None when there is no local image.
    let local = local_image
        .as_ref()
        .map(|image| image.repo_digests.clone().unwrap_or_default());
    let local_platform = local_image.as_ref().and_then(Platform::of_local);

    let (local_ref, tag, git_commit) = (
        plan.local_ref.clone(),
        plan.tag.clone(),
        plan.git_commit.clone(),
    );
    let action = decide(ecr_digest, local, &found_uri, rebuild);
    // What is to be pushed, and its platform, before anything in AWS changes.
    let (platform, built) = match &action {
        PushAction::Skip { .. } | PushAction::Push { build: false } => {
            let platform = local_platform.ok_or_else(|| {
                exit::error(
                    ExitStatus::Failed,
                    format!("the engine has no platform recorded for {local_ref}: rebuild it with --rebuild"),
                )
            })?;
            (platform, false)
        }
        PushAction::SkipNoLocal { digest } => {
            let login = ecr::registry_login(&client).await?;
            let platform =
                platform::of_remote(engine, &format!("{found_uri}@{digest}"), &login).await?;
            (platform, false)
        }
        PushAction::Push { build: true } => {
            let built = build::build(engine, config, plan, printer).await?;
            (built.platform, true)
        }
    };
    accept(&local_ref, &platform)?;

    let repo = ecr::ensure_repository(
        &client,
        &config.project.name,
        found,
        config.image.keep_images,
        printer,
    )
    .await?;
    let report = |digest: String, pushed: bool, tally: &LayerTally| PushReport {
        image: format!("{}:{tag}@{digest}", repo.uri),
        repository: repo.uri.clone(),
        tag: tag.clone(),
        digest,
        pushed,
        built,
        repository_created: repo.created,
        layers_pushed: tally.pushed_layers(),
        layers_existing: tally.existing_layers(),
        bytes_pushed: tally.pushed_bytes(),
        git_commit: git_commit.clone(),
        platform: platform.clone(),
    };

    match action {
        PushAction::Skip { digest } => {
            printer.info(format!(
                "ECR already has {}:{tag} with digest {digest}: nothing to push",
                repo.uri
            ));
            return Ok(report(digest, false, &LayerTally::default()));
        }
        PushAction::SkipNoLocal { digest } => {
            printer.info(format!(
                "ECR already has {}:{tag} ({digest}, {platform}), built from this exact context: nothing to build or push",
                repo.uri
            ));
            return Ok(report(digest, false, &LayerTally::default()));
        }
        PushAction::Push { .. } if !built => printer.info(format!(
            "Using the local image {local_ref} (the context is unchanged)"
        )),
        PushAction::Push { .. } => {}
    }

    let tag_options = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(&repo.uri)
        .tag(&tag)
        .build();
    engine
        .docker
        .tag_image(&local_ref, Some(tag_options))
        .await
        .map_err(|e| engine_error(e, engine, "tagging the image for ECR"))?;

    let login = ecr::registry_login(&client).await?;
    printer.info(format!("Pushing {}:{tag}", repo.uri));
    let (digest, tally) = stream_push(engine, &repo, &tag, &login, printer).await?;
    printer.info(format!(
        "Pushed {} new layer(s), {} ({} already in ECR)",
        tally.pushed_layers(),
        human_bytes(tally.pushed_bytes()),
        tally.existing_layers()
    ));
    Ok(report(digest, true, &tally))
}

async fn stream_push(
    engine: &Engine,
    repo: &Repository,
    tag: &str,
    login: &ecr::RegistryLogin,
    printer: &Printer,
) -> anyhow::Result<(String, LayerTally)> {
    let mut messages = push_messages(engine, &repo.uri, tag, login).await?;
    let mut board = printer.layers();
    let mut tally = LayerTally::default();
    let mut digest = None;
    let mut failure = None;
    // Read to the end: a refused layer or manifest arrives as a message, not as the call's result.
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                board.finish();
                return Err(e);
            }
        };
        if let Some(error) = message.error_message() {
            failure = Some(error);
            continue;
        }
        if let Some(d) = message.digest() {
            digest = Some(d);
        }
        let status = message.status.as_deref().unwrap_or("");
        let total = message.progress.as_ref().and_then(|p| p.total);
        match message.id.as_deref() {
            // The first line names the repository and carries the tag as its id: not a layer.
            Some(id) if id != tag && !status.starts_with("The push refers") => {
                let current = message.progress.as_ref().and_then(|p| p.current);
                board.update(id, status, current, total, layer_outcome(status).is_some());
                tally.record(id, status, total);
            }
            _ => printer.detail(status),
        }
    }
    board.finish();
    if let Some(error) = failure {
        return Err(exit::error(
            classify_push_error(&error),
            format!("pushing {}:{tag} failed: {error}", repo.uri),
        ));
    }
    let digest = digest.ok_or_else(|| {
        exit::error(
            ExitStatus::Failed,
            format!(
                "the engine finished pushing {}:{tag} without reporting a digest",
                repo.uri
            ),
        )
    })?;
    printer.detail(format!("digest {} ({})", digest, short_id(&digest)));
    Ok((digest, tally))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "123.dkr.ecr.us-east-1.amazonaws.com/p";

    #[test]
    fn an_image_ecr_already_holds_is_not_pushed_again() {
        let local = Some(vec![format!("{URI}@sha256:aa")]);
        assert_eq!(
            decide(Some("sha256:aa".into()), local.clone(), URI, false),
            PushAction::Skip {
                digest: "sha256:aa".into()
            }
        );
        assert_eq!(
            decide(Some("sha256:aa".into()), local, URI, true),
            PushAction::Push { build: true }
        );
    }

    #[test]
    fn a_local_image_that_differs_from_ecrs_is_pushed_without_rebuilding() {
        let local = Some(vec![format!("{URI}@sha256:bb")]);
        assert_eq!(
            decide(Some("sha256:aa".into()), local, URI, false),
            PushAction::Push { build: false }
        );
    }

    #[test]
    fn without_a_local_image_the_content_tag_in_ecr_is_enough() {
        assert_eq!(
            decide(Some("sha256:aa".into()), None, URI, false),
            PushAction::SkipNoLocal {
                digest: "sha256:aa".into()
            }
        );
        assert_eq!(
            decide(None, None, URI, false),
            PushAction::Push { build: true }
        );
        assert_eq!(
            decide(None, Some(vec![]), URI, false),
            PushAction::Push { build: false }
        );
    }
}
