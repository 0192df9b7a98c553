"""Hash a lock's pins by copying the hashes of the same releases from the locks at hand.

``make lock`` needs the sha256 hashes of every distribution of each pinned release (every
Python, every platform). ``pip-compile --generate-hashes`` finds them by downloading each
file where the index serves no hashes: several GB for this environment. A release's files
are the same whichever Python's lock pins it, so for the pins of one freeze this script
writes what pip-compile would write, from the locks already made, when every pin is in
one of them; otherwise it prints the pins that are in none (for pip-compile to hash, after
which a second call with pip-compile's output among the locks finds them all) and exits 1.

Usage: ``python requirements/reuse_hashes.py PINS OUTPUT LOCK...``
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: What pip-compile sets apart at the end of its output (with --allow-unsafe).
UNSAFE = {"pip", "setuptools", "distribute"}
UNSAFE_HEADER = "# The following packages are considered to be unsafe in a requirements file:"


def canonical(name: str) -> str:
    """The name as pip-compile sorts and compares it.

    >>> canonical("Jinja2"), canonical("typing_extensions")
    ('jinja2', 'typing-extensions')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def blocks(lock: str) -> dict[str, list[str]]:
    """Each ``name==version`` entry of a lock (canonical) with its lines.

    >>> blocks("# a comment\\nJinja2==3.1.6 \\\\\\n    --hash=sha256:ab\\n")
    {'jinja2==3.1.6': ['Jinja2==3.1.6 \\\\', '    --hash=sha256:ab']}
    """
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lock.splitlines():
        if line.startswith(" ") and current is not None:
            current.append(line)
        elif "==" in line and not line.startswith("#"):
            name, version = line.rstrip(" \\").split("==")
            current = found.setdefault(f"{canonical(name)}=={version}", [line])
        else:
            current = None
    return found


def main(pins_path: str, output: str, *locks: str) -> int:
    known: dict[str, list[str]] = {}
    for lock in locks:
        for key, lines in blocks(Path(lock).read_text()).items():
            known.setdefault(key, lines)
    lines = Path(pins_path).read_text().splitlines()
    pins = [p for p in lines if "==" in p and not p.startswith("#")]
    named = {canonical(p.split("==")[0]): p.split("==")[1] for p in pins}
    keys = [f"{name}=={named[name]}" for name in sorted(named)]  # pip-compile's order
    missing = [k for k in keys if k not in known]
    if missing:
        print("\n".join(missing))
        return 1
    safe = [line for k in keys if k.split("==")[0] not in UNSAFE for line in known[k]]
    unsafe = [line for k in keys if k.split("==")[0] in UNSAFE for line in known[k]]
    text = "\n".join(safe + (["", UNSAFE_HEADER, *unsafe] if unsafe else [])) + "\n"
    Path(output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
