"""How a Fargate task reaches ECR, S3, CloudWatch Logs and the secret stores from its subnet, and
NAT gateways that take time to come and go, as AWS documents them. moto keeps neither: its NAT
gateways are available at once and deleted at once (leaving their network interface and address
behind), an address in use is released without a word, and a task runs whatever its subnet.

Reaching the registry. "The route tables associated to the subnets that your task is created in
must allow your Amazon ECS infrastructure to reach the repository endpoint. The endpoint can be
reached through an internet gateway, NAT gateway, or VPC endpoints"; the default route must
target the internet gateway (with a public IP on the task) or a NAT gateway
(https://repost.aws/knowledge-center/ecs-fargate-pull-container-error). Without them, a private
subnet needs VPC endpoints for ECR (com.amazonaws.<region>.ecr.dkr and .ecr.api), S3 (a gateway
endpoint on the subnet's route table: the layers are in S3), CloudWatch Logs for the awslogs
driver, and Secrets Manager or Systems Manager when the task definition names secrets
(https://repost.aws/knowledge-center/ecs-fargate-docker-timeout-error,
https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html). A task that cannot
reach one stops before its container starts, with the error the knowledge center quotes.

Interface endpoints are `pending` for SANDBOX_ENDPOINT_SECONDS AWS seconds (default 90) before
they are `available`, and carry no traffic before.

NAT gateways. CreateNatGateway answers `pending`; the gateway is `available` once provisioned
(https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-working-with.html) and routes no
traffic before. DeleteNatGateway answers `deleting`; once `deleted` its network interface is gone
and its Elastic IP address disassociated, not released
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteNatGateway.html). An address
still associated cannot be released: InvalidIPAddress.InUse
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReleaseAddress.html). Both waits are
SANDBOX_NAT_SECONDS AWS seconds (default 60), on the sandbox's scaled clock.

Private DNS names for an interface endpoint need the VPC's DNS support and DNS hostnames
(https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html: "To use the
private DNS option, you must enable DNS hostnames and DNS resolution for your VPC"); moto creates
the endpoint anyway.
"""

import os
import threading
import time

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import EC2Backend, ec2_backends

NAT_SECONDS = float(os.environ.get("SANDBOX_NAT_SECONDS", "60"))
# How long an interface endpoint stays pending (AWS seconds).
ENDPOINT_SECONDS = float(os.environ.get("SANDBOX_ENDPOINT_SECONDS", "90"))

_lock = threading.Lock()
# nat gateway id -> (monotonic time its state changes, the state it becomes)
_changes: dict[str, tuple[float, str]] = {}
_scaled = lambda s: s  # noqa: E731 (set by install)


def install(scaled):
    """Patches moto's EC2 backend; `scaled` turns AWS seconds into the sandbox's."""
    global _scaled
    _scaled = scaled
    EC2Backend.create_nat_gateway = _create_nat_gateway
    EC2Backend.delete_nat_gateway = _delete_nat_gateway
    EC2Backend.describe_nat_gateways = _describe_nat_gateways
    EC2Backend.release_address = _release_address
    EC2Backend.create_vpc_endpoint = _create_vpc_endpoint
    EC2Backend.describe_vpc_endpoints = _describe_vpc_endpoints


_original_create = EC2Backend.create_nat_gateway
_original_create_endpoint = EC2Backend.create_vpc_endpoint
_original_describe_endpoints = EC2Backend.describe_vpc_endpoints


def _create_vpc_endpoint(self, vpc_id, *args, **kwargs):
    vpc = self.get_vpc(vpc_id)
    on = lambda v: v is True or str(v).lower() == "true"  # noqa: E731 (moto keeps "true" or True)
    if kwargs.get("private_dns_enabled") and not (on(vpc.enable_dns_support) and on(vpc.enable_dns_hostnames)):
        raise EC2ClientError(
            "InvalidParameter",
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for " + vpc_id,
        )
    endpoint = _original_create_endpoint(self, vpc_id, *args, **kwargs)
    # An interface endpoint is `pending` while AWS makes its network interfaces, then
    # `available`; a task cannot reach the service through it before
    # (https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html, the
    # State values of https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcEndpoint.html).
    # moto makes it available at once. A gateway endpoint is only routes: available at once.
    if (endpoint.vpc_endpoint_type or "Gateway").lower() == "interface":
        endpoint.state = "pending"
        with _lock:
            _changes[endpoint.id] = (time.monotonic() + _scaled(ENDPOINT_SECONDS), "available")
    return endpoint


def _describe_vpc_endpoints(self, vpc_end_point_ids=None, filters=None):
    _settle(self)
    return _original_describe_endpoints(self, vpc_end_point_ids, filters)
_original_describe = EC2Backend.describe_nat_gateways
_original_release = EC2Backend.release_address


def _create_nat_gateway(self, *args, **kwargs):
    nat = _original_create(self, *args, **kwargs)
    nat.state = "pending"
    with _lock:
        _changes[nat.id] = (time.monotonic() + _scaled(NAT_SECONDS), "available")
    return nat


def _delete_nat_gateway(self, nat_gateway_id):
    nat = self.nat_gateways.get(nat_gateway_id)
    if nat is None:
        raise EC2ClientError("NatGatewayNotFound", f"The Nat Gateway {nat_gateway_id} was not found")
    _settle(self)
    if nat.state not in ("deleting", "deleted"):
        nat.state = "deleting"
        with _lock:
            _changes[nat.id] = (time.monotonic() + _scaled(NAT_SECONDS), "deleted")
    return nat


def _describe_nat_gateways(self, filters=None, nat_gateway_ids=None):
    """moto's, with the tag:<key> and tag-key filters EC2 documents and moto ignores
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNatGateways.html)."""
    _settle(self)
    found = _original_describe(self, filters, nat_gateway_ids)
    for name, values in (filters or {}).items():
        if name.startswith("tag:"):
            key = name[len("tag:"):]
            found = [n for n in found if n.get_tags() and any(t["key"] == key and t["value"] in values for t in n.get_tags())]
        elif name == "tag-key":
            found = [n for n in found if any(t["key"] in values for t in n.get_tags() or [])]
    return found


def _release_address(self, address=None, allocation_id=None):
    _settle(self)
    eips = self.address_by_ip([address]) if address else self.address_by_allocation([allocation_id])
    if eips and eips[0].eni is not None:
        raise EC2ClientError(
            "InvalidIPAddress.InUse",
            f"Address {eips[0].public_ip} is in use.",
        )
    return _original_release(self, address=address, allocation_id=allocation_id)


def _settle(backend):
    """Moves each NAT gateway or interface endpoint whose time has come to its next state; a
    deleted NAT gateway gives up its network interface and its address."""
    now = time.monotonic()
    with _lock:
        due = {i: state for i, (at, state) in _changes.items() if at <= now}
        for i in due:
            _changes.pop(i, None)
    for nat_id, state in due.items():
        endpoint = backend.vpc_end_points.get(nat_id)
        if endpoint is not None:
            if endpoint.state == "pending":
                endpoint.state = state
            continue
        nat = backend.nat_gateways.get(nat_id)
        if nat is None:
            continue
        nat.state = state
        if state == "deleted":
            eni = getattr(nat, "_eni", None)
            if eni is not None:
                for eip in list(backend.addresses):
                    if eip.eni is eni:
                        backend.disassociate_address(address=eip.public_ip)
                try:
                    backend.delete_network_interface(eni.id)
                except Exception:  # gone already
                    pass
                nat._eni = None


def _route_table_of(backend, subnet):
    """The subnet's route table: its explicit association, else the VPC's main table."""
    tables = [t for t in backend.route_tables.values() if t.vpc_id == subnet.vpc_id]
    for table in tables:
        if subnet.id in table._associations.values():
            return table
    return next((t for t in tables if t.main_association_id is not None), None)


def _endpoint(backend, vpc_id, service, kind):
    for ep in backend.vpc_end_points.values():
        if ep.vpc_id == vpc_id and ep.service_name == service and ep.state == "available" \
                and (ep.vpc_endpoint_type or "Gateway").lower() == kind:
            return ep
    return None


def egress_problem(account, region, subnet_id, public_ip, secret_services):
    """Why a task in `subnet_id` cannot start (None when it can): the stopped reason AWS gives
    for the first service it cannot reach. `secret_services` is the set of "secretsmanager" and
    "ssm" its task definition's secrets need."""
    backend = ec2_backends[account][region]
    _settle(backend)
    try:
        subnet = backend.get_subnet(subnet_id)
    except Exception:
        return f"ResourceInitializationError: subnet {subnet_id} does not exist"
    table = _route_table_of(backend, subnet)
    routes = table.routes if table else []
    default = next((r for r in routes if r.destination_cidr_block == "0.0.0.0/0"), None)
    if default is not None:
        gateway = getattr(default, "gateway", None)
        nat = getattr(default, "nat_gateway", None)
        if gateway is not None and str(getattr(gateway, "id", "")).startswith("igw-") and public_ip:
            return None
        if nat is not None and getattr(nat, "state", None) == "available":
            return None
    prefix = f"com.amazonaws.{region}."
    ecr_host = f"api.ecr.{region}.amazonaws.com"
    for service in ("ecr.api", "ecr.dkr"):
        ep = _endpoint(backend, subnet.vpc_id, prefix + service, "interface")
        if ep is None or not ep.private_dns_enabled:
            return (
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
                "failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: "
                f"send request failed caused by: Post \"https://{ecr_host}/\": dial tcp {ecr_host}:443: i/o timeout. "
                "Please check your task network configuration."
            )
    s3 = _endpoint(backend, subnet.vpc_id, prefix + "s3", "gateway")
    if s3 is None or table is None or table.id not in (s3.route_table_ids or []):
        return (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to copy: "
            f"httpReadSeeker: failed open: failed to do request: Get \"https://prod-{region}-starport-layer-bucket.s3.{region}.amazonaws.com/\": "
            "dial tcp: i/o timeout"
        )
    logs = _endpoint(backend, subnet.vpc_id, prefix + "logs", "interface")
    if logs is None or not logs.private_dns_enabled:
        return "ResourceInitializationError: failed to validate logger args: : signal: killed"
    for service in sorted(secret_services):
        ep = _endpoint(backend, subnet.vpc_id, prefix + service, "interface")
        if ep is None or not ep.private_dns_enabled:
            return (
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
                f"failed: unable to retrieve secrets from {service}: service call has been retried 5 time(s): "
                "RequestCanceled: request context canceled caused by: context deadline exceeded"
            )
    return None
