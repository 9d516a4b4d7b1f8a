"""The PROXY protocol (HAProxy's v1 text and v2 binary headers) as pure values and functions.

A proxy in front of the server (HAProxy, a cloud load balancer) writes a header
naming the real client before the client's own bytes. `decode_proxy_header` reads
it from the bytes received so far; `encode_proxy_header` writes one.
"""

from ._decode import (
    DEFAULT_MAX_SIZE,
    ProxyHeaderDecoded,
    ProxyHeaderIncomplete,
    decode_proxy_header,
)
from ._encode import encode_proxy_header
from ._header import (
    ProxyAddress,
    ProxyHeader,
    ProxySSL,
    ProxySSLClient,
    ProxySSLSubtype,
    ProxyTLVType,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ProxyAddress",
    "ProxyHeader",
    "ProxyHeaderDecoded",
    "ProxyHeaderIncomplete",
    "ProxySSL",
    "ProxySSLClient",
    "ProxySSLSubtype",
    "ProxyTLVType",
    "decode_proxy_header",
    "encode_proxy_header",
]
