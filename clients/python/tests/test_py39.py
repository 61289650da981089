"""The package runs on Python 3.9: every module parses as 3.9 grammar."""

import ast
import pathlib

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "assetd"


def test_modules_parse_as_python_3_9():
    mods = sorted(SRC.glob("*.py"))
    assert len(mods) >= 5
    for m in mods:
        ast.parse(m.read_text(), filename=str(m), feature_version=(3, 9))


def test_py_typed_ships():
    assert (SRC / "py.typed").exists()
