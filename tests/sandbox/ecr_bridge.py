"""Tell moto's ECR about every image pushed to the sandbox registry.

Real ECR is one service: a `docker push` to the registry shows up in `DescribeImages` at once.
The sandbox has two parts, Debian's docker-registry and moto, so the registry sends its push
notifications here and this bridge calls moto's `PutImage` with the pushed manifest, its media
type, its tag and the registry's own digest. Afterwards `DescribeImages` lists the digest that
`docker push` printed, as ECR would.

Only the standard library and boto3 (installed with moto) are used.
"""

import argparse
import base64
import json
import re
import ssl
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

MANIFEST_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
}
HOST_REGION = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(:\d+)?$")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--registry", required=True, help="base URL of the registry, e.g. https://127.0.0.1:443")
    p.add_argument("--htpasswd-user", required=True)
    p.add_argument("--htpasswd-password", required=True)
    return p.parse_args()


ARGS = parse_args()
# The registry's certificate is self-signed and this bridge only ever talks to 127.0.0.1.
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE
AUTH = "Basic " + base64.b64encode(f"{ARGS.htpasswd_user}:{ARGS.htpasswd_password}".encode()).decode()


def fetch_manifest(repository, digest, media_type):
    req = urllib.request.Request(
        f"{ARGS.registry}/v2/{repository}/manifests/{digest}",
        headers={"Accept": media_type, "Authorization": AUTH},
    )
    with urllib.request.urlopen(req, context=TLS, timeout=10) as resp:
        return resp.read().decode("utf-8")


def record_push(event):
    target = event.get("target", {})
    media_type = target.get("mediaType")
    tag = target.get("tag")
    if event.get("action") != "push" or media_type not in MANIFEST_TYPES or not tag:
        return
    host = event.get("request", {}).get("host", "")
    match = HOST_REGION.match(host)
    region = match.group(1) if match else "us-east-1"
    repository, digest = target["repository"], target["digest"]
    manifest = fetch_manifest(repository, digest, media_type)
    ecr = boto3.client("ecr", region_name=region)
    try:
        ecr.put_image(
            repositoryName=repository,
            imageManifest=manifest,
            imageManifestMediaType=media_type,
            imageTag=tag,
            imageDigest=digest,
        )
        print(f"recorded {repository}:{tag}@{digest} in {region}", flush=True)
    except ecr.exceptions.ImageAlreadyExistsException:
        pass
    except ecr.exceptions.RepositoryNotFoundException:
        # Real ECR refuses such a push; the sandbox registry cannot, so say it loudly.
        print(f"push to {repository} which ECR does not know (region {region})", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            for event in json.loads(body).get("events", []):
                record_push(event)
        except Exception as exc:  # answer 500 so the registry retries with backoff
            print(f"bridge error: {exc!r}", file=sys.stderr, flush=True)
            self.send_response(500)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler).serve_forever()
