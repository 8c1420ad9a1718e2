//! The project's ECR repository: found or created (tagged, scan on push, a lifecycle policy that
//! keeps the newest N images), the digest ECR holds for a tag, and registry credentials from
//! `GetAuthorizationToken`, kept in memory only.

use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration};
use base64::Engine as _;

use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::output::Printer;

/// The tag that marks what mldeploy created for a project.
pub use crate::aws::tags::PROJECT_TAG;

#[derive(Debug, Clone)]
pub struct Repository {
    pub name: String,
    pub uri: String,
    /// Created by this run.
    pub created: bool,
    /// Carries this project's tag (created by mldeploy, now or before).
    pub ours: bool,
}

/// Registry credentials for one push; never written anywhere.
pub struct RegistryLogin {
    pub username: String,
    pub password: String,
    pub server: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .finish()
    }
}

/// The ARN of the ECR repository an image reference names
/// (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]`); None for an
/// image of another registry.
pub fn repository_arn_of(reference: &str) -> Option<String> {
    let (host, path) = reference.split_once('/')?;
    let (account, rest) = host.split_once(".dkr.ecr.")?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    let repository = path.split(['@', ':']).next()?;
    if account.is_empty() || region.is_empty() || repository.is_empty() {
        return None;
    }
    Some(crate::aws::partition::arn(
        region,
        "ecr",
        region,
        account,
        &format!("repository/{repository}"),
    ))
}

pub fn lifecycle_policy(keep: u32) -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("mldeploy: keep the newest {keep} images"),
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"}
        }]
    })
    .to_string()
}

/// The repository named after the project as `describe` found it (URI and ARN), or created
/// when it was not found. An existing repository without this project's tag is used as it is
/// (and said so), never changed.
pub async fn ensure_repository(
    ecr: &aws_sdk_ecr::Client,
    project: &str,
    found: Option<(String, String)>,
    keep_images: u32,
    printer: &Printer,
) -> anyhow::Result<Repository> {
    let (uri, arn, created) = match found {
        Some(found) => (found.0, found.1, false),
        None => {
            let tag = crate::aws::tags::ecr(project)?;
            let result = ecr
                .create_repository()
                .repository_name(project)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .tags(tag)
                .send()
                .await;
            match result {
                Ok(out) => {
                    let repo = out.repository.ok_or_else(|| {
                        anyhow::anyhow!("ecr:CreateRepository returned no repository")
                    })?;
                    printer.info(format!("Created ECR repository {project} (scan on push)"));
                    (
                        repo.repository_uri.unwrap_or_default(),
                        repo.repository_arn.unwrap_or_default(),
                        true,
                    )
                }
                // Another run created it between our describe and create: use it.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_repository_already_exists_exception()) =>
                {
                    let (uri, arn) = describe(ecr, project).await?.ok_or_else(|| {
                        exit::error(
                            ExitStatus::Failed,
                            format!("ECR repository {project} exists and then does not"),
                        )
                    })?;
                    (uri, arn, false)
                }
                Err(e) => return Err(call_error("ecr:CreateRepository", e)),
            }
        }
    };

    let ours = created || has_project_tag(ecr, &arn, project).await?;
    if ours {
        ensure_lifecycle_policy(ecr, project, keep_images, printer).await?;
    } else {
        printer.info(format!(
            "Using the existing ECR repository {project}: it lacks the {PROJECT_TAG} tag, so mldeploy leaves its settings alone"
        ));
    }
    Ok(Repository {
        name: project.to_string(),
        uri,
        created,
        ours,
    })
}

/// The repository's URI and ARN, or None when it does not exist.
pub async fn describe(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
) -> anyhow::Result<Option<(String, String)>> {
    match ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .repositories
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|r| {
                (
                    r.repository_uri.unwrap_or_default(),
                    r.repository_arn.unwrap_or_default(),
                )
            })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("ecr:DescribeRepositories", e)),
    }
}

/// Whether the repository carries the project's tag.
pub async fn has_project_tag(
    ecr: &aws_sdk_ecr::Client,
    arn: &str,
    project: &str,
) -> anyhow::Result<bool> {
    let out = ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("ecr:ListTagsForResource", e))?;
    Ok(crate::aws::tags::is_ours(out.tags(), project))
}

async fn ensure_lifecycle_policy(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
    keep: u32,
    printer: &Printer,
) -> anyhow::Result<()> {
    let wanted = lifecycle_policy(keep);
    let current = match ecr
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
    {
        Ok(out) => out.lifecycle_policy_text,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(call_error("ecr:GetLifecyclePolicy", e)),
    };
    let same = current
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .is_some_and(|c| serde_json::from_str::<serde_json::Value>(&wanted).is_ok_and(|w| w == c));
    if !same {
        ecr.put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(wanted)
            .send()
            .await
            .map_err(|e| call_error("ecr:PutLifecyclePolicy", e))?;
        printer.detail(format!(
            "lifecycle policy on {name}: keep the newest {keep} images"
        ));
    }
    Ok(())
}

/// The digest ECR holds for `tag`, if any.
pub async fn digest_for_tag(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    tag: &str,
) -> anyhow::Result<Option<String>> {
    find_digest(
        ecr,
        repository,
        ImageIdentifier::builder().image_tag(tag).build(),
    )
    .await
}

/// Whether the repository still holds the image with this digest (the lifecycle policy expires
/// old ones). A missing repository holds nothing.
pub async fn has_digest(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
) -> anyhow::Result<bool> {
    let id = ImageIdentifier::builder().image_digest(digest).build();
    Ok(find_digest(ecr, repository, id).await?.is_some())
}

/// The tags the repository has for the image with this digest; None when it does not hold it.
pub async fn tags_of_digest(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
) -> anyhow::Result<Option<Vec<String>>> {
    let id = ImageIdentifier::builder().image_digest(digest).build();
    Ok(find_image(ecr, repository, id)
        .await?
        .map(|d| d.image_tags.unwrap_or_default()))
}

async fn find_digest(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    id: ImageIdentifier,
) -> anyhow::Result<Option<String>> {
    Ok(find_image(ecr, repository, id)
        .await?
        .and_then(|d| d.image_digest))
}

async fn find_image(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    id: ImageIdentifier,
) -> anyhow::Result<Option<aws_sdk_ecr::types::ImageDetail>> {
    match ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.image_details.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_image_not_found_exception() || s.is_repository_not_found_exception()
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("ecr:DescribeImages", e)),
    }
}

/// Deletes the repository with its images (`destroy` keeps it with `--keep-images`).
pub async fn delete_repository(ecr: &aws_sdk_ecr::Client, name: &str) -> anyhow::Result<()> {
    ecr.delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await
        .map_err(|e| call_error("ecr:DeleteRepository", e))?;
    Ok(())
}

/// A short-lived registry login from ECR.
pub async fn registry_login(ecr: &aws_sdk_ecr::Client) -> anyhow::Result<RegistryLogin> {
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| call_error("ecr:GetAuthorizationToken", e))?;
    let data = out
        .authorization_data
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                "ecr:GetAuthorizationToken returned no token",
            )
        })?;
    let token = data.authorization_token.unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                "ecr:GetAuthorizationToken returned a token that is not base64 user:password",
            )
        })?;
    let (username, password) = decoded.split_once(':').ok_or_else(|| {
        exit::error(
            ExitStatus::Environment,
            "ecr:GetAuthorizationToken returned a token without user:password",
        )
    })?;
    let server = data.proxy_endpoint.unwrap_or_default();
    Ok(RegistryLogin {
        username: username.to_string(),
        password: password.to_string(),
        server: server.trim_start_matches("https://").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ecr_reference_names_its_repository_and_another_registry_none() {
        assert_eq!(
            repository_arn_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/scorer:1.4")
                .as_deref(),
            Some("arn:aws:ecr:eu-west-1:123456789012:repository/team/scorer")
        );
        assert_eq!(
            repository_arn_of("1.dkr.ecr.cn-north-1.amazonaws.com.cn/s@sha256:ab").as_deref(),
            Some("arn:aws-cn:ecr:cn-north-1:1:repository/s")
        );
        assert_eq!(repository_arn_of("ghcr.io/org/scorer:1"), None);
        assert_eq!(repository_arn_of("scorer"), None);
    }

    #[test]
    fn the_lifecycle_policy_expires_images_beyond_the_newest_n() {
        let policy: serde_json::Value = serde_json::from_str(&lifecycle_policy(30)).unwrap();
        let rule = &policy["rules"][0];
        assert_eq!(rule["selection"]["countType"], "imageCountMoreThan");
        assert_eq!(rule["selection"]["countNumber"], 30);
        assert_eq!(rule["action"]["type"], "expire");
    }

    #[test]
    fn a_login_never_shows_its_password() {
        let login = RegistryLogin {
            username: "AWS".into(),
            password: "s3cret".into(),
            server: "r".into(),
        };
        assert!(!format!("{login:?}").contains("s3cret"));
    }
}
