"""Fakes of the CRMs Leadbot talks to, built from the seed documents and backends.md, as strict as the real ones.

- ``capillary``: Capillary LMS ``/v2/leads`` (seeds 000/001), till Basic auth and OAuth;
- ``leadsapi``: the REST leads API ``/leads`` (seed 002);
- ``leadsquared``: LeadSquared v2 (seed 003, backends.md Part 1);
- ``getlead``: Getlead's write-only ``/api`` (seed 004).

Each runs on 127.0.0.1 for the tests, and standalone for the console:
``python -m tests.fakes.NAME --port P [--state PATH]`` prints its credentials and staff.
All share ``server.FakeServer``: failures on demand (status, malformed, hang, drop, late),
refused connections, restarts that keep ids, a controllable clock (``ManualClock``) and
sliding-window rate limits. Each module's docstring lists what it checks and every
choice made where the documents are silent.
"""
