"""The ctypes mirrors in pdwebhook/_lib.py have exactly the C layout, and the library
loaded is the version the headers describe."""
import ctypes
import os
import unittest

import pdwebhook
from pdwebhook import _lib

from pdw_testutil import layout

MIRRORED = ["pdw_error", "pdw_header", "pdw_request", "pdw_verdict", "pdw_credential",
            "pdw_dispatch_result", "pdw_receiver_options", "pdw_spool_record",
            "pdw_worker_options", "pdw_intake_options"]


class Layout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = layout()

    def test_every_mirrored_struct_is_described(self):
        self.assertEqual(sorted(self.c["structs"]), sorted(MIRRORED))

    def test_struct_layouts(self):
        for name in MIRRORED:
            with self.subTest(struct=name):
                py = getattr(_lib, name)
                c = self.c["structs"][name]
                self.assertEqual(ctypes.sizeof(py), c["sizeof"], "sizeof(%s)" % name)
                py_fields = [(f[0], getattr(py, f[0]).offset, getattr(py, f[0]).size)
                             for f in py._fields_]
                c_fields = [tuple(f) for f in c["fields"]]
                self.assertEqual(py_fields, c_fields, "members of %s (name, offset, size)"
                                 % name)

    def test_constants(self):
        for name, value in self.c["constants"].items():
            if name.startswith("PDW_VERSION"):
                continue
            with self.subTest(constant=name):
                self.assertEqual(getattr(_lib, name), value)

    def test_codes_used_by_the_binding(self):
        codes = self.c["codes"]
        for name in ("PDW_OK", "PDW_EINVAL", "PDW_EDUPLICATE", "PDW_EHANDLER", "PDW_ESTORE",
                     "PDW_EFROZEN"):
            with self.subTest(code=name):
                self.assertEqual(getattr(_lib, name), codes[name])

    def test_error_codes_from_the_library_match_the_header(self):
        self.assertEqual(pdwebhook.error_codes(), self.c["codes"])

    def test_version_at_run_time_matches_the_header(self):
        k = self.c["constants"]
        self.assertEqual(pdwebhook.version(), k["PDW_VERSION_STRING"])
        self.assertEqual(pdwebhook.version_number(), k["PDW_VERSION_NUMBER"])
        self.assertEqual(k["PDW_VERSION_MAJOR"], pdwebhook.SOVERSION,
                         "the binding's SOVERSION is the headers' major version")
        self.assertGreaterEqual(k["PDW_VERSION_MINOR"], _lib.MIN_MINOR)
        self.assertEqual(pdwebhook.__version__, k["PDW_VERSION_STRING"],
                         "pdwebhook/_version.py follows the C library's version")


class Loading(unittest.TestCase):
    def test_loaded_from_the_environment(self):
        pdwebhook.version()
        env = os.environ.get(pdwebhook.LIBRARY_ENV)
        if not env:
            self.skipTest("%s not set" % pdwebhook.LIBRARY_ENV)
        first = env.split(os.pathsep)[0]
        want = os.path.join(first, _lib._file_name()) if os.path.isdir(first) else first
        self.assertEqual(pdwebhook.library_path(), want)
        self.assertTrue(os.path.basename(os.path.realpath(want))
                        .startswith("libpdwebhook.so.%d" % pdwebhook.SOVERSION))

    def test_soname_file(self):
        self.assertEqual(_lib._file_name(), "libpdwebhook.so.%d" % _lib.SOVERSION)

    def test_directory_entries_name_the_soname_file(self):
        d = os.path.dirname(os.path.abspath(__file__))
        cands = list(_lib._candidates(d))
        self.assertEqual(cands[0], os.path.join(d, "libpdwebhook.so.%d" % _lib.SOVERSION))
        self.assertEqual(cands[-1], "libpdwebhook.so.%d" % _lib.SOVERSION)

    def test_strerror_and_names(self):
        self.assertEqual(pdwebhook.err_name(-10), "PDW_EJSON")
        self.assertEqual(pdwebhook.err_http_status(-10), 400)
        self.assertTrue(pdwebhook.strerror(-10))
        self.assertEqual(pdwebhook.err_name(-100000), "PDW_EUNKNOWN")


if __name__ == "__main__":
    unittest.main()
