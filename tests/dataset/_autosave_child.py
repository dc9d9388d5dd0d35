"""Child process for test_crash_safety: edits captions and autosaves until it is killed.

Every 20 ms (the debounce, shortened) it flushes the edits made since the last flush, journals
them, and prints ``ack <version>`` once the files are written.
"""

import sys
import time

from zitdesk.dataset.history import Entry, History
from zitdesk.dataset.store import Dataset


def text_for(version: int, name: str) -> str:
    n = 50 + (version * 7919 + len(name) * 104729) % 20000  # 50 B … 20 kB
    body = (f"{name} v{version} " * (n // 10 + 1))[:n]
    return f"v{version}|{name}|{n}|{body}|end"


def main() -> None:
    ds = Dataset.open(sys.argv[1])
    hist = History(ds.meta_dir)
    start = int(sys.argv[2])
    print("ready", flush=True)
    version = start
    while True:
        version += 1
        changes = []
        for it in ds.items:
            new = text_for(version, it.name)
            changes.append((it.name, it.caption, new))
            ds.set_caption(it, new)
        hist.record_do(Entry.new(f"v{version}", changes))
        hist.flush()
        rep = ds.flush()
        assert not rep.conflicts and not rep.errors, rep
        print(f"ack {version}", flush=True)
        time.sleep(0.02)


if __name__ == "__main__":
    main()
