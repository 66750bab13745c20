"""scanner/data/model_classes.yaml: the one table of model codes -> replacement classes, checked against its
own examples and against the device types fingerprints/rules/models.yaml gives the same families."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scanner import plan

# classes that are also device types: where a model rule names one, the plan must give the same
_TYPED = frozenset(("ptz", "thermal", "nvr", "dvr", "encoder", "doorbell", "intercom"))


@pytest.mark.parametrize("rule", plan.MODEL_CLASS_RULES, ids=lambda r: r.pattern.pattern)
def test_every_example_gets_its_class(rule: plan.ModelClassRule) -> None:
    assert rule.examples
    for ex in rule.examples:
        assert plan.classify_replacement(None, ex) == rule.cls, ex


def _model_rule_examples() -> list[tuple[str, str, str]]:
    spec = yaml.safe_load((Path(plan.__file__).parents[1] / "fingerprints/rules/models.yaml").read_text())
    return [(r["id"], r["device_type"], ex["value"]) for r in spec["rules"]
            if r.get("device_type") in _TYPED for ex in r.get("examples") or ()]


@pytest.mark.parametrize(("rule_id", "device_type", "model"), _model_rule_examples())
def test_identification_and_plan_agree(rule_id: str, device_type: str, model: str) -> None:
    cls = plan.classify_replacement(None, model)
    assert cls == device_type, f"{rule_id}: {model} -> {cls}"
