"""Local certificates for the lab's control plane (Python ``cryptography``; ECDSA P-256).

Everything lives under RUN/pki and is reused while the CA is valid. Identities mirror kubeadm:
the admin is in ``system:masters``, the controller manager and scheduler use their
``system:kube-*`` users (bound by the API server's bootstrap RBAC policy).
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import settings

VALIDITY = datetime.timedelta(days=365)

# name -> (CN, O or None, usage, SANs)
CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("gpufleet-lab:kwok-controller", "system:masters"),
    "gpu-simulator": ("gpufleet-lab:gpu-simulator", "system:masters"),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
}


def _path(name, ext):
    return os.path.join(settings.PKI, "%s.%s" % (name, ext))


def _write_key(key, path):
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(cert, path):
    with open(path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))


def _load(name):
    with open(_path(name, "key"), "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), None)
    with open(_path(name, "crt"), "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    return key, cert


def _name(cn, org=None):
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _valid(name):
    try:
        _, cert = _load(name)
    except (OSError, ValueError):
        return False
    now = datetime.datetime.now(datetime.timezone.utc)
    return cert.not_valid_after_utc - now > datetime.timedelta(days=1)


def _ca():
    if _valid("ca"):
        return _load("ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name("gpufleet-lab-ca")
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + 10 * VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key, _path("ca", "key"))
    _write_cert(cert, _path("ca", "crt"))
    # A new CA invalidates every leaf.
    for entry in os.listdir(settings.PKI):
        if entry.endswith(".crt") and entry != "ca.crt":
            os.unlink(os.path.join(settings.PKI, entry))
    return key, cert


def _leaf(name, cn, org, ca, server=False, sans=()):
    if _valid(name):
        return
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        alt = []
        for san in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                alt.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key, _path(name, "key"))
    _write_cert(cert, _path(name, "crt"))


def _service_account_keys():
    if os.path.exists(_path("sa", "key")) and os.path.exists(_path("sa", "pub")):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    _write_key(key, _path("sa", "key"))
    with open(_path("sa", "pub"), "wb") as fh:
        fh.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))


def ensure():
    """Create (or reuse) the CA, serving/client certificates and service-account keys."""
    os.makedirs(settings.PKI, mode=0o700, exist_ok=True)
    ca = _ca()
    _leaf("apiserver", "kube-apiserver", None, ca, server=True,
          sans=(settings.HOST, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local", settings.SERVICE_IP))
    for name in ("controller-manager", "scheduler"):
        _leaf(name + "-serving", "kube-" + name, None, ca, server=True, sans=(settings.HOST, "localhost"))
    for name, (cn, org) in CLIENTS.items():
        _leaf(name, cn, org, ca)
    # The aggregation layer's client (kube-apiserver -> aggregated API servers such as Kueue's visibility API)
    _leaf("front-proxy-client", "front-proxy-client", None, ca)
    _service_account_keys()
    return settings.PKI


def path(name, ext="crt"):
    return _path(name, ext)


def serving_bundle(cn, dns_names, days=365):
    """A fresh self-signed CA and a serving certificate for dns_names: {tls.key, tls.crt, ca.crt} (PEM)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(cn + "-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return {
        "tls.key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "tls.crt": cert.public_bytes(pem),
        "ca.crt": ca.public_bytes(pem),
    }
