//! The way out: the project's internet gateway, attached to its VPC, and a route table sending
//! 0.0.0.0/0 to it, associated with each public subnet; for private tasks, a second table
//! (`<project>-private`) for the private subnets, sending 0.0.0.0/0 to the NAT gateway, or
//! nowhere when VPC endpoints are the way out.

use aws_sdk_ec2::types::{InternetGateway, ResourceType, RouteTable};
use aws_sdk_ec2::Client;

use crate::targets::ecs::wait::{while_busy, Wait};

use super::tagged;
use crate::aws::call_error;
use crate::targets::ecs::{Id, Planned};
use crate::targets::{Action, Change};

/// What the project's internet gateway needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStep {
    /// Create it, or it exists with this id.
    pub existing: Option<String>,
    /// Attach it to the project's VPC.
    pub attach: bool,
}

/// Decides, from the project's gateway (if any), what it needs: created, attached, or kept.
pub fn plan_internet_gateway(
    project: &str,
    vpc: &Id,
    found: Option<&InternetGateway>,
) -> Planned<GatewayStep> {
    let Some(igw) = found else {
        return Planned::change(
            Change::new("internet gateway", project, Action::Create)
                .because(format!("attached to {vpc}")),
            Id::after_apply(),
            GatewayStep {
                existing: None,
                attach: true,
            },
        );
    };
    let id = igw.internet_gateway_id().unwrap_or_default().to_string();
    let attached = vpc
        .known()
        .is_some_and(|vpc| igw.attachments().iter().any(|a| a.vpc_id() == Some(vpc)));
    if attached {
        return Planned::keep(
            Change::new("internet gateway", project, Action::Keep).because(&id),
            Id::Known(id),
        );
    }
    Planned::change(
        Change::new("internet gateway", project, Action::Update)
            .because(format!("attach to {vpc}")),
        Id::Known(id.clone()),
        GatewayStep {
            existing: Some(id),
            attach: true,
        },
    )
}

pub async fn apply_internet_gateway(
    ec2: &Client,
    project: &str,
    vpc: &Id,
    step: GatewayStep,
) -> anyhow::Result<Option<Id>> {
    let (id, created) = match step.existing {
        Some(id) => (id, false),
        None => (
            ec2.create_internet_gateway()
                .tag_specifications(tagged(ResourceType::InternetGateway, project, project))
                .send()
                .await
                .map_err(|e| call_error("ec2:CreateInternetGateway", e))?
                .internet_gateway
                .and_then(|g| g.internet_gateway_id)
                .unwrap_or_default(),
            true,
        ),
    };
    if step.attach {
        ec2.attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(vpc.applied("VPC")?)
            .send()
            .await
            .map_err(|e| call_error("ec2:AttachInternetGateway", e))?;
    }
    Ok(created.then_some(Id::Known(id)))
}

/// Where a route table sends 0.0.0.0/0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    InternetGateway(Id),
    NatGateway(Id),
    /// No default route (VPC endpoints serve the tasks).
    Nowhere,
}

impl Way {
    fn describe(&self) -> &'static str {
        match self {
            Way::InternetGateway(_) => "the internet gateway",
            Way::NatGateway(_) => "the NAT gateway",
            Way::Nowhere => "nowhere",
        }
    }

    fn is(&self, route: &aws_sdk_ec2::types::Route) -> bool {
        match self {
            Way::InternetGateway(id) => id.known().is_some_and(|g| route.gateway_id() == Some(g)),
            Way::NatGateway(id) => id
                .known()
                .is_some_and(|n| route.nat_gateway_id() == Some(n)),
            Way::Nowhere => false,
        }
    }
}

/// The table's route for 0.0.0.0/0, if it has one.
pub fn default_route(table: &RouteTable) -> Option<&aws_sdk_ec2::types::Route> {
    table
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
}

/// What one of the project's route tables needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableStep {
    /// Create it, or it exists with this id.
    pub existing: Option<String>,
    /// Add the route 0.0.0.0/0 to where the table sends it.
    pub default_route: bool,
    /// A default route to somewhere else is there: replace it.
    pub replace: bool,
    /// Associate these subnets with it.
    pub associate: Vec<Id>,
}

/// Decides, from the route table named `name` (if any), what it needs: the default route to
/// `way` and an association with each subnet.
pub fn plan_route_table(
    name: &str,
    table: Option<&RouteTable>,
    way: &Way,
    subnets: &[Id],
) -> Planned<RouteTableStep> {
    let default = table.and_then(default_route);
    let has_default_route = *way == Way::Nowhere || default.is_some_and(|r| way.is(r));
    let project = name;
    let associate: Vec<Id> = subnets
        .iter()
        .filter(|subnet| {
            !table.is_some_and(|t| {
                t.associations()
                    .iter()
                    .any(|a| subnet.known().is_some_and(|s| a.subnet_id() == Some(s)))
            })
        })
        .cloned()
        .collect();
    let mut missing = Vec::new();
    if !has_default_route {
        missing.push(format!("route 0.0.0.0/0 to {}", way.describe()));
    }
    missing.extend(associate.iter().map(|s| format!("associate {s}")));
    let existing = table.map(|t| t.route_table_id().unwrap_or_default().to_string());
    let step = RouteTableStep {
        existing: existing.clone(),
        default_route: !has_default_route,
        replace: !has_default_route && default.is_some(),
        associate,
    };
    let found = existing.clone().map(Id::Known).unwrap_or(Id::after_apply());
    match existing {
        None => Planned::change(
            Change::new("route table", project, Action::Create).because(missing.join(", ")),
            found,
            step,
        ),
        Some(id) if missing.is_empty() => Planned::keep(
            Change::new("route table", project, Action::Keep).because(id),
            found,
        ),
        Some(_) => Planned::change(
            Change::new("route table", project, Action::Update).because(missing.join(", ")),
            found,
            step,
        ),
    }
}

pub async fn apply_route_table(
    ec2: &Client,
    project: &str,
    name: &str,
    vpc: &Id,
    way: &Way,
    step: RouteTableStep,
) -> anyhow::Result<Option<Id>> {
    let (id, created) = match step.existing {
        Some(id) => (id, false),
        None => (
            ec2.create_route_table()
                .vpc_id(vpc.applied("VPC")?)
                .tag_specifications(tagged(ResourceType::RouteTable, project, name))
                .send()
                .await
                .map_err(|e| call_error("ec2:CreateRouteTable", e))?
                .route_table
                .and_then(|t| t.route_table_id)
                .unwrap_or_default(),
            true,
        ),
    };
    let (gateway, nat) = match way {
        Way::InternetGateway(igw) => (Some(igw.applied("internet gateway")?), None),
        Way::NatGateway(nat) => (None, Some(nat.applied("NAT gateway")?)),
        Way::Nowhere => (None, None),
    };
    if step.default_route && step.replace {
        ec2.replace_route()
            .route_table_id(&id)
            .destination_cidr_block("0.0.0.0/0")
            .set_gateway_id(gateway.map(str::to_string))
            .set_nat_gateway_id(nat.map(str::to_string))
            .send()
            .await
            .map_err(|e| call_error("ec2:ReplaceRoute", e))?;
    } else if step.default_route {
        ec2.create_route()
            .route_table_id(&id)
            .destination_cidr_block("0.0.0.0/0")
            .set_gateway_id(gateway.map(str::to_string))
            .set_nat_gateway_id(nat.map(str::to_string))
            .send()
            .await
            .map_err(|e| call_error("ec2:CreateRoute", e))?;
    }
    for subnet in &step.associate {
        ec2.associate_route_table()
            .route_table_id(&id)
            .subnet_id(subnet.applied("subnet")?)
            .send()
            .await
            .map_err(|e| call_error("ec2:AssociateRouteTable", e))?;
    }
    Ok(created.then_some(Id::Known(id)))
}

/// Deletes the route table, after its subnet associations (the VPC's main one is never ours).
pub async fn delete_route_table(ec2: &Client, id: &str, wait: &Wait<'_>) -> anyhow::Result<()> {
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeRouteTables", e))?;
    for assoc in tables.route_tables().iter().flat_map(|t| t.associations()) {
        if assoc.main() == Some(true) {
            continue;
        }
        if let Some(assoc_id) = assoc.route_table_association_id() {
            ec2.disassociate_route_table()
                .association_id(assoc_id)
                .send()
                .await
                .map_err(|e| call_error("ec2:DisassociateRouteTable", e))?;
        }
    }
    while_busy(wait, || ec2.delete_route_table().route_table_id(id).send())
        .await
        .map_err(|e| call_error("ec2:DeleteRouteTable", e))?;
    Ok(())
}

/// Detaches the gateway from `vpc` (waiting while public addresses are still mapped) and deletes it.
pub async fn delete_internet_gateway(
    ec2: &Client,
    id: &str,
    vpc: Option<&str>,
    wait: &Wait<'_>,
) -> anyhow::Result<()> {
    if let Some(vpc) = vpc {
        while_busy(wait, || {
            ec2.detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(vpc)
                .send()
        })
        .await
        .map_err(|e| call_error("ec2:DetachInternetGateway", e))?;
    }
    ec2.delete_internet_gateway()
        .internet_gateway_id(id)
        .send()
        .await
        .map_err(|e| call_error("ec2:DeleteInternetGateway", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{Route, RouteTableAssociation};

    #[test]
    fn a_route_table_gets_what_it_lacks_and_new_subnets_are_associated_after_apply() {
        let table = RouteTable::builder()
            .route_table_id("rtb-1")
            .routes(
                Route::builder()
                    .destination_cidr_block("0.0.0.0/0")
                    .gateway_id("igw-1")
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .subnet_id("subnet-1")
                    .build(),
            )
            .build();
        let igw = Way::InternetGateway(Id::Known("igw-1".into()));
        let subnets = [Id::Known("subnet-1".into()), Id::after_apply()];
        let planned = plan_route_table("p", Some(&table), &igw, &subnets);
        assert_eq!(
            planned.step,
            Some(RouteTableStep {
                existing: Some("rtb-1".into()),
                default_route: false,
                replace: false,
                associate: vec![subnets[1].clone()],
            })
        );
        assert_eq!(
            planned.changes[0].detail.as_deref(),
            Some("associate (new)")
        );

        let complete = plan_route_table("p", Some(&table), &igw, &subnets[..1]);
        assert_eq!(complete.step, None);
        // A gateway still to be created has no route yet, whatever the table holds.
        let fresh = Way::InternetGateway(Id::after_apply());
        let fresh = plan_route_table("p", Some(&table), &fresh, &subnets[..1]);
        assert!(fresh.step.is_some_and(|s| s.default_route && s.replace));
        let new = plan_route_table(
            "p",
            None,
            &Way::InternetGateway(Id::after_apply()),
            &subnets,
        );
        assert!(new.found.is_new());
        assert_eq!(new.changes[0].action, Action::Create);
    }

    #[test]
    fn a_gateway_is_created_attached_or_kept() {
        let vpc = Id::Known("vpc-1".into());
        let created = plan_internet_gateway("p", &vpc, None);
        assert_eq!(
            created.step,
            Some(GatewayStep {
                existing: None,
                attach: true
            })
        );
        let detached = InternetGateway::builder()
            .internet_gateway_id("igw-1")
            .build();
        let planned = plan_internet_gateway("p", &vpc, Some(&detached));
        assert_eq!(planned.changes[0].action, Action::Update);
        assert_eq!(planned.found, Id::Known("igw-1".into()));
        let attached = InternetGateway::builder()
            .internet_gateway_id("igw-1")
            .attachments(
                aws_sdk_ec2::types::InternetGatewayAttachment::builder()
                    .vpc_id("vpc-1")
                    .build(),
            )
            .build();
        assert_eq!(plan_internet_gateway("p", &vpc, Some(&attached)).step, None);
    }
}
