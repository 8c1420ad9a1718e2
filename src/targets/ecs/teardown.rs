//! Teardown, for `destroy`: which module deletes each resource of the inventory
//! (`inventory::find` lists them in the order they must go). The waiting the deletes share is
//! in `wait`. Only a resource carrying this project's tag is ever deleted.

use super::wait::Wait;
use super::PROJECT_TAG;
use super::{cluster, iam, load_balancer, logs, network, security, service, task_definition};
use crate::aws::Aws;
use crate::targets::inventory::{Found, Kind};

/// Deletes one resource (never one without our tag), waiting where AWS needs it.
pub async fn delete(aws: &Aws, project: &str, item: &Found, wait: &Wait<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(item.ours, "{item} lacks the {PROJECT_TAG} tag: not deleted");
    let id = item.id.as_str();
    match item.kind {
        Kind::DnsRecord => {
            let lb_dns = item.parent.as_deref().unwrap_or_default();
            super::domain::alias::delete(&aws.route53(), id, &item.name, project, lb_dns).await
        }
        Kind::Certificate => {
            let zone = item.parent.as_deref();
            super::domain::certificate::delete(&aws.acm(), &aws.route53(), id, zone, wait).await
        }
        // The service is named for the project, and so is its cluster.
        Kind::VpcEndpoint => network::endpoints::delete(&aws.ec2(), id).await,
        Kind::NatGateway => network::nat::delete(&aws.ec2(), id, wait).await,
        Kind::Address => network::nat::release(&aws.ec2(), id, wait).await,
        Kind::Autoscaling => super::autoscaling::deregister(&aws.autoscaling(), id).await,
        Kind::Service => service::delete(&aws.ecs(), project, &item.name, wait).await,
        Kind::Listener => load_balancer::delete_listener(&aws.elbv2(), id).await,
        Kind::LoadBalancer => load_balancer::delete_load_balancer(&aws.elbv2(), id, wait).await,
        Kind::TargetGroup => load_balancer::delete_target_group(&aws.elbv2(), id, wait).await,
        Kind::TaskDefinition => task_definition::deregister(&aws.ecs(), id).await,
        Kind::ReleaseRecords => super::release_record::delete_all(&aws.s3(), id, project)
            .await
            .map(|_| ()),
        Kind::Cluster => cluster::delete(&aws.ecs(), id, wait).await,
        Kind::LogGroup => logs::delete_group(&aws.logs(), id).await,
        Kind::Role => iam::delete_role(&aws.iam(), id).await,
        Kind::SecurityGroup => security::delete_group(&aws.ec2(), id, wait).await,
        Kind::Subnet => network::delete_subnet(&aws.ec2(), id, wait).await,
        Kind::RouteTable => network::delete_route_table(&aws.ec2(), id, wait).await,
        Kind::InternetGateway => {
            let vpc = item.parent.as_deref();
            network::delete_internet_gateway(&aws.ec2(), id, vpc, wait).await
        }
        Kind::Vpc => network::delete_vpc(&aws.ec2(), id, wait).await,
        Kind::Repository => crate::image::ecr::delete_repository(&aws.ecr(), id).await,
        Kind::Container | Kind::Image | Kind::Network | Kind::Volume => {
            anyhow::bail!("{item} is the Docker target's: the ECS target does not delete it")
        }
    }
}
