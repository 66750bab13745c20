"""One exception tree for camsweep. The CLI turns any of these into a one-line message and exit 2."""


class CamsweepError(Exception):
    """Base of every error camsweep reports to a user (message first, no traceback)."""


class TargetError(CamsweepError):
    """A target that cannot be parsed, or that was refused (nothing is scanned unless named)."""


class LabError(CamsweepError):
    """The lab cannot be built or taken down (no root, no namespaces, a leftover in the way)."""


class StoreError(CamsweepError):
    """The store cannot be opened, migrated or written."""


class DeviceWriteError(StoreError):
    """One device's values were refused by the store (the store itself is fine): the scan goes on."""


class FingerprintError(CamsweepError):
    """The fingerprint database is malformed (a rule without an example, a bad pattern)."""


class CredentialError(CamsweepError):
    """Credentials were asked for but cannot be read."""
