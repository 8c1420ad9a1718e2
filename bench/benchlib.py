"""What the bench scripts share: the sandbox's environment, timing a command, and a deployed
fixture project (a FROM-scratch busybox web server, one model version in the sandbox's S3)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MLDEPLOY = str(ROOT / "target/debug/mldeploy")


def sandbox_env():
    """Brings the sandbox up and returns the environment `scripts/sandbox env` describes."""
    subprocess.run([ROOT / "scripts/sandbox", "up"], check=True)
    env = dict(os.environ)
    out = subprocess.run([ROOT / "scripts/sandbox", "env"], check=True, text=True, capture_output=True).stdout
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip('"').replace("$PATH", os.environ.get("PATH", ""))
        elif line.startswith("unset "):
            for key in line.split()[1:]:
                env.pop(key, None)
    env.pop("CI", None)
    build()
    return env


def build():
    """Builds target/debug/mldeploy the way the tests do: a plain `cargo build` resolves the AWS SDK
    crates without the tests' features and compiles them all a second time (over 10 minutes)."""
    subprocess.run(["cargo", "test", "--locked", "--no-run", "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def record(bench, case, mldeploy, peer, peer_name, unit="s", note=""):
    """Adds one measured row to the file bench/report collects (BENCH_ROWS), when it runs us."""
    path = os.environ.get("BENCH_ROWS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"bench": bench, "case": case, "mldeploy": mldeploy, "peer": peer,
                                "peer_name": peer_name, "unit": unit, "note": note}) + "\n")


def timed(cmd, env, shell=False):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def busybox_bin(work):
    """work/bin: the static busybox, also as the /bin/sh and /bin/wget that mldeploy's container
    health check runs (`CMD-SHELL wget ... /ready`)."""
    (work / "bin").mkdir()
    for tool in ("busybox", "sh", "wget"):
        shutil.copy("/bin/busybox", work / "bin" / tool)


# Two workers beside the model API: a project of three services.
TWO_WORKERS = "".join(
    f'[workers.{w}]\ncommand = ["/bin/busybox", "sh", "-c", "while true; do /bin/busybox sleep 5; done"]\n'
    for w in ("scorer", "feeder")
)


@contextmanager


def deployed_project(env, prefix, extra=""):
    """A project deployed once with `mldeploy up` (untimed): yields (name, directory). `extra` is
    appended to its mldeploy.toml (TWO_WORKERS: three services)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix=f"mldeploy-{prefix}-"))
    try:
        busybox_bin(work)
        # A service that answers /health and /ready on port 80: the sandbox runs it as ECS would.
        (work / "www").mkdir()
        (work / "www/health").write_text("ok\n")
        (work / "www/ready").write_text("ready\n")
        (work / "Dockerfile").write_text(
            "FROM scratch\nCOPY bin /bin\nCOPY www /www\n"
            "CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"0.0.0.0:80\", \"-h\", \"/www\"]\n")
        bucket = f"{name}-models"
        (work / "mldeploy.toml").write_text(
            f'[project]\nname = "{name}"\n[model]\nbucket = "{bucket}"\npath = "m/{{version}}"\nversion = 1\n{extra}'
        )
        # The file is in the build context: keep it out, as a project with workers would.
        (work / ".dockerignore").write_text("mldeploy.toml\n")
        subprocess.run(["aws", "s3api", "create-bucket", "--bucket", bucket], check=True, env=env, capture_output=True)
        marker = work / "MLmodel"
        marker.write_text("artifact_path: model\n")
        for version in ("1", "2"):
            subprocess.run(["aws", "s3", "cp", "--quiet", str(marker), f"s3://{bucket}/m/{version}/MLmodel"], check=True, env=env)
        subprocess.run([MLDEPLOY, "-C", str(work), "up", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        yield name, work
    finally:
        images = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}:*"],
                                env=env, text=True, capture_output=True).stdout.split()
        if images:
            subprocess.run(["docker", "rmi", "-f", *images], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
