"""A checkpoint written with the shorthand loss keys of older configs resumes under loss.terms."""

from __future__ import annotations

from pixvox.config import PretrainConfig, from_dict, load_config, to_dict
from pixvox.engine.resume import Provenance


def _provenance(cfg: PretrainConfig) -> Provenance:
    return Provenance(
        to_dict(cfg),
        {},
        to_dict(PretrainConfig()),
        normalize=lambda saved: to_dict(from_dict(PretrainConfig, saved)),
    )


def test_shorthand_checkpoint_config_compares_equal_to_its_terms():
    now = load_config(PretrainConfig, None, ["loss.terms=[{name: ppkt, temperature: 0.07, num_pairs: 64}]"])
    old = to_dict(now)
    old["loss"] = {
        "name": "ppkt",
        "embed_dim": 64,
        "temperature": 0.07,
        "num_pairs": 64,
        "pixel_level": False,
    }
    assert _provenance(now).differences({"config": old}) == []
    old["loss"]["temperature"] = 0.1  # a real difference is still named, in today's keys
    assert _provenance(now).differences({"config": old}) == [
        "loss.terms[0].temperature: 0.1 in the checkpoint, 0.07 now"
    ]
    # without normalization every shorthand key would differ
    raw = Provenance(to_dict(now), {}, to_dict(PretrainConfig())).differences({"config": old})
    assert "loss.name: 'ppkt' in the checkpoint, None now" in raw


def test_a_config_of_another_version_is_compared_as_saved():
    now = load_config(PretrainConfig, None, [])
    old = to_dict(now)
    old["loss"]["no_such_key"] = 1
    assert _provenance(now).differences({"config": old}) == [
        "loss.no_such_key: 1 in the checkpoint, (absent) now"
    ]
