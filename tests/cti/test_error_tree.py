"""One exception root for the node: every exception class in cti/ and config/ derives from CtiError and
is named in the tree drawn in cti/errors.py; sip's AuthError and RegistrarError sit under SipError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import config
import cti
import cti.errors
from cti.errors import CtiError, SettingsError
from sip.digest import AuthError
from sip.errors import SipError
from sip.registrar import RegistrarError

KNOWN_OUTSIDE: set[tuple[str, str]] = set()  # none: the call path's exceptions are in the tree too


def _exception_classes() -> list[tuple[str, type[BaseException]]]:
    found: list[tuple[str, type[BaseException]]] = []
    for package in (cti, config):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name in {"cti.__main__"}:
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                    found.append((info.name, obj))
    return found


def test_every_node_exception_derives_from_cti_error() -> None:
    classes = _exception_classes()
    assert len(classes) > 30  # the walk really found the tree
    strays = [
        f"{module}.{cls.__name__}" for module, cls in classes
        if not issubclass(cls, CtiError) and (module, cls.__name__) not in KNOWN_OUTSIDE
    ]
    assert strays == []


def test_the_tree_in_the_docstring_names_every_public_exception() -> None:
    doc = cti.errors.__doc__ or ""
    missing = [
        f"{module}.{cls.__name__}" for module, cls in _exception_classes()
        if not cls.__name__.startswith("_") and cls.__name__ not in doc
    ]
    assert missing == []


def test_settings_error_is_still_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_sip_auth_and_registrar_errors_are_sip_errors() -> None:
    assert issubclass(AuthError, SipError)
    assert issubclass(RegistrarError, SipError)
    assert AuthError("bad").status_hint == 400
    assert RegistrarError("misuse").status_hint == 500
