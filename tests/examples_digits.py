"""Import examples/make_digits.py from the tests without making examples a package."""
import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "examples" / "make_digits.py"
_spec = importlib.util.spec_from_file_location("make_digits", _PATH)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def write_digits(directory):
    _module.main(str(directory))
