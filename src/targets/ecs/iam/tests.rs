//! Unit tests of the IAM roles: the policies' scope, and what a role is planned to need.

use super::*;
use serde_json::json;

#[test]
fn the_task_policy_names_only_the_model_prefix_of_the_model_bucket() {
    let p = model_read_policy("us-east-1", "my-models", "mlflow/models/housing/");
    let text = p.to_string();
    assert!(
        !text.contains("s3:*") && !text.contains("arn:aws:s3:::*"),
        "{text}"
    );
    assert_eq!(
        p["Statement"][0]["Resource"][0],
        "arn:aws:s3:::my-models/mlflow/models/housing/*"
    );
    assert_eq!(
        p["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][0],
        "mlflow/models/housing/*"
    );
}

#[test]
fn the_execution_policy_names_only_this_projects_repository_and_log_group() {
    let p = execution_policy("eu-west-1", "housing", &[], &[], &[]);
    assert_eq!(
        p["Statement"].as_array().unwrap().len(),
        3,
        "no secrets, no secret statement"
    );
    assert_eq!(
        p["Statement"][1]["Resource"][0],
        "arn:aws:ecr:eu-west-1:*:repository/housing"
    );
    assert_eq!(
        p["Statement"][2]["Resource"][0],
        "arn:aws:logs:eu-west-1:*:log-group:/ecs/housing:*"
    );
}

#[test]
fn the_execution_policy_reads_exactly_the_named_secrets_and_parameters() {
    let p = execution_policy(
        "us-east-1",
        "housing",
        &[
            SecretResource::Secret("arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf".into()),
            SecretResource::Secret("arn:aws:secretsmanager:us-east-1:1:secret:token".into()),
            SecretResource::Parameter("arn:aws:ssm:us-east-1:1:parameter/prod/key".into()),
        ],
        &[
            "arn:aws:kms:us-east-1:1:key/k-2".into(),
            "arn:aws:kms:us-east-1:1:key/k-1".into(),
        ],
        &["arn:aws:ecr:us-east-1:1:repository/team/scorer".into()],
    );
    let pull = p["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "PullImage")
        .unwrap();
    assert_eq!(
        pull["Resource"],
        serde_json::json!([
            "arn:aws:ecr:us-east-1:*:repository/housing",
            "arn:aws:ecr:us-east-1:1:repository/team/scorer"
        ]),
        "a worker's prebuilt ECR image is pulled from its repository too"
    );
    let decrypt = p["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "DecryptSecrets")
        .unwrap();
    assert_eq!(decrypt["Action"], json!(["kms:Decrypt"]));
    assert_eq!(
        decrypt["Resource"],
        json!([
            "arn:aws:kms:us-east-1:1:key/k-1",
            "arn:aws:kms:us-east-1:1:key/k-2"
        ])
    );
    assert_eq!(
        p["Statement"][3]["Action"],
        json!(["secretsmanager:GetSecretValue"])
    );
    assert_eq!(
        p["Statement"][3]["Resource"],
        json!([
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf",
            "arn:aws:secretsmanager:us-east-1:1:secret:token-??????"
        ])
    );
    assert_eq!(p["Statement"][4]["Action"], json!(["ssm:GetParameters"]));
    assert_eq!(
        p["Statement"][4]["Resource"],
        json!(["arn:aws:ssm:us-east-1:1:parameter/prod/key"])
    );
}

fn wanted() -> Wanted {
    Wanted {
        name: "p-task".into(),
        description: "d",
        policy_name: MODEL_POLICY_NAME,
        policy: Some(model_read_policy("us-east-1", "b", "m/")),
        grants: "read s3://b/m/*".into(),
        trusted: TASKS,
        path: None,
    }
}

fn role(ours: bool, trust: &Value) -> Role {
    let mut b = Role::builder()
        .role_name("p-task")
        .path("/")
        .role_id("AROA1")
        .arn("arn:aws:iam::1:role/p-task")
        .create_date(aws_smithy_types::DateTime::from_secs(0))
        .assume_role_policy_document(trust.to_string());
    if ours {
        b = b.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(tags::PROJECT_TAG)
                .value("p")
                .build()
                .unwrap(),
        );
    }
    b.build().unwrap()
}

#[test]
fn a_role_is_created_kept_or_has_its_trust_and_policy_put_back() {
    let new = plan_role("p", &wanted(), None, None).unwrap();
    assert!(new.found.is_new());
    assert_eq!(new.changes[0].action, Action::Create);

    let trusted = role(true, &trust_policy(TASKS));
    let kept = plan_role("p", &wanted(), Some(&trusted), wanted().policy.as_ref()).unwrap();
    assert_eq!(kept.step, None);
    assert_eq!(kept.found.known(), Some("arn:aws:iam::1:role/p-task"));

    let widened = role(true, &json!({"Statement": []}));
    let planned = plan_role("p", &wanted(), Some(&widened), None).unwrap();
    assert_eq!(
        planned.step,
        Some(RoleStep {
            create: false,
            set_trust: true,
            put_policy: true,
            delete_policy: false
        })
    );
    assert_eq!(
        planned.changes[0].detail.as_deref(),
        Some("trust ecs-tasks.amazonaws.com only, read s3://b/m/*")
    );

    let foreign = role(false, &trust_policy(TASKS));
    assert!(plan_role("p", &wanted(), Some(&foreign), None).is_err());
}

#[test]
fn a_role_that_should_read_nothing_loses_the_policy_it_had() {
    let trusted = role(true, &trust_policy(TASKS));
    let nothing = Wanted {
        policy: None,
        grants: "worker w, no access to the model".into(),
        ..wanted()
    };
    let had = model_read_policy("us-east-1", "b", "m/");
    let planned = plan_role("p", &nothing, Some(&trusted), Some(&had)).unwrap();
    assert_eq!(
        planned.step,
        Some(RoleStep {
            create: false,
            set_trust: false,
            put_policy: false,
            delete_policy: true
        })
    );
    let created = plan_role("p", &nothing, None, None).unwrap();
    assert!(!created.step.unwrap().put_policy);
    let kept = plan_role("p", &nothing, Some(&trusted), None).unwrap();
    assert_eq!(kept.step, None);
}

#[test]
fn policy_documents_are_decoded_from_iams_url_encoding() {
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%7D";
    assert_eq!(
        decode_policy(encoded),
        Some(json!({"Version": "2012-10-17"}))
    );
}
