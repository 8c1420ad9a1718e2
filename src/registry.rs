//! The MLflow model registry as the source of model versions (`[model] registry` and `name`):
//! a registered version or alias resolved to where its files are stored, what the registry has
//! when it does not know one, the aliases of a version, and an alias set on a deployed version.
//! Through MLflow's REST API 2.0 (https://mlflow.org/docs/latest/api_reference/rest-api.html).

use hyper::Method;
use serde_json::Value;

use crate::config::Model;
use crate::exit::{self, ExitStatus};
use crate::model::{FromRegistry, ModelVersion};
use crate::smoke::{Answer, Prober, SmokeRequest};

/// Model version `version` as `[model]` defines versions: with a registry, its registered version
/// N (stored under the model bucket and `model.path`'s prefix, its MLmodel file there); else the
/// version's path in S3. Exit 2 when it does not exist, listing what does.
pub async fn require_version(
    model: &Model,
    s3: &aws_sdk_s3::Client,
    version: &str,
) -> anyhow::Result<ModelVersion> {
    match &model.registry {
        None => crate::model::require_version(s3, &model.bucket, &model.path, version).await,
        Some(r) => {
            let found = Registry::new(&r.uri, &r.name)?.version(version).await?;
            located(model, s3, found, None).await
        }
    }
}

/// The registered version `alias` points at, checked like [`require_version`]'s.
pub async fn require_alias(
    model: &Model,
    s3: &aws_sdk_s3::Client,
    alias: &str,
) -> anyhow::Result<ModelVersion> {
    let Some(r) = &model.registry else {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("--model-alias {alias}: aliases are a model registry's; set model.registry (the MLflow tracking URI) and model.name in mldeploy.toml"),
        ));
    };
    let found = Registry::new(&r.uri, &r.name)?.alias(alias).await?;
    located(model, s3, found, Some(alias)).await
}

/// The aliases the registry has now, by version, for `status` and `history`: None without a
/// registry, or, with a warning, when it cannot be read (the report stands without them).
async fn current_aliases(
    model: &Model,
    printer: &crate::output::Printer,
) -> Option<std::collections::HashMap<String, Vec<String>>> {
    let r = model.registry.as_ref()?;
    let read = async { Registry::new(&r.uri, &r.name)?.aliases().await };
    match read.await {
        Ok(all) => {
            let mut by_version: std::collections::HashMap<String, Vec<String>> =
                std::collections::HashMap::new();
            for (alias, version) in all {
                by_version.entry(version).or_default().push(alias);
            }
            Some(by_version)
        }
        Err(e) => {
            printer.warn(format!("the registry's aliases are not shown: {e:#}"));
            None
        }
    }
}

/// Fills each release's `aliases` with those pointing at its version in the registry now: one
/// read of the registry for all of them (status, each environment of `status --all`, history).
pub async fn fill_aliases(
    model: Option<&Model>,
    printer: &crate::output::Printer,
    releases: Vec<(&mut crate::reports::history::RegistryInfo, Option<&str>)>,
) {
    let Some(model) = model.filter(|_| !releases.is_empty()) else {
        return;
    };
    let Some(aliases) = current_aliases(model, printer).await else {
        return;
    };
    for (info, version) in releases {
        if let Some(version) = version {
            info.aliases = aliases.get(version).cloned().unwrap_or_default();
        }
    }
}

/// Points `model.set_alias` at the version `up` deployed, once it succeeded. A registry that
/// refuses is a warning: the deploy stands.
pub async fn set_deployed_alias(
    model: Option<&Model>,
    deployed: Option<&ModelVersion>,
    printer: &crate::output::Printer,
) {
    let (Some(model), Some(deployed)) = (model, deployed) else {
        return;
    };
    let (Some(r), Some(from)) = (&model.registry, &deployed.registry) else {
        return;
    };
    let Some(alias) = &r.set_alias else { return };
    let set = async {
        Registry::new(&r.uri, &r.name)?
            .set_alias(alias, &deployed.version)
            .await
    };
    match set.await {
        Ok(()) => printer.info(format!(
            "Alias {alias} of {} now points at version {} (model.set_alias)",
            from.name, deployed.version
        )),
        Err(e) => printer.warn(format!(
            "the deploy succeeded, but alias {alias} was not set: {e:#}"
        )),
    }
}

/// A registered version where the service can read it: under the model bucket and the prefix
/// of `model.path` (all the task role may read), with its MLmodel file.
async fn located(
    model: &Model,
    s3: &aws_sdk_s3::Client,
    found: Registered,
    alias: Option<&str>,
) -> anyhow::Result<ModelVersion> {
    let prefix = crate::model::prefix_of(&model.path);
    let what = format!("version {} of {}", found.version, found.name);
    let inside = split_s3(&found.storage)
        .filter(|(bucket, key)| *bucket == model.bucket && key.starts_with(prefix))
        .map(|(_, key)| key.to_string());
    let Some(path) = inside else {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{what} in the MLflow registry is stored at {}, which is not under s3://{}/{prefix} (model.bucket and model.path): the service may read models only there. Register versions with their artifacts in that bucket and prefix, or change model.path",
                found.storage, model.bucket
            ),
        ));
    };
    crate::model::require_path(
        s3,
        &model.bucket,
        &path,
        &format!("{what} in the MLflow registry has no model files"),
    )
    .await?;
    Ok(ModelVersion {
        version: found.version,
        path,
        registry: Some(FromRegistry {
            name: found.name,
            alias: alias.map(str::to_string),
        }),
    })
}

/// A registry at a tracking URI, with the model's name.
pub struct Registry {
    uri: String,
    name: String,
    prober: Prober,
}

/// A registered version, with where its files are and the aliases that point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub name: String,
    pub version: String,
    /// Where MLflow stored the model's directory: `s3://bucket/prefix`.
    pub storage: String,
    pub aliases: Vec<String>,
}

impl Registry {
    /// The registry at `uri` for the registered model `name`. MLflow's own variable
    /// MLFLOW_TRACKING_TOKEN, when set, is sent as a bearer token.
    pub fn new(uri: &str, name: &str) -> anyhow::Result<Registry> {
        let prober = match std::env::var("MLFLOW_TRACKING_TOKEN") {
            Ok(token) if !token.is_empty() => {
                Prober::with_header(None, "Authorization", &format!("Bearer {token}"))?
            }
            _ => Prober::new(None)?,
        };
        Ok(Registry {
            uri: uri.trim_end_matches('/').to_string(),
            name: name.to_string(),
            prober,
        })
    }

    /// Registered version `version`; exit 2 listing the versions and aliases the registry has
    /// when it does not know it.
    pub async fn version(&self, version: &str) -> anyhow::Result<Registered> {
        let path = format!(
            "model-versions/get?name={}&version={}",
            encode(&self.name),
            encode(version)
        );
        self.lookup(&path, format!("no version {version}")).await
    }

    /// The version alias `alias` points at; exit 2 listing the aliases when it points nowhere.
    pub async fn alias(&self, alias: &str) -> anyhow::Result<Registered> {
        let path = format!(
            "registered-models/alias?name={}&alias={}",
            encode(&self.name),
            encode(alias)
        );
        self.lookup(&path, format!("no alias {alias:?}")).await
    }

    /// The model version `path` answers with; when it answers none, exit 2 saying the registry
    /// has `missing` (or not the model at all) and what it has.
    async fn lookup(&self, path: &str, missing: String) -> anyhow::Result<Registered> {
        let (status, answer) = self.get(path).await?;
        if status != 200 {
            self.require_model().await?;
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "the MLflow registry at {} has {missing} of {}: {}",
                    self.uri,
                    self.name,
                    self.holdings().await?
                ),
            ));
        }
        self.registered(&answer["model_version"]).await
    }

    /// Points `alias` at `version` (MLflow moves it when it pointed elsewhere).
    pub async fn set_alias(&self, alias: &str, version: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({"name": self.name, "alias": alias, "version": version});
        let (status, answer) = self
            .send(
                Method::POST,
                "registered-models/alias",
                Some(body.to_string()),
            )
            .await?;
        if status == 200 {
            return Ok(());
        }
        Err(exit::error(
            ExitStatus::Environment,
            format!(
                "the MLflow registry at {} refused to set alias {alias:?} on version {version} of {}: {}",
                self.uri,
                self.name,
                message(&answer, status)
            ),
        ))
    }

    /// Every alias of the model, as (alias, version).
    pub async fn aliases(&self) -> anyhow::Result<Vec<(String, String)>> {
        let (status, answer) = self
            .get(&format!(
                "registered-models/get?name={}",
                encode(&self.name)
            ))
            .await?;
        if status != 200 {
            return Ok(Vec::new());
        }
        Ok(aliases_of(&answer["registered_model"]))
    }

    /// Exit 2 naming the models the registry has, when it has none called `name`.
    async fn require_model(&self) -> anyhow::Result<()> {
        let (status, _) = self
            .get(&format!(
                "registered-models/get?name={}",
                encode(&self.name)
            ))
            .await?;
        if status == 200 {
            return Ok(());
        }
        let (_, found) = self.get("registered-models/search?max_results=100").await?;
        let names: Vec<&str> = found["registered_models"]
            .as_array()
            .map(|models| models.iter().filter_map(|m| m["name"].as_str()).collect())
            .unwrap_or_default();
        Err(exit::error(
            ExitStatus::Usage,
            format!(
                "the MLflow registry at {} has no registered model {:?} (model.name); it has: {}",
                self.uri,
                self.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ))
    }

    /// "versions: 3, 2, 1; aliases: champion -> 2" for an error.
    async fn holdings(&self) -> anyhow::Result<String> {
        let (_, found) = self
            .get(&format!(
                "model-versions/search?filter={}&max_results=200",
                encode(&format!("name='{}'", self.name.replace('\'', "\\'")))
            ))
            .await?;
        let mut versions: Vec<String> = found["model_versions"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|v| v["version"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by_key(|v| std::cmp::Reverse(v.parse::<u64>().unwrap_or(0)));
        let aliases: Vec<String> = self
            .aliases()
            .await?
            .into_iter()
            .map(|(a, v)| format!("{a} -> {v}"))
            .collect();
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        Ok(format!(
            "versions it has: {}; aliases: {}",
            list(&versions),
            list(&aliases)
        ))
    }

    /// A model version's record, with its storage resolved to a URI.
    async fn registered(&self, record: &Value) -> anyhow::Result<Registered> {
        let version = record["version"].as_str().unwrap_or_default().to_string();
        let source = record["source"].as_str().unwrap_or_default();
        let storage = self.storage_of(source, &version).await?;
        Ok(Registered {
            name: self.name.clone(),
            version,
            storage,
            aliases: record["aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Where a version's files are: its source when that is a storage URI, else what the source
    /// names resolved: a logged model (`models:/m-...`, MLflow 3) or a run's artifact
    /// (`runs:/<run>/<path>`, MLflow 2).
    async fn storage_of(&self, source: &str, version: &str) -> anyhow::Result<String> {
        if let Some(id) = source
            .strip_prefix("models:/")
            .filter(|id| id.starts_with("m-"))
        {
            let (status, answer) = self.get(&format!("logged-models/{}", encode(id))).await?;
            if let Some(uri) = answer["model"]["info"]["artifact_uri"]
                .as_str()
                .filter(|_| status == 200)
            {
                return Ok(uri.to_string());
            }
        } else if let Some(rest) = source.strip_prefix("runs:/") {
            let (run, path) = rest.split_once('/').unwrap_or((rest, ""));
            let (status, answer) = self
                .get(&format!("runs/get?run_id={}", encode(run)))
                .await?;
            if let Some(root) = answer["run"]["info"]["artifact_uri"]
                .as_str()
                .filter(|_| status == 200)
            {
                return Ok(format!("{}/{}", root.trim_end_matches('/'), path));
            }
        } else if !source.is_empty() {
            return Ok(source.to_string());
        }
        Err(exit::error(
            ExitStatus::Usage,
            format!(
                "version {version} of {} in the MLflow registry at {} has a source mldeploy cannot resolve to storage: {source:?}",
                self.name, self.uri
            ),
        ))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send(Method::GET, path, None).await
    }

    /// One call; an unreachable registry is exit 3 naming it.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.uri);
        let request = SmokeRequest {
            method,
            path: String::new(),
            body,
            expect_status: 200,
        };
        match self.prober.send(&url, &request).await {
            Answer::Http { status, body, .. } => {
                let value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if status >= 500 || (status == 200 && value.is_null()) {
                    return Err(exit::error(
                        ExitStatus::Environment,
                        format!(
                            "the MLflow registry at {} (model.registry) answered {status} to {path}: {}",
                            self.uri,
                            message(&value, status)
                        ),
                    ));
                }
                Ok((status, value))
            }
            Answer::Unreachable(why) | Answer::Untrusted(why) => Err(exit::error(
                ExitStatus::Environment,
                format!(
                    "cannot reach the MLflow registry at {} (model.registry): {why}",
                    self.uri
                ),
            )),
        }
    }
}

/// A registered model's aliases as (alias, version).
fn aliases_of(model: &Value) -> Vec<(String, String)> {
    model["aliases"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|a| {
                    Some((
                        a["alias"].as_str()?.to_string(),
                        a["version"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// MLflow's error message, or the status.
fn message(answer: &Value, status: u16) -> String {
    answer["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"))
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `s3://bucket/key/prefix` as (bucket, key prefix without a trailing `/`).
pub fn split_s3(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    Some((bucket, key.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_uri_splits_into_bucket_and_prefix() {
        assert_eq!(
            split_s3("s3://models/mlflow/1/models/m-1/artifacts/"),
            Some(("models", "mlflow/1/models/m-1/artifacts"))
        );
        assert_eq!(split_s3("s3://models"), Some(("models", "")));
        assert_eq!(split_s3("gs://models/x"), None);
    }

    #[test]
    fn aliases_are_read_from_the_registered_model() {
        let model = serde_json::json!({"aliases": [{"alias": "champion", "version": "2"}, {"alias": "bad"}]});
        assert_eq!(aliases_of(&model), [("champion".into(), "2".into())]);
        assert!(aliases_of(&serde_json::json!({})).is_empty());
    }
}
