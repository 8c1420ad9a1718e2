"""Every request to the sandbox is held to AWS's published API models before moto sees it.

moto accepts what AWS refuses: a value outside an enum, a number out of range, a string or list
too long or too short, a string that breaks its pattern, a required member left out, a parameter
the API does not have. AWS checks each request against the service's model first, and answers a
broken one with an error and no change. botocore ships those models (the same AWS API
definitions the SDKs are generated from); this module reads each request back into the
operation's input shape, by protocol, and checks it:

- JSON (ECS, ECR, CloudWatch Logs, ACM, Secrets Manager, SSM, Application Auto Scaling): the
  body is the input; the operation is X-Amz-Target's.
- Query (ELBv2, IAM, STS, RDS, ElastiCache): form parameters, lists as `Name.member.N`, maps as
  `Name.entry.N.key`.
- EC2: form parameters, lists as `Name.N`, names from queryName or the capitalized locationName.
- REST-XML (Route 53): the operation by method and URI template, members from the path, the
  query string, headers and the XML body.

S3 is left to moto (its addressing and streaming bodies are a protocol of their own).

How AWS answers, by protocol:
- Constraint violations read as AWS's validation layer writes them ("1 validation error
  detected: Value 'X' at 'path' failed to satisfy constraint: Member must ...", e.g.
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html: ValidationError,
  "The input fails to satisfy the constraints specified by an AWS service", HTTP 400).
  The code is ValidationException for JSON services and ValidationError for query services, as
  each service's error list names it.
- EC2 (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
  MissingParameter ("The request must contain the parameter ..."), UnknownParameter ("An unknown
  or unrecognized parameter was supplied"), InvalidParameterValue for a value out of bounds.
- Route 53 (https://docs.aws.amazon.com/Route53/latest/APIReference/CommonErrors.html and each
  action's errors): InvalidInput.
- A parameter the API does not have is refused where AWS documents that it is (EC2's
  UnknownParameter). Elsewhere an unknown member is left to moto: the SDKs are generated from
  these models and cannot send one, and a member newer than botocore's model must not be refused.

A pattern must match the whole value, as AWS applies its models' patterns (IAM's CreateRole:
RoleName's pattern `[\w+=,.@-]+` "allows ... a string of characters consisting of upper and
lowercase alphanumeric characters with no spaces",
https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html); a pattern Python's
`re` cannot read is not checked. Lengths count characters (code points).

SANDBOX_API_CONTRACT=0 turns the checks off (to see what moto alone does); each refusal is
printed on stderr with the request it refused.
"""

import base64
import io
import json
import os
import re
import sys
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import botocore.session

ENABLED = os.environ.get("SANDBOX_API_CONTRACT", "1") != "0"

# The services the sandbox holds to their models, by signing name (and, where two share one,
# by API version); botocore's service names.
_BY_SIGNING_NAME = {
    "ecs": "ecs",
    "ecr": "ecr",
    "ec2": "ec2",
    "iam": "iam",
    "logs": "logs",
    "acm": "acm",
    "route53": "route53",
    "secretsmanager": "secretsmanager",
    "ssm": "ssm",
    "application-autoscaling": "application-autoscaling",
    "sts": "sts",
    "rds": "rds",
    "elasticache": "elasticache",
    "monitoring": "cloudwatch",
}
# ELB's signing name covers two APIs: the classic one (2012-06-01) and ELBv2.
_ELB_BY_VERSION = {"2015-12-01": "elbv2", "2012-06-01": "elb"}

_session = botocore.session.get_session()
_models = {}


def _model(name):
    if name not in _models:
        _models[name] = _session.get_service_model(name)
    return _models[name]


class Refused(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------
# Checking a value against its shape.


def _quote(value):
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"'{text}'" if len(text) <= 200 else f"'{text[:200]}...'"


def check_value(value, shape, path, problems):
    """Appends to `problems` (path, value, constraint) for each way `value` breaks `shape`."""
    if value is None:
        return
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append((path, value, "Member must be a structure"))
            return
        for required in shape.required_members:
            if value.get(required) is None:
                problems.append((_join(path, required), None, "Member must not be null"))
        for name, member in shape.members.items():
            if name in value:
                check_value(value[name], member, _join(path, name), problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append((path, value, "Member must be a list"))
            return
        _length(value, meta, path, problems)
        for i, item in enumerate(value, 1):
            check_value(item, shape.member, f"{path}.{i}.member", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append((path, value, "Member must be a map"))
            return
        _length(value, meta, path, problems)
        for k, v in value.items():
            check_value(k, shape.key, f"{path}.key", problems)
            check_value(v, shape.value, f"{path}.{k}.value", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append((path, value, "Member must be a string"))
            return
        if shape.enum and value not in shape.enum:
            problems.append((path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"))
            return
        _length(value, meta, path, problems)
        pattern = meta.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern, re.DOTALL)
            except re.error:
                compiled = None
            if compiled is not None and compiled.fullmatch(value) is None:
                problems.append((path, value, f"Member must satisfy regular expression pattern: {pattern}"))
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append((path, value, "Member must be a number"))
            return
        _range(value, meta, path, problems)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append((path, value, "Member must be a number"))
            return
        _range(value, meta, path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append((path, value, "Member must be a boolean"))


def _join(path, name):
    """A member's path as AWS's messages write it: names with a lower-case first letter."""
    name = name[:1].lower() + name[1:]
    return f"{path}.{name}" if path else name


def _length(value, meta, path, problems):
    if "min" in meta and len(value) < meta["min"]:
        problems.append((path, value, f"Member must have length greater than or equal to {meta['min']}"))
    if "max" in meta and len(value) > meta["max"]:
        problems.append((path, value, f"Member must have length less than or equal to {meta['max']}"))


def _range(value, meta, path, problems):
    if "min" in meta and value < meta["min"]:
        problems.append((path, value, f"Member must have value greater than or equal to {meta['min']}"))
    if "max" in meta and value > meta["max"]:
        problems.append((path, value, f"Member must have value less than or equal to {meta['max']}"))


def validation_message(problems):
    """AWS's validation layer's message for `problems`."""
    parts = []
    for path, value, constraint in problems:
        shown = "null" if value is None else _quote(value)
        parts.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Reading a request back into its operation's input, by protocol.


def _scalar_from_text(text, shape):
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text  # reported as "must be a number"
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if kind in ("timestamp", "blob"):
        return None  # not checked
    return text


def _query_name(member_shape, member_name, ec2):
    """The parameter name of a structure member (botocore's serializers' rules)."""
    if ec2:
        if "queryName" in member_shape.serialization:
            return member_shape.serialization["queryName"]
        name = member_shape.serialization.get("name", member_name)
        return name[0].upper() + name[1:]
    return member_shape.serialization.get("name", member_name)


def read_query(params, shape, prefix, ec2, used):
    """The value of `shape` at `prefix` in the flat form parameters; marks the keys read."""
    kind = shape.type_name
    if kind == "structure":
        value = {}
        for name, member in shape.members.items():
            key = _query_name(member, name, ec2)
            full = f"{prefix}.{key}" if prefix else key
            if _present(params, full):
                value[name] = read_query(params, member, full, ec2, used)
        return value
    if kind == "list":
        if params.get(prefix) == "" and not ec2:
            used.add(prefix)
            return []
        if ec2 or shape.serialization.get("flattened"):
            base = prefix
        else:
            base = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items = []
        i = 1
        while _present(params, f"{base}.{i}"):
            items.append(read_query(params, shape.member, f"{base}.{i}", ec2, used))
            i += 1
        return items
    if kind == "map":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        value = {}
        i = 1
        while _present(params, f"{base}.{i}"):
            k = read_query(params, shape.key, f"{base}.{i}.{key_name}", ec2, used)
            value[k] = read_query(params, shape.value, f"{base}.{i}.{value_name}", ec2, used)
            i += 1
        return value
    if prefix in params:
        used.add(prefix)
        return _scalar_from_text(params[prefix], shape)
    return None


def _present(params, prefix):
    dotted = prefix + "."
    return prefix in params or any(k.startswith(dotted) for k in params)


def read_xml(element, shape):
    """The value of `shape` in an XML element (REST-XML bodies)."""
    if element is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        value = {}
        for name, member in shape.members.items():
            tag = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                children = [c for c in element if _local(c.tag) == tag]
                if children:
                    value[name] = [read_xml(c, member.member) for c in children]
                continue
            child = next((c for c in element if _local(c.tag) == tag), None)
            if child is not None:
                value[name] = read_xml(child, member)
        return value
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return [read_xml(c, shape.member) for c in element if _local(c.tag) == tag]
    if kind == "map":
        return None  # no REST-XML map in the services checked here
    return _scalar_from_text(element.text or "", shape)


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _uri_regex(template):
    """A regex for a REST operation's requestUri path, its labels as named groups."""
    path = template.split("?", 1)[0]
    out = "^"
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            out += f"(?P<{re.sub(r'[^A-Za-z0-9_]', '_', name)}>{'.+' if greedy else '[^/]+'})"
        else:
            out += re.escape(part)
    return re.compile(out + "/?$")


def _rest_operation(model, method, path, query):
    """The REST operation a request is for: method and path template, and the literal query
    parameters the template requires."""
    best = None
    for name in model.operation_names:
        op = model.operation_model(name)
        http = op.http
        if http.get("method") != method:
            continue
        match = _uri_regex(http["requestUri"]).match(path)
        if not match:
            continue
        literal = http["requestUri"].split("?", 1)[1] if "?" in http["requestUri"] else ""
        needs = [p.split("=")[0] for p in literal.split("&") if p]
        if any(n not in query for n in needs):
            continue
        score = len(needs) * 1000 + len(http["requestUri"])
        if best is None or score > best[0]:
            best = (score, op, match)
    return (best[1], best[2]) if best else (None, None)


def read_rest(op, match, query, headers, body):
    shape = op.input_shape
    if shape is None:
        return {}
    value = {}
    labels = {re.sub(r"[^A-Za-z0-9_]", "_", k): urllib.parse.unquote(v) for k, v in match.groupdict().items()}
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        key = member.serialization.get("name", name)
        if where == "uri":
            label = re.sub(r"[^A-Za-z0-9_]", "_", key)
            if label in labels:
                value[name] = _scalar_from_text(labels[label], member)
        elif where == "querystring":
            if key in query:
                got = query[key]
                value[name] = [_scalar_from_text(v, member.member) for v in got] if member.type_name == "list" else _scalar_from_text(got[0], member)
        elif where == "header":
            if key.lower() in headers:
                value[name] = _scalar_from_text(headers[key.lower()], member)
    if body.strip():
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise Refused(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
        if payload:
            value[payload] = read_xml(root, shape.members[payload])
        else:
            for name, member_value in (read_xml(root, shape) or {}).items():
                if shape.members[name].serialization.get("location") is None:
                    value[name] = member_value
    return value


# ---------------------------------------------------------------------------------------------
# The request's service, operation and input.


def _signing_name(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
    return m.group(1) if m else None


def identify(environ, body):
    """(service model, operation model, input, protocol) of a request, or None when it is not
    one this module checks."""
    signing = _signing_name(environ)
    if signing is None:
        return None
    target = environ.get("HTTP_X_AMZ_TARGET")
    content_type = environ.get("CONTENT_TYPE", "")
    if signing == "elasticloadbalancing":
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        name = _ELB_BY_VERSION.get(form.get("Version", ""))
    else:
        name = _BY_SIGNING_NAME.get(signing)
    if name is None:
        return None
    model = _model(name)
    if target:
        # JSON protocol (awsJson1_0 / 1_1): `<targetPrefix>.<Operation>`.
        prefix, _, operation = target.rpartition(".")
        if operation not in model.operation_names:
            raise Refused(400, "UnknownOperationException", f"Unknown operation {operation}")
        op = model.operation_model(operation)
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise Refused(400, "SerializationException", "Start of structure or map found where not expected.")
        return model, op, value, "json", None
    if "x-www-form-urlencoded" in content_type or (environ.get("REQUEST_METHOD") == "POST" and b"Action=" in body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if environ.get("QUERY_STRING"):
            form.update(urllib.parse.parse_qsl(environ["QUERY_STRING"], keep_blank_values=True))
        action = form.get("Action")
        if action is None:
            return None
        if action not in model.operation_names:
            code = "InvalidAction"
            raise Refused(400, code, f"The action {action} is not valid for this web service.")
        op = model.operation_model(action)
        ec2 = model.protocol == "ec2"
        used = {"Action", "Version"}
        value = read_query(form, op.input_shape, "", ec2, used) if op.input_shape else {}
        unknown = sorted(k for k in form if k not in used and not k.startswith("X-Amz-"))
        return model, op, value, "ec2" if ec2 else "query", unknown
    if model.protocol in ("rest-xml", "rest-json"):
        path = urllib.parse.unquote(environ.get("PATH_INFO", ""))
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        op, match = _rest_operation(model, environ.get("REQUEST_METHOD"), path, query)
        if op is None:
            return None
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        value = read_rest(op, match, query, headers, body.decode("utf-8", "replace"))
        return model, op, value, model.protocol, None
    return None


def _protocol_of(environ):
    """How a request that could not be read is answered: by its own framing."""
    signing = _signing_name(environ)
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json", None
    if signing == "ec2":
        return "ec2", _model("ec2")
    name = _BY_SIGNING_NAME.get(signing or "")
    model = _model(name) if name else None
    if model is not None and model.protocol.startswith("rest"):
        return "rest", model
    return "query", model


def check_request(environ, body):
    """Raises Refused, with the protocol and model to answer in, as AWS would answer a request
    that breaks its operation's model."""
    try:
        found = identify(environ, body)
        if found is None:
            return
        _check(found)
    except Refused as refused:
        if not hasattr(refused, "protocol"):
            refused.protocol, refused.model = _protocol_of(environ)
        raise


def _check(found):
    model, op, value, protocol, unknown = found
    try:
        _check_input(model, op, value, protocol, unknown)
    except Refused as refused:
        refused.protocol, refused.model = ("rest" if protocol.startswith("rest") else protocol), model
        raise


def _check_input(model, op, value, protocol, unknown):
    if protocol == "ec2" and unknown:
        raise Refused(400, "UnknownParameter", f"The parameter {unknown[0]} is not recognized")
    if op.input_shape is None:
        return
    problems = []
    check_value(value, op.input_shape, "", problems)
    if not problems:
        return
    if protocol == "ec2":
        missing = [p for p in problems if p[2] == "Member must not be null"]
        if missing:
            name = missing[0][0].split(".")[-1]
            raise Refused(400, "MissingParameter", f"The request must contain the parameter {name[0].upper() + name[1:]}")
        raise Refused(400, "InvalidParameterValue", validation_message(problems))
    if protocol == "json" and any(c.startswith("Member must be a") and "number" not in c and c != "Member must be a boolean" for _, _, c in problems):
        raise Refused(400, "SerializationException", validation_message(problems))
    code = {"json": "ValidationException", "query": "ValidationError"}.get(protocol, "InvalidInput")
    raise Refused(400, code, validation_message(problems))


# ---------------------------------------------------------------------------------------------
# The answer, as each protocol carries an error.


def error_response(protocol, refused, model):
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": refused.code, "message": refused.message}).encode()
        return body, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", refused.code)]
    message = _xml_text(refused.message)
    if protocol == "ec2":
        body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{refused.code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
    else:
        namespace = ""
        if model is not None and model.protocol == "rest-xml":
            namespace = f" xmlns=\"https://{model.endpoint_prefix}.amazonaws.com/doc/{model.api_version}/\""
        body = f"<ErrorResponse{namespace}><Error><Type>Sender</Type><Code>{refused.code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    return body.encode(), [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]


def _xml_text(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def install(dispatcher_class):
    """Puts the check in front of moto's WSGI dispatcher."""
    original = dispatcher_class.__call__

    def __call__(self, environ, start_response):
        signing = _signing_name(environ)
        checked = signing in _BY_SIGNING_NAME or signing == "elasticloadbalancing"
        # S3 and what is not signed pass untouched (streamed and chunked bodies among them).
        if not ENABLED or not checked:
            return original(self, environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = b""
        if length > 0:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        try:
            check_request(environ, body)
        except Refused as refused:
            body_out, headers = error_response(refused.protocol, refused, refused.model)
            print(f"api_contract: refused {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} ({environ.get('HTTP_X_AMZ_TARGET') or ''}): {refused.code}: {refused.message}", file=sys.stderr, flush=True)
            start_response(f"{refused.status} Bad Request", headers + [("Content-Length", str(len(body_out)))])
            return [body_out]
        except Exception as e:  # a request this module cannot read is moto's to answer
            print(f"api_contract: not checked ({type(e).__name__}: {e})", file=sys.stderr, flush=True)
        return original(self, environ, start_response)

    dispatcher_class.__call__ = __call__
