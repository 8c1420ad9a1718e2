//! Private tasks (`network.tasks = "private"`): private subnets of their own without public IPs,
//! reaching ECR, S3 and CloudWatch Logs through one NAT gateway or through VPC endpoints, a live
//! stack switched from public to private, and a teardown that leaves nothing, checked through
//! awscli's listings. The sandbox stops a task that cannot reach the registry from its subnet,
//! as Fargate does (tests/sandbox/vpc_egress.py).

use crate::support::*;

/// What awscli lists with the project's tag (`command` of ec2, the list's key).
fn tagged(command: &str, key: &str, project: &str) -> Vec<serde_json::Value> {
    by_tag(command, project, key)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The tasks' subnets and whether they get public IPs.
fn tasks_network(project: &str) -> (Vec<String>, String) {
    let svc = service_of(project);
    let vpc = &svc["networkConfiguration"]["awsvpcConfiguration"];
    let subnets = vpc["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (
        subnets,
        vpc["assignPublicIp"].as_str().unwrap_or("").to_string(),
    )
}

/// The Name tags of the subnets with these ids.
fn subnet_names(ids: &[String]) -> Vec<String> {
    let mut args = vec!["ec2", "describe-subnets", "--subnet-ids"];
    args.extend(ids.iter().map(String::as_str));
    aws(&args).json()["Subnets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Tags"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["Key"] == "Name")
        .map(|t| t["Value"].as_str().unwrap().to_string())
        .collect()
}

fn set_network(project: &Project, table: &str) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let base = config.split("[network]").next().unwrap().to_string();
    std::fs::write(&path, format!("{base}{table}")).unwrap();
}

/// Nothing of the project's network is left: no NAT gateway but deleted ones, no address, no
/// endpoint, subnet or VPC.
fn nothing_left(project: &str) {
    // Deleted NAT gateways and endpoints stay listed a while, as `deleted`.
    for (command, key) in [
        ("describe-nat-gateways", "NatGateways"),
        ("describe-vpc-endpoints", "VpcEndpoints"),
    ] {
        let left = tagged(command, key, project);
        assert!(
            left.iter().all(|n| n["State"] == "deleted"),
            "{command} lists {left:?}"
        );
    }
    for (command, key) in [
        ("describe-addresses", "Addresses"),
        ("describe-subnets", "Subnets"),
        ("describe-route-tables", "RouteTables"),
        ("describe-vpcs", "Vpcs"),
    ] {
        let left = tagged(command, key, project);
        assert!(left.is_empty(), "{command} still lists {left:?}");
    }
    let groups = aws(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        &format!("Name=group-name,Values={project}-endpoints"),
    ])
    .json();
    assert_eq!(groups["SecurityGroups"], serde_json::json!([]), "{groups}");
}

#[test]
fn a_live_stack_moves_its_tasks_to_private_subnets_behind_a_nat_gateway_and_destroy_leaves_nothing()
{
    let (project, _) = deployable("it-privnat");
    let name = project.name.clone();
    project.mldeploy(&["up"]).expect_code(0);
    assert_eq!(tasks_network(&name).1, "ENABLED");

    set_network(
        &project,
        "[network]\ntasks = \"private\"\negress = \"nat\"\n",
    );
    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[
            "create subnet",
            "-private-",
            "create NAT gateway",
            "USD a month",
            "no public IPs for the tasks",
        ],
    );
    let up = project.mldeploy(&["up"]);
    up.expect_code(0);
    let (subnets, public_ip) = tasks_network(&name);
    assert_eq!(public_ip, "DISABLED");
    let names = subnet_names(&subnets);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.contains("-private-")), "{names:?}");
    let nats = tagged("describe-nat-gateways", "NatGateways", &name);
    assert_eq!(nats.len(), 1, "{nats:?}");
    assert_eq!(nats[0]["State"], "available");
    // The tasks answer through the load balancer from their private subnets (up's smoke test
    // passed), and status says the service is healthy.
    project.mldeploy(&["status"]).expect_code(0);

    // Without its way out a new task cannot start, as on Fargate.
    let table = tagged("describe-route-tables", "RouteTables", &name)
        .into_iter()
        .find(|t| {
            t["Tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|tag| tag["Value"] == format!("{name}-private"))
        })
        .expect("the private route table");
    aws(&[
        "ec2",
        "delete-route",
        "--route-table-id",
        table["RouteTableId"].as_str().unwrap(),
        "--destination-cidr-block",
        "0.0.0.0/0",
    ])
    .expect_code(0);
    let plan = project.mldeploy(&["plan"]);
    assert_says(&plan.stdout, &["route 0.0.0.0/0 to the NAT gateway"]);
    project.mldeploy(&["up"]).expect_code(0);

    // Back to public tasks: they move; the plan keeps saying what the idle gateway costs.
    set_network(&project, "");
    let plan = project.mldeploy(&["plan"]);
    assert_says(
        &plan.stdout,
        &[
            "public IPs for the tasks",
            "left from network.tasks",
            "destroy` removes it",
        ],
    );
    project.mldeploy(&["up"]).expect_code(0);
    assert_eq!(tasks_network(&name).1, "ENABLED");

    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    nothing_left(&name);
}

#[test]
fn private_tasks_behind_an_internal_load_balancer_start_through_vpc_endpoints_alone_and_destroy_removes_them(
) {
    let (project, _) = deployable("it-privvpce");
    let name = project.name.clone();
    let network =
        "[network]\ntasks = \"private\"\negress = \"endpoints\"\nload_balancer = \"internal\"\n";
    set_network(&project, network);
    // The smoke test reaches the internal load balancer as a run inside the VPC would. The
    // interface endpoints are pending for a while after they are made, as on AWS; the first
    // tasks start once they are available, so the first deployment succeeds.
    let first = project.mldeploy(&["up"]);
    first.expect_code(0);
    assert_says(
        &first.stderr,
        &[
            "Waiting for the VPC endpoint(s)",
            "com.amazonaws.us-east-1.ecr.api",
        ],
    );
    assert!(
        tagged("describe-vpc-endpoints", "VpcEndpoints", &name)
            .iter()
            .all(|e| e["State"]
                .as_str()
                .unwrap_or_default()
                .eq_ignore_ascii_case("available")),
        "an endpoint is not available after up"
    );
    assert_eq!(tasks_network(&name).1, "DISABLED");
    let lb = aws(&["elbv2", "describe-load-balancers", "--names", &name]).json();
    assert_eq!(lb["LoadBalancers"][0]["Scheme"], "internal", "{lb}");
    // AWS cannot change a load balancer's scheme: refused before anything changes.
    set_network(&project, &network.replace("internal", "internet-facing"));
    let refused = project.mldeploy(&["plan"]);
    refused.expect_code(2);
    assert_says(
        &refused.stderr,
        &["is internal", "cannot change a load balancer's scheme"],
    );
    set_network(&project, network);
    let mut services: Vec<String> = tagged("describe-vpc-endpoints", "VpcEndpoints", &name)
        .iter()
        .map(|e| e["ServiceName"].as_str().unwrap().to_string())
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            "com.amazonaws.us-east-1.ecr.api",
            "com.amazonaws.us-east-1.ecr.dkr",
            "com.amazonaws.us-east-1.logs",
            "com.amazonaws.us-east-1.s3",
        ]
    );
    assert!(tagged("describe-nat-gateways", "NatGateways", &name).is_empty());
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    nothing_left(&name);
}
