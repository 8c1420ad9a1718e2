"""Task roles, for moto_ext.py: each task gets its task role's credentials as on ECS, and what
it calls AWS with them is authorized against that role's policies, after IAM's delay.

- The credentials endpoint. ECS gives a container with a task role the variable
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, a path on 169.254.170.2 where the SDKs fetch the
  role's temporary credentials (AccessKeyId, SecretAccessKey, Token, Expiration, RoleArn):
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html. Here the same
  path is served on SANDBOX_CREDENTIALS_ADDRESS (default 169.254.170.2, which `scripts/sandbox`
  puts on the loopback interface so containers reach it through Docker's bridge), with
  credentials from moto's STS AssumeRole of the task role.
- Authorization. moto checks no permission unless told to; AWS checks every call. A request
  signed with a task's credentials is checked here as AWS checks it: its signature, then the
  role's identity policies for the action and resource (moto's own IAM policy evaluation). A
  role whose last change has not taken effect yet (moto_ext.py's IAM delay) is denied, as IAM's
  changes "may take time to become visible"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
  Other requests (mldeploy's, the tests') are not checked, as before.
- The AWS endpoints. A task on AWS reaches S3 and the rest at their public endpoints; here the
  sandbox's AWS answers on loopback only, so each task gets AWS_ENDPOINT_URL naming the same
  server at ADDRESS (reached through Docker's bridge, as the credentials are), where a
  forwarder passes connections to it. A container definition that sets AWS_ENDPOINT_URL itself
  keeps its own. Requests arriving that way are checked as above like any other.
"""

import json
import os
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.sts.models import sts_backends

ADDRESS = os.environ.get("SANDBOX_CREDENTIALS_ADDRESS", "169.254.170.2")
PORT = int(os.environ.get("SANDBOX_CREDENTIALS_PORT", "80"))
AWS_PORT = int(os.environ.get("SANDBOX_AWS_PORT", "5555"))

_paths: dict[str, tuple[str, str]] = {}  # relative URI -> (account, task role ARN)
_task_keys: dict[str, str] = {}  # access key id handed to a task -> its role's name
_lock = threading.Lock()


def task_environment(region):
    """What ECS sets in every task's environment: its Region (AWS_REGION, AWS_DEFAULT_REGION) and
    AWS_EXECUTION_ENV (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-environment-variables.html),
    and here the sandbox's AWS endpoint (see the module's docstring)."""
    return {
        "AWS_ENDPOINT_URL": f"http://{ADDRESS}:{AWS_PORT}",
        "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def _forward(client):
    """Passes one connection from a task to the sandbox's AWS on loopback, both ways."""
    try:
        upstream = socket.create_connection(("127.0.0.1", AWS_PORT))
    except OSError:
        client.close()
        return

    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)
    client.close()
    upstream.close()


def _serve_endpoint():
    try:
        listener = socket.create_server((ADDRESS, AWS_PORT))
    except OSError as e:
        print(f"moto_ext: cannot serve tasks' AWS endpoint on {ADDRESS}:{AWS_PORT}: {e}", flush=True)
        return
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_forward, args=(client,), daemon=True).start()


def relative_uri(account, role_arn):
    """The AWS_CONTAINER_CREDENTIALS_RELATIVE_URI of a new task with this task role."""
    path = f"/v2/credentials/{uuid.uuid4()}"
    with _lock:
        _paths[path] = (account, role_arn)
    return path


def _credentials(account, role_arn):
    role = sts_backends[account]["aws"].assume_role(
        region_name="us-east-1",
        role_session_name=f"ecs-task-{uuid.uuid4().hex[:12]}",
        role_arn=role_arn,
        policy=None,
        duration=3600,
        external_id=None,
    )
    with _lock:
        _task_keys[role.access_key_id] = role_arn.rsplit("/", 1)[-1]
    return {
        "AccessKeyId": role.access_key_id,
        "SecretAccessKey": role.secret_access_key,
        "Token": role.session_token,
        "Expiration": role.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RoleArn": role_arn,
    }


class Endpoint(BaseHTTPRequestHandler):
    def do_GET(self):
        with _lock:
            task = _paths.get(self.path)
        if task is None:
            body, status = {"code": "NotFound", "message": "no task has these credentials"}, 404
        else:
            body, status = _credentials(*task), 200
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _access_key_of(handler):
    """The access key id a request was signed with: its Authorization header, or a presigned
    URL's X-Amz-Credential."""
    auth = handler.headers.get("Authorization") or ""
    if "Credential=" in auth:
        return auth.split("Credential=", 1)[1].split("/", 1)[0]
    query = parse_qs(urlparse(handler.uri).query)
    credential = (query.get("X-Amz-Credential") or [""])[0]
    return credential.split("/", 1)[0]


def install(effective_at):
    """Serves the endpoint and checks tasks' requests; `effective_at(role_name)` is when the
    role's last change takes effect (monotonic seconds)."""
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate_and_authorize(self, iam_request_cls, resource="*"):
        with _lock:
            role = _task_keys.get(_access_key_of(self))
        if role is None:
            return original(self, iam_request_cls, resource)
        parsed = urlparse(self.uri)
        path = self.raw_path + (f"?{parsed.query}" if parsed.query else "")
        request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=path,
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        request.check_signature()
        if time.monotonic() < effective_at(role):
            request._raise_access_denied()
        request.check_action_permitted(resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize
    try:
        server = ThreadingHTTPServer((ADDRESS, PORT), Endpoint)
    except OSError as e:
        print(f"moto_ext: cannot serve task credentials on {ADDRESS}:{PORT}: {e}", flush=True)
        return
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="task-credentials").start()
    threading.Thread(target=_serve_endpoint, daemon=True, name="task-aws-endpoint").start()
