"""camsweep's fingerprint database: vendors, OEM relations, restriction lists, policy profiles,
rules per evidence field (each with real examples), and the IEEE MAC registry.

``load_database()`` returns the compiled :class:`Database` (``.version``, ``policies()``,
``lookup_oui(mac)``); ``scanner.identify`` uses it to turn evidence into an identification.
"""

from fingerprints.db import Database, Rule, Vendor, load_database

__all__ = ["Database", "Rule", "Vendor", "load_database"]
