//! Model versions in S3: the path of a version, the check that it exists (its MLmodel file), and
//! the versions present under the model prefix. mldeploy only reads the model bucket.

use aws_sdk_s3::Client;

use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// The file every MLflow model directory has; its presence is what makes a version real.
pub const MARKER: &str = "MLmodel";

/// The longest version accepted: far more than any MLflow version number needs.
pub const VERSION_MAX_LEN: usize = 64;

/// What a version may hold, in words, for errors.
pub const VERSION_RULE: &str = "a version is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit (like 7, 12 or v2.1)";

/// Checks that `version` is a version: it becomes one segment of an S3 key, an environment value
/// and a tag value, so anything that could leave its prefix ("..", "/"), match more than itself
/// ("*") or read as two words is refused before any call. Returns the reason otherwise.
pub fn check_version(version: &str) -> Result<(), String> {
    let starts_well = version
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let allowed = version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if starts_well && allowed && version.len() <= VERSION_MAX_LEN {
        Ok(())
    } else {
        Err(format!("{version:?} is not a version: {VERSION_RULE}"))
    }
}

/// Checks that `alias` is a name MLflow takes as an alias: 1 to 255 letters, digits, `_` or `-`,
/// and neither `latest` nor `v<number>` (MLflow reserves those). Returns the reason otherwise.
pub fn check_alias(alias: &str) -> Result<(), String> {
    let allowed = !alias.is_empty()
        && alias.len() <= 255
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    let lower = alias.to_ascii_lowercase();
    let reserved = lower == "latest"
        || (lower.len() > 1
            && lower.starts_with('v')
            && lower[1..].chars().all(|c| c.is_ascii_digit()));
    if !allowed {
        Err(format!("{alias:?} is not an alias: an alias is 1 to 255 letters, digits, '_' or '-' (like champion or production)"))
    } else if reserved {
        Err(format!(
            "{alias:?} is reserved by MLflow (\"latest\" and \"v<number>\" name versions)"
        ))
    } else {
        Ok(())
    }
}

/// Checks an explicit `--model-path`: a key prefix under the prefix of `model.path` (all the
/// task role may read, so a model elsewhere could never load), each segment a name (no empty,
/// `.` or `..` segment) with no wildcard, whitespace or control character. Returns the reason
/// otherwise, in words that follow the quoted path.
pub fn check_path(template: &str, path: &str) -> Result<(), String> {
    let prefix = prefix_of(template);
    let trimmed = path.trim_end_matches('/');
    let bad_segment = trimmed
        .split('/')
        .find(|s| s.is_empty() || *s == "." || *s == "..");
    if let Some(segment) = bad_segment {
        return Err(format!(
            "has a {:?} segment: write the model's key prefix itself, like \"{}<version>\"",
            segment, prefix
        ));
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '?'))
    {
        return Err(format!(
            "holds {c:?}: a model's key prefix has no wildcard, space or control character"
        ));
    }
    if !trimmed.starts_with(prefix) || trimmed.len() == prefix.trim_end_matches('/').len() {
        return Err(format!(
            "is not under {prefix:?}, the prefix of model.path: the task role may read only there, so the model could not load"
        ));
    }
    Ok(())
}

/// Whether two model paths name the same prefix, a trailing `/` aside.
pub fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `model.path` with `{version}` filled in.
pub fn path_for(template: &str, version: &str) -> String {
    template.replace("{version}", version)
}

/// The version whose path `path` is, read back through `model.path`: None when `path` is not
/// one of its versions (a `--model-path` deploy, or a path set outside mldeploy).
pub fn version_of(template: &str, path: &str) -> Option<String> {
    let (before, after) = template.split_once("{version}")?;
    let path = path.trim_end_matches('/');
    let after = after.trim_end_matches('/');
    let version = path.strip_prefix(before)?.strip_suffix(after)?;
    check_version(version).ok()?;
    Some(version.to_string())
}

/// "model version 6 (path)", "the model at path", or "no model" (a revision or release that
/// runs none: no `MODEL_PATH`), for reports.
pub fn describe(version: Option<&str>, path: Option<&str>) -> String {
    match (version, path) {
        (Some(v), Some(p)) => format!("model version {v} ({p})"),
        (None, Some(p)) => format!("the model at {p}"),
        _ => "no model".into(),
    }
}

/// A model version that exists in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub version: String,
    /// The key prefix of the version in the bucket (what `MODEL_PATH` is set to).
    pub path: String,
    /// The registered model it is a version of, when versions come from a registry.
    pub registry: Option<FromRegistry>,
}

/// Where a version came from in the model registry: recorded with the release it serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FromRegistry {
    /// The registered model's name.
    pub name: String,
    /// The alias it was deployed by (`--model-alias`), if any.
    pub alias: Option<String>,
}

/// Checks that `<bucket>/<path of version>/MLmodel` exists. A missing version is a usage error
/// (exit 2) that lists the versions present; a missing bucket or refused access is the
/// environment (exit 3).
pub async fn require_version(
    s3: &Client,
    bucket: &str,
    template: &str,
    version: &str,
) -> anyhow::Result<ModelVersion> {
    let path = path_for(template, version);
    let key = format!("{}/{MARKER}", path.trim_end_matches('/'));
    match s3.head_object().bucket(bucket).key(&key).send().await {
        Ok(_) => Ok(ModelVersion {
            version: version.to_string(),
            path,
            registry: None,
        }),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
            // HEAD says 404 for a missing bucket too: listing tells the two apart.
            let present = list_versions(s3, bucket, template).await?;
            let listing = if present.is_empty() {
                format!(
                    "no versions exist under s3://{bucket}/{}",
                    prefix_of(template)
                )
            } else {
                format!(
                    "versions present (newest first): {}",
                    present
                        .iter()
                        .map(|v| v.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Err(exit::error(
                ExitStatus::Usage,
                format!("model version {version} does not exist: s3://{bucket}/{key} is missing; {listing}"),
            ))
        }
        Err(e) => Err(call_error("s3:HeadObject", e)),
    }
}

/// Checks that `<bucket>/<path>/MLmodel` exists, for a model named by its path (`--model-path`,
/// or what an earlier release served). Missing: exit 2 saying `what` asked for it.
pub async fn require_path(s3: &Client, bucket: &str, path: &str, what: &str) -> anyhow::Result<()> {
    let key = format!("{}/{MARKER}", path.trim_end_matches('/'));
    match s3.head_object().bucket(bucket).key(&key).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(exit::error(
            ExitStatus::Usage,
            format!("{what}: s3://{bucket}/{key} does not exist"),
        )),
        Err(e) => Err(call_error("s3:HeadObject", e)),
    }
}

/// Every version under the model prefix that has an MLmodel file, newest first (numerically when
/// all versions are numbers, as MLflow's are).
pub async fn list_versions(
    s3: &Client,
    bucket: &str,
    template: &str,
) -> anyhow::Result<Vec<ModelVersion>> {
    let prefix = prefix_of(template);
    let suffix = template
        .split_once("{version}")
        .map(|(_, s)| s)
        .unwrap_or("");
    let marker_tail = format!("{}/{MARKER}", suffix.trim_end_matches('/'));
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut versions = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) {
                exit::error(
                    ExitStatus::Environment,
                    format!(
                        "the model bucket {bucket} does not exist (model.bucket in mldeploy.toml)"
                    ),
                )
            } else {
                call_error("s3:ListObjectsV2", e)
            }
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            if let Some(version) = rest.strip_suffix(&marker_tail) {
                if !version.is_empty() && !version.contains('/') {
                    versions.push(ModelVersion {
                        version: version.to_string(),
                        path: path_for(template, version),
                        registry: None,
                    });
                }
            }
        }
    }
    sort_newest_first(&mut versions);
    Ok(versions)
}

/// The part of the template before `{version}`.
pub fn prefix_of(template: &str) -> &str {
    template
        .split_once("{version}")
        .map(|(p, _)| p)
        .unwrap_or(template)
}

fn sort_newest_first(versions: &mut [ModelVersion]) {
    if versions.iter().all(|v| v.version.parse::<u64>().is_ok()) {
        versions.sort_by_key(|v| std::cmp::Reverse(v.version.parse::<u64>().unwrap_or(0)));
    } else {
        versions.sort_by(|a, b| b.version.cmp(&a.version));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str) -> ModelVersion {
        ModelVersion {
            version: version.into(),
            path: String::new(),
            registry: None,
        }
    }

    #[test]
    fn only_versions_pass_as_versions() {
        for good in [
            "7",
            "12",
            "v2.1",
            "champion",
            "2024-06-01_a",
            &"9".repeat(64),
        ] {
            assert_eq!(check_version(good), Ok(()), "{good:?}");
        }
        let long = "9".repeat(65);
        for bad in [
            "", " ", "../7", "7/../8", "a b", "7\n", "7*", ".", "..", "-7", " 7", &long,
        ] {
            let why = check_version(bad).unwrap_err();
            assert!(why.contains(VERSION_RULE), "{bad:?}: {why}");
        }
    }

    #[test]
    fn a_path_gives_back_its_version_through_the_template() {
        let t = "mlflow/models/housing/{version}";
        assert_eq!(
            version_of(t, "mlflow/models/housing/7").as_deref(),
            Some("7")
        );
        assert_eq!(
            version_of(t, "mlflow/models/housing/7/").as_deref(),
            Some("7")
        );
        assert_eq!(version_of(t, "mlflow/models/other/7"), None);
        assert_eq!(version_of(t, "mlflow/models/housing/7/../8"), None);
        let t = "models/{version}/artifacts";
        assert_eq!(version_of(t, "models/12/artifacts").as_deref(), Some("12"));
        assert_eq!(version_of(t, "models/12"), None);
    }

    #[test]
    fn an_explicit_path_must_lie_under_what_the_task_role_reads() {
        let template = "mlflow/models/housing/{version}";
        for good in [
            "mlflow/models/housing/7",
            "mlflow/models/housing/7/",
            "mlflow/models/housing/v2/best",
        ] {
            assert_eq!(check_path(template, good), Ok(()), "{good}");
        }
        for bad in [
            "mlflow/models/housing",
            "mlflow/models/housing/",
            "mlflow/models/housing/../other/7",
            "mlflow/models/other/7",
            "mlflow/models/housing7",
            "mlflow/models/housing/7 8",
        ] {
            assert!(check_path(template, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_fill_in_the_version() {
        assert_eq!(
            path_for("mlflow/models/housing/{version}", "6"),
            "mlflow/models/housing/6"
        );
        assert_eq!(
            prefix_of("mlflow/models/housing/{version}/artifacts"),
            "mlflow/models/housing/"
        );
    }

    #[test]
    fn numeric_versions_sort_as_numbers() {
        let mut versions = vec![v("2"), v("10"), v("9")];
        sort_newest_first(&mut versions);
        let order: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(order, ["10", "9", "2"]);
    }
}
