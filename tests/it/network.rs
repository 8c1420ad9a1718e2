//! The project network against moto's EC2: created whole, kept on a re-run, repaired when a
//! piece is missing, and untouched by a dry run.

use mldeploy::aws::Aws;
use mldeploy::targets::ecs::{network, Converge};
use mldeploy::targets::{Action, Change};

use crate::support::{aws, by_tag, require_sandbox, unique_name};

async fn ec2() -> aws_sdk_ec2::Client {
    require_sandbox();
    Aws::load(None, None, None).await.unwrap().ec2()
}

fn converge(project: &str, dry_run: bool) -> Converge {
    Converge {
        project: project.to_string(),
        dry_run,
    }
}

fn actions(changes: &[Change]) -> Vec<(&'static str, Action)> {
    changes.iter().map(|c| (c.resource, c.action)).collect()
}

/// The project's public network (its tasks in the public subnets), converged or planned.
async fn public_network(
    ec2: &aws_sdk_ec2::Client,
    project: &str,
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> anyhow::Result<network::Network> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let cv = converge(project, dry_run);
    network::ensure(ec2, &cv, Default::default(), until, changes).await
}

#[tokio::test]
async fn a_new_project_gets_a_public_network_in_two_zones_and_a_rerun_keeps_it() {
    let ec2 = ec2().await;
    let project = unique_name("it-net");
    let mut changes = Vec::new();
    let net = public_network(&ec2, &project, false, &mut changes)
        .await
        .unwrap();
    assert!(
        changes.iter().all(|c| c.action == Action::Create),
        "{changes:#?}"
    );
    assert_eq!(net.subnet_ids.len(), 2);

    let vpcs = by_tag("describe-vpcs", &project, "Vpcs");
    assert_eq!(vpcs.as_array().unwrap().len(), 1);
    assert_eq!(vpcs[0]["VpcId"], net.vpc_id.known().unwrap());
    let subnets = by_tag("describe-subnets", &project, "Subnets");
    let subnets = subnets.as_array().unwrap();
    assert_eq!(subnets.len(), 2);
    assert_ne!(
        subnets[0]["AvailabilityZone"],
        subnets[1]["AvailabilityZone"]
    );
    assert!(subnets.iter().all(|s| s["MapPublicIpOnLaunch"] == true));
    let igws = by_tag("describe-internet-gateways", &project, "InternetGateways");
    assert_eq!(
        igws[0]["Attachments"][0]["VpcId"],
        net.vpc_id.known().unwrap()
    );
    let tables = by_tag("describe-route-tables", &project, "RouteTables");
    let table = &tables[0];
    assert!(table["Routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["DestinationCidrBlock"] == "0.0.0.0/0"
            && r["GatewayId"] == igws[0]["InternetGatewayId"]));
    assert_eq!(
        table["Associations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["SubnetId"].is_string())
            .count(),
        2
    );

    let mut again = Vec::new();
    let net2 = public_network(&ec2, &project, false, &mut again)
        .await
        .unwrap();
    assert_eq!(net2, net);
    assert!(again.iter().all(|c| c.action == Action::Keep), "{again:#?}");
    assert_eq!(
        by_tag("describe-vpcs", &project, "Vpcs")
            .as_array()
            .unwrap()
            .len(),
        1,
        "no duplicate VPC"
    );

    // A route deleted by hand is put back, and only that is reported.
    let table_id = table["RouteTableId"].as_str().unwrap();
    aws(&[
        "ec2",
        "delete-route",
        "--route-table-id",
        table_id,
        "--destination-cidr-block",
        "0.0.0.0/0",
    ])
    .expect_code(0);
    let mut repair = Vec::new();
    public_network(&ec2, &project, false, &mut repair)
        .await
        .unwrap();
    let updated: Vec<_> = repair.iter().filter(|c| c.action != Action::Keep).collect();
    assert_eq!(updated.len(), 1, "{repair:#?}");
    assert_eq!(updated[0].resource, "route table");
    assert!(updated[0].detail.as_deref().unwrap().contains("0.0.0.0/0"));
}

#[tokio::test]
async fn a_dry_run_reports_the_network_and_creates_nothing() {
    let ec2 = ec2().await;
    let project = unique_name("it-netplan");
    let mut changes = Vec::new();
    public_network(&ec2, &project, true, &mut changes)
        .await
        .unwrap();
    assert_eq!(
        actions(&changes),
        [
            ("VPC", Action::Create),
            ("subnet", Action::Create),
            ("subnet", Action::Create),
            ("internet gateway", Action::Create),
            ("route table", Action::Create),
        ]
    );
    assert!(by_tag("describe-vpcs", &project, "Vpcs")
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        by_tag("describe-internet-gateways", &project, "InternetGateways")
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_empty_second_vpc_a_retried_create_left_is_deleted_and_the_one_in_use_kept() {
    let ec2 = ec2().await;
    let project = unique_name("it-nettwin");
    let net = public_network(&ec2, &project, false, &mut Vec::new())
        .await
        .unwrap();
    // What a CreateVpc whose answer was lost and that was retried leaves: a second tagged VPC.
    let tags = format!(
        "ResourceType=vpc,Tags=[{{Key=mldeploy:project,Value={project}}},{{Key=Name,Value={project}}}]"
    );
    let twin = aws(&[
        "ec2",
        "create-vpc",
        "--cidr-block",
        "10.0.0.0/16",
        "--tag-specifications",
        &tags,
    ])
    .expect_code(0)
    .json()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();

    let mut planned = Vec::new();
    public_network(&ec2, &project, true, &mut planned)
        .await
        .unwrap();
    let delete: Vec<_> = planned
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    assert_eq!(delete.len(), 1, "{planned:#?}");
    assert_eq!(delete[0].name, format!("{project} ({twin})"));
    assert_eq!(
        by_tag("describe-vpcs", &project, "Vpcs")
            .as_array()
            .unwrap()
            .len(),
        2,
        "a plan deletes nothing"
    );

    let mut changes = Vec::new();
    let again = public_network(&ec2, &project, false, &mut changes)
        .await
        .unwrap();
    assert_eq!(again, net, "the VPC in use is the one kept");
    let vpcs = by_tag("describe-vpcs", &project, "Vpcs");
    assert_eq!(vpcs.as_array().unwrap().len(), 1, "{vpcs}");
    assert_eq!(vpcs[0]["VpcId"], net.vpc_id.known().unwrap());
    let mut third = Vec::new();
    public_network(&ec2, &project, false, &mut third)
        .await
        .unwrap();
    assert!(third.iter().all(|c| c.action == Action::Keep), "{third:#?}");
}
