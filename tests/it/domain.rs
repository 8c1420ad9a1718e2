//! A domain in a Route 53 hosted zone: `up` requests the ACM certificate, validates it through
//! the zone and waits for it, points the domain at the load balancer with an alias record, and
//! repairs that record; `destroy` removes the record, the certificate and its validation record,
//! and nothing else in the zone. A record at the domain that mldeploy did not make is refused
//! before anything changes.

use serde_json::Value;

use crate::support::*;

/// A hosted zone of its own for the test, holding a record that is not the project's.
struct HostedZone {
    id: String,
    name: String,
}

impl HostedZone {
    fn new(project: &str) -> HostedZone {
        HostedZone::create(format!("{project}.test"), &[])
    }

    /// A zone named `name`, with more of create-hosted-zone's arguments (a private one's VPC).
    fn create(name: String, extra: &[&str]) -> HostedZone {
        let reference = unique_name("ref");
        let mut args = vec![
            "route53",
            "create-hosted-zone",
            "--name",
            &name,
            "--caller-reference",
            &reference,
        ];
        args.extend_from_slice(extra);
        let created = aws(&args);
        created.expect_code(0);
        let id = created.json()["HostedZone"]["Id"]
            .as_str()
            .unwrap()
            .trim_start_matches("/hostedzone/")
            .to_string();
        HostedZone { id, name }
    }

    /// One change to one record set, as awscli sends it.
    fn change_set(&self, action: &str, record: Value) -> Run {
        let batch =
            serde_json::json!({"Changes": [{"Action": action, "ResourceRecordSet": record}]});
        aws(&[
            "route53",
            "change-resource-record-sets",
            "--hosted-zone-id",
            &self.id,
            "--change-batch",
            &batch.to_string(),
        ])
    }

    fn change(&self, action: &str, name: &str, kind: &str, value: &str) {
        let record = serde_json::json!({
            "Name": name, "Type": kind, "TTL": 60, "ResourceRecords": [{"Value": value}]});
        self.change_set(action, record).expect_code(0);
    }

    /// What Route 53 answers for the name and type.
    fn answer(&self, name: &str, kind: &str) -> Value {
        let run = aws(&[
            "route53",
            "test-dns-answer",
            "--hosted-zone-id",
            &self.id,
            "--record-name",
            name,
            "--record-type",
            kind,
        ]);
        run.expect_code(0);
        run.json()
    }

    fn records(&self) -> Vec<Value> {
        aws(&[
            "route53",
            "list-resource-record-sets",
            "--hosted-zone-id",
            &self.id,
        ])
        .json()["ResourceRecordSets"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for HostedZone {
    fn drop(&mut self) {
        for record in self.records() {
            if record["Type"] != "SOA" && record["Type"] != "NS" {
                let _ = self.change_set("DELETE", record);
            }
        }
        let _ = aws(&["route53", "delete-hosted-zone", "--id", &self.id]);
    }
}

fn in_zone(project: &Project, domain: &str, zone: &HostedZone) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    // The config of a `deployable` project ends in its [service] table.
    std::fs::write(
        &path,
        format!(
            "{config}domain = \"{domain}\"\nhosted_zone_id = \"{}\"\n",
            zone.id
        ),
    )
    .unwrap();
}

/// The certificates ACM holds for the domain, with their status and tags.
fn certificates_for(domain: &str) -> Vec<(String, String, Value)> {
    let listed = aws(&["acm", "list-certificates"]).json();
    listed["CertificateSummaryList"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["DomainName"] == domain)
        .map(|c| {
            let arn = c["CertificateArn"].as_str().unwrap().to_string();
            let tags = aws(&[
                "acm",
                "list-tags-for-certificate",
                "--certificate-arn",
                &arn,
            ])
            .json()["Tags"]
                .clone();
            (
                arn,
                c["Status"].as_str().unwrap_or_default().to_string(),
                tags,
            )
        })
        .collect()
}

fn change_of<'a>(report: &'a Value, resource: &str) -> &'a Value {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == resource)
        .unwrap_or_else(|| panic!("no {resource} change in {report}"))
}

/// The load balancer's address, as /etc/hosts resolves its DNS name.
fn address_of(dns_name: &str) -> String {
    let mut cmd = std::process::Command::new("getent");
    cmd.args(["hosts", dns_name]);
    let run = Run::of(cmd);
    run.expect_code(0);
    run.stdout.split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_hosted_zone_gets_a_requested_certificate_and_an_alias_and_destroy_removes_only_those() {
    let (project, _) = deployable("it-zone");
    let zone = HostedZone::new(&project.name);
    let domain = format!("models.{}", zone.name);
    let neighbour = format!("www.{}", zone.name);
    zone.change("CREATE", &neighbour, "A", "192.0.2.80");
    in_zone(&project, &domain, &zone);

    let plan = project.mldeploy(&["plan", "--output", "json"]);
    plan.expect_code(0);
    let planned = plan.json();
    assert_eq!(change_of(&planned, "certificate")["action"], "create");
    assert_eq!(change_of(&planned, "DNS record")["action"], "create");
    assert!(
        certificates_for(&domain).is_empty(),
        "a plan requests nothing"
    );

    let up = project.mldeploy(&["up", "--output", "json"]);
    up.expect_code(0);
    assert_says(
        &up.stderr,
        &[&format!(
            "Waiting for ACM to issue the certificate for {domain}"
        )],
    );
    let report = up.json();
    assert_eq!(report["url"], format!("https://{domain}"));
    assert!(
        report["smoke"].as_array().unwrap().iter().all(|c| c["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://{domain}/"))),
        "{report}"
    );
    let certificates = certificates_for(&domain);
    assert_eq!(certificates.len(), 1, "{certificates:?}");
    let (arn, status, tags) = &certificates[0];
    assert_eq!(status, "ISSUED");
    assert!(
        tags.as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "mldeploy:project" && t["Value"] == project.name.as_str()),
        "{tags}"
    );

    // Route 53 answers the domain with the load balancer's address, and a client that resolves
    // the domain that way reaches the service, verifying the certificate ACM issued.
    let alb = load_balancer_dns(&project.name);
    let address = address_of(&alb);
    assert_eq!(
        zone.answer(&domain, "A")["RecordData"],
        serde_json::json!([address])
    );
    let route = format!("{domain}:443:{address}");
    let answer = predict_over_https(&domain, ["--resolve", &route]);
    answer.expect_code(0);
    assert!(
        answer.stdout.contains("\"prediction\""),
        "{}",
        answer.stdout
    );

    // Nothing to do the second time.
    let again = project.mldeploy(&["up", "--output", "json"]);
    again.expect_code(0);
    let report = again.json();
    assert_eq!(change_of(&report, "certificate")["action"], "keep");
    assert_eq!(change_of(&report, "DNS record")["action"], "keep");

    // Someone points the domain elsewhere: the next `up` puts the alias back.
    zone.change("UPSERT", &domain, "A", "192.0.2.99");
    let repaired = project.mldeploy(&["up", "--output", "json"]);
    repaired.expect_code(0);
    let record = change_of(&repaired.json(), "DNS record").clone();
    assert_eq!(record["action"], "update");
    assert!(
        record["detail"]
            .as_str()
            .unwrap()
            .contains("it was A 192.0.2.99"),
        "{record}"
    );
    assert_eq!(
        zone.answer(&domain, "A")["RecordData"],
        serde_json::json!([address])
    );

    let destroyed = project.mldeploy(&["destroy", "--yes", "--output", "json"]);
    destroyed.expect_code(0);
    let deleted: Vec<String> = destroyed.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        deleted.first().map(String::as_str),
        Some("dns_record"),
        "{deleted:?}"
    );
    assert!(deleted.iter().any(|k| k == "certificate"), "{deleted:?}");
    assert_eq!(zone.answer(&domain, "A")["ResponseCode"], "NXDOMAIN");
    assert!(
        aws(&["acm", "describe-certificate", "--certificate-arn", arn]).code != 0,
        "the requested certificate is gone"
    );
    // Only the zone's own records and the neighbour are left: no alias, claim or validation.
    let left: Vec<String> = zone
        .records()
        .iter()
        .filter(|r| r["Type"] != "SOA" && r["Type"] != "NS")
        .map(|r| r["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [format!("{neighbour}.")]);
}

#[test]
fn a_record_at_the_domain_that_mldeploy_did_not_make_is_refused_before_anything_changes() {
    let (project, _) = deployable("it-zone-theirs");
    let zone = HostedZone::new(&project.name);
    let domain = format!("models.{}", zone.name);
    zone.change("CREATE", &domain, "CNAME", "legacy.example.net");
    in_zone(&project, &domain, &zone);

    let refused = project.mldeploy(&["up"]);
    refused.expect_code(3);
    assert_says(
        &refused.stderr,
        &[
            &format!(
                "Route 53 already has a record for {domain} in zone {}",
                zone.name
            ),
            "(CNAME legacy.example.net)",
            "will not take over",
        ],
    );
    // Nothing was created: no certificate, no load balancer, no repository.
    assert!(certificates_for(&domain).is_empty());
    assert_ne!(
        aws(&["elbv2", "describe-load-balancers", "--names", &project.name]).code,
        0
    );
    assert_ne!(
        aws(&[
            "ecr",
            "describe-repositories",
            "--repository-names",
            &project.name
        ])
        .code,
        0
    );

    // A zone that does not hold the domain, and one that does not exist: refused, exit 2.
    let other = HostedZone::new(&format!("{}-other", project.name));
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, config.replace(&zone.id, &other.id)).unwrap();
    let wrong = project.mldeploy(&["up"]);
    wrong.expect_code(2);
    assert_says(
        &wrong.stderr,
        &[
            "service.domain",
            &format!("is not in the hosted zone {}", other.id),
        ],
    );
    std::fs::write(&path, config.replace(&zone.id, "Z0000000000000MISSING")).unwrap();
    let missing = project.mldeploy(&["up"]);
    missing.expect_code(2);
    assert_says(
        &missing.stderr,
        &["service.hosted_zone_id", "no such hosted zone"],
    );
}

/// The rules on the load balancer's listener on `port` that are not its default.
fn rules_on(project: &str, port: i64) -> Vec<Value> {
    let lb = aws(&["elbv2", "describe-load-balancers", "--names", project]).json()["LoadBalancers"]
        [0]["LoadBalancerArn"]
        .as_str()
        .unwrap()
        .to_string();
    let listeners = aws(&["elbv2", "describe-listeners", "--load-balancer-arn", &lb]).json();
    let Some(listener) = listeners["Listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["Port"] == port)
    else {
        return Vec::new();
    };
    aws(&[
        "elbv2",
        "describe-rules",
        "--listener-arn",
        listener["ListenerArn"].as_str().unwrap(),
    ])
    .json()["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["IsDefault"] != true)
        .cloned()
        .collect()
}

#[test]
fn a_domain_added_to_a_live_blue_green_stack_moves_its_rules_to_https_and_http_redirects() {
    let (project, _) = deployable("it-bgzone");
    project.predict(r#"echo "{\"prediction\": 4.526, \"model_path\": \"$MODEL_PATH\"}""#);
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{config}[deploy]\nstrategy = \"blue_green\"\nbake_time = \"1m\"\n"),
    )
    .unwrap();
    // Several deployments first: production lives in whichever group ECS left it.
    let first = project.mldeploy(&["up", "--output", "json"]);
    first.expect_code(0);
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);
    project
        .mldeploy(&["up", "--model-version", "6"])
        .expect_code(0);
    assert_eq!(rules_on(&project.name, 80).len(), 2);

    let zone = HostedZone::new(&project.name);
    let domain = format!("models.{}", zone.name);
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config.replace(
            "[service]\n",
            &format!(
                "[service]\ndomain = \"{domain}\"\nhosted_zone_id = \"{}\"\n",
                zone.id
            ),
        ),
    )
    .unwrap();
    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[
            "listener rule HTTPS:443 test",
            "listener rule HTTPS:443 production",
            "listener rule HTTP:80 production",
            "HTTPS:443 forwards now",
        ],
    );
    let moved = project.mldeploy(&["up", "--model-version", "7", "--timeout", "5m"]);
    moved.expect_code(0);
    assert_says(&moved.stderr, &["POST_TEST_TRAFFIC_SHIFT"]);
    assert!(
        !moved.stderr.contains("ContinueServiceDeployment"),
        "{}",
        moved.stderr
    );
    assert_eq!(
        rules_on(&project.name, 80),
        Vec::<Value>::new(),
        "mldeploy's rules are still on HTTP:80"
    );
    assert_eq!(rules_on(&project.name, 443).len(), 2);

    let alb = load_balancer_dns(&project.name);
    let address = address_of(&alb);
    let plain = predict_through(&format!("http://{alb}"));
    let status = Run::of({
        let mut curl = std::process::Command::new("curl");
        curl.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://{alb}/cgi-bin/predict"));
        curl
    });
    assert!(
        status.stdout.starts_with("301 https://"),
        "HTTP does not redirect: {} ({})",
        status.stdout,
        plain.stdout
    );
    let route = format!("{domain}:443:{address}");
    let answer = predict_over_https(&domain, ["--resolve", &route]);
    assert!(answer.stdout.contains("/7\""), "{}", answer.stdout);

    // And the next deployment goes through the HTTPS rules.
    project
        .mldeploy(&["up", "--model-version", "6"])
        .expect_code(0);
    let answer = predict_over_https(&domain, ["--resolve", &route]);
    assert!(answer.stdout.contains("/6\""), "{}", answer.stdout);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn a_private_hosted_zone_is_refused_for_a_certificate_before_anything_changes() {
    let (project, _) = deployable("it-privzone");
    let vpc = aws(&["ec2", "create-vpc", "--cidr-block", "10.77.0.0/16"]).json()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let zone = HostedZone::create(
        format!("{}.internal", project.name),
        &[
            "--hosted-zone-config",
            "PrivateZone=true",
            "--vpc",
            &format!("VPCRegion=us-east-1,VPCId={vpc}"),
        ],
    );
    let domain = format!("models.{}", zone.name);
    in_zone(&project, &domain, &zone);
    let run = project.mldeploy(&["up"]);
    drop(zone);
    let _ = aws(&["ec2", "delete-vpc", "--vpc-id", &vpc]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "service.hosted_zone_id",
            "private hosted zone",
            "service.certificate_arn",
        ],
    );
    assert!(
        certificates_for(&domain).is_empty(),
        "a certificate was requested"
    );
    assert_ne!(
        aws(&["elbv2", "describe-load-balancers", "--names", &project.name]).code,
        0,
        "a load balancer was made"
    );
}
