"""core.catalog.library: what the default models were trained on, with licences and attributions."""

from __future__ import annotations

import json

from core.catalog.library import data_credits, describe, licences_by_dataset

IRCAD = "3D-IRCADb-01 (IRCAD, Strasbourg)"
HCC = "HCC-TACE-Seg (The Cancer Imaging Archive)"


def test_licences_by_dataset_reads_both_card_forms():
    two = {"datasets": [IRCAD, HCC], "licence": f"CC BY-NC-ND 4.0 ({IRCAD}); CC BY 4.0 ({HCC})"}
    assert licences_by_dataset(two) == {IRCAD: "CC BY-NC-ND 4.0", HCC: "CC BY 4.0"}
    assert licences_by_dataset({"datasets": [IRCAD], "licence": "CC BY-NC-ND 4.0"}) == {IRCAD: "CC BY-NC-ND 4.0"}
    assert licences_by_dataset({"datasets": [], "licence": ""}) == {}


def _model(folder, stage, card):
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"")
    (folder / "model.json").write_text(json.dumps({"stage": stage, "input_size": 64, "card": card, "default": True}))
    return describe(folder / "model.keras", "bundled")


def test_data_credits_name_each_dataset_once_with_its_attribution(tmp_path, monkeypatch):
    monkeypatch.setattr("core.catalog.library.user_default_models", lambda: {})
    card = {"kind": "real", "datasets": [IRCAD, HCC], "licence": f"CC BY-NC-ND 4.0 ({IRCAD}); CC BY 4.0 ({HCC})",
            "attribution": {HCC: "CC BY 4.0: Moawad AW et al. https://doi.org/10.7937/TCIA.5FNA-0924"}}
    entries = [_model(tmp_path / "l", "liver", card), _model(tmp_path / "t", "tumor", card)]
    assert data_credits(entries) == [f"{IRCAD}: CC BY-NC-ND 4.0",
                                     f"{HCC}: CC BY 4.0: Moawad AW et al. https://doi.org/10.7937/TCIA.5FNA-0924"]
    assert data_credits([]) == []
