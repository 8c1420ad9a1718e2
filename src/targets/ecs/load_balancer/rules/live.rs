//! Where the rules send traffic now: the production rule's weights (ECS's to move), the group
//! it favours, and the test rule's header value.

use aws_sdk_elasticloadbalancingv2::Client;

use super::{forwarding_port, header_value, is_production, of_listener, other_port};
use crate::aws::call_error;
use crate::targets::ecs::load_balancer::{self, Listening};

/// The production rule's forward, as ECS left it: (target group ARN, weight) each.
pub async fn weights(elb: &Client, rule_arn: &str) -> anyhow::Result<Vec<(String, i32)>> {
    let out = elb
        .describe_rules()
        .rule_arns(rule_arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DescribeRules", e))?;
    Ok(out
        .rules()
        .iter()
        .flat_map(|r| r.actions())
        .filter_map(|a| a.forward_config())
        .flat_map(|f| f.target_groups())
        .map(|t| {
            (
                t.target_group_arn().unwrap_or_default().to_string(),
                t.weight().unwrap_or(1),
            )
        })
        .collect())
}

/// The target group that takes (most of) production's traffic through the rule.
pub async fn production_target_group(
    elb: &Client,
    rule_arn: &str,
) -> anyhow::Result<Option<String>> {
    Ok(favoured(&weights(elb, rule_arn).await?))
}

/// Of (target group, weight) pairs, the group with the largest weight above 0.
pub fn favoured(weights: &[(String, i32)]) -> Option<String> {
    weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .max_by_key(|(_, w)| *w)
        .map(|(tg, _)| tg.clone())
}

/// The target group the forwarding listener's production rule favours, when the listener has
/// that rule.
pub async fn serving_target_group(
    elb: &Client,
    lb_arn: &str,
    listening: &Listening<'_>,
) -> anyhow::Result<Option<String>> {
    let listeners = load_balancer::listeners(elb, lb_arn).await?;
    // The forwarding listener's production rule; while it is being moved to the other listener
    // (a certificate added or removed), the one it moves from.
    for (port, _) in [forwarding_port(listening), other_port(listening)] {
        let Some(listener) = listeners.iter().find(|l| l.port() == Some(port)) else {
            continue;
        };
        let rules = of_listener(elb, listener.listener_arn().unwrap_or_default()).await?;
        if let Some(rule) = rules.iter().find(|r| is_production(r)) {
            return production_target_group(elb, rule.rule_arn().unwrap_or_default()).await;
        }
    }
    Ok(None)
}

/// The test rule's header value on the project's load balancer, when it has one.
pub async fn test_token(elb: &Client, project: &str) -> anyhow::Result<Option<String>> {
    let Some(lb) = load_balancer::find_alb(elb, project).await? else {
        return Ok(None);
    };
    for listener in
        load_balancer::listeners(elb, lb.load_balancer_arn().unwrap_or_default()).await?
    {
        let rules = of_listener(elb, listener.listener_arn().unwrap_or_default()).await?;
        if let Some(token) = rules.iter().find_map(header_value) {
            return Ok(Some(token));
        }
    }
    Ok(None)
}
