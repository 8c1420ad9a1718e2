//! Unit tests of the deployer's policy: the table against the calls in the code, and the scoping.

use super::*;
use std::collections::BTreeSet;

/// The AWS calls the code names: the string after each `call_error(` and in each
/// `all_pages!(`, which is how every SDK call's error is reported.
fn calls_in_code() -> BTreeSet<String> {
    let mut calls = BTreeSet::new();
    for entry in walkdir::WalkDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for marker in ["call_error(", "all_pages!("] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let rest = &rest[..rest.find(';').unwrap_or(rest.len())];
                let name = rest.split('"').skip(1).step_by(2).find(|s| is_call_name(s));
                if let Some(name) = name {
                    calls.insert(name.to_string());
                }
            }
        }
    }
    calls
}

fn is_call_name(s: &str) -> bool {
    s.split_once(':').is_some_and(|(service, op)| {
        !service.is_empty()
            && service
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && op.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && op.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

#[test]
fn the_policy_allows_exactly_the_calls_the_code_makes_and_what_aws_checks_besides() {
    let called: BTreeSet<String> = calls_in_code()
        .iter()
        .map(|c| action_of(c).to_string())
        .collect();
    assert!(called.len() > 60, "the scan found the calls: {called:?}");
    let allowed: BTreeSet<String> = actions().iter().map(|a| a.to_string()).collect();
    let missing: Vec<_> = called.difference(&allowed).collect();
    assert!(missing.is_empty(), "called but not allowed: {missing:?}");
    let not_called: BTreeSet<String> = NOT_CALLED.iter().map(|a| a.to_string()).collect();
    let extra: Vec<_> = allowed
        .difference(&called)
        .filter(|a| !not_called.contains(*a))
        .collect();
    assert!(extra.is_empty(), "allowed but never called: {extra:?}");
}

#[test]
fn pass_role_names_exactly_the_task_roles_and_only_for_ecs_tasks() {
    let scope = Scope {
        region: "eu-west-1".into(),
        account: "123456789012".into(),
        project: "housing".into(),
        model: Some(("models".into(), "mlflow/housing/".into())),
        lock_bucket: "locks".into(),
        domain: None,
        hosted_zone: None,
        promote_from: Vec::new(),
        secrets: Vec::new(),
    };
    let doc = document(&scope).0;
    let pass = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == json!(["iam:PassRole"]))
        .unwrap();
    assert_eq!(
        pass["Resource"],
        json!([
            "arn:aws:iam::123456789012:role/housing-execution",
            "arn:aws:iam::123456789012:role/housing-task",
            // The workers' task roles, by their path: never another stack's role.
            "arn:aws:iam::123456789012:role/mldeploy/housing/workers/*"
        ])
    );
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    let text = document(&scope).to_string();
    assert!(
        text.contains("arn:aws:s3:::models/mlflow/housing/*"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:s3:::locks/.mldeploy/housing/*"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:ecr:eu-west-1:123456789012:repository/housing"),
        "{text}"
    );
    assert!(
        !text.contains("\"s3:*\"") && !text.contains("\"iam:*\""),
        "{text}"
    );
    // In another partition every ARN is that partition's.
    let china = document(&Scope {
        region: "cn-north-1".into(),
        ..scope
    })
    .to_string();
    assert!(
        china.contains("arn:aws-cn:s3:::models/mlflow/housing/*")
            && china.contains("arn:aws-cn:ecr:cn-north-1:123456789012:repository/housing")
            && china.contains("arn:aws-cn:iam::123456789012:role/housing-execution"),
        "{china}"
    );
    assert!(!china.contains("arn:aws:"), "{china}");
}

#[test]
fn route53_and_acm_are_allowed_only_to_a_project_with_a_domain_and_on_its_zone() {
    let mut scope = Scope {
        region: "eu-west-1".into(),
        account: "123456789012".into(),
        project: "housing".into(),
        model: Some(("models".into(), "m/".into())),
        lock_bucket: "models".into(),
        domain: None,
        hosted_zone: None,
        promote_from: Vec::new(),
        secrets: Vec::new(),
    };
    let plain = document(&scope).to_string();
    assert!(
        !plain.contains("acm:") && !plain.contains("route53:"),
        "{plain}"
    );
    assert!(!plain.contains("PromoteFrom"), "{plain}");
    scope.promote_from = vec!["housing-staging".into()];
    let promoting = document(&scope).0;
    let from = promoting["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "PromoteFromOtherEnvironments")
        .cloned()
        .unwrap();
    assert!(
        from["Resource"].as_array().unwrap().contains(&json!(
            "arn:aws:ecr:eu-west-1:123456789012:repository/housing-staging"
        )),
        "{from}"
    );
    // The source's workers' services, which status reads and whose own images promote copies.
    assert!(
        from["Resource"].as_array().unwrap().contains(&json!(
            "arn:aws:ecs:eu-west-1:123456789012:service/housing-staging/housing-staging-*"
        )),
        "{from}"
    );
    scope.promote_from.clear();
    scope.domain = Some("models.example.com".into());
    scope.hosted_zone = Some("Z0123".into());
    let doc = document(&scope).0;
    let statement = |sid: &str| {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        statement("DomainRecords")["Resource"],
        json!(["arn:aws:route53:::hostedzone/Z0123"])
    );
    assert_eq!(
        statement("DeleteOwnCertificates")["Condition"]["StringEquals"]
            ["aws:ResourceTag/mldeploy:project"],
        "housing"
    );
}
