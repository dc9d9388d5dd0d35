"""AppSettings: versioned JSON, tolerant load, migrations (no Qt needed)."""

from __future__ import annotations

import json

from zitdesk import settings as st
from zitdesk.settings import AppSettings, load_settings, save_settings, settings_path


def test_missing_file_gives_defaults_without_notice():
    s, notice = load_settings()
    assert s == AppSettings() and notice == ""
    assert not s.model_configured


def test_round_trip_is_atomic_json_in_the_config_dir(_isolated_home):
    s = AppSettings(model_path="/m", width=832, height=1248, seed_mode="fixed", seed=42)
    path = save_settings(s)
    assert path == settings_path() and path.parent == _isolated_home / "config"
    data = json.loads(path.read_text())
    assert data["version"] == st.CURRENT_VERSION and data["width"] == 832
    loaded, notice = load_settings()
    assert loaded == s and notice == ""
    assert not list(path.parent.glob(".settings.json.*.tmp"))


def test_damaged_file_is_kept_as_bak_and_defaults_are_used():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    s, notice = load_settings()
    assert s == AppSettings()
    assert "damaged" in notice and "settings.json.bak" in notice
    assert path.with_name("settings.json.bak").read_text() == "{not json"
    assert path.read_text() == "{not json"  # never wiped


def test_bad_values_are_reset_one_by_one():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "model_path": "/ok",
                "width": 1000,
                "steps": "eight",
                "memory_mode": "warp",
                "vae_tiling": True,
                "unknown": 1,
            }
        )
    )
    s, notice = load_settings()
    assert s.model_path == "/ok" and s.vae_tiling is True
    assert (s.width, s.steps, s.memory_mode) == (1024, 8, "gpu")
    assert "width" in notice and "steps" in notice and "memory_mode" in notice
    assert path.with_name("settings.json.bak").exists()


def test_unversioned_file_is_migrated():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"model": "/old/place", "size": [832, 1248]}))
    s, notice = load_settings()
    assert notice == ""
    assert (s.model_path, s.width, s.height, s.version) == (
        "/old/place",
        832,
        1248,
        st.CURRENT_VERSION,
    )


def test_file_from_a_newer_version_keeps_known_keys():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 99, "steps": 9, "fancy": True}))
    s, notice = load_settings()
    assert s.steps == 9 and "newer" in notice


def test_migrations_run_in_order(monkeypatch):
    calls = []

    def v0(d):
        calls.append(0)
        return {**d, "steps": 5}

    def v1(d):
        calls.append(1)
        return {**d, "steps": d["steps"] + 1}

    monkeypatch.setattr(st, "MIGRATIONS", [v0, v1])
    monkeypatch.setattr(st, "CURRENT_VERSION", 2)
    assert st.migrate({})["steps"] == 6 and calls == [0, 1]
    assert st.migrate({"version": 1, "steps": 1})["steps"] == 2
