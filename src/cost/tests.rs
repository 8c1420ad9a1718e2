//! The estimate against figures computed by hand from the price table.

use super::*;

/// A public stack in us-east-1: 2 tasks of 1 vCPU / 2 GB on x86, two zones, logs kept 30 days.
fn public_stack() -> Inputs {
    Inputs {
        region: "us-east-1".into(),
        cpu: 1024,
        memory: 2048,
        arm: false,
        tasks: (2, 2),
        public_task_ips: true,
        lb_zones: 2,
        internet_facing: true,
        nat: false,
        interface_endpoints: 0,
        endpoint_zones: 2,
        log_retention_days: 30,
        workers: Vec::new(),
    }
}

fn item<'a>(e: &'a Estimate, name: &str) -> &'a Item {
    e.items
        .iter()
        .find(|i| i.item == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", e.items))
}

#[test]
fn a_public_stack_costs_what_the_price_table_gives_by_hand() {
    let e = estimate(&public_stack());
    // Fargate: 2 tasks x 730 h x (1 vCPU x 0.04048 + 2 GB x 0.004445) = 72.0802
    assert_eq!(item(&e, "Fargate").monthly_usd, 72.08);
    // Load balancer: 730 h x (0.0225 + 1 LCU x 0.008) = 22.265
    assert!((item(&e, "load balancer").monthly_usd - 22.265).abs() <= 0.005);
    // Public IPv4: (2 tasks + 2 load balancer zones) x 730 h x 0.005 = 14.60
    assert_eq!(item(&e, "public IPv4").monthly_usd, 14.6);
    // Logs: 2 GB x 0.50 ingested + 2 GB x (30 x 24 / 730) months x 0.03 stored = 1.0592
    assert_eq!(item(&e, "CloudWatch Logs").monthly_usd, 1.06);
    // 72.0802 + 22.265 + 14.60 + 1.0592 = 110.0044
    assert_eq!(e.monthly_usd, 110.0);
    assert_eq!(e.monthly_usd_max, 110.0);
    assert!(e
        .items
        .iter()
        .all(|i| i.item != "NAT gateway" && i.item != "VPC endpoints"));
    let text = e.to_string();
    assert!(
        text.starts_with("Estimated cost: about 110 USD a month (us-east-1 list prices recorded "),
        "{text}"
    );
    assert!(text.contains("1 LCU on average (assumed)"), "{text}");
}

#[test]
fn private_arm_tasks_behind_a_nat_with_autoscaling_in_another_region() {
    let inputs = Inputs {
        region: "eu-central-1".into(),
        cpu: 512,
        memory: 1024,
        arm: true,
        tasks: (1, 4),
        public_task_ips: false,
        nat: true,
        log_retention_days: 7,
        ..public_stack()
    };
    let e = estimate(&inputs);
    // Fargate: 730 h x (0.5 x 0.03238 + 1 x 0.00356) = 14.4175 a task; 1 to 4 tasks.
    let fargate = item(&e, "Fargate");
    assert_eq!(
        (fargate.monthly_usd, fargate.monthly_usd_max),
        (14.42, 57.67)
    );
    // Public IPv4: 2 load balancer zones + the NAT's address, none for the tasks = 10.95.
    let ips = item(&e, "public IPv4");
    assert_eq!((ips.monthly_usd, ips.monthly_usd_max), (10.95, 10.95));
    // NAT gateway: 730 h x 0.045 = 32.85.
    assert_eq!(item(&e, "NAT gateway").monthly_usd, 32.85);
    // Low: 14.4175 + 22.265 + 10.95 + 32.85 + (0.5 + 7 x 24 / 730 x 0.03) = 80.9894
    // High: 57.67 + 22.265 + 10.95 + 32.85 + 4 x 0.506904 = 125.7626
    assert_eq!((e.monthly_usd, e.monthly_usd_max), (80.99, 125.76));
    assert_eq!(e.prices_of, "us-east-1");
    let text = e.to_string();
    assert!(text.contains("about 81-126 USD a month"), "{text}");
    assert!(
        text.contains("mldeploy's table has no prices for eu-central-1"),
        "{text}"
    );
}

#[test]
fn endpoints_are_counted_per_zone_and_an_internal_load_balancer_has_no_public_address() {
    let inputs = Inputs {
        public_task_ips: false,
        internet_facing: false,
        interface_endpoints: 4,
        ..public_stack()
    };
    let e = estimate(&inputs);
    // 4 endpoints x 2 zones x 730 h x 0.01 = 58.40
    assert_eq!(item(&e, "VPC endpoints").monthly_usd, 58.4);
    assert!(e.items.iter().all(|i| i.item != "public IPv4"), "{e:?}");
}

#[test]
fn the_inputs_come_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let config = crate::config::parse(
        r#"
[project]
name = "housing"
[model]
bucket = "my-models"
path = "m/{version}"
[service]
cpu = 2048
memory = 4096
log_retention_days = 14
desired_count = 2
secrets = { TOKEN = "arn:aws:secretsmanager:us-east-1:1:secret:t" }
[service.autoscaling]
min_count = 2
max_count = 6
[network]
tasks = "private"
egress = "endpoints"
load_balancer = "internal"
"#,
        &dir.path().join("mldeploy.toml"),
    )
    .unwrap();
    let inputs = Inputs::of(&config, "us-west-2", true, 2, 2);
    assert_eq!(
        inputs,
        Inputs {
            region: "us-west-2".into(),
            cpu: 2048,
            memory: 4096,
            arm: true,
            tasks: (2, 6),
            public_task_ips: false,
            lb_zones: 2,
            internet_facing: false,
            nat: false,
            // ecr.api, ecr.dkr, logs and secretsmanager; S3's gateway endpoint is free.
            interface_endpoints: 4,
            workers: Vec::new(),
            endpoint_zones: 2,
            log_retention_days: 14,
        }
    );
}

#[test]
fn each_worker_is_a_line_of_its_own_and_its_tasks_count_for_addresses_and_logs() {
    let alone = estimate(&public_stack());
    let inputs = Inputs {
        workers: vec![WorkerTasks {
            name: "scorer".into(),
            cpu: 512,
            memory: 1024,
            count: 2,
        }],
        ..public_stack()
    };
    let e = estimate(&inputs);
    // Fargate: 730 h x (0.5 x 0.04048 + 1 x 0.004445) = 18.02 a task; 2 tasks.
    let worker = item(&e, "Fargate, worker scorer");
    assert!((worker.monthly_usd - 36.04).abs() < 0.02, "{worker:?}");
    assert_eq!(
        item(&e, "Fargate").monthly_usd,
        item(&alone, "Fargate").monthly_usd
    );
    assert!(item(&e, "public IPv4").monthly_usd > item(&alone, "public IPv4").monthly_usd);
    assert!(item(&e, "CloudWatch Logs").monthly_usd > item(&alone, "CloudWatch Logs").monthly_usd);
    assert!((e.monthly_usd - alone.monthly_usd - worker.monthly_usd) > 0.0);
}
