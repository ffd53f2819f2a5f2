"""The package's version: the C library's it is written for (tests/test_layout.py checks
that the freshly built library says the same). A library of another major version is
refused at load (its SONAME is libpdwebhook.so.<major>)."""
__version__ = "1.0.0"
