//! One validator per table of `mldeploy.toml`: each destructures its raw table without `..` (a
//! key added to the schema but never read fails to compile), reports every problem with its key,
//! and returns the validated table. `config` puts them together. [service] and [network] are in
//! `service`.

use std::collections::HashMap;
use std::path::Path;

use super::diagnostics::{Positions, Problem, Report};
use super::limits::{check_bucket_name, check_project_name, is_region_like};
use super::raw::{
    RawConfig, RawImage, RawLock, RawModel, RawProject, RawSmoke, VersionValue, REQUIRED,
};
use super::{service, Config, Image, Lock, Model, ModelRegistry, Project, Smoke, TargetKind};

/// The whole file: required keys first, then each table.
pub(super) fn config(
    raw: RawConfig,
    base: &Path,
    file: &Path,
    positions: &Positions,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let mut report = Report {
        positions,
        problems,
    };
    let RawConfig {
        project,
        image,
        model,
        service,
        smoke,
        network,
        target,
        lock,
        deploy,
        gate,
        workers,
        _env: _,
    } = raw;

    // model.bucket and model.path are required of a [model] table; a project has none at all
    // when it serves no model.
    let given: HashMap<&str, bool> = HashMap::from([
        ("project.name", project.name.is_some()),
        (
            "model.bucket",
            model.as_ref().is_none_or(|m| m.bucket.is_some()),
        ),
        (
            "model.path",
            model.as_ref().is_none_or(|m| m.path.is_some()),
        ),
    ]);
    for key in REQUIRED {
        if !given.get(key).copied().unwrap_or(true) {
            let (table, leaf) = key.split_once('.').unwrap_or(("", key));
            report.add(
                key,
                format!("missing required key `{key}` (`{leaf} = ...` under [{table}])"),
            );
        }
    }

    let project = validate_project(project, &mut report);
    let image = validate_image(image, base, "image", &mut report);
    let model = model.map(|m| validate_model(m, &mut report));
    let service = service::validate_service(service, base, model.is_some(), &mut report);
    let service::NetworkKeys {
        subnets,
        security_groups,
        allow_from,
        tasks_network,
        internal_load_balancer,
    } = service::validate_network(network, &project.name, &mut report);
    let smoke = smoke.map(|s| validate_smoke(s, &service.ready_path, &mut report));
    let target = super::target::validate_target(target, service.port, base, &mut report);
    let lock = validate_lock(lock, model.as_ref().map(|m| m.bucket.as_str()), &mut report);
    let deploy = super::deploy::validate_deploy(deploy, &mut report);
    let gate = gate.map(|g| super::deploy::validate_gate(g, base, &mut report));
    let workers =
        super::workers::validate(workers, &project.name, model.is_some(), base, &mut report);
    // The Docker target's proxy holds users back from a new release the same way.
    let docker_proxy = target.kind == TargetKind::Docker && target.proxy_image.is_some();
    if gate.is_some() && !deploy.strategy.shifts_traffic() && !docker_proxy {
        report.add(
            "gate",
            "[gate] runs while a blue/green, canary or linear deployment holds production traffic back (or, on the Docker target, while its proxy does); set `deploy.strategy` to one of them, or remove [gate]".to_string(),
        );
    }
    if deploy.strategy.shifts_traffic() && target.kind == TargetKind::Docker {
        report.add(
            "deploy.strategy",
            format!("`deploy.strategy` = {:?} needs ECS's load balancer; the Docker target replaces its container in place", deploy.strategy.name()),
        );
    }
    let config = Config {
        file: file.to_path_buf(),
        project,
        image,
        model,
        service,
        smoke,
        subnets,
        security_groups,
        allow_from,
        tasks_network,
        internal_load_balancer,
        target,
        lock,
        deploy,
        gate,
        env: None,
        workers,
    };
    if let Some(problem) = config.ecs_domain_problem() {
        report.add("service.domain", problem.to_string());
    }
    if config.target.kind == TargetKind::Docker
        && config.service.domain.is_some()
        && config.target.proxy_image.is_none()
    {
        report.add(
            "service.domain",
            "`service.domain` on the Docker target is served by its proxy, with a certificate from ACME: remove `target.proxy = false`".to_string(),
        );
    }
    Some(config)
}

fn validate_project(raw: RawProject, report: &mut Report<'_>) -> Project {
    let RawProject {
        name,
        region,
        profile,
    } = raw;
    if let Some(name) = &name {
        if let Err(why) = check_project_name(name) {
            report.add("project.name", format!("`project.name` = {name:?} {why}"));
        }
    }
    if let Some(region) = &region {
        if !is_region_like(region) {
            report.add(
                "project.region",
                format!(
                    "`project.region` = {region:?} is not an AWS region name (like \"us-east-1\")"
                ),
            );
        }
    }
    if profile.as_deref().is_some_and(|p| p.trim().is_empty()) {
        report.add(
            "project.profile",
            "`project.profile` is empty: name a profile of ~/.aws/config, or leave the key out"
                .into(),
        );
    }
    Project {
        name: name.unwrap_or_default(),
        region,
        profile,
    }
}

/// `[image]`, or a worker's `[workers.<name>.image]` build (`table` names it in problems).
pub(super) fn validate_image(
    raw: RawImage,
    base: &Path,
    table: &str,
    report: &mut Report<'_>,
) -> Image {
    let RawImage {
        context,
        dockerfile,
        build_args,
        platform,
        target,
        keep_images,
    } = raw;
    let context_dir = base.join(context.as_deref().unwrap_or("."));
    let context_ok = context_dir.is_dir();
    if !context_ok {
        report.add(
            &format!("{table}.context"),
            format!(
                "`{table}.context`: the build context directory {} does not exist",
                context_dir.display()
            ),
        );
    }
    let dockerfile_path = match &dockerfile {
        Some(d) => base.join(d),
        None => context_dir.join("Dockerfile"),
    };
    if context_ok && !dockerfile_path.is_file() {
        let how = if dockerfile.is_some() {
            format!("`{table}.dockerfile`")
        } else {
            format!("`{table}.dockerfile` (default: Dockerfile in the context)")
        };
        report.add(
            &format!("{table}.dockerfile"),
            format!(
                "{how}: the Dockerfile {} does not exist",
                dockerfile_path.display()
            ),
        );
    }
    if let Some(text) = &platform {
        if crate::image::platform::Platform::parse(text).is_none() {
            report.add(
                &format!("{table}.platform"),
                format!("`{table}.platform` = {text:?} is not a platform: write os/architecture, like \"linux/amd64\" or \"linux/arm64\""),
            );
        }
    }
    let keep_images = keep_images.unwrap_or(30);
    if keep_images == 0 {
        report.add(
            "image.keep_images",
            "`image.keep_images` must be at least 1".to_string(),
        );
    }
    Image {
        context: context_dir,
        dockerfile: dockerfile_path,
        build_args,
        platform,
        target,
        keep_images,
    }
}

fn validate_model(raw: RawModel, report: &mut Report<'_>) -> Model {
    let RawModel {
        bucket,
        path,
        version,
        registry,
        name,
        set_alias,
    } = raw;
    let registry = validate_registry(registry, name, set_alias, report);
    if let Some(bucket) = &bucket {
        if bucket.contains(['*', '?']) {
            report.add(
                "model.bucket",
                format!(
                    "`model.bucket` = {bucket:?} has a wildcard: the task role may read one bucket, \
                     named exactly, so a service can never read another team's models"
                ),
            );
        } else if let Err(why) = check_bucket_name(bucket) {
            report.add("model.bucket", format!("`model.bucket` = {bucket:?} {why}"));
        }
    }
    if let Some(model_path) = &path {
        if let Some(why) = model_path_problem(model_path, registry.is_some()) {
            report.add("model.path", format!("`model.path` = {model_path:?} {why}"));
        }
    }
    let version = version.map(|v| match v {
        VersionValue::Number(n) => n.to_string(),
        VersionValue::Text(s) => s,
    });
    if let Some(v) = &version {
        if let Err(why) = crate::model::check_version(v) {
            report.add("model.version", format!("`model.version` = {why}"));
        }
    }
    Model {
        bucket: bucket.unwrap_or_default(),
        path: path.unwrap_or_default(),
        version,
        registry,
    }
}

/// `model.registry` (an http(s) tracking URI), `model.name` with it, and `model.set_alias` (a name
/// MLflow accepts as an alias: letters, digits, `_` and `-`, not `latest` nor `v<number>`).
fn validate_registry(
    uri: Option<String>,
    name: Option<String>,
    set_alias: Option<String>,
    report: &mut Report<'_>,
) -> Option<ModelRegistry> {
    let Some(uri) = uri else {
        for (key, given) in [
            ("model.name", name.is_some()),
            ("model.set_alias", set_alias.is_some()),
        ] {
            if given {
                report.add(
                    key,
                    format!("`{key}` is for a model registry: set `model.registry` to the MLflow tracking URI too"),
                );
            }
        }
        return None;
    };
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        report.add(
            "model.registry",
            format!("`model.registry` = {uri:?} is not an MLflow tracking URI: write its http:// or https:// address, like \"https://mlflow.example.com\""),
        );
    }
    let name = name.unwrap_or_default();
    if name.trim().is_empty() {
        report.add(
            "model.registry",
            "`model.registry` needs `model.name`, the registered model's name in it".into(),
        );
    }
    if let Some(alias) = &set_alias {
        if let Err(why) = crate::model::check_alias(alias) {
            report.add("model.set_alias", format!("`model.set_alias` = {why}"));
        }
    }
    Some(ModelRegistry {
        uri,
        name,
        set_alias,
    })
}

/// What is wrong with a `model.path`, in words that follow its quoted value. With a registry
/// the path is the prefix its versions are stored under, and needs no `{version}`.
fn model_path_problem(model_path: &str, registry: bool) -> Option<&'static str> {
    if registry && (model_path.is_empty() || model_path.starts_with("{version}")) {
        Some(
            "is empty: with a registry it is the key prefix the registry's versions are stored \
             under (the task role reads only there), like \"mlflow/\"",
        )
    } else if !registry && !model_path.contains("{version}") {
        Some(
            "has no `{version}`: write where a version lives, \
             like \"mlflow/models/<model>/{version}\"",
        )
    } else if model_path.contains(['*', '?']) {
        Some(
            "has a wildcard: the task role reads only the \
             prefix before `{version}`, so write it out, like \"mlflow/models/<model>/{version}\"",
        )
    } else if model_path.starts_with("{version}") {
        Some(
            "starts with `{version}`: the task role would read \
             the whole bucket; put the model's own prefix first, like \"mlflow/models/<model>/{version}\"",
        )
    } else if model_path.starts_with('/') || model_path.starts_with("s3://") {
        Some(
            "must be a key prefix inside model.bucket, without \
             a leading \"/\" or \"s3://\"",
        )
    } else {
        None
    }
}

fn validate_smoke(raw: RawSmoke, ready_path: &str, report: &mut Report<'_>) -> Smoke {
    let RawSmoke {
        path,
        method,
        body,
        expect_status,
    } = raw;
    let path = path.unwrap_or_else(|| ready_path.to_string());
    if !path.starts_with('/') {
        report.add(
            "smoke.path",
            format!("`smoke.path` = {path:?} must start with \"/\""),
        );
    }
    let method = method.map(|m| m.to_ascii_uppercase()).unwrap_or_else(|| {
        if body.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "HEAD") {
        report.add(
            "smoke.method",
            format!("`smoke.method` = {method:?} must be GET, POST, PUT or HEAD"),
        );
    }
    let expect_status = expect_status.unwrap_or(200);
    if !(100..=599).contains(&expect_status) {
        report.add(
            "smoke.expect_status",
            format!("`smoke.expect_status` = {expect_status} is not an HTTP status"),
        );
    }
    Smoke {
        path,
        method,
        body,
        expect_status,
    }
}

/// The shortest and longest lease: shorter, a slow renewal could let a live lock go stale;
/// longer, a dead run's lock blocks deploys for that long.
const LEASE_RANGE: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_secs(10),
    std::time::Duration::from_secs(60 * 60),
);

/// `lock.bucket`, which defaults to the model's bucket: a project without `[model]` must name it.
fn validate_lock(raw: RawLock, model_bucket: Option<&str>, report: &mut Report<'_>) -> Lock {
    let RawLock { bucket, lease } = raw;
    if bucket.is_none() && model_bucket.is_none() {
        report.add(
            "lock.bucket",
            "a project without [model] keeps its deploy lock and release records in `lock.bucket`: \
             set it to an S3 bucket the deployer may write, like `[lock] bucket = \"my-team-deploys\"`"
                .to_string(),
        );
    }
    if let Some(bucket) = &bucket {
        if let Err(why) = check_bucket_name(bucket) {
            report.add("lock.bucket", format!("`lock.bucket` = {bucket:?} {why}"));
        }
    }
    let lease = match lease.as_deref().map(super::duration::parse_duration) {
        None => crate::lock::DEFAULT_LEASE,
        Some(Ok(d)) if d >= LEASE_RANGE.0 && d <= LEASE_RANGE.1 => d,
        Some(Ok(_)) => {
            report.add(
                "lock.lease",
                "`lock.lease` must be between 10s and 1h".to_string(),
            );
            crate::lock::DEFAULT_LEASE
        }
        Some(Err(why)) => {
            report.add("lock.lease", format!("`lock.lease`: {why}"));
            crate::lock::DEFAULT_LEASE
        }
    };
    Lock {
        bucket: bucket
            .or_else(|| model_bucket.map(str::to_string))
            .unwrap_or_default(),
        lease,
    }
}
