//! The alias A record that points `service.domain` at the load balancer, with the TXT record
//! `_mldeploy.<domain>` that says which project made it. Route 53 records carry no tags, so the
//! claim is kept beside the record, as external-dns keeps its TXT ownership records. `up`
//! creates the pair, repairs an alias of its own that points elsewhere, and refuses (exit 3) a
//! record at the domain it did not make; `destroy` deletes the pair only while the alias still
//! points at the project's load balancer.

use aws_sdk_elasticloadbalancingv2::types::LoadBalancer as Alb;
use aws_sdk_route53::types::{
    AliasTarget, ChangeAction, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;

use super::{change, normal, records_named, Zone};
use crate::aws::tags::PROJECT_TAG;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::{Id, Plan, Planned};
use crate::targets::{Action, Change};

/// The TXT record that names the project an alias record was made for.
pub fn owner_name(domain: &str) -> String {
    format!("_mldeploy.{domain}")
}

/// A TXT value is a quoted string.
fn owner_value(project: &str) -> String {
    format!("\"{PROJECT_TAG}={project}\"")
}

/// The load balancer an alias points at: its DNS name and the hosted zone Route 53 knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointee {
    pub dns_name: String,
    pub zone_id: String,
}

impl Pointee {
    /// The load balancer's, once its DNS name and zone are known (created, or found).
    pub fn known(dns_name: &Id, zone_id: &Id) -> Option<Pointee> {
        Some(Pointee {
            dns_name: dns_name.known()?.to_string(),
            zone_id: zone_id.known()?.to_string(),
        })
    }

    pub fn of(lb: &Alb) -> Option<Pointee> {
        Some(Pointee {
            dns_name: lb.dns_name()?.to_string(),
            zone_id: lb.canonical_hosted_zone_id()?.to_string(),
        })
    }
}

/// What the zone holds at the domain: the A or CNAME record there, and the project the TXT
/// record beside it names (with that record, to delete it).
#[derive(Debug, Clone, Default)]
pub struct AtDomain {
    pub record: Option<ResourceRecordSet>,
    pub owner: Option<(String, ResourceRecordSet)>,
}

impl AtDomain {
    fn claimed_by(&self, project: &str) -> bool {
        self.owner.as_ref().is_some_and(|(p, _)| p == project)
    }
}

pub async fn find(r53: &Client, zone_id: &str, domain: &str) -> anyhow::Result<AtDomain> {
    let record = records_named(r53, zone_id, domain)
        .await?
        .into_iter()
        .filter(|r| matches!(r.r#type(), RrType::A | RrType::Cname))
        .min_by_key(|r| r.r#type() != &RrType::A);
    let owner = records_named(r53, zone_id, &owner_name(domain))
        .await?
        .into_iter()
        .filter(|r| r.r#type() == &RrType::Txt)
        .find_map(|r| {
            let project = r.resource_records().iter().find_map(|v| {
                v.value()
                    .trim_matches('"')
                    .strip_prefix(&format!("{PROJECT_TAG}="))
                    .map(str::to_string)
            })?;
            Some((project, r))
        });
    Ok(AtDomain { record, owner })
}

/// Whether the record is an alias to the load balancer named `dns_name`. Route 53 keeps alias
/// names in lower case with a final dot, and the console prefixes "dualstack.".
pub fn points_at(record: &ResourceRecordSet, dns_name: &str) -> bool {
    record.alias_target().is_some_and(|a| {
        let target = normal(a.dns_name());
        target.strip_prefix("dualstack.").unwrap_or(&target) == normal(dns_name)
    })
}

/// What a record says, for messages: "alias to X", "CNAME x", "A 192.0.2.1".
pub fn describe(record: &ResourceRecordSet) -> String {
    match record.alias_target() {
        Some(a) => format!("alias to {}", normal(a.dns_name())),
        None => format!(
            "{} {}",
            record.r#type().as_str(),
            record
                .resource_records()
                .iter()
                .map(|r| r.value())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What the alias record needs.
#[derive(Debug, Clone, PartialEq)]
pub enum AliasStep {
    /// Nothing is at the domain: create the alias and its claim.
    Create,
    /// The project's record points elsewhere: put the alias in its place.
    Repair { replace: Box<ResourceRecordSet> },
}

/// Refuses a record at the domain that is not the project's and does not point at its load
/// balancer: `up` will not take over a name someone else points somewhere.
pub fn refuse_foreign(
    project: &str,
    domain: &str,
    zone: &Zone,
    at: &AtDomain,
    lb: Option<&Pointee>,
) -> anyhow::Result<()> {
    let Some(record) = &at.record else {
        return match &at.owner {
            Some((other, _)) if other != project => Err(claimed(domain, zone, other)),
            _ => Ok(()),
        };
    };
    if at.claimed_by(project) || lb.is_some_and(|lb| points_at(record, &lb.dns_name)) {
        return Ok(());
    }
    match &at.owner {
        Some((other, _)) => Err(claimed(domain, zone, other)),
        None => Err(exit::error(
            ExitStatus::Environment,
            format!(
                "Route 53 already has a record for {domain} in zone {} ({}), and mldeploy did not make it: mldeploy will not take over a name it did not create. Delete that record, or leave `service.hosted_zone_id` out and point {domain} at the load balancer yourself",
                zone.name,
                describe(record)
            ),
        )),
    }
}

fn claimed(domain: &str, zone: &Zone, other: &str) -> anyhow::Error {
    exit::error(
        ExitStatus::Environment,
        format!(
            "{domain} in zone {} belongs to the mldeploy project {other:?} (record {}): two projects cannot serve one domain; give this one another `service.domain`",
            zone.name,
            owner_name(domain)
        ),
    )
}

/// Decides what the domain's record needs.
pub fn plan_for(
    project: &str,
    domain: &str,
    zone: &Zone,
    at: &AtDomain,
    lb: Option<&Pointee>,
) -> anyhow::Result<Planned<AliasStep, ()>> {
    refuse_foreign(project, domain, zone, at, lb)?;
    let label = format!("{domain} (zone {})", zone.name);
    let to = format!("alias to load balancer {project}");
    Ok(match &at.record {
        None => Planned::change(
            Change::new("DNS record", label, Action::Create).because(to),
            (),
            AliasStep::Create,
        ),
        Some(r) if lb.is_some_and(|lb| points_at(r, &lb.dns_name)) => Planned::keep(
            Change::new("DNS record", label, Action::Keep).because(to),
            (),
        ),
        Some(r) => Planned::change(
            Change::new("DNS record", label, Action::Update)
                .because(format!("{to}; it was {}", describe(r))),
            (),
            AliasStep::Repair {
                replace: Box::new(r.clone()),
            },
        ),
    })
}

fn alias_record(domain: &str, lb: &Pointee) -> anyhow::Result<ResourceRecordSet> {
    Ok(ResourceRecordSet::builder()
        .name(domain)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id(&lb.zone_id)
                .dns_name(&lb.dns_name)
                .evaluate_target_health(false)
                .build()?,
        )
        .build()?)
}

fn owner_record(domain: &str, project: &str) -> anyhow::Result<ResourceRecordSet> {
    Ok(ResourceRecordSet::builder()
        .name(owner_name(domain))
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value(owner_value(project))
                .build()?,
        )
        .build()?)
}

/// Creates or repairs the alias and its claim, in one batch.
pub async fn apply(
    r53: &Client,
    zone: &Zone,
    domain: &str,
    project: &str,
    lb: Option<&Pointee>,
    step: AliasStep,
) -> anyhow::Result<Option<()>> {
    let lb = lb.ok_or_else(|| {
        anyhow::anyhow!("internal error: the load balancer was to exist before its DNS record; please report this")
    })?;
    let alias = alias_record(domain, lb)?;
    let mut batch = match step {
        AliasStep::Create => vec![(ChangeAction::Create, alias)],
        AliasStep::Repair { replace } if replace.r#type() == &RrType::A => {
            vec![(ChangeAction::Upsert, alias)]
        }
        AliasStep::Repair { replace } => vec![
            (ChangeAction::Delete, *replace),
            (ChangeAction::Create, alias),
        ],
    };
    batch.push((ChangeAction::Upsert, owner_record(domain, project)?));
    change(
        r53,
        &zone.id,
        &format!("mldeploy: {domain} to the load balancer of {project}"),
        batch,
    )
    .await?;
    Ok(None)
}

/// Decides the domain's record: an alias at the project's load balancer (its DNS name and
/// zone, read when the step runs: a load balancer the plan creates is known by then).
pub async fn decide<'a>(
    r53: &'a Client,
    project: &'a str,
    zone: &'a Zone,
    domain: &'a str,
    lb: (Id, Id),
    plan: &mut Plan<'a>,
) -> anyhow::Result<()> {
    let at = find(r53, &zone.id, domain).await?;
    let planned = plan_for(
        project,
        domain,
        zone,
        &at,
        Pointee::known(&lb.0, &lb.1).as_ref(),
    )?;
    plan.add(planned, move |step| async move {
        let pointee = Pointee::known(&lb.0, &lb.1);
        apply(r53, zone, domain, project, pointee.as_ref(), step).await
    });
    Ok(())
}

/// Whether what is at the domain is the project's to delete: its claim names the project, and
/// the record still points at the project's load balancer (or is gone, leaving the claim).
pub fn deletable(at: &AtDomain, project: &str, lb_dns: Option<&str>) -> bool {
    at.claimed_by(project)
        && match &at.record {
            None => true,
            Some(r) => lb_dns.is_some_and(|dns| points_at(r, dns)),
        }
}

/// Whether there is anything at the domain for `destroy` to list.
pub fn anything(at: &AtDomain) -> bool {
    at.record.is_some() || at.owner.is_some()
}

/// Deletes the alias and its claim, read again now: only while they are still the project's
/// and point at its load balancer.
pub async fn delete(
    r53: &Client,
    zone_id: &str,
    domain: &str,
    project: &str,
    lb_dns: &str,
) -> anyhow::Result<()> {
    let at = find(r53, zone_id, domain).await?;
    if !anything(&at) {
        return Ok(());
    }
    if !deletable(&at, project, Some(lb_dns).filter(|d| !d.is_empty())) {
        anyhow::bail!(
            "the record for {domain} changed since it was listed ({}): left it",
            at.record.as_ref().map(describe).unwrap_or_default()
        );
    }
    let batch = [at.record, at.owner.map(|(_, r)| r)]
        .into_iter()
        .flatten()
        .map(|r| (ChangeAction::Delete, r))
        .collect();
    change(r53, zone_id, &format!("mldeploy destroy: {project}"), batch).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone {
            id: "Z1".into(),
            name: "example.com".into(),
        }
    }

    fn lb(name: &str) -> Pointee {
        Pointee {
            dns_name: name.into(),
            zone_id: "ZLB".into(),
        }
    }

    fn at(record: Option<ResourceRecordSet>, owner: Option<&str>) -> AtDomain {
        AtDomain {
            record,
            owner: owner.map(|p| (p.to_string(), owner_record("m.example.com", p).unwrap())),
        }
    }

    fn cname(value: &str) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name("m.example.com.")
            .r#type(RrType::Cname)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn a_record_is_created_kept_repaired_or_refused_by_whom_it_belongs_to() {
        let ours = lb("p-1.us-east-1.elb.amazonaws.com");
        let plan =
            |a: &AtDomain, lb: Option<&Pointee>| plan_for("p", "m.example.com", &zone(), a, lb);

        let empty = plan(&at(None, None), Some(&ours)).unwrap();
        assert_eq!(empty.step, Some(AliasStep::Create));

        let alias = alias_record(
            "m.example.com",
            &lb("DualStack.P-1.us-east-1.elb.amazonaws.com."),
        )
        .unwrap();
        let kept = plan(&at(Some(alias.clone()), Some("p")), Some(&ours)).unwrap();
        assert_eq!(kept.step, None);
        assert_eq!(kept.changes[0].action, Action::Keep);
        // Pointing at our load balancer without our claim: kept, and never deleted as ours.
        assert!(plan(&at(Some(alias.clone()), None), Some(&ours))
            .unwrap()
            .step
            .is_none());
        assert!(!deletable(
            &at(Some(alias.clone()), None),
            "p",
            Some(&ours.dns_name)
        ));
        assert!(deletable(
            &at(Some(alias), Some("p")),
            "p",
            Some(&ours.dns_name)
        ));
        // A claim whose record someone deleted goes with destroy; another project's stays.
        assert!(deletable(&at(None, Some("p")), "p", None));
        assert!(!deletable(&at(None, Some("q")), "p", None));

        let elsewhere = cname("old.example.net");
        let repaired = plan(&at(Some(elsewhere.clone()), Some("p")), Some(&ours)).unwrap();
        assert_eq!(
            repaired.step,
            Some(AliasStep::Repair {
                replace: Box::new(elsewhere.clone())
            })
        );
        assert!(repaired.changes[0]
            .to_string()
            .contains("it was CNAME old.example.net"));
        assert!(!deletable(
            &at(Some(elsewhere.clone()), Some("p")),
            "p",
            Some(&ours.dns_name)
        ));

        let foreign = plan(&at(Some(elsewhere.clone()), None), Some(&ours)).unwrap_err();
        assert_eq!(exit::status_of(&foreign), ExitStatus::Environment);
        assert!(
            format!("{foreign:#}").contains("(CNAME old.example.net)"),
            "{foreign:#}"
        );
        let other = plan(&at(Some(elsewhere), Some("q")), None).unwrap_err();
        assert!(
            format!("{other:#}").contains("belongs to the mldeploy project \"q\""),
            "{other:#}"
        );
        assert!(plan(&at(None, Some("q")), None).is_err());
    }
}
