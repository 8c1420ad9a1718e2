//! HTTPS: the smoke test connects to the load balancer but asks for `service.domain` (SNI and
//! Host) and verifies the certificate for it, as a user's browser would; the sandbox's HTTPS
//! listener serves the ACM certificate, signed by the sandbox's CA.

use crate::support::*;

fn with_https(project: &Project, certificate_arn: &str, domain: &str) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    // The config of a `deployable` project ends in its [service] table.
    let config = config
        .lines()
        .filter(|l| !l.starts_with("certificate_arn") && !l.starts_with("domain"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        &path,
        format!("{config}\ncertificate_arn = \"{certificate_arn}\"\ndomain = \"{domain}\"\n"),
    )
    .unwrap();
}

#[test]
fn an_https_deploy_passes_its_smoke_test_through_the_domain_and_fails_naming_the_certificates_names_for_another(
) {
    let (project, _) = deployable("it-https");
    let domain = format!("{}.mldeploy.test", project.name);
    let arn = certificate_for(&[&domain]);
    with_https(&project, &arn, &domain);

    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["url"], format!("https://{domain}"));
    let smoke = report["smoke"].as_array().unwrap();
    assert_eq!(smoke.len(), 2, "{report}");
    for check in smoke {
        assert!(
            check["url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("https://{domain}/")),
            "{check}"
        );
    }
    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    assert_eq!(status.json()["url"], format!("https://{domain}"));

    // An independent client, verifying the certificate for the domain at the load balancer.
    let alb = load_balancer_dns(&project.name);
    let route = format!("{domain}:443:{alb}:443");
    let answer = predict_over_https(&domain, ["--connect-to", &route]);
    answer.expect_code(0);
    assert!(
        answer.stdout.contains("\"prediction\""),
        "{}",
        answer.stdout
    );
    // Asked by the load balancer's own name, it presents the domain's certificate: HTTPS
    // through that name cannot verify, which is why the smoke test goes through the domain.
    let own = Run::of({
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "--max-time", "10"])
            .arg(format!("https://{alb}/ready"));
        c
    });
    assert_ne!(own.code, 0, "{}", own.stdout);

    // A domain the certificate does not name is refused before anything changes (it was found
    // by the smoke test, after a rollout), saying what the certificate names.
    let other = format!("other-{domain}");
    with_https(&project, &arn, &other);
    let (before, _) = serving(&project.name);
    let refused = project.mldeploy(&["up"]);
    refused.expect_code(2);
    assert_says(
        &refused.stderr,
        &[&format!(
            "`service.certificate_arn` is for {domain}, which does not cover service.domain = \"{other}\""
        )],
    );
    assert_eq!(serving(&project.name).0, before, "nothing was deployed");
}
