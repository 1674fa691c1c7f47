"""`python -m bench`: qa's speed, each figure beside its baseline from the same run.

    python -m bench [--documents 1000] [--questions 200] [--backend onnx] [--json FILE]
                    [--scale 100000 1000000 | --scale] [--txtai PYTHON]
    python -m bench --engine milvus [--documents 1000] [--questions 200] [--ray-documents 400]
                    [--ray-corpus DIR]

Then the vector index at scale (bench/scale.py) on synthetic vectors; `--scale` with
no sizes skips it. `--engine milvus` measures instead the Milvus engine beside the
embedded one and Ray ingest beside a plain one (bench/engines.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import scale
from bench.speed import SQUAD, format_table, run, squad_workload, write_json


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SQUAD, help="A BEIR-layout folder. [default: SQuAD-dev paragraphs]")
    parser.add_argument("--documents", type=int, default=1000, help="Documents to ingest. [default: 1000]")
    parser.add_argument("--questions", type=int, default=200, help="Questions to ask. [default: 200]")
    parser.add_argument("--backend", choices=["onnx", "torch"], default="onnx", help="Question encoder. [default: onnx]")
    parser.add_argument("--seconds", type=float, default=10, help="Length of each concurrent HTTP run. [default: 10]")
    parser.add_argument("--scale", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="Synthetic vector counts for the index at scale. [default: 100000 1000000]")
    parser.add_argument("--txtai", metavar="PYTHON",
                        help="A Python with txtai installed (see bench/txtai_side.py): adds txtai side by side.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--engine", choices=["embedded", "milvus"], default="embedded",
                        help="milvus: Milvus Lite's search beside the embedded engine's, and Ray ingest beside a "
                             "plain one. [default: embedded]")
    parser.add_argument("--ray-documents", type=int, default=400,
                        help="Documents ingested by each ingest run of --engine milvus. [default: 400]")
    parser.add_argument("--ray-corpus", type=Path,
                        help="A BEIR-layout folder for those ingest runs. [default: --corpus]")
    args = parser.parse_args()
    if args.engine == "milvus":
        from bench import engines

        ingested = squad_workload(args.ray_corpus or args.corpus, args.ray_documents, 0)
        compared = engines.run(squad_workload(args.corpus, args.documents, args.questions), args.backend, ingested)
        print(engines.format_table(compared))
        if args.json:
            engines.write_json(compared, args.json)
        return
    figures = run(squad_workload(args.corpus, args.documents, args.questions), args.backend, args.seconds,
                  args.txtai)
    print(format_table(figures))
    if args.scale:
        figures["scale"] = scale.run(args.scale, ["clustered", "uniform"])
        print("\nThe vector index at scale (synthetic 384-d unit vectors, one question at a time, one thread)")
        print(scale.format_table(figures["scale"]))
    if args.json:
        write_json(figures, args.json)


if __name__ == "__main__":
    main()
