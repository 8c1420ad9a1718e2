//! Whether a serving image can load a model version: the flavour libraries and Python version its
//! `MLmodel` names (with the pins of the `requirements.txt` MLflow writes beside it), against what
//! the image has installed. A library the image lacks, or has in another major version, and a
//! Python of another major version, are refused before the deploy, naming both sides.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// What a model version needs to load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// `python_function`'s `python_version`, like "3.11.2".
    pub python: Option<String>,
    /// Each flavour library: (flavour, the distributions that provide it, the version it was
    /// saved with when known).
    pub libraries: Vec<Library>,
    /// Every flavour the MLmodel names, known to mldeploy or not.
    pub flavours: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub flavour: String,
    /// Distribution names that provide it, the usual one first (xgboost, xgboost-cpu).
    pub dists: Vec<&'static str>,
    pub version: Option<String>,
}

/// What an image has: its `python3`'s version and installed distributions (names normalized).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ImageFacts {
    pub python: Option<String>,
    pub packages: BTreeMap<String, String>,
}

/// MLflow's flavours and the distributions that provide their library.
const FLAVOUR_DISTS: &[(&str, &[&str])] = &[
    ("xgboost", &["xgboost", "xgboost-cpu"]),
    ("sklearn", &["scikit-learn"]),
    ("lightgbm", &["lightgbm"]),
    ("catboost", &["catboost"]),
    ("pytorch", &["torch"]),
    ("tensorflow", &["tensorflow", "tensorflow-cpu"]),
    ("keras", &["keras"]),
    ("onnx", &["onnx"]),
    ("transformers", &["transformers"]),
    ("sentence_transformers", &["sentence-transformers"]),
    ("statsmodels", &["statsmodels"]),
    ("prophet", &["prophet"]),
    ("spacy", &["spacy"]),
    ("h2o", &["h2o"]),
    ("paddle", &["paddlepaddle"]),
];

#[derive(Deserialize)]
struct MlModel {
    #[serde(default)]
    flavors: BTreeMap<String, serde_yaml_ng::Value>,
}

/// Reads what a model version needs from its MLmodel and requirements.txt. None when its MLmodel
/// names no flavour (nothing to check).
pub fn parse(mlmodel: &str, requirements: Option<&str>) -> Option<Needs> {
    let parsed: MlModel = serde_yaml_ng::from_str(mlmodel).ok()?;
    if parsed.flavors.is_empty() {
        return None;
    }
    let pins = requirements.map(pins).unwrap_or_default();
    let python = parsed
        .flavors
        .get("python_function")
        .and_then(|f| f.get("python_version"))
        .and_then(yaml_text);
    let libraries = parsed
        .flavors
        .iter()
        .filter_map(|(flavour, fields)| {
            let (_, dists) = FLAVOUR_DISTS.iter().find(|(f, _)| f == flavour)?;
            let pinned = dists.iter().find_map(|d| pins.get(*d).cloned());
            // The flavour's own record of it: `xgb_version`, `sklearn_version`, ...
            let recorded = fields.as_mapping().and_then(|m| {
                m.iter().find_map(|(k, v)| {
                    let key = k.as_str()?;
                    (key.ends_with("_version") && key != "python_version")
                        .then(|| yaml_text(v))
                        .flatten()
                })
            });
            Some(Library {
                flavour: flavour.clone(),
                dists: dists.to_vec(),
                version: pinned.or(recorded),
            })
        })
        .collect();
    let flavours = parsed.flavors.keys().cloned().collect();
    Some(Needs {
        python,
        libraries,
        flavours,
    })
}

fn yaml_text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `name==version` lines of a requirements file, names normalized.
fn pins(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let (name, version) = line.split_once("==")?;
            let name = name.split('[').next()?.trim();
            Some((normalize(name), version.trim().to_string()))
        })
        .collect()
}

/// A distribution name as PEP 503 compares them.
pub fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn major(version: &str) -> Option<&str> {
    version
        .split(['.', '+', '-'])
        .next()
        .filter(|m| !m.is_empty())
}

/// Why the image cannot load the model, or None. `model` names the version for the message.
pub fn refusal(needs: &Needs, image: &ImageFacts, model: &str, image_name: &str) -> Option<String> {
    let mut problems = Vec::new();
    if let Some(python) = &needs.python {
        match &image.python {
            None => problems.push(format!(
                "model needs Python {}, image has no python3",
                major(python).unwrap_or(python)
            )),
            Some(has) if major(has) != major(python) => problems.push(format!(
                "model needs Python {}.x, image has Python {has}",
                major(python).unwrap_or(python)
            )),
            Some(_) => {}
        }
    }
    for lib in &needs.libraries {
        let installed = lib
            .dists
            .iter()
            .find_map(|d| image.packages.get(*d).map(|v| (*d, v)));
        let name = lib.dists[0];
        match (installed, &lib.version) {
            (None, Some(v)) => problems.push(format!(
                "model needs {name} {}.x ({} flavour), image has no {name}",
                major(v).unwrap_or(v),
                lib.flavour
            )),
            (None, None) => problems.push(format!(
                "model needs {name} ({} flavour), image has no {name}",
                lib.flavour
            )),
            (Some((dist, has)), Some(v)) if major(has) != major(v) => problems.push(format!(
                "model needs {name} {}.x, image has {dist} {has}",
                major(v).unwrap_or(v)
            )),
            _ => {}
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{image_name} cannot load {model}: {}. Build the image with the versions the model was saved with (its requirements.txt), or deploy a model saved with the image's",
            problems.join("; ")
        )
    })
}

/// What the model version at `path` needs, read from S3 (MLmodel, and requirements.txt when
/// MLflow wrote one). None when the MLmodel names no flavour.
pub async fn needs_of(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    path: &str,
) -> anyhow::Result<Option<Needs>> {
    let base = path.trim_end_matches('/');
    let Some(mlmodel) = read(s3, bucket, &format!("{base}/{}", crate::model::MARKER)).await? else {
        return Ok(None);
    };
    let requirements = read(s3, bucket, &format!("{base}/requirements.txt")).await?;
    Ok(parse(&mlmodel, requirements.as_deref()))
}

async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<Option<String>> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("reading s3://{bucket}/{key}: {e}"))?;
            Ok(Some(
                String::from_utf8_lossy(&bytes.into_bytes()).into_owned(),
            ))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(call_error("s3:GetObject", e)),
    }
}

/// Refuses, exit 2, a model version `image` (a local reference) cannot load. Nothing to check
/// without a model (a project without `[model]`) or when the model's MLmodel names no
/// flavour; not checked, with a warning, when the engine does not have the image.
pub async fn check_image(
    engine: &crate::image::engine::Engine,
    s3: &aws_sdk_s3::Client,
    config: &crate::config::Config,
    model: Option<&crate::model::ModelVersion>,
    image: &str,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    let (Some(bucket), Some(model)) = (config.model.as_ref().map(|m| &m.bucket), model) else {
        return Ok(());
    };
    let Some(needs) = needs_of(s3, bucket, &model.path).await? else {
        return Ok(());
    };
    let Some(facts) = crate::image::contents::facts(engine, image).await? else {
        printer.warn(format!(
            "{image} is not on this engine, so whether it can load the model was not checked"
        ));
        return Ok(());
    };
    let version = (!model.version.is_empty()).then_some(model.version.as_str());
    let described = crate::model::describe(version, Some(&model.path));
    check(&needs, &facts, &described, image, printer)
}

/// Refuses, exit 2, a model the image cannot load; says it checked otherwise.
pub fn check(
    needs: &Needs,
    image: &ImageFacts,
    model: &str,
    image_name: &str,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    if let Some(why) = refusal(needs, image, model, image_name) {
        return Err(exit::error(ExitStatus::Usage, why));
    }
    printer.info(agreement(needs, image));
    Ok(())
}

/// What was compared and found to agree, or that there was nothing to compare (a model whose
/// MLmodel names no Python version and no flavour mldeploy knows the library of).
fn agreement(needs: &Needs, image: &ImageFacts) -> String {
    let mut agreed: Vec<String> = Vec::new();
    if needs.python.is_some() {
        if let Some(p) = &image.python {
            agreed.push(format!("Python {p}"));
        }
    }
    agreed.extend(needs.libraries.iter().filter_map(|l| {
        l.dists
            .iter()
            .find_map(|d| image.packages.get(*d).map(|v| format!("{d} {v}")))
    }));
    if agreed.is_empty() {
        format!(
            "The model's MLmodel names no Python version and no library mldeploy checks (flavours: {}), so the image was not compared with it",
            needs.flavours.join(", ")
        )
    } else {
        format!("Model and image agree: {}", agreed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MLMODEL: &str = "artifact_path: s3://b/m\nflavors:\n  python_function:\n    loader_module: mlflow.xgboost\n    python_version: 3.11.2\n  xgboost:\n    data: model.ubj\n    xgb_version: 3.2.0\nmlflow_version: 3.17.2\n";

    fn image(python: Option<&str>, packages: &[(&str, &str)]) -> ImageFacts {
        ImageFacts {
            python: python.map(str::to_string),
            packages: packages
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_flavour_and_python_are_read_with_the_requirements_pin_first() {
        let needs = parse(MLMODEL, Some("mlflow==3.17.2\nxgboost==1.7.6\n")).unwrap();
        assert_eq!(needs.python.as_deref(), Some("3.11.2"));
        assert_eq!(needs.libraries.len(), 1);
        assert_eq!(needs.libraries[0].version.as_deref(), Some("1.7.6"));
        let recorded = parse(MLMODEL, None).unwrap();
        assert_eq!(recorded.libraries[0].version.as_deref(), Some("3.2.0"));
        assert_eq!(parse("", None), None, "an empty MLmodel names nothing");
        assert_eq!(parse("flavors: {}\n", None), None);
    }

    #[test]
    fn another_major_version_or_a_missing_library_is_refused_naming_both() {
        let needs = parse(MLMODEL, Some("xgboost==1.7.6\n")).unwrap();
        let why = refusal(
            &needs,
            &image(Some("3.11.2"), &[("xgboost-cpu", "3.2.0")]),
            "version 3",
            "app:1",
        )
        .unwrap();
        assert!(
            why.contains("model needs xgboost 1.x, image has xgboost-cpu 3.2.0"),
            "{why}"
        );
        let why = refusal(&needs, &image(Some("3.11.2"), &[]), "v", "app").unwrap();
        assert!(why.contains("image has no xgboost"), "{why}");
        let why = refusal(&needs, &image(None, &[("xgboost", "1.7.6")]), "v", "app").unwrap();
        assert!(
            why.contains("model needs Python 3, image has no python3"),
            "{why}"
        );
    }

    #[test]
    fn the_same_major_versions_pass() {
        let needs = parse(MLMODEL, Some("xgboost==3.0.1\n")).unwrap();
        assert_eq!(
            refusal(
                &needs,
                &image(Some("3.12.1"), &[("xgboost", "3.2.0")]),
                "v",
                "app"
            ),
            None
        );
    }

    #[test]
    fn agreement_names_what_was_compared_or_that_nothing_was() {
        let needs = parse(MLMODEL, Some("xgboost==3.0.1\n")).unwrap();
        let facts = image(Some("3.12.1"), &[("xgboost", "3.2.0")]);
        assert_eq!(
            agreement(&needs, &facts),
            "Model and image agree: Python 3.12.1, xgboost 3.2.0"
        );
        // Regression: a flavour mldeploy does not know and no python_version printed
        // "Model and image agree: " with nothing after it.
        let custom = parse("flavors:\n  my_flavour:\n    data: m.bin\n", None).unwrap();
        let said = agreement(&custom, &image(None, &[]));
        assert_eq!(
            said,
            "The model's MLmodel names no Python version and no library mldeploy checks (flavours: my_flavour), so the image was not compared with it"
        );
    }

    #[test]
    fn requirement_names_are_normalized() {
        let found = pins("Scikit_Learn==1.9.1 # pinned\nnumpy>=2\n");
        assert_eq!(found.get("scikit-learn").map(String::as_str), Some("1.9.1"));
        assert!(!found.contains_key("numpy"));
    }
}
