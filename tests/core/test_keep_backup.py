"""zitdesk.io.keep_backup: the one way a damaged file is kept as ``<name>.bak`` (issue 13)."""

from __future__ import annotations

from zitdesk.io import keep_backup


def test_keep_backup_copies_and_replaces_an_older_copy(tmp_path):
    p = tmp_path / "settings.json"
    p.write_bytes(b"{not json")
    (tmp_path / "settings.json.bak").write_text("older")
    assert keep_backup(p) == tmp_path / "settings.json.bak"
    assert (tmp_path / "settings.json.bak").read_bytes() == b"{not json"
    assert p.read_bytes() == b"{not json"  # the original is left for the caller
    assert sorted(x.name for x in tmp_path.iterdir()) == ["settings.json", "settings.json.bak"]


def test_keep_backup_of_a_missing_file_is_none(tmp_path):
    assert keep_backup(tmp_path / "gone.json") is None
    assert not list(tmp_path.iterdir())
