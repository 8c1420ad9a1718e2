//! A task definition between mldeploy's [`TaskSpec`] and the ECS API's types: a registered
//! revision read back for comparison, and a spec turned into what RegisterTaskDefinition takes.

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, HealthCheck, KeyValuePair,
    LogConfiguration, LogDriver, NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret,
    TaskDefinition, TransportProtocol,
};

use super::*;

impl TaskSpec {
    /// The spec of a registered revision, for comparison.
    pub fn from_registered(td: &TaskDefinition) -> TaskSpec {
        let containers = td
            .container_definitions()
            .iter()
            .map(|c| ContainerSpec {
                name: c.name().unwrap_or_default().to_string(),
                image: c.image().unwrap_or_default().to_string(),
                essential: c.essential().unwrap_or(true),
                command: c.command().to_vec(),
                entry_point: c.entry_point().to_vec(),
                port_mappings: c
                    .port_mappings()
                    .iter()
                    .map(|p| PortSpec {
                        container_port: p
                            .container_port()
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(0),
                        protocol: p
                            .protocol()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_else(tcp),
                    })
                    .collect(),
                environment: c
                    .environment()
                    .iter()
                    .map(|e| NameValue {
                        name: e.name().unwrap_or_default().to_string(),
                        value: e.value().unwrap_or_default().to_string(),
                    })
                    .collect(),
                secrets: c
                    .secrets()
                    .iter()
                    .map(|s| SecretSpec {
                        name: s.name().to_string(),
                        value_from: s.value_from().to_string(),
                    })
                    .collect(),
                health_check: c.health_check().map(|h| HealthSpec {
                    command: h.command().to_vec(),
                    interval: h.interval(),
                    timeout: h.timeout(),
                    retries: h.retries(),
                    start_period: h.start_period(),
                }),
                log_configuration: c.log_configuration().map(|l| LogSpec {
                    log_driver: l.log_driver().as_str().to_string(),
                    options: l
                        .options()
                        .map(|o| o.clone().into_iter().collect())
                        .unwrap_or_default(),
                }),
            })
            .collect();
        TaskSpec {
            family: td.family().unwrap_or_default().to_string(),
            network_mode: td
                .network_mode()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            requires_compatibilities: td
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            cpu: td.cpu().unwrap_or_default().to_string(),
            memory: td.memory().unwrap_or_default().to_string(),
            execution_role_arn: td.execution_role_arn().unwrap_or_default().to_string(),
            task_role_arn: td.task_role_arn().unwrap_or_default().to_string(),
            runtime_platform: td.runtime_platform().map(|p| RuntimePlatformSpec {
                cpu_architecture: p.cpu_architecture().map(|a| a.as_str().to_string()),
                operating_system_family: p
                    .operating_system_family()
                    .map(|o| o.as_str().to_string()),
            }),
            container_definitions: containers,
        }
        .normalized()
    }

    /// The container definitions for RegisterTaskDefinition.
    pub fn sdk_containers(&self) -> anyhow::Result<Vec<ContainerDefinition>> {
        self.container_definitions
            .iter()
            .map(|c| {
                let mut b = ContainerDefinition::builder()
                    .name(&c.name)
                    .image(&c.image)
                    .essential(c.essential)
                    .set_command((!c.command.is_empty()).then(|| c.command.clone()))
                    .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()));
                for p in &c.port_mappings {
                    b = b.port_mappings(
                        PortMapping::builder()
                            .container_port(i32::from(p.container_port))
                            .protocol(TransportProtocol::from(p.protocol.as_str()))
                            .build(),
                    );
                }
                for e in &c.environment {
                    b = b.environment(
                        KeyValuePair::builder()
                            .name(&e.name)
                            .value(&e.value)
                            .build(),
                    );
                }
                for s in &c.secrets {
                    b = b.secrets(
                        Secret::builder()
                            .name(&s.name)
                            .value_from(&s.value_from)
                            .build()?,
                    );
                }
                if let Some(h) = &c.health_check {
                    b = b.health_check(
                        HealthCheck::builder()
                            .set_command(Some(h.command.clone()))
                            .set_interval(h.interval)
                            .set_timeout(h.timeout)
                            .set_retries(h.retries)
                            .set_start_period(h.start_period)
                            .build()?,
                    );
                }
                if let Some(l) = &c.log_configuration {
                    b = b.log_configuration(
                        LogConfiguration::builder()
                            .log_driver(LogDriver::from(l.log_driver.as_str()))
                            .set_options(Some(l.options.clone().into_iter().collect()))
                            .build()?,
                    );
                }
                Ok(b.build())
            })
            .collect()
    }

    pub fn sdk_runtime_platform(&self) -> Option<RuntimePlatform> {
        self.runtime_platform.as_ref().map(|p| {
            RuntimePlatform::builder()
                .set_cpu_architecture(p.cpu_architecture.as_deref().map(CpuArchitecture::from))
                .set_operating_system_family(
                    p.operating_system_family.as_deref().map(OsFamily::from),
                )
                .build()
        })
    }

    pub fn sdk_network_mode(&self) -> NetworkMode {
        NetworkMode::from(self.network_mode.as_str())
    }

    pub fn sdk_compatibilities(&self) -> Vec<Compatibility> {
        self.requires_compatibilities
            .iter()
            .map(|c| Compatibility::from(c.as_str()))
            .collect()
    }
}
