//! The ACM certificate `up` requests for `service.domain` when the project names a hosted zone
//! but no `certificate_arn`: requested with DNS validation and the project's tag, its validation
//! CNAME written into the zone, and waited for until ACM issues it (a load balancer refuses a
//! certificate that is not issued yet). `destroy` deletes only a certificate carrying the tag,
//! and its validation record while no other certificate of the domain needs it.

use std::time::Instant;

use aws_sdk_acm::types::{
    CertificateDetail, CertificateStatus, CertificateSummary, RecordType, Tag, ValidationMethod,
};
use aws_sdk_acm::Client as Acm;
use aws_sdk_route53::types::{ChangeAction, ResourceRecord, ResourceRecordSet, RrType};
use aws_sdk_route53::Client as Route53;
use sha2::{Digest, Sha256};

use super::{change, normal, records_named, Zone};
use crate::aws::call_error;
use crate::aws::tags::PROJECT_TAG;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::wait::{while_busy, Wait};
use crate::targets::ecs::{Converge, Id, Planned};
use crate::targets::{Action, Change};

/// A certificate for the domain, as ListCertificates and ListTagsForCertificate tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub arn: String,
    pub status: Option<CertificateStatus>,
    pub ours: bool,
}

/// Every certificate in the region, as ListCertificates sums them up (all pages).
async fn summaries(acm: &Acm) -> anyhow::Result<Vec<CertificateSummary>> {
    let pages: Vec<_> = crate::all_pages!(acm.list_certificates(), "acm:ListCertificates")?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.certificate_summary_list.unwrap_or_default())
        .collect())
}

/// The certificate as ACM describes it now.
async fn describe(acm: &Acm, arn: &str) -> anyhow::Result<Option<CertificateDetail>> {
    let out = acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("acm:DescribeCertificate", e))?;
    Ok(out.certificate)
}

/// The CNAME (name, value) that validates the certificate, once ACM gives it.
fn validation_cname(certificate: Option<&CertificateDetail>) -> Option<(String, String)> {
    certificate
        .into_iter()
        .flat_map(|c| c.domain_validation_options())
        .find_map(|o| o.resource_record())
        .filter(|r| r.r#type() == &RecordType::Cname)
        .map(|r| (r.name().to_string(), r.value().to_string()))
}

/// Every certificate in the region whose domain name is `domain`, with whether it is ours.
pub async fn for_domain(acm: &Acm, domain: &str, project: &str) -> anyhow::Result<Vec<Held>> {
    let mut held = Vec::new();
    for summary in summaries(acm).await? {
        let (Some(arn), Some(name)) = (summary.certificate_arn(), summary.domain_name()) else {
            continue;
        };
        if normal(name) != normal(domain) {
            continue;
        }
        held.push(Held {
            arn: arn.to_string(),
            status: summary.status().cloned(),
            ours: is_ours(acm, arn, project).await?,
        });
    }
    Ok(held)
}

async fn is_ours(acm: &Acm, arn: &str, project: &str) -> anyhow::Result<bool> {
    let out = acm
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("acm:ListTagsForCertificate", e))?;
    Ok(out
        .tags()
        .iter()
        .any(|t| t.key() == PROJECT_TAG && t.value() == Some(project)))
}

/// The project's usable certificate for the domain: an issued one first, else one ACM is still
/// validating. A failed, expired or revoked one is never reused.
pub fn usable(held: &[Held]) -> Option<&Held> {
    let of = |status: CertificateStatus| {
        held.iter()
            .find(|h| h.ours && h.status.as_ref() == Some(&status))
    };
    of(CertificateStatus::Issued).or_else(|| of(CertificateStatus::PendingValidation))
}

/// What the certificate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateStep {
    Request,
    /// Requested before and not issued yet: its validation record is written (again).
    Validate {
        arn: String,
    },
}

pub fn plan(domain: &str, zone: &Zone, held: &[Held]) -> Planned<CertificateStep, Id> {
    let by_dns = format!("ACM, validated by DNS in zone {}", zone.name);
    match usable(held) {
        None => Planned::change(
            Change::new("certificate", domain, Action::Create).because(by_dns),
            Id::after_apply(),
            CertificateStep::Request,
        ),
        Some(h) if h.status == Some(CertificateStatus::Issued) => Planned::keep(
            Change::new("certificate", domain, Action::Keep).because("issued by ACM"),
            Id::Known(h.arn.clone()),
        ),
        Some(h) => Planned::change(
            Change::new("certificate", domain, Action::Update)
                .because(format!("waiting for validation; {by_dns}")),
            Id::Known(h.arn.clone()),
            CertificateStep::Validate { arn: h.arn.clone() },
        ),
    }
}

/// ACM's idempotency token for the project's request (a retried request within the hour
/// returns the same certificate): up to 32 word characters.
fn token(project: &str, domain: &str) -> String {
    let digest = Sha256::digest(format!("{project}\n{domain}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

async fn request(acm: &Acm, project: &str, domain: &str) -> anyhow::Result<String> {
    let out = acm
        .request_certificate()
        .domain_name(domain)
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(token(project, domain))
        .tags(Tag::builder().key(PROJECT_TAG).value(project).build()?)
        .send()
        .await
        .map_err(|e| call_error("acm:RequestCertificate", e))?;
    out.certificate_arn()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("ACM answered RequestCertificate without an ARN"))
}

/// The CNAME that validates the certificate. ACM adds it to DescribeCertificate a little after
/// the request (Terraform's provider waits up to 5 minutes for it), so this looks until then.
async fn validation_record(
    acm: &Acm,
    arn: &str,
    until: Instant,
) -> anyhow::Result<(String, String)> {
    loop {
        if let Some(record) = validation_cname(describe(acm, arn).await?.as_ref()) {
            return Ok(record);
        }
        if Instant::now() >= until {
            return Err(exit::error(
                ExitStatus::Failed,
                format!("ACM has not given the DNS validation record of certificate {arn} by the deadline; run `mldeploy up` again to go on"),
            ));
        }
        tokio::time::sleep(crate::aws::poll::interval()).await;
    }
}

fn cname(name: &str, value: &str) -> anyhow::Result<ResourceRecordSet> {
    Ok(ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build()?)
        .build()?)
}

/// Requests the certificate when needed and writes its validation record into the zone.
pub async fn apply(
    acm: &Acm,
    r53: &Route53,
    project: &str,
    domain: &str,
    zone: &Zone,
    until: Instant,
    step: CertificateStep,
) -> anyhow::Result<Option<Id>> {
    let arn = match step {
        CertificateStep::Request => request(acm, project, domain).await?,
        CertificateStep::Validate { arn } => arn,
    };
    let (name, value) = validation_record(acm, &arn, until).await?;
    change(
        r53,
        &zone.id,
        &format!("mldeploy: ACM validation of {domain}"),
        vec![(ChangeAction::Upsert, cname(&name, &value)?)],
    )
    .await?;
    Ok(Some(Id::Known(arn)))
}

/// Finds the project's certificate for the domain, requesting it and writing its validation
/// record when needed. Returns its ARN and whether `issued` must still wait for it.
pub async fn ensure(
    acm: &Acm,
    r53: &Route53,
    cv: &Converge,
    domain: &str,
    zone: &Zone,
    until: Instant,
    changes: &mut Vec<Change>,
) -> anyhow::Result<(Id, bool)> {
    let held = for_domain(acm, domain, &cv.project).await?;
    let planned = plan(domain, zone, &held);
    let pending = planned.step.is_some();
    let id = cv
        .carry_out(planned, changes, |step| {
            apply(acm, r53, &cv.project, domain, zone, until, step)
        })
        .await?;
    Ok((id, pending))
}

/// Waits until ACM has issued the certificate, or says why it will not.
pub async fn issued(
    acm: &Acm,
    arn: &str,
    domain: &str,
    zone: &Zone,
    until: Instant,
) -> anyhow::Result<()> {
    loop {
        let described = describe(acm, arn).await?;
        let certificate = described.as_ref();
        match certificate.and_then(|c| c.status()) {
            Some(CertificateStatus::Issued) => return Ok(()),
            Some(CertificateStatus::PendingValidation) if Instant::now() < until => {
                tokio::time::sleep(crate::aws::poll::interval()).await
            }
            Some(CertificateStatus::PendingValidation) => {
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!("ACM had not issued the certificate for {domain} ({arn}) by the deadline: it is still validating through its CNAME in zone {} (on AWS this can take up to 30 minutes once DNS answers). Nothing else changed for HTTPS; run `mldeploy up` again to go on waiting", zone.name),
                ))
            }
            other => {
                let status = other.map(|s| s.as_str()).unwrap_or("unknown");
                let reason = certificate
                    .and_then(|c| c.failure_reason())
                    .map(|r| format!(" ({})", r.as_str()))
                    .unwrap_or_default();
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!("ACM's certificate for {domain} ({arn}) is {status}{reason}: it will not be issued. `mldeploy up` requests a new one on its next run; `mldeploy destroy` deletes this one"),
                ));
            }
        }
    }
}

/// Deletes the project's certificate once no load balancer uses it, then its validation
/// record in the zone, unless another certificate of the domain still validates through it
/// (ACM gives every certificate of a name in an account the same record).
pub async fn delete(
    acm: &Acm,
    r53: &Route53,
    arn: &str,
    zone_id: Option<&str>,
    wait: &Wait<'_>,
) -> anyhow::Result<()> {
    let described = match acm.describe_certificate().certificate_arn(arn).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(call_error("acm:DescribeCertificate", e)),
    };
    let certificate = described.certificate();
    let domain = certificate
        .and_then(|c| c.domain_name())
        .unwrap_or_default()
        .to_string();
    let record = validation_cname(certificate);
    // A listener deleted a moment ago may still hold the certificate.
    while_busy(wait, || {
        acm.delete_certificate().certificate_arn(arn).send()
    })
    .await
    .map_err(|e| call_error("acm:DeleteCertificate", e))?;
    let (Some(zone_id), Some((name, value))) = (zone_id, record) else {
        return Ok(());
    };
    let shared = summaries(acm).await?.iter().any(|s| {
        s.certificate_arn() != Some(arn)
            && s.domain_name()
                .is_some_and(|d| normal(d) == normal(&domain))
    });
    if shared {
        return Ok(());
    }
    let stale: Vec<_> = records_named(r53, zone_id, &name)
        .await?
        .into_iter()
        .filter(|r| {
            r.r#type() == &RrType::Cname
                && r.resource_records()
                    .iter()
                    .any(|v| normal(v.value()) == normal(&value))
        })
        .map(|r| (ChangeAction::Delete, r))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    change(
        r53,
        zone_id,
        &format!("mldeploy destroy: ACM validation of {domain}"),
        stale,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(arn: &str, status: CertificateStatus, ours: bool) -> Held {
        Held {
            arn: arn.into(),
            status: Some(status),
            ours,
        }
    }

    #[test]
    fn only_the_projects_issued_or_pending_certificate_is_used() {
        let zone = Zone {
            id: "Z1".into(),
            name: "example.com".into(),
        };
        let none = plan(
            "m.example.com",
            &zone,
            &[held("a", CertificateStatus::Issued, false)],
        );
        assert_eq!(none.step, Some(CertificateStep::Request));
        let failed = [held("f", CertificateStatus::Failed, true)];
        assert_eq!(
            plan("m.example.com", &zone, &failed).step,
            Some(CertificateStep::Request)
        );
        let both = [
            held("p", CertificateStatus::PendingValidation, true),
            held("i", CertificateStatus::Issued, true),
        ];
        let kept = plan("m.example.com", &zone, &both);
        assert_eq!((kept.step, kept.found), (None, Id::Known("i".into())));
        let pending = plan("m.example.com", &zone, &both[..1]);
        assert_eq!(
            pending.step,
            Some(CertificateStep::Validate { arn: "p".into() })
        );
    }

    #[test]
    fn the_idempotency_token_is_32_word_characters_per_project_and_domain() {
        let t = token("p", "m.example.com");
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(t, token("q", "m.example.com"));
    }
}
