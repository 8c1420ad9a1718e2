"""ECS's blue/green, canary and linear deployments, for moto_ext.py; moto 5.2.5 has none of them.

What ECS does, as its developer guide describes it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html,
canary-deployment.html, linear-deployment.html, and the lifecycle stages of
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html):

- A service whose deploymentConfiguration.strategy is BLUE_GREEN, CANARY or LINEAR needs, for its
  load balancer, an advancedConfiguration: the alternate target group, the production and test
  listener rules, and the role ECS assumes to change them
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html).
  CreateService and UpdateService refuse one without it, and refuse a PAUSE hook at
  TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT ("PAUSE hooks cannot be configured at
  TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages", API_DeploymentLifecycleHook).
- Each deployment starts the new revision (green) in the target group that takes no production
  traffic, while the old one (blue) keeps serving from the other. Its lifecycle stages follow in
  order: SCALE_UP (green tasks start, registered in green's target group only), POST_SCALE_UP,
  TEST_TRAFFIC_SHIFT (the test listener rule forwards to green), POST_TEST_TRAFFIC_SHIFT,
  PRODUCTION_TRAFFIC_SHIFT (the production rule's weights move to green: all at once for
  BLUE_GREEN; canaryPercent, then the rest after canaryBakeTimeInMinutes, for CANARY; stepPercent
  every stepBakeTimeInMinutes for LINEAR, with the documented defaults 5 %/10 min and 10 %/6 min),
  POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME (bakeTimeInMinutes, blue still running) and CLEAN_UP
  (blue's tasks drained and stopped). Then the service deployment is SUCCESSFUL and green's
  target group is production's.
- ECS changes the rules with the role of advancedConfiguration. A role that does not exist yet
  for IAM (moto_ext's IAM delay), does not trust ecs.amazonaws.com, or whose policies do not allow
  elasticloadbalancing:ModifyRule on the rule fails the deployment, which rolls back
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html).
- PAUSE hooks (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html):
  at a stage a PAUSE hook names, the deployment waits; DescribeServiceDeployments shows the hook in
  lifecycleHookDetails (hookId, AWAITING_ACTION, expiresAt, timeoutAction) until
  ContinueServiceDeployment CONTINUEs or ROLLBACKs it, or its timeout (timeoutInMinutes, default
  1440; action default ROLLBACK) takes its action. AWS_LAMBDA hooks are not run here (there is no
  Lambda); a deployment with one fails rather than pretend it passed.
- Rollback (a hook's ROLLBACK, StopServiceDeployment, the circuit breaker while green scales up):
  while blue still runs, both rules forward to blue again and green's tasks are drained; the
  service deployment goes ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html).
"""

import json
import time
import uuid

from moto.iam.models import iam_backends

STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")
PAUSE_FORBIDDEN = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
STAGES = (
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
)
# ALB's weights are whole numbers from 0 to 999
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions):
# a share of p percent is p*10 out of 1000, so 0.1 % steps are exact.
WEIGHT_SCALE = 10

m = None  # moto_ext, set by install()


def strategy(config):
    return (config or {}).get("strategy") or "ROLLING"


def validate(config, load_balancers):
    """CreateService/UpdateService's checks of a strategy's requirements; the message or None."""
    kind = strategy(config)
    if kind == "ROLLING":
        return None
    if kind not in STRATEGIES:
        return f"Invalid deployment strategy {kind}."
    for hook in (config or {}).get("lifecycleHooks") or []:
        if (hook.get("targetType") or "AWS_LAMBDA") == "PAUSE":
            bad = [s for s in hook.get("lifecycleStages") or [] if s in PAUSE_FORBIDDEN]
            if bad:
                return f"PAUSE hooks cannot be configured at {', '.join(bad)}."
    for lb in load_balancers or []:
        advanced = lb.get("advancedConfiguration") or {}
        missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn") if not advanced.get(k)]
        if missing:
            return f"A {kind} deployment needs the load balancer's advancedConfiguration with {', '.join(missing)}."
    return None


class Shift:
    """One blue/green, canary or linear deployment in progress."""

    def __init__(self, service, deployment, blue, lb, config):
        config = dict(config)
        self.kind = strategy(config)
        self.config = config
        self.service_arn = service.arn
        self.id = deployment["id"]
        self.blue = blue  # the ECS deployment that served before (None for a first one)
        advanced = lb["advancedConfiguration"]
        self.role_arn = advanced["roleArn"]
        self.production_rule = advanced["productionListenerRule"]
        self.test_rule = advanced.get("testListenerRule")
        self.primary_tg = lb["targetGroupArn"]
        self.alternate_tg = advanced["alternateTargetGroupArn"]
        self.container_port = lb.get("containerPort")
        # Blue is the service's targetGroupArn, green its alternateTargetGroupArn, as the
        # service's load-balancer record says: ECS swaps the two in that record when a deployment
        # succeeds (see `_swap_groups`), so they alternate from one deployment to the next. A
        # request that sends a fixed pair back after a swap is taken at its word, as on AWS
        # (hashicorp/terraform-provider-aws#45678: Terraform re-sending its load_balancer block
        # made every deployment register the new tasks in the same group): green is then the
        # group production already forwards to, and the new revision takes production traffic
        # from its first healthy task, before any test or hook.
        self.blue_tg = self.primary_tg
        self.green_tg = self.alternate_tg
        self.stage = "SCALE_UP"
        self.stage_until = None  # a timed stage's end (monotonic)
        self.percent = 0.0  # production traffic on green
        self.hooks = []  # [{hookId, stage, targetType, status, expires (monotonic), timeoutAction}]
        self.done = False
        record = m._deployment_record.get(self.id)
        if record is not None:
            record["lifecycleStage"] = self.stage
            record["hooks"] = self.hooks  # DescribeServiceDeployments reads them, during and after

    # ------------------------------------------------------------------ what it changes

    def _elbv2(self, arn):
        for regions in list(m.elbv2_backends.values()):
            for elbv2 in list(regions.values()):
                if arn in elbv2.target_groups:
                    return elbv2
        return None

    def role_problem(self):
        """Why ECS cannot change the rules with the role, or None (see the module's docstring)."""
        name = self.role_arn.rsplit("/", 1)[-1]
        account = self.role_arn.split(":")[4] if self.role_arn.count(":") >= 5 else None
        try:
            role = iam_backends[account]["global"].get_role(name)
        except Exception:
            return f"ECS was unable to assume the role '{self.role_arn}'"
        if time.monotonic() < m._iam_effective.get(name, 0.0):
            return f"ECS was unable to assume the role '{self.role_arn}'"
        trust = role.assume_role_policy_document
        trust = json.loads(trust) if isinstance(trust, str) else trust
        trusted = any(
            s.get("Effect") == "Allow"
            and "ecs.amazonaws.com" in ([s.get("Principal", {}).get("Service")] if isinstance(s.get("Principal", {}).get("Service"), str) else s.get("Principal", {}).get("Service") or [])
            for s in (trust or {}).get("Statement", [])
        )
        if not trusted:
            return f"ECS was unable to assume the role '{self.role_arn}': its trust policy does not name ecs.amazonaws.com"
        for rule in [self.production_rule] + ([self.test_rule] if self.test_rule else []):
            if not m.role_allows(role, "elasticloadbalancing:ModifyRule", rule):
                return f"User: {self.role_arn} is not authorized to perform: elasticloadbalancing:ModifyRule on resource: {rule}"
        return None

    def _forward(self, rule_arn, green_percent):
        elbv2 = self._elbv2(self.green_tg)
        green = round(green_percent * WEIGHT_SCALE)
        weights = [(self.blue_tg, 100 * WEIGHT_SCALE - green), (self.green_tg, green)]
        if green == 0:
            weights = [(self.blue_tg, 1), (self.green_tg, 0)]
        elif green == 100 * WEIGHT_SCALE:
            weights = [(self.blue_tg, 0), (self.green_tg, 1)]
        action = {
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": w} for tg, w in weights]},
        }
        elbv2.modify_rule(rule_arn, [], [action])

    def _shift(self, rule_arn, green_percent):
        """Changes a rule as ECS does, with the role; False (and a rollback) when it cannot."""
        problem = self.role_problem()
        if problem is not None:
            self.fail(problem)
            return False
        self._forward(rule_arn, green_percent)
        return True

    # ------------------------------------------------------------------ stages

    def _enter(self, stage):
        self.stage = stage
        self.stage_until = None
        record = m._deployment_record.get(self.id)
        if record is not None:
            record["lifecycleStage"] = stage
            record["updatedAt"] = m.utcnow()
        for hook in self.config.get("lifecycleHooks") or []:
            if stage not in (hook.get("lifecycleStages") or []):
                continue
            kind = hook.get("targetType") or "AWS_LAMBDA"
            if kind != "PAUSE":
                self.fail(f"the sandbox runs no Lambda: lifecycle hook {hook.get('hookTargetArn')} at {stage} cannot run")
                return
            timeout = hook.get("timeoutConfiguration") or {}
            minutes = float(timeout.get("timeoutInMinutes") or 1440)
            self.hooks.append({
                "hookId": f"ecs-pause-{uuid.uuid4().hex}",
                "stage": stage,
                "targetType": "PAUSE",
                "status": "AWAITING_ACTION",
                "expires": time.monotonic() + m.scaled(minutes * 60),
                # When it expires on the sandbox's clock (the wall time of the scaled expiry),
                # so a client that reads expiresAt sees the deadline the hook really has.
                "expiresAt": time.time() + m.scaled(minutes * 60),
                "timeoutAction": timeout.get("action") or "ROLLBACK",
            })

    def _held(self):
        """Whether a PAUSE hook of this stage still waits; a timed-out one takes its action."""
        now = time.monotonic()
        for hook in self.hooks:
            if hook["stage"] != self.stage or hook["status"] != "AWAITING_ACTION":
                continue
            if now < hook["expires"]:
                return True
            hook["status"] = "TIMED_OUT"
            if hook["timeoutAction"] == "ROLLBACK":
                self.rollback(f"lifecycle hook {hook['hookId']} timed out")
                return True
        return False

    def advance(self, backend, service, deployment, ready):
        """One scheduler step; `ready` says green's tasks all run and are healthy."""
        if self.done:
            return
        if self.stage == "SCALE_UP":
            if ready:
                self._enter("POST_SCALE_UP")
            return
        if self._held():
            return
        now = time.monotonic()
        if self.stage == "POST_SCALE_UP":
            self._enter("TEST_TRAFFIC_SHIFT")
        elif self.stage == "TEST_TRAFFIC_SHIFT":
            if self.test_rule is None or self._shift(self.test_rule, 100.0):
                self._enter("POST_TEST_TRAFFIC_SHIFT")
        elif self.stage == "POST_TEST_TRAFFIC_SHIFT":
            self._enter("PRODUCTION_TRAFFIC_SHIFT")
        elif self.stage == "PRODUCTION_TRAFFIC_SHIFT":
            if self.stage_until is not None and now < self.stage_until:
                return
            step, bake = self._next_step()
            if not self._shift(self.production_rule, step):
                return
            self.percent = step
            if step >= 100.0:
                self._enter("POST_PRODUCTION_TRAFFIC_SHIFT")
            else:
                self.stage_until = now + m.scaled(bake * 60)
        elif self.stage == "POST_PRODUCTION_TRAFFIC_SHIFT":
            self._enter("BAKE_TIME")
            self.stage_until = now + m.scaled(float(self.config.get("bakeTimeInMinutes") or 0) * 60)
        elif self.stage == "BAKE_TIME":
            if now >= self.stage_until:
                self._enter("CLEAN_UP")
        elif self.stage == "CLEAN_UP":
            old = [t for d in service.deployments if d is not deployment for t in m._service_tasks(backend, service, d["id"])]
            for task in old:
                m._drain(task, f"Scaling activity initiated by (deployment {deployment['id']})")
            draining = any(m._runs.get(t.task_arn) is not None and m._runs[t.task_arn].service_arn == service.arn for t in m._draining)
            if not any(t.task_arn in m._runs or t.task_arn in m._starting for t in old) and not draining:
                self.done = True
                deployment.update(rolloutState="COMPLETED", rolloutStateReason=f"ECS deployment {deployment['id']} completed.", updatedAt=m.utcnow())
                m._completed_td[service.arn] = deployment["taskDefinition"]
                m._service_deployment_finished(deployment["id"], completed=True)
                self._swap_groups(service)
                service.deployments = [deployment]
                m._event(service, "has reached a steady state.")
                _shifts.pop(self.id, None)

    def _swap_groups(self, service):
        """A successful deployment leaves green serving: ECS records it as the service's target
        group and the old blue as the alternate, which the next deployment starts its tasks in
        ("the production target group alternates": the developer guide's blue/green pages,
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html,
        and DescribeServices' loadBalancers,
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LoadBalancer.html).
        A rollback leaves the record as it was: blue still serves."""
        for lb in service.load_balancers or []:
            advanced = lb.get("advancedConfiguration")
            if not advanced or lb.get("targetGroupArn") != self.blue_tg:
                continue
            if advanced.get("alternateTargetGroupArn") != self.green_tg:
                continue
            lb["targetGroupArn"], advanced["alternateTargetGroupArn"] = self.green_tg, self.blue_tg

    def _next_step(self):
        """The production share after the next step, and the bake before the one after (minutes)."""
        if self.kind == "CANARY":
            canary = self.config.get("canaryConfiguration") or {}
            if self.percent == 0.0:
                return float(canary.get("canaryPercent") or 5.0), float(canary.get("canaryBakeTimeInMinutes") if canary.get("canaryBakeTimeInMinutes") is not None else 10)
            return 100.0, 0.0
        if self.kind == "LINEAR":
            linear = self.config.get("linearConfiguration") or {}
            step = float(linear.get("stepPercent") or 10.0)
            bake = float(linear.get("stepBakeTimeInMinutes") if linear.get("stepBakeTimeInMinutes") is not None else 6)
            return min(100.0, round(self.percent + step, 1)), bake
        return 100.0, 0.0

    # ------------------------------------------------------------------ rolling back

    def fail(self, reason):
        self.rollback(reason)

    def rollback(self, reason, superseded=False):
        """Both rules back to blue (when ECS may change them), green drained, blue PRIMARY again
        (unless a newer deployment supersedes this one: UpdateService has set its revision)."""
        if self.done:
            return
        self.done = True
        _shifts.pop(self.id, None)
        backend, service = _find_service(self.service_arn)
        record = m._deployment_record.get(self.id)
        now = m.utcnow()
        if record is not None:
            record.update(status="ROLLBACK_IN_PROGRESS", statusReason=reason, updatedAt=now)
        moved = self.percent > 0 or self.stage not in ("SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT")
        restored = True
        if moved or self.test_rule is not None:
            if self.role_problem() is None:
                self._forward(self.production_rule, 0.0)
                if self.test_rule is not None:
                    self._forward(self.test_rule, 0.0)
            else:
                restored = not moved
        if service is None:
            return
        green = next((d for d in service.deployments if d["id"] == self.id), None)
        for task in m._service_tasks(backend, service, self.id):
            m._drain(task, f"Scaling activity initiated by (deployment {self.id})")
        if green is not None:
            green.update(status="ACTIVE", rolloutState="FAILED", rolloutStateReason=f"ECS deployment {self.id} rolled back: {reason}", updatedAt=now)
        if self.blue is not None and self.blue in service.deployments:
            self.blue["status"] = "PRIMARY"
            self.blue["updatedAt"] = now
            if not superseded:
                service.task_definition = self.blue["taskDefinition"]
            m._event(service, f"(deployment {self.id}) rolled back to deployment {self.blue['id']}: {reason}")
            if record is not None:
                status = "ROLLBACK_SUCCESSFUL" if restored else "ROLLBACK_FAILED"
                record.update(status=status, finishedAt=now, updatedAt=now)
        else:
            m._event(service, f"(deployment {self.id}) failed: {reason}")
            if record is not None:
                record.update(status="STOPPED", stoppedAt=now, finishedAt=now, updatedAt=now)


_shifts: dict[str, Shift] = {}  # ECS deployment id -> its shift


def _find_service(service_arn):
    for regions in list(m.ecs_backends.values()):
        for backend in list(regions.values()):
            for service in list(backend.services.values()):
                if service.arn == service_arn:
                    return backend, service
    return None, None


def supersede(service):
    """A new deployment is about to open: a shift still in progress is rolled back (its blue
    serves on, and is the new deployment's blue)."""
    for shift in [s for s in _shifts.values() if s.service_arn == service.arn]:
        shift.rollback("a newer deployment started", superseded=True)


def opened(service, deployment, previous, config=None):
    """A deployment was opened on the service: a Shift when its strategy (`config`, else the
    service's) is not rolling."""
    if config is None:
        config = getattr(service, "deployment_configuration", None) or {}
    if strategy(config) == "ROLLING":
        return
    lb = next((lb for lb in service.load_balancers or [] if lb.get("advancedConfiguration")), None)
    if lb is None:
        return
    blue = next((d for d in previous if d.get("rolloutState") == "COMPLETED"), None)
    _shifts[deployment["id"]] = Shift(service, deployment, blue, lb, config)


def target_group_for(deployment_id):
    """The one target group a shifting deployment's tasks are registered in (green's), or None."""
    shift = _shifts.get(deployment_id)
    return None if shift is None else shift.green_tg


def shift_of(deployment_id):
    return _shifts.get(deployment_id)


def hook_details(deployment_id):
    shift = _shifts.get(deployment_id)
    return [] if shift is None else shift.hooks


def continue_deployment(record_arn, hook_id, action):
    """ContinueServiceDeployment (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html):
    the hook must be AWAITING_ACTION and its deployment IN_PROGRESS."""
    for shift in list(_shifts.values()):
        record = m._deployment_record.get(shift.id)
        if record is None or record["serviceDeploymentArn"] != record_arn:
            continue
        hook = next((h for h in shift.hooks if h["hookId"] == hook_id), None)
        if hook is None or hook["status"] != "AWAITING_ACTION" or record["status"] != "IN_PROGRESS":
            raise m._client_error("InvalidParameterException", f"The lifecycle hook {hook_id} is not awaiting action.")
        hook["status"] = "SUCCEEDED"
        if (action or "CONTINUE") == "ROLLBACK":
            shift.rollback(f"rolled back at lifecycle hook {hook_id}")
        return
    raise m._client_error("ServiceDeploymentNotFoundException", f"The service deployment {record_arn} is not in progress.")


def stop_deployment(record_arn, stop_type):
    """StopServiceDeployment: ROLLBACK of a PENDING or IN_PROGRESS service deployment (see the
    module's docstring); one already rolling back carries on."""
    for shift in list(_shifts.values()):
        record = m._deployment_record.get(shift.id)
        if record is not None and record["serviceDeploymentArn"] == record_arn:
            record.update(status="ROLLBACK_REQUESTED", updatedAt=m.utcnow())
            shift.rollback("stopped by StopServiceDeployment")
            return
    return None


def install(moto_ext):
    global m
    m = moto_ext
