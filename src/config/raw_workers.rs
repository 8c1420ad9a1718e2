//! The raw TOML shapes of `[workers.<name>]` and its own `image` table (see `raw`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::raw::RawAutoscaling;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Worker")]
pub(super) struct RawWorker {
    /// What the worker runs, exec form: ["python", "-m", "scorer"] (default: the image's CMD).
    pub(super) command: Option<Vec<String>>,
    /// Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384 (default 256).
    pub(super) cpu: Option<u32>,
    /// Memory in MiB, one Fargate offers for the cpu (default 512).
    pub(super) memory: Option<u32>,
    /// How many tasks run (default 1; 0 keeps the service with no task).
    pub(super) desired_count: Option<u32>,
    /// Its environment variables (the service's are not inherited).
    #[serde(default)]
    pub(super) environment: BTreeMap<String, String>,
    /// Environment variables from Secrets Manager or SSM: full ARNs.
    #[serde(default)]
    pub(super) secrets: BTreeMap<String, String>,
    /// Whether it gets MODEL_BUCKET_NAME and MODEL_PATH and may read the model (default true).
    pub(super) model: Option<bool>,
    /// `[workers.<name>.autoscaling]`: Application Auto Scaling keeps its task count, on "cpu" or "memory".
    pub(super) autoscaling: Option<RawAutoscaling>,
    /// `[workers.<name>.image]`: its own image, built or prebuilt (default: the project's).
    pub(super) image: Option<RawWorkerImage>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WorkerImage")]
pub(super) struct RawWorkerImage {
    /// Its build context, relative to this file.
    pub(super) context: Option<String>,
    /// Its Dockerfile (default: Dockerfile in its context).
    pub(super) dockerfile: Option<String>,
    /// Build arguments.
    #[serde(default)]
    pub(super) build_args: BTreeMap<String, String>,
    /// Its os/architecture (default: the project's image.platform).
    pub(super) platform: Option<String>,
    /// The build stage to build.
    pub(super) target: Option<String>,
    /// A prebuilt image instead of a build: a reference any registry the tasks can pull from serves, like "ghcr.io/org/worker:1.4".
    #[serde(rename = "ref")]
    pub(super) reference: Option<String>,
}
