"""A loopback proxy in front of the sandbox's AWS endpoint that injects faults into chosen calls.

Each request is named `<service>:<Operation>` (the service from the SigV4 credential scope, the
operation from X-Amz-Target, the query's Action, or S3's method and path), and the first rule whose
regular expression matches the name decides what happens to it:

  throttle      the service's throttling error (ThrottlingException, Throttling, RequestLimitExceeded,
                S3's SlowDown)
  unavailable   HTTP 503 ServiceUnavailable
  deny          HTTP 403 access denied, naming the action as AWS does
  expired       HTTP 403 expired credentials (ExpiredToken; EC2's RequestExpired)
  delay:S       forwarded after S seconds
  down          the connection closed without an answer, the request never forwarded
  lost          forwarded (AWS does the work), then the connection closed without an answer, and
                from then on every call is `down`: the endpoint went away mid-run

A rule `REGEX=ACTION*N` acts on the first N matching calls only; without `*N`, on all of them.
Every call is appended to the log file as one JSON line: {"call": ..., "action": ...}, where
action is "pass" for a call forwarded untouched.

Usage: python fault_proxy.py --upstream http://127.0.0.1:5555 --log calls.jsonl RULE...
Prints the port it listens on (127.0.0.1) as its first line.
"""

import argparse
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSON_SERVICES = {"application-autoscaling", "ecs", "ecr", "logs", "secretsmanager", "ssm", "sts"}
CODES = {
    # action: (status, JSON code, EC2 code, query code, S3 code)
    "throttle": (400, "ThrottlingException", "RequestLimitExceeded", "Throttling", "SlowDown"),
    "unavailable": (503, "ServiceUnavailableException", "Unavailable", "ServiceUnavailable", "ServiceUnavailable"),
    "deny": (403, "AccessDeniedException", "UnauthorizedOperation", "AccessDenied", "AccessDenied"),
    "expired": (403, "ExpiredTokenException", "RequestExpired", "ExpiredToken", "ExpiredToken"),
}


class Rule:
    def __init__(self, text):
        pattern, _, action = text.rpartition("=")
        action, _, times = action.partition("*")
        self.pattern = re.compile(pattern)
        self.action = action
        self.left = int(times) if times else None
        self.lock = threading.Lock()

    def take(self, call):
        """Whether this rule acts on the call (and counts it)."""
        if not self.pattern.search(call):
            return False
        with self.lock:
            if self.left is None:
                return True
            if self.left > 0:
                self.left -= 1
                return True
            return False


def call_name(method, path, headers, body):
    auth = headers.get("Authorization", "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    service = match.group(1) if match else "unknown"
    target = headers.get("X-Amz-Target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    if service != "s3":
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", [None])[0] or urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("Action", ["Unknown"])[0]
        return f"{service}:{action}"
    parts = urllib.parse.urlsplit(path)
    segments = [s for s in parts.path.split("/") if s]
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    if len(segments) <= 1 and method == "GET" and "location" in query:
        op = {"GET": "GetBucketLocation"}
    elif len(segments) <= 1:
        op = {"GET": "ListObjectsV2" if "list-type" in query else "ListObjects", "PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
    else:
        op = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return f"s3:{op.get(method, method)}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _forward(self, body):
        upstream = self.server.upstream
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def _error(self, call, action):
        service = call.split(":", 1)[0]
        status, json_code, ec2_code, query_code, s3_code = CODES[action]
        operation = call.split(":", 1)[1]
        message = {
            "throttle": "Rate exceeded",
            "unavailable": "Service is unavailable, try again later",
            "deny": f"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: {service}:{operation}",
            "expired": "The security token included in the request is expired",
        }[action]
        if service in JSON_SERVICES:
            body = json.dumps({"__type": json_code, "message": message}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", json_code)]
        elif service == "ec2":
            body = f"<Response><Errors><Error><Code>{ec2_code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>".encode()
            headers = [("Content-Type", "text/xml")]
        elif service == "s3":
            status = 503 if action in ("throttle", "unavailable") else status
            body = f"<Error><Code>{s3_code}</Code><Message>{message}</Message></Error>".encode()
            headers = [("Content-Type", "application/xml")]
        else:
            body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>".encode()
            headers = [("Content-Type", "text/xml")]
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        call = call_name(self.command, self.path, self.headers, body)
        if self.server.gone:
            action = "down"
        else:
            action = next((r.action for r in self.server.rules if r.take(call)), "pass")
        with self.server.log_lock, open(self.server.log_path, "a") as f:
            f.write(json.dumps({"call": call, "action": action}) + "\n")
        if action.startswith("delay:"):
            time.sleep(float(action.split(":", 1)[1]))
            action = "pass"
        if action == "down":
            return self._drop()
        if action in CODES:
            return self._error(call, action)
        response, data = self._forward(body)
        if action == "lost":
            self.server.gone = True
            return self._drop()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("rules", nargs="*")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.upstream = urllib.parse.urlsplit(args.upstream)
    server.rules = [Rule(r) for r in args.rules]
    server.log_path = args.log
    server.log_lock = threading.Lock()
    server.gone = False
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
