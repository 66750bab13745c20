"""camsweep: find restricted-brand cameras on networks you name, and plan their replacement."""

__version__ = "0.1.0"
