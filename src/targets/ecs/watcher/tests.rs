//! Unit tests of watcher.

use super::*;

fn deployment(id: &str, status: &str, state: &str, td: &str, running: i32) -> DeploymentView {
    DeploymentView {
        id: id.into(),
        status: status.into(),
        rollout_state: state.into(),
        rollout_reason: String::new(),
        task_definition: format!("arn:aws:ecs:us-east-1:1:task-definition/{td}"),
        desired: 2,
        running,
        pending: 2 - running,
    }
}

#[test]
fn done_only_when_completed_running_alone_and_healthy() {
    let mut snap = Snapshot {
        deployments: vec![deployment("new", "PRIMARY", "COMPLETED", "app:2", 2)],
        healthy_targets: 1,
        ..Default::default()
    };
    assert!(
        matches!(judge("new", &snap), Verdict::Waiting(w) if w.contains("1/2 healthy targets"))
    );
    snap.healthy_targets = 2;
    assert_eq!(judge("new", &snap), Verdict::Done);
    snap.deployments
        .push(deployment("old", "ACTIVE", "COMPLETED", "app:1", 1));
    assert!(
        matches!(judge("new", &snap), Verdict::Waiting(w) if w.contains("1 older deployment(s) draining"))
    );
}

#[test]
fn a_rollback_is_never_a_success() {
    // Our deployment is gone and the old task definition is primary and complete.
    let snap = Snapshot {
        deployments: vec![deployment("old", "PRIMARY", "COMPLETED", "app:1", 2)],
        healthy_targets: 2,
        ..Default::default()
    };
    assert!(
        matches!(judge("new", &snap), Verdict::Failed(r) if r.contains("rolled the deployment back") && r.contains("app:1 serves again"))
    );
}

#[test]
fn a_failed_rollout_names_the_reason_and_the_revision_rolled_back_to() {
    let mut failed = deployment("new", "ACTIVE", "FAILED", "app:2", 0);
    failed.rollout_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
    let mut snap = Snapshot {
        deployments: vec![
            deployment("back", "PRIMARY", "IN_PROGRESS", "app:1", 1),
            failed,
        ],
        ..Default::default()
    };
    let Verdict::Failed(reason) = judge("new", &snap) else {
        panic!()
    };
    assert!(
        reason.contains("circuit breaker: tasks failed to start"),
        "{reason}"
    );
    assert!(reason.ends_with("ECS rolled back to app:1"), "{reason}");
    // The tasks that tripped the breaker are named too, whatever the verdict's reason.
    snap.stopped.push(StoppedTask {
        id: "t9".into(),
        reason: "Essential container in task exited".into(),
        exit_code: Some(3),
    });
    let Verdict::Failed(reason) = judge("new", &snap) else {
        panic!()
    };
    assert!(
            reason.ends_with("ECS rolled back to app:1. Latest stopped tasks: task t9: Essential container in task exited (exit code 3)"),
            "{reason}"
        );
}

#[test]
fn tasks_that_keep_stopping_fail_with_their_reasons_and_exit_codes() {
    let stopped = |id: &str| StoppedTask {
        id: id.into(),
        reason: "Essential container in task exited".into(),
        exit_code: Some(137),
    };
    let mut snap = Snapshot {
        deployments: vec![deployment("new", "PRIMARY", "IN_PROGRESS", "app:2", 0)],
        stopped: vec![stopped("t1"), stopped("t2")],
        ..Default::default()
    };
    assert!(matches!(judge("new", &snap), Verdict::Waiting(_)));
    snap.stopped.push(stopped("t3"));
    let Verdict::Failed(reason) = judge("new", &snap) else {
        panic!()
    };
    assert!(
        reason.contains("keep stopping (3 stopped)")
            && reason.contains("task t1: Essential container in task exited (exit code 137)"),
        "{reason}"
    );
}

#[test]
fn durations_read_like_flags() {
    assert_eq!(human_duration(Duration::from_secs(900)), "15m");
    assert_eq!(human_duration(Duration::from_secs(75)), "1m15s");
    assert_eq!(human_duration(Duration::from_secs(2)), "2s");
}
