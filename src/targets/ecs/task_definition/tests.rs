//! Unit tests of rendering, checking and comparing task definitions.

use aws_sdk_ecs::types::TaskDefinition;

use super::*;

fn inputs() -> TaskInputs {
    TaskInputs {
        project: "housing".into(),
        container_name: "housing".into(),
        image: "123.dkr.ecr.us-east-1.amazonaws.com/housing@sha256:aa".into(),
        cpu: 512,
        memory: 1024,
        port: 8080,
        ready_path: "/ready".into(),
        model_bucket: Some("models".into()),
        model_path: Some("mlflow/models/housing/6".into()),
        environment: BTreeMap::from([("LOG_LEVEL".into(), "info \"quoted\"".into())]),
        secrets: BTreeMap::from([(
            "API_KEY".into(),
            "arn:aws:secretsmanager:us-east-1:1:secret:k".into(),
        )]),
        execution_role_arn: "arn:aws:iam::1:role/housing-execution".into(),
        task_role_arn: "arn:aws:iam::1:role/housing-task".into(),
        log_group: "/ecs/housing".into(),
        region: "us-east-1".into(),
        cpu_architecture: "X86_64".into(),
        ready_check: Default::default(),
        image_platform: None,
    }
}

#[test]
fn the_default_template_renders_the_model_contract_health_check_and_logs() {
    let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &inputs()).unwrap();
    assert_eq!(spec.cpu, "512");
    assert_eq!(spec.env("MODEL_BUCKET_NAME"), Some("models"));
    assert_eq!(spec.env("MODEL_PATH"), Some("mlflow/models/housing/6"));
    assert_eq!(
        spec.env("LOG_LEVEL"),
        Some("info \"quoted\""),
        "values are JSON-escaped"
    );
    let c = spec.container().unwrap();
    assert_eq!(
        c.secrets[0].value_from,
        "arn:aws:secretsmanager:us-east-1:1:secret:k"
    );
    let health = c.health_check.as_ref().unwrap();
    assert!(
        health.command[1].contains("http://127.0.0.1:8080/ready"),
        "{:?}",
        health.command
    );
    let logs = c.log_configuration.as_ref().unwrap();
    assert_eq!(logs.log_driver, "awslogs");
    assert_eq!(logs.options["awslogs-group"], "/ecs/housing");
    assert_eq!(
        c.port_mappings,
        [PortSpec {
            container_port: 8080,
            protocol: "tcp".into()
        }]
    );
}

#[test]
fn without_secrets_the_list_is_empty_and_valid() {
    let mut i = inputs();
    i.secrets.clear();
    let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &i).unwrap();
    assert!(spec.container().unwrap().secrets.is_empty());
}

#[test]
fn without_a_model_the_task_gets_no_model_variables_and_keeps_its_own() {
    let mut i = inputs();
    i.model_bucket = None;
    i.model_path = None;
    let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &i).unwrap();
    assert_eq!(spec.env("MODEL_PATH"), None);
    assert_eq!(spec.env("MODEL_BUCKET_NAME"), None);
    assert_eq!(
        spec.env("LOG_LEVEL"),
        i.environment.get("LOG_LEVEL").map(String::as_str)
    );
    i.environment.clear();
    let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &i).unwrap();
    assert!(spec.container().unwrap().environment.is_empty());
}

#[test]
fn a_field_mldeploy_cannot_map_is_refused_by_name() {
    let template = DEFAULT_TEMPLATE.replace(
        "\"essential\": true,",
        "\"essential\": true, \"ulimits\": [],",
    );
    let err = render(&template, "my-task.json", &inputs()).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("my-task.json") && text.contains("unknown field `ulimits`"),
        "{text}"
    );
    assert_eq!(exit::status_of(&err), ExitStatus::Usage);
}

#[test]
fn invalid_json_and_undefined_variables_name_the_line() {
    let err = render("{\n  \"family\": {{ project }},\n}", "t.json", &inputs()).unwrap_err();
    assert!(
        format!("{err:#}").contains("at line 2 of the output"),
        "{err:#}"
    );
    let err = render("{\n\n {{ no_such_input }} }", "t.json", &inputs()).unwrap_err();
    assert!(format!("{err:#}").starts_with("t.json:3:"), "{err:#}");
}

/// The refusal of the default template with `from` replaced by `to`.
fn refusal(from: &str, to: &str) -> String {
    let template = DEFAULT_TEMPLATE.replacen(from, to, 1);
    assert_ne!(template, DEFAULT_TEMPLATE, "{from:?} is in the template");
    let err = render(&template, "t.json", &inputs()).unwrap_err();
    assert_eq!(exit::status_of(&err), ExitStatus::Usage);
    format!("{err:#}")
}

#[test]
fn a_template_that_takes_the_task_out_of_mldeploys_hands_is_refused_with_its_line() {
    let text = refusal(
        "\"taskRoleArn\": {{ task_role_arn | tojson }}",
        "\"taskRoleArn\": \"arn:aws:iam::1:role/admin\"",
    );
    assert!(
        text.contains("taskRoleArn is \"arn:aws:iam::1:role/admin\""),
        "{text}"
    );
    assert!(
        text.contains("(line 8 of the output: `\"taskRoleArn\": \"arn:aws:iam::1:role/admin\",`)"),
        "{text}"
    );
    let text = refusal(
        "\"family\": {{ project | tojson }}",
        "\"family\": \"other\"",
    );
    assert!(
        text.contains("family is \"other\"") && text.contains("line 2"),
        "{text}"
    );
    let text = refusal("\"memory\": \"{{ memory }}\"", "\"memory\": \"3000\"");
    assert!(
        text.contains("memory 3000 MiB does not go with cpu 512"),
        "{text}"
    );
    let text = refusal("\"cpu\": \"{{ cpu }}\"", "\"cpu\": \"300\"");
    assert!(text.contains("not a Fargate task size"), "{text}");
    let text = refusal("\"containerPort\": {{ port }}", "\"containerPort\": 9999");
    assert!(text.contains("maps no containerPort 8080"), "{text}");
    let text = refusal(
        "\"name\": {{ container_name | tojson }}",
        "\"name\": \"sidecar\"",
    );
    assert!(text.contains("no container is named \"housing\""), "{text}");
    let text = refusal("\"retries\": {{ ready_check.retries }}", "\"retries\": 11");
    assert!(
        text.contains("healthCheck.retries is 11; ECS takes 1 to 10"),
        "{text}"
    );
    assert!(text.contains("`\"retries\": 11,`"), "{text}");
}

/// Inputs for an image built for `platform`.
fn for_image(platform: &str) -> TaskInputs {
    let platform = Platform::parse(platform).unwrap();
    TaskInputs {
        cpu_architecture: platform.fargate_architecture().unwrap().into(),
        image_platform: Some(platform),
        ..inputs()
    }
}

#[test]
fn the_default_template_runs_the_task_on_the_images_architecture() {
    let spec = render(
        DEFAULT_TEMPLATE,
        DEFAULT_TEMPLATE_NAME,
        &for_image("linux/arm64"),
    )
    .unwrap();
    assert_eq!(spec.cpu_architecture(), "ARM64");
    let platform = spec.runtime_platform.as_ref().unwrap();
    assert_eq!(platform.operating_system_family.as_deref(), Some("LINUX"));
    let spec = render(
        DEFAULT_TEMPLATE,
        DEFAULT_TEMPLATE_NAME,
        &for_image("linux/amd64"),
    )
    .unwrap();
    assert_eq!(spec.cpu_architecture(), "X86_64");
}

#[test]
fn a_template_whose_architecture_is_not_the_images_is_refused_naming_both() {
    let pinned = DEFAULT_TEMPLATE.replacen(
        "\"cpuArchitecture\": {{ cpu_architecture | tojson }}",
        "\"cpuArchitecture\": \"X86_64\"",
        1,
    );
    assert_ne!(pinned, DEFAULT_TEMPLATE);
    render(&pinned, "t.json", &for_image("linux/amd64")).unwrap();
    let err = render(&pinned, "t.json", &for_image("linux/arm64")).unwrap_err();
    assert_eq!(exit::status_of(&err), ExitStatus::Usage);
    let text = format!("{err:#}");
    assert!(
        text.contains(
            "runtimePlatform.cpuArchitecture is \"X86_64\", but the image is linux/arm64"
        ),
        "{text}"
    );
    assert!(
        text.contains("CannotPullContainerError") && text.contains("t.json"),
        "{text}"
    );
    assert!(text.contains("line 9 of the output"), "{text}");
    // Without the check's image (before anything is built), only Fargate's values are checked.
    render(&pinned, "t.json", &inputs()).unwrap();

    // No runtimePlatform at all: Fargate runs X86_64.
    let absent = DEFAULT_TEMPLATE
        .lines()
        .filter(|l| !l.contains("runtimePlatform"))
        .collect::<Vec<_>>()
        .join("\n");
    let spec = render(&absent, "t.json", &for_image("linux/amd64")).unwrap();
    assert_eq!(spec.runtime_platform, None);
    assert_eq!(spec.cpu_architecture(), "X86_64");
    let text = format!(
        "{:#}",
        render(&absent, "t.json", &for_image("linux/arm64")).unwrap_err()
    );
    assert!(
        text.contains("names no runtimePlatform, so Fargate runs it on X86_64"),
        "{text}"
    );

    let text = refusal(
        "\"operatingSystemFamily\": \"LINUX\"",
        "\"operatingSystemFamily\": \"WINDOWS_SERVER_2022_CORE\"",
    );
    assert!(text.contains("mldeploy deploys Linux images"), "{text}");
    let text = refusal(
        "\"cpuArchitecture\": {{ cpu_architecture | tojson }}",
        "\"cpuArchitecture\": \"x86\"",
    );
    assert!(
        text.contains("Fargate runs \"X86_64\" or \"ARM64\""),
        "{text}"
    );
}

#[test]
fn a_spec_survives_the_trip_through_the_sdk_types() {
    let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &inputs()).unwrap();
    let registered = TaskDefinition::builder()
        .family(&spec.family)
        .network_mode(spec.sdk_network_mode())
        .set_requires_compatibilities(Some(spec.sdk_compatibilities()))
        .cpu(&spec.cpu)
        .memory(&spec.memory)
        .execution_role_arn(&spec.execution_role_arn)
        .task_role_arn(&spec.task_role_arn)
        .set_runtime_platform(spec.sdk_runtime_platform())
        .set_container_definitions(Some(spec.sdk_containers().unwrap()))
        .build();
    assert_eq!(TaskSpec::from_registered(&registered), spec);
}
