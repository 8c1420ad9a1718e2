//! Behind a corporate proxy: mldeploy's own requests (the smoke test) and the AWS SDK's go
//! through the proxy `HTTP_PROXY`/`HTTPS_PROXY` name, with its credentials, unless `NO_PROXY`
//! names the host. The proxy is a real one, Debian's tinyproxy, with basic authentication.

use std::process::{Child, Command, Stdio};

use crate::docker_target::on_docker;
use crate::support::*;

/// tinyproxy on a free loopback port, requiring `mldeploy:secret`, logging every request.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    fn start() -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT to any port (tinyproxy(8)). LogLevel Info logs each request.
        // Timeout 3: tinyproxy 1.11 keeps relaying some of moto's GetObject answers until its idle
        // timeout (awscli's `s3 cp` through it waits the same), so a short one keeps the test fast.
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 3\nMaxClients 50\nAllow 127.0.0.1\nBasicAuth mldeploy secret\nLogFile \"{}\"\nLogLevel Info\n",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is installed by scripts/sandbox");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Tinyproxy {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self, password: &str) -> String {
        format!("http://mldeploy:{password}@127.0.0.1:{}", self.port)
    }

    /// The requests it has logged so far ("GET http://host:port/path").
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r.to_string()))
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mldeploy` in `project` with the proxy variables set as `vars` says, and no others.
fn through(project: &Project, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = mldeploy_cmd();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(name).env_remove(name.to_lowercase());
    }
    cmd.envs(vars.iter().copied());
    cmd.arg("-C").arg(project.path()).args(args);
    Run::of(cmd)
}

#[test]
fn the_smoke_test_and_the_aws_sdk_go_through_the_proxy_the_environment_names_unless_no_proxy_says()
{
    let proxy = Tinyproxy::start();
    let (project, _, port) = on_docker("it-px");
    let url = proxy.url("secret");
    let up = through(
        &project,
        &[("HTTP_PROXY", &url), ("HTTPS_PROXY", &url)],
        &["up", "--output", "json"],
    );
    up.expect_code(0);
    let seen = proxy.requests();
    let smoke = format!("GET http://127.0.0.1:{port}/ready");
    assert!(
        seen.iter().any(|r| r.starts_with(&smoke)),
        "the smoke test's {smoke} did not go through the proxy: {seen:?}"
    );
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    assert!(
        seen.iter().any(|r| r.contains(&format!(" {endpoint}/"))),
        "no AWS SDK request to {endpoint} went through the proxy: {seen:?}"
    );

    // NO_PROXY names the loopback address: nothing reaches the proxy.
    let before = seen.len();
    let direct = through(
        &project,
        &[
            ("HTTP_PROXY", &url),
            ("HTTPS_PROXY", &url),
            ("NO_PROXY", "127.0.0.1"),
        ],
        &["up", "--output", "json"],
    );
    direct.expect_code(0);
    assert_eq!(proxy.requests().len(), before, "{:?}", proxy.requests());

    // tinyproxy answers 407 to a request without its credentials: the first `up` passing shows
    // they were sent, to the SDK's requests and the smoke test's alike.
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
