"""Fakes of the CRMs Leadbot talks to, built from the seed documents' samples.

Each runs on 127.0.0.1 for the tests, and standalone for the console:
``python -m tests.fakes.capillary`` (see README).
"""
