//! What a rendered task definition must satisfy before mldeploy registers it: its family and
//! roles are mldeploy's, Fargate offers its cpu/memory pair, a container named for the project
//! maps `service.port`, and its health check is within ECS's ranges.

use super::{TaskInputs, TaskSpec};
use crate::config::fargate_memory_options;
use crate::image::platform::{for_fargate, FARGATE_ARM64, FARGATE_X86_64};

/// The first line of the rendered output that holds `"field"`, numbered from 1, and its text.
pub(super) fn line_of<'a>(rendered: &'a str, field: &str) -> (usize, &'a str) {
    let quoted = format!("\"{field}\"");
    rendered
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains(&quoted))
        .map(|(n, line)| (n + 1, line.trim()))
        .unwrap_or((0, ""))
}

/// ECS's limits on a container health check: (field, least, most).
const HEALTH_RANGES: &[(&str, i32, i32)] = &[
    ("interval", 5, 300),
    ("timeout", 2, 120),
    ("retries", 1, 10),
    ("startPeriod", 0, 300),
];

impl TaskSpec {
    /// What ECS would refuse, or what would take the task out of mldeploy's hands: the field
    /// (to find its line) and the problem.
    pub(super) fn check(&self, inputs: &TaskInputs) -> Result<(), (&'static str, String)> {
        if self.family != inputs.project {
            return Err((
                "family",
                format!(
                    "family is {:?}; mldeploy manages the family named after the project, {:?}",
                    self.family, inputs.project
                ),
            ));
        }
        if self.network_mode != "awsvpc" {
            return Err((
                "networkMode",
                format!(
                    "networkMode is {:?}; Fargate needs \"awsvpc\"",
                    self.network_mode
                ),
            ));
        }
        if !self.requires_compatibilities.iter().any(|c| c == "FARGATE") {
            return Err((
                "requiresCompatibilities",
                "requiresCompatibilities must include \"FARGATE\"".into(),
            ));
        }
        for (field, input, value, expected) in [
            (
                "executionRoleArn",
                "execution_role_arn",
                &self.execution_role_arn,
                &inputs.execution_role_arn,
            ),
            (
                "taskRoleArn",
                "task_role_arn",
                &self.task_role_arn,
                &inputs.task_role_arn,
            ),
        ] {
            if value != expected {
                return Err((
                    field,
                    format!("{field} is {value:?}; it must be the role mldeploy manages, {{{{ {input} }}}} ({expected})"),
                ));
            }
        }
        let cpu = self.cpu.trim().parse::<u32>();
        let memory = self.memory.trim().parse::<u32>();
        match (cpu, memory) {
            (Ok(cpu), Ok(memory))
                if fargate_memory_options(cpu).is_some_and(|m| m.contains(&memory)) => {}
            (Ok(cpu), Ok(memory)) if fargate_memory_options(cpu).is_some() => {
                return Err((
                    "memory",
                    format!("memory {memory} MiB does not go with cpu {cpu} on Fargate; service.memory in the README lists the sizes it offers"),
                ))
            }
            _ => {
                return Err((
                    "cpu",
                    format!("cpu {:?} with memory {:?} is not a Fargate task size (cpu 256, 512, 1024, 2048, 4096, 8192 or 16384 units, memory in MiB)", self.cpu, self.memory),
                ))
            }
        }
        self.check_runtime_platform(inputs)?;
        let Some(container) = self
            .container_definitions
            .iter()
            .find(|c| c.name == inputs.container_name)
        else {
            return Err((
                "containerDefinitions",
                format!(
                    "no container is named {:?}; the load balancer sends traffic to that container",
                    inputs.container_name
                ),
            ));
        };
        if !container
            .port_mappings
            .iter()
            .any(|p| p.container_port == inputs.port)
        {
            return Err((
                "portMappings",
                format!(
                    "container {:?} maps no containerPort {}: service.port, where the load balancer sends traffic",
                    container.name, inputs.port
                ),
            ));
        }
        if let Some(health) = &container.health_check {
            if !matches!(
                health.command.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL" | "NONE")
            ) {
                return Err((
                    "healthCheck",
                    "healthCheck.command must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"".into(),
                ));
            }
            let values = [
                health.interval,
                health.timeout,
                health.retries,
                health.start_period,
            ];
            for ((field, least, most), value) in HEALTH_RANGES.iter().zip(values) {
                if let Some(v) = value.filter(|v| !(*least..=*most).contains(v)) {
                    return Err((
                        field,
                        format!("healthCheck.{field} is {v}; ECS takes {least} to {most}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Fargate's architectures and operating system, and, once the image is known, the
    /// architecture its platform needs: Fargate cannot pull an image built for another one.
    fn check_runtime_platform(&self, inputs: &TaskInputs) -> Result<(), (&'static str, String)> {
        let platform = self.runtime_platform.as_ref();
        if let Some(os) = platform.and_then(|p| p.operating_system_family.as_deref()) {
            if os != "LINUX" {
                return Err((
                    "operatingSystemFamily",
                    format!("runtimePlatform.operatingSystemFamily is {os:?}; mldeploy deploys Linux images (\"LINUX\")"),
                ));
            }
        }
        let runs = self.cpu_architecture();
        if runs != FARGATE_X86_64 && runs != FARGATE_ARM64 {
            return Err((
                "cpuArchitecture",
                format!("runtimePlatform.cpuArchitecture is {runs:?}; Fargate runs \"X86_64\" or \"ARM64\""),
            ));
        }
        let Some(image) = &inputs.image_platform else {
            return Ok(());
        };
        if runs != inputs.cpu_architecture {
            let (field, said) = match platform.and_then(|p| p.cpu_architecture.as_ref()) {
                Some(_) => ("cpuArchitecture", format!("runtimePlatform.cpuArchitecture is {runs:?}")),
                None => ("containerDefinitions", format!("the task definition names no runtimePlatform, so Fargate runs it on {runs}")),
            };
            return Err((
                field,
                format!(
                    "{said}, but the image is {image}: Fargate would stop every task with CannotPullContainerError (the image has no {} manifest). Set \"runtimePlatform\": {{ \"cpuArchitecture\": {{{{ cpu_architecture | tojson }}}} }}, or build for {} with image.platform",
                    for_fargate(runs),
                    for_fargate(runs)
                ),
            ));
        }
        Ok(())
    }
}
