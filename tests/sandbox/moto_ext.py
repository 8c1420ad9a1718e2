"""moto's server, with an ECS that runs its tasks as real containers and load balancers that answer.

moto 5.2.5 runs no containers, keeps ECS deployments still, registers no targets and serves no load
balancer. Real ECS and ALBs, which mldeploy drives and watches, do; so does this extension, with
real containers on this machine's Docker engine and nothing sent off the machine, on AWS's clock
scaled by SANDBOX_TIME_SCALE (default 0.02: one AWS second lasts 20 ms; the times below are AWS
seconds):

- Deployments. CreateService opens a PRIMARY deployment (IN_PROGRESS); UpdateService with another
  task definition or network configuration, or forceNewDeployment, opens a new one and turns the
  one before it ACTIVE. The service's deploymentConfiguration (circuit breaker, percentages) is
  kept and returned.
- Tasks. A scheduler keeps each PRIMARY deployment at its desired count. A new task is
  PROVISIONING for 15 s (its network interface), then PENDING while its image is pulled (35 MB/s,
  no layer cache, so a 1.5 GB image starts in about 60 s), then RUNNING. A task is a container
  (`docker create` of the task definition's image when the task turns PENDING, pulled from the
  sandbox registry when missing, with its environment, its secrets read from moto's Secrets
  Manager and SSM, entry point and command, on Docker's bridge; `docker start` once the pull's
  time is up; `docker rm -f`, from a thread of its own, when the task stops) and a moto Task whose startedBy is the deployment id and whose group is
  `service:<name>`, so ListTasks(serviceName=...) and DescribeTasks show it. A container that
  exits stops its task ("Essential container in task exited", with the exit code); a secret that
  cannot be read stops it with ResourceInitializationError, an image that cannot be run, or that
  was built for another CPU architecture than the task definition's runtimePlatform (X86_64 when
  it names none), with CannotPullContainerError; a task whose target is unhealthy, once the
  service's healthCheckGracePeriodSeconds since it started have passed, stops with "Task failed
  ELB health checks". A container definition's healthCheck is Docker's HEALTHCHECK, run by the
  engine in the container on the scaled clock (an interval of at least 0.5 wall seconds); the task
  counts as started once it is HEALTHY, and one UNHEALTHY after the grace period stops with "Task
  failed container health checks". Stopped tasks are replaced.
- Circuit breaker. When the failed tasks of an IN_PROGRESS deployment reach ECS's threshold (half
  the desired count, at least 3, at most 200) the deployment turns FAILED and, with rollback on, a
  new PRIMARY deployment of the last completed task definition opens.
- Service deployments. Each deployment that carries out a new service revision is a service
  deployment that ListServiceDeployments lists and whose revision DescribeServiceRevisions
  describes, ending SUCCESSFUL, ROLLBACK_SUCCESSFUL or STOPPED as ECS documents (see
  "service deployments and revisions" below). DescribeServiceDeployments describes them, with
  their lifecycle stage and hooks; StopServiceDeployment rolls one back.
- Blue/green, canary and linear deployments (deploymentConfiguration.strategy): the new revision
  in the target group production does not use, the test and production listener rules shifted
  stage by stage with the service's infrastructure role, PAUSE hooks answered by
  ContinueServiceDeployment or their timeout, the bake time, rollback while the old revision
  runs (ecs_strategies.py says how, and which AWS documents it follows).
- Completion. Once all the PRIMARY deployment's tasks run and their targets are healthy (and at
  least SANDBOX_ECS_ROLLOUT_SECONDS, default 1 wall second, after it opened), the older
  deployments' tasks are stopped as ECS stops a task behind a load balancer: each target
  `draining` for the group's deregistration delay (DEACTIVATING task), then the task stops. The
  deployment is COMPLETED, with a "has reached a steady state" event, once they are gone.
- Target groups. A running task's container address is registered as an `ip` target of the
  service's target groups, `initial` at first. Health checks run as ALB runs them: a GET of the
  group's path every HealthCheckIntervalSeconds, HealthyThresholdCount consecutive successes to
  turn healthy, UnhealthyThresholdCount failures to turn unhealthy, with ALB's reason codes in
  DescribeTargetHealth; none while the load balancer is provisioning.
- Load balancers. A new load balancer is `provisioning` for 150 s, then `active`; only then does
  its DNS name resolve and its listeners answer. Each load balancer has its own loopback address (127.<SANDBOX_ALB_NET>.x.y,
  SANDBOX_ALB_NET defaulting to 1), as each ALB has its own addresses, and its DNS name resolves
  to it through an /etc/hosts line marked "# mldeploy-sandbox-alb" (appended when a load balancer
  appears, never rewritten while the sandbox runs; `scripts/sandbox down` removes them). There a
  proxy serves its listeners, whatever Host a request names, as ALB does: the first listener
  rule (lowest priority) whose conditions hold (path, host, header, method, source address,
  query string), else the default action; forward to one of a forward's target groups in
  proportion to its weights, and there to a healthy target (round robin; to every registered target when none is healthy, as ALB fails
  open; 503 when none is registered), redirect, or fixed response. HTTPS listeners terminate TLS
  with their ACM certificate, chosen by SNI as ALB does (see "HTTPS listeners" below).
- ACM and Route 53: certificates validated by DNS, issued by the sandbox CA, used only once
  issued and deleted only once unused; TestDNSAnswer resolves an alias to a load balancer to its
  address (domain_ext.py says how, and which AWS documents it follows).

A container's output goes to CloudWatch Logs as ECS's awslogs driver sends it: into the task
definition's `awslogs-group`, stream `<awslogs-stream-prefix>/<container>/<task id>`, about once
a second.

Standalone tasks (RunTask, StopTask) run the same way, with their overrides, and stop when their
container exits (ecs_run_task.py says how, and which AWS documents it follows).

Task definitions get the registeredAt that ECS returns and moto leaves out, and DeleteCluster
refuses a cluster with ACTIVE services (ClusterContainsServicesException), as ECS does.

Tasks with a task role get its credentials from ECS's credentials endpoint, and what they call
with them is authorized against the role's policies (task_credentials.py says how).

IAM is eventually consistent: a role created, or a role whose trust or inline policy changed,
takes effect SANDBOX_IAM_DELAY_SECONDS (default 8 AWS seconds; a role's `sandbox:iam-delay-seconds`
tag sets its own) after the call; until then a task's call with
the role's credentials is denied. IAM's documentation says a
change "may take time to become visible" and that it should not be relied on at once ("Changes
that I make are not always immediately visible",
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency). A task started before
its execution role took effect stops as ECS stops it: "ECS was unable to assume the role ... that
was provided for this task" (the stopped-task message ECS documents for an execution role it
cannot assume, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html).

Network interfaces outlive their tasks. Each awsvpc task has an elastic network interface in its
subnet with its security groups (moto makes it with the task;
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html); when the task stops, the interface
stays for SANDBOX_ENI_LINGER_SECONDS (default 4; on AWS, minutes) before it goes. While an
interface uses a security group or is in a subnet, DeleteSecurityGroup and DeleteSubnet fail with
DependencyViolation, as EC2 documents
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html: "If you attempt to delete a
security group that is associated with an instance or network interface ... the operation fails
with DependencyViolation"; https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSubnet.html: "You must terminate all running instances in the
subnet before you can delete the subnet", and EC2 refuses a subnet that still holds network
interfaces the same way). moto enforces neither.

Containers are labelled `mldeploy.sandbox.task`; the ones of tasks moto no longer knows (a reset,
a deleted service, a restart) are removed.

Usage: python moto_ext.py [moto_server arguments...]
"""

import base64
import calendar
import copy
import fnmatch
import hashlib
import ipaddress
import http.client
import itertools
import json
import math
import shlex
import ssl
import tempfile
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.core.exceptions import JsonRESTError
from moto.ec2.exceptions import DependencyViolationError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.core.utils import utcnow
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.models import ecs_backends
from moto.elbv2 import models as elbv2_models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.models import AWSManagedPolicy, IAMBackend, iam_backends
from moto.elbv2.models import elbv2_backends
from moto.logs.exceptions import InvalidParameterException as LogsInvalidParameter
from moto.logs.models import logs_backends
from moto.logs.responses import LogsResponse
from moto.acm.models import acm_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

import api_contract
import domain_ext
import ecs_strategies
import ecs_run_task
import task_credentials
import vpc_egress

# AWS's clock, scaled: one AWS second lasts TIME_SCALE seconds here (SANDBOX_TIME_SCALE, default
# 0.02: a 30 s health-check interval is 0.6 s). The times below are AWS seconds.
TIME_SCALE = float(os.environ.get("SANDBOX_TIME_SCALE", "0.02"))
ROLLOUT_SECONDS = float(os.environ.get("SANDBOX_ECS_ROLLOUT_SECONDS", "1"))
# A Fargate task's start: PROVISIONING while its network interface is attached, PENDING while
# its image is pulled (no layer cache on Fargate) and its container starts, then RUNNING
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html).
# The ENI's time and the pull rate are chosen so that a 1.5 GB Python image takes about 60 s, as
# measured on Fargate.
PROVISIONING_SECONDS = 15.0
PULL_BYTES_PER_SECOND = 35e6
# The container is created while the image is pulled (`docker create`) and started when the
# pull's time is up (`docker start`): the engine's own start, a few tenths of a wall second,
# stands in for the couple of seconds a container takes to start on Fargate.
# An Application Load Balancer is `provisioning` for a few minutes before it is `active`, and its
# DNS name answers only then (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#load-balancer-state).
LB_PROVISIONING_SECONDS = 150.0
# However scaled, a health check gets this much wall time: under load, this machine, not the
# app, would otherwise decide whether it answered in time.
MIN_CHECK_TIMEOUT = 1.0
HEALTH_TICK = 0.05
# A container health check runs as an exec in the container (runc), which costs the engine about
# 50 ms of CPU each time: scaled to less than this many wall seconds, checks of a few containers
# would take a core of this 2-core machine. A check interval is never shorter here (25 AWS
# seconds at the default scale; the bench says what that adds).
MIN_CONTAINER_CHECK_INTERVAL = 0.5
ALB_NET = int(os.environ.get("SANDBOX_ALB_NET", "1"))
HOSTS_FILE = os.environ.get("SANDBOX_HOSTS_FILE", "/etc/hosts")
HOSTS_MARK = "# mldeploy-sandbox-alb"
TASK_LABEL = "mldeploy.sandbox.task"
ENI_LINGER_SECONDS = float(os.environ.get("SANDBOX_ENI_LINGER_SECONDS", "4"))
# How long IAM takes to apply a change is not documented ("may take time"); the sandbox takes
# SANDBOX_IAM_DELAY_SECONDS AWS seconds on the scaled clock, or as long as the role's tag
# `sandbox:iam-delay-seconds` says: a test that must act inside the window makes its role's changes
# propagate slowly, as they sometimes do on AWS.
IAM_DELAY_SECONDS = float(os.environ.get("SANDBOX_IAM_DELAY_SECONDS", "8"))
IAM_DELAY_TAG = "sandbox:iam-delay-seconds"
# The scheduler decides every 50 ms (2.5 AWS seconds at the default scale); it asks the engine
# for its containers' states (`docker ps`, which costs the engine) every 250 ms.
SCHEDULER_SECONDS = 0.05
STATES_SECONDS = 0.25
LOGS_SECONDS = 1.0

Backend = ecs_models.EC2ContainerServiceBackend
Responses = ecs_responses.EC2ContainerServiceResponse

_lock = threading.RLock()
_opened_at: dict[str, float] = {}  # deployment id -> when it opened (monotonic)
_completed_td: dict[str, str] = {}  # service arn -> the task definition of its last completed deployment
_lingering: list[tuple[float, str, str, str]] = []
_iam_effective: dict[str, float] = {}  # role name -> when its last change takes effect (monotonic)  # (when it goes, account, region, ENI id) of stopped tasks


def scaled(aws_seconds):
    """Wall seconds for a span of AWS seconds."""
    return float(aws_seconds) * TIME_SCALE


def log(msg):
    print(f"moto_ext: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the Docker side


def docker_env():
    """The docker CLI's environment: a config directory logged in to the sandbox registry."""
    env = dict(os.environ)
    config_dir = os.environ.get("SANDBOX_DOCKER_CONFIG")
    if config_dir:
        os.makedirs(config_dir, exist_ok=True)
        account = "123456789012"
        auth = base64.b64encode(f"AWS:{account}-auth-token".encode()).decode()
        hosts = [f"{account}.dkr.ecr.{r}.amazonaws.com" for r in ("us-east-1", "us-west-2", "eu-west-1")]
        with open(os.path.join(config_dir, "config.json"), "w") as f:
            json.dump({"auths": {h: {"auth": auth} for h in hosts}}, f)
        env["DOCKER_CONFIG"] = config_dir
    return env


DOCKER_ENV = docker_env()


def docker(*args, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=DOCKER_ENV)


class Run:
    """One task's container, as the scheduler, the health checker and the log shipper see it."""

    def __init__(self, task, service_arn, container_id, ip, port, target_groups, awslogs=None):
        self.task = task
        self.service_arn = service_arn
        self.container_id = container_id
        self.ip = ip
        self.port = port
        self.target_groups = target_groups  # [(elbv2 backend, target group arn)]
        # The container health check's status as ECS reports it (HEALTHY, UNHEALTHY or UNKNOWN),
        # when the task definition has one.
        self.container_check = False
        self.container_health = "UNKNOWN"
        self.health = "initial"
        self.reason = "Elb.RegistrationInProgress"
        self.description = "Target registration is in progress"
        self.failures = 0
        self.successes = 0
        self.next_check = time.monotonic()
        self.started = time.monotonic()
        # Set once ECS stops the task: its targets drain until then (the deregistration delay).
        self.draining_until = None
        self.stop_reason = None
        # (log group, stream, region) the awslogs driver would write to; the last line shipped.
        self.awslogs = awslogs
        self.logs_since = None
        # The json-file log the engine writes for the container, read from where it was left:
        # asking `docker logs` for every container every second loads the machine as tasks pile up.
        self.log_path = None
        self.log_offset = 0


_runs: dict[str, Run] = {}  # task arn -> its container


def _set_status(task, status):
    # A moto Task advances its status on every read unless its transitions say it stays put.
    task._transitions = [(status, status)]
    task._status = status


def _container_states():
    """container id -> (running, exit code, health check status) for every container of ours:
    the status is the engine's (`healthy`, `unhealthy`, `starting`), None without a check."""
    out = docker("ps", "-a", "--no-trunc", "--filter", f"label={TASK_LABEL}", "--format", "{{.ID}}\t{{.State}}\t{{.Status}}")
    states = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        cid, state, status = parts
        code = None
        if status.startswith("Exited ("):
            try:
                code = int(status[len("Exited (") : status.index(")")])
            except ValueError:
                code = None
        health = None
        for marker, value in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"), ("(health: starting)", "starting")):
            if status.endswith(marker):
                health = value
        states[cid] = (state == "running", code, health)
    return states


# ---------------------------------------------------------------- tasks


def _service_tasks(backend, service, deployment_id=None):
    group = f"service:{service.name}"
    return [
        t
        for t in backend.tasks.get(service.cluster_name, {}).values()
        if t.group == group and t.desired_status == "RUNNING" and (deployment_id is None or t.started_by == deployment_id)
    ]


def _target_groups(service, deployment_id=None):
    """(elbv2 backend, target group ARN, container port) a task of the deployment is registered
    in: the service's target groups, or, in a blue/green, canary or linear deployment, green's
    only (ecs_strategies.py)."""
    shift = ecs_strategies.shift_of(deployment_id)
    if shift is not None:
        wanted = [(shift.green_tg, shift.container_port)]
    else:
        wanted = [(lb.get("targetGroupArn"), lb.get("containerPort")) for lb in service.load_balancers or []]
    pairs = []
    for arn, port in wanted:
        if not arn:
            continue
        for regions in list(elbv2_backends.values()):
            for elbv2 in list(regions.values()):
                if arn in elbv2.target_groups:
                    pairs.append((elbv2, arn, port))
    return pairs


def _customer_key(value_from):
    """The customer managed KMS key a secret or SecureString parameter is encrypted with, as an
    ARN; None for the AWS managed key (aws/secretsmanager, aws/ssm), which needs no grant."""
    parts = value_from.split(":")
    if len(parts) < 6:
        return None
    region, account = parts[3], parts[4]
    key = None
    if parts[2] == "secretsmanager":
        secret = secretsmanager_backends[account][region].secrets.get(":".join(parts[:7]))
        key = getattr(secret, "kms_key_id", None)
    elif parts[2] == "ssm":
        parameter = ssm_backends[account][region].get_parameter(value_from)
        if parameter is not None and parameter.parameter_type == "SecureString":
            key = parameter.keyid
    if not key or key.startswith("alias/aws/") or ":alias/aws/" in key:
        return None
    return key if key.startswith("arn:") else f"arn:aws:kms:{region}:{account}:{key if key.startswith('alias/') else 'key/' + key}"


def role_allows(role, action, resource):
    """Whether the role's policies (managed and inline) allow `action` on `resource`: one allows
    it and none denies it, as IAM evaluates a role's identity policies."""
    policies = [IAMPolicy(p) for p in role.managed_policies.values()]
    policies += [IAMPolicy(d if isinstance(d, str) else json.dumps(d)) for d in role.policies.values()]
    results = [p.is_action_permitted(action, resource) for p in policies]
    return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results


def _kms_denied(role_arn, value_from):
    """ECS reads a secret under a customer managed KMS key with the task execution role, which
    then needs kms:Decrypt on the key ("If your secret uses a custom KMS key ... kms:Decrypt",
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
    and the SSM page beside it); without it the task stops before its container starts. The stop
    reason or None."""
    key = _customer_key(value_from)
    if key is None:
        return None
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else None
    try:
        role = iam_backends[account]["global"].get_role(role_arn.rsplit("/", 1)[-1])
    except Exception:
        return None  # no role: the pull fails for that reason first
    if not role_allows(role, "kms:Decrypt", key):
        return (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
            f"unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {value_from}: "
            "AccessDeniedException: Access to KMS is not allowed"
        )
    return None


def _secret_value(value_from):
    """What ECS puts in the container for a secret: a Secrets Manager secret (or one JSON key of
    it) or an SSM parameter, read from moto's backends of the ARN's account and region."""
    parts = value_from.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"{value_from} is not an ARN")
    region, account = parts[3], parts[4]
    if parts[2] == "secretsmanager":
        secret = secretsmanager_backends[account][region].get_secret_value(":".join(parts[:7]), None, None)
        value = secret.get("SecretString") or ""
        key = parts[7] if len(parts) > 7 else ""
        return str(json.loads(value)[key]) if key else value
    if parts[2] == "ssm":
        parameter = ssm_backends[account][region].get_parameter(value_from)
        if parameter is None:
            raise KeyError(f"parameter {parts[5]} not found")
        return parameter.decrypt(parameter.value) if parameter.parameter_type == "SecureString" else parameter.value
    raise ValueError(f"{value_from} is neither a secret nor a parameter")


_starting: dict[str, tuple[float, float]] = {}  # task arn -> (PENDING at, RUNNING at), monotonic
_image_facts_by_digest: dict[str, tuple[str, int]] = {}


def _image_facts(image):
    """(os/architecture, size in bytes) of the image, pulled from the sandbox registry when the
    engine does not have it; None when it cannot be had (docker run then says why). A reference
    by digest names one image forever, so its facts are asked for once."""
    if image in _image_facts_by_digest:
        return _image_facts_by_digest[image]
    inspect = ("image", "inspect", "-f", "{{.Os}}/{{.Architecture}} {{.Size}}", image)
    try:
        out = docker(*inspect)
        if out.returncode != 0:
            if docker("pull", image).returncode != 0:
                return None
            out = docker(*inspect)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    platform, _, size = out.stdout.strip().partition(" ")
    facts = (platform, int(size or 0))
    if "@sha256:" in image:
        _image_facts_by_digest[image] = facts
    return facts


def _start_task(backend, service, deployment):
    """Starts one task of the deployment: a moto Task, PROVISIONING and then PENDING for as long
    as Fargate takes (see PROVISIONING_SECONDS), after which `_launch` runs its container."""
    cluster = backend.clusters[service.cluster_name]
    td = backend.describe_task_definition(deployment["taskDefinition"])
    task = ecs_models.Task(
        cluster,
        td,
        None,
        None,
        backend,
        group=f"service:{service.name}",
        launch_type=service.launch_type or "FARGATE",
        started_by=deployment["id"],
        tags=[],
        networking_configuration=service.network_configuration or None,
        platform_version=service.platform_version,
    )
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    _provision(task, td)
    return task


def _provision(task, td):
    """A new task is PROVISIONING, then PENDING while its image is pulled (see the docstring)."""
    _set_status(task, "PROVISIONING")
    task.created_at = utcnow()
    now = time.monotonic()
    facts = _image_facts(td.container_definitions[0]["image"])
    pull = (facts[1] if facts else 0) / PULL_BYTES_PER_SECOND
    _starting[task.task_arn] = (now + scaled(PROVISIONING_SECONDS), now + scaled(PROVISIONING_SECONDS + pull))


def _advance_start(backend, service, task, now):
    """One step of starting a task: None while it is still on its way, else whether it started
    (False: it stopped instead, `_pull` or `_launch` said why)."""
    due = _starting[task.task_arn]
    started = True
    if now >= due[0] and task.last_status == "PROVISIONING":
        _set_status(task, "PENDING")
        started = _pull(backend, service, task)
    elif now >= due[1]:
        started = _launch(backend, service, task)
    if started and task.last_status != "RUNNING":
        return None
    del _starting[task.task_arn]
    return started


def _pull(backend, service, task):
    """What ECS does while a task is PENDING: with the task execution role, pull the image and
    read the secrets, then create the container (`docker create`, started by `_launch` when the
    pull's time is up). False when the task stopped instead (a role ECS cannot assume yet, an
    image it cannot pull or run, a secret it cannot read)."""
    td = backend.describe_task_definition(task.task_definition_arn)

    # A role ECS cannot assume yet stops the task before anything runs (see the docstring;
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html).
    role_arn = getattr(td, "execution_role_arn", None) or ""
    role_name = role_arn.rsplit("/", 1)[-1]
    if role_name and time.monotonic() < _iam_effective.get(role_name, 0.0):
        _stop_task(task, f"ECS was unable to assume the role '{role_arn}' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role.", None)
        return False

    container = _overridden(task, td.container_definitions[0])
    # The task must reach ECR, S3, CloudWatch Logs and its secrets from its subnet: through the
    # internet gateway with a public IP, a NAT gateway, or VPC endpoints (vpc_egress.py says how).
    problem = _egress_problem(service, task, td, container)
    if problem:
        _stop_task(task, problem, None)
        return False
    # Fargate pulls the image's manifest for the task's CPU architecture (X86_64 when the task
    # definition names none: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RuntimePlatform.html);
    # an image built for another one cannot be pulled and the task stops with
    # CannotPullContainerError (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_cannot_pull_image.html).
    wanted = _FARGATE_PLATFORMS.get(((getattr(td, "runtime_platform", None) or {}).get("cpuArchitecture") or "X86_64").upper())
    facts = _image_facts(container["image"])
    built = facts[0] if facts else None
    if built is not None and built != wanted:
        _stop_task(task, f"CannotPullContainerError: pull image manifest has been retried 5 time(s): image Manifest does not contain descriptor matching platform '{wanted}'", None)
        return False

    args = [
        "create",
        "--name", f"mldeploy-sbx-{task.id}",
        "--label", f"{TASK_LABEL}={task.task_arn}",
        "--label", f"mldeploy.sandbox.service={service.arn}",
    ]
    region = td.arn.split(":")[3]
    for name, value in task_credentials.task_environment(region).items():
        args += ["-e", f"{name}={value}"]
    for env in container.get("environment") or []:
        args += ["-e", f"{env['name']}={env['value']}"]
    task_role = getattr(td, "task_role_arn", None)
    if task_role:
        uri = task_credentials.relative_uri(td.arn.split(":")[4], task_role)
        args += ["-e", f"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI={uri}"]
    for secret in container.get("secrets") or []:
        denied = _kms_denied(role_arn, secret["valueFrom"]) if role_arn else None
        if denied:
            _stop_task(task, denied, None)
            return False
        try:
            args += ["-e", f"{secret['name']}={_secret_value(secret['valueFrom'])}"]
        except Exception as e:  # ECS stops the task before its container starts
            _stop_task(task, f"ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secret {secret['valueFrom']}: {type(e).__name__}", None)
            return False
    image = container["image"]
    check = container.get("healthCheck") or {}
    if (check.get("command") or [""])[0] == "CMD":
        # An exec-form check runs its executable directly, with no shell
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html: "CMD
        # to run the command arguments directly"). The docker CLI takes only the shell form, so
        # the check goes into an image made FROM the task's, as its HEALTHCHECK.
        image = _image_with_exec_check(image, check)
        if image is None:
            _stop_task(task, f"CannotPullContainerError: pull image manifest failed for {container['image']}", None)
            return False
    else:
        args += _health_flags(check)
    entry = container.get("entryPoint") or []
    if entry:
        args += ["--entrypoint", entry[0]]
    args.append(image)
    args += entry[1:] + (container.get("command") or [])
    try:
        out = docker(*args)
    except subprocess.TimeoutExpired:
        out = subprocess.CompletedProcess(args, 1, "", "docker create timed out")
    if out.returncode != 0:
        message = (out.stderr.strip().splitlines() or ["docker create failed"])[-1]
        _stop_task(task, f"CannotPullContainerError: {message}", None)
        return False
    _created[task.task_arn] = out.stdout.strip()
    return True


_created: dict[str, str] = {}  # task arn -> its container, created and not started yet


def _overridden(task, container):
    """The container as RunTask's containerOverrides change it: `command` replaces the task
    definition's, `environment` adds variables or overrides those of the same name
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerOverride.html)."""
    override = next(
        (o for o in (getattr(task, "overrides", None) or {}).get("containerOverrides") or [] if o.get("name") == container["name"]),
        None,
    )
    if override is None:
        return container
    container = dict(container)
    if override.get("command") is not None:
        container["command"] = override["command"]
    if override.get("environment"):
        names = {e["name"] for e in override["environment"]}
        container["environment"] = [e for e in container.get("environment") or [] if e["name"] not in names] + override["environment"]
    return container


def _egress_problem(service, task, td, container):
    """Why the task cannot reach what starting it needs from its subnet (None when it can)."""
    vpc = (service.network_configuration or {}).get("awsvpcConfiguration") or {}
    subnets = vpc.get("subnets") or []
    subnet = next(
        (d["value"] for a in task.attachments or [] for d in a.get("details", []) if d["name"] == "subnetId"),
        subnets[0] if subnets else None,
    )
    if subnet is None:
        return None
    secrets = {s["valueFrom"].split(":")[2] for s in container.get("secrets") or [] if s.get("valueFrom", "").startswith("arn:")}
    arn = td.arn.split(":")
    return vpc_egress.egress_problem(arn[4], arn[3], subnet, vpc.get("assignPublicIp") == "ENABLED", secrets)


def _launch(backend, service, task):
    """Starts the task's container once its pull's time is up: the task is RUNNING, its address
    a target of the service's target groups. False when the container cannot start."""
    td = backend.describe_task_definition(task.task_definition_arn)
    container = td.container_definitions[0]
    cid = _created.pop(task.task_arn, None)
    if cid is None:
        return False
    try:
        out = docker("start", cid)
    except subprocess.TimeoutExpired:
        out = subprocess.CompletedProcess(["start"], 1, "", "docker start timed out")
    if out.returncode != 0:
        _remove_container(cid)
        message = (out.stderr.strip().splitlines() or ["docker start failed"])[-1]
        _stop_task(task, f"CannotStartContainerError: {message}", None)
        return False
    ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
    port = None
    for mapping in container.get("portMappings") or []:
        port = mapping.get("containerPort")
        break
    groups = []
    for elbv2, arn, container_port in _target_groups(service, task.started_by):
        target_port = container_port or port
        elbv2.register_targets(arn, [{"Id": ip, "Port": target_port}])
        groups.append((elbv2, arn))
        port = target_port
    for detail in task.attachments[0]["details"] if task.attachments else []:
        if detail["name"] == "privateIPv4Address":
            detail["value"] = ip
    _set_status(task, "RUNNING")
    task.started_at = utcnow()
    for c in task.containers:
        c.last_status = "RUNNING"
    run = Run(task, service.arn, cid, ip, port, groups, _awslogs(container, task))
    run.container_check = bool(_health_flags(container.get("healthCheck")))
    _set_container_health(run, "UNKNOWN")
    _runs[task.task_arn] = run
    return True


_exec_check_images: dict[tuple[str, str], str] = {}


def _image_with_exec_check(image, check):
    """`image` with the exec-form `check` as its Dockerfile HEALTHCHECK (`HEALTHCHECK [options]
    CMD ["executable", "arg"]`, the JSON form run without a shell:
    https://docs.docker.com/reference/dockerfile/#healthcheck), on the scaled clock as
    `_health_flags` times it; None when the image cannot be had. Built once per image and check."""
    key = (image, json.dumps(check, sort_keys=True))
    if key in _exec_check_images:
        return _exec_check_images[key]
    flags = _health_timing(check)
    tag = "mldeploy-sbx-check:" + hashlib.sha256(key[0].encode() + key[1].encode()).hexdigest()[:16]
    dockerfile = (
        f"FROM {image}\n"
        f"HEALTHCHECK --interval={flags['interval']} --timeout={flags['timeout']} "
        f"--retries={flags['retries']} --start-period={flags['start_period']} "
        f"CMD {json.dumps(check['command'][1:])}\n"
    )
    out = subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, capture_output=True,
                         text=True, timeout=120, env=DOCKER_ENV)
    if out.returncode != 0:
        return None
    _exec_check_images[key] = tag
    return tag


def _health_timing(check):
    """The check's timings as Docker takes them, with ECS's defaults (see `_health_flags`)."""

    def go_duration(seconds):
        return f"{max(1, round(seconds * 1000))}ms"

    return {
        "interval": go_duration(max(scaled(check.get("interval") or 30), MIN_CONTAINER_CHECK_INTERVAL)),
        "timeout": go_duration(max(scaled(check.get("timeout") or 5), MIN_CHECK_TIMEOUT)),
        "retries": str(check.get("retries") or 3),
        "start_period": go_duration(scaled(check.get("startPeriod") or 0)),
    }


def _health_flags(check):
    """`docker create`'s flags for a container definition's healthCheck, which "maps to the
    HEALTHCHECK parameter of docker run": the engine runs the command in the container and keeps
    its status as ECS's agent does, with ECS's defaults for what the check leaves out (interval
    30 s, timeout 5 s, retries 3, no start period) on the scaled clock
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html). Within the
    start period failures do not count, and a success ends it; after `retries` failures in a row
    the container is unhealthy (https://docs.docker.com/reference/dockerfile/#healthcheck).
    The docker CLI takes a check only in its shell form: an exec-form (CMD) check goes into the
    image instead (`_image_with_exec_check`), and is run without a shell as ECS runs it."""
    command = (check or {}).get("command") or []
    if not command or command[0] == "NONE":
        return []
    shell = command[1] if command[0] == "CMD-SHELL" and len(command) > 1 else shlex.join(command[1:])
    timing = _health_timing(check)
    return [
        "--health-cmd", shell,
        "--health-interval", timing["interval"],
        "--health-timeout", timing["timeout"],
        "--health-retries", timing["retries"],
        "--health-start-period", timing["start_period"],
    ]


_CONTAINER_HEALTH = {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY"}


def _set_container_health(run, status):
    """The task's healthStatus and its container's, as DescribeTasks shows them: UNKNOWN while the
    check is evaluated or when there is none; the task's is its essential container's
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/healthcheck.html)."""
    run.container_health = status
    run.task.health_status = status
    for c in run.task.containers:
        c.health_status = status


_FARGATE_PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}


def _awslogs(container, task):
    """Where ECS's awslogs driver sends a container's output: the group, and the stream
    `<prefix>/<container name>/<task id>`."""
    config = container.get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or "awslogs-group" not in options:
        return None
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{container['name']}/{task.id}" if prefix else task.id
    return options["awslogs-group"], stream, options.get("awslogs-region", task.region_name)


def _stop_task(task, reason, exit_code):
    """Stops a task: its container removed, its targets deregistered, moto's Task STOPPED."""
    run = _runs.pop(task.task_arn, None)
    if run is not None and run.awslogs:
        try:
            _ship_logs(run)  # a crashed container's last lines are the ones that matter
        except Exception:
            log(f"shipping the last logs of {run.container_id[:12]} failed:\n{traceback.format_exc()}")
    if run is not None:
        for elbv2, arn in run.target_groups:
            try:
                elbv2.deregister_targets(arn, [{"Id": run.ip}])
            except Exception:  # the target group is gone already
                pass
        _remove_container(run.container_id)
    cid = _created.pop(task.task_arn, None)
    if cid is not None:
        _remove_container(cid)
    # The task's network interface outlives it a while (see the module's docstring;
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html).
    for attachment in task.attachments or []:
        for detail in attachment.get("details", []):
            if detail["name"] == "networkInterfaceId":
                _lingering.append((time.monotonic() + ENI_LINGER_SECONDS, task._account_id, task.region_name, detail["value"]))
    _set_status(task, "STOPPED")
    task.desired_status = "STOPPED"
    task.stopped_reason = reason
    task.stopped_at = utcnow()
    task.stop_code = "EssentialContainerExited" if exit_code is not None else "TaskFailedToStart"
    for c in task.containers:
        c.last_status = "STOPPED"
        c.exit_code = exit_code
        c.exitCode = exit_code
        c.reason = reason if exit_code is None else None


_removals: "queue.Queue[str]" = queue.Queue()
_removing: set = set()  # container ids queued for removal


def _remove_container(cid):
    """Kills and removes a stopped task's container from a thread of its own: ECS's SIGKILL is
    immediate, while `docker rm -f` takes this engine a few tenths of a wall second (AWS seconds
    on the scaled clock) that would hold up the scheduler and the deployment."""
    if cid not in _removing:
        _removing.add(cid)
        _removals.put(cid)


def _remover():
    while True:
        cid = _removals.get()
        try:
            docker("rm", "-f", cid)
        except Exception:
            log(f"removing {cid[:12]} failed:\n{traceback.format_exc()}")
        with _lock:
            _removing.discard(cid)


def _event(service, message):
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": f"(service {service.name}) {message}"})


# ---------------------------------------------------------------- deployments


def _new_deployment(service, desired, task_definition=None, rollback_of=None):
    deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19}"
    now = utcnow()
    _opened_at[deployment_id] = time.monotonic()
    _record_service_deployment(service, deployment_id, task_definition or service.task_definition, rollback_of)
    return {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition or service.task_definition,
        "desiredCount": desired,
        "pendingCount": 0,
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


def _open_deployment(service, task_definition=None, rollback_of=None, config=None):
    if rollback_of is None:
        ecs_strategies.supersede(service)
    previous = list(service.deployments)
    for d in previous:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = utcnow()
    opened = _new_deployment(service, service.desired_count, task_definition, rollback_of)
    service.deployments = [opened] + previous
    if rollback_of is None:
        ecs_strategies.opened(service, opened, previous, config)


# ------------------------------------------------------- service deployments and revisions
# ECS keeps a service's history as service deployments, each deploying a service revision (the
# task definition and settings it runs), read with ListServiceDeployments and
# DescribeServiceRevisions; moto 5.2.5 has neither. As ECS documents
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-revision.html): a service
# deployment with a new service revision starts when a service is created or updated in a way
# that starts a deployment; it ends SUCCESSFUL; a circuit breaker with rollback turns it
# ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL, and "Amazon ECS doesn't create a new service
# revision for a rollback operation"; without rollback a failed one is STOPPED ("The service
# deployment stops when ... the rollback option is not in use ... and the service fails",
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html). One
# still in progress when the next starts is STOPPED here too (it never completed).

_service_deployments: dict[str, list[dict]] = {}  # service ARN -> its service deployments, oldest first
_service_revisions: dict[str, dict] = {}  # service revision ARN -> the revision
_deployment_record: dict[str, dict] = {}  # ECS deployment id -> the service deployment it carries out


def _record_service_deployment(service, deployment_id, task_definition, rollback_of):
    now = utcnow()
    if rollback_of is not None:
        record = _deployment_record.get(rollback_of)
        if record is not None:
            record.update(status="ROLLBACK_IN_PROGRESS", statusReason="ECS deployment circuit breaker: rolling back to the last completed service revision.", updatedAt=now)
            _deployment_record[deployment_id] = record
        return
    prefix, path = service.arn.split(":service/", 1)
    history = _service_deployments.setdefault(service.arn, [])
    for earlier in history:
        if earlier["status"] in ("PENDING", "IN_PROGRESS"):
            earlier.update(status="STOPPED", statusReason="A newer service deployment started.", finishedAt=now, stoppedAt=now, updatedAt=now)
    revision_arn = f"{prefix}:service-revision/{path}/{uuid.uuid4().int % 10**19}"
    _service_revisions[revision_arn] = {
        "serviceRevisionArn": revision_arn,
        "serviceArn": service.arn,
        "clusterArn": service.arn.replace(":service/", ":cluster/").rsplit("/", 1)[0],
        "taskDefinition": task_definition,
        "launchType": service.launch_type or "FARGATE",
        "platformVersion": service.platform_version,
        "networkConfiguration": service.network_configuration or None,
        "loadBalancers": copy.deepcopy(list(getattr(service, "load_balancers", None) or [])),
        "createdAt": now,
    }
    success = next((d for d in reversed(history) if d["status"] == "SUCCESSFUL"), None)
    record = {
        "serviceDeploymentArn": f"{prefix}:service-deployment/{path}/{uuid.uuid4().hex[:22]}",
        "serviceArn": service.arn,
        "clusterArn": _service_revisions[revision_arn]["clusterArn"],
        "createdAt": now,
        "startedAt": now,
        "updatedAt": now,
        "sourceServiceRevisions": [{"arn": success["targetServiceRevision"]["arn"]}] if success else [],
        "targetServiceRevision": {"arn": revision_arn},
        "status": "IN_PROGRESS",
        "deploymentConfiguration": dict(getattr(service, "deployment_configuration", None) or {}) or None,
    }
    history.append(record)
    _deployment_record[deployment_id] = record


def _service_deployment_finished(deployment_id, completed):
    record = _deployment_record.get(deployment_id)
    if record is None or record["status"] not in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS"):
        return
    now = utcnow()
    if record["status"] == "ROLLBACK_IN_PROGRESS":
        record.update(status="ROLLBACK_SUCCESSFUL" if completed else "ROLLBACK_FAILED", finishedAt=now, updatedAt=now)
    elif completed:
        record.update(status="SUCCESSFUL", finishedAt=now, updatedAt=now)
    else:
        record.update(status="STOPPED", statusReason="ECS deployment circuit breaker: tasks failed to start.", finishedAt=now, stoppedAt=now, updatedAt=now)


def _epoch(value):
    return calendar.timegm(value.utctimetuple()) + value.microsecond / 1e6 if value is not None else None


def _client_error(code, message):
    return JsonRESTError(code, message)


def list_service_deployments(self):
    """ListServiceDeployments (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServiceDeployments.html):
    the service's deployments filtered by status and createdAt, 20 a page unless maxResults
    (1-100) says otherwise. The reference promises no order; the sandbox lists them oldest first
    (the order they were made in), so a client that takes the first one as the newest is wrong
    here from the second deployment on, as it can be on AWS."""
    cluster = (self._get_param("cluster") or "default").split("/")[-1]
    name = (self._get_param("service") or "").split("/")[-1]
    with _lock:
        service = self.ecs_backend._get_service(cluster, name)  # raises ServiceNotFound/ClusterNotFound
        history = list(_service_deployments.get(service.arn, []))
    statuses = self._get_param("status") or []
    created = self._get_param("createdAt") or {}
    if statuses:
        history = [d for d in history if d["status"] in statuses]
    if created.get("after") is not None:
        history = [d for d in history if _epoch(d["createdAt"]) >= float(created["after"])]
    if created.get("before") is not None:
        history = [d for d in history if _epoch(d["createdAt"]) <= float(created["before"])]
    size = int(self._get_param("maxResults") or 20)
    if not 1 <= size <= 100:
        raise _client_error("InvalidParameterException", "maxResults must be between 1 and 100.")
    start = int(self._get_param("nextToken") or 0)
    page = history[start:start + size]
    body = {"serviceDeployments": [{
        "serviceDeploymentArn": d["serviceDeploymentArn"],
        "serviceArn": d["serviceArn"],
        "clusterArn": d["clusterArn"],
        "createdAt": _epoch(d["createdAt"]),
        "startedAt": _epoch(d.get("startedAt")),
        "finishedAt": _epoch(d.get("finishedAt")),
        "targetServiceRevisionArn": d["targetServiceRevision"]["arn"],
        "status": d["status"],
        "statusReason": d.get("statusReason"),
    } for d in page]}
    if start + size < len(history):
        body["nextToken"] = str(start + size)
    return json.dumps({k: v for k, v in body.items() if v is not None})


def describe_service_revisions(self):
    """DescribeServiceRevisions (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceRevisions.html):
    at most 20 ARNs; an unknown one is a failure with reason MISSING."""
    arns = self._get_param("serviceRevisionArns") or []
    if not 1 <= len(arns) <= 20:
        raise _client_error("InvalidParameterException", "serviceRevisionArns must hold 1 to 20 ARNs.")
    found, failures = [], []
    with _lock:
        for arn in arns:
            revision = _service_revisions.get(arn)
            if revision is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append({k: (_epoch(v) if k == "createdAt" else v) for k, v in revision.items() if v is not None})
    return json.dumps({"serviceRevisions": found, "failures": failures})


def _service_deployment_view(d):
    """A service deployment as DescribeServiceDeployments returns it
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html)."""
    view = {k: (_epoch(v) if k.endswith("At") else v) for k, v in d.items() if k != "hooks" and v is not None}
    hooks = d.get("hooks") or []
    if hooks:
        view["lifecycleHookDetails"] = [
            {k: h[k] for k in ("hookId", "targetType", "status", "expiresAt", "timeoutAction")} for h in hooks
        ]
    return view


def describe_service_deployments(self):
    """DescribeServiceDeployments: 1 to 20 ARNs; an unknown one is a failure with reason MISSING
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html)."""
    arns = self._get_param("serviceDeploymentArns") or []
    if not 1 <= len(arns) <= 20:
        raise _client_error("InvalidParameterException", "serviceDeploymentArns must hold 1 to 20 ARNs.")
    found, failures = [], []
    with _lock:
        records = {d["serviceDeploymentArn"]: d for history in _service_deployments.values() for d in history}
        for arn in arns:
            record = records.get(arn)
            if record is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(_service_deployment_view(record))
    return json.dumps({"serviceDeployments": found, "failures": failures})


def continue_service_deployment(self):
    """ContinueServiceDeployment (ecs_strategies.continue_deployment)."""
    arn = self._get_param("serviceDeploymentArn")
    with _lock:
        ecs_strategies.continue_deployment(arn, self._get_param("hookId"), self._get_param("action"))
    return json.dumps({"serviceDeploymentArn": arn})


def stop_service_deployment(self):
    """StopServiceDeployment with ROLLBACK, of a PENDING or IN_PROGRESS service deployment
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html):
    a blue/green one moves traffic back to blue (ecs_strategies.stop_deployment); a rolling one
    opens a deployment of the last completed revision, as the circuit breaker's rollback does."""
    arn = self._get_param("serviceDeploymentArn")
    with _lock:
        record = next((d for history in _service_deployments.values() for d in history if d["serviceDeploymentArn"] == arn), None)
        if record is None:
            raise _client_error("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")
        if record["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"):
            return json.dumps({"serviceDeploymentArn": arn})
        if record["status"] not in ("PENDING", "IN_PROGRESS"):
            raise _client_error("InvalidParameterException", f"The service deployment {arn} is {record['status']} and cannot be stopped.")
        ids = [k for k, v in _deployment_record.items() if v is record]
        if any(ecs_strategies.shift_of(i) is not None for i in ids):
            ecs_strategies.stop_deployment(arn, self._get_param("stopType"))
            return json.dumps({"serviceDeploymentArn": arn})
        backend = self.ecs_backend
        service = next((s for s in backend.services.values() if s.arn == record["serviceArn"]), None)
        back = _completed_td.get(record["serviceArn"])
        if service is None or not back:
            raise _client_error("InvalidParameterException", f"The service deployment {arn} has no earlier revision to roll back to.")
        record.update(status="ROLLBACK_REQUESTED", updatedAt=utcnow())
        for d in service.deployments:
            if d["id"] in ids:
                d.update(rolloutState="FAILED", rolloutStateReason="Stopped by StopServiceDeployment.", updatedAt=utcnow())
                for task in _service_tasks(backend, service, d["id"]):
                    _drain(task, f"Scaling activity initiated by (deployment {d['id']})")
        service.task_definition = back
        _open_deployment(service, back, rollback_of=ids[0] if ids else None)
    return json.dumps({"serviceDeploymentArn": arn})


def _breaker(service):
    config = getattr(service, "deployment_configuration", None) or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    return bool(breaker.get("enable")), bool(breaker.get("rollback"))


def _failure_threshold(desired):
    return min(200, max(3, math.ceil(desired / 2)))


def _grace(service):
    """The service's health-check grace period, in wall seconds: "the period of time, in seconds,
    that the Amazon ECS service scheduler ignores unhealthy Elastic Load Balancing target health
    checks ... after a task has first started"
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html)."""
    return scaled(getattr(service, "health_check_grace_period_seconds", None) or 0)


def _deregistration_delay(run):
    """How long the task's targets drain once deregistered: the target groups'
    deregistration_delay.timeout_seconds (300 by default). ALB ends it early only for a target
    with no in-flight requests and no open connections
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay);
    the sandbox takes a service to be in use, as in production, so its targets drain for the
    whole delay."""
    delays = []
    for elbv2, arn in run.target_groups:
        tg = elbv2.target_groups.get(arn)
        if tg is not None:
            delays.append(float(tg.attributes.get("deregistration_delay.timeout_seconds", 300)))
    return scaled(max(delays, default=0))


def _drain(task, reason):
    """ECS stops a task behind a load balancer by deregistering its targets first: they drain
    for the deregistration delay, and then the task stops
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/load-balancer-connection-draining.html)."""
    run = _runs.get(task.task_arn)
    if run is None or not run.target_groups:
        _starting.pop(task.task_arn, None)
        return _stop_task(task, reason, None)
    if run.draining_until is None:
        run.draining_until = time.monotonic() + _deregistration_delay(run)
        run.stop_reason = reason
        run.health, run.reason, run.description = "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
        # DEACTIVATING: "Amazon ECS ... deregisters the load balancer target groups"
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html).
        task.desired_status = "STOPPED"
        _set_status(task, "DEACTIVATING")
        _draining.append(task)


_draining: list = []  # tasks whose targets drain before they stop


def _finish_draining():
    now = time.monotonic()
    for task in list(_draining):
        run = _runs.get(task.task_arn)
        if run is None:
            _draining.remove(task)
        elif now >= run.draining_until:
            _draining.remove(task)
            _stop_task(task, run.stop_reason, None)


def _schedule(backend, service, states):
    """One step of ECS's service scheduler for one service."""
    now = time.monotonic()
    for d in list(service.deployments):
        primary = d["status"] == "PRIMARY"
        tasks = _service_tasks(backend, service, d["id"])
        for task in tasks:
            if task.task_arn in _starting:
                started = _advance_start(backend, service, task, now)
                if started is None or started or d["rolloutState"] != "IN_PROGRESS":
                    continue
                d["failedTasks"] += 1
                continue
            run = _runs.get(task.task_arn)
            if run is None:
                continue
            # A container started since the engine was last asked is not in its answer yet.
            fresh = run.started > _states_at
            running, code, checked = states.get(run.container_id, (fresh, None, None))
            if run.container_check and checked is not None:
                _set_container_health(run, _CONTAINER_HEALTH.get(checked, "UNKNOWN"))
            # "For tasks that are part of a service, if the task reports as unhealthy then the
            # task will be stopped and the service scheduler will replace it", after the grace
            # period, which covers ELB and container health checks alike (API_HealthCheck.html,
            # API_CreateService.html: healthCheckGracePeriodSeconds). The reason is the one ECS
            # gives (https://repost.aws/knowledge-center/ecs-task-container-health-check-failures).
            in_grace = now - run.started < _grace(service)
            if not running:
                _stop_task(task, "Essential container in task exited", code)
            elif run.container_health == "UNHEALTHY" and not in_grace:
                _event(service, f"(task {task.id}) failed container health checks.")
                _stop_task(task, "Task failed container health checks", None)
            elif run.health == "unhealthy" and not in_grace:
                arns = ", ".join(arn for _, arn in run.target_groups)
                _stop_task(task, f"Task failed ELB health checks in (target-group {arns})", None)
            else:
                continue
            if d["rolloutState"] == "IN_PROGRESS":
                d["failedTasks"] += 1
        if primary and d["rolloutState"] == "IN_PROGRESS" and d["failedTasks"] >= _failure_threshold(d["desiredCount"]):
            enabled, rollback = _breaker(service)
            shift = ecs_strategies.shift_of(d["id"])
            if enabled and shift is not None:
                # The breaker supports blue/green as well as rolling deployments
                # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-failure-detection.html).
                # Blue still serves: the rollback moves no traffic and starts no task.
                _event(service, f"(deployment {d['id']}) deployment failed: tasks failed to start.")
                shift.rollback("ECS deployment circuit breaker: tasks failed to start.")
                return _schedule(backend, service, states)
            if enabled:
                d["rolloutState"] = "FAILED"
                d["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
                d["updatedAt"] = utcnow()
                if not (rollback and _completed_td.get(service.arn)):
                    _service_deployment_finished(d["id"], completed=False)
                _event(service, f"(deployment {d['id']}) deployment failed: tasks failed to start.")
                back = _completed_td.get(service.arn)
                if rollback and back:
                    for task in _service_tasks(backend, service, d["id"]):
                        _drain(task, f"Scaling activity initiated by (deployment {d['id']})")
                    service.task_definition = back
                    _open_deployment(service, back, rollback_of=d["id"])
                    _event(service, f"rolling back to deployment {service.deployments[0]['id']}.")
                    return _schedule(backend, service, states)
        tasks = _service_tasks(backend, service, d["id"])
        if primary:
            want = d["desiredCount"]
            if d["rolloutState"] == "FAILED" and not _breaker(service)[1]:
                want = len(tasks)  # a failed deployment without rollback stops launching
            for _ in range(max(0, want - len(tasks))):
                _start_task(backend, service, d)
            for task in tasks[want:]:
                _drain(task, f"Scaling activity initiated by (deployment {d['id']})")
        live = _service_tasks(backend, service, d["id"])
        d["runningCount"] = sum(1 for t in live if t.task_arn in _runs)
        d["pendingCount"] = len(live) - d["runningCount"]

    # The new tasks healthy, ECS drains and stops the old ones; the deployment is COMPLETED,
    # and the service steady, once they are gone.
    primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)
    if primary is not None and primary["rolloutState"] == "IN_PROGRESS":
        live = [_runs[t.task_arn] for t in _service_tasks(backend, service, primary["id"]) if t.task_arn in _runs]
        opened = _opened_at.setdefault(primary["id"], time.monotonic())
        # A task with a container health check counts once it is healthy, and one behind a load
        # balancer once its target is healthy too (minimumHealthyPercent in
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html).
        healthy = all(r.health == "healthy" for r in live if r.target_groups) and all(
            r.container_health == "HEALTHY" for r in live if r.container_check
        )
        ready = len(live) == primary["desiredCount"] and healthy and time.monotonic() - opened >= ROLLOUT_SECONDS
        shift = ecs_strategies.shift_of(primary["id"])
        if shift is not None:
            shift.advance(backend, service, primary, ready)
        elif ready:
            old = [t for d in service.deployments if d is not primary for t in _service_tasks(backend, service, d["id"])]
            for task in old:
                _drain(task, f"Scaling activity initiated by (deployment {primary['id']})")
            draining = any(_runs.get(t.task_arn) is not None and _runs[t.task_arn].service_arn == service.arn for t in _draining)
            if not any(t.task_arn in _runs or t.task_arn in _starting for t in old) and not draining:
                primary.update(rolloutState="COMPLETED", rolloutStateReason=f"ECS deployment {primary['id']} completed.", updatedAt=utcnow())
                _completed_td[service.arn] = primary["taskDefinition"]
                _service_deployment_finished(primary["id"], completed=True)
                service.deployments = [primary]
                _event(service, "has reached a steady state.")
    # A rolled-back deployment is gone from the list once its tasks are.
    if primary is not None and primary["rolloutState"] == "COMPLETED" and len(service.deployments) > 1:
        draining = {t.started_by for t in _draining}
        service.deployments = [
            d for d in service.deployments
            if d is primary or d["id"] in draining or _service_tasks(backend, service, d["id"]) or d["rolloutState"] != "FAILED"
        ]
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = sum(d["pendingCount"] for d in service.deployments)


def _release_network_interfaces():
    """Deletes the network interfaces of stopped tasks whose while is up."""
    now = time.monotonic()
    with _lock:
        due = [item for item in _lingering if item[0] <= now]
        _lingering[:] = [item for item in _lingering if item[0] > now]
    for _, account, region, eni_id in due:
        try:
            ec2_backends[account][region].delete_network_interface(eni_id)
        except Exception:  # gone already (a reset)
            pass


_states: dict = {}
_states_at = 0.0


def _tick():
    _release_network_interfaces()
    global _states, _states_at
    asked = time.monotonic() - _states_at >= STATES_SECONDS
    if asked:
        _states_at = time.monotonic()
        _states = _container_states()
    states = _states
    with _lock:
        _finish_draining()
        ecs_run_task.carry_out_stops()
        live = set()
        services = set()
        for regions in list(ecs_backends.values()):
            for backend in list(regions.values()):
                for service in list(backend.services.values()):
                    if service.status == "DRAINING":
                        services.add(service.arn)
                        _finish_deleting(service)
                    if service.status != "ACTIVE":
                        continue
                    services.add(service.arn)
                    try:
                        _schedule(backend, service, states)
                    except Exception:
                        log(f"scheduling {service.name} failed:\n{traceback.format_exc()}")
                    live.update(t.task_arn for t in _service_tasks(backend, service))
        live.update(ecs_run_task.schedule(states))
        live.update(t.task_arn for t in _draining)  # after scheduling, which may add some
        for arn, run in list(_runs.items()):
            if arn not in live:
                _stop_task(run.task, "Service deleted", None)
        # A deleted service's tasks still starting stop too: DeleteService with force "stops all
        # tasks" of the service, not only running ones
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
        for arn in [a for a in _starting if a not in live]:
            del _starting[arn]
            task = _task_by_arn(arn)
            if task is not None and task.last_status != "STOPPED":
                _stop_task(task, "Service deleted", None)
        for arn in [a for a in _created if a not in live]:
            _remove_container(_created.pop(arn))
        # "Amazon ECS deletes the service revision when you delete a service" (service-revision.html).
        for arn in [a for a in _service_deployments if a not in services]:
            for record in _service_deployments.pop(arn):
                _service_revisions.pop(record["targetServiceRevision"]["arn"], None)
                for key in [k for k, v in _deployment_record.items() if v is record]:
                    del _deployment_record[key]
        known = {run.container_id for run in _runs.values()} | set(_created.values())
        for cid in states if asked else ():
            if cid not in known:
                _remove_container(cid)
    _sync_hosts()
    _ensure_proxies()


def _task_by_arn(arn):
    for regions in list(ecs_backends.values()):
        for backend in list(regions.values()):
            for tasks in list(backend.tasks.values()):
                if arn in tasks:
                    return tasks[arn]
    return None


def _scheduler():
    while True:
        try:
            _tick()
        except Exception:
            log(f"scheduler step failed:\n{traceback.format_exc()}")
        time.sleep(SCHEDULER_SECONDS)


# ---------------------------------------------------------------- the awslogs driver


def _new_log_lines(run):
    """(timestamp, line) of the container's output since the last call: from its json-file log
    when the engine writes one that this process can read, else from `docker logs --since`."""
    if run.log_path is None:
        path = docker("inspect", "-f", "{{.LogPath}}", run.container_id, timeout=10).stdout.strip()
        run.log_path = path if path and os.access(path, os.R_OK) else ""
    if run.log_path:
        try:
            with open(run.log_path, "rb") as f:
                f.seek(run.log_offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # only whole lines; the rest is read next time
        run.log_offset += end
        lines = []
        for raw in data[:end].splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            lines.append((entry.get("time", ""), entry.get("log", "").rstrip("\n")))
        return lines
    args = ["logs", "--timestamps"]
    if run.logs_since:
        args += ["--since", run.logs_since]
    out = docker(*args, run.container_id, timeout=10)
    lines = []
    for line in (out.stdout + out.stderr).splitlines():
        stamp, _, message = line.partition(" ")
        if run.logs_since and stamp <= run.logs_since:
            continue
        lines.append((stamp, message))
    if lines:
        run.logs_since = lines[-1][0]
    return lines


def _ship_logs(run):
    events = []
    for stamp, message in _new_log_lines(run):
        if not message:
            continue
        try:
            seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            continue
        fraction = "".join(itertools.takewhile(str.isdigit, stamp[20:]))
        millis = int((fraction + "000")[:3])
        events.append((seconds * 1000 + millis, {"timestamp": seconds * 1000 + millis, "message": message}))
    if not events:
        return
    events.sort(key=lambda e: e[0])
    group, stream, region = run.awslogs
    backend = logs_backends[run.task._account_id][region]
    with _lock:
        if group not in backend.groups:
            return  # ECS would fail the task; mldeploy always creates the group first
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream, [e for _, e in events])


def _log_shipper():
    while True:
        for run in list(_runs.values()):
            if run.awslogs:
                try:
                    _ship_logs(run)
                except Exception:
                    log(f"shipping logs of {run.container_id[:12]} failed:\n{traceback.format_exc()}")
        time.sleep(LOGS_SECONDS)


# ---------------------------------------------------------------- target health


def _matches(matcher, code):
    text = (matcher or {}).get("HttpCode", "200")
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= code <= int(high):
                return True
        elif part.strip() and int(part) == code:
            return True
    return False


def _check(run, timeout):
    for elbv2, arn in run.target_groups:
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            continue
        port = tg.health_check_port
        port = run.port if port in (None, "traffic-port") else int(port)
        try:
            conn = http.client.HTTPConnection(run.ip, port, timeout=timeout)
            conn.request("GET", tg.health_check_path or "/", headers={"User-Agent": "ELB-HealthChecker/2.0"})
            code = conn.getresponse().status
            conn.close()
        except TimeoutError:
            return False, "Target.Timeout", "Request timed out"
        except OSError:
            return False, "Target.FailedHealthChecks", "Health checks failed"
        if not _matches(getattr(tg, "matcher", None), code):
            return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{code}]"
    return True, None, None


def _health_settings(run):
    """(interval, timeout, healthy threshold, unhealthy threshold) of the task's target group,
    and whether its load balancer is active: health checks come from the load balancer's nodes."""
    for elbv2, arn in run.target_groups:
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            continue
        active = any(_active(lb) for lb_arn in tg.load_balancer_arns if (lb := elbv2.load_balancers.get(lb_arn)) is not None)
        return (
            float(tg.health_check_interval_seconds),
            float(tg.health_check_timeout_seconds),
            int(tg.healthy_threshold_count),
            int(tg.unhealthy_threshold_count),
            active,
        )
    return None


def _health_checker():
    """ALB's health checks, as https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
    describes them: a GET of the group's path every HealthCheckIntervalSeconds, failing after
    HealthCheckTimeoutSeconds; a registered target is `initial` until HealthyThresholdCount
    consecutive successes make it `healthy`, and UnhealthyThresholdCount consecutive failures
    make it `unhealthy`; a draining target is not checked."""
    while True:
        now = time.monotonic()
        for run in list(_runs.values()):
            if not run.target_groups or run.draining_until is not None or now < run.next_check:
                continue
            settings = _health_settings(run)
            if settings is None:
                continue
            interval, timeout, healthy_after, unhealthy_after, active = settings
            run.next_check = now + scaled(interval)
            if not active:
                continue  # the load balancer's nodes are not up yet: the target stays initial
            ok, reason, description = _check(run, max(scaled(timeout), MIN_CHECK_TIMEOUT))
            if run.draining_until is not None:
                continue
            if ok:
                run.failures, run.successes = 0, run.successes + 1
                if run.health != "healthy" and run.successes >= healthy_after:
                    run.health, run.reason, run.description = "healthy", None, None
            else:
                run.failures, run.successes = run.failures + 1, 0
                if run.health == "unhealthy" or run.failures >= unhealthy_after:
                    run.health, run.reason, run.description = "unhealthy", reason, description
        time.sleep(HEALTH_TICK)


_original_health_for = elbv2_models.FakeTargetGroup.health_for


def health_for(self, target, ec2_backend):
    for run in list(_runs.values()):
        if run.ip == target["Id"] and any(arn == self.arn for _, arn in run.target_groups):
            return elbv2_models.FakeHealthStatus(target["Id"], run.port, self.health_check_port, run.health, run.reason, run.description)
    return _original_health_for(self, target, ec2_backend)


# ---------------------------------------------------------------- load balancers


def _load_balancers():
    for regions in list(elbv2_backends.values()):
        for elbv2 in list(regions.values()):
            for lb in list(elbv2.load_balancers.values()):
                yield elbv2, lb


_lb_created: dict[str, float] = {}  # load balancer ARN -> when it was created (monotonic)
_original_lb_init = elbv2_models.FakeLoadBalancer.__init__


def lb_init(self, *args, **kwargs):
    _original_lb_init(self, *args, **kwargs)
    _lb_created[self.arn] = time.monotonic()


def activate(self):
    """moto makes a load balancer active the first time it is described; ALB takes minutes
    (LB_PROVISIONING_SECONDS)."""
    if self.state == "provisioning" and time.monotonic() - _lb_created.get(self.arn, 0.0) >= scaled(LB_PROVISIONING_SECONDS):
        self.state = "active"


def _active(lb):
    lb.activate()
    return lb.state == "active"


def _sync_hosts():
    """Adds a line for each load balancer's DNS name that has none. Lines are only ever appended
    while the sandbox runs: rewriting /etc/hosts in place empties it for a moment, and a name
    resolved in that moment (the registry's during a push, another load balancer's during a smoke
    test) is not found. `scripts/sandbox down` removes them all."""
    wanted = {lb.dns_name.lower() for _, lb in _load_balancers() if _active(lb)}
    try:
        with open(HOSTS_FILE) as f:
            text = f.read()
    except OSError:
        return
    present = {line.split()[1] for line in text.splitlines() if line.endswith(HOSTS_MARK) and len(line.split()) > 2}
    missing = sorted(wanted - present)
    if not missing:
        return
    try:
        with open(HOSTS_FILE, "a") as f:
            if text and not text.endswith("\n"):
                f.write("\n")
            f.write("".join(f"{_address(name)} {name} {HOSTS_MARK}\n" for name in missing))
    except OSError as e:
        log(f"cannot write {HOSTS_FILE}: {e}")


_proxies: dict[tuple[str, int], ThreadingHTTPServer] = {}
_round_robin = itertools.count()
_addresses: dict[str, str] = {}  # load balancer DNS name -> its loopback address
_addresses_lock = threading.Lock()  # not _lock: the scheduler holds that through docker calls


def _address(dns_name):
    """The load balancer's own loopback address, kept for the life of the process."""
    with _addresses_lock:
        if dns_name not in _addresses:
            n = len(_addresses) + 1
            _addresses[dns_name] = f"127.{ALB_NET}.{n // 250}.{n % 250 + 1}"
        return _addresses[dns_name]


def _ensure_proxies():
    for _, lb in _load_balancers():
        if not _active(lb):
            continue  # its DNS name does not answer yet
        address = _address(lb.dns_name.lower())
        for listener in list(lb.listeners.values()):
            key = (address, int(listener.port))
            if listener.protocol not in ("HTTP", "HTTPS") or key in _proxies:
                continue
            try:
                server = ThreadingHTTPServer(key, AlbProxy)
                if listener.protocol == "HTTPS":
                    server.socket = _tls_context(lb, key[1]).wrap_socket(server.socket, server_side=True)
            except (OSError, ssl.SSLError, KeyError) as e:
                log(f"cannot serve {lb.name}'s listener on {address}:{key[1]}: {e}")
                _proxies[key] = None
                continue
            server.daemon_threads = True
            _proxies[key] = server
            threading.Thread(target=server.serve_forever, daemon=True).start()
            log(f"{lb.name}'s {listener.protocol} listener on port {key[1]} answers at {address}:{key[1]}")


# ---------------------------------------------------------------- HTTPS listeners
# An HTTPS listener terminates TLS with its ACM certificate ("To use an HTTPS listener, you must
# deploy at least one SSL/TLS server certificate on your load balancer",
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/create-https-listener.html).
# With SNI it picks the listener's certificate whose names match the host name the client sent,
# and the default certificate when none does, or when the client sent none ("If the hostname
# provided by a client matches a single certificate in the certificate list, the load balancer
# selects this certificate ... If the hostname ... does not match any certificate in the
# certificate list, the load balancer selects the default certificate", same page). So a client
# that asks for the load balancer's own DNS name gets a certificate for the domain it serves, as
# on AWS (no ACM certificate can name *.elb.amazonaws.com). Here the certificate and its key are
# the ones ACM (moto) holds.

_contexts: dict[str, ssl.SSLContext] = {}  # certificate ARN -> a server context serving it


def _certificate(arn):
    """ACM's certificate bundle for an ARN (arn:aws:acm:<region>:<account>:certificate/<id>)."""
    parts = arn.split(":")
    return acm_backends[parts[4]][parts[3]].get_certificate(arn)


def _names(arn):
    try:
        bundle = _certificate(arn)
    except Exception:
        return []
    return [n.lower() for n in [bundle.common_name, *bundle.sans] if n]


def _covers(names, host):
    """Whether a certificate with these names is valid for the host (one wildcard label)."""
    host = host.lower()
    for name in names:
        if name == host or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:] and "." in host):
            return True
    return False


def _pem_of(arn):
    """A temporary file with the certificate, its chain and its key, as ACM holds them."""
    bundle = _certificate(arn)
    chain = bundle.chain if isinstance(bundle.chain, bytes) else (bundle.chain or b"")
    pem = tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False)
    pem.write(bundle.cert + b"\n" + chain + b"\n" + bundle.key)
    pem.close()
    return pem.name


def _context_for(arn):
    context = _contexts.get(arn)
    if context is None:
        pem = _pem_of(arn)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(pem)
        finally:
            os.unlink(pem)
        _contexts[arn] = context
    return context


def _listener_certificates(elbv2, listener):
    """The listener's certificates, its default first."""
    arns = [listener.certificate] if listener.certificate else []
    for c in getattr(listener, "certificates", None) or []:
        arn = c.get("CertificateArn") if isinstance(c, dict) else c
        if arn and arn not in arns:
            arns.append(arn)
    return arns


def _tls_context(lb, port):
    """The server context of the load balancer's HTTPS listener on `port`: each connection gets
    the listener's certificate its SNI host name selects, else the default one (see above)."""

    def certificates():
        for elbv2, each in _load_balancers():
            if each is lb:
                for listener in list(lb.listeners.values()):
                    if listener.protocol == "HTTPS" and int(listener.port) == port:
                        return _listener_certificates(elbv2, listener)
        return []

    def choose(sock, host, _):
        arns = certificates()
        if not arns:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        chosen = next((a for a in arns if host and _covers(_names(a), host)), arns[0])
        try:
            sock.context = _context_for(chosen)
        except Exception:
            log(f"cannot serve certificate {chosen}:\n{traceback.format_exc()}")
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    base.sni_callback = choose
    # A client that sends no SNI gets the default certificate.
    arns = certificates()
    if arns:
        pem = _pem_of(arns[0])
        try:
            base.load_cert_chain(pem)
        finally:
            os.unlink(pem)
    return base


def _values(config, key="Values"):
    """A condition's values, as moto keeps them from the query API (a list, or {"member": [...]})."""
    values = (config or {}).get(key) or []
    if isinstance(values, dict):
        values = values.get("member") or []
    return values if isinstance(values, list) else [values]


def _condition_holds(condition, handler):
    """One listener rule condition, as ALB evaluates it: values of a condition are alternatives,
    `*` and `?` are wildcards, host names and header values match case-insensitively, paths
    case-sensitively
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html)."""
    field = condition.get("Field")
    path = handler.path.partition("?")[0]
    if field == "path-pattern":
        values = _values(condition.get("PathPatternConfig")) or _values(condition)
        return any(fnmatch.fnmatchcase(path, v) for v in values)
    if field == "host-header":
        host = (handler.headers.get("Host") or "").split(":")[0].lower()
        values = _values(condition.get("HostHeaderConfig")) or _values(condition)
        return any(fnmatch.fnmatchcase(host, v.lower()) for v in values)
    if field == "http-header":
        config = condition.get("HttpHeaderConfig") or {}
        got = handler.headers.get(config.get("HttpHeaderName") or "")
        return got is not None and any(fnmatch.fnmatchcase(got.lower(), v.lower()) for v in _values(config))
    if field == "http-request-method":
        return handler.command in _values(condition.get("HttpRequestMethodConfig"))
    if field == "source-ip":
        ip = ipaddress.ip_address(handler.client_address[0])
        return any(ip in ipaddress.ip_network(v, strict=False) for v in _values(condition.get("SourceIpConfig")))
    if field == "query-string":
        query = dict(p.partition("=")[::2] for p in handler.path.partition("?")[2].split("&") if p)
        pairs = _values(condition.get("QueryStringConfig"))
        return any(
            (pair.get("Key") is None and any(fnmatch.fnmatchcase(v.lower(), pair.get("Value", "").lower()) for v in query.values()))
            or fnmatch.fnmatchcase(query.get(pair.get("Key"), "\0").lower(), pair.get("Value", "").lower())
            for pair in pairs
        )
    return False


def _rule_actions(listener, handler):
    """The actions of the first rule, lowest priority first, whose conditions all hold; None when
    none does (the default actions then apply): "Rules are evaluated in priority order, from the
    lowest value to the highest value" (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateRule.html)."""
    rules = sorted(listener._non_default_rules.values(), key=lambda r: int(r.priority))
    for rule in rules:
        if all(_condition_holds(c, handler) for c in rule.conditions or []):
            return rule.actions
    return None


_forward_turns = {}
_forward_turns_lock = threading.Lock()


def _forward_to(action):
    """The target group a forward action sends this request to: its one group, or one of its
    ForwardConfig's groups in proportion to their weights (0 to 999; a group of weight 0 gets
    nothing: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions).
    AWS documents the proportion, not how requests are drawn; the sandbox takes turns by smooth
    weighted round robin (each pick adds every group's weight to its credit and takes the group with
    the most, which pays the total back), so any run of requests splits in the configured proportion
    to within one request, and a test that counts answers never depends on chance."""
    if action.get("TargetGroupArn"):
        return action["TargetGroupArn"]
    groups = _values(action.get("ForwardConfig"), "TargetGroups")
    weighted = tuple((g.get("TargetGroupArn"), int(g.get("Weight", 1) or 0)) for g in groups)
    total = sum(w for _, w in weighted)
    if total <= 0:
        return weighted[0][0] if weighted else None
    with _forward_turns_lock:
        credit = _forward_turns.setdefault(weighted, [0] * len(weighted))
        for i, (_, weight) in enumerate(weighted):
            credit[i] += weight
        best = max(range(len(weighted)), key=lambda i: credit[i])
        credit[best] -= total
    return weighted[best][0]


HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "content-length"}


class AlbProxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _listener(self):
        """The listener of the load balancer whose address and port the request came to."""
        address, port = self.server.server_address[:2]
        for elbv2, lb in _load_balancers():
            if _address(lb.dns_name.lower()) != address:
                continue
            for listener in lb.listeners.values():
                if int(listener.port) == port:
                    return elbv2, listener
        return None, None

    def _handle(self):
        elbv2, listener = self._listener()
        if listener is None:
            return self._reply(503, b"no load balancer listener answers on this address and port\n")
        actions = _rule_actions(listener, self) or listener.default_actions
        action = sorted(actions, key=lambda a: int(a.data.get("Order", 1)))[0].data
        kind = action.get("Type")
        if kind == "redirect":
            rc = action.get("RedirectConfig", {})
            host = (self.headers.get("Host") or "").split(":")[0]
            proto = rc.get("Protocol", "#{protocol}").replace("#{protocol}", "http").lower()
            port = rc.get("Port", "#{port}").replace("#{port}", str(self.server.server_address[1]))
            path, _, query = self.path.partition("?")
            location = f"{proto}://{rc.get('Host', '#{host}').replace('#{host}', host)}:{port}{rc.get('Path', '#{path}').replace('#{path}', path)}"
            if query:
                location += "?" + query
            return self._reply(301 if rc.get("StatusCode", "HTTP_301") == "HTTP_301" else 302, headers=[("Location", location)])
        if kind == "fixed-response":
            fr = action.get("FixedResponseConfig", {})
            return self._reply(int(fr.get("StatusCode", 200)), (fr.get("MessageBody") or "").encode(), [("Content-Type", fr.get("ContentType", "text/plain"))])
        tg_arn = _forward_to(action)
        # A draining target gets no new requests, even when the load balancer fails open.
        runs = [r for r in list(_runs.values()) if any(arn == tg_arn for _, arn in r.target_groups) and r.draining_until is None]
        healthy = [r for r in runs if r.health == "healthy"]
        pool = healthy or runs  # ALB fails open when no target is healthy
        if not pool:
            return self._reply(503, b"503 Service Temporarily Unavailable\n", [("Content-Type", "text/plain")])
        run = pool[next(_round_robin) % len(pool)]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Proto"] = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        try:
            conn = http.client.HTTPConnection(run.ip, run.port, timeout=30)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        except TimeoutError:
            return self._reply(504, b"504 Gateway Time-out\n", [("Content-Type", "text/plain")])
        except OSError:
            return self._reply(502, b"502 Bad Gateway\n", [("Content-Type", "text/plain")])
        kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        self._reply(resp.status, data, kept)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _handle


# ---------------------------------------------------------------- moto's handlers, patched

_original_create_response = Responses.create_service
_original_update = Backend.update_service
_original_list_tasks = Backend.list_tasks
_original_describe_tasks = Backend.describe_tasks
_original_describe_services = Backend.describe_services


def _roles_not_propagated(load_balancers):
    """CreateService and UpdateService assume the role a load balancer's advancedConfiguration
    names and refuse one IAM has not propagated yet, in the words ECS uses for a role it cannot
    assume to validate the target group (a public report of the message:
    "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS
    service role being passed has the proper permissions."), which the Terraform provider
    retries for minutes (internal/service/ecs/service.go). The delay is `_iam_changed`'s."""
    for lb in load_balancers or []:
        role_arn = (lb.get("advancedConfiguration") or {}).get("roleArn")
        if role_arn and time.monotonic() < _iam_effective.get(role_arn.rsplit("/", 1)[-1], 0.0):
            raise _client_error(
                "InvalidParameterException",
                "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.",
            )


def create_service_response(self):
    problem = ecs_strategies.validate(self._get_param("deploymentConfiguration"), self._get_param("loadBalancers"))
    if problem is not None:
        raise _client_error("InvalidParameterException", problem)
    _roles_not_propagated(self._get_param("loadBalancers"))
    result = _original_create_response(self)
    with _lock:
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        config = self._get_param("deploymentConfiguration")
        if config:
            service.deployment_configuration = config
        # moto drops the grace period; the scheduler needs it (see `_grace`).
        service.health_check_grace_period_seconds = self._get_param("healthCheckGracePeriodSeconds")
        service.running_count = 0
        service.pending_count = 0
        service.deployments = [_new_deployment(service, service.desired_count)] if service.deployments else []
        if service.deployments:
            ecs_strategies.opened(service, service.deployments[0], [])
    return result


def update_service(self, props):
    with _lock:
        cluster = props.get("cluster", "default")
        service = self._get_service(cluster, props["service"].split("/")[-1])
        problem = ecs_strategies.validate(
            props.get("deployment_configuration") or getattr(service, "deployment_configuration", None),
            props.get("load_balancers") if props.get("load_balancers") is not None else service.load_balancers,
        )
        if problem is not None:
            raise _client_error("InvalidParameterException", problem)
        _roles_not_propagated(props.get("load_balancers"))
        # Switching strategies, as ECS's guides describe it
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/update-rolling-to-bluegreen.html,
        # update-bluegreen-to-rolling.html): "If a deployment is in progress, you can't migrate
        # it" (refused here), and the new strategy is used "the next time you update the service"
        # (a deployment this same call opens runs with the strategy the service had).
        config_before = dict(getattr(service, "deployment_configuration", None) or {})
        new_config = props.get("deployment_configuration")
        rolling = lambda c: ecs_strategies.strategy(c) == "ROLLING"  # noqa: E731
        switching = new_config is not None and rolling(new_config) != rolling(config_before)
        if switching and (len(service.deployments) > 1 or any(d.get("rolloutState") == "IN_PROGRESS" for d in service.deployments)):
            raise _client_error(
                "InvalidParameterException",
                "The deployment strategy cannot be changed while a deployment is in progress. Wait for the current deployment to complete.",
            )
        before = service.task_definition
        network_before = json.dumps(service.network_configuration, sort_keys=True)
        wanted = props.get("task_definition")
        force = props.get("force_new_deployment", False)
        keep = list(service.deployments)
        service = _original_update(self, dict(props))
        service.deployments = keep  # moto rewrites deployments[0]; the scheduler owns them
        if wanted:
            # ECS stores the full ARN whatever form the request used.
            service.task_definition = self.describe_task_definition(wanted).arn
        network_changed = json.dumps(service.network_configuration, sort_keys=True) != network_before
        # ECS opens a deployment for a new task definition or network, or when forced.
        if service.task_definition != before or network_changed or force:
            _open_deployment(service, config=config_before if switching else None)
        else:
            primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)
            if primary is not None:
                primary["desiredCount"] = service.desired_count
        return service


# Reads take the scheduler's lock: it adds tasks and rewrites deployments from its own thread.
def describe_tasks(self, cluster_str, tasks):
    with _lock:
        return _original_describe_tasks(self, cluster_str, tasks)


def describe_services(self, cluster_str, names):
    with _lock:
        return _original_describe_services(self, cluster_str, names)


def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None, service_name=None, desiredStatus=None):
    # "The default status filter is RUNNING, which shows tasks that Amazon ECS has set the desired
    # status to RUNNING" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html);
    # moto lists every task without one.
    with _lock:
        tasks = _original_list_tasks(self, cluster_str, container_instance, family, started_by, None, desiredStatus or "RUNNING")
    if service_name:
        group = f"service:{service_name.split('/')[-1]}"
        tasks = [t for t in tasks if t.group == group]
    return tasks


_original_delete_cluster = Backend.delete_cluster


class ClusterContainsServices(JsonRESTError):
    def __init__(self):
        super().__init__(
            "ClusterContainsServicesException",
            "The Cluster cannot be deleted while Services are active.",
        )


_original_delete_service = Backend.delete_service


def delete_service(self, cluster_name, service_name, force):
    """DeleteService: "the service status moves from ACTIVE to DRAINING, and the service is no
    longer visible in the console or in the ListServices API operation. After all tasks have
    transitioned to either STOPPING or STOPPED status, the service status moves from DRAINING to
    INACTIVE" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
    moto makes it INACTIVE at once; `_tick` moves it on once its tasks are gone."""
    with _lock:
        service = _original_delete_service(self, cluster_name, service_name, force)
        service.status = "DRAINING"
        return service


def _finish_deleting(service):
    """A DRAINING service whose tasks are all stopping or stopped becomes INACTIVE."""
    group = f"service:{service.name}"
    running = any(run.service_arn == service.arn for run in _runs.values())
    starting = any((task := _task_by_arn(arn)) is not None and task.group == group for arn in _starting)
    if not running and not starting:
        service.status = "INACTIVE"


class ClusterContainsTasks(JsonRESTError):
    def __init__(self):
        super().__init__(
            "ClusterContainsTasksException",
            "The Cluster cannot be deleted while Tasks are active.",
        )


def delete_cluster(self, cluster_str):
    """ECS refuses to delete a cluster that still has ACTIVE services or active tasks
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html:
    ClusterContainsServicesException, ClusterContainsTasksException); moto deletes it anyway."""
    cluster = self._get_cluster(cluster_str)
    if any(s.cluster_name == cluster.name and s.status == "ACTIVE" for s in self.services.values()):
        raise ClusterContainsServices()
    with _lock:
        if any(t.last_status != "STOPPED" for t in (self.tasks.get(cluster.name) or {}).values()):
            raise ClusterContainsTasks()
    return _original_delete_cluster(self, cluster_str)


def _iam_changed(backend, role_name):
    """A role change takes effect IAM_DELAY_SECONDS (or the role's IAM_DELAY_TAG) AWS seconds
    later: IAM is eventually consistent,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency"""
    delay = IAM_DELAY_SECONDS
    try:
        tags = backend.get_role(role_name).tags  # moto keeps a role's tags as [{"Key", "Value"}]
        delay = float(next((t["Value"] for t in tags if t.get("Key") == IAM_DELAY_TAG), delay))
    except Exception:  # no such role (moto raises after this), or a tag that is not a number
        pass
    _iam_effective[role_name] = time.monotonic() + scaled(delay)


_original_create_role = IAMBackend.create_role
_original_put_role_policy = IAMBackend.put_role_policy
_original_update_assume_role_policy = IAMBackend.update_assume_role_policy
_original_attach_role_policy = IAMBackend.attach_role_policy


def create_role(self, role_name, *args, **kwargs):
    role = _original_create_role(self, role_name, *args, **kwargs)
    _iam_changed(self, role_name)
    return role


def put_role_policy(self, role_name, *args, **kwargs):
    _original_put_role_policy(self, role_name, *args, **kwargs)
    _iam_changed(self, role_name)


_aws_policies = None  # name -> AWS managed policy data, read on first use


def attach_role_policy(self, policy_arn, role_name):
    """AWS's managed policies exist in every account; moto loads its copies of them only with
    MOTO_IAM_LOAD_MANAGED_POLICIES (over a thousand, on every reset), so one is loaded here when
    a role first attaches it. Attaching is a role change, with IAM's delay."""
    global _aws_policies
    prefix = "arn:aws:iam::aws:policy/"
    if policy_arn.startswith(prefix) and policy_arn not in {p.arn for p in self.managed_policies.values()}:
        if _aws_policies is None:
            _aws_policies = json.loads(aws_managed_policies_data)
        data = _aws_policies.get(policy_arn[len(prefix):].rsplit("/", 1)[-1])
        if data is not None:
            policy = AWSManagedPolicy.from_data(policy_arn.rsplit("/", 1)[-1], self.account_id, self.region_name, data)
            self.managed_policies[policy.arn] = policy
    _original_attach_role_policy(self, policy_arn, role_name)
    _iam_changed(self, role_name)


def update_assume_role_policy(self, role_name, *args, **kwargs):
    _original_update_assume_role_policy(self, role_name, *args, **kwargs)
    _iam_changed(self, role_name)


_original_delete_security_group = EC2Backend.delete_security_group
_original_delete_subnet = EC2Backend.delete_subnet


def delete_security_group(self, name=None, group_id=None):
    """DependencyViolation while a network interface uses the group:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html"""
    group = self.get_security_group_by_name_or_id(group_id or name) if (group_id or name) else None
    if group is not None:
        for eni in list(self.enis.values()):
            if any(getattr(g, "id", g) == group.id for g in eni.group_set):
                raise DependencyViolationError(f"resource {group.id} has a dependent object")
    return _original_delete_security_group(self, name=name, group_id=group_id)


def delete_subnet(self, subnet_id):
    """DependencyViolation while a network interface is in the subnet:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSubnet.html"""
    for eni in list(self.enis.values()):
        if getattr(eni.subnet, "id", eni.subnet) == subnet_id:
            raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
    return _original_delete_subnet(self, subnet_id)


_original_task_definition_init = ecs_models.TaskDefinition.__init__


_original_filter_log_events = LogsResponse.filter_log_events


def filter_log_events(self):
    """FilterLogEvents with `logStreamNamePrefix`, which moto 5.2.5 ignores (it returns every
    stream's events): "Filters the results to include only events from log streams that have
    names starting with this prefix. If you specify a value for both logStreamNamePrefix and
    logStreamNames, the action returns an InvalidParameterException error."
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html)"""
    body = json.loads(self.body or "{}")
    prefix = body.get("logStreamNamePrefix")
    if prefix is None:
        return _original_filter_log_events(self)
    if body.get("logStreamNames"):
        raise LogsInvalidParameter(
            "Cannot specify both logStreamNames and logStreamNamePrefix", parameter="logStreamNamePrefix"
        )
    group = self.logs_backend.groups.get(body.get("logGroupName"))
    names = [n for n in (group.streams if group else {}) if n.startswith(prefix)]
    if not names:
        return json.dumps({"events": [], "searchedLogStreams": []})
    del body["logStreamNamePrefix"]
    body["logStreamNames"] = names
    self.body = json.dumps(body)
    return _original_filter_log_events(self)


def task_definition_init(self, *args, **kwargs):
    _original_task_definition_init(self, *args, **kwargs)
    self.registered_at = utcnow()  # ECS returns registeredAt; moto keeps none


# moto sets an interface's DNS name only in VPCs with DNS host names on, and its ECS tasks read it.
NetworkInterface.private_dns_name = None
ecs_models.TaskDefinition.__init__ = task_definition_init
EC2Backend.delete_security_group = delete_security_group
EC2Backend.delete_subnet = delete_subnet
IAMBackend.create_role = create_role
IAMBackend.put_role_policy = put_role_policy
IAMBackend.update_assume_role_policy = update_assume_role_policy
IAMBackend.attach_role_policy = attach_role_policy
Backend.delete_cluster = delete_cluster
Backend.delete_service = delete_service
LogsResponse.filter_log_events = filter_log_events
Responses.create_service = create_service_response
Backend.update_service = update_service
Backend.list_tasks = list_tasks
Backend.describe_tasks = describe_tasks
Backend.describe_services = describe_services
Responses.list_service_deployments = list_service_deployments
Responses.describe_service_revisions = describe_service_revisions
Responses.describe_service_deployments = describe_service_deployments
Responses.continue_service_deployment = continue_service_deployment
Responses.stop_service_deployment = stop_service_deployment
elbv2_models.FakeTargetGroup.health_for = health_for
elbv2_models.FakeLoadBalancer.__init__ = lb_init
elbv2_models.FakeLoadBalancer.activate = activate
domain_ext.install(_load_balancers, _address)
task_credentials.install(lambda role_name: _iam_effective.get(role_name, 0.0))
ecs_strategies.install(sys.modules[__name__])
ecs_run_task.install(sys.modules[__name__])
vpc_egress.install(scaled)

if __name__ == "__main__":
    from moto.server import main
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    # Every request is held to AWS's published API models first (api_contract.py).
    api_contract.install(DomainDispatcherApplication)

    # Containers of an earlier server's tasks belong to no task now.
    leftover = docker("ps", "-aq", "--filter", f"label={TASK_LABEL}").stdout.split()
    if leftover:
        docker("rm", "-f", *leftover)
    threading.Thread(target=_scheduler, daemon=True, name="ecs-scheduler").start()
    threading.Thread(target=_remover, daemon=True, name="container-remover").start()
    threading.Thread(target=_health_checker, daemon=True, name="alb-health").start()
    threading.Thread(target=_log_shipper, daemon=True, name="awslogs").start()
    main(sys.argv[1:])
