//! What `destroy` finds of a project on any target: each resource with its kind, its name and
//! id, and whether it carries the project's mark (the AWS tag, or the Docker label). Only what is
//! ours is ever deleted.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DnsRecord,
    /// Application Auto Scaling's registration of the service's desired count.
    Autoscaling,
    Service,
    Listener,
    LoadBalancer,
    TargetGroup,
    Certificate,
    TaskDefinition,
    /// mldeploy's records of the project's releases, beside its deploy lock.
    ReleaseRecords,
    Cluster,
    LogGroup,
    Role,
    /// A private tasks' way out: VPC endpoints, the NAT gateway and its Elastic IP address.
    VpcEndpoint,
    NatGateway,
    Address,
    SecurityGroup,
    Subnet,
    RouteTable,
    InternetGateway,
    Vpc,
    Repository,
    /// The Docker target's.
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::DnsRecord => "DNS record",
            Kind::Autoscaling => "autoscaling target",
            Kind::Service => "ECS service",
            Kind::Listener => "listener",
            Kind::LoadBalancer => "load balancer",
            Kind::TargetGroup => "target group",
            Kind::Certificate => "ACM certificate",
            Kind::TaskDefinition => "task definition",
            Kind::ReleaseRecords => "release records",
            Kind::Cluster => "ECS cluster",
            Kind::LogGroup => "log group",
            Kind::Role => "IAM role",
            Kind::VpcEndpoint => "VPC endpoint",
            Kind::NatGateway => "NAT gateway",
            Kind::Address => "Elastic IP address",
            Kind::SecurityGroup => "security group",
            Kind::Subnet => "subnet",
            Kind::RouteTable => "route table",
            Kind::InternetGateway => "internet gateway",
            Kind::Vpc => "VPC",
            Kind::Repository => "ECR repository",
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Network => "Docker network",
            Kind::Volume => "Docker volume",
        }
    }
}

/// One resource found under the project's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub kind: Kind,
    /// What people call it: a name, or an id where it has none.
    pub name: String,
    /// What deleting it takes: an ARN or an id.
    pub id: String,
    /// Whether it carries `mldeploy:project=<name>`: only then is it deleted.
    pub ours: bool,
    /// What deleting it needs besides its id: for an internet gateway, the VPC it is attached
    /// to; for a DNS record, the load balancer it must still point at; for a certificate, the
    /// hosted zone of its validation record.
    #[serde(skip)]
    pub parent: Option<String>,
}

impl Found {
    pub fn new(kind: Kind, name: impl Into<String>, id: impl Into<String>, ours: bool) -> Found {
        Found {
            kind,
            name: name.into(),
            id: id.into(),
            ours,
            parent: None,
        }
    }
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.describe(), self.name)?;
        if self.id != self.name && !self.id.starts_with("arn:") {
            write!(f, " ({})", self.id)?;
        }
        Ok(())
    }
}
