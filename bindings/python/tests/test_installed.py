"""The package as pip installed it, in a venv, with the library in the venv's prefix: found
without any environment variable, typed, and of the library's version."""
import os
import subprocess
import sys
import unittest

import pdwebhook
from pdwebhook import _lib


def inside(path, prefix):
    path, prefix = os.path.realpath(path), os.path.realpath(prefix)
    return os.path.commonpath([path, prefix]) == prefix


class Installed(unittest.TestCase):
    def setUp(self):
        if sys.prefix == sys.base_prefix:
            self.skipTest("not in a venv (ctest runs this test in the one it made)")

    def test_no_environment(self):
        self.assertNotIn(pdwebhook.LIBRARY_ENV, os.environ)
        self.assertNotIn("LD_LIBRARY_PATH", os.environ)

    def test_package_from_site_packages(self):
        self.assertTrue(inside(pdwebhook.__file__, sys.prefix), pdwebhook.__file__)
        self.assertIn("site-packages", pdwebhook.__file__)

    def test_typed(self):
        here = os.path.dirname(pdwebhook.__file__)
        self.assertTrue(os.path.exists(os.path.join(here, "py.typed")))
        self.assertTrue(os.path.exists(os.path.join(here, "__init__.pyi")))

    def test_library_found_in_the_prefix(self):
        self.assertEqual(pdwebhook.version(), pdwebhook.__version__)
        self.assertTrue(inside(pdwebhook.library_path(), sys.prefix),
                        pdwebhook.library_path())
        _lib.durable()
        self.assertTrue(inside(pdwebhook.durable_library_path(), sys.prefix),
                        pdwebhook.durable_library_path())

    def test_intake_and_adapters_import(self):
        import pdwebhook.asgi
        import pdwebhook.wsgi
        self.assertTrue(callable(pdwebhook.Intake))
        self.assertIs(pdwebhook.wsgi.Middleware, pdwebhook.wsgi.App)

    def run_py(self, code):
        return subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, cwd="/", timeout=60)

    def test_other_major_refused(self):
        # the same library, seen by a binding written for major 2
        p = self.run_py(
            "import pdwebhook, pdwebhook._lib as l\n"
            "path = pdwebhook.library_path() if pdwebhook.version() else None\n"
            "l._lib = None; l.SOVERSION = 2\n"
            "l._candidates = lambda path=None, base='libpdwebhook': [%r]\n"
            "try:\n    l.load()\nexcept OSError as e:\n    print('REFUSED', e)\n"
            % os.path.realpath(pdwebhook.library_path()))
        out = p.stdout.decode()
        self.assertIn("REFUSED", out)
        self.assertIn("version %s; this binding needs 2.0" % pdwebhook.__version__, out)

    def test_clear_error_when_missing(self):
        p = self.run_py(
            "import pdwebhook._lib as l\n"
            "l._candidates = lambda path=None, base='libpdwebhook': "
            "['/nonexistent/libpdwebhook.so.1', 'libpdwebhook-absent.so.1']\n"
            "try:\n    l.load()\nexcept l.LibraryNotFound as e:\n"
            "    print('MISSING', e); print(len(e.tried))\n")
        out = p.stdout.decode()
        self.assertIn("MISSING", out)
        self.assertIn("cannot load libpdwebhook.so.1", out)
        self.assertIn("/nonexistent", out)
        self.assertIn("libpdwebhook-absent.so.1", out)
        self.assertIn("PDWEBHOOK_LIBRARY", out)


if __name__ == "__main__":
    unittest.main()
