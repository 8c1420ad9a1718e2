//! The load balancer, target group and listeners against moto's ELBv2.

use mldeploy::aws::Aws;
use mldeploy::targets::ecs::load_balancer::{self, Listening};
use mldeploy::targets::ecs::{network, security, Converge, Plan};
use mldeploy::targets::{Action, Change};

use crate::support::{aws, require_sandbox, unique_name};

/// The load balancer decided and carried out: what it is, and the changes made.
async fn converged(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    project: &str,
    net: &network::Network,
    groups: &security::SecurityGroups,
    listening: &Listening<'_>,
) -> (load_balancer::LoadBalancer, Vec<Change>) {
    let mut plan = Plan::default();
    let lb = load_balancer::decide(elb, project, net, groups, listening, &mut plan)
        .await
        .unwrap();
    (lb, plan.apply().await.unwrap())
}

#[tokio::test]
async fn the_alb_forwards_port_80_to_an_ip_target_group_checking_and_draining_as_configured() {
    require_sandbox();
    let sdk = Aws::load(None, None, None).await.unwrap();
    let cv = Converge {
        project: unique_name("it-alb"),
        dry_run: false,
    };
    let mut changes = Vec::new();
    let net = network::ensure(&sdk.ec2(), &cv, Default::default(), later(), &mut changes)
        .await
        .unwrap();
    let listening = Listening {
        container_port: 8080,
        health_check_path: "/health",
        certificate: None,
        health: Default::default(),
        strategy: mldeploy::config::Strategy::Rolling,
        internal: false,
    };
    let groups = security::ensure(
        &sdk.ec2(),
        &cv,
        &net.vpc_id,
        &listening.ports(),
        &["0.0.0.0/0".to_string()],
        8080,
        false,
        &mut changes,
    )
    .await
    .unwrap();
    let elb = sdk.elbv2();
    let (lb, lb_changes) = converged(&elb, &cv.project, &net, &groups, &listening).await;
    assert!(
        lb_changes.iter().all(|c| c.action == Action::Create),
        "{lb_changes:#?}"
    );
    assert!(!lb.dns_name.known().unwrap().is_empty());

    let run = aws(&["elbv2", "describe-load-balancers", "--names", &cv.project]);
    let alb = run.json()["LoadBalancers"][0].clone();
    assert_eq!(alb["Scheme"], "internet-facing");
    assert_eq!(alb["SecurityGroups"][0], groups.alb.known().unwrap());
    assert_eq!(alb["AvailabilityZones"].as_array().unwrap().len(), 2);

    let tg = aws(&["elbv2", "describe-target-groups", "--names", &cv.project]).json()
        ["TargetGroups"][0]
        .clone();
    assert_eq!(tg["TargetType"], "ip");
    assert_eq!(tg["Port"], 8080);
    assert_eq!(tg["HealthCheckPath"], "/health");
    // mldeploy's defaults for an inference service, not AWS's (30 s, 5 successes, 300 s).
    assert_eq!(tg["HealthCheckIntervalSeconds"], 10);
    assert_eq!(tg["HealthCheckTimeoutSeconds"], 5);
    assert_eq!(tg["HealthyThresholdCount"], 2);
    assert_eq!(tg["UnhealthyThresholdCount"], 3);
    let delay = || {
        aws(&[
            "elbv2",
            "describe-target-group-attributes",
            "--target-group-arn",
            tg["TargetGroupArn"].as_str().unwrap(),
        ])
        .json()["Attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["Key"] == "deregistration_delay.timeout_seconds")
            .map(|a| a["Value"].clone())
    };
    assert_eq!(delay(), Some(serde_json::json!("30")));
    let tags = aws(&[
        "elbv2",
        "describe-tags",
        "--resource-arns",
        tg["TargetGroupArn"].as_str().unwrap(),
    ]);
    assert_eq!(
        tags.json()["TagDescriptions"][0]["Tags"][0]["Key"],
        "mldeploy:project"
    );

    let listeners = aws(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        lb.arn.known().unwrap(),
    ])
    .json()["Listeners"]
        .clone();
    assert_eq!(listeners.as_array().unwrap().len(), 1);
    assert_eq!(listeners[0]["Port"], 80);
    assert_eq!(listeners[0]["DefaultActions"][0]["Type"], "forward");
    assert_eq!(
        listeners[0]["DefaultActions"][0]["TargetGroupArn"],
        lb.target_group_arn.known().unwrap()
    );

    // Unchanged: everything kept. A new health check path: the target group is updated in place.
    let (same, again) = converged(&elb, &cv.project, &net, &groups, &listening).await;
    assert_eq!(same, lb);
    assert!(again.iter().all(|c| c.action == Action::Keep), "{again:#?}");
    let moved = Listening {
        health_check_path: "/healthz",
        ..listening.clone()
    };
    let (_, update) = converged(&elb, &cv.project, &net, &groups, &moved).await;
    let changed: Vec<_> = update.iter().filter(|c| c.action != Action::Keep).collect();
    assert_eq!(changed.len(), 1, "{update:#?}");
    assert_eq!(
        changed[0].detail.as_deref(),
        Some("health check path /healthz")
    );
    let tg = aws(&["elbv2", "describe-target-groups", "--names", &cv.project]).json()
        ["TargetGroups"][0]
        .clone();
    assert_eq!(tg["HealthCheckPath"], "/healthz");

    // Other timings: converged in place, saying from what to what.
    let slower = Listening {
        health: mldeploy::config::Health {
            check_interval: 20,
            deregistration_delay: 0,
            ..Default::default()
        },
        ..moved.clone()
    };
    let (_, update) = converged(&elb, &cv.project, &net, &groups, &slower).await;
    let changed: Vec<_> = update.iter().filter(|c| c.action != Action::Keep).collect();
    assert_eq!(
        changed[0].detail.as_deref(),
        Some("health check every 10 s -> 20 s, deregistration delay 30 s -> 0 s"),
        "{update:#?}"
    );
    assert_eq!(delay(), Some(serde_json::json!("0")));
}

/// A deadline nothing in these steps waits for.
fn later() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(600)
}
