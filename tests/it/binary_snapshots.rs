//! The binary's own output as snapshots, the way uv's tests take them: exit code, stdout and
//! stderr together, with what differs from run to run (the test's names, ids, times, digests)
//! filtered to placeholders. `--help` and a config error need nothing; `plan`, `status` and
//! `history` of a project with a worker run on the sandbox.

use crate::support::*;

/// Exit code, stdout and stderr of one run, as one text.
fn shown(run: &Run) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
        run.code,
        run.stdout.trim_end(),
        run.stderr.trim_end()
    )
}

/// The filters for what a sandbox run makes up: its names first, then AWS's ids and times.
fn filters(project: &Project, bucket: &str) -> Vec<(String, String)> {
    let mut filters = vec![
        (
            regex_escape(&project.path().display().to_string()),
            "[DIR]".to_string(),
        ),
        (regex_escape(bucket), "[BUCKET]".to_string()),
        (regex_escape(&project.name), "[PROJECT]".to_string()),
    ];
    for (pattern, placeholder) in [
        (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
        (r"sha256:[0-9a-f]{12}\b", "sha256:[DIGEST]"),
        (r"ctx-[0-9a-f]{16}", "ctx-[HASH]"),
        (r"ecs-svc/[0-9]+", "ecs-svc/[ID]"),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[UUID]",
        ),
        (r"\b[0-9a-f]{32}\b", "[TASK]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b", "[DURATION]"),
        (r"\b\d+m\d+s\b", "[DURATION]"),
        (
            r"\bvpc-[0-9a-f]+|subnet-[0-9a-f]+|sg-[0-9a-f]+|igw-[0-9a-f]+|rtb-[0-9a-f]+",
            "[EC2 ID]",
        ),
        (r"\[PROJECT\]-\d+\.us-east-1", "[PROJECT]-[N].us-east-1"),
    ] {
        filters.push((pattern.to_string(), placeholder.to_string()));
    }
    filters
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// Asserts the snapshot `name` of `text` with `filters` applied.
fn assert_shown(name: &str, text: &str, filters: &[(String, String)]) {
    let mut settings = insta::Settings::clone_current();
    for (pattern, placeholder) in filters {
        settings.add_filter(pattern, placeholder.as_str());
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn help() {
    let mut cmd = mldeploy_cmd();
    cmd.arg("--help");
    assert_shown("help", &shown(&Run::of(cmd)), &[]);
}

#[test]
fn a_config_error_with_a_worker() {
    let project = Project::new("it-snap-cfg");
    project.append_config(
        "[workers.Scorer]\ncommand = [\"x\"]\n[workers.feeder]\ncpu = 300\nenvironment = { MODEL_PATH = \"x\" }\n",
    );
    let run = project.mldeploy(&["plan"]);
    assert_shown(
        "a_config_error_with_a_worker",
        &shown(&run),
        &filters(&project, "models"),
    );
}

#[test]
fn plan_status_and_history_of_a_project_with_a_worker() {
    let (project, bucket) = deployable("it-snap");
    project.write(".dockerignore", "mldeploy.toml\n");
    project.append_config(
        "[workers.scorer]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"echo scoring; while true; do /bin/busybox sleep 5; done\"]\n",
    );
    let filters = filters(&project, &bucket);
    let plan = project.mldeploy(&["plan"]);
    assert_shown("plan_of_a_project_with_a_worker", &shown(&plan), &filters);
    project.mldeploy(&["up"]).expect_code(0);
    let status = project.mldeploy(&["status"]);
    // The service's events are ECS's own timing and wording; the rest is mldeploy's.
    let mut in_events = false;
    let status_text = shown(&status)
        .lines()
        .filter(|l| {
            in_events =
                (in_events || l.starts_with("  recent events:")) && !l.starts_with("----- stderr");
            !in_events
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_shown("status_of_a_project_with_a_worker", &status_text, &filters);
    let history = project.mldeploy(&["history"]);
    assert_shown(
        "history_of_a_project_with_a_worker",
        &shown(&history),
        &filters,
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
