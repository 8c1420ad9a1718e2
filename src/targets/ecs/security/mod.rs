//! The two security groups: `<name>-alb`, open on the listener ports from anywhere, and
//! `<name>-tasks`, open on the container port to the ALB's group only, never to the world. Rules
//! converge both ways: a missing rule is added, and a rule nobody asked for (say, the tasks'
//! port opened to 0.0.0.0/0 by hand) is removed from the groups mldeploy owns. Groups that
//! `[network] security_groups` names for the tasks are checked and never modified.

use aws_sdk_ec2::types::{Filter, ResourceType, SecurityGroup, TagSpecification};
use aws_sdk_ec2::Client;

use super::wait::{while_busy, Wait};

use super::{Converge, Id, Planned, PROJECT_TAG};
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

mod named;
mod rules;
pub use named::existing_for_tasks;
use rules::{rules_of, Rule, Source};

/// The groups the load balancer and the tasks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroups {
    pub alb: Id,
    pub tasks: Id,
    /// The VPC endpoints' group (private tasks with `network.egress = "endpoints"`).
    pub endpoints: Option<Id>,
}

/// The VPC endpoints' group: HTTPS from the tasks' group only.
pub fn endpoints_group_name(project: &str) -> String {
    format!("{project}-endpoints")
}

pub fn alb_group_name(project: &str) -> String {
    format!("{project}-alb")
}

pub fn tasks_group_name(project: &str) -> String {
    format!("{project}-tasks")
}

/// Finds or creates the groups in the VPC (the endpoints' too, with `endpoints`) and converges
/// their ingress rules.
#[allow(clippy::too_many_arguments)] // the clients, then one per rule the groups are made of
pub async fn ensure(
    ec2: &Client,
    cv: &Converge,
    vpc: &Id,
    listener_ports: &[u16],
    allow_from: &[String],
    container_port: u16,
    endpoints: bool,
    changes: &mut Vec<Change>,
) -> anyhow::Result<SecurityGroups> {
    let project = cv.project.as_str();
    let alb_rules: Vec<Rule> = listener_ports
        .iter()
        .flat_map(|p| {
            allow_from.iter().map(move |cidr| {
                let source = if cidr.contains(':') {
                    Source::Cidr6(cidr.clone())
                } else {
                    Source::Cidr(cidr.clone())
                };
                Rule::tcp(*p, source)
            })
        })
        .collect();
    let alb = Wanted {
        name: alb_group_name(project),
        description: format!("mldeploy {project}: load balancer"),
    };
    let alb = ensure_group(ec2, cv, vpc, &alb, &alb_rules, changes).await?;
    let tasks = Wanted {
        name: tasks_group_name(project),
        description: format!("mldeploy {project}: tasks, from the load balancer only"),
    };
    let from_alb = vec![Rule::tcp(container_port, Source::Group(alb.clone()))];
    let tasks = ensure_group(ec2, cv, vpc, &tasks, &from_alb, changes).await?;
    let endpoints = if endpoints {
        let wanted = Wanted {
            name: endpoints_group_name(project),
            description: format!("mldeploy {project}: VPC endpoints, HTTPS from the tasks only"),
        };
        let from_tasks = vec![Rule::tcp(443, Source::Group(tasks.clone()))];
        Some(ensure_group(ec2, cv, vpc, &wanted, &from_tasks, changes).await?)
    } else {
        None
    };
    Ok(SecurityGroups {
        alb,
        tasks,
        endpoints,
    })
}

/// One of the project's groups as mldeploy wants it.
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    description: String,
}

/// What one group needs: to be created, and the ingress rules to revoke and to authorize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStep {
    /// Create the group, or it exists with this id.
    existing: Option<String>,
    revoke: Vec<Rule>,
    authorize: Vec<Rule>,
}

async fn ensure_group(
    ec2: &Client,
    cv: &Converge,
    vpc: &Id,
    wanted: &Wanted,
    rules: &[Rule],
    changes: &mut Vec<Change>,
) -> anyhow::Result<Id> {
    let found = match vpc.known() {
        Some(vpc_id) => find_groups(ec2, Some(vpc_id), &wanted.name)
            .await?
            .into_iter()
            .next(),
        None => None,
    };
    let planned = plan_group(&cv.project, vpc, &wanted.name, found.as_ref(), rules)?;
    cv.carry_out(planned, changes, |step| {
        apply_group(ec2, &cv.project, vpc, wanted, step)
    })
    .await
}

/// Decides, from the group found (if any), what it needs so that its ingress is exactly
/// `wanted`: one change per group, reported with its rules. A group of that name that mldeploy
/// did not create is refused.
pub fn plan_group(
    project: &str,
    vpc: &Id,
    name: &str,
    found: Option<&SecurityGroup>,
    wanted: &[Rule],
) -> anyhow::Result<Planned<GroupStep>> {
    let (id, current) = match found {
        Some(group) => {
            let id = group.group_id().unwrap_or_default().to_string();
            if !tags::is_ours(group.tags(), project) {
                return Err(exit::error(
                    ExitStatus::Environment,
                    format!(
                        "{}: mldeploy will not take over a group it did not create. Rename or delete it, or name your own groups in [network]",
                        tags::not_ours(&format!("security group {name} ({id}) in {vpc}"), project)
                    ),
                ));
            }
            (Id::Known(id), rules_of(group))
        }
        None => (Id::after_apply(), Vec::new()),
    };
    let step = GroupStep {
        existing: id.known().map(str::to_string),
        revoke: current
            .iter()
            .filter(|r| !wanted.contains(r))
            .cloned()
            .collect(),
        authorize: wanted
            .iter()
            .filter(|r| !current.contains(r))
            .cloned()
            .collect(),
    };
    let mut what: Vec<String> = step
        .authorize
        .iter()
        .map(|r| format!("allow {}", r.describe()))
        .collect();
    what.extend(
        step.revoke
            .iter()
            .map(|r| format!("remove {}", r.describe())),
    );
    let action = match (step.existing.is_none(), what.is_empty()) {
        (true, _) => Action::Create,
        (false, true) => Action::Keep,
        (false, false) => Action::Update,
    };
    let change = Change::new("security group", name, action);
    let change = if what.is_empty() {
        change.because(id.to_string())
    } else {
        change.because(what.join(", "))
    };
    Ok(if action == Action::Keep {
        Planned::keep(change, id)
    } else {
        Planned::change(change, id, step)
    })
}

async fn apply_group(
    ec2: &Client,
    project: &str,
    vpc: &Id,
    wanted: &Wanted,
    step: GroupStep,
) -> anyhow::Result<Option<Id>> {
    let (group, created) = match step.existing {
        Some(id) => (id, false),
        None => (
            ec2.create_security_group()
                .group_name(&wanted.name)
                .description(&wanted.description)
                .vpc_id(vpc.applied("VPC")?)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .tags(tags::ec2("Name", &wanted.name))
                        .tags(tags::ec2(PROJECT_TAG, project))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| call_error("ec2:CreateSecurityGroup", e))?
                .group_id
                .unwrap_or_default(),
            true,
        ),
    };
    if !step.revoke.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(&group)
            .set_ip_permissions(Some(permissions(&step.revoke)?))
            .send()
            .await
            .map_err(|e| call_error("ec2:RevokeSecurityGroupIngress", e))?;
    }
    if !step.authorize.is_empty() {
        ec2.authorize_security_group_ingress()
            .group_id(&group)
            .set_ip_permissions(Some(permissions(&step.authorize)?))
            .send()
            .await
            .map_err(|e| call_error("ec2:AuthorizeSecurityGroupIngress", e))?;
    }
    Ok(created.then_some(Id::Known(group)))
}

fn permissions(rules: &[Rule]) -> anyhow::Result<Vec<aws_sdk_ec2::types::IpPermission>> {
    rules.iter().map(Rule::to_permission).collect()
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

/// Deletes the group, waiting while network interfaces still use it.
pub async fn delete_group(ec2: &Client, id: &str, wait: &Wait<'_>) -> anyhow::Result<()> {
    while_busy(wait, || ec2.delete_security_group().group_id(id).send())
        .await
        .map_err(|e| call_error("ec2:DeleteSecurityGroup", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{IpPermission, IpRange, Tag};

    fn group(ours: bool, open_to: &str) -> SecurityGroup {
        let mut b = SecurityGroup::builder().group_id("sg-1").ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(8080)
                .to_port(8080)
                .ip_ranges(IpRange::builder().cidr_ip(open_to).build())
                .build(),
        );
        if ours {
            b = b.tags(Tag::builder().key(PROJECT_TAG).value("p").build());
        }
        b.build()
    }

    #[test]
    fn a_group_converges_both_ways_and_one_mldeploy_did_not_create_is_refused() {
        let vpc = Id::Known("vpc-1".into());
        let wanted = [Rule::tcp(8080, Source::Group(Id::Known("sg-alb".into())))];
        let planned = plan_group(
            "p",
            &vpc,
            "p-tasks",
            Some(&group(true, "0.0.0.0/0")),
            &wanted,
        )
        .unwrap();
        let step = planned.step.unwrap();
        assert_eq!(step.existing.as_deref(), Some("sg-1"));
        assert_eq!(step.authorize, wanted);
        assert_eq!(step.revoke.len(), 1);
        assert_eq!(
            planned.changes[0].detail.as_deref(),
            Some("allow tcp/8080 from sg-alb, remove tcp/8080 from 0.0.0.0/0")
        );

        let err = plan_group(
            "p",
            &vpc,
            "p-tasks",
            Some(&group(false, "10.0.0.0/8")),
            &wanted,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("will not take over"), "{err:#}");

        // A new group's rule from a group still to be created is planned, not sent.
        let from_new = [Rule::tcp(8080, Source::Group(Id::after_apply()))];
        let new = plan_group("p", &Id::after_apply(), "p-tasks", None, &from_new).unwrap();
        assert!(new.found.is_new());
        assert_eq!(
            new.changes[0].detail.as_deref(),
            Some("allow tcp/8080 from (new)")
        );
        assert!(from_new[0].to_permission().is_err());
    }
}
