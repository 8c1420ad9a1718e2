//! `promote` on ECS: what serves healthy in one environment (its image, by digest, and its model)
//! read as the release to deploy in another, and that image put in the other's ECR repository.

use super::{releases, status};
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::copy::{self, Side};
use crate::image::ecr::{self, RegistryLogin};
use crate::image::platform::{for_fargate, Platform};
use crate::output::Printer;
use crate::reports::history::RegistryInfo;
use crate::session::Ctx;
use crate::targets::{Action, Change};

/// The release serving healthy in the environment promoted from.
#[derive(Debug)]
pub struct Promoted {
    /// The environment's name, and its stack.
    pub env: String,
    pub stack: String,
    pub revision: i32,
    /// Where its image is: registry host, repository, digest, and a tag it has there.
    pub registry: String,
    pub repository: String,
    pub digest: String,
    pub tag: String,
    pub platform: Platform,
    pub git_commit: Option<String>,
    pub model_version: Option<String>,
    /// None when the source serves no model.
    pub model_path: Option<String>,
    pub registry_model: Option<RegistryInfo>,
    /// The images of the source's workers that run one of their own, by worker name.
    pub workers: std::collections::BTreeMap<String, super::promote_workers::WorkerImage>,
    login: RegistryLogin,
}

impl Promoted {
    /// "staging (mlp-staging revision 4)": what history records.
    pub fn describe(&self) -> String {
        format!("{} ({} revision {})", self.env, self.stack, self.revision)
    }
}

/// What serves in `from` (environment `env`), refused unless it is healthy now and its image
/// is still in its ECR repository.
pub async fn source(from: &Ctx<'_>, env: &str) -> anyhow::Result<Promoted> {
    let aws = from.aws().await?;
    let (ecs, client) = (aws.ecs(), aws.ecr());
    let stack = from.project().to_string();
    let look = status::look(aws, &from.config).await?;
    if !look.healthy {
        return Err(exit::error(
            ExitStatus::Failed,
            format!(
                "{env} ({stack}) is not healthy: {}. promote deploys only what serves healthy; see `mldeploy status --env {env}`",
                look.reason.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    let crate::reports::status::StatusOn::Ecs(ecs_status) = &look.on else {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("{env} does not deploy to ECS"),
        ));
    };
    let serving = ecs_status.task_definition.clone();
    let revision = releases::describe(
        &ecs,
        serving.clone(),
        from.config.model_path_template(),
        Some(&serving),
    )
    .await?;
    let image = revision.release.image.clone().unwrap_or_default();
    let (registry, repository, digest) = split_image(&image).ok_or_else(|| {
        exit::error(
            ExitStatus::Usage,
            format!(
                "{env} runs {image:?}, which is not an ECR image by digest (<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:...): promote copies only such images"
            ),
        )
    })?;
    let tag = tag_of(&client, &repository, &digest).await?.ok_or_else(|| {
        exit::error(
            ExitStatus::Environment,
            format!(
                "{env} runs {image}, but ECR repository {repository} no longer holds it (its lifecycle policy may have expired it): deploy {env} again with `mldeploy up --env {env}`, then promote"
            ),
        )
    })?;
    let platform = Platform::parse(for_fargate(revision.spec.cpu_architecture()))
        .ok_or_else(|| anyhow::anyhow!("no platform for {}", revision.spec.cpu_architecture()))?;
    let workers =
        super::promote_workers::serving(&ecs, &client, &from.config, &ecs_status.workers, env)
            .await?;
    Ok(Promoted {
        env: env.to_string(),
        stack,
        revision: revision.release.revision,
        registry,
        repository,
        digest,
        tag,
        platform,
        git_commit: revision.release.git_commit,
        model_version: revision.release.model_version,
        model_path: revision.release.model_path,
        registry_model: revision.release.registry,
        workers,
        login: ecr::registry_login(&client).await?,
    })
}

/// `<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<hex>` -> its three parts.
pub(super) fn split_image(image: &str) -> Option<(String, String, String)> {
    let (name, digest) = image.split_once('@')?;
    let (registry, repository) = name.split_once('/')?;
    let repository = repository.split(':').next()?;
    let ecr_host = registry.contains(".dkr.ecr.") && registry.ends_with(".amazonaws.com");
    let sha = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    (ecr_host && sha && !repository.is_empty()).then(|| {
        (
            registry.to_string(),
            repository.to_string(),
            digest.to_string(),
        )
    })
}

/// A tag the repository has for `digest` (the content tag `up` pushed it with), or a tag that
/// names the digest when it has none; None when the repository no longer holds the image.
pub(super) async fn tag_of(
    client: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
) -> anyhow::Result<Option<String>> {
    let short = digest
        .trim_start_matches("sha256:")
        .get(..12)
        .unwrap_or(digest);
    Ok(ecr::tags_of_digest(client, repository, digest)
        .await?
        .map(|tags| {
            tags.into_iter()
                .next()
                .unwrap_or_else(|| format!("promoted-{short}"))
        }))
}

/// An image in the source environment's registry, by digest, with a tag its repository has.
pub struct Source<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub tag: &'a str,
}

/// The promoted image in this environment's repository (`<uri>@<digest>`): there already, or
/// copied by digest from the source (in a plan, said and not done).
pub async fn ensure_image(
    aws: &crate::aws::Aws,
    config: &Config,
    promoted: &Promoted,
    dry_run: bool,
    changes: &mut Vec<Change>,
    printer: &Printer,
) -> anyhow::Result<String> {
    let source = Source {
        repository: &promoted.repository,
        digest: &promoted.digest,
        tag: &promoted.tag,
    };
    copy_in(
        aws, config, promoted, &source, None, dry_run, changes, printer,
    )
    .await
}

/// `source` in this environment's repository (`<uri>@<digest>`), copied by digest when it is
/// not there; `worker` names the worker it is for, in the plan.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_in(
    aws: &crate::aws::Aws,
    config: &Config,
    promoted: &Promoted,
    source: &Source<'_>,
    worker: Option<&str>,
    dry_run: bool,
    changes: &mut Vec<Change>,
    printer: &Printer,
) -> anyhow::Result<String> {
    let client = aws.ecr();
    let name = &config.project.name;
    let found = ecr::describe(&client, name).await?;
    let digest = source.digest;
    let from = format!("{}/{}", promoted.registry, source.repository);
    let whose = worker.map_or(String::new(), |w| format!("worker {w}'s, "));
    if let Some((uri, _)) = &found {
        if ecr::has_digest(&client, name, digest).await? {
            changes.push(
                Change::new("image", digest, Action::Keep)
                    .because(format!("{whose}in {name} already")),
            );
            return Ok(format!("{uri}@{digest}"));
        }
    }
    let copied_from = format!("{whose}copied by digest from {from}");
    if dry_run {
        let planned = changes
            .iter()
            .any(|c| c.resource == "ECR repository" && c.action == Action::Create);
        if found.is_none() && !planned {
            changes.push(Change::new("ECR repository", name, Action::Create));
        }
        changes.push(Change::new("image", digest, Action::Create).because(copied_from));
        return Ok(format!("{name}@{digest}"));
    }
    let repo =
        ecr::ensure_repository(&client, name, found, config.image.keep_images, printer).await?;
    let login = ecr::registry_login(&client).await?;
    let (registry, _) = repo.uri.split_once('/').unwrap_or((repo.uri.as_str(), ""));
    printer.info(format!(
        "Copying {from}@{digest} to {} (by digest)",
        repo.uri
    ));
    let copied = copy::copy(
        &Side {
            registry: &promoted.registry,
            repository: source.repository,
            login: &promoted.login,
        },
        &Side {
            registry,
            repository: name,
            login: &login,
        },
        digest,
        source.tag,
    )
    .await?;
    printer.info(format!(
        "Copied: {} layer(s) mounted, {} streamed ({} bytes), {} there already",
        copied.mounted, copied.streamed, copied.bytes_streamed, copied.present
    ));
    changes.push(Change::new("image", digest, Action::Create).because(copied_from));
    Ok(format!("{}@{digest}", repo.uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ecr_image_by_digest_splits_into_registry_repository_and_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-staging@{digest}");
        assert_eq!(
            split_image(&image),
            Some((
                "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
                "mlp-staging".into(),
                digest.clone()
            ))
        );
        let tagged = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp:v1@{digest}");
        assert_eq!(split_image(&tagged).unwrap().1, "mlp");
    }

    #[test]
    fn other_images_are_not_promoted() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            split_image(&format!("docker.io/library/python@{digest}")),
            None
        );
        assert_eq!(
            split_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp:latest"),
            None
        );
        assert_eq!(
            split_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp@sha256:abc"),
            None
        );
    }
}
