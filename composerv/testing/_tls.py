"""`tls_contexts`: a throwaway certificate authority and server certificate for TLS tests."""

from __future__ import annotations

import functools
import importlib.util
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import attrs

from ._wait import DEFAULT_TIMEOUT

__all__ = ["TLSCertificate", "TLSContexts", "certificate_maker", "tls_certificate", "tls_contexts"]

# The names a test server on loopback is reached by; a client checks one of them.
IDENTITIES = ("127.0.0.1", "::1", "localhost")


@attrs.frozen
class TLSCertificate:
    """A server certificate for ``127.0.0.1``, ``::1`` and ``localhost``, its private
    key, and the certificate authority a client trusts to check it (all PEM)."""

    certificate_pem: bytes = attrs.field(repr=False)
    """The server's certificate chain, leaf first."""
    private_key_pem: bytes = attrs.field(repr=False)
    """The server certificate's private key, unencrypted."""
    ca_pem: bytes = attrs.field(repr=False)
    """The certificate of the authority that issued it (the certificate itself, when
    self-signed)."""

    def write(self, directory: Path) -> tuple[Path, Path]:
        """The certificate chain and the key written to ``cert.pem`` and ``key.pem`` in
        `directory`, for what takes file names (``composerv run --ssl-certfile``)."""
        certificate, key = directory / "cert.pem", directory / "key.pem"
        certificate.write_bytes(self.certificate_pem)
        key.write_bytes(self.private_key_pem)
        return certificate, key

    def server_context(self) -> ssl.SSLContext:
        """A new server-side context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # load_cert_chain reads only files; they are gone once it has read them.
        with tempfile.TemporaryDirectory(prefix="composerv-tls-") as directory:
            context.load_cert_chain(*self.write(Path(directory)))
        return context

    def client_context(self) -> ssl.SSLContext:
        """A new client-side context that trusts this certificate's authority and checks
        host names: connect with ``server_hostname="127.0.0.1"`` (or ``"::1"``, or
        ``"localhost"``)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))


class TLSContexts(NamedTuple):
    """A server context and a client context that trusts it (see `tls_contexts`)."""

    server: ssl.SSLContext
    """Presents the test certificate: pass it to `composerv.tls`."""
    client: ssl.SSLContext
    """Trusts the test certificate's authority and checks host names."""


def _with_trustme() -> TLSCertificate:
    import trustme

    authority = trustme.CA()
    leaf = authority.issue_cert(*IDENTITIES)
    return TLSCertificate(
        certificate_pem=b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        private_key_pem=leaf.private_key_pem.bytes(),
        ca_pem=authority.cert_pem.bytes(),
    )


def _with_openssl() -> TLSCertificate:
    alternative_names = ",".join(
        f"DNS:{name}" if name == "localhost" else f"IP:{name}" for name in IDENTITIES
    )
    with tempfile.TemporaryDirectory(prefix="composerv-tls-") as directory:
        certificate, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", f"subjectAltName={alternative_names}",
             "-keyout", str(key), "-out", str(certificate)],
            check=True, capture_output=True, timeout=DEFAULT_TIMEOUT,
        )  # fmt: skip
        pem = certificate.read_bytes()
        return TLSCertificate(certificate_pem=pem, private_key_pem=key.read_bytes(), ca_pem=pem)


def certificate_maker() -> Callable[[], TLSCertificate] | None:
    """How this machine makes test certificates: trustme if it is installed, else the
    openssl command if it is on PATH; None if neither."""
    if importlib.util.find_spec("trustme") is not None:
        return _with_trustme
    if shutil.which("openssl") is not None:
        return _with_openssl
    return None


@functools.cache
def tls_certificate() -> TLSCertificate:
    """The test certificate of this process, made on first use and then reused.

    Made with `trustme <https://pypi.org/project/trustme/>`_ (a certificate
    authority and a server certificate it issued) when it is installed, else
    with the ``openssl`` command (a self-signed certificate, valid for a day).
    Raises `RuntimeError` when neither is available. Never use it outside tests:
    its key is unprotected.
    """
    make = certificate_maker()
    if make is None:
        raise RuntimeError(
            "cannot make a test certificate: install trustme (pip install trustme) "
            "or put the openssl command on PATH"
        )
    return make()


def tls_contexts() -> TLSContexts:
    """New server and client contexts for the test certificate (`tls_certificate`)::

        server_context, client_context = tls_contexts()
        server = serve(tls(tcp(("127.0.0.1", 0)), server_context), threaded(), handler)
        with serving(server):
            raw = socket.create_connection(server.address, timeout=10)
            with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as client:
                ...

    The contexts are new on every call, so a test may change its own.
    """
    certificate = tls_certificate()
    return TLSContexts(certificate.server_context(), certificate.client_context())
