"""stratlog: the audit log of a rule-based scoring engine, its repository, service and dashboard."""

__version__ = "0.1.0"
