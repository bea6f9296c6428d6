"""Leadbot's domain: lead models, the LeadService and one module per backend.

Nothing in this package knows about Slack.
"""
