//! How ECS replaces the service's revision: the deploymentConfiguration (rolling 100/200 with the
//! circuit breaker; or blue/green, canary or linear with a bake time and a PAUSE hook after the
//! test traffic shift, where mldeploy's smoke test and model gate run) and the load balancer's
//! advancedConfiguration a traffic-shifting strategy needs.

use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration,
    DeploymentStrategy, LinearConfiguration, LoadBalancer as EcsLoadBalancer, Service,
};

use crate::config::Strategy;

/// What a traffic-shifting strategy needs of the load balancer (ARNs known by the time the
/// service is created or updated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftResources {
    pub alternate_target_group_arn: String,
    pub production_rule_arn: String,
    pub test_rule_arn: String,
    pub role_arn: String,
}

/// The deployment settings `up` converges.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub strategy: Strategy,
    pub bake_minutes: u32,
    /// With a traffic-shifting strategy.
    pub shift: Option<ShiftResources>,
    /// How long the PAUSE hook waits for mldeploy before ECS takes its action (roll back): the
    /// deploy's --timeout, so a run that dies leaves no deployment paused for a day.
    pub hook_timeout_minutes: i32,
}

impl Rollout {
    pub fn rolling() -> Rollout {
        Rollout {
            strategy: Strategy::Rolling,
            bake_minutes: 0,
            shift: None,
            hook_timeout_minutes: 0,
        }
    }
}

/// The circuit breaker with rollback, for every strategy. ECS's deployment failure detection
/// page says the breaker and alarms "only support rolling update deployment and blue/green
/// deployment types" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-failure-detection.html);
/// the API reference's "can only be used for services using the rolling update (ECS)
/// deployment type" names the ECS deployment controller, which blue/green, canary and linear
/// all use. For canary and linear AWS documents neither support nor refusal; the breaker is
/// what ends a new revision whose tasks never start before its traffic shift, so it is kept.
fn breaker() -> DeploymentCircuitBreaker {
    DeploymentCircuitBreaker::builder()
        .enable(true)
        .rollback(true)
        .build()
}

/// The service's deploymentConfiguration for `rollout`.
pub fn deployment_configuration(rollout: &Rollout) -> DeploymentConfiguration {
    let builder = DeploymentConfiguration::builder()
        .deployment_circuit_breaker(breaker())
        .minimum_healthy_percent(100)
        .maximum_percent(200);
    let strategy = match rollout.strategy {
        Strategy::Rolling => return builder.strategy(DeploymentStrategy::Rolling).build(),
        Strategy::BlueGreen => DeploymentStrategy::BlueGreen,
        Strategy::Canary { .. } => DeploymentStrategy::Canary,
        Strategy::Linear { .. } => DeploymentStrategy::Linear,
    };
    let hook = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
        .timeout_configuration(
            DeploymentLifecycleHookTimeoutConfiguration::builder()
                .timeout_in_minutes(rollout.hook_timeout_minutes.max(1))
                .action(DeploymentLifecycleHookAction::Rollback)
                .build(),
        )
        .build();
    let mut builder = builder
        .strategy(strategy)
        .bake_time_in_minutes(i32::try_from(rollout.bake_minutes).unwrap_or(0))
        .lifecycle_hooks(hook);
    match rollout.strategy {
        Strategy::Canary {
            percent,
            bake_minutes,
        } => {
            builder = builder.canary_configuration(
                CanaryConfiguration::builder()
                    .canary_percent(percent)
                    .canary_bake_time_in_minutes(i32::try_from(bake_minutes).unwrap_or(0))
                    .build(),
            )
        }
        Strategy::Linear {
            percent,
            bake_minutes,
        } => {
            builder = builder.linear_configuration(
                LinearConfiguration::builder()
                    .step_percent(percent)
                    .step_bake_time_in_minutes(i32::try_from(bake_minutes).unwrap_or(0))
                    .build(),
            )
        }
        Strategy::Rolling | Strategy::BlueGreen => {}
    }
    builder.build()
}

/// The service's one load balancer entry, with the advanced configuration a traffic-shifting
/// strategy needs.
pub fn load_balancer(
    target_group_arn: &str,
    container_name: &str,
    container_port: u16,
    shift: Option<&ShiftResources>,
) -> EcsLoadBalancer {
    let advanced = shift.map(|s| {
        AdvancedConfiguration::builder()
            .alternate_target_group_arn(&s.alternate_target_group_arn)
            .production_listener_rule(&s.production_rule_arn)
            .test_listener_rule(&s.test_rule_arn)
            .role_arn(&s.role_arn)
            .build()
    });
    EcsLoadBalancer::builder()
        .target_group_arn(target_group_arn)
        .container_name(container_name)
        .container_port(i32::from(container_port))
        .set_advanced_configuration(advanced)
        .build()
}

/// The service's two target groups as ECS wires them now: (the one it names as its target group,
/// the other). ECS swaps them in the service's load-balancer record each time a blue/green,
/// canary or linear deployment succeeds, so production alternates between `<name>` and
/// `<name>-alt` (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html).
/// An update that sent a fixed pair back would make ECS start the next revision in the group
/// that takes production traffic (hashicorp/terraform-provider-aws#45678), so `up` keeps the
/// order it finds: the record's, when it names `ours`; the group a rolling service deploys to
/// first; else `serving` (the production rule's favourite) first, for a new service.
pub fn live_wiring(
    existing: Option<&Service>,
    ours: (&str, &str),
    serving: &str,
) -> (String, String) {
    let other = |first: &str| {
        if first == ours.0 {
            ours.1.to_string()
        } else {
            ours.0.to_string()
        }
    };
    let record = existing.and_then(|s| s.load_balancers().first());
    if let Some(lb) = record {
        let group = lb.target_group_arn().unwrap_or_default();
        let alternate = lb
            .advanced_configuration()
            .and_then(|a| a.alternate_target_group_arn());
        let mine = |arn: &str| arn == ours.0 || arn == ours.1;
        match alternate {
            Some(alt) if mine(group) && mine(alt) && group != alt => {
                return (group.to_string(), alt.to_string())
            }
            _ if mine(group) => return (group.to_string(), other(group)),
            _ => {}
        }
    }
    if serving == ours.1 {
        (ours.1.to_string(), ours.0.to_string())
    } else {
        (ours.0.to_string(), ours.1.to_string())
    }
}

/// How the service's deployment settings differ from `rollout`, in words; None when they agree.
pub fn drift(service: &Service, rollout: &Rollout) -> Option<String> {
    let config = service.deployment_configuration();
    let current = config
        .and_then(|c| c.strategy())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "ROLLING".to_string());
    let wanted = deployment_configuration(rollout);
    let wanted_name = wanted
        .strategy()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let mut what = Vec::new();
    if current != wanted_name {
        what.push(format!("deployment strategy {current} -> {wanted_name}"));
    } else if rollout.strategy.shifts_traffic() {
        let found = config
            .cloned()
            .unwrap_or_else(|| DeploymentConfiguration::builder().build());
        if found.bake_time_in_minutes() != wanted.bake_time_in_minutes() {
            what.push(format!(
                "bake time {} min -> {} min",
                found.bake_time_in_minutes().unwrap_or(0),
                rollout.bake_minutes
            ));
        }
        if found.canary_configuration() != wanted.canary_configuration()
            || found.linear_configuration() != wanted.linear_configuration()
        {
            what.push(format!("{} steps", rollout.strategy.name()));
        }
        if found.lifecycle_hooks() != wanted.lifecycle_hooks() {
            what.push("the PAUSE hook mldeploy's gate answers".to_string());
        }
    }
    let advanced = service
        .load_balancers()
        .first()
        .and_then(|lb| lb.advanced_configuration());
    let wanted_advanced = rollout.shift.as_ref().map(|s| {
        (
            s.alternate_target_group_arn.as_str(),
            s.production_rule_arn.as_str(),
            s.test_rule_arn.as_str(),
            s.role_arn.as_str(),
        )
    });
    let found_advanced = advanced.map(|a| {
        (
            a.alternate_target_group_arn().unwrap_or_default(),
            a.production_listener_rule().unwrap_or_default(),
            a.test_listener_rule().unwrap_or_default(),
            a.role_arn().unwrap_or_default(),
        )
    });
    if found_advanced != wanted_advanced {
        what.push(match wanted_advanced {
            Some(_) => "load balancer: alternate target group and listener rules".to_string(),
            None => "load balancer: no alternate target group".to_string(),
        });
    }
    (!what.is_empty()).then(|| what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift() -> ShiftResources {
        ShiftResources {
            alternate_target_group_arn: "arn:alt".into(),
            production_rule_arn: "arn:prod".into(),
            test_rule_arn: "arn:test".into(),
            role_arn: "arn:role".into(),
        }
    }

    fn blue_green() -> Rollout {
        Rollout {
            strategy: Strategy::BlueGreen,
            bake_minutes: 5,
            shift: Some(shift()),
            hook_timeout_minutes: 15,
        }
    }

    fn service(config: DeploymentConfiguration, shift: Option<&ShiftResources>) -> Service {
        Service::builder()
            .deployment_configuration(config)
            .load_balancers(load_balancer("arn:tg", "p", 8080, shift))
            .build()
    }

    #[test]
    fn a_traffic_shifting_strategy_pauses_after_the_test_shift_until_mldeploy_answers() {
        let config = deployment_configuration(&blue_green());
        assert_eq!(config.strategy(), Some(&DeploymentStrategy::BlueGreen));
        assert_eq!(config.bake_time_in_minutes(), Some(5));
        let hook = &config.lifecycle_hooks()[0];
        assert_eq!(
            hook.target_type(),
            Some(&DeploymentLifecycleHookTargetType::Pause)
        );
        assert_eq!(
            hook.lifecycle_stages(),
            [DeploymentLifecycleHookStage::PostTestTrafficShift]
        );
        let timeout = hook.timeout_configuration().unwrap();
        assert_eq!(timeout.timeout_in_minutes(), Some(15));
        assert_eq!(
            timeout.action(),
            Some(&DeploymentLifecycleHookAction::Rollback)
        );
        let canary = deployment_configuration(&Rollout {
            strategy: Strategy::Canary {
                percent: 10.0,
                bake_minutes: 3,
            },
            ..blue_green()
        });
        let c = canary.canary_configuration().unwrap();
        assert_eq!(
            (c.canary_percent(), c.canary_bake_time_in_minutes()),
            (Some(10.0), Some(3))
        );
        assert!(deployment_configuration(&Rollout::rolling())
            .lifecycle_hooks()
            .is_empty());
    }

    #[test]
    fn the_live_wiring_is_kept_as_ecs_swapped_it() {
        let bg = blue_green();
        let swapped = Service::builder()
            .load_balancers(load_balancer(
                "arn:alt",
                "p",
                8080,
                Some(&ShiftResources {
                    alternate_target_group_arn: "arn:tg".into(),
                    ..shift()
                }),
            ))
            .build();
        let ours = ("arn:tg", "arn:alt");
        assert_eq!(
            live_wiring(Some(&swapped), ours, "arn:tg"),
            ("arn:alt".to_string(), "arn:tg".to_string())
        );
        let fresh = service(deployment_configuration(&bg), bg.shift.as_ref());
        assert_eq!(
            live_wiring(Some(&fresh), ours, "arn:alt"),
            ("arn:tg".to_string(), "arn:alt".to_string())
        );
        // A rolling service deploying to the alternate group (after a switch back from blue/green).
        let rolling = Service::builder()
            .load_balancers(load_balancer("arn:alt", "p", 8080, None))
            .build();
        assert_eq!(
            live_wiring(Some(&rolling), ours, "arn:tg"),
            ("arn:alt".to_string(), "arn:tg".to_string())
        );
        // No service yet: where the production rule sends traffic.
        assert_eq!(
            live_wiring(None, ours, "arn:alt"),
            ("arn:alt".to_string(), "arn:tg".to_string())
        );
        assert_eq!(
            live_wiring(None, ours, "arn:tg"),
            ("arn:tg".to_string(), "arn:alt".to_string())
        );
    }

    #[test]
    fn drift_names_a_strategy_switch_both_ways_and_agrees_with_itself() {
        let bg = blue_green();
        let converged = service(deployment_configuration(&bg), bg.shift.as_ref());
        assert_eq!(drift(&converged, &bg), None);
        let rolling = service(deployment_configuration(&Rollout::rolling()), None);
        assert_eq!(drift(&rolling, &Rollout::rolling()), None);
        let to_bg = drift(&rolling, &bg).unwrap();
        assert!(to_bg.contains("ROLLING -> BLUE_GREEN"), "{to_bg}");
        assert!(to_bg.contains("alternate target group"), "{to_bg}");
        let back = drift(&converged, &Rollout::rolling()).unwrap();
        assert!(back.contains("BLUE_GREEN -> ROLLING"), "{back}");
        let longer = drift(
            &converged,
            &Rollout {
                bake_minutes: 30,
                ..blue_green()
            },
        )
        .unwrap();
        assert_eq!(longer, "bake time 5 min -> 30 min");
    }
}
