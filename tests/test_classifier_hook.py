"""Classifiers registered by plugins through the ``register_classifiers`` pluggy hook (no second registry)."""

from __future__ import annotations

import pytest

import steerdiff as sd
from steerdiff.errors import ConfigError
from steerdiff_plugins.scoring import classifiers as C


class _Digits:
    labels = ("other", "digits")

    def score(self, texts):
        return [[0.0, float(sum(ch.isdigit() for ch in t))] for t in texts]


class _Plugin:
    def __init__(self, name, factory):
        self.name, self.factory = name, factory

    @sd.hookimpl
    def register_classifiers(self, register):
        register(self.name, self.factory)


def test_a_plugin_registers_a_classifier_through_the_hook():
    name = sd.register_plugin(_Plugin("hook-digits", _Digits), name="hook-digits-plugin")
    try:
        assert "hook-digits" in C.classifier_names()
        clf = C.get_classifier("hook-digits")
        assert isinstance(clf, _Digits) and C.modes_of(clf) == ["scorer"]
        assert C.get_classifier("hook-digits") is clf  # built once
        g = sd.make_constraint({"type": "classifier", "classifier": "hook-digits", "target": "digits", "scale": 2})
        assert g.name == "hook-digits" and g.classifier is clf and g.target == "digits"
    finally:
        sd.unregister_plugin(name)
        C._factories.pop("hook-digits", None)
        C._instances.pop("hook-digits", None)


def test_a_name_registered_first_keeps_its_factory():
    name = sd.register_plugin(_Plugin("sentiment", _Digits), name="shadowing-plugin")
    try:
        assert not isinstance(C.get_classifier("sentiment"), _Digits)  # the built-in VADER classifier stays
    finally:
        sd.unregister_plugin(name)


def test_a_bad_name_from_a_plugin_is_a_config_error():
    name = sd.register_plugin(_Plugin("", _Digits), name="bad-name-plugin")
    try:
        with pytest.raises(ConfigError, match="classifier name"):
            C.classifier_names()
    finally:
        sd.unregister_plugin(name)
