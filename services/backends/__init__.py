"""The backends, one module each, found by name in ``REGISTRY``.

Adding a backend is one module that defines its ``Backend`` subclass, its
options model and a ``SPEC`` (``services.backends.base.BackendSpec``), one
line below, its fake under ``tests/fakes/`` and one line in the backend
contract suite. Settings, start-up checks, ``/lead backends``, help and the
app factory all read the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from services.backends import capillary, getlead, leadsapi, leadsquared, local
from services.backends.base import BackendSpec

REGISTRY: Mapping[str, BackendSpec] = MappingProxyType(
    {spec.name: spec for spec in (local.SPEC, capillary.SPEC, leadsapi.SPEC, leadsquared.SPEC, getlead.SPEC)}
)
