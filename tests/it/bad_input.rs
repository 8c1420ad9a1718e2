//! Property tests on what users write by hand: `mldeploy.toml` and the task-definition template.
//! Whatever the input, nothing panics, every refusal is a usage error (exit 2), and every problem
//! names its key or its line.

use mldeploy::config;
use mldeploy::exit::{self, ExitStatus};
use mldeploy::targets::ecs::task_definition::{render, TaskInputs, DEFAULT_TEMPLATE};
use proptest::prelude::*;

/// The keys a user may write, listed here on their own (not read from the code's schema), with
/// near misses that must be refused by name.
const KEYS: &[(&str, &str)] = &[
    ("project", "name"),
    ("project", "region"),
    ("project", "nmae"),
    ("image", "context"),
    ("image", "dockerfile"),
    ("image", "platform"),
    ("image", "keep_images"),
    ("image", "build_arg"),
    ("model", "bucket"),
    ("model", "path"),
    ("model", "version"),
    ("model", "versoin"),
    ("service", "port"),
    ("service", "cpu"),
    ("service", "memory"),
    ("service", "desired_count"),
    ("service", "health_check_path"),
    ("service", "ready_path"),
    ("service", "certificate_arn"),
    ("service", "log_retention_days"),
    ("service", "task_definition_template"),
    ("smoke", "path"),
    ("smoke", "method"),
    ("smoke", "body"),
    ("smoke", "expect_status"),
    ("network", "subnets"),
    ("network", "security_groups"),
    ("target", "kind"),
    ("target", "host_port"),
    ("servcie", "port"),
];

/// A TOML value of any type, as text.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..70000).prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,30}".prop_map(|s| toml_string(&s)),
        prop::sample::select(vec![
            "\"housing\"",
            "\"my-models\"",
            "\"m/{version}\"",
            "\"{version}\"",
            "\"*\"",
            "\"/ready\"",
            "\"us-east-1\"",
            "\"eu-west-9\"",
            "\"subnet-1\"",
            "\"sg-1\"",
            "\"docker\"",
            "\"ecs\"",
            "\"POST\"",
            "\"..\"",
            "\"\"",
            "512",
            "1024",
            "0",
            "-1",
            "[\"subnet-1\", \"subnet-2\"]",
            "[]",
            "{ a = 1 }",
            "1.5",
            "1979-05-27",
        ])
        .prop_map(str::to_string),
        prop::collection::vec(any::<u16>(), 0..3).prop_map(|v| format!("{v:?}")),
    ]
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A file shaped like mldeploy.toml: known sections, known and near-miss keys, any values.
fn config_text() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), toml_value()), 0..14)
        .prop_map(|pairs| toml_text(&pairs))
}

/// The text of a file with these keys and values, grouped into their sections. A key said twice
/// is a TOML error, which must be refused by line too.
fn toml_text(pairs: &[((&str, &str), String)]) -> String {
    let mut sections: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for ((section, key), value) in pairs {
        sections
            .entry(section)
            .or_default()
            .push(format!("{key} = {value}"));
    }
    sections
        .iter()
        .map(|(section, lines)| format!("[{section}]\n{}\n\n", lines.join("\n")))
        .collect()
}

/// A project directory holding `text` as mldeploy.toml, and a Dockerfile.
fn project_with(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(dir.path().join("mldeploy.toml"), text).unwrap();
    dir
}

/// Loads the text as a project would; a refusal must be exit 2 with every problem named. Returns
/// the refusal.
fn check_config(text: &str) -> Result<Option<config::ConfigError>, TestCaseError> {
    let dir = project_with(text);
    let file = dir.path().join("mldeploy.toml");
    match config::parse(text, &file) {
        Ok(_) => {
            prop_assert!(config::load(&dir.path().join("mldeploy.toml"), None).is_ok());
            Ok(None)
        }
        Err(err) => {
            prop_assert!(!err.problems.is_empty());
            for p in &err.problems {
                prop_assert!(
                    p.key.is_some() || p.line.is_some(),
                    "a problem names neither key nor line: {}",
                    p.message
                );
                if let Some(key) = &p.key {
                    prop_assert!(
                        p.message.contains(key.rsplit('.').next().unwrap_or(key)),
                        "the message does not say the key {key}: {}",
                        p.message
                    );
                }
            }
            let loaded = config::load(&dir.path().join("mldeploy.toml"), None).unwrap_err();
            prop_assert_eq!(exit::status_of(&loaded), ExitStatus::Usage);
            let said = format!("{loaded:#}");
            prop_assert!(said.contains("mldeploy.toml"), "{}", said);
            Ok(Some(err))
        }
    }
}

fn inputs() -> TaskInputs {
    TaskInputs {
        project: "housing".into(),
        container_name: "housing".into(),
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/housing@sha256:aa".into(),
        cpu: 512,
        memory: 1024,
        port: 8080,
        ready_path: "/ready".into(),
        model_bucket: Some("models".into()),
        model_path: Some("m/6".into()),
        environment: Default::default(),
        secrets: Default::default(),
        execution_role_arn: "arn:aws:iam::123456789012:role/housing-execution".into(),
        task_role_arn: "arn:aws:iam::123456789012:role/housing-task".into(),
        log_group: "/ecs/housing".into(),
        region: "us-east-1".into(),
        cpu_architecture: "X86_64".into(),
        ready_check: Default::default(),
        image_platform: None,
    }
}

/// Renders the template; a refusal must be exit 2 naming the template and a line.
fn check_template(template: &str) -> Result<(), TestCaseError> {
    if let Err(err) = render(template, "my-task.json", &inputs()) {
        prop_assert_eq!(exit::status_of(&err), ExitStatus::Usage);
        let text = format!("{err:#}");
        prop_assert!(text.contains("my-task.json"), "{}", text);
        prop_assert!(
            text.contains("my-task.json:") || text.contains("line "),
            "no line in: {}",
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_mldeploy_toml_is_loaded_or_refused_by_key_or_line(text in "\\PC{0,300}") {
        check_config(&text)?;
    }

    #[test]
    fn any_config_shaped_file_is_loaded_or_refused_by_key_or_line(text in config_text()) {
        check_config(&text)?;
    }

    #[test]
    fn one_bad_value_in_a_good_file_is_refused_naming_that_key(
        key in prop::sample::select(KEYS),
        value in toml_value(),
    ) {
        let mut pairs: Vec<((&str, &str), String)> = vec![
            (("project", "name"), "\"housing\"".into()),
            (("model", "bucket"), "\"models\"".into()),
            (("model", "path"), "\"m/{version}\"".into()),
        ];
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
        if let Some(err) = check_config(&toml_text(&pairs))? {
            let dotted = format!("{}.{}", key.0, key.1);
            prop_assert!(
                // The key itself, or its section when that is the unknown part.
                err.problems.iter().any(|p| p.key.as_deref().is_some_and(|k| dotted.starts_with(k)) || p.message.contains(key.1)),
                "{} is not named in: {}", dotted, err
            );
        }
    }

    #[test]
    fn any_text_as_a_template_renders_or_is_refused_with_a_line(template in "\\PC{0,300}") {
        check_template(&template)?;
    }

    #[test]
    fn the_template_edited_anywhere_renders_or_is_refused_with_a_line(
        at in 0usize..DEFAULT_TEMPLATE.len(),
        cut in 0usize..40,
        insert in prop::sample::select(vec!["", "{{", "}}", "{%", "\"", ",", "]", "{", "x", "{{ nope }}", "\"cpu\": \"3\",", "null"]),
    ) {
        let mut at = at;
        while !DEFAULT_TEMPLATE.is_char_boundary(at) { at -= 1; }
        let mut end = (at + cut).min(DEFAULT_TEMPLATE.len());
        while !DEFAULT_TEMPLATE.is_char_boundary(end) { end -= 1; }
        let template = format!("{}{insert}{}", &DEFAULT_TEMPLATE[..at], &DEFAULT_TEMPLATE[end..]);
        check_template(&template)?;
    }
}

#[test]
fn a_bad_config_through_the_binary_exits_2_before_any_aws_call() {
    // The endpoint is one nothing listens on: a config refused first never gets that far.
    for (text, key) in [
        ("[project]\nname = \"Bad Name\"\n[model]\nbucket = \"m\"\npath = \"p/{version}\"\n", "project.name"),
        ("[project]\nname = \"ok\"\n[model]\nbucket = \"models\"\npath = \"{version}\"\n", "model.path"),
        ("[project]\nname = \"ok\"\n[model]\nbucket = \"models\"\npath = \"m/{version}\"\n[service]\ncpu = 300\n", "service.cpu"),
    ] {
        let dir = project_with(text);
        for command in ["up", "plan", "status", "rollback", "destroy"] {
            let mut cmd = crate::support::mldeploy_cmd();
            cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .arg("-C")
                .arg(dir.path())
                .arg(command);
            let run = crate::support::Run::of(cmd);
            run.expect_code(2);
            crate::support::assert_says(&run.stderr, &[key.rsplit('.').next().unwrap(), "mldeploy.toml"]);
        }
    }
}
