"""One module per lead-management system, each behind ``Backend``."""
