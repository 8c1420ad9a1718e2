//! The Docker-host target on engines reached the way the docker CLI reaches remote ones: over
//! ssh (the sandbox's sshd on loopback, through the ssh client, a Host alias and a checked host
//! key), over TLS with a client certificate, and through a `docker context`; an unreachable one
//! is exit 3 naming it and how it was reached.

use std::process::Command;

use crate::docker_target::{on_docker, predict_on};
use crate::support::*;

fn sandbox_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by `scripts/sandbox env`"))
}

/// mldeploy in `project` with the engine that `engine` names.
fn on_engine(project: &Project, engine: &[(&str, String)], args: &[&str]) -> Run {
    let mut cmd = mldeploy_cmd();
    cmd.env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT");
    for (k, v) in engine {
        cmd.env(k, v);
    }
    cmd.arg("-C").arg(project.path()).args(args);
    Run::of(cmd)
}

/// Deploy, upgrade, status, rollback and destroy through `engine`, which `shown` names.
fn deploy_upgrade_roll_back_and_destroy(prefix: &str, engine: &[(&str, String)], shown: &str) {
    let (project, _, port) = on_docker(prefix);
    let name = &project.name;
    let up = on_engine(&project, engine, &["up", "--output", "json"]);
    up.expect_code(0);
    assert!(
        up.stderr.contains(&format!("Docker engine {shown}")),
        "{}",
        up.stderr
    );
    // The published port is reached on the engine's host: the alias resolves to 127.0.0.1.
    assert_eq!(up.json()["url"], format!("http://127.0.0.1:{port}"));
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));

    on_engine(&project, engine, &["up", "--model-version", "7"]).expect_code(0);
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/7")));
    let status = on_engine(&project, engine, &["status"]);
    status.expect_code(0);
    assert!(
        status.stdout.contains(&format!("on the engine at {shown}")),
        "{}",
        status.stdout
    );
    // Free disk is read over ssh with df; the engine's API has none to give over TCP.
    let disk = if shown.starts_with("ssh://") {
        "free on /var/lib/docker"
    } else {
        "free disk unknown"
    };
    assert!(status.stdout.contains(disk), "{}", status.stdout);

    let back = on_engine(&project, engine, &["rollback", "--output", "json"]);
    back.expect_code(0);
    assert_eq!(back.json()["model_version"], "6");
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));

    on_engine(&project, engine, &["destroy", "--yes"]).expect_code(0);
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=mldeploy.project={name}"),
    ]);
    assert!(
        left.stdout.trim().is_empty(),
        "destroy over the remote engine removed its containers"
    );
}

#[test]
fn the_docker_target_deploys_upgrades_rolls_back_and_destroys_over_ssh() {
    let host = sandbox_var("SANDBOX_SSH_ENGINE");
    deploy_upgrade_roll_back_and_destroy("it-ssh", &[("DOCKER_HOST", host.clone())], &host);
}

#[test]
fn the_docker_target_deploys_upgrades_rolls_back_and_destroys_over_tls() {
    let host = sandbox_var("SANDBOX_TLS_ENGINE");
    let tls = [
        ("DOCKER_HOST", host.clone()),
        ("DOCKER_TLS_VERIFY", "1".to_string()),
        ("DOCKER_CERT_PATH", sandbox_var("SANDBOX_TLS_ENGINE_CERTS")),
    ];
    deploy_upgrade_roll_back_and_destroy("it-tls", &tls, &host);
}

#[test]
fn the_current_docker_context_names_the_engine() {
    let (project, _, _) = on_docker("it-ctx");
    let config = tempfile::tempdir().unwrap();
    let certs = sandbox_var("SANDBOX_TLS_ENGINE_CERTS");
    let cli = |args: &[&str]| {
        let out = Command::new("docker")
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let endpoint = format!(
        "host={},ca={certs}/ca.pem,cert={certs}/cert.pem,key={certs}/key.pem",
        sandbox_var("SANDBOX_TLS_ENGINE")
    );
    cli(&["context", "create", "sandbox-tls", "--docker", &endpoint]);
    cli(&["context", "use", "sandbox-tls"]);
    let config_dir = ("DOCKER_CONFIG", config.path().display().to_string());

    // Reached through the context (TLS with the context's own certificates): the engine answers,
    // and says nothing of the project is deployed there.
    let status = on_engine(&project, std::slice::from_ref(&config_dir), &["status"]);
    status.expect_code(3);
    assert!(
        status.stderr.contains(&format!(
            "nothing is deployed for {} on the Docker engine at {}",
            project.name,
            sandbox_var("SANDBOX_TLS_ENGINE")
        )),
        "{}",
        status.stderr
    );
    // A context that is not there is named, with how to go back.
    let gone = on_engine(
        &project,
        &[config_dir, ("DOCKER_CONTEXT", "gone".to_string())],
        &["status"],
    );
    gone.expect_code(3);
    assert!(
        gone.stderr.contains("the docker context \"gone\"")
            && gone.stderr.contains("docker context use default"),
        "{}",
        gone.stderr
    );
}

#[test]
fn an_unreachable_remote_engine_is_exit_3_naming_it_and_how_it_was_reached() {
    let (project, _, _) = on_docker("it-noengine");
    // Nothing listens on port 1: ssh fails to connect.
    let ssh = on_engine(
        &project,
        &[("DOCKER_HOST", "ssh://root@127.0.0.1:1".to_string())],
        &["status"],
    );
    ssh.expect_code(3);
    // ssh's own reason, and the login to try by hand.
    assert_says(
        &ssh.stderr,
        &[
            "ssh://root@127.0.0.1:1",
            "over ssh",
            "Connection refused",
            "`ssh -p 1 root@127.0.0.1`",
        ],
    );

    // The TLS engine refuses a client without a certificate its CA issued.
    let no_client_cert = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{}/ca.pem", sandbox_var("SANDBOX_TLS_ENGINE_CERTS")),
        no_client_cert.path().join("ca.pem"),
    )
    .unwrap();
    let tls = on_engine(
        &project,
        &[
            ("DOCKER_HOST", sandbox_var("SANDBOX_TLS_ENGINE")),
            ("DOCKER_TLS_VERIFY", "1".to_string()),
            (
                "DOCKER_CERT_PATH",
                no_client_cert.path().display().to_string(),
            ),
        ],
        &["status"],
    );
    tls.expect_code(3);
    assert_says(
        &tls.stderr,
        &[&sandbox_var("SANDBOX_TLS_ENGINE"), "over TLS", "cert.pem"],
    );
}

#[test]
fn built_here_pushed_to_ecr_and_pulled_on_the_docker_host_over_ssh() {
    let host = sandbox_var("SANDBOX_SSH_ENGINE");
    let engine = [("DOCKER_HOST", host.clone())];
    let (project, _, port) = on_docker("it-sshlocal");
    let name = &project.name;
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        config + "build = \"local\"\n",
    )
    .unwrap();
    // A worker with an image of its own goes the same way: built here, pulled there.
    project.write(".dockerignore", "mldeploy.toml\nscorer\n");
    own_image(&project, "built here");
    project.append_config(
        "[workers.scorer]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"cat /msg.txt; while true; do /bin/busybox sleep 5; done\"]\n[workers.scorer.image]\ncontext = \"scorer\"\n",
    );

    let plan = on_engine(&project, &engine, &["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains(&format!("build here, push to ECR, pull on {host}")),
        "{}",
        plan.stdout
    );

    let up = on_engine(&project, &engine, &["up", "--output", "json"]);
    up.expect_code(0);
    // The Docker host runs the image ECR holds, by digest, pulled with ECR's login.
    let image = up.json()["image"].as_str().unwrap().to_string();
    assert!(
        image.starts_with(&format!("{}@sha256:", project.repository())),
        "{image}"
    );
    assert!(
        up.stderr.contains(&format!("Pulling {image} on {host}")),
        "{}",
        up.stderr
    );
    let running = docker(&["inspect", "-f", "{{.Config.Image}}", &format!("{name}-1")]);
    assert_eq!(running.stdout.trim(), image);
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));
    let scorer = docker(&[
        "inspect",
        "-f",
        "{{.Config.Image}}",
        &format!("{name}-scorer-1"),
    ]);
    let scorer = scorer.stdout.trim();
    assert!(
        scorer.starts_with(&format!("{}@sha256:", project.repository())) && scorer != image,
        "the worker runs its own image from ECR: {scorer}"
    );
    assert_says(&up.stderr, &[&format!("Pulling {scorer} on {host}")]);
    let said = docker(&["logs", &format!("{name}-scorer-1")]);
    assert_says(&said.stdout, &["built here"]);

    // destroy removes the repository it pushed to, with the containers.
    on_engine(&project, &engine, &["destroy", "--yes"]).expect_code(0);
    let repos = aws(&["ecr", "describe-repositories", "--repository-names", name]);
    assert_ne!(repos.code, 0, "the repository is gone: {}", repos.stdout);
}
