//! The sandbox's blue/green and canary deployments hold to what the ECS developer guide says they
//! do: tests/sandbox/check_strategies.py drives them through the AWS API (boto3, as any client)
//! and counts which revision answers on the production and test listener rules. mldeploy's own
//! blue/green tests rely on this emulation, so it is checked on its own.

use std::process::Command;

use crate::support::{require_sandbox, Run};

#[test]
fn the_sandbox_shifts_traffic_as_ecs_documents_for_blue_green_and_canary_deployments() {
    require_sandbox();
    let mut cmd = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.sandbox/venv/bin/python"
    ));
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sandbox/check_strategies.py"
    ));
    let run = Run::of(cmd);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("ok   no production answer from green"),
        "the check did not run its checks:\n{out}"
    );
    run.expect_code(0);
}
