//! The load balancer's listeners: HTTP :80 forwarding to the target group, or, with a
//! certificate, HTTPS :443 forwarding and HTTP :80 redirecting to it.

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ListenerAction, ActionTypeEnum, Certificate, Listener, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::Listening;
use crate::aws::tags;
use crate::aws::{call_error, eventually};
use crate::targets::ecs::{Id, Planned};
use crate::targets::{Action, Change};

/// What a listener does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    Forward,
    RedirectToHttps,
}

/// One listener as mldeploy wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub port: i32,
    pub protocol: ProtocolEnum,
    pub default: Default,
}

/// What one listener needs: created, or the listener with this ARN modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStep {
    pub existing: Option<String>,
    pub wanted: Wanted,
}

fn wanted(listening: &Listening<'_>) -> Vec<Wanted> {
    let listener = |port, protocol, default| Wanted {
        port,
        protocol,
        default,
    };
    match listening.certificate {
        None => vec![listener(80, ProtocolEnum::Http, Default::Forward)],
        Some(_) => vec![
            listener(443, ProtocolEnum::Https, Default::Forward),
            listener(80, ProtocolEnum::Http, Default::RedirectToHttps),
        ],
    }
}

/// Whether the listener already does what is wanted (with the wanted certificate, for HTTPS).
fn serves(
    listener: &Listener,
    wanted: &Wanted,
    target_group: &Id,
    certificate: Option<&Id>,
) -> bool {
    let Some(current) = listener.default_actions().first() else {
        return false;
    };
    let action = match wanted.default {
        Default::Forward => {
            current.r#type() == Some(&ActionTypeEnum::Forward)
                && target_group
                    .known()
                    .is_some_and(|tg| current.target_group_arn() == Some(tg))
        }
        Default::RedirectToHttps => {
            current.r#type() == Some(&ActionTypeEnum::Redirect)
                && current.redirect_config().and_then(|r| r.protocol()) == Some("HTTPS")
        }
    };
    let certified = wanted.protocol != ProtocolEnum::Https
        || certificate.and_then(Id::known).is_some_and(|arn| {
            listener
                .certificates()
                .first()
                .and_then(|c| c.certificate_arn())
                == Some(arn)
        });
    action && certified && listener.protocol() == Some(&wanted.protocol)
}

/// Decides, from the load balancer's listeners, what each wanted listener needs, with its port
/// and ARN ([`Id::AfterApply`] for one the plan creates).
pub fn plan(
    project: &str,
    existing: &[Listener],
    target_group: &Id,
    listening: &Listening<'_>,
) -> Vec<(i32, Planned<ListenerStep>)> {
    wanted(listening)
        .into_iter()
        .map(|wanted| {
            let label = format!("{}:{}", wanted.protocol.as_str(), wanted.port);
            let what = match wanted.default {
                Default::RedirectToHttps => "redirect to HTTPS:443".to_string(),
                Default::Forward => format!("forward to target group {project}"),
            };
            let port = wanted.port;
            let planned = match existing.iter().find(|l| l.port() == Some(wanted.port)) {
                Some(l) if serves(l, &wanted, target_group, listening.certificate.as_ref()) => {
                    Planned::keep(
                        Change::new("listener", label, Action::Keep).because(what),
                        Id::Known(l.listener_arn().unwrap_or_default().to_string()),
                    )
                }
                Some(l) => {
                    let arn = l.listener_arn().unwrap_or_default().to_string();
                    Planned::change(
                        Change::new("listener", label, Action::Update).because(what),
                        Id::Known(arn.clone()),
                        ListenerStep {
                            existing: Some(arn),
                            wanted,
                        },
                    )
                }
                None => Planned::change(
                    Change::new("listener", label, Action::Create).because(what),
                    Id::after_apply(),
                    ListenerStep {
                        existing: None,
                        wanted,
                    },
                ),
            };
            (port, planned)
        })
        .collect()
}

fn action(default: Default, target_group: &str) -> ListenerAction {
    match default {
        Default::Forward => ListenerAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(target_group)
            .build(),
        Default::RedirectToHttps => ListenerAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
    }
}

pub async fn apply(
    elb: &Client,
    project: &str,
    lb: &Id,
    target_group: &Id,
    listening: &Listening<'_>,
    step: ListenerStep,
) -> anyhow::Result<Option<Id>> {
    let wanted = step.wanted;
    let default = action(wanted.default, target_group.applied("target group")?);
    let certificates = match (&listening.certificate, &wanted.protocol) {
        (Some(c), ProtocolEnum::Https) => Some(vec![Certificate::builder()
            .certificate_arn(c.applied("certificate")?)
            .build()]),
        _ => None,
    };
    // ELB may not find a certificate ACM has just issued: CertificateNotFound is retried for
    // 5 minutes, as the Terraform provider does (internal/service/elbv2/listener.go).
    match step.existing {
        Some(arn) => {
            let (done, _) = eventually::retried(CERTIFICATE_SEEN, certificate_not_seen, || {
                elb.modify_listener()
                    .listener_arn(arn.as_str())
                    .protocol(wanted.protocol.clone())
                    .set_certificates(certificates.clone())
                    .default_actions(default.clone())
                    .send()
            })
            .await;
            done.map_err(|e| call_error("elasticloadbalancing:ModifyListener", e))?;
            Ok(None)
        }
        None => {
            let lb = lb.applied("load balancer")?;
            let (done, _) = eventually::retried(CERTIFICATE_SEEN, certificate_not_seen, || {
                elb.create_listener()
                    .load_balancer_arn(lb)
                    .port(wanted.port)
                    .protocol(wanted.protocol.clone())
                    .set_certificates(certificates.clone())
                    .default_actions(default.clone())
                    .tags(tags::elbv2(project))
                    .send()
            })
            .await;
            let created = done.map_err(|e| call_error("elasticloadbalancing:CreateListener", e))?;
            let arn = created
                .listeners
                .and_then(|l| l.into_iter().next())
                .and_then(|l| l.listener_arn);
            let arn =
                crate::aws::returned(arn, "elasticloadbalancing:CreateListener", "listener ARN")?;
            Ok(Some(Id::Known(arn)))
        }
    }
}

/// How long a certificate ELB does not find yet is waited for (AWS time).
const CERTIFICATE_SEEN: std::time::Duration = std::time::Duration::from_secs(300);

fn certificate_not_seen(code: Option<&str>, _message: Option<&str>) -> bool {
    code == Some("CertificateNotFound")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(certificate: Option<&str>) -> Listening<'static> {
        Listening {
            container_port: 8080,
            health_check_path: "/health",
            certificate: certificate.map(|c| Id::Known(c.to_string())),
            health: crate::config::Health::default(),
            strategy: crate::config::Strategy::Rolling,
            internal: false,
        }
    }

    fn serving_https(tg: &str, certificate: &str) -> Listener {
        Listener::builder()
            .listener_arn("arn:l443")
            .port(443)
            .protocol(ProtocolEnum::Https)
            .certificates(Certificate::builder().certificate_arn(certificate).build())
            .default_actions(action(Default::Forward, tg))
            .build()
    }

    fn forwarding(tg: &str) -> Listener {
        Listener::builder()
            .listener_arn("arn:l80")
            .port(80)
            .protocol(ProtocolEnum::Http)
            .default_actions(action(Default::Forward, tg))
            .build()
    }

    #[test]
    fn listeners_are_kept_modified_or_created_as_the_certificate_asks() {
        let tg = Id::Known("arn:tg".into());
        let plain = plan("p", &[forwarding("arn:tg")], &tg, &listening(None));
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].1.step, None);
        assert_eq!(plain[0].1.found, Id::Known("arn:l80".into()));

        let https = plan(
            "p",
            &[forwarding("arn:tg")],
            &tg,
            &listening(Some("arn:cert")),
        );
        let steps: Vec<_> = https.iter().map(|(_, p)| p.step.clone()).collect();
        assert_eq!(
            steps,
            [
                Some(ListenerStep {
                    existing: None,
                    wanted: Wanted {
                        port: 443,
                        protocol: ProtocolEnum::Https,
                        default: Default::Forward
                    }
                }),
                Some(ListenerStep {
                    existing: Some("arn:l80".into()),
                    wanted: Wanted {
                        port: 80,
                        protocol: ProtocolEnum::Http,
                        default: Default::RedirectToHttps
                    }
                }),
            ]
        );
        // A target group still to be created is never the one a listener forwards to.
        let fresh = plan(
            "p",
            &[forwarding("arn:tg")],
            &Id::after_apply(),
            &listening(None),
        );
        assert_eq!(fresh[0].1.changes[0].action, Action::Update);

        // Another certificate than the one wanted (a requested one replacing it) is an update.
        let redirect = plan(
            "p",
            &[serving_https("arn:tg", "arn:cert")],
            &tg,
            &listening(Some("arn:cert")),
        )
        .remove(0)
        .1;
        assert_eq!(redirect.step, None);
        let swapped = plan(
            "p",
            &[serving_https("arn:tg", "arn:old")],
            &tg,
            &listening(Some("arn:cert")),
        )
        .remove(0)
        .1;
        assert_eq!(
            swapped.step.map(|s| s.existing),
            Some(Some("arn:l443".to_string()))
        );
        // In a plan that requests the certificate, the HTTPS listener will change.
        let planned = Listening {
            certificate: Some(Id::after_apply()),
            ..listening(None)
        };
        assert!(
            plan("p", &[serving_https("arn:tg", "arn:old")], &tg, &planned)[0]
                .1
                .step
                .is_some()
        );
    }
}
