"""ACM and Route 53 as strict as AWS, for moto_ext.py: certificates validated by DNS, and names
that resolve.

moto 5.2.5 issues every requested certificate 60 seconds after the request whatever DNS says,
signs it with a key no client trusts, gives every certificate the same validation record, lets a
load balancer use a certificate that is not issued, deletes a certificate a listener still uses,
and has no TestDNSAnswer. Here, as AWS documents:

- DNS validation. A requested certificate (RequestCertificate, ValidationMethod DNS) stays
  PENDING_VALIDATION until its validation CNAME is in a public hosted zone that holds the
  domain (a private zone answers only inside its VPCs, not the public DNS ACM asks), then
  turns ISSUED SANDBOX_ACM_VALIDATION_SECONDS (default 2) later: "ACM ... checks for the CNAME
  record ... the certificate status changes ... to Issued" once it finds it
  (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html). The record is ACM's
  own for the name and the account ("_<hash>.<domain>" -> "_<hash>.acm-validations.aws.", the
  same for every certificate of that name in the account, same page). DescribeCertificate gives
  it only SANDBOX_ACM_RECORD_SECONDS (default 1) after the request: on AWS it appears a moment
  later, and Terraform's provider waits for it (waitCertificateDomainValidationsAvailable in
  internal/service/acm/certificate.go). The issued certificate is signed by the sandbox CA
  (SANDBOX_CA_DIR), which the tests trust as clients trust Amazon's CAs.
- ELB finds a certificate ACM has just issued only a moment later (SANDBOX_ELB_SEES_CERTIFICATE_SECONDS,
  default 1): CreateListener and ModifyListener answer CertificateNotFound until then, the
  refusal the Terraform provider retries for minutes after an ACM or IAM certificate is made
  (internal/service/elbv2/listener.go: "Retry for IAM Server Certificate eventual consistency").
- A listener takes only an issued certificate: CreateListener and ModifyListener with one that
  is not fail with UnsupportedCertificate, the error ELB returns for a certificate still
  PENDING_VALIDATION (recorded in https://github.com/DataBiosphere/azul/issues/8321).
- DeleteCertificate refuses a certificate a listener uses, with ResourceInUseException: "You
  cannot delete an ACM certificate that is being used by another AWS service"
  (https://docs.aws.amazon.com/acm/latest/APIReference/API_DeleteCertificate.html).
- TestDNSAnswer ("Gets the value that Amazon Route 53 returns in response to a DNS request for
  a specified record name and type",
  https://docs.aws.amazon.com/Route53/latest/APIReference/API_TestDNSAnswer.html) answers from
  the zone's records; an alias to a load balancer answers with that load balancer's address.
"""

import datetime
import hashlib
import os
import time

import cryptography.x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moto.acm import models as acm_models
from moto.acm.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.elbv2 import models as elbv2_models
from moto.elbv2.models import elbv2_backends
from moto.elbv2.exceptions import ELBClientError
from moto.route53 import responses as route53_responses
from moto.route53 import urls as route53_urls
from moto.route53.models import route53_backends

VALIDATION_SECONDS = float(os.environ.get("SANDBOX_ACM_VALIDATION_SECONDS", "2"))
RECORD_SECONDS = float(os.environ.get("SANDBOX_ACM_RECORD_SECONDS", "1"))
CA_DIR = os.environ.get("SANDBOX_CA_DIR", "")

_requested_at: dict[str, float] = {}  # certificate ARN -> when it was requested (monotonic)
_validated_at: dict[str, float] = {}  # certificate ARN -> when its record was first seen
_issued_at: dict[str, float] = {}  # certificate ARN -> when it turned ISSUED
ELB_SEES_SECONDS = float(os.environ.get("SANDBOX_ELB_SEES_CERTIFICATE_SECONDS", "1"))


def _normal(name):
    return (name or "").rstrip(".").lower()


def _account_region(arn):
    parts = arn.split(":")
    return parts[4], parts[3]


def _record_of(bundle):
    """ACM's validation CNAME for the certificate's name in its account."""
    account, _ = _account_region(bundle.arn)
    domain = _normal(bundle.common_name)
    digest = hashlib.sha256(f"{account}:{domain}".encode()).hexdigest()
    bare = domain[2:] if domain.startswith("*.") else domain
    return f"_{digest[:32]}.{bare}.", f"_{digest[32:64]}.sandbox.acm-validations.aws."


def _record_in_dns(account, name, value):
    """Whether a hosted zone that holds `name` has the CNAME `name` -> `value`."""
    try:
        zones = list(route53_backends[account]["aws"].zones.values())
    except KeyError:
        return False
    for zone in zones:
        # ACM resolves the record in public DNS: a private hosted zone answers only inside its
        # VPCs (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html).
        if getattr(zone, "private_zone", False):
            continue
        zone_name = _normal(zone.name)
        if not (_normal(name) == zone_name or _normal(name).endswith("." + zone_name)):
            continue
        for rrset in list(zone.rrsets):
            if rrset.type == "CNAME" and _normal(rrset.name) == _normal(name):
                if any(_normal(v) == _normal(value) for v in rrset.records or []):
                    return True
    return False


def _sign(bundle):
    """A certificate for the bundle's names, signed by the sandbox CA, with a new key."""
    with open(os.path.join(CA_DIR, "ca.crt"), "rb") as f:
        ca_pem = f.read()
    with open(os.path.join(CA_DIR, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    ca = cryptography.x509.load_pem_x509_certificate(ca_pem)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = sorted({_normal(n) for n in [bundle.common_name, *bundle.sans] if n})
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        cryptography.x509.CertificateBuilder()
        .subject_name(cryptography.x509.Name([cryptography.x509.NameAttribute(NameOID.COMMON_NAME, _normal(bundle.common_name))]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(cryptography.x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        # ACM's public certificates are valid for 395 days.
        .not_valid_after(now + datetime.timedelta(days=395))
        .add_extension(cryptography.x509.SubjectAlternativeName([cryptography.x509.DNSName(n) for n in names]), critical=False)
        .add_extension(cryptography.x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(cryptography.x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    bundle.cert = cert.public_bytes(serialization.Encoding.PEM)
    bundle.key = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    )
    bundle.chain = ca_pem
    bundle._key = bundle.validate_pk()
    bundle._cert = bundle.validate_certificate()
    bundle.issuer_common_name = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


_original_check = acm_models.CertBundle.check
_original_describe = acm_models.CertBundle.describe
_original_generate_cert = acm_models.CertBundle.generate_cert.__func__


def generate_cert(cls, *args, **kwargs):
    bundle = _original_generate_cert(cls, *args, **kwargs)
    _requested_at[bundle.arn] = time.monotonic()
    return bundle


def check(self):
    """Expiry as moto has it; issuance only once the validation record is in DNS (see above)."""
    if self.type != "AMAZON_ISSUED" or self.status != "PENDING_VALIDATION":
        return _original_check(self)
    account, _ = _account_region(self.arn)
    name, value = _record_of(self)
    if self.arn not in _validated_at:
        if not _record_in_dns(account, name, value):
            return
        _validated_at[self.arn] = time.monotonic()
    if time.monotonic() - _validated_at[self.arn] >= VALIDATION_SECONDS:
        _sign(self)
        self.status = "ISSUED"
        _issued_at[self.arn] = time.monotonic()


def describe(self):
    result = _original_describe(self)
    if self.type != "AMAZON_ISSUED":
        return result
    name, value = _record_of(self)
    shown = time.monotonic() - _requested_at.get(self.arn, 0) >= RECORD_SECONDS
    for option in result["Certificate"].get("DomainValidationOptions", []):
        option["ValidationStatus"] = "SUCCESS" if self.status == "ISSUED" else self.status
        if shown:
            option["ResourceRecord"] = {"Name": name, "Type": "CNAME", "Value": value}
        else:
            option.pop("ResourceRecord", None)
    return result


def _listeners_using(account, region, arn):
    try:
        elbv2 = elbv2_backends[account][region]
    except KeyError:
        return []
    using = []
    for lb in list(elbv2.load_balancers.values()):
        for listener in list(lb.listeners.values()):
            arns = [listener.certificate] if listener.certificate else []
            arns += [c.get("CertificateArn") if isinstance(c, dict) else c for c in (listener.certificates or [])]
            if arn in arns:
                using.append(listener.arn)
    return using


class ResourceInUse(AWSError):
    TYPE = "ResourceInUseException"


_original_delete_certificate = acm_models.AWSCertificateManagerBackend.delete_certificate


def delete_certificate(self, arn):
    if _listeners_using(self.account_id, self.region_name, arn):
        raise ResourceInUse(message=f"Certificate {arn} is in use by a load balancer listener")
    return _original_delete_certificate(self, arn)


def _refuse_unissued(arns):
    for arn in arns:
        if not arn or ":acm:" not in arn:
            continue
        try:
            account, region = _account_region(arn)
            bundle = acm_models.acm_backends[account][region].get_certificate(arn)
        except Exception:
            continue  # moto's own check says CertificateNotFound
        if bundle.status != "ISSUED":
            raise ELBClientError(
                "UnsupportedCertificate",
                f"The certificate '{arn}' must have a fully-qualified domain name, a supported signature, and a supported key size.",
            )
        if time.monotonic() - _issued_at.get(arn, float("-inf")) < ELB_SEES_SECONDS:
            raise ELBClientError("CertificateNotFound", f"Certificate '{arn}' not found")


_original_create_listener = elbv2_models.ELBv2Backend.create_listener
_original_modify_listener = elbv2_models.ELBv2Backend.modify_listener


def create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate, *args, **kwargs):
    _refuse_unissued([certificate])
    return _original_create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate, *args, **kwargs)


def modify_listener(self, arn, port=None, protocol=None, ssl_policy=None, certificates=None, *args, **kwargs):
    _refuse_unissued([c.get("CertificateArn") for c in certificates or []])
    return _original_modify_listener(self, arn, port, protocol, ssl_policy, certificates, *args, **kwargs)


def install(load_balancers, address):
    """Patches moto; `load_balancers()` yields (backend, load balancer) and `address(dns_name)`
    is a load balancer's loopback address."""

    def test_dns_answer(self):
        zone_id = self._get_param("HostedZoneId")
        record_name = _normal(self._get_param("RecordName"))
        record_type = self._get_param("RecordType")
        zone = self.backend.get_hosted_zone(zone_id)
        named = [r for r in list(zone.rrsets) if _normal(r.name) == record_name]
        data = []
        for rrset in named:
            if rrset.type != record_type:
                continue
            target = rrset.alias_target
            if target:
                wanted = _normal(target.get("DNSName")).removeprefix("dualstack.")
                data += [address(_normal(lb.dns_name)) for _, lb in load_balancers() if _normal(lb.dns_name) == wanted]
            else:
                data += list(rrset.records or [])
        return ActionResult(
            {
                "Nameserver": "ns-1.sandbox.awsdns.test",
                "RecordName": record_name,
                "RecordType": record_type,
                "RecordData": data,
                "ResponseCode": "NOERROR" if named else "NXDOMAIN",
                "Protocol": "UDP",
            }
        )

    route53_urls.url_paths[r"{0}/(?P<api_version>[\d_-]+)/testdnsanswer$"] = route53_responses.Route53.dispatch
    route53_responses.Route53.test_dns_answer = test_dns_answer
    acm_models.CertBundle.generate_cert = classmethod(generate_cert)
    acm_models.CertBundle.check = check
    acm_models.CertBundle.describe = describe
    acm_models.AWSCertificateManagerBackend.delete_certificate = delete_certificate
    elbv2_models.ELBv2Backend.create_listener = create_listener
    elbv2_models.ELBv2Backend.modify_listener = modify_listener
