//! Which model a deploy serves (`--model-version`, `--model-alias`, `--model-path`, else
//! `model.version`), checked in the registry and S3 before anything changes.

use crate::cli::ModelFlags;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::model::{self, ModelVersion};
use crate::session::Ctx;

/// Which model to serve: a version of `model.path`, or an explicit key prefix.
pub(crate) enum ModelChoice {
    Version(String),
    /// A registry alias (`--model-alias`).
    Alias(String),
    Path(String),
}

/// The model flags' choice; None for a project without `[model]` (a flag given then is exit 2).
pub(crate) fn model_choice(
    config: &Config,
    args: &ModelFlags,
) -> anyhow::Result<Option<ModelChoice>> {
    let Some(model) = &config.model else {
        let given = [
            ("--model-version", args.model_version.is_some()),
            ("--model-alias", args.model_alias.is_some()),
            ("--model-path", args.model_path.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
            config.model_for(flag)?;
        }
        return Ok(None);
    };
    choice_of(model, args).map(Some)
}

fn choice_of(model: &crate::config::Model, args: &ModelFlags) -> anyhow::Result<ModelChoice> {
    if let Some(path) = &args.model_path {
        model::check_path(&model.path, path).map_err(|why| {
            exit::error(ExitStatus::Usage, format!("--model-path {path:?} {why}"))
        })?;
        return Ok(ModelChoice::Path(path.trim_end_matches('/').to_string()));
    }
    if let Some(alias) = &args.model_alias {
        return Ok(ModelChoice::Alias(alias.clone()));
    }
    match args.model_version.clone().or_else(|| model.version.clone()) {
        Some(v) => Ok(ModelChoice::Version(v)),
        None => Err(exit::error(
            ExitStatus::Usage,
            "no model version to serve: pass --model-version N (or --model-alias, --model-path), or set model.version in mldeploy.toml",
        )),
    }
}

/// What `up` deploys: the model chosen and its version (None for an explicit path), or None for
/// a project without `[model]`.
pub(crate) type Chosen = Option<(ModelVersion, Option<String>)>;

/// The model flags' choice checked in S3 ([`require_model`]), or None without `[model]`.
pub(crate) async fn chosen_model(
    ctx: &Ctx<'_>,
    choice: Option<ModelChoice>,
) -> anyhow::Result<Chosen> {
    match choice {
        Some(choice) => Ok(Some(require_model(ctx, choice).await?)),
        None => Ok(None),
    }
}

/// Checks that the chosen model exists in S3, before anything changes; returns it and its
/// version (None for an explicit path).
pub(crate) async fn require_model(
    ctx: &Ctx<'_>,
    choice: ModelChoice,
) -> anyhow::Result<(ModelVersion, Option<String>)> {
    let config = ctx.config.model_for("the model flags")?;
    let s3 = ctx.aws().await?.s3();
    let model = match &choice {
        ModelChoice::Version(v) => crate::registry::require_version(config, &s3, v).await?,
        ModelChoice::Alias(a) => crate::registry::require_alias(config, &s3, a).await?,
        ModelChoice::Path(path) => {
            model::require_path(&s3, &config.bucket, path, &format!("--model-path {path}")).await?;
            ModelVersion {
                version: String::new(),
                path: path.clone(),
                registry: None,
            }
        }
    };
    if let (Some(from), Some(registry)) = (&model.registry, &config.registry) {
        let by = from
            .alias
            .as_deref()
            .map(|a| format!(" (alias {a})"))
            .unwrap_or_default();
        ctx.printer.info(format!(
            "Model: version {} of {}{by} in the MLflow registry at {}",
            model.version, from.name, registry.uri
        ));
    }
    ctx.printer
        .info(format!("Model: s3://{}/{}", config.bucket, model.path));
    let version = match choice {
        ModelChoice::Version(_) | ModelChoice::Alias(_) => Some(model.version.clone()),
        ModelChoice::Path(_) => None,
    };
    Ok((model, version))
}
