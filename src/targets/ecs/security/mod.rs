//! The two security groups: `<name>-alb`, open on the listener ports from anywhere, and
//! `<name>-tasks`, open on the container port to the ALB's group only, never to the world. Rules
//! converge both ways: a missing rule is added, and a rule nobody asked for (say, the tasks'
//! port opened to 0.0.0.0/0 by hand) is removed from the groups mldeploy owns. Groups that
//! `[network] security_groups` names for the tasks are checked and never modified.

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup,
    TagSpecification, UserIdGroupPair,
};
use aws_sdk_ec2::Client;

use super::network::TO_BE_CREATED;
use super::{Converge, PROJECT_TAG};
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

/// The groups the load balancer and the tasks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroups {
    pub alb: String,
    pub tasks: String,
}

pub fn alb_group_name(project: &str) -> String {
    format!("{project}-alb")
}

pub fn tasks_group_name(project: &str) -> String {
    format!("{project}-tasks")
}

/// One ingress rule with one source, in a form that compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    protocol: String,
    from: i32,
    to: i32,
    source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Cidr(String),
    Cidr6(String),
    Group(String),
    PrefixList(String),
}

impl Rule {
    fn tcp(port: u16, source: Source) -> Rule {
        Rule {
            protocol: "tcp".into(),
            from: port.into(),
            to: port.into(),
            source,
        }
    }

    fn to_permission(&self) -> IpPermission {
        let b = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .from_port(self.from)
            .to_port(self.to);
        match &self.source {
            Source::Cidr(c) => b.ip_ranges(IpRange::builder().cidr_ip(c).build()),
            Source::Cidr6(c) => b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
            Source::Group(g) => {
                b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build())
            }
            Source::PrefixList(p) => {
                b.prefix_list_ids(PrefixListId::builder().prefix_list_id(p).build())
            }
        }
        .build()
    }

    fn describe(&self) -> String {
        let port = if self.from == self.to {
            format!("{}/{}", self.protocol, self.from)
        } else {
            format!("{}/{}-{}", self.protocol, self.from, self.to)
        };
        let source = match &self.source {
            Source::Cidr(c) | Source::Cidr6(c) => c.clone(),
            Source::Group(g) => g.clone(),
            Source::PrefixList(p) => p.clone(),
        };
        format!("{port} from {source}")
    }
}

impl Rule {
    fn is_world_open(&self) -> bool {
        matches!(&self.source, Source::Cidr(c) | Source::Cidr6(c) if c == "0.0.0.0/0" || c == "::/0")
    }
}

/// Every (permission, source) pair of a group, one rule each.
fn rules_of(group: &SecurityGroup) -> Vec<Rule> {
    let mut rules = Vec::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let mut push = |source| {
            rules.push(Rule {
                protocol: protocol.clone(),
                from,
                to,
                source,
            })
        };
        p.ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .for_each(|c| push(Source::Cidr(c.into())));
        p.ipv6_ranges()
            .iter()
            .filter_map(|r| r.cidr_ipv6())
            .for_each(|c| push(Source::Cidr6(c.into())));
        p.user_id_group_pairs()
            .iter()
            .filter_map(|g| g.group_id())
            .for_each(|g| push(Source::Group(g.into())));
        p.prefix_list_ids()
            .iter()
            .filter_map(|l| l.prefix_list_id())
            .for_each(|l| push(Source::PrefixList(l.into())));
    }
    rules
}

/// Checks the security groups `[network]` names for the tasks: they exist, they are in the
/// subnets' VPC, and none admits the whole internet (the tasks have public addresses, so such a
/// group would expose them past the load balancer). They are reported as kept, never modified.
pub async fn existing_for_tasks(
    ec2: &Client,
    group_ids: &[String],
    vpc_id: &str,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    if group_ids.is_empty() {
        return Ok(());
    }
    let out = ec2
        .describe_security_groups()
        .set_group_ids(Some(group_ids.to_vec()))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .and_then(|s| aws_smithy_types::error::metadata::ProvideErrorMetadata::code(s))
                == Some("InvalidGroup.NotFound")
            {
                exit::error(
                    ExitStatus::Environment,
                    format!(
                        "network.security_groups names a group this account and region do not have: {}",
                        group_ids.join(", ")
                    ),
                )
            } else {
                call_error("ec2:DescribeSecurityGroups", e)
            }
        })?;
    for group in out.security_groups() {
        let id = group.group_id().unwrap_or_default();
        let in_vpc = group.vpc_id().unwrap_or_default();
        if in_vpc != vpc_id {
            return Err(exit::error(
                ExitStatus::Usage,
                format!("network.security_groups: {id} is in {in_vpc}, but network.subnets are in {vpc_id}"),
            ));
        }
        if let Some(rule) = rules_of(group).iter().find(|r| r.is_world_open()) {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "network.security_groups: {id} admits the whole internet ({}); the tasks have public addresses, so it would expose them past the load balancer. Name a group without 0.0.0.0/0 or ::/0 ingress",
                    rule.describe()
                ),
            ));
        }
        changes.push(
            Change::new("security group", id, Action::Keep)
                .because("named in [network], attached to the tasks"),
        );
    }
    Ok(())
}

/// Finds or creates both groups in the VPC and converges their ingress rules.
pub async fn ensure(
    ec2: &Client,
    cv: &Converge,
    vpc_id: &str,
    listener_ports: &[u16],
    container_port: u16,
    changes: &mut Vec<Change>,
) -> anyhow::Result<SecurityGroups> {
    let project = cv.project.as_str();
    let alb_name = alb_group_name(project);
    let tasks_name = tasks_group_name(project);
    let alb = ensure_group(
        ec2,
        cv,
        vpc_id,
        &alb_name,
        &format!("mldeploy {project}: load balancer"),
    )
    .await?;
    let alb_rules: Vec<Rule> = listener_ports
        .iter()
        .map(|p| Rule::tcp(*p, Source::Cidr("0.0.0.0/0".into())))
        .collect();
    converge_rules(ec2, cv, &alb, &alb_name, &alb_rules, changes).await?;

    let tasks = ensure_group(
        ec2,
        cv,
        vpc_id,
        &tasks_name,
        &format!("mldeploy {project}: tasks, from the load balancer only"),
    )
    .await?;
    let task_rules = vec![Rule::tcp(container_port, Source::Group(alb.id.clone()))];
    converge_rules(ec2, cv, &tasks, &tasks_name, &task_rules, changes).await?;
    Ok(SecurityGroups {
        alb: alb.id,
        tasks: tasks.id,
    })
}

struct Found {
    id: String,
    rules: Vec<Rule>,
    created: bool,
}

/// The security groups named `name`, in `vpc_id` or in any VPC, all pages read.
pub async fn find_groups(
    ec2: &Client,
    vpc_id: Option<&str>,
    name: &str,
) -> anyhow::Result<Vec<SecurityGroup>> {
    let mut call = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build());
    if let Some(vpc_id) = vpc_id {
        call = call.filters(Filter::builder().name("vpc-id").values(vpc_id).build());
    }
    let pages: Vec<_> = crate::all_pages!(call, "ec2:DescribeSecurityGroups")?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.security_groups.unwrap_or_default())
        .collect())
}

async fn ensure_group(
    ec2: &Client,
    cv: &Converge,
    vpc_id: &str,
    name: &str,
    description: &str,
) -> anyhow::Result<Found> {
    let found = if vpc_id == TO_BE_CREATED {
        None
    } else {
        find_groups(ec2, Some(vpc_id), name)
            .await?
            .into_iter()
            .next()
    };
    if let Some(group) = found {
        let id = group.group_id().unwrap_or_default().to_string();
        let ours = tags::is_ours(group.tags(), &cv.project);
        if !ours {
            return Err(exit::error(
                ExitStatus::Environment,
                format!(
                    "{}: mldeploy will not take over a group it did not create. Rename or delete it, or name your own groups in [network]",
                    tags::not_ours(&format!("security group {name} ({id}) in {vpc_id}"), &cv.project)
                ),
            ));
        }
        return Ok(Found {
            id,
            rules: rules_of(&group),
            created: false,
        });
    }
    let id = if cv.dry_run {
        TO_BE_CREATED.to_string()
    } else {
        ec2.create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc_id)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(tags::ec2("Name", name))
                    .tags(tags::ec2(PROJECT_TAG, &cv.project))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| call_error("ec2:CreateSecurityGroup", e))?
            .group_id
            .unwrap_or_default()
    };
    Ok(Found {
        id,
        rules: Vec::new(),
        created: true,
    })
}

async fn converge_rules(
    ec2: &Client,
    cv: &Converge,
    group: &Found,
    name: &str,
    wanted: &[Rule],
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let missing: Vec<&Rule> = wanted.iter().filter(|r| !group.rules.contains(r)).collect();
    let extra: Vec<&Rule> = group.rules.iter().filter(|r| !wanted.contains(r)).collect();
    if !cv.dry_run {
        if !extra.is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(&group.id)
                .set_ip_permissions(Some(extra.iter().map(|r| r.to_permission()).collect()))
                .send()
                .await
                .map_err(|e| call_error("ec2:RevokeSecurityGroupIngress", e))?;
        }
        if !missing.is_empty() {
            ec2.authorize_security_group_ingress()
                .group_id(&group.id)
                .set_ip_permissions(Some(missing.iter().map(|r| r.to_permission()).collect()))
                .send()
                .await
                .map_err(|e| call_error("ec2:AuthorizeSecurityGroupIngress", e))?;
        }
    }
    let mut what: Vec<String> = missing
        .iter()
        .map(|r| format!("allow {}", r.describe()))
        .collect();
    what.extend(extra.iter().map(|r| format!("remove {}", r.describe())));
    // One change per group, reported once its rules are known.
    let action = match (group.created, what.is_empty()) {
        (true, _) => Action::Create,
        (false, true) => Action::Keep,
        (false, false) => Action::Update,
    };
    let change = Change::new("security group", name, action);
    changes.push(if what.is_empty() {
        change.because(&group.id)
    } else {
        change.because(what.join(", "))
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_with_several_sources_becomes_one_rule_each() {
        let group = SecurityGroup::builder()
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(8080)
                    .to_port(8080)
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
                    .build(),
            )
            .build();
        let rules = rules_of(&group);
        assert_eq!(rules.len(), 2);
        assert!(rules.contains(&Rule::tcp(8080, Source::Group("sg-1".into()))));
        assert_eq!(rules[0].describe(), "tcp/8080 from 0.0.0.0/0");
    }
}
