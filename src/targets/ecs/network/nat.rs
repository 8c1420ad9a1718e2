//! The private tasks' NAT gateway (`network.egress = "nat"`): one, in the first public subnet, with
//! an Elastic IP address, both tagged with the project. `up` waits until it is `available` (it
//! routes nothing before); `destroy` deletes it, waits until it is `deleted`, and then releases
//! its address, which EC2 refuses while the gateway still holds it.

use std::time::Instant;

use aws_sdk_ec2::types::{DomainType, NatGateway, NatGatewayState, ResourceType};
use aws_sdk_ec2::Client;

use super::{project_filter, tagged};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::{Converge, Id, Planned};
use crate::targets::{Action, Change};

/// What a NAT gateway costs, for the plan: us-east-1's prices
/// (https://aws.amazon.com/vpc/pricing/: $0.045 per hour and per GB processed; a public IPv4
/// address $0.005 per hour). Other regions differ a little.
pub const COST: &str =
    "about 36 USD a month before traffic, plus 0.045 USD per GB it carries (us-east-1 prices)";

/// The project's NAT gateways that are not deleted or failed, all pages read.
pub async fn find(ec2: &Client, project: &str) -> anyhow::Result<Vec<NatGateway>> {
    let pages: Vec<_> = crate::all_pages!(
        ec2.describe_nat_gateways()
            .filter(project_filter(project))
            .filter(
                aws_sdk_ec2::types::Filter::builder()
                    .name("state")
                    .values("pending")
                    .values("available")
                    .values("deleting")
                    .build()
            ),
        "ec2:DescribeNatGateways"
    )?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.nat_gateways.unwrap_or_default())
        .collect())
}

/// The gateway the private route table sends 0.0.0.0/0 to: the project's, else a new one in
/// `subnet`, waited for until available (or `until`).
pub async fn ensure(
    ec2: &Client,
    cv: &Converge,
    subnet: &Id,
    until: Instant,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Id> {
    let project = cv.project.as_str();
    let found = find(ec2, project)
        .await?
        .into_iter()
        .find(|n| n.state() != Some(&NatGatewayState::Deleting));
    let planned = match &found {
        Some(nat) => {
            let id = nat.nat_gateway_id().unwrap_or_default().to_string();
            Planned::keep(
                Change::new("NAT gateway", project, Action::Keep).because(format!("{id}; {COST}")),
                Id::Known(id),
            )
        }
        None => Planned::change(
            Change::new("NAT gateway", project, Action::Create)
                .because(format!("in {subnet}, with an Elastic IP address; {COST}")),
            Id::after_apply(),
            (),
        ),
    };
    let id = cv
        .carry_out(planned, changes, |()| create(ec2, project, subnet))
        .await?;
    if let Some(nat) = id.known() {
        if !cv.dry_run {
            wait_available(ec2, nat, until).await?;
        }
    }
    Ok(id)
}

async fn create(ec2: &Client, project: &str, subnet: &Id) -> anyhow::Result<Option<Id>> {
    let allocation = match free_address(ec2, project).await? {
        Some(id) => id,
        None => ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tagged(ResourceType::ElasticIp, project, project))
            .send()
            .await
            .map_err(|e| call_error("ec2:AllocateAddress", e))?
            .allocation_id
            .unwrap_or_default(),
    };
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(subnet.applied("public subnet")?)
        .allocation_id(allocation)
        .tag_specifications(tagged(ResourceType::Natgateway, project, project))
        .send()
        .await
        .map_err(|e| call_error("ec2:CreateNatGateway", e))?
        .nat_gateway
        .and_then(|n| n.nat_gateway_id)
        .unwrap_or_default();
    Ok(Some(Id::Known(nat)))
}

/// A project address no gateway holds (a run that stopped between allocating and creating).
async fn free_address(ec2: &Client, project: &str) -> anyhow::Result<Option<String>> {
    Ok(addresses(ec2, project)
        .await?
        .into_iter()
        .find(|a| a.association_id().is_none() && a.network_interface_id().is_none())
        .and_then(|a| a.allocation_id))
}

/// The project's Elastic IP addresses.
pub async fn addresses(
    ec2: &Client,
    project: &str,
) -> anyhow::Result<Vec<aws_sdk_ec2::types::Address>> {
    Ok(ec2
        .describe_addresses()
        .filters(project_filter(project))
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeAddresses", e))?
        .addresses
        .unwrap_or_default())
}

/// Polls until the gateway is `available` (a failed one is an error naming its reason).
async fn wait_available(ec2: &Client, id: &str, until: Instant) -> anyhow::Result<()> {
    loop {
        let state = state_of(ec2, id).await?;
        match state.as_ref().and_then(|n| n.state()) {
            Some(NatGatewayState::Available) => return Ok(()),
            Some(NatGatewayState::Failed) | Some(NatGatewayState::Deleted) | None => {
                let why = state
                    .as_ref()
                    .and_then(|n| n.failure_message())
                    .unwrap_or("it is gone");
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!("NAT gateway {id} did not become available: {why}. Run `mldeploy up` again to make a new one"),
                ));
            }
            _ if Instant::now() >= until => {
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!("NAT gateway {id} is still pending at the --timeout; run `mldeploy up` again to go on waiting"),
                ))
            }
            _ => tokio::time::sleep(crate::aws::poll::interval()).await,
        }
    }
}

async fn state_of(ec2: &Client, id: &str) -> anyhow::Result<Option<NatGateway>> {
    Ok(ec2
        .describe_nat_gateways()
        .nat_gateway_ids(id)
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeNatGateways", e))?
        .nat_gateways
        .unwrap_or_default()
        .into_iter()
        .next())
}

/// Deletes the gateway and waits until it is `deleted` (its address stays held until then).
pub async fn delete(
    ec2: &Client,
    id: &str,
    wait: &crate::targets::ecs::wait::Wait<'_>,
) -> anyhow::Result<()> {
    ec2.delete_nat_gateway()
        .nat_gateway_id(id)
        .send()
        .await
        .map_err(|e| call_error("ec2:DeleteNatGateway", e))?;
    crate::targets::ecs::wait::until_gone(&format!("NAT gateway {id}"), wait, || async {
        Ok(state_of(ec2, id)
            .await?
            .and_then(|n| n.state().cloned())
            .is_none_or(|s| s == NatGatewayState::Deleted))
    })
    .await
}

/// Releases the address, once no gateway holds it.
pub async fn release(
    ec2: &Client,
    allocation: &str,
    wait: &crate::targets::ecs::wait::Wait<'_>,
) -> anyhow::Result<()> {
    crate::targets::ecs::wait::while_busy(wait, || {
        ec2.release_address().allocation_id(allocation).send()
    })
    .await
    .map_err(|e| call_error("ec2:ReleaseAddress", e))?;
    Ok(())
}
