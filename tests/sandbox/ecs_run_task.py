"""ECS's standalone tasks (RunTask, StopTask), for moto_ext.py: moto 5.2.5 records a task RunTask
starts and never runs it; StopTask marks it STOPPED at once.

What ECS does, as its API reference describes it
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html):

- RunTask starts `count` tasks of a task definition, outside any service. A task definition in
  the awsvpc network mode (every Fargate one) needs a networkConfiguration: without one RunTask
  is refused with InvalidParameterException ("Network Configuration must be provided when
  networkMode 'awsvpc' is specified.").
- Each task goes PROVISIONING, PENDING and RUNNING as a service's does (moto_ext's `_provision`,
  `_pull` and `_launch`: the same container, environment, secrets and egress checks), with its
  overrides applied (containerOverrides: command replaces the task definition's, environment adds
  or overrides variables: API_ContainerOverride.html). Nothing replaces it when it stops: its
  essential container exiting stops it (stopCode EssentialContainerExited, "Essential container in
  task exited", the container's exitCode), and one that cannot start stops with the reason
  (TaskFailedToStart).
- StopTask is "the equivalent of docker stop": the task's desiredStatus is STOPPED at once and
  its containers are stopped after (here: killed, exit code 137, on the scheduler's next step);
  stoppedReason is the reason given, stopCode UserInitiated. A service's task stopped so is
  replaced by the service scheduler.
"""

import time

from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend as Backend

m = None  # moto_ext, set by install()

# A container that `docker rm -f` kills exits with SIGKILL's code, as one that outlives docker
# stop's timeout does.
KILLED = 137


class Standalone:
    """What moto_ext's `_pull` and `_launch` read of a task's service, for a task RunTask started:
    its network configuration, and no load balancer."""

    def __init__(self, task, network_configuration):
        self.name = task.task_definition_arn.rsplit("/", 1)[-1].split(":")[0]
        self.arn = task.task_arn
        self.cluster_name = task.cluster_name
        self.network_configuration = network_configuration or {}
        self.load_balancers = []


_standalone: dict = {}  # task arn -> (ecs backend, Standalone)
_stops: dict = {}  # task arn -> the reason StopTask gave, until the scheduler stops the task


def run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type, networking_configuration=None, *rest):
    td = self.describe_task_definition(task_definition_str)
    awsvpc = (networking_configuration or {}).get("awsvpcConfiguration")
    if td.network_mode == "awsvpc" and not awsvpc:
        raise InvalidParameterException("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    with m._lock:
        tasks = _original_run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type, networking_configuration, *rest)
        for task in tasks:
            m._provision(task, td)
            _standalone[task.task_arn] = (self, Standalone(task, networking_configuration))
    return tasks


def stop_task(self, cluster_str, task_str, reason):
    task_id = task_str.split("/")[-1]
    cluster = self._get_cluster(cluster_str)
    with m._lock:
        for arn, task in (self.tasks.get(cluster.name) or {}).items():
            if arn.endswith(task_id) and (arn in m._runs or arn in m._starting or arn in _standalone):
                # StopTask returns the task still running, bound to stop (API_StopTask.html).
                task.desired_status = "STOPPED"
                _stops[arn] = reason or "Task stopped by user"
                return task
    return _original_stop_task(self, cluster_str, task_str, reason)


def carry_out_stops():
    """Stops the tasks StopTask named since the last step, each with its reason."""
    for arn, reason in list(_stops.items()):
        del _stops[arn]
        m._starting.pop(arn, None)
        task = m._task_by_arn(arn)
        if task is None or task.last_status == "STOPPED":
            continue
        m._stop_task(task, reason, KILLED if arn in m._runs else None)
        task.stop_code = "UserInitiated"


def schedule(states):
    """One step of every standalone task; returns the arns of those still alive."""
    alive = set()
    now = time.monotonic()
    for arn, (backend, place) in list(_standalone.items()):
        task = m._task_by_arn(arn)
        if task is None or task.last_status == "STOPPED":
            del _standalone[arn]
            continue
        alive.add(arn)
        if arn in m._starting:
            m._advance_start(backend, place, task, now)
            continue
        run = m._runs.get(arn)
        if run is None:
            continue
        # A container started since the engine was last asked is not in its answer yet.
        running, code, _ = states.get(run.container_id, (run.started > m._states_at, None, None))
        if not running:
            m._stop_task(task, "Essential container in task exited", code)
    return alive


def _resource_requirements(task_definition):
    """moto's tally of a task's CPU, memory and host ports, for placing it on an EC2 instance,
    with a container's memory optional: a Fargate task may give memory at the task level only
    ("memory ... is optional for tasks hosted on Fargate",
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html), and
    moto's own tally adds None for such a container."""
    wanted = {"CPU": 0, "MEMORY": 0, "PORTS": [], "PORTS_UDP": []}
    for container in task_definition.container_definitions:
        wanted["CPU"] += container.get("cpu") or 0
        wanted["MEMORY"] += container.get("memory") or container.get("memoryReservation") or 0
        wanted["PORTS"] += [p["hostPort"] for p in container.get("portMappings") or [] if "hostPort" in p]
    return wanted


_original_run_task = Backend.run_task
_original_stop_task = Backend.stop_task


def install(moto_ext):
    global m
    m = moto_ext
    Backend.run_task = run_task
    Backend._calculate_task_resource_requirements = staticmethod(_resource_requirements)
    Backend.stop_task = stop_task
