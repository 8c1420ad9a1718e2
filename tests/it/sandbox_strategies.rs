//! The sandbox's blue/green and canary deployments hold to what the ECS developer guide says they
//! do: tests/sandbox/check_strategies.py drives them through the AWS API (boto3, as any client)
//! and counts which revision answers on the production and test listener rules. mldeploy's own
//! blue/green tests rely on this emulation, so it is checked on its own.

use crate::support::sandbox_check;

#[test]
fn the_sandbox_shifts_traffic_as_ecs_documents_for_blue_green_and_canary_deployments() {
    let run = sandbox_check("check_strategies.py");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("ok   no production answer from green"),
        "the check did not run its checks:\n{out}"
    );
    run.expect_code(0);
}
