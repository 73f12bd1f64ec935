"""The statuses of a DNS lookup that say nothing about the name, apart from
the resolver (dns.py), so that judging a scan's answers does not import
dnspython."""

# The resolver did not answer in time, or failed: the name may exist or not.
UNCERTAIN = ("timeout", "servfail", "error")
