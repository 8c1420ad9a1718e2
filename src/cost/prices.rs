//! The price table `plan`'s cost estimate reads: AWS's on-demand list prices in USD, with where
//! each figure comes from and when it was recorded. Update it with its date when AWS changes one.

/// When the figures below were recorded.
pub const RECORDED: &str = "2026-12";

/// Where they come from.
pub const SOURCES: &[&str] = &[
    "https://aws.amazon.com/fargate/pricing/",
    "https://aws.amazon.com/elasticloadbalancing/pricing/",
    "https://aws.amazon.com/vpc/pricing/",
    "https://aws.amazon.com/privatelink/pricing/",
    "https://aws.amazon.com/cloudwatch/pricing/",
];

/// Hours in a month, as AWS's pricing calculator counts them (8,760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// One region's prices, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Fargate, Linux on x86_64: per vCPU-hour and per GB of memory per hour.
    pub fargate_x86_vcpu_hour: f64,
    pub fargate_x86_gb_hour: f64,
    /// Fargate, Linux on ARM64 (Graviton).
    pub fargate_arm_vcpu_hour: f64,
    pub fargate_arm_gb_hour: f64,
    /// An Application Load Balancer: per hour, and per LCU-hour (load balancer capacity unit).
    pub alb_hour: f64,
    pub alb_lcu_hour: f64,
    /// A NAT gateway: per hour, and per GB it processes.
    pub nat_hour: f64,
    pub nat_gb: f64,
    /// A public IPv4 address, in use or idle, per hour (charged since February 2024).
    pub public_ipv4_hour: f64,
    /// An interface VPC endpoint, per availability zone per hour (and 0.01 per GB processed).
    pub interface_endpoint_zone_hour: f64,
    /// CloudWatch Logs (standard class): per GB ingested, and per GB stored per month.
    pub logs_ingest_gb: f64,
    pub logs_storage_gb_month: f64,
}

/// US East (N. Virginia). US East (Ohio) and US West (Oregon) list the same figures for every
/// item here (Fargate's pricing page groups them with N. Virginia).
const US: Prices = Prices {
    fargate_x86_vcpu_hour: 0.04048,
    fargate_x86_gb_hour: 0.004445,
    fargate_arm_vcpu_hour: 0.03238,
    fargate_arm_gb_hour: 0.00356,
    alb_hour: 0.0225,
    alb_lcu_hour: 0.008,
    nat_hour: 0.045,
    nat_gb: 0.045,
    public_ipv4_hour: 0.005,
    interface_endpoint_zone_hour: 0.01,
    logs_ingest_gb: 0.50,
    logs_storage_gb_month: 0.03,
};

/// The regions the table has, with their prices.
const REGIONS: &[(&str, Prices)] = &[("us-east-1", US), ("us-east-2", US), ("us-west-2", US)];

/// The prices for `region`, and the region they are of: the region itself when the table has
/// it, else us-east-1's (most other regions charge more: the estimate says so).
pub fn for_region(region: &str) -> (&'static str, Prices) {
    REGIONS
        .iter()
        .find(|(name, _)| *name == region)
        .map(|(name, prices)| (*name, *prices))
        .unwrap_or(("us-east-1", US))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_region_has_its_own_prices_and_another_falls_back_to_us_east_1() {
        assert_eq!(for_region("us-west-2").0, "us-west-2");
        assert_eq!(for_region("eu-central-1").0, "us-east-1");
        assert_eq!(for_region("eu-central-1").1, US);
    }
}
