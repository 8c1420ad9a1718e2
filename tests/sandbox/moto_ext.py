"""moto's server, with the ECS rollout behaviour that mldeploy's watcher relies on.

moto 5.2.5 runs no containers and keeps ECS deployments still. Real ECS, which mldeploy watches,
does this instead, and so does this extension:

- UpdateService with another task definition, or with forceNewDeployment, opens a new PRIMARY
  deployment (IN_PROGRESS, running 0) and turns the one before it ACTIVE. moto as it comes keeps
  deployments[0] on the old task definition. CreateService starts IN_PROGRESS as well.
- A PRIMARY deployment completes SANDBOX_ECS_ROLLOUT_SECONDS (default 1) after it opened:
  rolloutState COMPLETED, running = desired, the older deployments drained and removed, and a
  "has reached a steady state" service event.
- On completion each target group of the service gets one healthy `ip` target per running task,
  and the previous deployment's targets are deregistered (moto registers none by itself).
- The deploymentConfiguration given to CreateService (circuit breaker, percentages) is kept and
  returned, as ECS does; moto drops it.

Failure sequences (a circuit-breaker rollback, tasks that keep stopping) are not emulated here:
mldeploy's tests script those with aws-smithy-mocks and say so in their names.

Usage: python moto_ext.py [moto_server arguments...]
"""

import os
import sys
import threading
import time
import uuid

from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.elbv2.models import elbv2_backends

ROLLOUT_SECONDS = float(os.environ.get("SANDBOX_ECS_ROLLOUT_SECONDS", "1"))
Backend = ecs_models.EC2ContainerServiceBackend
Responses = ecs_responses.EC2ContainerServiceResponse

_lock = threading.Lock()
_opened_at: dict[str, float] = {}  # deployment id -> when it opened (monotonic)
_targets: dict[str, list[dict]] = {}  # service arn -> the ip targets registered for it
_next_subnet = [0]


def _new_deployment(service, desired):
    deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19}"
    now = utcnow()
    _opened_at[deployment_id] = time.monotonic()
    return {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": desired,
        "pendingCount": desired,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "platformVersion": service.platform_version,
        "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
        "networkConfiguration": service.network_configuration or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    }


def _open_deployment(service):
    for d in service.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = utcnow()
    service.deployments.insert(0, _new_deployment(service, service.desired_count))


def _register_targets(backend, service, count):
    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    old = _targets.get(service.arn, [])
    new = []
    for _ in range(count):
        _next_subnet[0] += 1
        n = _next_subnet[0]
        new.append({"Id": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"})
    for lb in service.load_balancers or []:
        arn = lb.get("targetGroupArn")
        if not arn:
            continue
        port = lb.get("containerPort")
        if old:
            elbv2.deregister_targets(arn, [dict(t, Port=port) for t in old])
        if new:
            elbv2.register_targets(arn, [dict(t, Port=port) for t in new])
    _targets[service.arn] = new


def _advance(backend, service):
    """Completes the PRIMARY deployment once its time has come."""
    for d in service.deployments:
        if d["status"] != "PRIMARY" or d["rolloutState"] != "IN_PROGRESS":
            continue
        opened = _opened_at.setdefault(d["id"], time.monotonic())
        if time.monotonic() - opened < ROLLOUT_SECONDS:
            continue
        now = utcnow()
        d.update(
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {d['id']} completed.",
            runningCount=d["desiredCount"],
            pendingCount=0,
            updatedAt=now,
        )
        service.deployments = [d]
        service.running_count = d["desiredCount"]
        service.pending_count = 0
        _register_targets(backend, service, d["desiredCount"])
        service.events.insert(
            0,
            {
                "id": str(uuid.uuid4()),
                "createdAt": now,
                "message": f"(service {service.name}) has reached a steady state.",
            },
        )


_original_create_response = Responses.create_service
_original_update = Backend.update_service
_original_describe = Backend.describe_services


def create_service_response(self):
    result = _original_create_response(self)
    with _lock:
        service = self.ecs_backend._get_service(
            self._get_param("cluster", "default"), self._get_param("serviceName")
        )
        config = self._get_param("deploymentConfiguration")
        if config:
            service.deployment_configuration = config
        service.running_count = 0
        service.pending_count = service.desired_count
        service.deployments = [_new_deployment(service, service.desired_count)] if service.deployments else []
    return result


def update_service(self, props):
    with _lock:
        cluster = props.get("cluster", "default")
        service = self._get_service(cluster, props["service"].split("/")[-1])
        _advance(self, service)
        before = service.task_definition
        wanted = props.get("task_definition")
        force = props.get("force_new_deployment", False)
        service = _original_update(self, dict(props))
        if wanted:
            # ECS stores the full ARN whatever form the request used.
            service.task_definition = self.describe_task_definition(wanted).arn
        if service.task_definition != before or force:
            _open_deployment(service)
        else:
            primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)
            if primary is not None and primary["desiredCount"] != service.desired_count:
                primary["desiredCount"] = service.desired_count
                if primary["rolloutState"] == "COMPLETED":
                    primary["runningCount"] = service.desired_count
                    _register_targets(self, service, service.desired_count)
        return service


def describe_services(self, cluster_str, names):
    with _lock:
        services, failures = _original_describe(self, cluster_str, names)
        for service in services:
            _advance(self, service)
        return services, failures


Responses.create_service = create_service_response
Backend.update_service = update_service
Backend.describe_services = describe_services

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
