"""Stand-in for the pip bootstrap script that ansible-test downloads from its CI file server.

ansible-test creates each sanity test's virtualenv without pip, then runs a cached "get-pip"
script to install it. That file server is not reachable from every build machine (PyPI is), so
the Makefile puts this script in ansible-test's cache instead: it bootstraps pip from the
interpreter's own ``ensurepip`` and then lets pip install the exact versions ansible-test asked
for, from PyPI. Only get-pip's own flags (--no-setuptools, --no-wheel) are dropped.

ansible-test runs pip with a reduced environment, so a site whose PyPI access goes through a
TLS-inspecting proxy loses PIP_CERT: the system CA bundle is written into the new virtualenv's own
pip.conf (read by every later pip run in it).
"""
import ensurepip
import os
import ssl
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def system_ca_bundle():
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("PIP_CERT"), paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def main():
    bundle = system_ca_bundle()
    if bundle and sys.prefix != sys.base_prefix:
        with open(os.path.join(sys.prefix, "pip.conf"), "w") as handle:
            handle.write("[global]\ncert = %s\n" % bundle)
    env = dict(os.environ)  # ensurepip points PIP_CONFIG_FILE at /dev/null for the rest of this process
    ensurepip.bootstrap(upgrade=True)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_FLAGS]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env)


if __name__ == "__main__":
    sys.exit(main())
