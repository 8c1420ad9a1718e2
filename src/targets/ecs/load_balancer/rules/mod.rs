//! The two listener rules of a blue/green, canary or linear deployment, on the listener that
//! forwards (HTTPS:443 with a certificate, else HTTP:80), as ECS's guide asks for them
//! (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html):
//!
//! - the production rule (every path) forwards to both target groups; ECS moves its weights;
//! - the test rule forwards requests that carry the header `X-Mldeploy-Test` with this stack's
//!   own random value to the new revision while it is tested. The value is made when the rule is
//!   created and read back from the rule; nothing without it (no one without the AWS access to
//!   read the rule) reaches the new revision early, and no port is opened.
//!
//! mldeploy creates the rules forwarding to the group production uses now (ECS alternates it
//! between `<name>` and `<name>-alt`) and never changes their actions after: ECS owns the
//! weights. When the forwarding listener moves (a certificate added: HTTP:80 turns into the
//! redirect), the rules mldeploy made on the other listener are removed once the service names
//! the new ones: ALB evaluates a listener's rules before its default action
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-update-rules.html),
//! so a production rule left on :80 would keep forwarding plain HTTP past the redirect.

use aws_sdk_elasticloadbalancingv2::types::{
    Action as RuleAction, ActionTypeEnum, ForwardActionConfig, HttpHeaderConditionConfig,
    PathPatternConditionConfig, ProtocolEnum, Rule, RuleCondition, TargetGroupTuple,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::Listening;
use crate::aws::call_error;
use crate::aws::tags;
use crate::targets::ecs::{Id, Plan, Planned};
use crate::targets::{Action, Change};

mod live;
mod stale;
pub use live::{favoured, production_target_group, serving_target_group, test_token, weights};
use stale::stale_rules;
pub use stale::{remove_stale, StaleRule};

/// The header the test rule routes on.
pub const TEST_HEADER: &str = "X-Mldeploy-Test";
const TEST_PRIORITY: i32 = 1;
const PRODUCTION_PRIORITY: i32 = 2;

/// What ECS needs for the load balancer's advancedConfiguration, and how mldeploy reaches the
/// new revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub alternate_target_group_arn: Id,
    pub production_rule: Id,
    pub test_rule: Id,
    /// The test rule's header value; None in a plan that creates it.
    pub test_token: Option<String>,
    /// mldeploy's rules on the listener that no longer forwards, to delete once the service
    /// names the new ones (see the module's docs); the plan lists them already.
    pub stale: Vec<StaleRule>,
}

/// Which of the two rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Production,
    Test,
}

/// A rule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStep {
    pub which: Which,
    /// The test rule's header value.
    pub token: Option<String>,
}

pub(super) fn forwarding_port(listening: &Listening<'_>) -> (i32, ProtocolEnum) {
    match listening.certificate {
        Some(_) => (443, ProtocolEnum::Https),
        None => (80, ProtocolEnum::Http),
    }
}

/// The listener that does not forward (the redirect, or the HTTPS listener being removed).
fn other_port(listening: &Listening<'_>) -> (i32, ProtocolEnum) {
    match listening.certificate {
        Some(_) => (80, ProtocolEnum::Http),
        None => (443, ProtocolEnum::Https),
    }
}

fn header_value(rule: &Rule) -> Option<String> {
    rule.conditions()
        .iter()
        .filter(|c| c.field() == Some("http-header"))
        .filter_map(|c| c.http_header_config())
        .find(|h| h.http_header_name() == Some(TEST_HEADER))
        .and_then(|h| h.values().first().cloned())
}

fn is_production(rule: &Rule) -> bool {
    !rule.is_default().unwrap_or(false)
        && rule.conditions().iter().any(|c| {
            c.field() == Some("path-pattern")
                && c.path_pattern_config()
                    .is_some_and(|p| p.values() == ["/*".to_string()])
        })
}

/// Decides, from the forwarding listener's rules, which of the two need creating.
pub fn plan_for(
    existing: &[Rule],
    port_label: &str,
) -> [Planned<RuleStep, (Id, Option<String>)>; 2] {
    let test = existing.iter().find(|r| header_value(r).is_some());
    let production = existing.iter().find(|r| is_production(r));
    let test = match test {
        Some(rule) => Planned::keep(
            Change::new("listener rule", format!("{port_label} test"), Action::Keep),
            (
                Id::Known(rule.rule_arn().unwrap_or_default().to_string()),
                header_value(rule),
            ),
        ),
        None => {
            let token = crate::smoke::route_token();
            Planned::change(
            Change::new("listener rule", format!("{port_label} test"), Action::Create).because(
                format!("requests carrying {TEST_HEADER} reach the new revision while mldeploy tests it; no port is opened"),
            ),
            (Id::after_apply(), Some(token.clone())),
            RuleStep {
                which: Which::Test,
                token: Some(token),
            },
        )
        }
    };
    let production = match production {
        Some(rule) => Planned::keep(
            Change::new(
                "listener rule",
                format!("{port_label} production"),
                Action::Keep,
            ),
            (
                Id::Known(rule.rule_arn().unwrap_or_default().to_string()),
                None,
            ),
        ),
        None => Planned::change(
            Change::new(
                "listener rule",
                format!("{port_label} production"),
                Action::Create,
            )
            .because("every request, forwarded to the serving target group; ECS moves the weights"),
            (Id::after_apply(), None),
            RuleStep {
                which: Which::Production,
                token: None,
            },
        ),
    };
    [test, production]
}

/// Forward to the serving target group only (ECS shifts the weights from there).
fn forward(primary: &str, alternate: &str) -> RuleAction {
    RuleAction::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(primary)
                        .weight(1)
                        .build(),
                )
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(alternate)
                        .weight(0)
                        .build(),
                )
                .build(),
        )
        .build()
}

async fn apply(
    elb: &Client,
    project: &str,
    listener: &Id,
    primary: &Id,
    alternate: &Id,
    step: RuleStep,
) -> anyhow::Result<Option<(Id, Option<String>)>> {
    let condition = match (&step.which, &step.token) {
        (Which::Test, Some(token)) => RuleCondition::builder()
            .field("http-header")
            .http_header_config(
                HttpHeaderConditionConfig::builder()
                    .http_header_name(TEST_HEADER)
                    .values(token)
                    .build(),
            )
            .build(),
        _ => RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(PathPatternConditionConfig::builder().values("/*").build())
            .build(),
    };
    let priority = match step.which {
        Which::Test => TEST_PRIORITY,
        Which::Production => PRODUCTION_PRIORITY,
    };
    let out = elb
        .create_rule()
        .listener_arn(listener.applied("listener")?)
        .priority(priority)
        .conditions(condition)
        .actions(forward(
            primary.applied("target group")?,
            alternate.applied("alternate target group")?,
        ))
        .tags(tags::elbv2(project))
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:CreateRule", e))?;
    let arn = out
        .rules()
        .first()
        .and_then(|r| r.rule_arn())
        .unwrap_or_default()
        .to_string();
    Ok(Some((Id::Known(arn), step.token)))
}

/// Every rule of the listener, all pages read.
pub async fn of_listener(elb: &Client, listener_arn: &str) -> anyhow::Result<Vec<Rule>> {
    let mut rules = Vec::new();
    let mut marker = None;
    loop {
        let out = elb
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| call_error("elasticloadbalancing:DescribeRules", e))?;
        rules.extend(out.rules().iter().cloned());
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(rules),
        }
    }
}

/// Where the rules go: the load balancer, its forwarding listener (created by the plan or
/// found), the two target groups (primary, alternate) and whether the alternate serves now.
pub struct At<'l> {
    pub lb: &'l Id,
    pub listener: Id,
    pub groups: (Id, Id),
    pub alternate_serves: bool,
}

/// Decides the forwarding listener's two rules: the ones missing are created.
pub async fn decide<'a>(
    elb: &'a Client,
    project: &'a str,
    at: At<'_>,
    listening: &Listening<'_>,
    plan: &mut Plan<'a>,
) -> anyhow::Result<Shift> {
    let At {
        lb,
        listener,
        groups: (primary, alternate),
        alternate_serves,
    } = at;
    // A new rule forwards to the group that serves now, the other at weight 0.
    let (live, idle) = match alternate_serves {
        true => (alternate.clone(), primary),
        false => (primary, alternate.clone()),
    };
    let (port, protocol) = forwarding_port(listening);
    let existing = match listener.known() {
        Some(arn) => of_listener(elb, arn).await?,
        None => Vec::new(),
    };
    let label = format!("{}:{port}", protocol.as_str());
    let [test, production] = plan_for(&existing, &label);
    let stale = match lb.known() {
        Some(lb) => stale_rules(elb, lb, listening, project).await?,
        None => Vec::new(),
    };
    let rule = |planned, plan: &mut Plan<'a>| {
        let (listener, live, idle) = (listener.clone(), live.clone(), idle.clone());
        plan.add(planned, move |step| async move {
            apply(elb, project, &listener, &live, &idle, step).await
        })
    };
    let (test_rule, test_token) = rule(test, plan);
    let (production_rule, _) = rule(production, plan);
    for rule in &stale {
        plan.changes.push(
            Change::new("listener rule", rule.label.clone(), Action::Delete).because(format!(
                "{label} forwards now; the listener's rules come before its default action, so this one would keep forwarding (removed once the service names the {label} rules)"
            )),
        );
    }
    Ok(Shift {
        alternate_target_group_arn: alternate,
        production_rule,
        test_rule,
        test_token,
        stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(arn: &str, condition: RuleCondition) -> Rule {
        Rule::builder()
            .rule_arn(arn)
            .priority("1")
            .is_default(false)
            .conditions(condition)
            .build()
    }

    #[test]
    fn existing_rules_are_kept_with_their_token_and_missing_ones_created_with_a_fresh_one() {
        let test = rule(
            "arn:test",
            RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    HttpHeaderConditionConfig::builder()
                        .http_header_name(TEST_HEADER)
                        .values("s3cret")
                        .build(),
                )
                .build(),
        );
        let production = rule(
            "arn:prod",
            RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(PathPatternConditionConfig::builder().values("/*").build())
                .build(),
        );
        let [t, p] = plan_for(&[test.clone(), production], "HTTP:80");
        assert_eq!(t.step, None);
        assert_eq!(
            t.found,
            (Id::Known("arn:test".into()), Some("s3cret".into()))
        );
        assert_eq!(p.step, None);

        let [t, p] = plan_for(&[test], "HTTP:80");
        assert_eq!(t.step, None);
        assert_eq!(p.step.map(|s| s.which), Some(Which::Production));

        let [t, _] = plan_for(&[], "HTTP:80");
        let token = t.step.and_then(|s| s.token).unwrap();
        assert_eq!(token.len(), 32);
        let [again, _] = plan_for(&[], "HTTP:80");
        assert_ne!(again.step.and_then(|s| s.token).unwrap(), token);
    }
}
