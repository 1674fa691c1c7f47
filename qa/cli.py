"""The `qa` command: ingest, delete, list, ask, serve and eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qa.errors import QAError
from qa.settings import BY_NAME, Setting


class _SettingValue(click.ParamType):
    """An option's text turned into its setting's value by the setting's own parser."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.name = setting.kind

    def convert(self, value, param, ctx):
        try:
            return self.setting.value(value)
        except QAError as error:
            self.fail(error.message.replace(self.setting.env, f"--{param.name.replace('_', '-')}"), param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return f"[{'|'.join(self.setting.choices)}]" if self.setting.kind == "choice" else self.setting.kind.upper()


def _option(name: str, *flags: str, **extra):
    """A CLI option backed by the declared setting of the same name: unset on the command
    line, it takes the setting's ``QA_*`` variable, read by the same parser as the app's."""
    setting = BY_NAME[name]
    if setting.kind == "flag":
        extra.setdefault("is_flag", True)
    else:
        extra.setdefault("type", _SettingValue(setting))
    return click.option(
        *flags or (f"--{name.lower().replace('_', '-')}",), default=setting.from_environment,
        show_default=str(setting.default) if setting.default is not None else False,
        help=f"{setting.help} [env {setting.env}]", **extra,
    )


@click.group()
@click.version_option(package_name="qa")
def cli() -> None:
    """Answer questions from a folder of documents."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_option("INDEX", type=click.Path(path_type=Path))
@_option("MODEL")
@_option("DEVICE")
@click.option("--replace", is_flag=True, help="Drop every document not in PATHS instead of keeping it.")
@click.option("--id", "doc_id", help="Store the one file given under this id instead of its path.")
def ingest(paths: tuple[Path, ...], index: Path, model: str | None, device: str | None, replace: bool,
           doc_id: str | None) -> None:
    """Index .txt, .md, .html and .pdf files under PATHS (files or folders).

    A document is known by its path from the folder named (or its file name), and
    ingesting it again replaces it; unchanged documents are not embedded again."""
    from qa.embedding import DEFAULT_MODEL, Embedder
    from qa.ingest import ingest as run_ingest

    progress = sys.stderr.isatty()
    report = run_ingest(paths, index, Embedder(model or DEFAULT_MODEL, device), replace=replace, progress=progress,
                        doc_id=doc_id, on_skip=lambda reason: click.echo(f"skipped {reason}", err=True))
    click.echo(
        f"stored {len(report.stored)} document(s) ({len(report.unchanged)} unchanged) in {report.seconds:.1f} s; "
        f"{index} now holds {report.documents} document(s), {report.passages} passage(s)"
    )


@cli.command()
@click.argument("doc_ids", nargs=-1, required=True)
@_option("INDEX", type=click.Path(path_type=Path))
def delete(doc_ids: tuple[str, ...], index: Path) -> None:
    """Remove the documents DOC_IDS from the index."""
    from qa.index import Index
    from qa.ingest import delete_documents

    opened = Index.open(index)
    try:
        deleted = delete_documents(opened, list(doc_ids))
        opened.save()
    finally:
        opened.close()
    for doc_id in doc_ids:
        click.echo(f"deleted {doc_id}" if doc_id in deleted else f"not found: {doc_id}", err=doc_id not in deleted)
    if len(deleted) < len(doc_ids):
        sys.exit(1)


@cli.command("list")
@_option("INDEX", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per document.")
def list_documents(index: Path, as_json: bool) -> None:
    """List the documents in the index: id, passages, title."""
    from qa.index import open_store

    store = open_store(index)
    try:
        documents = store.documents()
    finally:
        store.close()
    for document in documents:
        if as_json:
            click.echo(json.dumps(document, ensure_ascii=False))
        else:
            click.echo(f"{document['id']}\t{document['passages']}\t{document['title']}")


@cli.command()
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, help="How many passages to return (1-50).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON response.")
@click.option("--source", help="Only documents from this source.")
@click.option("--doc-id-prefix", help="Only documents whose id begins so.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Only documents whose metadata KEY has VALUE; repeat a KEY for any of several values.")
@_option("INDEX", type=click.Path(path_type=Path))
@_option("MODEL")
@_option("BACKEND")
def ask(question: str, k: int, mode: str, as_json: bool, source: str | None, doc_id_prefix: str | None,
        meta: tuple[str, ...], index: Path, model: str | None, backend: str) -> None:
    """Print the passages that best answer QUESTION, answer sentence first."""
    from qa.filters import SearchFilter
    from qa.search import SearchRequest
    from qa.service import Service

    request = SearchRequest.parse(question, k, mode, SearchFilter.from_query(_filter_args(source, doc_id_prefix, meta)))
    response = Service.open(index, model, backend).search(request)
    if as_json:
        from qa.web.api import response_json

        click.echo(json.dumps(response_json(response), ensure_ascii=False, indent=2))
        return
    if not response.results:
        click.echo("No passage matches that question.")
    for result in response.results:
        click.echo(f"{result.rank}. {result.answer.text}")
        page = f", page {result.page}" if result.page else ""
        click.echo(f"   {result.section or result.title} ({result.source}{page}), score {result.score:.3f}\n")


def _filter_args(source: str | None, doc_id_prefix: str | None, meta: tuple[str, ...]) -> dict[str, list[str]]:
    """``qa ask``'s filter options as the URL parameters ``SearchFilter.from_query`` reads."""
    args: dict[str, list[str]] = {}
    if source is not None:
        args["source"] = [source]
    if doc_id_prefix is not None:
        args["doc_id_prefix"] = [doc_id_prefix]
    for pair in meta:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--meta")
        args.setdefault(f"meta.{key}", []).append(value)
    return args


@cli.command()
@_option("HOST")
@_option("PORT")
@_option("WORKERS")
@_option("THREADS")
@_option("INDEX", type=click.Path(path_type=Path))
@_option("MODEL")
@_option("BACKEND")
@_option("QUESTION_CACHE")
@_option("LOG_QUERIES")
def serve(host: str, port: int, workers: int, threads: int, index: Path, model: str | None, backend: str,
          question_cache: int, log_queries: bool) -> None:
    """Serve the API and the search page: waitress, or gunicorn with --workers above 1."""
    config = {"INDEX": str(index), "MODEL": model, "BACKEND": backend, "QUESTION_CACHE": question_cache,
              "LOG_QUERIES": log_queries}
    click.echo(f"serving {index} on http://{host}:{port}/ with {workers} worker(s)", err=True)
    if workers > 1:
        from qa.web import workers as gunicorn_workers

        gunicorn_workers.serve(config, host, port, workers, threads)
        return
    import waitress

    from qa.web import create_app

    app = create_app(config)
    passages = app.extensions["qa.service"].status().passages
    click.echo(f"{passages} passages loaded; ready", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="qa")


@cli.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/<split>.tsv to score.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "dense", "lexical"]),
              help="Mode to score; repeat for several.  [default: all three]")
@click.option("--fusion", "fusions", multiple=True, type=click.Choice(["convex", "rrf"]),
              help="How hybrid mode fuses; repeat to compare.  [default: convex]")
@click.option("--k", "depth", default=100, show_default=True, type=click.IntRange(1, 1000),
              help="Documents ranked per question.")
@click.option("--cache", type=click.Path(path_type=Path), default=Path("index/eval"), show_default=True,
              help="Where indexes of evaluated corpora are kept for reuse.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the figures here as JSON.")
@_option("MODEL")
@_option("BACKEND")
@_option("DEVICE")
def evaluate(dataset_dir: Path, split: str, modes: tuple[str, ...], fusions: tuple[str, ...], depth: int,
             cache: Path, json_path: Path | None, model: str | None, backend: str, device: str | None) -> None:
    """Score retrieval on a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)."""
    from qa import evaluation
    from qa.beir import load_beir
    from qa.chunking import ChunkSettings
    from qa.embedding import DEFAULT_MODEL, Embedder
    from qa.fusion import Fusion
    from qa.search import Searcher

    dataset = load_beir(dataset_dir, split)
    embedder = Embedder(model or DEFAULT_MODEL, device, backend=backend, cache_size=0)
    settings = ChunkSettings()
    root = evaluation.eval_index_path(cache, dataset_dir, embedder.name, settings)
    progress = sys.stderr.isatty()
    searcher = Searcher(evaluation.open_eval_index(dataset, root, embedder, settings, progress), embedder)
    searcher.warm_up()
    reports = []
    for mode in modes or ("hybrid", "dense", "lexical"):
        for method in (fusions or ("convex",)) if mode == "hybrid" else ("",):
            searcher.fusion = Fusion(method) if method else Fusion()
            report = evaluation.evaluate(searcher, dataset, mode, depth, progress)
            if fusions:
                report.mode = f"{mode} {method}".strip()
            reports.append(report)
    click.echo(evaluation.format_table(dataset, reports))
    if json_path:
        figures = {"dataset": dataset.name, "split": split, "index": str(root), "modes": [r.as_dict() for r in reports]}
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except QAError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(1)
