//! The service's domain in Route 53 (`service.hosted_zone_id`): the hosted zone, checked to hold
//! the domain before anything changes; the records named like the domain, read and changed in
//! all-or-nothing batches; the alias record ([`alias`]) and the ACM certificate validated
//! through the zone ([`certificate`]).

pub mod alias;
pub mod certificate;

use anyhow::Context;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecordSet};
use aws_sdk_route53::Client;

use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// A Route 53 hosted zone: its id, and its name without the final dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

/// A DNS name as compared: Route 53 answers names with a final dot, in lower case.
pub fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` lies in the zone named `zone` (is it, or ends in `.<zone>`).
pub fn in_zone(name: &str, zone: &str) -> bool {
    let (name, zone) = (normal(name), normal(zone));
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// The hosted zone `id` and whether it is private, checked to hold `domain`: refused (exit 2)
/// when it does not exist or holds other names, before anything changes.
pub async fn zone(r53: &Client, id: &str, domain: &str) -> anyhow::Result<(Zone, bool)> {
    let out = match r53.get_hosted_zone().id(id).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_hosted_zone() || s.is_invalid_input()) =>
        {
            return Err(exit::error(
                ExitStatus::Usage,
                format!("`service.hosted_zone_id` = {id:?}: Route 53 has no such hosted zone in this account; give the id of the zone that holds {domain} (`aws route53 list-hosted-zones` lists them)"),
            ));
        }
        Err(e) => return Err(call_error("route53:GetHostedZone", e)),
    };
    let hosted = out
        .hosted_zone()
        .context("Route 53 answered GetHostedZone without the zone")?;
    let name = normal(hosted.name());
    let private = hosted.config().is_some_and(|c| c.private_zone());
    if !in_zone(domain, &name) {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("`service.domain` = {domain:?} is not in the hosted zone {id} ({name}): set `service.hosted_zone_id` to the zone that holds it"),
        ));
    }
    Ok((
        Zone {
            id: id.to_string(),
            name,
        },
        private,
    ))
}

/// Every record set named `name`, of any type. Route 53 lists a zone's records in order of
/// name, then type, from the name asked for; a name holds a handful of types.
pub async fn records_named(
    r53: &Client,
    zone_id: &str,
    name: &str,
) -> anyhow::Result<Vec<ResourceRecordSet>> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .max_items(100)
        .send()
        .await
        .map_err(|e| call_error("route53:ListResourceRecordSets", e))?;
    let wanted = normal(name);
    Ok(out
        .resource_record_sets()
        .iter()
        .filter(|r| normal(r.name()) == wanted)
        .cloned()
        .collect())
}

/// Applies the changes as one batch: Route 53 makes all of them or none ("If one change in a
/// batch fails, the entire batch fails", ChangeResourceRecordSets).
pub async fn change(
    r53: &Client,
    zone_id: &str,
    comment: &str,
    changes: Vec<(ChangeAction, ResourceRecordSet)>,
) -> anyhow::Result<()> {
    let changes = changes
        .into_iter()
        .map(|(action, record)| {
            Change::builder()
                .action(action)
                .resource_record_set(record)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("building a Route 53 change")?;
    let batch = ChangeBatch::builder()
        .comment(comment)
        .set_changes(Some(changes))
        .build()
        .context("building a Route 53 change batch")?;
    r53.change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| call_error("route53:ChangeResourceRecordSets", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_in_its_zone_and_the_zones_below_only() {
        assert!(in_zone("models.example.com", "example.com."));
        assert!(in_zone("Example.COM.", "example.com"));
        assert!(!in_zone("models.example.com", "ample.com"));
        assert!(!in_zone("example.com", "models.example.com"));
    }
}
