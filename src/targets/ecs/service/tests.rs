//! Unit tests of the service: its deployment configuration, and what it is planned to need.

use super::*;

#[test]
fn the_breaker_rolls_back_and_the_update_is_100_200() {
    let c = rollout::deployment_configuration(&Rollout::rolling());
    let breaker = c.deployment_circuit_breaker().unwrap();
    assert!(breaker.enable() && breaker.rollback());
    assert_eq!(
        (c.minimum_healthy_percent(), c.maximum_percent()),
        (Some(100), Some(200))
    );
}

#[test]
fn task_definition_arns_shorten_to_family_and_revision() {
    assert_eq!(
        short_task_definition("arn:aws:ecs:us-east-1:1:task-definition/housing:7"),
        "housing:7"
    );
}
fn spec(task_definition: &str) -> ServiceSpec {
    ServiceSpec {
        cluster: "c".into(),
        task_definition_arn: task_definition.into(),
        desired_count: 2,
        target: Some(LbTarget {
            target_group_arn: "arn:tg".into(),
            container_name: "p".into(),
            container_port: 8080,
        }),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        public_ip: true,
        force: false,
        grace_period: Some(60),
        rollout: Some(Rollout::rolling()),
    }
}

fn running(task_definition: &str) -> Service {
    Service::builder()
        .task_definition(task_definition)
        .desired_count(2)
        .health_check_grace_period_seconds(60)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets("subnet-1")
                        .security_groups("sg-1")
                        .assign_public_ip(aws_sdk_ecs::types::AssignPublicIp::Enabled)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .deployments(
            aws_sdk_ecs::types::Deployment::builder()
                .id("ecs-svc/1")
                .status("PRIMARY")
                .build(),
        )
        .build()
}

#[test]
fn a_service_is_created_kept_or_updated_with_the_reason() {
    let td1 = "arn:aws:ecs:r:1:task-definition/p:1";
    let td2 = "arn:aws:ecs:r:1:task-definition/p:2";
    let new = plan("p", &spec(td1), None);
    assert_eq!(new.step, Some(ServiceStep::Create));
    assert_eq!(new.found.previous_task_definition, None);

    let kept = plan("p", &spec(td1), Some(running(td1)));
    assert_eq!(kept.step, None);
    assert_eq!(kept.changes[0].detail.as_deref(), Some("serving p:1"));

    let private = ServiceSpec {
        public_ip: false,
        ..spec(td1)
    };
    let moved = plan("p", &private, Some(running(td1)));
    assert_eq!(
        moved.changes[0].detail.as_deref(),
        Some("no public IPs for the tasks")
    );

    let updated = plan("p", &spec(td2), Some(running(td1)));
    assert_eq!(
        updated.step,
        Some(ServiceStep::Update {
            serving: td1.into(),
            primary_before: Some("ecs-svc/1".into()),
            switch: None,
        })
    );
    assert_eq!(updated.changes[0].detail.as_deref(), Some("p:1 -> p:2"));
    let forced = plan(
        "p",
        &ServiceSpec {
            force: true,
            ..spec(td1)
        },
        Some(running(td1)),
    );
    assert_eq!(forced.changes[0].action, Action::Update);

    // A grace period that drifted (the model's load time changed) is converged, and one the
    // spec leaves alone (a rollback's) is kept.
    let longer = ServiceSpec {
        grace_period: Some(300),
        ..spec(td1)
    };
    let changed = plan("p", &longer, Some(running(td1)));
    assert_eq!(
        changed.changes[0].detail.as_deref(),
        Some("health-check grace period 60 s -> 300 s")
    );
    let untouched = ServiceSpec {
        grace_period: None,
        ..spec(td1)
    };
    assert_eq!(plan("p", &untouched, Some(running(td1))).step, None);
}

#[test]
fn a_switch_between_rolling_and_a_traffic_shifting_strategy_is_made_first() {
    let rolling = running("arn:aws:ecs:us-east-1:1:task-definition/p:1");
    let blue_green = ServiceSpec {
        rollout: Some(Rollout {
            strategy: crate::config::Strategy::BlueGreen,
            bake_minutes: 5,
            shift: None,
            hook_timeout_minutes: 15,
        }),
        ..spec("arn:aws:ecs:us-east-1:1:task-definition/p:2")
    };
    assert_eq!(
        switch::needed(&rolling, &blue_green),
        Some(switch::Switch::ToShifting)
    );
    assert_eq!(switch::needed(&rolling, &spec("x")), None);
    let shifting = Service::builder()
        .deployment_configuration(rollout::deployment_configuration(
            blue_green.rollout.as_ref().unwrap(),
        ))
        .build();
    assert_eq!(
        switch::needed(&shifting, &spec("x")),
        Some(switch::Switch::ToRolling)
    );
    assert_eq!(switch::needed(&shifting, &blue_green), None);
}
