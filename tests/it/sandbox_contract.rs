//! The sandbox holds every request to AWS's published API models, as AWS does before anything
//! else (tests/sandbox/api_contract.py): tests/sandbox/check_api_contract.py sends requests that
//! break them in each protocol mldeploy speaks (JSON, query, EC2, REST-XML) and ones that keep
//! to them, with boto3's own validation off.

use crate::support::sandbox_check;

#[test]
fn the_sandbox_refuses_requests_that_break_the_api_models_in_every_protocol() {
    let run = sandbox_check("check_api_contract.py");
    let out = format!("{}{}", run.stdout, run.stderr);
    for protocol in ["JSON:", "query:", "EC2:", "REST-XML:"] {
        assert!(
            out.lines()
                .filter(|l| l.starts_with("ok   ") && l.contains(protocol))
                .count()
                >= 2,
            "the {protocol} checks did not run:\n{out}"
        );
    }
    run.expect_code(0);
}
