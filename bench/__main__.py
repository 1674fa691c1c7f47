"""`python -m bench`: qa's speed, each figure beside its baseline from the same run.

    python -m bench [--documents 1000] [--questions 200] [--backend onnx] [--json FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.speed import SQUAD, format_table, run, squad_workload, write_json


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SQUAD, help="A BEIR-layout folder. [default: SQuAD-dev paragraphs]")
    parser.add_argument("--documents", type=int, default=1000, help="Documents to ingest. [default: 1000]")
    parser.add_argument("--questions", type=int, default=200, help="Questions to ask. [default: 200]")
    parser.add_argument("--backend", choices=["onnx", "torch"], default="onnx", help="Question encoder. [default: onnx]")
    parser.add_argument("--seconds", type=float, default=10, help="Length of each concurrent HTTP run. [default: 10]")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    figures = run(squad_workload(args.corpus, args.documents, args.questions), args.backend, args.seconds)
    print(format_table(figures))
    if args.json:
        write_json(figures, args.json)


if __name__ == "__main__":
    main()
