#!/usr/bin/env python3
"""The zoo table of docs/zoo.md: architectures x exporters x backends, relative error vs
onnxruntime, from tests/models/zoo/zoo.json and a report of tests/test_zoo.py:

    NNJIT_ZOO_REPORT=/tmp/zoo-errors.json python -m pytest -q tests/test_zoo.py
    python tools/zoo_table.py /tmp/zoo-errors.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORTERS = ("dynamo", "legacy")
BACKENDS = ("webgpu", "wasm")


def table(manifest: dict, errors: dict[str, float]) -> str:
    sys.path.insert(0, str(ROOT / "tools"))
    from build_models import zoo_archs  # (imports torch only when building)

    head = ["architecture", "transformers class", "input"]
    head += [f"{e} {b}" for e in EXPORTERS for b in BACKENDS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arch, spec in zoo_archs().items():
        cls = spec.model + (" (encoder)" if spec.encoder else "")
        cells = [arch, cls, spec.inputs]
        for e in EXPORTERS:
            entry = manifest.get(f"{arch}-{e}")
            for b in BACKENDS:
                if entry is None:
                    cells.append("not built")
                elif "export_error" in entry:
                    cells.append("export fails")
                else:
                    err = errors.get(f"{arch}-{e}/{b}")
                    cells.append("fails" if err is None else f"{err:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/zoo_table.py <errors.json from NNJIT_ZOO_REPORT>", file=sys.stderr)
        return 2
    manifest = json.loads((ROOT / "tests/models/zoo/zoo.json").read_text())
    errors = json.loads(Path(argv[0]).read_text())
    print(table(manifest, errors))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
