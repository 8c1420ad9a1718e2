//! mldeploy's rules left on the listener that no longer forwards (HTTP:80 once a certificate
//! makes it the redirect): found, listed in the plan, and deleted once the service names the
//! new ones.

use aws_sdk_elasticloadbalancingv2::types::Rule;
use aws_sdk_elasticloadbalancingv2::Client;

use anyhow::Context;

use super::{header_value, is_production, of_listener, other_port};
use crate::aws::call_error;
use crate::targets::ecs::load_balancer::{self, Listening};

/// A rule of mldeploy's on the listener that no longer forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRule {
    pub arn: String,
    pub label: String,
}

/// The rules of mldeploy's (the test rule, the production rule) among `rules`.
fn mldeploy_rules(rules: &[Rule]) -> impl Iterator<Item = (&Rule, &'static str)> {
    rules.iter().filter_map(|r| {
        if header_value(r).is_some() {
            Some((r, "test"))
        } else if is_production(r) {
            Some((r, "production"))
        } else {
            None
        }
    })
}

/// mldeploy's rules (tagged the project's) on the listener that does not forward.
pub(super) async fn stale_rules(
    elb: &Client,
    lb_arn: &str,
    listening: &Listening<'_>,
    project: &str,
) -> anyhow::Result<Vec<StaleRule>> {
    let (port, protocol) = other_port(listening);
    let Some(listener) = load_balancer::listeners(elb, lb_arn)
        .await?
        .into_iter()
        .find(|l| l.port() == Some(port))
    else {
        return Ok(Vec::new());
    };
    let rules = of_listener(elb, listener.listener_arn().unwrap_or_default()).await?;
    let mut stale = Vec::new();
    for (rule, which) in mldeploy_rules(&rules) {
        let arn = rule.rule_arn().unwrap_or_default();
        if load_balancer::is_ours(elb, arn, project).await? {
            stale.push(StaleRule {
                arn: arn.to_string(),
                label: format!("{}:{port} {which}", protocol.as_str()),
            });
        }
    }
    Ok(stale)
}

/// Deletes the rules [`ensure`] found stale (after the service names the new ones); a rule
/// already gone is fine.
pub async fn remove_stale(elb: &Client, stale: &[StaleRule]) -> anyhow::Result<()> {
    for rule in stale {
        match elb.delete_rule().rule_arn(&rule.arn).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_rule_not_found_exception()) => {}
            Err(e) => {
                return Err(call_error("elasticloadbalancing:DeleteRule", e)).with_context(|| {
                    format!(
                        "removing the listener rule {} that no longer belongs; run `mldeploy up` again",
                        rule.label
                    )
                })
            }
        }
    }
    Ok(())
}
