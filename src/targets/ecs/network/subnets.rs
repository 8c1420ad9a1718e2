//! The project's subnets: one public subnet per availability zone, each with a free /24 of the
//! VPC's range, assigning public IPs on launch, and, for private tasks, one private subnet per
//! zone (named `<project>-private-<zone>`) that assigns none.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Subnet};
use aws_sdk_ec2::Client;

use crate::targets::ecs::wait::{while_busy, Wait};

use super::{filter, tagged};
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::{Id, Planned};
use crate::targets::{Action, Change};

/// Which of the project's subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The load balancer's (and public tasks'), with public IPs on launch.
    Public,
    /// Private tasks', without.
    Private,
}

impl Tier {
    fn name(self, project: &str, zone: &str) -> String {
        match self {
            Tier::Public => format!("{project}-public-{zone}"),
            Tier::Private => format!("{project}-private-{zone}"),
        }
    }

    /// Whether a subnet of the project's is of this tier (public subnets made before private
    /// ones existed carry no tier in their name).
    fn holds(self, project: &str, subnet: &Subnet) -> bool {
        let private = tags::value_of(subnet.tags(), "Name")
            .is_some_and(|n| n.starts_with(&format!("{project}-private-")));
        tags::is_ours(subnet.tags(), project) && (private == (self == Tier::Private))
    }
}

/// What one of the project's subnets needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubnetStep {
    /// Assign public IPs on launch, which a run that lost AWS after creating it never did.
    MapPublicIps { id: String },
    Create {
        name: String,
        cidr: String,
        zone: String,
        /// Assign public IPs on launch.
        public: bool,
    },
}

/// Decides, from the VPC's subnets, what each zone needs: the project's subnet in it, kept or
/// repaired, or a new one with a /24 of the VPC's range that no other subnet uses.
pub fn plan_subnets(
    project: &str,
    vpc: &Id,
    zones: &[String],
    existing: &[Subnet],
    tier: Tier,
    used: &mut Vec<String>,
) -> anyhow::Result<Vec<Planned<SubnetStep>>> {
    used.extend(
        existing
            .iter()
            .filter_map(|s| s.cidr_block().map(str::to_string)),
    );
    let mut planned = Vec::new();
    for zone in zones {
        let ours = existing
            .iter()
            .find(|s| s.availability_zone() == Some(zone.as_str()) && tier.holds(project, s));
        let name = tier.name(project, zone);
        planned.push(match ours {
            Some(subnet) => {
                let id = subnet.subnet_id().unwrap_or_default().to_string();
                if tier == Tier::Private || subnet.map_public_ip_on_launch() == Some(true) {
                    Planned::keep(
                        Change::new("subnet", &name, Action::Keep).because(&id),
                        Id::Known(id),
                    )
                } else {
                    Planned::change(
                        Change::new("subnet", &name, Action::Update)
                            .because("assign public IPs on launch"),
                        Id::Known(id.clone()),
                        SubnetStep::MapPublicIps { id },
                    )
                }
            }
            None => {
                let cidr = (0..=255u8)
                    .map(|i| format!("10.0.{i}.0/24"))
                    .find(|c| !used.contains(c))
                    .ok_or_else(|| {
                        exit::error(
                            ExitStatus::Failed,
                            format!("VPC {vpc} has no free /24 left for a subnet"),
                        )
                    })?;
                used.push(cidr.clone());
                Planned::change(
                    Change::new("subnet", &name, Action::Create)
                        .because(format!("{cidr} in {zone}")),
                    Id::after_apply(),
                    SubnetStep::Create {
                        name,
                        cidr,
                        zone: zone.clone(),
                        public: tier == Tier::Public,
                    },
                )
            }
        });
    }
    Ok(planned)
}

pub async fn create_or_repair_subnet(
    ec2: &Client,
    project: &str,
    vpc: &Id,
    step: SubnetStep,
) -> anyhow::Result<Option<Id>> {
    match step {
        SubnetStep::MapPublicIps { id } => {
            map_public_ips(ec2, &id).await?;
            Ok(None)
        }
        SubnetStep::Create {
            name,
            cidr,
            zone,
            public,
        } => {
            let out = ec2
                .create_subnet()
                .vpc_id(vpc.applied("VPC")?)
                .cidr_block(&cidr)
                .availability_zone(&zone)
                .tag_specifications(tagged(ResourceType::Subnet, project, &name))
                .send()
                .await
                .map_err(|e| call_error("ec2:CreateSubnet", e))?;
            let id = crate::aws::returned(
                out.subnet.and_then(|s| s.subnet_id),
                "ec2:CreateSubnet",
                "subnet id",
            )?;
            if public {
                map_public_ips(ec2, &id).await?;
            }
            Ok(Some(Id::Known(id)))
        }
    }
}

/// The first two available zones of the region, by name.
pub async fn two_zones(ec2: &Client) -> anyhow::Result<Vec<String>> {
    let out = ec2
        .describe_availability_zones()
        .filters(filter("state", "available"))
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeAvailabilityZones", e))?;
    let mut zones: Vec<String> = out
        .availability_zones
        .unwrap_or_default()
        .into_iter()
        .filter_map(|z| z.zone_name)
        .collect();
    zones.sort();
    zones.truncate(2);
    if zones.len() < 2 {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "a load balancer needs subnets in two availability zones, and this region offers {}: pick another region, or name existing subnets in [network]",
                zones.len()
            ),
        ));
    }
    Ok(zones)
}

async fn map_public_ips(ec2: &Client, subnet: &str) -> anyhow::Result<()> {
    ec2.modify_subnet_attribute()
        .subnet_id(subnet)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .map_err(|e| call_error("ec2:ModifySubnetAttribute", e))?;
    Ok(())
}

/// Deletes the subnet, waiting while network interfaces are still in it.
pub async fn delete(ec2: &Client, id: &str, wait: &Wait<'_>) -> anyhow::Result<()> {
    while_busy(wait, || ec2.delete_subnet().subnet_id(id).send())
        .await
        .map_err(|e| call_error("ec2:DeleteSubnet", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Tag;

    fn subnet(id: &str, zone: &str, cidr: &str, ours: bool, public: bool) -> Subnet {
        let mut b = Subnet::builder()
            .subnet_id(id)
            .availability_zone(zone)
            .cidr_block(cidr)
            .map_public_ip_on_launch(public);
        if ours {
            b = b.tags(Tag::builder().key(tags::PROJECT_TAG).value("p").build());
        }
        b.build()
    }

    #[test]
    fn each_zone_keeps_repairs_or_creates_its_subnet_on_a_free_range() {
        let zones = ["z-a".to_string(), "z-b".to_string(), "z-c".to_string()];
        let existing = [
            subnet("subnet-a", "z-a", "10.0.0.0/24", true, true),
            // Someone else's subnet in z-b: its range is taken, and it is not the project's.
            subnet("subnet-x", "z-b", "10.0.1.0/24", false, true),
            subnet("subnet-c", "z-c", "10.0.2.0/24", true, false),
        ];
        let vpc = Id::Known("vpc-1".into());
        let planned =
            plan_subnets("p", &vpc, &zones, &existing, Tier::Public, &mut Vec::new()).unwrap();
        assert_eq!(planned[0].step, None);
        assert_eq!(planned[0].found, Id::Known("subnet-a".into()));
        assert_eq!(
            planned[1].step,
            Some(SubnetStep::Create {
                name: "p-public-z-b".into(),
                cidr: "10.0.3.0/24".into(),
                zone: "z-b".into(),
                public: true,
            })
        );
        assert!(planned[1].found.is_new());
        assert_eq!(
            planned[2].step,
            Some(SubnetStep::MapPublicIps {
                id: "subnet-c".into()
            })
        );
        assert_eq!(planned[2].changes[0].action, Action::Update);
    }
}
