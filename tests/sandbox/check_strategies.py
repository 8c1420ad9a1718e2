"""Checks the sandbox's blue/green and canary deployments (ecs_strategies.py) against what the ECS
developer guide says they do, through the AWS API as any client sees them, counting which revision
answers on the production and the test listener rules. Run by tests/it/sandbox_strategies.rs
with the sandbox's environment; exits non-zero, saying what differed, when one does not hold.

Usage: python check_strategies.py
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.exceptions import ClientError

SCALE = float(os.environ.get("SANDBOX_TIME_SCALE", "0.02"))
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
# Production answers counted at each look at the deployment (see `follow`).
PRODUCTION_SAMPLES = 4
HEADER = "X-Sandbox-Test"
MANAGED = "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
NAME = f"strat{uuid.uuid4().hex[:8]}"

ec2, elb, ecs, iam = (boto3.client(s) for s in ("ec2", "elbv2", "ecs", "iam"))
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def images():
    """Two FROM-scratch images whose busybox httpd answers /version with 1 or 2."""
    tags = {}
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/bin")
        shutil.copy(shutil.which("busybox"), f"{d}/bin/busybox")
        os.symlink("busybox", f"{d}/bin/sh")
        os.symlink("busybox", f"{d}/bin/wget")
        for v in (1, 2):
            os.makedirs(f"{d}/app{v}")
            with open(f"{d}/app{v}/version", "w") as f:
                f.write(f"{v}\n")
            with open(f"{d}/app{v}/health", "w") as f:
                f.write("ok\n")
            with open(f"{d}/Dockerfile.{v}", "w") as f:
                f.write(f'FROM scratch\nCOPY bin /bin\nCOPY app{v} /app\nCMD ["/bin/busybox", "httpd", "-f", "-p", "0.0.0.0:8080", "-h", "/app"]\n')
            tags[v] = f"{REGISTRY}/{NAME}:v{v}"
            subprocess.run(["docker", "build", "-q", "-f", f"{d}/Dockerfile.{v}", "-t", tags[v], d], check=True, capture_output=True)
    return tags


class Stack:
    def __init__(self, tags):
        vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
            for i, z in ((1, "a"), (2, "b"))
        ]
        # Public subnets: the tasks reach the registry through the internet gateway (vpc_egress.py).
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]["RouteTableId"]
        ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        sg = ec2.create_security_group(GroupName=NAME, Description=NAME, VpcId=vpc)["GroupId"]
        self.vpc, self.subnets, self.sg = vpc, subnets, sg
        lb = elb.create_load_balancer(Name=NAME, Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
        self.lb, self.dns = lb["LoadBalancerArn"], lb["DNSName"]
        self.tgs = []
        for suffix in ("", "-alt"):
            tg = elb.create_target_group(
                Name=NAME + suffix, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip",
                HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthyThresholdCount=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
            self.tgs.append(tg)
        listener = elb.create_listener(
            LoadBalancerArn=self.lb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]["ListenerArn"]
        self.test_rule = elb.create_rule(
            ListenerArn=listener, Priority=1,
            Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": HEADER, "Values": ["yes"]}}],
            Actions=self.forward(1, 0),
        )["Rules"][0]["RuleArn"]
        self.production_rule = elb.create_rule(
            ListenerArn=listener, Priority=2,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
            Actions=self.forward(1, 0),
        )["Rules"][0]["RuleArn"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        self.role = iam.create_role(
            RoleName=NAME, AssumeRolePolicyDocument=json.dumps(trust),
            Tags=[{"Key": "sandbox:iam-delay-seconds", "Value": "0"}],
        )["Role"]["Arn"]
        self.bare_role = iam.create_role(
            RoleName=NAME + "-bare", AssumeRolePolicyDocument=json.dumps(trust),
            Tags=[{"Key": "sandbox:iam-delay-seconds", "Value": "0"}],
        )["Role"]["Arn"]
        iam.attach_role_policy(RoleName=NAME, PolicyArn=MANAGED)
        ecs.create_cluster(clusterName=NAME)
        self.td = {
            v: ecs.register_task_definition(
                family=NAME, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                containerDefinitions=[{"name": NAME, "image": tags[v], "portMappings": [{"containerPort": 8080}], "essential": True}],
            )["taskDefinition"]["taskDefinitionArn"]
            for v in (1, 2)
        }

    def forward(self, blue, green):
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": self.tgs[0], "Weight": blue}, {"TargetGroupArn": self.tgs[1], "Weight": green}]}}]

    def load_balancers(self, role=None):
        return [{
            "targetGroupArn": self.tgs[0], "containerName": NAME, "containerPort": 8080,
            "advancedConfiguration": {
                "alternateTargetGroupArn": self.tgs[1], "productionListenerRule": self.production_rule,
                "testListenerRule": self.test_rule, "roleArn": role or self.role,
            },
        }]

    def wiring(self):
        """(targetGroupArn, alternateTargetGroupArn) as DescribeServices reports them."""
        lb = ecs.describe_services(cluster=NAME, services=[NAME])["services"][0]["loadBalancers"][0]
        return lb["targetGroupArn"], lb["advancedConfiguration"]["alternateTargetGroupArn"]

    def answer(self, test=False):
        request = urllib.request.Request(f"http://{self.dns}/version", headers={HEADER: "yes"} if test else {})
        try:
            return urllib.request.urlopen(request, timeout=3).read().decode().strip()
        except urllib.error.HTTPError as e:
            return str(e.code)
        except OSError:
            return "unreachable"

    def latest(self):
        # ListServiceDeployments promises no order: the newest by creation time, every page read.
        listed, token = [], None
        while True:
            page = ecs.list_service_deployments(cluster=NAME, service=NAME, **({"nextToken": token} if token else {}))
            listed += page["serviceDeployments"]
            token = page.get("nextToken")
            if not token:
                break
        arn = max(listed, key=lambda d: d["createdAt"])["serviceDeploymentArn"]
        return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]

    def follow(self, on_hook=None, on_stage=None, limit=120):
        """Polls the newest service deployment to its end, counting answers by lifecycle stage;
        on_hook(deployment, hook) answers a hook awaiting action, on_stage(deployment) may act."""
        production, test = collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
        start = time.monotonic()
        while time.monotonic() - start < limit:
            d = self.latest()
            stage = d.get("lifecycleStage")
            # Several production answers a look: how many a stage gets then depends on how long it
            # lasts, not on how fast the deployment's API calls answer on a loaded machine (a
            # 2-minute step, 2.4 wall seconds, got 11 looks once, under the 15 the shares need).
            for _ in range(PRODUCTION_SAMPLES):
                production[stage][self.answer()] += 1
            test[stage][self.answer(test=True)] += 1
            waiting = [h for h in d.get("lifecycleHookDetails") or [] if h["status"] == "AWAITING_ACTION"]
            if waiting and on_hook is not None:
                on_hook(d, waiting[0])
                on_hook = None
            if on_stage is not None and on_stage(d):
                on_stage = None
            if d["status"] not in ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"):
                return d, production, test
            time.sleep(0.05)
        raise SystemExit(f"deployment did not end in {limit} s: {self.latest()}")

    def delete(self):
        try:
            ecs.delete_service(cluster=NAME, service=NAME, force=True)
        except ClientError:
            pass
        time.sleep(1)
        for call in (
            lambda: ecs.delete_cluster(cluster=NAME),
            lambda: elb.delete_load_balancer(LoadBalancerArn=self.lb),
            *[(lambda tg=tg: elb.delete_target_group(TargetGroupArn=tg)) for tg in self.tgs],
            lambda: iam.detach_role_policy(RoleName=NAME, PolicyArn=MANAGED),
            lambda: iam.delete_role(RoleName=NAME),
            lambda: iam.delete_role(RoleName=NAME + "-bare"),
        ):
            try:
                call()
            except ClientError:
                pass


def pause_hook(minutes=30, action="ROLLBACK"):
    return [{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
             "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action}}]


def main():
    tags = images()
    s = Stack(tags)
    try:
        run(s)
    finally:
        s.delete()
        subprocess.run(["docker", "rmi", "-f", *tags.values()], capture_output=True)
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        sys.exit(1)


def continue_with(action):
    return lambda d, h: ecs.continue_service_deployment(serviceDeploymentArn=d["serviceDeploymentArn"], hookId=h["hookId"], action=action)


def run(s):
    net = {"awsvpcConfiguration": {"subnets": s.subnets, "securityGroups": [s.sg], "assignPublicIp": "ENABLED"}}
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1, "lifecycleHooks": pause_hook(),
              "deploymentCircuitBreaker": {"enable": True, "rollback": True}}

    # ECS refuses what its API reference refuses.
    for bad, why in (
        ({**config, "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["TEST_TRAFFIC_SHIFT"]}]}, "a PAUSE hook at TEST_TRAFFIC_SHIFT"),
        (config, "no advancedConfiguration"),
    ):
        lbs = s.load_balancers() if why != "no advancedConfiguration" else [{"targetGroupArn": s.tgs[0], "containerName": NAME, "containerPort": 8080}]
        try:
            ecs.create_service(cluster=NAME, serviceName=NAME + "-bad", taskDefinition=s.td[1], desiredCount=1, launchType="FARGATE",
                               loadBalancers=lbs, networkConfiguration=net, deploymentConfiguration=bad)
            check(False, f"CreateService refuses {why}")
        except ClientError as e:
            check(e.response["Error"]["Code"] == "InvalidParameterException", f"CreateService refuses {why} ({e.response['Error']['Code']})")

    ecs.create_service(cluster=NAME, serviceName=NAME, taskDefinition=s.td[1], desiredCount=1, launchType="FARGATE",
                       loadBalancers=s.load_balancers(), networkConfiguration=net, deploymentConfiguration=config)
    d, production, test = s.follow(on_hook=continue_with("CONTINUE"))
    check(d["status"] == "SUCCESSFUL", f"the first deployment succeeds ({d['status']})")
    check(s.answer() == "1", "revision 1 serves production after it")
    check(s.wiring() == (s.tgs[1], s.tgs[0]), f"ECS records the group green ran in as the service's target group: {s.wiring()}")

    # Blue/green, rolled back at the PAUSE hook: production never answers from green, the test
    # rule does once the test traffic shifted, and goes back to blue with the rollback.
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[2])
    d, production, test = s.follow(on_hook=continue_with("ROLLBACK"))
    check(d["status"] == "ROLLBACK_SUCCESSFUL", f"ROLLBACK at the hook ends ROLLBACK_SUCCESSFUL ({d['status']})")
    check(all("2" not in answers for answers in production.values()), f"no production answer from green: {dict(production)}")
    check(test["POST_TEST_TRAFFIC_SHIFT"]["2"] > 0, f"the test rule reaches green at the hook: {dict(test)}")
    check(s.answer(test=True) == "1" and s.answer() == "1", "both rules forward to blue after the rollback")
    hook = (d.get("lifecycleHookDetails") or [{}])[0]
    check(hook.get("targetType") == "PAUSE" and hook.get("timeoutAction") == "ROLLBACK", f"the hook is described: {hook}")

    # Continued: production moves to green only after the hook, then the bake, then clean-up.
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[2])
    d, production, test = s.follow(on_hook=continue_with("CONTINUE"))
    check(d["status"] == "SUCCESSFUL", f"CONTINUE at the hook ends SUCCESSFUL ({d['status']})")
    early = ("SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT")
    check(all(production[stage]["2"] == 0 for stage in early), f"green serves production only after the hook: {dict(production)}")
    check(production["BAKE_TIME"]["2"] > 0 and production["BAKE_TIME"]["1"] == 0, f"green serves production in the bake: {dict(production)}")
    check(s.answer() == "2", "revision 2 serves after the deployment")
    check(s.wiring() == (s.tgs[0], s.tgs[1]), f"the groups alternate from one deployment to the next: {s.wiring()}")

    # StopServiceDeployment during the bake moves production back to blue in AWS seconds.
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[1],
                       deploymentConfiguration={**config, "bakeTimeInMinutes": 30})
    stopped = {}

    def stop_in_bake(d):
        if d.get("lifecycleStage") == "BAKE_TIME" and not stopped:
            stopped["at"] = time.monotonic()
            ecs.stop_service_deployment(serviceDeploymentArn=d["serviceDeploymentArn"], stopType="ROLLBACK")
            # A stop of type ROLLBACK moves the deployment to ROLLBACK_REQUESTED and rolls the
            # service back to the previous revision
            # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html,
            # API_StopServiceDeployment); in the bake time blue still runs, so production returns
            # to it without new tasks ("quickly revert to the blue deployment",
            # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html).
            # Timed from here, by production's answers alone: after `follow` returns, the
            # deployment's own end (and the API calls that see it, slow on a loaded machine)
            # would be counted too.
            while stopped.get("back") is None and time.monotonic() - stopped["at"] < 10:
                if s.answer() == "2":
                    stopped["back"] = (time.monotonic() - stopped["at"]) / SCALE
            return True
        return False

    d, production, test = s.follow(on_hook=continue_with("CONTINUE"), on_stage=stop_in_bake)
    back = stopped.get("back")
    check(d["status"] == "ROLLBACK_SUCCESSFUL", f"StopServiceDeployment in the bake ends ROLLBACK_SUCCESSFUL ({d['status']})")
    check(back is not None and back < 15, f"blue serves again {back} AWS s after the stop")

    # The infrastructure role must be allowed to change the rules.
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[1], loadBalancers=s.load_balancers(s.bare_role),
                       deploymentConfiguration=config)
    d, production, test = s.follow(on_hook=continue_with("CONTINUE"))
    check(d["status"] in ("ROLLBACK_SUCCESSFUL", "STOPPED") and "ModifyRule" in (d.get("statusReason") or ""),
          f"a role without ModifyRule fails the deployment ({d['status']}: {d.get('statusReason')})")
    check(s.answer() == "2", "revision 2 still serves")

    # Canary: 20 % of production on green while the canary bakes, all of it after.
    canary = {**config, "strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 2}}
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[1], loadBalancers=s.load_balancers(), deploymentConfiguration=canary)
    d, production, test = s.follow(on_hook=continue_with("CONTINUE"))
    shifting = production["PRODUCTION_TRAFFIC_SHIFT"]
    share = shifting["1"] / max(1, shifting["1"] + shifting["2"])
    check(d["status"] == "SUCCESSFUL", f"the canary deployment succeeds ({d['status']})")
    check(0.05 < share < 0.45 and shifting["1"] + shifting["2"] >= 15, f"about 20 % of production on green in the canary: {dict(shifting)}")

    # Linear: 50 % more of production every step, so half of it on green during the first step.
    linear = {**config, "strategy": "LINEAR", "linearConfiguration": {"stepPercent": 50.0, "stepBakeTimeInMinutes": 2}}
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[2], deploymentConfiguration=linear)
    d, production, test = s.follow(on_hook=continue_with("CONTINUE"))
    shifting = production["PRODUCTION_TRAFFIC_SHIFT"]
    share = shifting["2"] / max(1, shifting["1"] + shifting["2"])
    check(d["status"] == "SUCCESSFUL", f"the linear deployment succeeds ({d['status']})")
    check(0.3 < share < 0.7 and shifting["1"] + shifting["2"] >= 15, f"about half of production on green in the first step: {dict(shifting)}")

    # A hook nobody answers takes its timeout action.
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[1],
                       deploymentConfiguration={**config, "lifecycleHooks": pause_hook(minutes=1)})
    d, production, test = s.follow()
    check(d["status"] == "ROLLBACK_SUCCESSFUL", f"a timed-out hook with ROLLBACK rolls back ({d['status']})")
    check(s.answer() == "2", "revision 2 still serves after the timed-out hook")

    # An update that sends the load balancers back the other way round (a fixed block, as
    # Terraform re-sends one) is taken at its word: green is the group production forwards to,
    # so the new revision answers production before the hook. Last: it leaves the stack broken.
    live, alternate = s.wiring()
    fixed = s.load_balancers()
    fixed[0]["targetGroupArn"], fixed[0]["advancedConfiguration"]["alternateTargetGroupArn"] = alternate, live
    ecs.update_service(cluster=NAME, service=NAME, taskDefinition=s.td[1], loadBalancers=fixed, deploymentConfiguration=config)
    at_hook = collections.Counter()

    def sample_then_roll_back(d, h):
        at_hook.update(s.answer() for _ in range(20))
        continue_with("ROLLBACK")(d, h)

    d, production, test = s.follow(on_hook=sample_then_roll_back)
    check(at_hook["1"] > 0, f"fighting the wiring puts the new revision in production before its hook: {dict(at_hook)}")


if __name__ == "__main__":
    main()
