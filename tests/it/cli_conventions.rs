//! What users of other command-line tools expect: completions for their shell and a man page,
//! generated from the same definitions as the commands, and the JSON Schema of mldeploy.toml
//! (its validator check runs with the sandbox's Python tools).

use crate::support::*;

fn run(args: &[&str]) -> Run {
    let mut cmd = mldeploy_cmd();
    cmd.args(args);
    Run::of(cmd)
}

#[test]
fn completions_name_every_command_for_each_shell_and_an_unknown_shell_exits_2() {
    for (shell, marker) in [
        ("bash", "_mldeploy()"),
        ("zsh", "#compdef mldeploy"),
        ("fish", "complete -c mldeploy"),
    ] {
        let out = run(&["completions", shell]);
        out.expect_code(0);
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        for command in ["up", "rollback", "promote", "destroy", "iam-policy"] {
            assert!(out.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let bash = run(&["completions", "bash"]).stdout;
    assert!(bash.contains("--model-version"), "flags complete too");
    let unknown = run(&["completions", "tcsh"]);
    unknown.expect_code(2);
    assert_says(&unknown.stderr, &["tcsh", "bash"]);
}

#[test]
fn the_man_page_describes_mldeploy_and_its_commands() {
    let out = run(&["man"]);
    out.expect_code(0);
    assert!(out.stdout.contains(".TH mldeploy"), "{}", out.stdout);
    for text in ["Deploy ML inference services", "promote", "destroy"] {
        assert!(out.stdout.contains(text), "the man page lacks {text}");
    }
}

#[test]
fn durations_take_humantimes_forms_and_a_bad_one_names_the_forms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Accepted: the run gets past the flags and stops at the missing mldeploy.toml.
    let ok = run(&["-C", d, "status", "--wait", "--timeout", "1m30s"]);
    ok.expect_code(2);
    assert_says(&ok.stderr, &["mldeploy.toml"]);
    let bad = run(&["-C", d, "status", "--wait", "--timeout", "1m30x"]);
    bad.expect_code(2);
    assert_says(
        &bad.stderr,
        &[
            "--timeout",
            "1m30x",
            "not a duration like 90s, 15m, 1h or 1m30s",
        ],
    );
}

#[test]
fn global_flags_come_from_mldeploy_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = mldeploy_cmd();
    cmd.arg("status")
        .env("MLDEPLOY_DIR", dir.path())
        .env("MLDEPLOY_OUTPUT", "json");
    let out = Run::of(cmd);
    out.expect_code(2);
    let error = out.json();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains(dir.path().to_str().unwrap()),
        "{error}"
    );
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let out = run(&["--version"]);
    out.expect_code(0);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert!(
        out.stdout
            .starts_with(&format!("mldeploy {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("(commit {})", head.trim())),
        "{} against HEAD {head}",
        out.stdout
    );
}

#[test]
fn plan_offers_only_the_flags_that_mean_something_for_it() {
    // plan waits for nothing and takes no lock.
    for flag in [
        ["--no-rollback", ""],
        ["--force-unlock", "abc"],
        ["--timeout", "5m"],
    ] {
        let args: Vec<&str> = ["plan", flag[0], flag[1]]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let out = run(&args);
        out.expect_code(2);
        assert_says(&out.stderr, &["unexpected argument", flag[0]]);
    }
    let help = run(&["plan", "--help"]).stdout;
    assert!(
        help.contains("--model-version") && help.contains("--force"),
        "{help}"
    );
    assert!(
        !help.contains("--no-rollback") && !help.contains("--force-unlock"),
        "{help}"
    );
    // up keeps them.
    let up = run(&["up", "--help"]).stdout;
    assert!(
        up.contains("--no-rollback") && up.contains("--force-unlock"),
        "{up}"
    );
}

#[test]
fn mldeploy_toml_is_found_in_a_parent_directory_or_named_with_config() {
    let dir = tempfile::tempdir().unwrap();
    let project = "it-found-config";
    std::fs::write(
        dir.path().join("mldeploy.toml"),
        format!("[project]\nname = \"{project}\"\nregion = \"eu-west-1\"\n[model]\nbucket = \"models\"\npath = \"m/{{version}}\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let deep = dir.path().join("app/src");
    std::fs::create_dir_all(&deep).unwrap();
    let in_dir = |cwd: &std::path::Path, args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = mldeploy_cmd();
        cmd.current_dir(cwd)
            .env_remove("MLDEPLOY_CONFIG")
            .env_remove("MLDEPLOY_DIR");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.args(args);
        Run::of(cmd)
    };
    // From two levels down, as cargo finds Cargo.toml.
    let found = in_dir(&deep, &["iam-policy"], &[]);
    found.expect_code(0);
    assert!(
        found.stdout.contains(&format!("{project}-task")),
        "{}",
        found.stdout
    );

    // -f / --config / MLDEPLOY_CONFIG name the file from anywhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let file = dir.path().join("mldeploy.toml");
    let file = file.to_str().unwrap();
    for run in [
        in_dir(elsewhere.path(), &["-f", file, "iam-policy"], &[]),
        in_dir(elsewhere.path(), &["iam-policy", "--config", file], &[]),
        in_dir(
            elsewhere.path(),
            &["iam-policy"],
            &[("MLDEPLOY_CONFIG", file)],
        ),
    ] {
        run.expect_code(0);
        assert!(
            run.stdout.contains(&format!("{project}-task")),
            "{}",
            run.stdout
        );
    }
    // Nowhere up the tree: exit 2, saying where it looked and what to do.
    let none = in_dir(elsewhere.path(), &["iam-policy"], &[]);
    none.expect_code(2);
    assert_says(
        &none.stderr,
        &["no mldeploy.toml in", "or its parents", "-f/--config"],
    );
}

#[test]
fn the_json_schema_is_what_mldeploy_prints_and_an_editors_validator_reads_it() {
    let printed = run(&["schema"]);
    printed.expect_code(0);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/mldeploy.schema.json"
    ))
    .unwrap();
    assert_eq!(
        printed.stdout, committed,
        "run `mldeploy schema > schema/mldeploy.schema.json`"
    );
    // A JSON Schema validator (Python's jsonschema, in the sandbox's tools) accepts the examples'
    // and the README's files and refuses unknown keys, values and types.
    require_sandbox();
    let mut cmd = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.sandbox/venv/bin/python"
    ));
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sandbox/check_schema.py"
    ));
    let check = Run::of(cmd);
    assert!(
        check
            .stdout
            .contains("ok   README.md's mldeploy.toml is valid")
            && check
                .stdout
                .contains("ok   an unknown key in an environment is refused"),
        "the check did not run its checks:\n{}{}",
        check.stdout,
        check.stderr
    );
    check.expect_code(0);
}
