//! What people read, as snapshots (insta): the human output of `plan`, `status`, `history`,
//! `destroy`'s plan and config errors, from values built here (no sandbox needed). A change in
//! any of them shows up in review as a changed `.snap` file under `tests/it/snapshots/`.

use std::path::Path;

use mldeploy::config::{self, TargetKind};
use mldeploy::reports::destroy::DestroyReport;
use mldeploy::reports::history::{HistoryReport, RegistryInfo, Release};
use mldeploy::reports::rollback::{EcsRollback, RollbackOn, RollbackReport};
use mldeploy::reports::status::{
    DockerStatus, EcsStatus, State, StatusOn, StatusReport, Targets, WorkerStatus,
};
use mldeploy::reports::up::{DockerUp, EcsUp, UpOn, UpReport};
use mldeploy::smoke::SmokeCheck;
use mldeploy::targets::ecs::watcher::{DeploymentView, StoppedTask};
use mldeploy::targets::inventory::{Found, Kind};
use mldeploy::targets::{Action, Change};

const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/housing";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/housing@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn ecs_up(dry_run: bool, changes: Vec<Change>) -> UpReport {
    UpReport {
        dry_run,
        target: TargetKind::Ecs,
        url: "http://housing-1234.us-east-1.elb.amazonaws.com".into(),
        image: IMAGE.into(),
        model_version: Some("7".into()),
        model_path: Some("mlflow/models/housing/7".into()),
        promoted_from: None,
        smoke: vec![SmokeCheck {
            method: "GET".into(),
            url: "http://housing-1234.us-east-1.elb.amazonaws.com/ready".into(),
            status: 200,
            millis: 12,
        }],
        gate: None,
        changes,
        cost: dry_run.then(|| {
            mldeploy::cost::estimate(&mldeploy::cost::Inputs {
                region: "us-east-1".into(),
                cpu: 1024,
                memory: 2048,
                arm: false,
                tasks: (2, 4),
                public_task_ips: false,
                lb_zones: 2,
                internet_facing: true,
                nat: true,
                interface_endpoints: 0,
                endpoint_zones: 2,
                log_retention_days: 7,
                workers: vec![mldeploy::cost::WorkerTasks {
                    name: "scorer".into(),
                    cpu: 512,
                    memory: 1024,
                    count: 1,
                }],
            })
        }),
        on: UpOn::Ecs(EcsUp {
            task_definition: format!("{TD}:8"),
            cluster: "housing".into(),
            service: "housing".into(),
            deployment_id: Some("ecs-svc/1234567890".into()),
            healthy_targets: 2,
        }),
    }
}

#[test]
fn plan_on_ecs() {
    let changes = vec![
        Change::new("image", "ctx-0123456789abcdef", Action::Create).because("build and push"),
        Change::new("VPC", "housing", Action::Keep).because("vpc-0abc"),
        Change::new("security group", "housing-tasks", Action::Update)
            .because("remove 0.0.0.0/0 on 8080"),
        Change::new("task definition", "housing", Action::Create)
            .because("image, MODEL_PATH changed"),
        Change::new("ECS service", "housing", Action::Update).because("housing:7 -> housing:8"),
    ];
    insta::assert_snapshot!(ecs_up(true, changes).to_string());
}

#[test]
fn up_on_ecs() {
    insta::assert_snapshot!(ecs_up(false, Vec::new()).to_string());
}

#[test]
fn plan_on_docker() {
    let report = UpReport {
        dry_run: true,
        target: TargetKind::Docker,
        url: "http://127.0.0.1:8080".into(),
        image: "housing:ctx-0123456789abcdef".into(),
        promoted_from: None,
        model_version: Some("7".into()),
        model_path: Some("mlflow/models/housing/7".into()),
        smoke: Vec::new(),
        gate: None,
        changes: vec![
            Change::new("image", "housing:ctx-0123456789abcdef", Action::Create)
                .because("build on unix:///var/run/docker.sock"),
            Change::new("container", "housing-3", Action::Create)
                .because("mlflow/models/housing/7 on port 8080"),
            Change::new("container", "housing-2", Action::Update)
                .because("stopped, kept for rollback"),
        ],
        cost: None,
        on: UpOn::Docker(DockerUp {
            container: "housing-3".into(),
            release: 3,
            workers: Vec::new(),
            replaced: vec!["housing-2".into()],
        }),
    };
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn rollback_plan_on_ecs() {
    let report = RollbackReport {
        dry_run: true,
        target: TargetKind::Ecs,
        url: Some("http://housing-1234.us-east-1.elb.amazonaws.com".into()),
        model_version: Some("6".into()),
        model_path: Some("mlflow/models/housing/6".into()),
        image: Some(IMAGE.into()),
        smoke: Vec::new(),
        on: RollbackOn::Ecs(EcsRollback {
            cluster: "housing".into(),
            service: "housing".into(),
            task_definition: format!("{TD}:6"),
            previous_task_definition: format!("{TD}:8"),
            registered: false,
            deployment_id: None,
            healthy_targets: 0,
            workers: vec![mldeploy::targets::ecs::worker_rollback::WorkerMove {
                worker: "scorer".into(),
                task_definition: "housing-scorer:3".into(),
                previous_task_definition: "housing-scorer:5".into(),
            }],
        }),
    };
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn status_of_a_degraded_ecs_service() {
    let report = StatusReport {
        healthy: false,
        target: TargetKind::Ecs,
        reason: Some("1 of 2 targets healthy".into()),
        url: Some("http://housing-1234.us-east-1.elb.amazonaws.com".into()),
        image: Some(IMAGE.into()),
        model_version: Some("7".into()),
        model_path: Some("mlflow/models/housing/7".into()),
        model_warning: None,
        registry: Some(RegistryInfo {
            name: "housing".into(),
            deployed_by: Some("champion".into()),
            aliases: vec!["champion".into(), "production".into()],
        }),
        on: StatusOn::Ecs(EcsStatus {
            workers: vec![WorkerStatus {
                worker: "scorer".into(),
                service: "housing-scorer".into(),
                state: State::Failed,
                reason: Some("deployment ecs-svc/222 failed: ECS deployment circuit breaker: tasks failed to start.".into()),
                task_definition: Some(format!("{TD}-scorer:3")),
                model_path: Some("mlflow/models/housing/7".into()),
                desired: 1,
                running: 0,
                pending: 0,
            }],
            autoscaling: None,
            shift: None,
            state: State::Degraded,
            cluster: "housing".into(),
            service: "housing".into(),
            task_definition: format!("{TD}:8"),
            desired: 2,
            running: 2,
            pending: 0,
            deployments: vec![DeploymentView {
                id: "ecs-svc/1234567890".into(),
                status: "PRIMARY".into(),
                rollout_state: "COMPLETED".into(),
                rollout_reason: "ECS deployment ecs-svc/1234567890 completed.".into(),
                task_definition: format!("{TD}:8"),
                desired: 2,
                running: 2,
                pending: 0,
            }],
            targets: Targets {
                healthy: 1,
                unhealthy: vec![
                    "10.0.1.9:8080: Health checks failed with these codes: [500]".into(),
                ],
            },
            stopped_tasks: vec![StoppedTask {
                id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
                reason: "Essential container in task exited".into(),
                exit_code: Some(1),
            }],
            events: vec![
                "2026-12-01T10:00:00Z (service housing) has reached a steady state.".into(),
            ],
        }),
    };
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn status_on_docker() {
    let report = StatusReport {
        healthy: true,
        target: TargetKind::Docker,
        reason: None,
        url: Some("http://127.0.0.1:8080".into()),
        image: Some("housing:ctx-0123456789abcdef".into()),
        model_version: Some("7".into()),
        model_path: Some("mlflow/models/housing/7".into()),
        model_warning: None,
        registry: None,
        on: StatusOn::Docker(DockerStatus {
            workers: Vec::new(),
            engine: "unix:///var/run/docker.sock".into(),
            usage: Some(mldeploy::targets::docker::usage::Usage {
                cpu_percent: Some(3.25),
                memory_bytes: Some(12 << 20),
                memory_limit_bytes: Some(2 << 30),
                disk_free_bytes: Some(40 << 30),
                docker_root: Some("/var/lib/docker".into()),
            }),
            container: "housing-3".into(),
            release: 3,
            running: true,
        }),
    };
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn history_on_ecs() {
    let release = |revision: i32, model: &str, serving| Release {
        revision,
        task_definition: format!("{TD}:{revision}"),
        model_version: Some(model.into()),
        model_path: Some(format!("mlflow/models/housing/{model}")),
        image: Some(IMAGE.into()),
        created: Some(format!("2026-11-2{revision}T12:00:00.000Z")),
        git_commit: Some("1a2b3c4d5e6f7a8b".into()),
        ci_run: (revision == 3).then(|| "github:org/housing#41".into()),
        promoted_from: (revision == 3).then(|| "staging (housing-staging revision 12)".into()),
        serving,
        ours: true,
        warning: None,
        registry: serving.then(|| RegistryInfo {
            name: "housing".into(),
            deployed_by: None,
            aliases: vec!["production".into()],
        }),
        workers: Default::default(),
    };
    let report = HistoryReport {
        target: TargetKind::Ecs,
        family: "housing".into(),
        serving: Some(format!("{TD}:3")),
        releases: vec![
            release(3, "7", true),
            release(2, "6", false),
            release(1, "6", false),
        ],
    };
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn destroys_plan() {
    let mut gateway = Found::new(Kind::InternetGateway, "housing", "igw-0abc", true);
    gateway.parent = Some("vpc-0abc".into());
    let report = DestroyReport {
        dry_run: true,
        project: "housing".into(),
        deleted: vec![
            Found::new(
                Kind::Service,
                "housing",
                "arn:aws:ecs:us-east-1:1:service/housing/housing",
                true,
            ),
            Found::new(Kind::TaskDefinition, "housing:3", format!("{TD}:3"), true),
            Found::new(Kind::SecurityGroup, "housing-tasks", "sg-0abc", true),
            gateway,
            Found::new(Kind::Vpc, "housing", "vpc-0abc", true),
        ],
        not_ours: vec![Found::new(
            Kind::Role,
            "housing-task",
            "housing-task",
            false,
        )],
        kept: vec![Found::new(
            Kind::LogGroup,
            "/ecs/housing",
            "/ecs/housing",
            true,
        )],
        failed: Vec::new(),
        models_kept: Some("s3://models/mlflow/models/housing".into()),
    };
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn config_errors() {
    let text = "[project]\nname = \"Bad_Name\"\n\n[model]\nbucket = \"models\"\npath = \"no-version\"\n\n[service]\ncpu = 256\nmemory = 4096\nport = 8080\n";
    let err = config::parse(text, Path::new("/nonexistent/housing/mldeploy.toml"))
        .expect_err("a config with several problems is refused");
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn a_config_error_for_an_unknown_key() {
    let text = "[project]\nname = \"housing\"\n\n[model]\nbucket = \"models\"\npath = \"m/{version}\"\n\n[service]\nhealth_chek_path = \"/health\"\n";
    let err = config::parse(text, Path::new("/nonexistent/housing/mldeploy.toml"))
        .expect_err("an unknown key is refused");
    insta::assert_snapshot!(err.to_string());
}
