//! Which model a deploy serves (`--model-version`, `--model-path`, else `model.version`), checked
//! in S3 before anything changes.

use crate::cli::UpArgs;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::model::{self, ModelVersion};
use crate::session::Ctx;

/// Which model to serve: a version of `model.path`, or an explicit key prefix.
pub(crate) enum ModelChoice {
    Version(String),
    Path(String),
}

pub(crate) fn model_choice(config: &Config, args: &UpArgs) -> anyhow::Result<ModelChoice> {
    if let Some(path) = &args.model_path {
        model::check_path(&config.model.path, path).map_err(|why| {
            exit::error(ExitStatus::Usage, format!("--model-path {path:?} {why}"))
        })?;
        return Ok(ModelChoice::Path(path.trim_end_matches('/').to_string()));
    }
    match args.model_version.clone().or_else(|| config.model.version.clone()) {
        Some(v) => Ok(ModelChoice::Version(v)),
        None => Err(exit::error(
            ExitStatus::Usage,
            "no model version to serve: pass --model-version N (or --model-path), or set model.version in mldeploy.toml",
        )),
    }
}

/// Checks that the chosen model exists in S3, before anything changes; returns it and its
/// version (None for an explicit path).
pub(crate) async fn require_model(
    ctx: &Ctx<'_>,
    choice: ModelChoice,
) -> anyhow::Result<(ModelVersion, Option<String>)> {
    let config = &ctx.config;
    let s3 = ctx.aws().await?.s3();
    let model = match &choice {
        ModelChoice::Version(v) => {
            model::require_version(&s3, &config.model.bucket, &config.model.path, v).await?
        }
        ModelChoice::Path(path) => {
            model::require_path(
                &s3,
                &config.model.bucket,
                path,
                &format!("--model-path {path}"),
            )
            .await?;
            ModelVersion {
                version: String::new(),
                path: path.clone(),
            }
        }
    };
    ctx.printer.info(format!(
        "Model: s3://{}/{}",
        config.model.bucket, model.path
    ));
    let version = match choice {
        ModelChoice::Version(v) => Some(v),
        ModelChoice::Path(_) => None,
    };
    Ok((model, version))
}
