//! `plan`'s estimate of what an ECS stack costs a month: Fargate's vCPU and memory hours for the
//! tasks (the desired count, or autoscaling's minimum to maximum), the load balancer's hours and
//! an assumed LCU, public IPv4 addresses, the NAT gateway or interface endpoints, and the logs at
//! their retention, priced from the committed table in [`prices`].

pub mod prices;

use std::fmt;

use serde::Serialize;

use crate::config::{Config, Egress, TasksNetwork};
use prices::{Prices, HOURS_PER_MONTH};

/// Load balancer capacity units the estimate assumes on average: one is 25 new connections a
/// second, 3,000 active connections a minute, or 1 GB an hour of requests and responses.
pub const ASSUMED_LCUS: f64 = 1.0;

/// Log volume the estimate assumes, per task, per month.
pub const ASSUMED_LOG_GB_PER_TASK: f64 = 1.0;

/// What the stack runs, as far as its price goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// The region the stack is in.
    pub region: String,
    /// Task size: CPU units (1024 = 1 vCPU) and memory in MiB.
    pub cpu: u32,
    pub memory: u32,
    pub arm: bool,
    /// Tasks: the desired count, or autoscaling's minimum and maximum.
    pub tasks: (u32, u32),
    /// Whether each task has a public IPv4 address.
    pub public_task_ips: bool,
    /// The load balancer's availability zones, and whether it has public addresses.
    pub lb_zones: usize,
    pub internet_facing: bool,
    /// One NAT gateway, with its Elastic IP.
    pub nat: bool,
    /// Interface endpoints, each in `endpoint_zones` zones.
    pub interface_endpoints: usize,
    pub endpoint_zones: usize,
    /// CloudWatch Logs retention, in days (0: never expire).
    pub log_retention_days: i32,
    /// `[workers.<name>]`: each worker's name, size and task count.
    pub workers: Vec<WorkerTasks>,
}

/// A worker's tasks, as far as their price goes.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerTasks {
    pub name: String,
    pub cpu: u32,
    pub memory: u32,
    pub count: u32,
}

impl Inputs {
    /// What `config` would run in `region`: `arm` from the image's architecture, the zones from
    /// the network the plan found or would make.
    pub fn of(
        config: &Config,
        region: &str,
        arm: bool,
        lb_zones: usize,
        task_zones: usize,
    ) -> Inputs {
        let tasks = match &config.service.autoscaling {
            Some(a) => (a.min_count, a.max_count),
            None => (config.service.desired_count, config.service.desired_count),
        };
        let (public_task_ips, nat, interface_endpoints) = match config.tasks_network {
            TasksNetwork::Public => (true, false, 0),
            TasksNetwork::Private(Egress::Nat) => (false, true, 0),
            TasksNetwork::Private(Egress::Endpoints) => {
                let services =
                    crate::targets::ecs::network::endpoints::services(config.all_secrets());
                // The first, S3's, is a gateway endpoint, which costs nothing.
                (false, false, services.len().saturating_sub(1))
            }
        };
        Inputs {
            region: region.to_string(),
            cpu: config.service.cpu,
            memory: config.service.memory,
            arm,
            tasks,
            public_task_ips,
            lb_zones,
            internet_facing: !config.internal_load_balancer,
            nat,
            interface_endpoints,
            endpoint_zones: task_zones,
            log_retention_days: config.service.log_retention_days,
            workers: config
                .workers
                .iter()
                .map(|w| WorkerTasks {
                    name: w.name.clone(),
                    cpu: w.cpu,
                    memory: w.memory,
                    count: w.desired_count,
                })
                .collect(),
        }
    }
}

/// The estimate: each item at the lowest and highest task count, and what it leaves out.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// USD a month at the desired count (or autoscaling's minimum), to the cent.
    pub monthly_usd: f64,
    /// At autoscaling's maximum; the same without autoscaling.
    pub monthly_usd_max: f64,
    pub region: String,
    /// The region whose prices were used: `region`, or us-east-1's when the table lacks it.
    pub prices_of: String,
    pub prices_recorded: &'static str,
    pub items: Vec<Item>,
    pub not_counted: &'static str,
}

/// One line of the estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub item: String,
    /// How it was counted, assumptions named.
    pub basis: String,
    pub monthly_usd: f64,
    pub monthly_usd_max: f64,
}

const NOT_COUNTED: &str = "data transfer out, data the NAT gateway or endpoints process, ECR storage, S3 (the model), and the second set of tasks a deployment runs while it lasts";

/// A month of `per_hour`.
fn month(per_hour: f64) -> f64 {
    per_hour * HOURS_PER_MONTH
}

fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// The monthly estimate for `inputs`, from the price table.
pub fn estimate(inputs: &Inputs) -> Estimate {
    let (prices_of, p) = prices::for_region(&inputs.region);
    let mut items = Vec::new();
    let mut add = |item: &str, basis: String, low: f64, high: f64| {
        if high > 0.0 {
            items.push(Item {
                item: item.to_string(),
                basis,
                monthly_usd: low,
                monthly_usd_max: high,
            })
        }
    };
    // The workers' tasks run beside the service's: each gets a public address with the
    // service's, and writes logs like them.
    let worker_tasks: u32 = inputs.workers.iter().map(|w| w.count).sum();
    let (low, high) = (
        f64::from(inputs.tasks.0 + worker_tasks),
        f64::from(inputs.tasks.1 + worker_tasks),
    );
    let (service_low, service_high) = (f64::from(inputs.tasks.0), f64::from(inputs.tasks.1));
    // "2", or "2-4" with autoscaling.
    let count = |low: u32, high: u32| {
        if low == high {
            low.to_string()
        } else {
            format!("{low}-{high}")
        }
    };
    let task_count = count(inputs.tasks.0 + worker_tasks, inputs.tasks.1 + worker_tasks);

    let (vcpu, gb) = (
        f64::from(inputs.cpu) / 1024.0,
        f64::from(inputs.memory) / 1024.0,
    );
    let per_task = fargate_task_month(&p, vcpu, gb, inputs.arm);
    add(
        "Fargate",
        format!(
            "{} task(s) of {vcpu} vCPU and {gb} GB, {}",
            count(inputs.tasks.0, inputs.tasks.1),
            if inputs.arm { "ARM64" } else { "X86_64" }
        ),
        per_task * service_low,
        per_task * service_high,
    );
    for w in &inputs.workers {
        let (vcpu, gb) = (f64::from(w.cpu) / 1024.0, f64::from(w.memory) / 1024.0);
        let month = fargate_task_month(&p, vcpu, gb, inputs.arm) * f64::from(w.count);
        add(
            &format!("Fargate, worker {}", w.name),
            format!(
                "{} task(s) of {vcpu} vCPU and {gb} GB, {}",
                w.count,
                if inputs.arm { "ARM64" } else { "X86_64" }
            ),
            month,
            month,
        );
    }

    let lb = month(p.alb_hour + ASSUMED_LCUS * p.alb_lcu_hour);
    add(
        "load balancer",
        format!("{HOURS_PER_MONTH} hours, {ASSUMED_LCUS} LCU on average (assumed)"),
        lb,
        lb,
    );

    let lb_ips = if inputs.internet_facing {
        inputs.lb_zones
    } else {
        0
    };
    let fixed_ips = lb_ips + usize::from(inputs.nat);
    let (ips_low, ips_high) = if inputs.public_task_ips {
        (fixed_ips as f64 + low, fixed_ips as f64 + high)
    } else {
        (fixed_ips as f64, fixed_ips as f64)
    };
    let mut whose = Vec::new();
    if inputs.public_task_ips {
        whose.push(format!("{task_count} for the tasks"));
    }
    if lb_ips > 0 {
        whose.push(format!("{lb_ips} for the load balancer's zones"));
    }
    if inputs.nat {
        whose.push("1 for the NAT gateway".to_string());
    }
    add(
        "public IPv4",
        whose.join(", "),
        month(p.public_ipv4_hour) * ips_low,
        month(p.public_ipv4_hour) * ips_high,
    );

    if inputs.nat {
        add(
            "NAT gateway",
            format!(
                "{HOURS_PER_MONTH} hours, plus {} USD per GB it carries (not counted)",
                p.nat_gb
            ),
            month(p.nat_hour),
            month(p.nat_hour),
        );
    }
    let endpoint_zones = inputs.interface_endpoints * inputs.endpoint_zones;
    add(
        "VPC endpoints",
        format!(
            "{} interface endpoint(s) in {} zone(s)",
            inputs.interface_endpoints, inputs.endpoint_zones
        ),
        month(p.interface_endpoint_zone_hour) * endpoint_zones as f64,
        month(p.interface_endpoint_zone_hour) * endpoint_zones as f64,
    );

    let logs = |tasks: f64| {
        let ingested = ASSUMED_LOG_GB_PER_TASK * tasks;
        ingested * p.logs_ingest_gb
            + ingested * stored_months(inputs.log_retention_days) * p.logs_storage_gb_month
    };
    add(
        "CloudWatch Logs",
        format!(
            "{ASSUMED_LOG_GB_PER_TASK} GB a month per task (assumed), {}",
            match inputs.log_retention_days {
                0 => "never expiring: storage grows each month; counted for one year".to_string(),
                days => format!("kept {days} days"),
            }
        ),
        logs(low),
        logs(high),
    );

    let monthly_usd = cents(items.iter().map(|i| i.monthly_usd).sum());
    let monthly_usd_max = cents(items.iter().map(|i| i.monthly_usd_max).sum());
    for item in &mut items {
        item.monthly_usd = cents(item.monthly_usd);
        item.monthly_usd_max = cents(item.monthly_usd_max);
    }
    Estimate {
        monthly_usd,
        monthly_usd_max,
        region: inputs.region.clone(),
        prices_of: prices_of.to_string(),
        prices_recorded: prices::RECORDED,
        items,
        not_counted: NOT_COUNTED,
    }
}

/// One task's Fargate month.
fn fargate_task_month(p: &Prices, vcpu: f64, gb: f64, arm: bool) -> f64 {
    let (per_vcpu, per_gb) = if arm {
        (p.fargate_arm_vcpu_hour, p.fargate_arm_gb_hour)
    } else {
        (p.fargate_x86_vcpu_hour, p.fargate_x86_gb_hour)
    };
    month(vcpu * per_vcpu + gb * per_gb)
}

/// How many months of logs are stored at once, once the retention is reached: the retention
/// over a month's days (730 hours); a year for logs that never expire.
fn stored_months(retention_days: i32) -> f64 {
    let days = if retention_days <= 0 {
        365.0
    } else {
        f64::from(retention_days)
    };
    days * 24.0 / HOURS_PER_MONTH
}

fn usd(low: f64, high: f64) -> String {
    if (high - low).abs() < 0.005 {
        format!("{low:.2} USD")
    } else {
        format!("{low:.2}-{high:.2} USD")
    }
}

/// The total in whole dollars: "110 USD", "81-126 USD".
fn whole_usd(low: f64, high: f64) -> String {
    let (low, high) = (low.round(), high.round());
    if low == high {
        format!("{low} USD")
    } else {
        format!("{low}-{high} USD")
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prices = if self.prices_of == self.region {
            format!(
                "{} list prices recorded {}",
                self.prices_of, self.prices_recorded
            )
        } else {
            format!(
                "{} list prices recorded {}: mldeploy's table has no prices for {}, which usually costs more",
                self.prices_of, self.prices_recorded, self.region
            )
        };
        writeln!(
            f,
            "Estimated cost: about {} a month ({prices})",
            whole_usd(self.monthly_usd, self.monthly_usd_max)
        )?;
        let width = self.items.iter().map(|i| i.item.len()).max().unwrap_or(0);
        for i in &self.items {
            writeln!(
                f,
                "  {:width$}  {:>18}  {}",
                i.item,
                usd(i.monthly_usd, i.monthly_usd_max),
                i.basis
            )?;
        }
        write!(f, "  Not counted: {}.", self.not_counted)
    }
}

#[cfg(test)]
mod tests;
